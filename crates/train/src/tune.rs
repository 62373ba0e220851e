//! Hyperparameter search (`nabla tune`): the trials of a config's `[tune]` ranges, each trained
//! on the training split and scored on the validation split (never the test split), ranked, with
//! the best trial's config written out for `nabla train`.
//!
//! Grid search takes every combination of each key's grid values (a list, `points` values
//! evenly spaced in log space or linearly, or every `step` of an integer range). Random search
//! draws each key independently: log-uniform ranges as `exp(U(ln low, ln high))`, so that each
//! decade of a learning rate or a weight decay is equally likely (Bergstra & Bengio, 2012),
//! without repeating a combination. Drawn and gridded reals are rounded to 3 significant
//! digits, so that the table, the config and the trial agree exactly.

use crate::config::{Config, ConfigError, Located, RangeSpec, TuneSpec};
use crate::error::{Error, Result, io};
use crate::experiment::prepare_fold;
use crate::metrics::higher_is_better;
use crate::trainer::output_kind;
use nabla_core::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use toml::Value;

/// How the trials are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Search {
    /// Every combination of the keys' grid values.
    Grid,
    /// This many draws (fewer when a discrete space runs out of new combinations).
    Random(usize),
}

/// The values of the tuned keys in one trial, by key (as written in `[tune.space]`).
pub type TrialValues = BTreeMap<String, Value>;

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// All its epochs ran.
    Completed,
    /// Early stopping ended it (its score is that of its best epoch).
    StoppedEarly,
    /// The loss stopped being finite.
    Diverged,
    /// It could not be built or trained (the message says why).
    Failed,
}

/// One trial and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// 1-based, in the order the trials ran.
    pub trial: usize,
    pub values: TrialValues,
    pub status: TrialStatus,
    /// The ranking metric on the validation split at the best epoch (the weights a run keeps).
    pub score: Option<f64>,
    /// All validation metrics at the best epoch.
    pub valid: Option<BTreeMap<String, f64>>,
    /// 1-based.
    pub best_epoch: Option<usize>,
    /// Epochs that ran.
    pub epochs: usize,
    /// Why it diverged or failed.
    pub message: Option<String>,
    pub seconds: f64,
    /// With cross-validation: the score on each fold (`score` is their mean).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fold_scores: Vec<f64>,
}

/// What `trials.json` in a tuning folder holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TuneRecord {
    pub search: Search,
    /// The validation metric the trials are ranked by.
    pub metric: String,
    pub higher_is_better: bool,
    /// In the order they ran.
    pub trials: Vec<Trial>,
}

impl TuneRecord {
    /// The trials best first: scored trials by their score (ties: the earlier trial), then
    /// those that diverged or failed, in the order they ran.
    pub fn ranked(&self) -> Vec<&Trial> {
        let mut ranked: Vec<&Trial> = self.trials.iter().collect();
        let better = self.higher_is_better;
        ranked.sort_by(|a, b| match (a.score, b.score) {
            (Some(x), Some(y)) => {
                let order = if better {
                    y.total_cmp(&x)
                } else {
                    x.total_cmp(&y)
                };
                order.then(a.trial.cmp(&b.trial))
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.trial.cmp(&b.trial),
        });
        ranked
    }

    /// The best trial, when any scored.
    pub fn best(&self) -> Option<&Trial> {
        self.ranked()
            .into_iter()
            .next()
            .filter(|t| t.score.is_some())
    }
}

/// The names of a tuning folder's files.
pub const TRIALS: &str = "trials.json";
pub const BEST: &str = "best.toml";

/// A search checked and planned: every trial's config built before any training.
#[derive(Debug, Clone)]
pub struct Plan {
    pub search: Search,
    pub metric: String,
    pub higher_is_better: bool,
    /// Cross-validation folds per trial (1: the config's validation split).
    pub folds: usize,
    pub trials: Vec<(TrialValues, Located)>,
}

/// Checks a config's `[tune]` section and lists its trials: a bad range, a key the config does
/// not have, a value of the wrong type or an unknown metric is an error naming the key and its
/// line, before anything trains.
pub fn plan(located: &Located, search: Search) -> Result<Plan> {
    let config = &located.config;
    let Some(spec) = &config.tune else {
        return Err(Error::Config(ConfigError {
            file: located.file.clone(),
            position: None,
            key: Some("tune".into()),
            message: "the config has no [tune] section: add `[tune.space]` with the keys to \
                      search and their ranges (docs/config.md)"
                .into(),
        }));
    };
    let higher = higher_is_better(&spec.metric).ok_or_else(|| {
        let known = [
            "loss",
            "accuracy",
            "precision",
            "recall",
            "f1",
            "log_loss",
            "mae",
            "rmse",
            "r2",
        ];
        let names: Vec<String> = known.iter().map(|s| s.to_string()).collect();
        let hint = nabla_data::csv::closest_name(&spec.metric, &names)
            .map_or(String::new(), |c| format!(" (did you mean `{c}`?)"));
        Error::Config(located.error(
            "tune.metric",
            format!(
                "unknown metric `{}`: expected one of {}{hint}",
                spec.metric,
                known.join(", ")
            ),
        ))
    })?;
    if spec.folds == 0 {
        return Err(Error::Config(located.error(
            "tune.folds",
            "must be at least 1 (1: the validation split; 5: 5-fold cross-validation)",
        )));
    }
    if spec.folds == 1 && config.data.valid_split <= 0.0 {
        return Err(Error::Config(located.error(
            "data.valid_split",
            "nabla tune ranks trials on the validation split, and there is none: set \
             data.valid_split above 0 (e.g. 0.2), or cross-validate (tune.folds = 5)",
        )));
    }
    if spec.space.is_empty() {
        return Err(Error::Config(located.error(
            "tune.space",
            "no keys to tune: add e.g. \"optimizer.lr\" = { log_uniform = { low = 1e-4, high \
             = 1e-1 } }",
        )));
    }
    let at = |key: &str, message: String| {
        Error::Config(located.error_at_parts(&["tune", "space", key], message))
    };
    for (key, range) in &spec.space {
        check_range(range).map_err(|m| at(key, m))?;
    }
    let values = match search {
        Search::Grid => grid(spec).map_err(|(key, m)| at(&key, m))?,
        Search::Random(n) => random(spec, n, config.seed),
    };
    let mut trials = Vec::with_capacity(values.len());
    for v in values {
        let pairs: Vec<(String, Value)> = v.iter().map(|(k, x)| (k.clone(), x.clone())).collect();
        let trial = located.with_values(&pairs).map_err(|e| {
            let key = e.key.clone().unwrap_or_default();
            let tuned = pairs
                .iter()
                .find(|(k, _)| key.starts_with(k.as_str()) || k.starts_with(key.as_str()))
                .map_or_else(|| pairs[0].0.clone(), |(k, _)| k.clone());
            at(
                &tuned,
                format!(
                    "{} = {}: {}",
                    e.key.as_deref().unwrap_or(&tuned),
                    show(&v[&tuned]),
                    e.message
                ),
            )
        })?;
        trials.push((v, trial));
    }
    Ok(Plan {
        search,
        metric: spec.metric.clone(),
        higher_is_better: higher,
        folds: spec.folds,
        trials,
    })
}

fn check_range(range: &RangeSpec) -> Result<(), String> {
    let points = |p: usize| {
        if p == 0 {
            Err("points must be at least 1".to_string())
        } else {
            Ok(())
        }
    };
    match *range {
        RangeSpec::Values(ref v) if v.is_empty() => Err("values: the list is empty".into()),
        RangeSpec::Values(_) => Ok(()),
        RangeSpec::LogUniform {
            low,
            high,
            points: p,
        } => {
            if !(low > 0.0 && high.is_finite() && low <= high) {
                return Err(format!(
                    "log_uniform needs 0 < low <= high (finite), got low = {low}, high = {high}"
                ));
            }
            points(p)
        }
        RangeSpec::Uniform {
            low,
            high,
            points: p,
        } => {
            if !(low.is_finite() && high.is_finite() && low <= high) {
                return Err(format!(
                    "uniform needs low <= high (finite), got low = {low}, high = {high}"
                ));
            }
            points(p)
        }
        RangeSpec::Int { low, high, step } => {
            if low > high || step < 1 {
                return Err(format!(
                    "int needs low <= high and step >= 1, got low = {low}, high = {high}, step \
                     = {step}"
                ));
            }
            Ok(())
        }
    }
}

/// `x` to 3 significant digits (so `10^-3` computed as `0.0009999…` reads `0.001`).
pub(crate) fn round3(x: f64) -> f64 {
    format!("{x:.2e}").parse().unwrap_or(x)
}

/// The grid values of one range.
fn grid_values(range: &RangeSpec) -> Vec<Value> {
    let spaced = |low: f64, high: f64, points: usize, log: bool| -> Vec<Value> {
        let (a, b) = if log {
            (low.ln(), high.ln())
        } else {
            (low, high)
        };
        (0..points)
            .map(|i| {
                let t = if points == 1 {
                    0.5
                } else {
                    i as f64 / (points - 1) as f64
                };
                let x = a + t * (b - a);
                Value::Float(round3(if log { x.exp() } else { x }))
            })
            .collect()
    };
    match *range {
        RangeSpec::Values(ref v) => v.clone(),
        RangeSpec::LogUniform { low, high, points } => spaced(low, high, points, true),
        RangeSpec::Uniform { low, high, points } => spaced(low, high, points, false),
        RangeSpec::Int { low, high, step } => (low..=high)
            .step_by(usize::try_from(step).unwrap_or(usize::MAX))
            .map(Value::Integer)
            .collect(),
    }
}

/// The most trials a grid may have (a typo in `points` should not start a week of training).
pub const MAX_GRID: usize = 10_000;

/// Every combination of the keys' grid values (the last key varying fastest).
fn grid(spec: &TuneSpec) -> Result<Vec<TrialValues>, (String, String)> {
    let mut combos: Vec<TrialValues> = vec![BTreeMap::new()];
    for (key, range) in &spec.space {
        // Counted before the values are made: `points = 1e12` must not allocate them.
        let count = match *range {
            RangeSpec::Values(ref v) => v.len() as u128,
            RangeSpec::LogUniform { points, .. } | RangeSpec::Uniform { points, .. } => {
                points as u128
            }
            RangeSpec::Int { low, high, step } => {
                ((high as i128 - low as i128) / step as i128 + 1) as u128
            }
        };
        if combos.len() as u128 * count > MAX_GRID as u128 {
            return Err((
                key.clone(),
                format!(
                    "the grid would have more than {MAX_GRID} trials: use fewer points, or \
                     --random N"
                ),
            ));
        }
        let values = grid_values(range);
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(key.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    Ok(combos)
}

/// One draw of a range.
fn sample(range: &RangeSpec, rng: &mut Rng) -> Value {
    match *range {
        RangeSpec::Values(ref v) => v[rng.below(v.len())].clone(),
        RangeSpec::LogUniform { low, high, .. } => {
            let (a, b) = (low.ln(), high.ln());
            Value::Float(round3((a + rng.uniform() * (b - a)).exp()))
        }
        RangeSpec::Uniform { low, high, .. } => {
            Value::Float(round3(low + rng.uniform() * (high - low)))
        }
        RangeSpec::Int { low, high, step } => {
            // In i128: `high - low` overflows i64 for the widest ranges.
            let count = (high as i128 - low as i128) / step as i128 + 1;
            let k = (rng.uniform() * count as f64) as i128;
            Value::Integer((low as i128 + step as i128 * k.min(count - 1)) as i64)
        }
    }
}

/// Tries per trial to draw a combination not drawn before, before deciding the space is spent.
const REDRAWS: usize = 100;

/// `n` draws of the space, each combination at most once, seeded by the config's seed.
fn random(spec: &TuneSpec, n: usize, seed: u64) -> Vec<TrialValues> {
    // A stream of its own, so that tuning does not replay the training's random numbers.
    let mut rng = Rng::seed(seed ^ 0x7475_6e65_7475_6e65);
    let mut seen = HashSet::new();
    let mut trials = Vec::with_capacity(n);
    'trials: for _ in 0..n {
        for _ in 0..REDRAWS {
            let values: TrialValues = spec
                .space
                .iter()
                .map(|(k, r)| (k.clone(), sample(r, &mut rng)))
                .collect();
            if seen.insert(format!("{values:?}")) {
                trials.push(values);
                continue 'trials;
            }
        }
        break;
    }
    trials
}

/// A value as the table shows it (strings without quotes).
pub fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `key=value` for each tuned key.
pub fn describe(values: &TrialValues) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={}", show(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Trains one trial's config in memory (no run folder), with validation after each epoch:
/// once on the config's split, or once per fold.
fn train_trial(
    located: &Located,
    metric: &str,
    folds: usize,
) -> Result<Vec<crate::trainer::History>> {
    let runs: Vec<Option<(usize, usize)>> = if folds >= 2 {
        (0..folds).map(|i| Some((i, folds))).collect()
    } else {
        vec![None]
    };
    let mut histories = Vec::with_capacity(runs.len());
    for fold in runs {
        let mut exp = prepare_fold(located, fold)?;
        let names = if exp.preprocessing.text.is_some() {
            crate::metrics::PER_STEP_METRICS
        } else {
            output_kind(&exp.train_config.loss).metric_names()
        };
        if !names.contains(&metric) {
            return Err(Error::Config(located.error(
                "tune.metric",
                format!(
                    "`{metric}` is not measured for this task; its metrics are {}",
                    names.join(", ")
                ),
            )));
        }
        histories.push(exp.fit()?);
    }
    Ok(histories)
}

/// A trial's record from how its training ended: the metric at each run's best epoch, averaged
/// over the folds.
fn outcome(
    index: usize,
    values: &TrialValues,
    result: &Result<Vec<crate::trainer::History>>,
    metric: &str,
    seconds: f64,
) -> Trial {
    let mut trial = Trial {
        trial: index,
        values: values.clone(),
        status: TrialStatus::Failed,
        score: None,
        valid: None,
        best_epoch: None,
        epochs: 0,
        message: None,
        seconds,
        fold_scores: Vec::new(),
    };
    match result {
        Ok(histories) => {
            trial.epochs = histories.iter().map(|h| h.epochs.len()).max().unwrap_or(0);
            trial.status = if histories.iter().any(|h| h.stopped_early) {
                TrialStatus::StoppedEarly
            } else {
                TrialStatus::Completed
            };
            let bests: Vec<(usize, &BTreeMap<String, f64>)> = histories
                .iter()
                .filter_map(|h| {
                    let b = h.best_epoch?;
                    Some((b, h.epochs.get(b)?.valid.as_ref()?))
                })
                .collect();
            if bests.len() == histories.len() && !bests.is_empty() {
                let n = bests.len() as f64;
                let mut mean: BTreeMap<String, f64> = BTreeMap::new();
                for (_, v) in &bests {
                    for (k, x) in *v {
                        *mean.entry(k.clone()).or_default() += x / n;
                    }
                }
                let epoch = bests.iter().map(|(b, _)| *b as f64).sum::<f64>() / n;
                trial.best_epoch = Some(epoch.round() as usize + 1);
                trial.score = mean.get(metric).copied();
                if histories.len() > 1 {
                    trial.fold_scores = bests
                        .iter()
                        .filter_map(|(_, v)| v.get(metric).copied())
                        .collect();
                }
                trial.valid = Some(mean);
            }
        }
        Err(e @ Error::Diverged { epoch, .. }) => {
            trial.status = TrialStatus::Diverged;
            trial.epochs = *epoch;
            trial.message = Some(e.to_string());
        }
        Err(e) => trial.message = Some(e.to_string()),
    }
    trial
}

/// Runs a planned search, writing `trials.json` (all trials so far) and `best.toml` (the best
/// trial's config, ready for `nabla train`) into `dir` atomically after every trial, so that a
/// search stopped at any moment keeps what it found. `on_trial` sees each trial as it ends.
/// A config error common to all trials (a metric the task does not measure, data that cannot
/// be read) stops the search at the first trial and leaves no folder behind.
pub fn run(plan: &Plan, dir: &Path, mut on_trial: impl FnMut(&Trial)) -> Result<TuneRecord> {
    if dir.exists() && std::fs::read_dir(dir).map_err(io(dir))?.next().is_some() {
        return Err(Error::Invalid(format!(
            "{}: the folder exists and is not empty; choose another with --out",
            dir.display()
        )));
    }
    let mut record = TuneRecord {
        search: plan.search,
        metric: plan.metric.clone(),
        higher_is_better: plan.higher_is_better,
        trials: Vec::with_capacity(plan.trials.len()),
    };
    for (i, (values, located)) in plan.trials.iter().enumerate() {
        let start = std::time::Instant::now();
        let result = train_trial(located, &plan.metric, plan.folds);
        let seconds = start.elapsed().as_secs_f64();
        match result {
            // What fails the first trial (unreadable data, a bad metric) fails them all.
            Err(e) if i == 0 && !matches!(e, Error::Diverged { .. }) => return Err(e),
            _ => {}
        }
        let trial = outcome(i + 1, values, &result, &plan.metric, seconds);
        on_trial(&trial);
        record.trials.push(trial);
        save(dir, &record, plan)?;
    }
    Ok(record)
}

fn save(dir: &Path, record: &TuneRecord, plan: &Plan) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let json = crate::readable_json::to_vec(record).map_err(|e| Error::Invalid(e.to_string()))?;
    crate::checkpoint::write_atomic(&dir.join(TRIALS), &json)?;
    if let Some(best) = record.best() {
        let config = &plan.trials[best.trial - 1].1.config;
        let text = best_config_text(config, record, best)?;
        crate::checkpoint::write_atomic(&dir.join(BEST), text.as_bytes())?;
    }
    Ok(())
}

/// The best trial's resolved config (without its `[tune]` section), headed by how it was found.
fn best_config_text(config: &Config, record: &TuneRecord, best: &Trial) -> Result<String> {
    let mut config = config.clone();
    config.tune = None;
    let body = config
        .to_toml()
        .map_err(|e| Error::Invalid(format!("config: {e}")))?;
    let search = match record.search {
        Search::Grid => "grid".to_string(),
        Search::Random(n) => format!("random {n}"),
    };
    Ok(format!(
        "# nabla tune ({search}): trial {}, the best of {} trials, validation {} {:.6} at epoch \
         {}\n# {}\n\n{body}",
        best.trial,
        record.trials.len(),
        record.metric,
        best.score.unwrap_or(f64::NAN),
        best.best_epoch.unwrap_or(0),
        describe(&best.values),
    ))
}

/// The default tuning folder for a config: `runs/tune-NAME`, numbered if taken.
pub fn default_dir(config: Option<&Path>) -> PathBuf {
    let stem = config
        .and_then(|p| p.file_stem())
        .map_or("digits".into(), |s| s.to_string_lossy().into_owned());
    crate::run_dir::next_free(&Path::new("runs").join(format!("tune-{stem}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_grid_is_evenly_spaced_in_log_space() {
        let r = RangeSpec::LogUniform {
            low: 1e-4,
            high: 1e-1,
            points: 4,
        };
        let v: Vec<f64> = grid_values(&r)
            .iter()
            .map(|v| v.as_float().unwrap())
            .collect();
        assert_eq!(v, [1e-4, 1e-3, 1e-2, 1e-1]);
    }

    #[test]
    fn log_uniform_draws_cover_each_decade_alike() {
        let r = RangeSpec::LogUniform {
            low: 1e-5,
            high: 1e-1,
            points: 3,
        };
        let mut rng = Rng::seed(3);
        let mut per_decade = [0usize; 4];
        let n = 4000;
        for _ in 0..n {
            let x = sample(&r, &mut rng).as_float().unwrap();
            assert!((1e-5..=1e-1).contains(&x), "{x} outside the range");
            per_decade[((x.log10() + 5.0).floor() as usize).min(3)] += 1;
        }
        // Uniform in log space: each of the 4 decades gets a quarter (a linear draw would put
        // 90% in the last one).
        for c in per_decade {
            let share = c as f64 / n as f64;
            assert!((share - 0.25).abs() < 0.03, "{per_decade:?}");
        }
    }

    #[test]
    fn int_ranges_step_and_stay_inside() {
        let r = RangeSpec::Int {
            low: 16,
            high: 64,
            step: 16,
        };
        let grid: Vec<i64> = grid_values(&r)
            .iter()
            .map(|v| v.as_integer().unwrap())
            .collect();
        assert_eq!(grid, [16, 32, 48, 64]);
        let mut rng = Rng::seed(0);
        let mut seen = HashSet::new();
        for _ in 0..200 {
            seen.insert(sample(&r, &mut rng).as_integer().unwrap());
        }
        assert_eq!(seen, grid.into_iter().collect());
    }

    #[test]
    fn random_search_stops_when_a_discrete_space_is_spent() {
        let mut space = BTreeMap::new();
        space.insert(
            "a".to_string(),
            RangeSpec::Values(vec![Value::Integer(1), Value::Integer(2)]),
        );
        space.insert(
            "b".to_string(),
            RangeSpec::Values(vec![Value::Boolean(true), Value::Boolean(false)]),
        );
        let spec = TuneSpec {
            metric: "loss".into(),
            space,
            folds: 1,
        };
        let trials = random(&spec, 10, 0);
        assert_eq!(trials.len(), 4);
        let distinct: HashSet<String> = trials.iter().map(|t| format!("{t:?}")).collect();
        assert_eq!(distinct.len(), 4);
        assert_eq!(grid(&spec).unwrap().len(), 4);
        // The same seed draws the same trials.
        assert_eq!(random(&spec, 3, 7), random(&spec, 3, 7));
    }

    #[test]
    fn ranking_puts_scores_first_then_failures() {
        let t = |trial, score: Option<f64>, status| Trial {
            trial,
            values: BTreeMap::new(),
            status,
            score,
            valid: None,
            best_epoch: None,
            epochs: 1,
            message: None,
            seconds: 0.0,
            fold_scores: Vec::new(),
        };
        let mut record = TuneRecord {
            search: Search::Grid,
            metric: "accuracy".into(),
            higher_is_better: true,
            trials: vec![
                t(1, None, TrialStatus::Diverged),
                t(2, Some(0.5), TrialStatus::Completed),
                t(3, Some(0.9), TrialStatus::StoppedEarly),
                t(4, Some(0.9), TrialStatus::Completed),
            ],
        };
        let order: Vec<usize> = record.ranked().iter().map(|t| t.trial).collect();
        assert_eq!(order, [3, 4, 2, 1]);
        record.higher_is_better = false;
        let order: Vec<usize> = record.ranked().iter().map(|t| t.trial).collect();
        assert_eq!(order, [2, 3, 4, 1]);
        assert_eq!(record.best().map(|t| t.trial), Some(2));
    }
}

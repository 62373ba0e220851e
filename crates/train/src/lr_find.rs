//! The learning-rate range test (L. Smith, "Cyclical Learning Rates for Training Neural
//! Networks", 2017; fastai's `lr_find`): train from the initial weights for a few hundred steps
//! while the learning rate grows geometrically from far too small to far too large, and watch
//! the loss. It stays flat while the steps are too small to matter, falls once they are large
//! enough, and blows up once they overshoot the curvature (a step beyond `2/λ_max` diverges on
//! a quadratic). A constant learning rate about a tenth of the one at the lowest loss trains
//! fast without overshooting.
//!
//! The model's weights and the optimizer's state are put back afterwards: the sweep only looks.

use crate::doctor::rules::sig;
use crate::error::{Error, Result};
use crate::trainer::{History, TrainConfig, Trainer};
use nabla_data::Dataset;
use nabla_nn::optim::Optimizer;
use nabla_nn::{CarriedState, Module, ModuleExt};
use serde::Serialize;

/// While the sweep runs, the loss is smoothed over the batches' noise by an exponential moving
/// average with this weight on the past, debiased (`avg / (1 − βᵗ)`, as Adam's moments): a
/// window of about 10 steps, short enough to stop soon after the loss takes off.
pub const RUNNING_SMOOTHING: f64 = 0.9;
/// The sweep stops once the running average is this many times its lowest: diverged.
pub const DIVERGED: f64 = 4.0;

/// Where the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepOptions {
    /// The first and the last learning rate; the steps between are geometric.
    pub start: f64,
    pub end: f64,
    /// How many optimizer steps (batches; the epochs' batches in turn).
    pub steps: usize,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            start: 1e-7,
            end: 10.0,
            steps: 200,
        }
    }
}

impl SweepOptions {
    /// Checks the range, naming the option at fault (`start`, `end`, `steps`).
    pub fn validate(&self) -> std::result::Result<(), (&'static str, String)> {
        for (name, v) in [("start", self.start), ("end", self.end)] {
            if !(v.is_finite() && v > 0.0) {
                return Err((name, format!("must be a finite learning rate > 0, got {v}")));
            }
        }
        if self.end <= self.start {
            return Err((
                "end",
                format!(
                    "must be above start ({}), got {}",
                    sig(self.start),
                    sig(self.end)
                ),
            ));
        }
        if !(10..=100_000).contains(&self.steps) {
            return Err((
                "steps",
                format!("must be in 10..=100000, got {}", self.steps),
            ));
        }
        Ok(())
    }

    /// The learning rate of step `i` of `self.steps`: `start · (end/start)^(i/(steps−1))`.
    pub fn learning_rate(&self, i: usize) -> f64 {
        let t = i as f64 / (self.steps - 1) as f64;
        self.start * (self.end / self.start).powf(t)
    }
}

/// What the sweep saw, step by step, and what it suggests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LrSweep {
    /// The learning rate of each step taken.
    pub learning_rates: Vec<f64>,
    /// Each step's batch loss (before its update), and the smoothed loss (a centered moving
    /// average, up to the first non-finite loss).
    pub losses: Vec<f64>,
    pub smoothed: Vec<f64>,
    /// The learning rate at which the loss diverged (became non-finite or passed
    /// [`DIVERGED`] times its lowest), if it did before `end`.
    pub diverged_at: Option<f64>,
    /// The learning rate at the lowest smoothed loss.
    pub lowest: f64,
    /// The learning rate where the smoothed loss fell fastest per decade of the rate.
    pub steepest: Option<f64>,
    /// A tenth of [`Self::lowest`], when the loss fell at all.
    pub suggested: Option<f64>,
    /// The smoothed loss at the start, and its lowest.
    pub first_loss: f64,
    pub lowest_loss: f64,
}

/// How far the smoothed loss must fall below where it started for the sweep to call that a
/// fall (a flat curve's noise does not suggest anything).
const FELL: f64 = 0.05;

/// Runs the range test on `train` with `config`'s loss, batches, penalties and clipping
/// (its schedule, epochs and early stopping do not apply), then puts back `model`'s weights and
/// `optimizer`'s state.
pub fn sweep(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    train: &Dataset,
    config: &TrainConfig,
    options: SweepOptions,
) -> Result<LrSweep> {
    options
        .validate()
        .map_err(|(name, message)| Error::Invalid(format!("lr sweep: {name} {message}")))?;
    if train.is_empty() {
        return Err(Error::Invalid(
            "lr sweep: needs at least one training row".into(),
        ));
    }
    if config.carry_state {
        crate::trainer::check_full_batches("lr sweep", train.len(), config.batch_size)?;
    }
    let weights: Vec<_> = model
        .state_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().detach())
        .collect();
    let state = optimizer.state();
    let result = Trainer::new(model, &mut *optimizer, config, History::default())
        .and_then(|trainer| record(trainer, train, options));
    // Put back what the sweep moved, whether it finished or failed.
    for ((_, var), value) in model.state_vars().iter().zip(&weights) {
        var.set(value)?;
    }
    optimizer.load_state(&state)?;
    result
}

/// The sweep's steps, on the batches `trainer` takes, and what they suggest.
fn record(mut trainer: Trainer<'_>, train: &Dataset, options: SweepOptions) -> Result<LrSweep> {
    let (mut learning_rates, mut losses) = (Vec::new(), Vec::new());
    let (mut average, mut lowest) = (0.0, f64::INFINITY);
    let mut diverged_at = None;
    let mut step = 0usize;
    'epochs: for epoch in 0u64.. {
        let mut carried = CarriedState::default();
        let mut batches = trainer.batches(train, epoch).peekable();
        // An epoch without a batch would never reach the steps.
        if batches.peek().is_none() {
            return Err(Error::Invalid(format!(
                "lr sweep: {} training rows make no batch",
                train.len()
            )));
        }
        for batch in batches {
            if step == options.steps {
                break 'epochs;
            }
            let (x, y) = batch?;
            let lr = options.learning_rate(step);
            trainer.set_learning_rate(lr);
            let (loss, out) = trainer.step(&x, &y, step as u64, false, &mut carried)?;
            learning_rates.push(lr);
            losses.push(loss);
            step += 1;
            if out.is_none() {
                diverged_at = Some(lr);
                break 'epochs;
            }
            average = RUNNING_SMOOTHING * average + (1.0 - RUNNING_SMOOTHING) * loss;
            let debiased = average / (1.0 - RUNNING_SMOOTHING.powi(step as i32));
            lowest = lowest.min(debiased);
            if debiased > DIVERGED * lowest {
                diverged_at = Some(lr);
                break 'epochs;
            }
        }
    }
    let finite = losses.iter().take_while(|l| l.is_finite()).count();
    let half_window = (options.steps / 40).max(2);
    let smoothed = centered_average(&losses[..finite], half_window);
    Ok(suggest(learning_rates, losses, smoothed, diverged_at))
}

/// The mean of each value and the `half` values either side (fewer at the ends): smoothing
/// without the lag of a running average, which would put the lowest loss at a larger rate
/// than where it was.
fn centered_average(values: &[f64], half: usize) -> Vec<f64> {
    (0..values.len())
        .map(|i| {
            let window = &values[i.saturating_sub(half)..(i + half + 1).min(values.len())];
            window.iter().sum::<f64>() / window.len() as f64
        })
        .collect()
}

/// The suggestions from the curve: the lowest smoothed loss, the steepest fall (central
/// differences against log10 of the rate, before the lowest), and a tenth of the lowest's
/// rate when the loss fell at all.
fn suggest(
    learning_rates: Vec<f64>,
    losses: Vec<f64>,
    smoothed: Vec<f64>,
    diverged_at: Option<f64>,
) -> LrSweep {
    let (best, lowest_loss) = smoothed
        .iter()
        .copied()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, f64::NAN));
    let first_loss = smoothed.first().copied().unwrap_or(f64::NAN);
    let lowest = learning_rates.get(best).copied().unwrap_or(f64::NAN);
    let fell = lowest_loss < (1.0 - FELL) * first_loss;
    let steepest = (1..best.min(smoothed.len().saturating_sub(1)))
        .map(|i| {
            let run = learning_rates[i + 1].log10() - learning_rates[i - 1].log10();
            (i, (smoothed[i + 1] - smoothed[i - 1]) / run)
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, slope)| *slope < 0.0 && fell)
        .map(|(i, _)| learning_rates[i]);
    LrSweep {
        suggested: fell.then_some(lowest / 10.0),
        learning_rates,
        losses,
        smoothed,
        diverged_at,
        lowest,
        steepest,
        first_loss,
        lowest_loss,
    }
}

impl LrSweep {
    /// The curve as an SVG chart: the batch losses and the smoothed loss against log10 of the
    /// learning rate (the steps after divergence are left out).
    pub fn chart(&self) -> Result<String> {
        let at = |values: &[f64]| -> Vec<(f64, f64)> {
            self.learning_rates
                .iter()
                .zip(values)
                .map(|(lr, l)| (lr.log10(), *l))
                .filter(|(_, l)| l.is_finite())
                .collect()
        };
        // A diverging batch loss would squash the rest of the curve: cut at 4x the start.
        let cap = DIVERGED * self.first_loss.max(self.lowest_loss);
        let raw: Vec<(f64, f64)> = at(&self.losses)
            .into_iter()
            .filter(|(_, l)| *l <= cap)
            .collect();
        crate::report::xy_chart(
            "Learning-rate range test",
            "log10 learning rate",
            "loss",
            &[
                ("batch loss".to_string(), raw),
                ("smoothed".to_string(), at(&self.smoothed)),
            ],
            false,
        )
    }
}

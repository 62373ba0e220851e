//! `nabla tune`: a grid or random search over the ranges in a config's `[tune]` section, each
//! trial scored on the validation split; the trials in a table, best first, and the best
//! trial's config written out for `nabla train`.

use super::train::{Overrides, figure, load_config};
use anyhow::Result;
use nabla_train::tune::{self, Search, Trial, TrialStatus, TuneRecord};
use std::io::Write;
use std::path::PathBuf;

/// What `nabla tune` was asked to do (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("search").required(true).args(["grid", "random"]))]
pub struct TuneArgs {
    /// The config, with a [tune] section (see docs/config.md).
    pub config: PathBuf,
    /// Try every combination of the keys' grid values.
    #[arg(long)]
    pub grid: bool,
    /// Try N random draws (log-uniform ranges sampled in log space).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub random: Option<u64>,
    /// The folder for trials.json and best.toml (default: runs/tune-NAME, numbered if taken).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// No line per trial while searching.
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the ranked trials as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `nabla tune`.
pub fn run(args: TuneArgs, out: &mut dyn Write) -> Result<()> {
    let located = load_config(Some(&args.config), &args.overrides)?;
    let search = match args.random {
        Some(n) => Search::Random(n as usize),
        None => Search::Grid,
    };
    let plan = tune::plan(&located, search)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| tune::default_dir(Some(&args.config)));
    let total = plan.trials.len();
    if !args.quiet {
        eprintln!(
            "{total} trials ({}), ranked by validation {}; writing {}",
            match search {
                Search::Grid => "grid".to_string(),
                Search::Random(n) if n > total => format!("random: only {total} distinct of {n}"),
                Search::Random(_) => "random".to_string(),
            },
            plan.metric,
            dir.display()
        );
    }
    let record = tune::run(&plan, &dir, |t| {
        if !args.quiet {
            eprintln!("trial {}/{total}  {}", t.trial, trial_line(t, &plan.metric));
        }
    })?;
    let best = dir.join(tune::BEST);
    if args.json {
        let ranked: Vec<&Trial> = record.ranked();
        let doc = serde_json::json!({
            "dir": dir,
            "search": record.search,
            "metric": record.metric,
            "higher_is_better": record.higher_is_better,
            "best_config": record.best().map(|_| &best),
            "trials": ranked,
        });
        writeln!(out, "{doc}")?;
    } else {
        write_trials(&record, out)?;
        match record.best() {
            Some(b) => writeln!(
                out,
                "\nbest: trial {}; its config: {}\n      train it: nabla train {}",
                b.trial,
                best.display(),
                best.display()
            )?,
            None => writeln!(out, "\nno trial produced a score (all diverged or failed)")?,
        }
        writeln!(out, "trials: {}", dir.join(tune::TRIALS).display())?;
    }
    if record.best().is_none() {
        anyhow::bail!(nabla_train::Error::Invalid(
            "every trial diverged or failed: see the table".into()
        ));
    }
    Ok(())
}

/// One trial's values and outcome, for the line printed as it ends.
fn trial_line(t: &Trial, metric: &str) -> String {
    let outcome = match (t.score, t.status) {
        (Some(s), status) => format!(
            "{metric} {} (best epoch {} of {}{})",
            figure(s),
            t.best_epoch.unwrap_or(0),
            t.epochs,
            if status == TrialStatus::StoppedEarly {
                ", stopped early"
            } else {
                ""
            }
        ),
        (None, _) => note(t),
    };
    format!(
        "{}  -> {outcome}  {:.2} s",
        tune::describe(&t.values),
        t.seconds
    )
}

/// What the table's last column says about a trial.
fn note(t: &Trial) -> String {
    match t.status {
        TrialStatus::Completed => String::new(),
        TrialStatus::StoppedEarly => "stopped early".into(),
        TrialStatus::Diverged => format!("diverged at epoch {}", t.epochs),
        TrialStatus::Failed => format!("failed: {}", t.message.as_deref().unwrap_or("")),
    }
}

/// The trials best first, one row each: rank, trial, the tuned values, the score, the best
/// epoch and the epochs run, seconds, and a note (stopped early, diverged, failed).
pub fn write_trials(record: &TuneRecord, out: &mut dyn Write) -> Result<()> {
    let ranked = record.ranked();
    let keys: Vec<&String> = ranked
        .first()
        .map(|t| t.values.keys().collect())
        .unwrap_or_default();
    let cells = |t: &Trial| -> Vec<String> {
        let mut row = vec![t.trial.to_string()];
        row.extend(
            keys.iter()
                .map(|k| t.values.get(*k).map_or("".into(), tune::show)),
        );
        row.push(t.score.map_or("-".into(), figure));
        row.push(t.best_epoch.map_or("-".into(), |b| b.to_string()));
        row.push(t.epochs.to_string());
        row.push(format!("{:.2}", t.seconds));
        row
    };
    let mut header = vec!["trial".to_string()];
    header.extend(keys.iter().map(|k| k.to_string()));
    header.extend([
        record.metric.clone(),
        "best".into(),
        "epochs".into(),
        "s".into(),
    ]);
    let rows: Vec<Vec<String>> = ranked.iter().map(|t| cells(t)).collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |rank: &str, row: &[String], note: &str| -> String {
        let mut s = format!("{rank:>4}");
        for (cell, w) in row.iter().zip(&widths) {
            s += &format!("  {cell:>w$}");
        }
        if !note.is_empty() {
            s += "  ";
            s += note;
        }
        s
    };
    writeln!(out, "{}", line("rank", &header, ""))?;
    for (i, (t, row)) in ranked.iter().zip(&rows).enumerate() {
        writeln!(out, "{}", line(&(i + 1).to_string(), row, &note(t)))?;
    }
    Ok(())
}

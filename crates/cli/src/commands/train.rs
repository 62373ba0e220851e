//! `nabla train`: a config (or the embedded digits example) trained into a run directory, with
//! per-epoch checkpoints, a report, and a summary table; `--resume` continues a stopped run.

use anyhow::Result;
use nabla_train::autoencoder::ClassError;
use nabla_train::config::{self, Located};
use nabla_train::experiment::{self, Progress, RunSummary};
use nabla_train::run_dir;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The embedded default: the digits example (its data ships in the repository).
pub const DEFAULT_CONFIG: &str = include_str!("../../../../examples/digits.toml");

/// Where the embedded default config belongs (its data paths are relative to it).
pub fn default_config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/digits.toml")
}

/// What `nabla train` was asked to do (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The config file (see docs/config.md); default: the embedded digits example.
    pub config: Option<PathBuf>,
    /// The run directory to create (default: runs/NAME after the config file, numbered if
    /// taken).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (with its saved config).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "seed", "set"])]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// No per-epoch lines or progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Also print the model and the data sizes before training.
    #[arg(short, long, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Changes to a config from the command line (`train` and `tune`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Override the config's seed (the split, the initial weights, the shuffling and tune's
    /// draws).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override a config key (dotted path, TOML value), e.g. optimizer.lr=0.01 or
    /// model.layers.0.units=64. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Reads the config (or the embedded default) with the overrides.
pub fn load_config(path: Option<&Path>, changes: &Overrides) -> Result<Located> {
    let mut overrides = changes.set.clone();
    if let Some(s) = changes.seed {
        overrides.push(format!("seed={s}"));
    }
    Ok(match path {
        Some(p) => config::load(p, &overrides)?,
        None => config::load_text_at(DEFAULT_CONFIG, &default_config_path(), &overrides)?,
    })
}

/// Runs `nabla train`.
pub fn run(args: TrainArgs, out: &mut dyn Write) -> Result<()> {
    let progress = Progress {
        verbose: !args.quiet,
    };
    let summary = match &args.resume {
        Some(dir) => experiment::resume(dir, progress)?,
        None => {
            let located = load_config(args.config.as_deref(), &args.overrides)?;
            let dir = run_dir_for(&args);
            run_dir::ensure_unused(&dir)?;
            if located.config.gan.is_some() {
                let exp = nabla_train::gan::run::prepare(&located)?;
                if args.verbose {
                    eprintln!(
                        "generator: {} ({} parameters); discriminator: {} ({} parameters); {} \
                         training rows",
                        nabla_nn::Module::describe(&exp.generator),
                        nabla_nn::ModuleExt::parameter_count(&exp.generator),
                        nabla_nn::Module::describe(&exp.discriminator),
                        nabla_nn::ModuleExt::parameter_count(&exp.discriminator),
                        exp.data.train.len(),
                    );
                }
                nabla_train::gan::run::train(exp, &dir, progress)?
            } else {
                let exp = experiment::prepare(&located)?;
                if args.verbose {
                    eprintln!(
                        "model: {} ({} parameters); {} training, {} validation, {} test rows",
                        nabla_nn::Module::describe(&exp.model),
                        nabla_nn::ModuleExt::parameter_count(&exp.model),
                        exp.data.train.len(),
                        exp.data.valid.as_ref().map_or(0, |d| d.len()),
                        exp.data.test.as_ref().map_or(0, |d| d.len()),
                    );
                }
                experiment::train(exp, &dir, progress)?
            }
        }
    };
    if args.json {
        writeln!(out, "{}", summary_json(&summary))?;
    } else {
        write_summary(&summary, out)?;
    }
    Ok(())
}

/// The run directory: `--out`, or `runs/NAME` after the config file (numbered if taken).
fn run_dir_for(args: &TrainArgs) -> PathBuf {
    match &args.out {
        Some(d) => d.clone(),
        None => {
            let stem = args
                .config
                .as_deref()
                .and_then(|p| p.file_stem())
                .map_or("digits".into(), |s| s.to_string_lossy().into_owned());
            run_dir::next_free(&Path::new("runs").join(stem))
        }
    }
}

/// The summary as JSON: the run's folder, epochs, and final metrics.
pub fn summary_json(s: &RunSummary) -> serde_json::Value {
    let h = &s.record.history;
    let last = s.record.final_metrics();
    serde_json::json!({
        "run": s.dir,
        "epochs": h.epochs.len(),
        "best_epoch": h.best_epoch.map(|b| b + 1),
        "stopped_early": h.stopped_early,
        "train": last.train,
        "valid": last.valid,
        "test": last.test,
        "train_seconds": s.record.train_seconds,
        "code": s.record.code,
        "class_errors": s.record.class_errors,
        "gan": s.record.gan,
        "report": s.dir.join(run_dir::REPORT),
    })
}

/// The final summary table: metrics of the last epoch (train), the best epoch (validation)
/// and the final model (test), then where the report is.
pub fn write_summary(s: &RunSummary, out: &mut dyn Write) -> Result<()> {
    let h = &s.record.history;
    let rows = s.record.final_metrics().rows(["train", "valid", "test"]);
    writeln!(
        out,
        "\n{} epochs{}{} in {:.1} s",
        h.epochs.len(),
        h.best_epoch
            .map_or(String::new(), |b| format!(", best {}", b + 1)),
        if h.stopped_early {
            " (stopped early)"
        } else {
            ""
        },
        s.record.train_seconds
    )?;
    write_table(&rows, out)?;
    if let Some(c) = &s.record.code {
        writeln!(
            out,
            "\ncode:   layer {} ({}, {} units) on the {} data: mean |h| {:.4}, {:.1}% near zero, \
             {} units silent on every example",
            c.layer,
            c.description,
            c.units,
            c.split,
            c.mean_activation,
            100.0 * c.near_zero,
            c.silent_units
        )?;
    }
    if let Some(errors) = &s.record.class_errors {
        let by_mse = |a: &&ClassError, b: &&ClassError| a.mse.total_cmp(&b.mse);
        if let (Some(best), Some(worst)) =
            (errors.iter().min_by(by_mse), errors.iter().max_by(by_mse))
        {
            writeln!(
                out,
                "class:  worst reconstructed {} (MSE {:.5}), best {} ({:.5}); all in the report",
                worst.class, worst.mse, best.class, best.mse
            )?;
        }
    }
    if let Some(g) = &s.record.gan {
        let q = &g.samples;
        write!(
            out,
            "\nsamples: {} from a fixed noise: diversity {:.3}, nearest distance {:.3}",
            q.samples, q.diversity, q.nearest_distance
        )?;
        if let (Some(c), Some(k), Some(e)) = (q.classes_covered, q.classes, q.class_entropy) {
            write!(out, ", {c}/{k} classes covered (entropy {e:.3}")?;
            match (&g.real, &g.split) {
                (Some(r), Some(split)) => write!(
                    out,
                    "; real {split} data {:.3})",
                    r.class_entropy.unwrap_or(f64::NAN)
                )?,
                _ => write!(out, ")")?,
            }
        }
        writeln!(
            out,
            "\n         (1 is held-out real data; diversity near 0 is mode collapse)"
        )?;
    }
    writeln!(out, "\nrun:    {}", s.dir.display())?;
    writeln!(out, "report: {}", s.dir.join(run_dir::REPORT).display())?;
    Ok(())
}

/// Metric rows as an aligned table (columns: the metrics of the first row).
pub fn write_table(rows: &[(&str, &BTreeMap<String, f64>)], out: &mut dyn Write) -> Result<()> {
    let Some((_, first)) = rows.first() else {
        return Ok(());
    };
    let names: Vec<&String> = first.keys().collect();
    // Each column as wide as a figure (10) or its name, with a space between.
    let widths: Vec<usize> = names.iter().map(|n| 10.max(n.len() + 1)).collect();
    write!(out, "{:<7}", "")?;
    for (n, w) in names.iter().zip(&widths) {
        write!(out, "{n:>w$}")?;
    }
    writeln!(out)?;
    for (label, m) in rows {
        write!(out, "{label:<7}")?;
        for (n, w) in names.iter().zip(&widths) {
            match m.get(*n) {
                Some(v) => write!(out, "{:>w$}", figure(*v))?,
                None => write!(out, "{:>w$}", "")?,
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

/// A metric in at most 10 characters: 4 decimals, or scientific notation when it is very large
/// or very small (a diverging loss, an unscaled target's error).
pub fn figure(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-3..1e5).contains(&v.abs()) {
        format!("{v:.3e}")
    } else {
        format!("{v:.4}")
    }
}

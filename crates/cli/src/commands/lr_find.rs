//! `nabla lr-find`: the learning-rate range test on a config's model and training split, the
//! loss at each decade of the rate, and the rate it suggests (see `nabla_train::lr_find`).

use super::train::{Overrides, load_config};
use anyhow::{Result, bail};
use nabla_train::checkpoint::write_atomic;
use nabla_train::doctor::rules::sig;
use nabla_train::experiment::prepare;
use nabla_train::lr_find::{self, DIVERGED, LrSweep, SweepOptions};
use std::io::Write;
use std::path::PathBuf;

/// What `nabla lr-find` was asked to do (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct LrFindArgs {
    /// The config whose model, data and optimizer to sweep (default: the embedded digits
    /// example).
    pub config: Option<PathBuf>,
    /// The first learning rate of the sweep.
    #[arg(long, default_value_t = 1e-7)]
    pub start: f64,
    /// The last learning rate of the sweep (it stops earlier once the loss diverges).
    #[arg(long, default_value_t = 10.0)]
    pub end: f64,
    /// Optimizer steps (batches) in the sweep, 10 to 100000.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Write the loss curve here as an SVG chart (atomically).
    #[arg(long, value_name = "OUT.svg")]
    pub plot: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Print the sweep (every step's rate and loss) and its suggestions as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `nabla lr-find`.
pub fn run(args: LrFindArgs, out: &mut dyn Write) -> Result<()> {
    let options = SweepOptions {
        start: args.start,
        end: args.end,
        steps: args.steps,
    };
    if let Err((name, message)) = options.validate() {
        bail!("--{name}: {message}");
    }
    if let Some(plot) = &args.plot
        && plot.extension().and_then(|e| e.to_str()) != Some("svg")
    {
        bail!(
            "--plot {}: the chart is written as SVG: name a .svg file",
            plot.display()
        );
    }
    let located = load_config(args.config.as_deref(), &args.overrides)?;
    if located.config.gan.is_some() {
        bail!(
            "{}: a GAN trains two networks against each other, each with its own optimizer; \
             the range test sweeps one model's learning rate against a loss that should fall, \
             which a GAN's losses do not (search gan.generator.optimizer.lr and \
             gan.discriminator.optimizer.lr with `nabla tune`; `nabla doctor` judges the game)",
            located
                .file
                .as_ref()
                .map_or("the config".into(), |f| f.display().to_string())
        );
    }
    let mut exp = prepare(&located)?;
    let configured = exp.optimizer.learning_rate();
    let sweep = lr_find::sweep(
        &exp.model,
        exp.optimizer.as_mut(),
        &exp.data.train,
        &exp.train_config,
        options,
    )?;
    if let Some(path) = &args.plot {
        write_atomic(path, sweep.chart()?.as_bytes())?;
    }
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&sweep)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "learning-rate range test: {} steps of {} (batch {}) from {} to {}, on {} training rows",
        sweep.learning_rates.len(),
        exp.optimizer.name(),
        exp.train_config.batch_size,
        sig(options.start),
        sig(options.end),
        exp.data.train.len()
    )?;
    write!(out, "{}", decades(&sweep))?;
    match sweep.diverged_at {
        Some(lr) => writeln!(
            out,
            "diverged at {}: the running average of the loss passed {DIVERGED}x its lowest, or \
             overflowed",
            sig(lr)
        )?,
        None => writeln!(
            out,
            "did not diverge by {}: a larger --end would show where the steps overshoot",
            sig(options.end)
        )?,
    }
    let Some(suggested) = sweep.suggested else {
        writeln!(
            out,
            "the loss did not fall (smoothed {} at the start, {} at its lowest): no learning \
             rate in this range trains it, so the step size is not what holds it back; \
             `nabla doctor` looks for the cause",
            sig(sweep.first_loss),
            sig(sweep.lowest_loss)
        )?;
        return Ok(());
    };
    writeln!(
        out,
        "lowest smoothed loss {} at {}{}",
        sig(sweep.lowest_loss),
        sig(sweep.lowest),
        sweep
            .steepest
            .map_or(String::new(), |s| format!("; steepest fall at {}", sig(s)))
    )?;
    writeln!(
        out,
        "suggested learning rate: {} (a tenth of the lowest loss's; the config has {}, {})",
        sig(suggested),
        sig(configured),
        compared(configured, suggested)
    )?;
    writeln!(out, "try: --set 'optimizer.lr={}'", sig(suggested))?;
    if let Some(path) = &args.plot {
        writeln!(out, "chart: {}", path.display())?;
    }
    Ok(())
}

/// One line per decade of the rate the sweep passed: the rate and the smoothed loss there.
fn decades(sweep: &LrSweep) -> String {
    let mut text = String::from("  learning rate   smoothed loss\n");
    let mut last_decade = None;
    for (lr, loss) in sweep.learning_rates.iter().zip(&sweep.smoothed) {
        let decade = lr.log10().floor() as i32;
        if last_decade != Some(decade) {
            text += &format!("  {:>13}   {}\n", sig(*lr), sig(*loss));
            last_decade = Some(decade);
        }
    }
    text
}

/// How the config's rate compares with the suggestion, in words.
fn compared(configured: f64, suggested: f64) -> String {
    let ratio = configured / suggested;
    if (1.0 / 3.0..=3.0).contains(&ratio) {
        "about the same".into()
    } else if ratio < 1.0 {
        format!("{}x smaller", sig(1.0 / ratio))
    } else {
        format!("{}x larger", sig(ratio))
    }
}

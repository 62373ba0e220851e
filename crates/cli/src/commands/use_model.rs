//! `nabla eval`, `nabla predict` and `nabla report`: what a finished (or stopped) run's model
//! does on new data, and its report rebuilt; `nabla sample`: a GAN run's generated examples.

use super::train::write_table;
use anyhow::Result;
use nabla_train::checkpoint::write_atomic;
use nabla_train::experiment;
use std::io::Write;
use std::path::Path;

/// Loss and metrics of the run's model on a CSV with the target column.
pub fn eval(run: &Path, data: &Path, json: bool, out: &mut dyn Write) -> Result<()> {
    let model = experiment::load_model(run)?;
    let metrics = model.evaluate(data)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&metrics)?)?;
    } else {
        write_table(&[("data", &metrics)], out)?;
    }
    Ok(())
}

/// Predictions for every row of a CSV: to `output` (written atomically) or to `out`.
pub fn predict(run: &Path, data: &Path, output: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let model = experiment::load_model(run)?;
    let csv = model.predict(data)?.to_csv()?;
    match output {
        Some(path) => write_atomic(path, &csv)?,
        None => out.write_all(&csv)?,
    }
    Ok(())
}

/// Rebuilds the run's report from its files (the data is read again for the final plot).
pub fn report(run: &Path, out: &mut dyn Write) -> Result<()> {
    nabla_train::run_dir::open(run)?;
    let path = if experiment::is_gan_run(run)? {
        let exp = nabla_train::gan::run::open(run)?;
        nabla_train::gan::run::write_report(run, &exp)?
    } else {
        let exp = experiment::open_experiment(run)?;
        experiment::write_report(run, &exp)?
    };
    writeln!(out, "{}", path.display())?;
    Ok(())
}

/// `n` samples of a GAN run's generator as CSV (the training file's feature columns and
/// units): to `output` (written atomically) or to `out`.
pub fn sample(
    run: &Path,
    n: usize,
    seed: u64,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let csv = nabla_train::gan::run::sample_csv(run, n, seed)?;
    match output {
        Some(path) => write_atomic(path, &csv)?,
        None => out.write_all(&csv)?,
    }
    Ok(())
}

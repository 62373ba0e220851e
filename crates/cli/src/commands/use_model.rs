//! `nabla eval`, `nabla predict` and `nabla report`: what a finished (or stopped) run's model
//! does on new data, and its report rebuilt; `nabla sample`: a GAN run's generated examples or
//! a character model's text.

use super::train::write_table;
use anyhow::Result;
use nabla_train::checkpoint::write_atomic;
use nabla_train::experiment;
use std::io::Write;
use std::path::Path;

/// Loss and metrics of the run's model on a CSV with the target column (or IDX images and
/// their IDX `labels`).
pub fn eval(
    run: &Path,
    data: &Path,
    labels: Option<&Path>,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    let model = experiment::load_model(run)?;
    let metrics = model.evaluate(data, labels)?;
    if json {
        writeln!(out, "{}", serde_json::to_string(&metrics)?)?;
    } else {
        write_table(&[("data", &metrics)], out)?;
    }
    Ok(())
}

/// Predictions for every row of a CSV (or image of a folder): to `output` (written
/// atomically) or to `out`.
pub fn predict(run: &Path, data: &Path, output: Option<&Path>, out: &mut dyn Write) -> Result<()> {
    let model = experiment::load_model(run)?;
    let csv = model.predict_file(data)?.to_csv()?;
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

/// What `nabla sample` draws.
pub struct SampleOptions {
    /// Samples (GAN) or characters (text); `None`: 64 or 500.
    pub n: Option<usize>,
    pub seed: u64,
    /// A character model's prompt.
    pub prompt: Option<String>,
    /// A character model's temperature.
    pub temperature: f64,
}

/// Samples of a run: a GAN's generator as CSV (the training file's feature columns and
/// units), or a character model's text after a prompt; to `output` (written atomically) or to
/// `out`.
pub fn sample(
    run: &Path,
    how: &SampleOptions,
    output: Option<&Path>,
    out: &mut dyn Write,
) -> Result<()> {
    let bytes = if nabla_train::experiment::is_gan_run(run)? {
        if how.prompt.is_some() {
            return Err(anyhow::anyhow!(
                "--prompt is for character models; {} is a GAN run, which samples from noise",
                run.display()
            ));
        }
        nabla_train::gan::run::sample_csv(run, how.n.unwrap_or(64), how.seed)?
    } else {
        let mut text = nabla_train::text::sample(
            run,
            how.prompt.as_deref(),
            how.n.unwrap_or(500),
            how.temperature,
            how.seed,
        )?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text.into_bytes()
    };
    match output {
        Some(path) => write_atomic(path, &bytes)?,
        None => out.write_all(&bytes)?,
    }
    Ok(())
}

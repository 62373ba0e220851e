//! A GAN config (`[gan]`) turned into a run directory, as [`crate::experiment`] does for a
//! model of the targets: the data read, split and preprocessed the same way, both networks and
//! both optimizers built and checked, checkpoints committed as it trains (the weights of both
//! networks in `model.safetensors` under `generator.` and `discriminator.`, the generator's
//! optimizer in `optimizer.safetensors`, the discriminator's in
//! `discriminator_optimizer.safetensors`), resumable bit-exactly, and a report with the losses,
//! the discriminator's outputs, the sample measures and a grid of samples beside real examples.

use super::quality::{RealReference, SampleQuality};
use super::{GanConfig, GanTrainer};
use crate::checkpoint::{optimizer_bytes, weights_bytes};
use crate::config::{
    Config, Located, OptimizerSpec, ScheduleSpec, build_gan, build_optimizer, build_schedule,
};
use crate::error::{Error, Result};
use crate::experiment::{
    PreparedData, Preprocessing, Progress, RunRecord, RunSummary, Splits, json_bytes,
    metrics_lines, prepare_data, read_json, restore_optimizer,
};
use crate::run_dir;
use crate::trainer::History;
use nabla_core::{Rng, Tensor, Var};
use nabla_data::Dataset;
use nabla_nn::ModuleExt;
use nabla_nn::layers::Sequential;
use nabla_nn::optim::Optimizer;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Everything a GAN config describes, built and checked: nothing has trained yet.
pub struct GanExperiment {
    pub config: Config,
    pub preprocessing: Preprocessing,
    pub data: Splits,
    pub generator: Sequential,
    pub discriminator: Sequential,
    pub generator_optimizer: Box<dyn Optimizer>,
    pub discriminator_optimizer: Box<dyn Optimizer>,
    pub gan: GanConfig,
}

/// How the final generator's samples compare with real data (saved in `history.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GanOutcome {
    /// The held-out split the yardsticks come from (`test` or `validation`), if any.
    pub split: Option<String>,
    /// The final generator's samples (of the fixed noise).
    pub samples: SampleQuality,
    /// That split's real examples measured the same way (their class entropy is what evenly
    /// covering samples reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<SampleQuality>,
}

impl GanExperiment {
    /// The training loop over this experiment's networks and optimizers, continuing `history`
    /// (empty for a fresh run) and measuring samples against `reference`; with the data it
    /// trains on, borrowed beside it.
    pub fn trainer(
        &mut self,
        history: History,
        reference: Option<RealReference>,
    ) -> Result<(GanTrainer<'_>, &Splits)> {
        let trainer = GanTrainer::new(
            &self.generator,
            &self.discriminator,
            self.generator_optimizer.as_mut(),
            self.discriminator_optimizer.as_mut(),
            &self.gan,
            history,
            reference,
        )?;
        Ok((trainer, &self.data))
    }

    /// Both networks' parameters and buffers, under `generator.` and `discriminator.`.
    pub fn state_vars(&self) -> Vec<(String, Var)> {
        state_vars(&self.generator, &self.discriminator)
    }

    /// The real data the samples are measured against: the training split, with the test
    /// (else validation) split as the yardstick.
    pub fn reference(&self) -> Result<Option<RealReference>> {
        if self.gan.measure_samples == 0 || self.data.train.len() < 2 {
            return Ok(None);
        }
        let classes = self.preprocessing.schema.classes.len();
        let labels: Option<Vec<usize>> = match self.data.train.labels() {
            Some(l) if classes > 1 => Some(l.iter().map(|&c| c.max(0) as usize).collect()),
            _ => None,
        };
        let held_out = held_out(&self.data).map(|(_, d)| d.x());
        Ok(Some(RealReference::new(
            self.data.train.x(),
            labels.as_deref().map(|l| (l, classes)),
            held_out,
            self.config.seed,
        )?))
    }
}

/// What `model.safetensors` holds for a GAN: both networks' parameters and buffers, under
/// `generator.` and `discriminator.` (as PyTorch names the submodules of one module).
fn state_vars(generator: &Sequential, discriminator: &Sequential) -> Vec<(String, Var)> {
    let mut vars = super::under("generator", generator.state_vars());
    vars.extend(super::under("discriminator", discriminator.state_vars()));
    vars
}

/// The split held out for the yardsticks: test, else validation.
fn held_out(data: &Splits) -> Option<(&'static str, &Dataset)> {
    match (&data.test, &data.valid) {
        (Some(t), _) => Some(("test", t)),
        (None, Some(v)) => Some(("validation", v)),
        (None, None) => None,
    }
}

/// Reads the data and builds both networks and optimizers of a GAN config, checking
/// everything first: an error names the config key (and its line).
pub fn prepare(l: &Located) -> Result<GanExperiment> {
    let config = &l.config;
    let err = |key: &str, message: &str| Error::Config(l.error(key, message));
    let Some(spec) = &config.gan else {
        return Err(err("gan", "is missing: this is not a GAN config"));
    };
    // What a GAN fixes or keeps per network, set at the top level, would be silently ignored.
    let misplaced = [
        (
            "model",
            !config.model.is_empty(),
            "a GAN's networks are gan.generator and gan.discriminator: remove [model]",
        ),
        (
            "loss",
            config.loss.is_some(),
            "a GAN's losses are fixed (the discriminator's binary cross-entropy; the \
             generator's is gan.generator_loss): remove it",
        ),
        (
            "optimizer",
            l.is_set("optimizer"),
            "each network of a GAN has its own: set gan.generator.optimizer and \
             gan.discriminator.optimizer (default: Adam, lr 2e-4, betas [0.5, 0.999])",
        ),
        (
            "schedule",
            l.is_set("schedule"),
            "each network of a GAN has its own: set gan.generator.schedule and \
             gan.discriminator.schedule (default: constant)",
        ),
        (
            "data.reconstruct",
            config.data.reconstruct,
            "is for autoencoders; a GAN generates examples like the inputs already",
        ),
        (
            "data.scale_target",
            config.data.scale_target,
            "a GAN does not generate the target column",
        ),
        (
            "data.sequence",
            config.data.sequence.is_some(),
            "GANs over sequences are not supported",
        ),
        (
            "data.series",
            config.data.series.is_some(),
            "GANs over time series are not supported",
        ),
        (
            "data.text",
            config.data.text.is_some(),
            "GANs over text are not supported (a character model is a [model] with data.text)",
        ),
        (
            "train.l1",
            config.train.l1 != 0.0,
            "is not supported for GANs",
        ),
        (
            "train.l2",
            config.train.l2 != 0.0,
            "is not supported for GANs",
        ),
        (
            "train.sparsity",
            config.train.sparsity.is_some(),
            "is not supported for GANs",
        ),
        (
            "train.early_stopping",
            config.train.early_stopping.is_some(),
            "a GAN has no validation loss to stop on: set train.epochs",
        ),
        (
            "train.warmup_epochs",
            config.train.warmup_epochs != 0,
            "is not supported for GANs",
        ),
        (
            "train.clip_grad_value",
            config.train.clip_grad_value.is_some(),
            "is not supported for GANs: use train.clip_grad_norm",
        ),
    ];
    if let Some((key, _, message)) = misplaced.iter().find(|(_, set, _)| *set) {
        return Err(err(key, message));
    }
    let checks = [
        (
            "train.epochs",
            config.train.epochs == 0,
            "must be at least 1",
        ),
        (
            "train.batch_size",
            config.train.batch_size == 0,
            "must be at least 1",
        ),
        (
            "gan.discriminator_steps",
            spec.discriminator_steps == 0,
            "must be at least 1",
        ),
        (
            "gan.real_label",
            !(spec.real_label > 0.0 && spec.real_label <= 1.0),
            "must be in (0, 1] (1, or 0.9 for one-sided label smoothing)",
        ),
        (
            "gan.samples",
            spec.samples == 1,
            "must be 0 (no measures) or at least 2",
        ),
    ];
    if let Some((key, _, message)) = checks.iter().find(|(_, bad, _)| *bad) {
        return Err(err(key, message));
    }
    if let Some(c) = config.train.clip_grad_norm
        && !(c.is_finite() && c > 0.0)
    {
        return Err(err("train.clip_grad_norm", "must be finite and > 0"));
    }
    let PreparedData {
        preprocessing,
        splits,
        ..
    } = prepare_data(l, None)?;
    let located = |(key, message): crate::config::KeyError| Error::Config(l.error(&key, message));
    let mut rng = Rng::seed(config.seed);
    let (generator, discriminator) =
        build_gan(spec, &preprocessing.input_shape(), &mut rng).map_err(located)?;
    let optimizer = |key: &str, spec: &OptimizerSpec| {
        build_optimizer(spec).map_err(|(k, m)| {
            // build_optimizer names `optimizer.*`; here it is the network's.
            let k = k.replacen("optimizer", &format!("{key}.optimizer"), 1);
            Error::Config(l.error(&k, m))
        })
    };
    let schedule = |key: &str, network: &crate::config::NetworkSpec| {
        if matches!(network.schedule, ScheduleSpec::ReduceOnPlateau { .. }) {
            return Err(err(
                &format!("{key}.schedule"),
                "reduce_on_plateau watches a validation loss, which a GAN does not have: use \
                 step, exponential, inverse or cosine",
            ));
        }
        let built = build_schedule(&network.schedule, &config.train).map_err(|(k, m)| {
            // build_schedule names `schedule`; here it is the network's.
            let k = k.replacen("schedule", &format!("{key}.schedule"), 1);
            Error::Config(l.error(&k, m))
        })?;
        Ok((built, network.optimizer.lr()))
    };
    let schedules = [
        schedule("gan.generator", &spec.generator)?,
        schedule("gan.discriminator", &spec.discriminator)?,
    ];
    let gan = GanConfig {
        epochs: config.train.epochs,
        batch_size: config.train.batch_size,
        seed: config.seed,
        latent: spec.latent,
        noise: spec.noise,
        discriminator_steps: spec.discriminator_steps,
        real_label: spec.real_label,
        generator_loss: spec.generator_loss,
        clip_grad_norm: config.train.clip_grad_norm,
        measure_samples: spec.samples,
        doctor: config.diagnostics.enabled,
        schedules: Some(schedules),
        verbose: false,
    };
    Ok(GanExperiment {
        generator_optimizer: optimizer("gan.generator", &spec.generator.optimizer)?,
        discriminator_optimizer: optimizer("gan.discriminator", &spec.discriminator.optimizer)?,
        config: config.clone(),
        preprocessing,
        data: splits,
        generator,
        discriminator,
        gan,
    })
}

/// Trains a prepared GAN into `dir` (which must not hold another run), committing checkpoints
/// as it goes.
pub fn train(exp: GanExperiment, dir: &Path, progress: Progress) -> Result<RunSummary> {
    crate::experiment::in_new_run_dir(dir, || train_from(exp, dir, RunRecord::default(), progress))
}

/// The GAN of a run directory, with the saved weights of both networks loaded (the data read
/// again with the same seed: the same splits and preprocessing).
pub fn open(dir: &Path) -> Result<GanExperiment> {
    let l = crate::config::load(&dir.join(run_dir::CONFIG), &[])?;
    let exp = prepare(&l)?;
    crate::experiment::check_same_data(dir, &exp.preprocessing)?;
    crate::checkpoint::load_weights(&dir.join(run_dir::MODEL), &exp.state_vars())?;
    Ok(exp)
}

/// Continues the GAN run in `dir` from its last checkpoint (bit-exactly as if it had never
/// stopped), or reports it finished.
pub fn resume(dir: &Path, progress: Progress) -> Result<RunSummary> {
    run_dir::open(dir)?;
    let record: RunRecord = read_json(&dir.join(run_dir::HISTORY))?;
    let mut exp = open(dir)?;
    if record.finished {
        if !dir.join(run_dir::REPORT).is_file() {
            write_report(dir, &exp)?;
        }
        return Ok(RunSummary {
            dir: dir.to_path_buf(),
            record,
        });
    }
    restore_optimizer(
        &dir.join(run_dir::OPTIMIZER),
        exp.generator_optimizer.as_mut(),
    )?;
    restore_optimizer(
        &dir.join(run_dir::DISCRIMINATOR_OPTIMIZER),
        exp.discriminator_optimizer.as_mut(),
    )?;
    train_from(exp, dir, record, progress)
}

fn train_from(
    mut exp: GanExperiment,
    dir: &Path,
    mut record: RunRecord,
    progress: Progress,
) -> Result<RunSummary> {
    exp.gan.verbose = progress.verbose;
    let vars = exp.state_vars();
    let reference = exp.reference()?;
    let started = std::time::Instant::now();
    let seconds_before = record.train_seconds;
    let config_toml = exp
        .config
        .to_toml()
        .map_err(|e| Error::Invalid(format!("config: {e}")))?;
    let preprocessing = json_bytes(&exp.preprocessing)?;
    let every = exp.config.train.checkpoint_seconds;
    let outcome = {
        let (mut trainer, data) =
            exp.trainer(std::mem::take(&mut record.history), reference.clone())?;
        let mut last_commit: Option<std::time::Instant> = None;
        while !trainer.is_finished() {
            trainer.run_epoch(&data.train)?;
            if last_commit.is_some_and(|t| t.elapsed().as_secs_f64() < every)
                && !trainer.is_finished()
            {
                continue;
            }
            last_commit = Some(std::time::Instant::now());
            record.history = trainer.history().clone();
            record.train_seconds = seconds_before + started.elapsed().as_secs_f64();
            let files: Vec<(&str, Vec<u8>)> = vec![
                (run_dir::MODEL, weights_bytes(&vars)?),
                (
                    run_dir::OPTIMIZER,
                    optimizer_bytes(
                        trainer.generator_optimizer().name(),
                        &trainer.generator_optimizer().state(),
                    )?,
                ),
                (
                    run_dir::DISCRIMINATOR_OPTIMIZER,
                    optimizer_bytes(
                        trainer.discriminator_optimizer().name(),
                        &trainer.discriminator_optimizer().state(),
                    )?,
                ),
                (run_dir::HISTORY, json_bytes(&record)?),
                (run_dir::METRICS, metrics_lines(&record.history)),
                (run_dir::CONFIG, config_toml.clone().into_bytes()),
                (run_dir::PREPROCESSING, preprocessing.clone()),
            ];
            run_dir::commit(dir, &files)?;
        }
        let outcome = match (trainer.measure()?, &reference) {
            (Some(samples), Some(reference)) => Some(GanOutcome {
                split: held_out(data).map(|(s, _)| s.to_string()),
                samples,
                real: held_out(data)
                    .map(|(_, d)| reference.measure(d.x()))
                    .transpose()?,
            }),
            _ => None,
        };
        record.history = trainer.finish();
        outcome
    };
    record.finished = true;
    record.train_seconds = seconds_before + started.elapsed().as_secs_f64();
    record.gan = outcome;
    run_dir::commit(
        dir,
        &[
            (run_dir::HISTORY, json_bytes(&record)?),
            (run_dir::METRICS, metrics_lines(&record.history)),
        ],
    )?;
    write_report(dir, &exp)?;
    Ok(RunSummary {
        dir: dir.to_path_buf(),
        record,
    })
}

/// Rows shown in the report's grid: 4 rows of 12 samples.
const GRID_SAMPLES: usize = 48;

/// The report's picture of a GAN: samples of the fixed noise under a row of real examples.
pub fn samples_evaluation(exp: &GanExperiment) -> Result<crate::report::Evaluation> {
    let z = exp.gan.fixed_noise(GRID_SAMPLES)?;
    let samples = exp.generator.predict(&z)?;
    let (split, real) = match held_out(&exp.data) {
        Some((s, d)) => (s, d),
        None => ("training", &exp.data.train),
    };
    let real = real.x().narrow(0, 0, 12.min(real.len()))?;
    Ok(crate::report::Evaluation::Samples(
        crate::report::ImageRows {
            split: split.to_string(),
            image: crate::autoencoder::square_image(&exp.preprocessing.input_shape()),
            real: rows(&real),
            generated: rows(&samples),
        },
    ))
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let width = (t.elem_count() / t.dims()[0].max(1)).max(1);
    t.to_vec_f64().chunks(width).map(<[f64]>::to_vec).collect()
}

/// Writes (atomically) the report of the GAN run in `dir`, for an experiment holding its
/// final weights.
pub fn write_report(dir: &Path, exp: &GanExperiment) -> Result<std::path::PathBuf> {
    crate::experiment::write_report_with(dir, Some(samples_evaluation(exp)?))
}

/// `n` samples of a GAN run's generator as CSV, from noise drawn with `seed`: one row per
/// sample, in the training file's feature columns and units (the scaling undone), or, when the
/// scaling has no inverse (PCA whitening), in the whitened components (`component_i`).
pub fn sample_csv(dir: &Path, n: usize, seed: u64) -> Result<Vec<u8>> {
    let (samples, preprocessing) = sample(dir, n, seed)?;
    let width = preprocessing.preprocessor.output_width().max(1);
    let scaled = samples.to_vec_f64();
    let (header, values) = match preprocessing.preprocessor.inverse_transform(&scaled) {
        Some(v) => (preprocessing.schema.encoded_names(), v),
        None => (
            (0..width).map(|i| format!("component_{i}")).collect(),
            scaled,
        ),
    };
    let err = |e: ::csv::Error| Error::Invalid(format!("writing samples: {e}"));
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(&header).map_err(err)?;
    for row in values.chunks(width) {
        w.write_record(row.iter().map(|v| format!("{v:.6}")))
            .map_err(err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Invalid(format!("writing samples: {e}")))
}

/// `n` samples `[n, ...example]` of a GAN run's generator, from noise drawn with `seed`, in the
/// preprocessed units the networks work in (the data is not read), and the run's
/// preprocessing.
pub fn sample(dir: &Path, n: usize, seed: u64) -> Result<(Tensor, Preprocessing)> {
    if n == 0 {
        return Err(Error::Invalid("sample: asks for 0 samples".into()));
    }
    run_dir::open(dir)?;
    let l = crate::config::load(&dir.join(run_dir::CONFIG), &[])?;
    let Some(spec) = &l.config.gan else {
        return Err(Error::Checkpoint {
            path: dir.to_path_buf(),
            message: "is not a GAN run (its config has no [gan])".into(),
        });
    };
    let preprocessing: Preprocessing = read_json(&dir.join(run_dir::PREPROCESSING))?;
    let (generator, discriminator) = build_gan(
        spec,
        &preprocessing.input_shape(),
        &mut Rng::seed(l.config.seed),
    )
    .map_err(|(k, m)| Error::Config(l.error(&k, m)))?;
    crate::checkpoint::load_weights(
        &dir.join(run_dir::MODEL),
        &state_vars(&generator, &discriminator),
    )?;
    let config = GanConfig {
        latent: spec.latent,
        noise: spec.noise,
        ..GanConfig::default()
    };
    let samples = super::generate(&generator, &config, n, &mut Rng::seed(seed))?;
    Ok((samples, preprocessing))
}

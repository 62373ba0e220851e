//! Generative adversarial networks (Goodfellow et al., 2014): a generator `G` maps noise `z` to
//! examples, a discriminator `D` (one logit: real or generated) learns to tell them from real
//! ones, and each trains against the other with its own optimizer, in alternating steps
//! (Goodfellow's Algorithm 1):
//!
//! - **discriminator step**, on a batch of real examples `x` and as many samples `G(z)`:
//!   `L_D = BCE(D(x), r) + BCE(D(G(z)), 0)`, with `r = 1` or, for one-sided label smoothing
//!   (Salimans et al., 2016), `r = 0.9`. The samples are generated without a graph: `D`'s step
//!   must not reach back into `G` (what PyTorch's `G(z).detach()` does).
//! - **generator step**, after every `discriminator_steps` discriminator steps, on fresh noise:
//!   the non-saturating loss `L_G = BCE(D(G(z)), 1) = −log D(G(z))`, or the original minimax
//!   loss `L_G = −BCE(D(G(z)), 0) = log(1 − D(G(z)))`, whose gradient vanishes while `D` wins
//!   easily (early in training), which is why the non-saturating one is the default. Only `G`'s
//!   parameters move; `D`'s gradients of this step are dropped.
//!
//! Each epoch records both losses, `D`'s mean output on real (`d_real`) and generated
//! (`d_fake`) examples, both networks' gradient norms, and measures of a fixed set of samples
//! ([`quality`]): their diversity (mode collapse shows as diversity near 0), their distance to
//! the data, and which classes they cover. The doctor ([`doctor`]) reads these records and
//! names a discriminator that wins outright or a collapse of the samples, with the remedy.

pub mod doctor;
pub mod quality;
pub mod run;

use crate::doctor::{EpochDiagnostics, Finding};
use crate::error::{Error, Result};
use crate::trainer::{EpochRecord, GradNormMeter, History, step_rng};
use nabla_core::{DType, Rng, Tensor, Var, with_no_grad};
use nabla_data::{DataLoader, Dataset};
use nabla_nn::clip::clip_to_norm;
use nabla_nn::optim::Optimizer;
use nabla_nn::schedule::LrSchedule;
use nabla_nn::{Ctx, Module, ModuleExt};
use quality::{RealReference, SampleQuality};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The distribution of the generator's input noise `z`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatentNoise {
    /// `N(0, I)`.
    #[default]
    Normal,
    /// Uniform on `[−1, 1]` per coordinate.
    Uniform,
}

/// What the generator minimizes (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeneratorLoss {
    /// `−log D(G(z))`: strong gradients while `D` rejects the samples.
    #[default]
    NonSaturating,
    /// `log(1 − D(G(z)))`, Goodfellow's original minimax game; saturates early in training.
    Minimax,
}

/// How a GAN is trained.
#[derive(Debug, Clone, PartialEq)]
pub struct GanConfig {
    pub epochs: usize,
    /// Real examples per discriminator step (and samples per step of either network).
    pub batch_size: usize,
    /// Seeds the batch order, the noise and dropout (the same seed gives the same run).
    pub seed: u64,
    /// The width of the noise `z`.
    pub latent: usize,
    pub noise: LatentNoise,
    /// Discriminator steps per generator step (Goodfellow's `k`).
    pub discriminator_steps: usize,
    /// The discriminator's target for real examples: 1, or below 1 for one-sided label
    /// smoothing.
    pub real_label: f64,
    pub generator_loss: GeneratorLoss,
    /// Rescale each network's gradients when their global L2 norm exceeds this.
    pub clip_grad_norm: Option<f64>,
    /// Samples measured after each epoch (0: none); see [`quality`].
    pub measure_samples: usize,
    /// Whether the doctor ([`doctor`]) reads each epoch's record.
    pub doctor: bool,
    /// The generator's and the discriminator's learning-rate schedules with the base rates
    /// they scale, applied at the start of each epoch (`None`: the optimizer's rate is left
    /// as it is).
    pub schedules: Option<[(LrSchedule, f64); 2]>,
    /// One line per epoch on stderr.
    pub verbose: bool,
}

impl Default for GanConfig {
    fn default() -> Self {
        GanConfig {
            epochs: 100,
            batch_size: 64,
            seed: 0,
            latent: 32,
            noise: LatentNoise::Normal,
            discriminator_steps: 1,
            real_label: 1.0,
            generator_loss: GeneratorLoss::NonSaturating,
            clip_grad_norm: None,
            measure_samples: 500,
            doctor: true,
            schedules: None,
            verbose: false,
        }
    }
}

impl GanConfig {
    /// Checks the settings, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::Invalid(format!("gan: {what}")));
        if self.epochs == 0 {
            return bad("needs at least one epoch");
        }
        if self.batch_size == 0 {
            return bad("batch_size must be at least 1");
        }
        if self.latent == 0 {
            return bad("latent must be at least 1");
        }
        if self.discriminator_steps == 0 {
            return bad("discriminator_steps must be at least 1");
        }
        if !(self.real_label > 0.0 && self.real_label <= 1.0) {
            return bad(&format!(
                "real_label must be in (0, 1], got {}",
                self.real_label
            ));
        }
        if let Some(c) = self.clip_grad_norm
            && !(c.is_finite() && c > 0.0)
        {
            return bad(&format!("clip_grad_norm must be finite and > 0, got {c}"));
        }
        if self.measure_samples == 1 {
            return bad("measuring samples needs 0 (none) or at least 2");
        }
        Ok(())
    }

    /// `n` noise vectors `[n, latent]`.
    pub fn noise(&self, n: usize, rng: &mut Rng) -> Result<Tensor> {
        Ok(match self.noise {
            LatentNoise::Normal => Tensor::randn([n, self.latent], 0.0, 1.0, DType::F32, rng)?,
            LatentNoise::Uniform => {
                Tensor::rand_uniform([n, self.latent], -1.0, 1.0, DType::F32, rng)?
            }
        })
    }

    /// The noise the per-epoch measures and the report's grid use: the same every epoch (and
    /// in every session of a resumed run), so that they show the generator changing, not the
    /// draw.
    pub fn fixed_noise(&self, n: usize) -> Result<Tensor> {
        self.noise(n, &mut Rng::seed(self.seed ^ 0xF1ED_0015_E5EE_D000))
    }
}

/// `n` samples of `generator` (evaluation mode, no graph) from noise drawn with `rng`.
pub fn generate(
    generator: &dyn Module,
    config: &GanConfig,
    n: usize,
    rng: &mut Rng,
) -> Result<Tensor> {
    let z = config.noise(n, rng)?;
    Ok(generator.predict(&z)?)
}

/// Named variables of one network, named under `prefix` (`"generator.0.weight"`), as PyTorch
/// names the submodules of one module.
pub(crate) fn under(prefix: &str, vars: Vec<(String, Var)>) -> Vec<(String, Var)> {
    vars.into_iter()
        .map(|(n, v)| (format!("{prefix}.{n}"), v))
        .collect()
}

/// One network's side of the game: its parameters, its optimizer, and what an epoch averages.
struct Player<'a> {
    optimizer: &'a mut dyn Optimizer,
    params: Vec<(String, Var)>,
    vars: Vec<Var>,
    grad_norms: GradNormMeter,
    loss_sum: f64,
}

impl<'a> Player<'a> {
    fn new(module: &dyn Module, prefix: &str, optimizer: &'a mut dyn Optimizer) -> Self {
        let params = under(prefix, module.named_parameters());
        Player {
            optimizer,
            vars: params.iter().map(|(_, v)| v.clone()).collect(),
            grad_norms: GradNormMeter::new(&params),
            params,
            loss_sum: 0.0,
        }
    }

    /// Backpropagates `loss`, clips, and steps this network's optimizer (gradients that reach
    /// the other network are dropped).
    fn step(&mut self, loss: &Tensor, value: f64, clip: Option<f64>) -> Result<()> {
        let mut grads = loss.backward()?;
        let global = self.grad_norms.add(&grads, &self.vars);
        if let Some(max) = clip {
            clip_to_norm(&mut grads, &self.vars, max, global)?;
        }
        self.optimizer.step(&self.params, &grads)?;
        self.loss_sum += value;
        Ok(())
    }

    /// Steps taken this epoch.
    fn steps(&self) -> usize {
        self.grad_norms.steps()
    }

    /// The epoch's mean loss, mean global gradient norm and per-layer norms; then a fresh
    /// epoch.
    fn take_means(&mut self) -> (f64, f64, BTreeMap<String, f64>) {
        let out = (
            self.loss_sum / self.steps().max(1) as f64,
            self.grad_norms.mean_global(),
            self.grad_norms.layer_means(),
        );
        self.loss_sum = 0.0;
        self.grad_norms.reset();
        out
    }
}

/// GAN training one epoch at a time (a run directory commits a checkpoint between epochs).
pub struct GanTrainer<'a> {
    generator: &'a dyn Module,
    discriminator: &'a dyn Module,
    g: Player<'a>,
    d: Player<'a>,
    config: &'a GanConfig,
    history: History,
    loader: DataLoader,
    reference: Option<RealReference>,
    fixed_noise: Option<Tensor>,
}

impl<'a> GanTrainer<'a> {
    /// A loop that continues `history` (empty for a fresh run), with the generator's and the
    /// discriminator's optimizers. `reference` (real data) enables the per-epoch sample
    /// measures.
    pub fn new(
        generator: &'a dyn Module,
        discriminator: &'a dyn Module,
        generator_optimizer: &'a mut dyn Optimizer,
        discriminator_optimizer: &'a mut dyn Optimizer,
        config: &'a GanConfig,
        history: History,
        reference: Option<RealReference>,
    ) -> Result<GanTrainer<'a>> {
        config.validate()?;
        let fixed_noise = match (&reference, config.measure_samples) {
            (Some(_), n) if n >= 2 => Some(config.fixed_noise(n)?),
            _ => None,
        };
        let mut history = history;
        history
            .base_learning_rate
            .get_or_insert(generator_optimizer.learning_rate());
        Ok(GanTrainer {
            generator,
            discriminator,
            g: Player::new(generator, "generator", generator_optimizer),
            d: Player::new(discriminator, "discriminator", discriminator_optimizer),
            config,
            history,
            loader: DataLoader::new(config.batch_size, config.seed)?,
            reference,
            fixed_noise,
        })
    }

    /// Whether every epoch has run.
    pub fn is_finished(&self) -> bool {
        self.history.epochs.len() >= self.config.epochs
    }

    /// The record so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The generator's optimizer (to save its state between epochs).
    pub fn generator_optimizer(&self) -> &dyn Optimizer {
        &*self.g.optimizer
    }

    /// The discriminator's optimizer.
    pub fn discriminator_optimizer(&self) -> &dyn Optimizer {
        &*self.d.optimizer
    }

    /// Ends training and returns the history.
    pub fn finish(self) -> History {
        self.history
    }

    /// The samples of the fixed noise and their measures, with the current generator.
    pub fn measure(&self) -> Result<Option<SampleQuality>> {
        match (&self.reference, &self.fixed_noise) {
            (Some(reference), Some(z)) => Ok(Some(reference.measure(&self.generator.predict(z)?)?)),
            _ => Ok(None),
        }
    }

    /// Runs one epoch over the real examples of `train` (its targets are not used): a
    /// discriminator step per batch, and a generator step after every `discriminator_steps`
    /// of them.
    pub fn run_epoch(&mut self, train: &Dataset) -> Result<&EpochRecord> {
        let config = self.config;
        if train.is_empty() {
            return Err(Error::Invalid(
                "gan: needs at least one real training example".into(),
            ));
        }
        if self.is_finished() {
            return Err(Error::Invalid("gan: training has already finished".into()));
        }
        let epoch = self.history.epochs.len();
        if let Some([(g, g_base), (d, d_base)]) = &config.schedules {
            // No validation loss in a GAN: plateau schedules are refused by the config.
            self.g
                .optimizer
                .set_learning_rate(g.learning_rate(*g_base, epoch, &[]));
            self.d
                .optimizer
                .set_learning_rate(d.learning_rate(*d_base, epoch, &[]));
        }
        let batches = self.loader.batches_per_epoch(train.len());
        let first_step = (epoch * batches) as u64;
        let (mut d_real_sum, mut d_fake_sum, mut d_rows) = (0.0, 0.0, 0usize);
        for (step, batch) in (first_step..).zip(self.loader.epoch(train, epoch as u64)) {
            let (x, _) = batch?;
            let rows = x.dims()[0];
            let mut rng = step_rng(config.seed, step);
            let z = config.noise(rows, &mut rng)?;
            let d = self.discriminator_step(&x, &z, &mut rng)?;
            finite(d.loss, "discriminator", epoch, step)?;
            d_real_sum += d.real_sum;
            d_fake_sum += d.fake_sum;
            d_rows += rows;
            // Counted over the whole run, so that k steps need not fit in one epoch.
            if (step + 1) % config.discriminator_steps as u64 == 0 {
                let z = config.noise(rows, &mut rng)?;
                let g_loss = self.generator_step(&z, &mut rng)?;
                finite(g_loss, "generator", epoch, step)?;
            }
        }
        let (d_loss, d_grad, d_layers) = self.d.take_means();
        let g_steps = self.g.steps();
        let (g_loss, g_grad, g_layers) = self.g.take_means();
        let mut metrics = BTreeMap::from([
            ("d_loss".to_string(), d_loss),
            ("d_real".to_string(), d_real_sum / d_rows.max(1) as f64),
            ("d_fake".to_string(), d_fake_sum / d_rows.max(1) as f64),
            ("d_grad_norm".to_string(), d_grad),
        ]);
        if g_steps > 0 {
            metrics.insert("g_loss".into(), g_loss);
            metrics.insert("g_grad_norm".into(), g_grad);
        }
        let samples = self.measure()?.map(|q| q.to_metrics());
        let record = EpochRecord {
            epoch,
            learning_rate: self.g.optimizer.learning_rate(),
            train: metrics,
            valid: None,
            grad_norm: g_grad,
            layer_grad_norms: g_layers.into_iter().chain(d_layers).collect(),
            diagnostics: None,
            samples,
        };
        if config.verbose {
            eprintln!("{}", format_record(&record, config.epochs));
        }
        self.history.epochs.push(record);
        if config.doctor {
            let last_step = first_step + batches as u64 - 1;
            self.diagnose(last_step);
        }
        Ok(self.history.epochs.last().expect("just pushed"))
    }

    /// Runs the GAN doctor's rules over the records so far and keeps in the last one the
    /// findings not reported before (printed when verbose).
    fn diagnose(&mut self, last_step: u64) {
        // The remedies compare and set the configured rates (a schedule's bases), not this
        // epoch's scheduled ones.
        let (generator_lr, discriminator_lr) = match &self.config.schedules {
            Some([(_, g), (_, d)]) => (*g, *d),
            None => (
                self.g.optimizer.learning_rate(),
                self.d.optimizer.learning_rate(),
            ),
        };
        let settings = doctor::GanSettings {
            config: self.config,
            generator_lr,
            discriminator_lr,
            last_step,
            classes: self.reference.as_ref().and_then(RealReference::classes),
        };
        let epochs = &self.history.epochs;
        let reported = crate::doctor::reported(epochs);
        let findings: Vec<Finding> = doctor::evaluate(epochs, &settings)
            .into_iter()
            .filter(|f| !reported.contains(&f.key()))
            .collect();
        if self.config.verbose {
            for f in &findings {
                eprintln!("{}", crate::doctor::describe(f));
            }
        }
        if let Some(last) = self.history.epochs.last_mut() {
            last.diagnostics = Some(EpochDiagnostics {
                findings,
                ..EpochDiagnostics::default()
            });
        }
    }
}

/// What a discriminator step saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscriminatorStep {
    /// `L_D` of the batch (before the step).
    pub loss: f64,
    /// Sums over the batch of `D(x)` on the real examples and of `D(G(z))` on the samples.
    pub real_sum: f64,
    pub fake_sum: f64,
}

impl GanTrainer<'_> {
    /// One discriminator step on real examples `x` and samples of noise `z` (as many rows),
    /// dropout and noise layers drawing from `rng`: the samples come without a graph, so that
    /// nothing reaches back into the generator. A non-finite loss is not stepped on.
    pub fn discriminator_step(
        &mut self,
        x: &Tensor,
        z: &Tensor,
        rng: &mut Rng,
    ) -> Result<DiscriminatorStep> {
        let rows = x.dims()[0];
        let mut g_ctx = Ctx::train(rng.fork());
        let fake = with_no_grad(|| self.generator.forward(z, &mut g_ctx))?;
        let mut d_ctx = Ctx::train(rng.fork());
        let real_logits = self.discriminator.forward(x, &mut d_ctx)?;
        let fake_logits = self.discriminator.forward(&fake, &mut d_ctx)?;
        check_logits(&real_logits, rows)?;
        let loss = bce_logits(&real_logits, self.config.real_label)?
            .add(&bce_logits(&fake_logits, 0.0)?)?;
        let value = loss.to_scalar_f64()?;
        let seen = DiscriminatorStep {
            loss: value,
            real_sum: real_logits.sigmoid()?.sum_all()?.to_scalar_f64()?,
            fake_sum: fake_logits.sigmoid()?.sum_all()?.to_scalar_f64()?,
        };
        if value.is_finite() {
            self.d.step(&loss, value, self.config.clip_grad_norm)?;
        }
        Ok(seen)
    }

    /// One generator step on noise `z`, through the discriminator as it is now; returns `L_G`
    /// (before the step). Only the generator's parameters move. A non-finite loss is not
    /// stepped on.
    pub fn generator_step(&mut self, z: &Tensor, rng: &mut Rng) -> Result<f64> {
        let mut g_ctx = Ctx::train(rng.fork());
        let fake = self.generator.forward(z, &mut g_ctx)?;
        let mut d_ctx = Ctx::train(rng.fork());
        let logits = self.discriminator.forward(&fake, &mut d_ctx)?;
        check_logits(&logits, z.dims()[0])?;
        let loss = match self.config.generator_loss {
            GeneratorLoss::NonSaturating => bce_logits(&logits, 1.0)?,
            GeneratorLoss::Minimax => bce_logits(&logits, 0.0)?.neg()?,
        };
        let value = loss.to_scalar_f64()?;
        if value.is_finite() {
            self.g.step(&loss, value, self.config.clip_grad_norm)?;
        }
        Ok(value)
    }
}

/// Mean binary cross-entropy of logits against one target for every row.
fn bce_logits(logits: &Tensor, target: f64) -> Result<Tensor> {
    let y = Tensor::full(logits.dims().to_vec(), target, logits.dtype());
    Ok(logits.binary_cross_entropy_with_logits(&y, Default::default())?)
}

/// The discriminator must give one logit per example.
fn check_logits(logits: &Tensor, rows: usize) -> Result<()> {
    if logits.dims() != [rows, 1] {
        return Err(Error::Invalid(format!(
            "gan: the discriminator must map a batch of {rows} examples to [{rows}, 1] (one \
             logit each: end it with a linear layer of 1 unit, no sigmoid), got {:?}",
            logits.dims()
        )));
    }
    Ok(())
}

fn finite(value: f64, network: &str, epoch: usize, step: u64) -> Result<f64> {
    if value.is_finite() {
        return Ok(value);
    }
    Err(Error::Diverged {
        epoch: epoch + 1,
        step,
        loss: value,
        trace: format!("in the {network}'s loss"),
    })
}

fn format_record(r: &EpochRecord, epochs: usize) -> String {
    let get = |k: &str| r.train.get(k).copied().unwrap_or(f64::NAN);
    let mut line = format!(
        "epoch {:>3}/{epochs}  d_loss {:.4}  g_loss {:.4}  D(x) {:.3}  D(G(z)) {:.3}",
        r.epoch + 1,
        get("d_loss"),
        get("g_loss"),
        get("d_real"),
        get("d_fake"),
    );
    if let Some(s) = &r.samples {
        line += &format!(
            "  | samples: diversity {:.3}  nearest {:.3}",
            s.get("diversity").copied().unwrap_or(f64::NAN),
            s.get("nearest_distance").copied().unwrap_or(f64::NAN)
        );
        if let (Some(c), Some(e)) = (s.get("classes_covered"), s.get("class_entropy")) {
            line += &format!("  classes {c} (entropy {e:.3})");
        }
    }
    line
}

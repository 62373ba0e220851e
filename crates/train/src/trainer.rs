//! The training loop (Keras' `fit`, PyTorch-exact underneath): epochs of seeded mini-batches,
//! forward, loss, backward, clipping, optimizer step; per-epoch metrics on the training and
//! validation data, a learning-rate schedule, early stopping with best-weight restore,
//! callbacks, and a JSON-lines metrics log.

use crate::doctor::{Doctor, EpochDiagnostics, Finding, Problem};
use crate::error::{Error, Result, io};
use crate::metrics::{MetricAccumulator, OutputKind};
use nabla_core::{Rng, Tensor, Var, with_no_grad};
use nabla_data::{DataLoader, Dataset};
use nabla_nn::clip::{clip_grad_value, clip_to_norm, grad_norms};
use nabla_nn::loss::{ActivityPenalty, Loss};
use nabla_nn::optim::Optimizer;
use nabla_nn::schedule::{LrSchedule, Schedule};
use nabla_nn::{CarriedState, Ctx, Module, ModuleExt};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// Stop when the monitored loss (validation, or training without validation data) has not
/// improved by `min_delta` for `patience` epochs.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyStopping {
    pub patience: usize,
    pub min_delta: f64,
    /// Put back the weights of the best epoch when training ends.
    pub restore_best: bool,
}

/// How a model is trained.
#[derive(Debug, Clone)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// Seeds the batch order and dropout masks (the same seed gives the same run).
    pub seed: u64,
    pub loss: Loss,
    pub schedule: LrSchedule,
    pub clip_grad_norm: Option<f64>,
    pub clip_grad_value: Option<f64>,
    /// L2 and L1 penalties on the weight matrices (parameters of rank 2 or more: not biases
    /// or normalization scales), added to each batch's loss for the gradient; the reported
    /// loss is the data loss alone.
    pub l2: f64,
    pub l1: f64,
    /// A sparsity penalty on a hidden layer's output (sparse autoencoders), added to each
    /// batch's loss for the gradient like `l1` and `l2`.
    pub activity: Option<ActivityPenalty>,
    pub early_stopping: Option<EarlyStopping>,
    /// Append one JSON line per epoch to this file.
    pub metrics_log: Option<PathBuf>,
    /// Report progress on stderr: a progress bar over each epoch's batches when stderr is a
    /// terminal, and one line per epoch in any case.
    pub verbose: bool,
    /// `(mean, std)` of a standardized regression target: the loss is computed on the
    /// standardized values, the metrics (MAE, RMSE, R²) on `value · std + mean`, in the
    /// target's own units.
    pub target_scale: Option<(f64, f64)>,
    /// Truncated backpropagation through time across batches: the recurrent state each batch's
    /// pass ends in is where the next batch's pass starts (gradients stop at the batch), from a
    /// zero state at each epoch's start, and validation reads its batches the same way. The
    /// batches are not shuffled: row `r` of batch `j + 1` must continue row `r` of batch `j`
    /// (`TextSpec::stream_dataset` lays a text out so), and every batch must be full.
    pub carry_state: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            seed: 0,
            loss: Loss::CrossEntropy(Default::default()),
            schedule: Schedule::Constant.into(),
            clip_grad_norm: None,
            clip_grad_value: None,
            l2: 0.0,
            l1: 0.0,
            activity: None,
            early_stopping: None,
            metrics_log: None,
            verbose: false,
            target_scale: None,
            carry_state: false,
        }
    }
}

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochRecord {
    /// Counting from 0.
    pub epoch: usize,
    pub learning_rate: f64,
    /// Metrics over the epoch's training batches (as the weights changed during the epoch).
    pub train: BTreeMap<String, f64>,
    /// Metrics on the validation data after the epoch.
    pub valid: Option<BTreeMap<String, f64>>,
    /// Global L2 norm of the gradients, averaged over the epoch's steps (before clipping).
    pub grad_norm: f64,
    /// L2 norm of each layer's gradients (all its parameters), averaged over the epoch's steps
    /// (before clipping); keys are layer paths (`"0"`, `"2.block.0"`).
    #[serde(default)]
    pub layer_grad_norms: BTreeMap<String, f64>,
    /// What the convergence doctor measured and found, when it watched the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<crate::doctor::EpochDiagnostics>,
    /// A GAN's: measures of the generator's samples after the epoch (see
    /// [`crate::gan::quality`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<BTreeMap<String, f64>>,
}

/// The record of a `fit` (saved beside a checkpoint, it is what `fit_from` resumes from).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct History {
    pub epochs: Vec<EpochRecord>,
    /// The epoch with the lowest monitored loss.
    pub best_epoch: Option<usize>,
    pub stopped_early: bool,
    /// The optimizer's learning rate before the first epoch (what schedules scale).
    pub base_learning_rate: Option<f64>,
}

/// Hooks into the loop. Returning `true` from `on_epoch_end` stops training.
pub trait Callback {
    fn on_epoch_end(&mut self, record: &EpochRecord) -> bool {
        let _ = record;
        false
    }
}

/// The metrics a loss implies.
pub fn output_kind(loss: &Loss) -> OutputKind {
    match loss {
        Loss::CrossEntropy(_) => OutputKind::MultiClass,
        Loss::BinaryCrossEntropyWithLogits { .. } => OutputKind::BinaryLogit,
        Loss::BinaryCrossEntropy { .. } => OutputKind::BinaryProbability,
        _ => OutputKind::Regression,
    }
}

/// The generator of global step `step`: a pure function of (seed, step), so that a resumed
/// run draws what an unbroken one would.
pub(crate) fn step_rng(seed: u64, step: u64) -> Rng {
    Rng::seed(seed ^ step.wrapping_add(1).wrapping_mul(0xD1B5_4A32_D192_ED03))
}

/// Trains `model` with `optimizer` on `train`, evaluating on `valid` after each epoch.
pub fn fit(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    train: &Dataset,
    valid: Option<&Dataset>,
    config: &TrainConfig,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    fit_from(
        model,
        optimizer,
        train,
        valid,
        config,
        History::default(),
        callbacks,
    )
}

/// Continues a run that stopped after `history.epochs.len()` epochs: with the model's weights and
/// the optimizer's state restored from that point, the remaining epochs see the same batches,
/// dropout masks and learning rates as an uninterrupted run, so the result is bit-identical.
/// (Best-weight restore only covers epochs after the resume point; [`Trainer`] can be given the
/// best weights saved so far.)
pub fn fit_from(
    model: &dyn Module,
    optimizer: &mut dyn Optimizer,
    train: &Dataset,
    valid: Option<&Dataset>,
    config: &TrainConfig,
    history: History,
    callbacks: &mut [&mut dyn Callback],
) -> Result<History> {
    let mut trainer = Trainer::new(model, optimizer, config, history)?;
    while !trainer.is_finished() {
        let record = trainer.run_epoch(train, valid)?.clone();
        let mut stop = false;
        for cb in callbacks.iter_mut() {
            stop |= cb.on_epoch_end(&record);
        }
        if stop {
            trainer.stop();
        }
    }
    trainer.finish()
}

/// The training loop one epoch at a time, for callers that act between epochs (a run
/// directory saves a checkpoint after each). [`fit_from`] is `run_epoch` until finished, then
/// [`Trainer::finish`].
pub struct Trainer<'a> {
    model: &'a dyn Module,
    optimizer: &'a mut dyn Optimizer,
    config: &'a TrainConfig,
    history: History,
    loader: DataLoader,
    params: Vec<(String, Var)>,
    param_vars: Vec<Var>,
    /// The weight matrices (parameters of rank 2 or more), which the L1/L2 penalties cover.
    matrices: Vec<Var>,
    /// The gradient norms of the current epoch's steps.
    grad_norms: GradNormMeter,
    base_lr: f64,
    log: Option<(std::fs::File, PathBuf)>,
    /// The monitored loss of every epoch so far (validation, or training without validation).
    monitored: Vec<f64>,
    /// Best monitored loss, its epoch, and the weights then (when restoring the best).
    best: Option<(f64, usize, Vec<Tensor>)>,
    finished: bool,
    doctor: Option<Doctor>,
    /// What the doctor saw in an epoch that ended in divergence.
    failure: Option<EpochDiagnostics>,
}

impl<'a> Trainer<'a> {
    /// A loop that continues `history` (empty for a fresh run).
    pub fn new(
        model: &'a dyn Module,
        optimizer: &'a mut dyn Optimizer,
        config: &'a TrainConfig,
        mut history: History,
    ) -> Result<Trainer<'a>> {
        if config.epochs == 0 {
            return Err(Error::Invalid("fit: needs at least one epoch".into()));
        }
        config.schedule.schedule.validate()?;
        let loader = DataLoader {
            shuffle: !config.carry_state,
            ..DataLoader::new(config.batch_size, config.seed)?
        };
        let params = model.named_parameters();
        let param_vars: Vec<Var> = params.iter().map(|(_, v)| v.clone()).collect();
        let matrices = param_vars
            .iter()
            .filter(|v| v.shape().rank() >= 2)
            .cloned()
            .collect();
        let grad_norms = GradNormMeter::new(&params);
        let base_lr = *history
            .base_learning_rate
            .get_or_insert(optimizer.learning_rate());
        let log = match &config.metrics_log {
            Some(p) => Some((
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(io(p))?,
                p.clone(),
            )),
            None => None,
        };
        let monitored: Vec<f64> = history
            .epochs
            .iter()
            .map(|r| r.valid.as_ref().unwrap_or(&r.train)["loss"])
            .collect();
        let best = history.best_epoch.map(|e| (monitored[e], e, Vec::new()));
        let finished = history.stopped_early || history.epochs.len() >= config.epochs;
        Ok(Trainer {
            model,
            optimizer,
            config,
            history,
            loader,
            params,
            param_vars,
            matrices,
            grad_norms,
            base_lr,
            log,
            monitored,
            best,
            finished,
            doctor: None,
            failure: None,
        })
    }

    /// Watches training with the convergence doctor (see [`crate::doctor`]): its statistics
    /// and findings go into each epoch's record, and new findings are printed when verbose.
    pub fn with_doctor(mut self, doctor: Doctor) -> Self {
        self.doctor = Some(doctor.with_history(&self.history.epochs));
        self
    }

    /// The doctor's statistics and findings of the epoch that diverged (with where the first
    /// NaN or infinity came from), after [`Trainer::run_epoch`] returned [`Error::Diverged`].
    pub fn failure_diagnostics(&self) -> Option<&EpochDiagnostics> {
        self.failure.as_ref()
    }

    /// The weights of the best epoch so far, saved before a resume (restored at the end when
    /// early stopping restores the best), in the order of the model's `state_vars`.
    pub fn with_best_weights(mut self, weights: Vec<Tensor>) -> Self {
        if let Some(best) = &mut self.best {
            best.2 = weights;
        }
        self
    }

    /// Whether the epochs ran out or training stopped early.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Stops after the current epoch (a callback's request).
    pub fn stop(&mut self) {
        self.finished = true;
    }

    /// The record so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The optimizer (to save its state between epochs).
    pub fn optimizer(&self) -> &dyn Optimizer {
        &*self.optimizer
    }

    /// The batches of epoch `epoch` of `train`, in the order training takes them.
    pub(crate) fn batches<'d>(
        &self,
        train: &'d Dataset,
        epoch: u64,
    ) -> impl Iterator<Item = nabla_data::Result<(Tensor, Tensor)>> + 'd {
        self.loader.epoch(train, epoch)
    }

    /// Sets the optimizer's learning rate for the next steps (the range test's own schedule).
    pub(crate) fn set_learning_rate(&mut self, lr: f64) {
        self.optimizer.set_learning_rate(lr);
    }

    /// The weights kept from the best epoch (empty unless early stopping restores the best).
    pub fn best_weights(&self) -> &[Tensor] {
        self.best.as_ref().map_or(&[], |b| b.2.as_slice())
    }

    /// Runs one epoch: mini-batch steps on `train`, then the metrics on `valid`; returns the
    /// epoch's record.
    pub fn run_epoch(&mut self, train: &Dataset, valid: Option<&Dataset>) -> Result<&EpochRecord> {
        let config = self.config;
        if train.is_empty() {
            return Err(Error::Invalid(
                "fit: needs at least one training row".into(),
            ));
        }
        if self.finished {
            return Err(Error::Invalid("fit: training has already finished".into()));
        }
        let epoch = self.history.epochs.len();
        let batches = self.loader.batches_per_epoch(train.len());
        // The global step numbers of this epoch's batches: a pure function of the epoch, so a
        // resumed run seeds its steps as an unbroken one.
        let first_step = (epoch * batches) as u64;
        let kind = output_kind(&config.loss);
        let lr = config
            .schedule
            .learning_rate(self.base_lr, epoch, &self.monitored);
        self.optimizer.set_learning_rate(lr);
        let mut acc = MetricAccumulator::default();
        self.grad_norms.reset();
        let mut steps_in_epoch = 0;
        if config.carry_state {
            check_full_batches("fit", train.len(), config.batch_size)?;
        }
        // Each epoch's first batch starts from a zero state.
        let mut carried = CarriedState::default();
        let bar = progress_bar(config, epoch, train.len());
        for (index, (step, batch)) in (first_step..)
            .zip(self.loader.epoch(train, epoch as u64))
            .enumerate()
        {
            let (x, y) = batch?;
            let rows = x.dims()[0] as u64;
            // A sampled step records every layer's output (taps) for the doctor; the numbers
            // of the step are the same either way.
            let sampled = self
                .doctor
                .as_ref()
                .is_some_and(|d| d.samples(index, step, batches));
            let (loss_value, out) = self.step(&x, &y, step, sampled, &mut carried)?;
            let Some(out) = out else {
                let trace = crate::doctor::trace::trace_non_finite(
                    self.model,
                    &config.loss,
                    &x,
                    &y,
                    step_rng(config.seed, step),
                );
                self.diagnose_failure(epoch, step, &trace);
                return Err(Error::Diverged {
                    epoch: epoch + 1,
                    step,
                    loss: loss_value,
                    trace: trace.message,
                });
            };
            add_batch(&mut acc, kind, loss_value, &out, &y, config.target_scale)?;
            steps_in_epoch += 1;
            if let Some(bar) = &bar {
                bar.set_message(format!("loss {loss_value:.4}"));
                bar.inc(rows);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let train_metrics = acc.finish(kind);
        let valid_metrics = match valid {
            Some(v) => Some(evaluate_batches(
                self.model,
                v,
                &config.loss,
                config.batch_size,
                config.target_scale,
                config.carry_state,
            )?),
            None => None,
        };
        let watched = valid_metrics.as_ref().unwrap_or(&train_metrics)["loss"];
        self.monitored.push(watched);
        let mut record = EpochRecord {
            epoch,
            learning_rate: lr,
            train: train_metrics,
            valid: valid_metrics,
            grad_norm: self.grad_norms.mean_global(),
            layer_grad_norms: self.grad_norms.layer_means(),
            diagnostics: None,
            samples: None,
        };
        if let Some(doctor) = &mut self.doctor {
            record.diagnostics = Some(doctor.end_epoch(
                &self.param_vars,
                &record,
                &self.history.epochs,
                first_step + steps_in_epoch.max(1) as u64 - 1,
            ));
        }
        if config.verbose {
            eprintln!("{}", format_record(&record, config.epochs));
        }
        if config.verbose || self.doctor.as_ref().is_some_and(Doctor::prints) {
            for f in record.diagnostics.iter().flat_map(|d| &d.findings) {
                eprintln!("{}", crate::doctor::describe(f));
            }
        }
        if let Some((file, path)) = &mut self.log {
            writeln!(file, "{}", record_json(&record)).map_err(io(path))?;
        }
        let min_delta = config.early_stopping.as_ref().map_or(0.0, |e| e.min_delta);
        if self
            .best
            .as_ref()
            .is_none_or(|(b, _, _)| watched < b - min_delta)
        {
            let snapshot = if config
                .early_stopping
                .as_ref()
                .is_some_and(|e| e.restore_best)
            {
                self.model
                    .state_vars()
                    .iter()
                    .map(|(_, v)| v.as_tensor().detach())
                    .collect()
            } else {
                Vec::new()
            };
            self.best = Some((watched, epoch, snapshot));
        }
        self.history.best_epoch = self.best.as_ref().map(|b| b.1);
        self.history.epochs.push(record);
        if let (Some(es), Some((_, best_epoch, _))) = (&config.early_stopping, &self.best)
            && epoch - best_epoch >= es.patience
            && epoch + 1 < config.epochs
        {
            self.history.stopped_early = true;
            self.finished = true;
        }
        if epoch + 1 >= config.epochs {
            self.finished = true;
        }
        Ok(self.history.epochs.last().expect("just pushed"))
    }

    /// One optimizer step on the batch `(x, y)` as global step `step` (its dropout masks and
    /// other draws are the step's own): forward, loss, backward of the penalized loss, clipping,
    /// the update, and the doctor's sample when `sampled`. Returns the batch's loss and the
    /// model's output (detached), or no output when the loss is not finite (nothing updated).
    /// `carried` is the recurrent state carried from the batch before (`carry_state`).
    pub(crate) fn step(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        step: u64,
        sampled: bool,
        carried: &mut CarriedState,
    ) -> Result<(f64, Option<Tensor>)> {
        let config = self.config;
        let mut ctx = Ctx::train(step_rng(config.seed, step));
        if sampled || config.activity.is_some() {
            ctx = ctx.with_taps();
        }
        if config.carry_state {
            ctx = ctx.carrying(std::mem::take(carried));
        }
        // The doctor reads the gradient through time at the input of a first recurrent layer:
        // a variable, on the steps it samples.
        let watched;
        let x = match &self.doctor {
            Some(doctor) if sampled && x.dtype().is_float() && doctor.wants_input_gradient() => {
                watched = Var::new(x)?.as_tensor();
                &watched
            }
            _ => x,
        };
        let out = self.model.forward(x, &mut ctx)?;
        if config.carry_state {
            *carried = ctx.take_state();
        }
        let loss = config.loss.compute(&out, y)?;
        let loss_value = loss.to_scalar_f64()?;
        if !loss_value.is_finite() {
            return Ok((loss_value, None));
        }
        let mut grads = self.penalized(loss, &ctx)?.backward()?;
        // Norms before clipping: per layer (for the report) and global.
        let global = self.grad_norms.add(&grads, &self.param_vars);
        if let Some(max) = config.clip_grad_norm {
            clip_to_norm(&mut grads, &self.param_vars, max, global)?;
        }
        if let Some(v) = config.clip_grad_value {
            clip_grad_value(&mut grads, &self.param_vars, v)?;
        }
        let before: Vec<Tensor> = if sampled {
            self.param_vars.iter().map(Var::as_tensor).collect()
        } else {
            Vec::new()
        };
        self.optimizer.step(&self.params, &grads)?;
        if sampled && let Some(doctor) = &mut self.doctor {
            doctor.observe(x, ctx.taps(), &grads, &self.param_vars, &before);
        }
        Ok((loss_value, Some(out.detach())))
    }

    /// The loss plus the config's weight and activity penalties (what the gradient is taken of);
    /// `ctx` is the forward pass's, with the hidden layer's output.
    fn penalized(&self, loss: Tensor, ctx: &Ctx) -> Result<Tensor> {
        let (l1, l2) = (self.config.l1, self.config.l2);
        let mut total = loss;
        if let Some(activity) = &self.config.activity {
            let p = activity.compute(ctx)?.to_dtype(total.dtype())?;
            total = total.add(&p)?;
        }
        if l2 != 0.0 {
            let p = nabla_nn::loss::l2_penalty(&self.matrices, l2)?.to_dtype(total.dtype())?;
            total = total.add(&p)?;
        }
        if l1 != 0.0 {
            let p = nabla_nn::loss::l1_penalty(&self.matrices, l1)?.to_dtype(total.dtype())?;
            total = total.add(&p)?;
        }
        Ok(total)
    }

    /// The doctor's view of an epoch cut short by divergence: its samples so far, the rules'
    /// findings, and a NaN/Inf finding at the traced layer.
    fn diagnose_failure(&mut self, epoch: usize, step: u64, trace: &crate::doctor::trace::Trace) {
        if self.doctor.is_none() {
            return;
        }
        let record = EpochRecord {
            epoch,
            learning_rate: self.optimizer.learning_rate(),
            train: BTreeMap::new(),
            valid: None,
            grad_norm: f64::NAN,
            layer_grad_norms: self.grad_norms.layer_means(),
            diagnostics: None,
            samples: None,
        };
        let Some(doctor) = &mut self.doctor else {
            return;
        };
        let mut diagnostics =
            doctor.end_epoch(&self.param_vars, &record, &self.history.epochs, step);
        let mut f = Finding::new(Problem::NonFinite, epoch);
        f.step = step;
        f.layers = trace.layer.iter().cloned().collect();
        f.statistic = format!("first non-finite value ({})", trace.phase);
        f.value = f64::NAN;
        f.threshold = f64::NAN;
        f.cause = trace.message.clone();
        f.remedy = "lower the learning rate, clip the gradient norm (train.clip_grad_norm = \
                    1), initialize with He/Xavier variance, and standardize the inputs"
            .into();
        f.lr_factor = Some(0.1);
        doctor.present(&mut f);
        diagnostics.findings.insert(0, f);
        if self.config.verbose || doctor.prints() {
            for f in &diagnostics.findings {
                eprintln!("{}", crate::doctor::describe(f));
            }
        }
        self.failure = Some(diagnostics);
    }

    /// Ends training: puts back the best epoch's weights when early stopping asks for it, and
    /// returns the history.
    pub fn finish(self) -> Result<History> {
        if let (Some(es), Some((_, _, snapshot))) = (&self.config.early_stopping, &self.best)
            && es.restore_best
            && !snapshot.is_empty()
        {
            for ((_, var), value) in self.model.state_vars().iter().zip(snapshot) {
                var.set(value)?;
            }
        }
        Ok(self.history)
    }
}

/// The gradient norms of an epoch's steps, before clipping: each layer's (the L2 norm of all its
/// parameters' gradients; layers are parameter names without their last segment, `"2.block.0"`)
/// and the global one, averaged over the steps for the epoch's record.
pub(crate) struct GradNormMeter {
    /// The layers' paths, and the index into them of each parameter.
    layers: Vec<String>,
    param_layer: Vec<usize>,
    layer_sums: Vec<f64>,
    global_sum: f64,
    steps: usize,
}

impl GradNormMeter {
    /// A meter for these parameters (in the order their variables will be given).
    pub(crate) fn new(params: &[(String, Var)]) -> Self {
        let mut layers: Vec<String> = Vec::new();
        let param_layer = params
            .iter()
            .map(|(n, _)| {
                let layer = n.rsplit_once('.').map_or(n.as_str(), |(l, _)| l);
                layers.iter().position(|l| l == layer).unwrap_or_else(|| {
                    layers.push(layer.to_string());
                    layers.len() - 1
                })
            })
            .collect();
        GradNormMeter {
            layer_sums: vec![0.0; layers.len()],
            layers,
            param_layer,
            global_sum: 0.0,
            steps: 0,
        }
    }

    /// Adds one step's gradients of `vars` (the parameters' variables, in order) and returns
    /// their global norm, summed in parameter order as `clip_to_norm` expects, so that clipping
    /// scales exactly as PyTorch's `clip_grad_norm_`.
    pub(crate) fn add(&mut self, grads: &nabla_core::Grads, vars: &[Var]) -> f64 {
        let norms = grad_norms(grads, vars);
        let mut layer_sq = vec![0.0; self.layers.len()];
        for (&layer, n) in self.param_layer.iter().zip(&norms) {
            layer_sq[layer] += n * n;
        }
        for (sum, sq) in self.layer_sums.iter_mut().zip(&layer_sq) {
            *sum += sq.sqrt();
        }
        let global = norms.iter().map(|n| n * n).sum::<f64>().sqrt();
        self.global_sum += global;
        self.steps += 1;
        global
    }

    /// Steps added since the last reset.
    pub(crate) fn steps(&self) -> usize {
        self.steps
    }

    /// The mean global norm over the steps so far.
    pub(crate) fn mean_global(&self) -> f64 {
        self.global_sum / self.steps.max(1) as f64
    }

    /// Each layer's mean norm over the steps so far, by layer path.
    pub(crate) fn layer_means(&self) -> BTreeMap<String, f64> {
        let steps = self.steps.max(1) as f64;
        self.layers
            .iter()
            .cloned()
            .zip(self.layer_sums.iter().map(|v| v / steps))
            .collect()
    }

    /// Starts a new epoch.
    pub(crate) fn reset(&mut self) {
        self.layer_sums.fill(0.0);
        self.global_sum = 0.0;
        self.steps = 0;
    }
}

/// A bar over one epoch's samples (with samples/s and the ETA), only when progress is wanted and stderr is a terminal (in a
/// log file a bar would be noise; the per-epoch line is printed either way).
fn progress_bar(
    config: &TrainConfig,
    epoch: usize,
    samples: usize,
) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !config.verbose || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(samples as u64);
    let style = indicatif::ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len}  {msg}  {rate}  eta {eta}",
    )
    .map(|s| {
        s.progress_chars("=> ")
            // indicatif's {per_sec} prints four decimals ("488.5988/s").
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} samples/s", state.per_sec());
                },
            )
    })
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(format!("{}/{}", epoch + 1, config.epochs));
    Some(bar)
}

/// Adds a batch to the metrics, in the target's own units when it was standardized.
fn add_batch(
    acc: &mut MetricAccumulator,
    kind: OutputKind,
    loss: f64,
    out: &Tensor,
    y: &Tensor,
    target_scale: Option<(f64, f64)>,
) -> Result<()> {
    match target_scale {
        Some((mean, std)) => {
            let unscale = |t: &Tensor| t.mul_scalar(std)?.add_scalar(mean);
            acc.add(kind, loss, &unscale(out)?, &unscale(y)?)
        }
        None => acc.add(kind, loss, out, y),
    }
}

/// Loss and metrics of `model` (in eval mode, no graph) on `data`.
pub fn evaluate(
    model: &dyn Module,
    data: &Dataset,
    loss: &Loss,
    batch_size: usize,
) -> Result<BTreeMap<String, f64>> {
    evaluate_scaled(model, data, loss, batch_size, None)
}

/// [`evaluate`] for a standardized regression target (`TrainConfig::target_scale`): the loss
/// on the standardized values, the metrics in the target's units.
pub fn evaluate_scaled(
    model: &dyn Module,
    data: &Dataset,
    loss: &Loss,
    batch_size: usize,
    target_scale: Option<(f64, f64)>,
) -> Result<BTreeMap<String, f64>> {
    evaluate_batches(model, data, loss, batch_size, target_scale, false)
}

/// A state carried per batch row needs every batch full: row `r` of each batch continues row
/// `r` of the one before.
pub(crate) fn check_full_batches(what: &str, rows: usize, batch_size: usize) -> Result<()> {
    if rows.is_multiple_of(batch_size) {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{what}: carrying the state across batches needs full batches, but {rows} rows do not \
         split into batches of {batch_size}"
    )))
}

/// [`evaluate_scaled`], with the recurrent state carried from each batch to the next when
/// `carry_state` (see [`TrainConfig::carry_state`]: the batches must then be full).
pub fn evaluate_batches(
    model: &dyn Module,
    data: &Dataset,
    loss: &Loss,
    batch_size: usize,
    target_scale: Option<(f64, f64)>,
    carry_state: bool,
) -> Result<BTreeMap<String, f64>> {
    if carry_state {
        check_full_batches("evaluate", data.len(), batch_size)?;
    }
    let kind = output_kind(loss);
    let loader = DataLoader {
        shuffle: false,
        ..DataLoader::new(batch_size, 0)?
    };
    let mut acc = MetricAccumulator::default();
    with_no_grad(|| -> Result<()> {
        let mut ctx = if carry_state {
            Ctx::eval().carrying_state()
        } else {
            Ctx::eval()
        };
        for batch in loader.epoch(data, 0) {
            let (x, y) = batch?;
            let out = model.forward(&x, &mut ctx)?;
            let l = loss.compute(&out, &y)?.to_scalar_f64()?;
            add_batch(&mut acc, kind, l, &out, &y, target_scale)?;
        }
        Ok(())
    })?;
    Ok(acc.finish(kind))
}

/// The model's outputs for `x` (eval mode, no graph), computed in batches.
pub fn predict(model: &dyn Module, x: &Tensor, batch_size: usize) -> Result<Tensor> {
    let n = x.dims().first().copied().unwrap_or(0);
    if batch_size == 0 {
        return Err(Error::Invalid("batch_size must be positive".into()));
    }
    with_no_grad(|| {
        let mut parts = Vec::new();
        for start in (0..n).step_by(batch_size) {
            let len = batch_size.min(n - start);
            parts.push(model.forward(&x.narrow(0, start, len)?, &mut Ctx::eval())?);
        }
        let refs: Vec<&Tensor> = parts.iter().collect();
        Ok(Tensor::concat(&refs, 0)?)
    })
}

fn format_record(r: &EpochRecord, epochs: usize) -> String {
    let show = |m: &BTreeMap<String, f64>| {
        ["loss", "accuracy", "bits_per_char", "rmse", "r2"]
            .iter()
            .filter_map(|k| m.get(*k).map(|v| format!("{k} {v:.4}")))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut line = format!("epoch {:>3}/{epochs}  {}", r.epoch + 1, show(&r.train));
    if let Some(v) = &r.valid {
        line += &format!("  | valid {}", show(v));
    }
    line + &format!("  lr {:.3e}", r.learning_rate)
}

/// One epoch as a JSON object (the metrics log's line format).
pub fn record_json(r: &EpochRecord) -> serde_json::Value {
    let mut line = serde_json::json!({
        "epoch": r.epoch,
        "learning_rate": r.learning_rate,
        "train": r.train,
        "valid": r.valid,
        "grad_norm": r.grad_norm,
        "layer_grad_norms": r.layer_grad_norms,
        "diagnostics": r.diagnostics,
    });
    if let Some(samples) = &r.samples {
        line["samples"] = serde_json::json!(samples);
    }
    line
}

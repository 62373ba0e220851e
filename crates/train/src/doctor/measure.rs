//! What the doctor measures at a sampled step, and its summary over an epoch.

use super::histogram::{self, Reservoir};
use super::rules::{self, Finding, RuleInput};
use super::{DoctorConfig, EpochDiagnostics, LayerDiagnostics, kind_of};
use crate::trainer::EpochRecord;
use nabla_core::{DType, Grads, Tensor, Var};
use nabla_data::{Dataset, Scaling};
use nabla_nn::Module;
use nabla_nn::clip::sum_of_squares;
use serde::{Deserialize, Serialize};

/// The scale of the training inputs, per feature: what the unscaled-input rule reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct InputScale {
    /// The largest `max(|mean|, std)` over the features, and its feature (0-based).
    pub largest: f64,
    pub largest_feature: usize,
    /// The largest standard deviation over the features.
    #[serde(default)]
    pub largest_std: f64,
    /// Largest over smallest standard deviation of the non-constant features: the condition
    /// number of the input covariance's diagonal, which a linear layer's loss surface inherits.
    pub std_ratio: f64,
    /// The smallest and largest input value.
    #[serde(default)]
    pub min: f64,
    #[serde(default)]
    pub max: f64,
    /// The caller says the inputs are an image's 8-bit intensities (a folder of images, IDX
    /// files): scaled by dividing by 255, not feature by feature (see [`Self::are_pixels`]).
    #[serde(default)]
    pub pixels: bool,
}

impl InputScale {
    /// Measured on a dataset's features `[rows, width]` (sequences `[rows, steps, channels]`:
    /// per channel over all steps).
    pub fn of(data: &Dataset) -> InputScale {
        InputScale::of_tensor(data.x())
    }

    /// Measured on the columns of `x` (the last dimension; a vector is one column).
    pub fn of_tensor(x: &Tensor) -> InputScale {
        let width = if x.rank() >= 2 {
            x.dims()[x.rank() - 1].max(1)
        } else {
            1
        };
        // Two passes over the tensor's own buffer (no f64 copy of the whole training set).
        let rows = x.elem_count() / width;
        if rows == 0 {
            return InputScale::default();
        }
        let mut mean = vec![0.0; width];
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for_each_cell(x, width, |_, c, v| {
            mean[c] += v;
            min = min.min(v);
            max = max.max(v);
        });
        mean.iter_mut().for_each(|m| *m /= rows as f64);
        let mut var = vec![0.0; width];
        for_each_cell(x, width, |_, c, v| {
            let d = v - mean[c];
            var[c] += d * d;
        });
        let std: Vec<f64> = var.iter().map(|s| (s / rows as f64).sqrt()).collect();
        let (largest_feature, largest) = mean
            .iter()
            .zip(&std)
            .map(|(m, s)| m.abs().max(*s))
            .enumerate()
            .fold(
                (0, 0.0),
                |best, (j, v)| if v > best.1 { (j, v) } else { best },
            );
        let live: Vec<f64> = std.iter().copied().filter(|s| *s > 1e-12).collect();
        let std_ratio = match (
            live.iter().copied().reduce(f64::max),
            live.iter().copied().reduce(f64::min),
        ) {
            (Some(hi), Some(lo)) => hi / lo,
            _ => 1.0,
        };
        InputScale {
            largest,
            largest_feature,
            largest_std: std.iter().copied().fold(0.0, f64::max),
            std_ratio,
            min,
            max,
            pixels: false,
        }
    }

    /// Whether the inputs are pixel intensities as read, in `[0, 255]` and not all within
    /// `[0, 1]`: the caller said they are images, and no scaling has moved them.
    pub fn are_pixels(&self) -> bool {
        self.pixels && self.min >= 0.0 && self.max <= 255.0 && self.max > 1.0
    }

    /// The scaling that suits these inputs, with its phrase for a remedy: a division by 255
    /// for pixels as read (black stays 0), else standardization.
    pub fn suited_scaling(&self) -> (Scaling, &'static str) {
        if self.are_pixels() {
            (Scaling::Divide(255.0), "divide the pixels by 255")
        } else {
            (Scaling::Standardize, "standardize the inputs")
        }
    }
}

/// A layer the doctor watches: a leaf module of the model, in forward order.
#[derive(Debug, Clone)]
pub struct Layer {
    pub path: String,
    pub kind: String,
    pub description: String,
    /// Indices of its parameters in the trainer's parameter list.
    pub params: Vec<usize>,
}

/// Sums over an epoch's samples for one layer.
#[derive(Debug, Clone, Default)]
struct LayerSums {
    entries: f64,
    sum: f64,
    sum_sq: f64,
    /// Per unit: active (> 0) on some example of some sampled batch (ReLU).
    ever_active: Vec<bool>,
    saturated: f64,
    zero_inputs: f64,
    inputs: f64,
    update_ratio: f64,
    updates: usize,
    delta: f64,
    deltas: usize,
    /// A recurrent layer that reads a whole sequence and passes on its last step: per step,
    /// the squared norm of the gradient reaching its input there, summed over the samples.
    step_gradients: Vec<f64>,
    /// A thinned sample of the outputs, for the layer's histogram (charted kinds only).
    outputs: Reservoir,
}

/// Fills in what only the caller knows about a finding (config keys, config changes).
pub type Presenter = Box<dyn Fn(&mut Finding) + Send + Sync>;

/// The doctor of one training run (see the module docs of [`super`]).
pub struct Doctor {
    config: DoctorConfig,
    layers: Vec<Layer>,
    input: InputScale,
    /// The training rows per class (see [`Dataset::class_counts`]).
    classes: Vec<usize>,
    /// The scale of a regression's training targets, as the model is trained on them.
    target: Option<InputScale>,
    sums: Vec<LayerSums>,
    samples: usize,
    reported: std::collections::BTreeSet<String>,
    present: Option<Presenter>,
    console: bool,
}

/// The leaf modules of `module` with their paths, in forward order.
pub(crate) fn leaves(module: &dyn Module, prefix: &str, out: &mut Vec<(String, String)>) {
    for (name, child) in module.children() {
        let path = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}.{name}")
        };
        if child.children().is_empty() {
            out.push((path, child.describe()));
        } else {
            leaves(child, &path, out);
        }
    }
}

impl Doctor {
    /// A doctor for `model` trained on `train`; `params` are the trainer's named parameters
    /// (their order indexes the gradients and snapshots it is given).
    pub fn new(
        config: DoctorConfig,
        model: &dyn Module,
        params: &[(String, Var)],
        train: &Dataset,
    ) -> Doctor {
        let mut found = Vec::new();
        leaves(model, "", &mut found);
        let layers: Vec<Layer> = found
            .into_iter()
            .map(|(path, description)| Layer {
                params: params
                    .iter()
                    .enumerate()
                    .filter(|(_, (n, _))| {
                        n.rsplit_once('.').is_some_and(|(layer, _)| layer == path)
                    })
                    .map(|(i, _)| i)
                    .collect(),
                kind: kind_of(&description).to_string(),
                path,
                description,
            })
            .collect();
        // A model that starts with an embedding reads token ids, not features: their size says
        // nothing about scaling.
        let reads_ids = layers.first().is_some_and(|l| l.kind == "Embedding");
        let classes = train.class_counts();
        Doctor {
            config,
            sums: vec![LayerSums::default(); layers.len()],
            layers,
            input: if reads_ids {
                InputScale::default()
            } else {
                InputScale::of(train)
            },
            // Real-valued targets that are not 0/1 classes: a regression's.
            target: (train.y().dtype().is_float() && classes.is_empty())
                .then(|| InputScale::of_tensor(train.y())),
            classes,
            samples: 0,
            reported: Default::default(),
            present: None,
            console: false,
        }
    }

    /// Findings already reported (a resumed run's history): they are not reported again.
    pub fn with_history(mut self, history: &[EpochRecord]) -> Doctor {
        self.reported.extend(super::reported(history));
        self
    }

    /// Fills in what only the caller knows about each new finding (the config keys of its
    /// layers, the config changes that apply its remedy).
    pub fn with_presenter(
        mut self,
        present: impl Fn(&mut Finding) + Send + Sync + 'static,
    ) -> Self {
        self.present = Some(Box::new(present));
        self
    }

    /// Tells the doctor that the inputs are images' 8-bit intensities (a folder of images, IDX
    /// files), whose scaling remedy is a division by 255.
    pub fn with_pixel_inputs(mut self, pixels: bool) -> Self {
        self.input.pixels = pixels;
        self
    }

    /// Prints each new finding on stderr as it is found (also when the trainer is quiet).
    pub fn with_console(mut self, console: bool) -> Self {
        self.console = console;
        self
    }

    /// Whether new findings are printed on stderr.
    pub fn prints(&self) -> bool {
        self.console
    }

    /// Lets the caller fill in a finding (see [`Doctor::with_presenter`]).
    pub fn present(&self, finding: &mut Finding) {
        if let Some(present) = &self.present {
            present(finding);
        }
    }

    /// The watched layers, in forward order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// The training inputs' scale.
    pub fn input_scale(&self) -> &InputScale {
        &self.input
    }

    /// Whether the step numbered `step` (global), the `index`-th of an epoch of `steps` steps,
    /// is sampled: every `every`-th step, and the first step of an epoch that would otherwise
    /// have none (so that every epoch has statistics).
    pub fn samples(&self, index: usize, step: u64, steps: usize) -> bool {
        let every = self.config.every.max(1);
        if step.is_multiple_of(every) {
            return true;
        }
        let first = step - index as u64;
        index == 0 && first.next_multiple_of(every) >= first + steps as u64
    }

    /// Takes the measurements of a sampled step: its input `x`, the layer outputs (taps), the
    /// gradients, and the parameters' values before (`before`) and after the update. One pass
    /// over each tensor, without copies: a sample costs a fraction of a step.
    pub fn observe(
        &mut self,
        x: &Tensor,
        taps: &[(String, Tensor)],
        grads: &Grads,
        params: &[Var],
        before: &[Tensor],
    ) {
        self.samples += 1;
        self.observe_through_time(x, taps, grads);
        // Zeros in the previous output: the next Linear layer's zero inputs.
        let mut previous_zeros = (0.0, 0.0);
        for_each(x, |v| {
            previous_zeros.0 += f64::from(u8::from(v == 0.0));
            previous_zeros.1 += 1.0;
        });
        for (path, y) in taps {
            let Some(i) = self.layers.iter().position(|l| &l.path == path) else {
                continue;
            };
            let layer = &self.layers[i];
            let sums = &mut self.sums[i];
            let rows = y.dims().first().copied().unwrap_or(1).max(1);
            let units = Units::of(y);
            let kind = layer.kind.as_str();
            if kind == "ReLU" && sums.ever_active.len() != units.count {
                sums.ever_active = vec![false; units.count];
            }
            let stats = scan(y, kind, units, &mut sums.ever_active);
            let (sum, sum_sq, zeros, mut saturated) =
                (stats.sum, stats.sum_sq, stats.zeros, stats.saturated);
            if kind == "HardTanh" && stats.hi > stats.lo {
                // At the clamp the derivative is exactly 0: the bounds are the extremes seen.
                for_each(y, |v| {
                    saturated += f64::from(u8::from(v == stats.lo || v == stats.hi))
                });
            }
            if histogram::charted(kind) {
                sums.outputs
                    .keep(y.elem_count(), |s| for_each(y, |v| s.offer(v)));
            }
            sums.entries += y.elem_count() as f64;
            sums.sum += sum;
            sums.sum_sq += sum_sq;
            sums.saturated += saturated;
            if kind == "Linear" && !path.ends_with("projection") {
                sums.zero_inputs += previous_zeros.0;
                sums.inputs += previous_zeros.1;
            }
            previous_zeros = (zeros, y.elem_count() as f64);
            if !layer.params.is_empty() {
                let (mut diff, mut norm) = (0.0, 0.0);
                for &p in &layer.params {
                    if let (Some(b), Some(var)) = (before.get(p), params.get(p)) {
                        let (d, n) = change(b, &var.as_tensor());
                        diff += d;
                        norm += n;
                    }
                }
                if norm > 0.0 {
                    sums.update_ratio += (diff / norm).sqrt();
                    sums.updates += 1;
                } else if diff > 0.0 {
                    // From all-zero weights any step is infinitely large relative to them.
                    sums.update_ratio += 1.0;
                    sums.updates += 1;
                }
            }
            if let Some(g) = grads.get(y) {
                sums.delta += (sum_of_squares(g) / rows as f64).sqrt();
                sums.deltas += 1;
            }
        }
    }

    /// Whether the model has a top-level recurrent layer that passes on its last step: the
    /// gradient through time shows at its input, which carries a gradient only when the model's
    /// input does if no layer with parameters comes before it (a reshape). The trainer makes a
    /// float input a variable on sampled steps ([`Self::observe`] reads it under its id).
    pub fn wants_input_gradient(&self) -> bool {
        self.layers
            .iter()
            .any(|l| reads_whole_sequence(l) && !l.path.contains('.'))
    }

    /// Per step, the squared norm of the gradient reaching each last-step recurrent layer's
    /// input `[batch, steps, features]`: the model's input for the first layer (a variable on
    /// sampled steps, see [`Self::wants_input_gradient`]), else the output of the top-level
    /// layer before it.
    fn observe_through_time(&mut self, x: &Tensor, taps: &[(String, Tensor)], grads: &Grads) {
        for i in 0..self.layers.len() {
            let layer = &self.layers[i];
            if !reads_whole_sequence(layer) || layer.path.contains('.') {
                continue;
            }
            let input = match i {
                0 => Some(x),
                _ => {
                    let previous = &self.layers[i - 1].path;
                    taps.iter()
                        .find(|(p, _)| p == previous && !p.contains('.'))
                        .map(|(_, t)| t)
                }
            };
            let Some(g) = input.and_then(|t| grads.get(t)) else {
                continue;
            };
            if g.rank() != 3 {
                continue;
            }
            let (steps, features) = (g.dims()[1], g.dims()[2]);
            let sums = &mut self.sums[i].step_gradients;
            if sums.len() != steps {
                *sums = vec![0.0; steps];
            }
            for_each_cell(g, features, |row, _, v| sums[row % steps] += v * v);
        }
    }

    /// The epoch's statistics (the sums are reset), with the findings first seen now. `record`
    /// is the epoch's record so far (metrics, gradient norms); `history` the epochs before it;
    /// `step` the last global step the epoch ran (when its findings were seen).
    pub fn end_epoch(
        &mut self,
        params: &[Var],
        record: &EpochRecord,
        history: &[EpochRecord],
        step: u64,
    ) -> EpochDiagnostics {
        let sums = std::mem::replace(
            &mut self.sums,
            vec![LayerSums::default(); self.layers.len()],
        );
        let samples = std::mem::take(&mut self.samples);
        let layers: Vec<(String, LayerDiagnostics)> = self
            .layers
            .iter()
            .zip(&sums)
            .map(|(layer, s)| (layer.path.clone(), summarize(layer, s, params)))
            .collect();
        let mut diagnostics = EpochDiagnostics {
            samples,
            layers,
            findings: Vec::new(),
        };
        let input = RuleInput {
            layers: &self.layers,
            input: &self.input,
            current: record,
            diagnostics: &diagnostics,
            history,
            keeps_best: self.config.keeps_best,
            valid_examples: self.config.valid_examples,
            class_counts: &self.classes,
            target: self.target.as_ref(),
            step: step + 1,
        };
        for mut finding in rules::evaluate(&input) {
            if self.reported.insert(finding.key()) {
                finding.step = step;
                self.present(&mut finding);
                diagnostics.findings.push(finding);
            }
        }
        diagnostics
    }
}

fn summarize(layer: &Layer, s: &LayerSums, params: &[Var]) -> LayerDiagnostics {
    let entries = s.entries.max(1.0);
    let mean = s.sum / entries;
    let var = (s.sum_sq / entries - mean * mean).max(0.0);
    let weights: Vec<&Var> = layer.params.iter().filter_map(|&p| params.get(p)).collect();
    let first_step_gradient = first_step_gradient(&s.step_gradients);
    let weight_norm = (!weights.is_empty()).then(|| {
        weights
            .iter()
            .map(|w| sum_of_squares(&w.as_tensor()))
            .sum::<f64>()
            .sqrt()
    });
    LayerDiagnostics {
        kind: layer.kind.clone(),
        activation_mean: mean,
        activation_std: var.sqrt(),
        dead_fraction: (layer.kind == "ReLU" && !s.ever_active.is_empty()).then(|| {
            s.ever_active.iter().filter(|a| !**a).count() as f64 / s.ever_active.len() as f64
        }),
        saturated_fraction: matches!(layer.kind.as_str(), "Sigmoid" | "Tanh" | "HardTanh")
            .then(|| s.saturated / entries),
        zero_input_fraction: (s.inputs > 0.0).then(|| s.zero_inputs / s.inputs),
        update_ratio: (s.updates > 0).then(|| s.update_ratio / s.updates as f64),
        weight_norm,
        unit_spread: matches!(layer.kind.as_str(), "Linear" | "Conv2d")
            .then(|| weights.first().map(|w| unit_spread(&w.as_tensor())))
            .flatten(),
        first_step_gradient,
        steps: first_step_gradient.map(|_| s.step_gradients.len()),
        delta_norm: if s.deltas > 0 {
            s.delta / s.deltas as f64
        } else {
            0.0
        },
        histogram: s.outputs.histogram(),
    }
}

/// `max_i ‖w_i − w̄‖ / max_i ‖w_i‖` over the rows (units) of a weight `[out, in]`: 0 when all
/// units are the same (also when all are zero), about 1 for a random initialization.
/// `‖g_1‖ / max_t ‖g_t‖` from per-step squared gradient norms (`None` without steps or
/// gradient): how much of the error reaches a sequence's first step against the step it
/// reaches most (the last, unless padding at the end makes it an earlier one).
fn first_step_gradient(step_squares: &[f64]) -> Option<f64> {
    let largest = step_squares.iter().copied().fold(0.0, f64::max);
    (step_squares.len() >= 2 && largest > 0.0).then(|| (step_squares[0] / largest).sqrt())
}

/// A recurrent layer that reads a whole sequence and passes on its last step (a sequence
/// classifier's or forecaster's): its error enters at the last step and must flow back
/// through every step before.
fn reads_whole_sequence(layer: &Layer) -> bool {
    matches!(layer.kind.as_str(), "RNN" | "LSTM" | "GRU") && layer.description.contains("last step")
}

fn unit_spread(w: &Tensor) -> f64 {
    let dims = w.dims();
    if dims.len() < 2 || dims[0] < 2 {
        return 1.0;
    }
    // A convolution's filters `[out, in, kh, kw]` are its units: rows of `in · kh · kw`.
    let (rows, cols) = (dims[0], (w.elem_count() / dims[0]).max(1));
    let mut mean = vec![0.0; cols];
    for_each_cell(w, cols, |_, c, x| mean[c] += x / rows as f64);
    let (mut d, mut n) = (vec![0.0f64; rows], vec![0.0f64; rows]);
    for_each_cell(w, cols, |r, c, x| {
        let m = mean[c];
        d[r] += (x - m) * (x - m);
        n[r] += x * x;
    });
    let spread = d.iter().fold(0.0f64, |a, v| a.max(v.sqrt()));
    let size = n.iter().fold(0.0f64, |a, v| a.max(v.sqrt()));
    if size == 0.0 { 0.0 } else { spread / size }
}

/// Per-layer values of a record's gradient norms, for the layers that have parameters.
pub fn grad_norms<'a>(layers: &'a [Layer], record: &'a EpochRecord) -> Vec<(&'a Layer, f64)> {
    layers
        .iter()
        .filter(|l| !l.params.is_empty())
        .filter_map(|l| record.layer_grad_norms.get(&l.path).map(|g| (l, *g)))
        .collect()
}

/// Calls `f(value)` for each element of a float tensor, in row-major order, without copying it
/// when it is contiguous.
fn for_each(t: &Tensor, mut f: impl FnMut(f64)) {
    for_each_cell(t, t.elem_count().max(1), |_, _, v| f(v));
}

/// Calls `f(row, column, value)` for each element of a float tensor read as rows of `width`
/// values. Rows and columns are counted as the loop goes, not divided out of a flat index:
/// an `i % width` per element had made measuring MNIST's inputs 5% of a training run.
fn for_each_cell(t: &Tensor, width: usize, mut f: impl FnMut(usize, usize, f64)) {
    fn rows<T: Copy>(
        data: &[T],
        width: usize,
        to_f64: impl Fn(T) -> f64,
        f: &mut impl FnMut(usize, usize, f64),
    ) {
        for (r, row) in data.chunks_exact(width).enumerate() {
            for (c, &v) in row.iter().enumerate() {
                f(r, c, to_f64(v));
            }
        }
    }
    match t.dtype() {
        DType::F32 => {
            if let Ok(d) = t.contiguous_data::<f32>() {
                rows(&d, width, f64::from, &mut f);
            }
        }
        DType::F64 => {
            if let Ok(d) = t.contiguous_data::<f64>() {
                rows(&d, width, |v| v, &mut f);
            }
        }
        DType::I64 => {}
    }
}

/// One pass over a layer's outputs.
#[derive(Debug, Clone, Copy, Default)]
struct Scan {
    sum: f64,
    sum_sq: f64,
    zeros: f64,
    saturated: f64,
    lo: f64,
    hi: f64,
}

/// Sums, zeros, saturated outputs (sigmoid, tanh) and the units ever active (ReLU) of a layer's
/// outputs, in one pass with the kind decided once, outside the loop.
/// How a layer's output `[batch, ...]` splits into units, each with its own weights: a
/// feature of `[batch, features]`, a feature at every step of `[batch, steps, features]`, a
/// channel (filter) at every position of `[batch, channels, height, width]`. A ReLU unit is
/// dead when it is zero everywhere it appears: a filter zero on the always-black border of
/// an image but firing on the strokes is alive, and still learns.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Units {
    /// Values per example.
    row: usize,
    /// How many units.
    count: usize,
    /// Consecutive values of one unit (a channel's positions).
    inner: usize,
}

impl Units {
    fn of(y: &Tensor) -> Units {
        let dims = y.dims();
        let rows = dims.first().copied().unwrap_or(1).max(1);
        let row = (y.elem_count() / rows).max(1);
        let (count, inner) = match *dims {
            [_, channels, height, width] => (channels, height * width),
            [_, .., features] => (features, 1),
            _ => (row, 1),
        };
        Units {
            row,
            count: count.max(1),
            inner: inner.max(1),
        }
    }

    /// The unit of the `j`th value of an example.
    fn of_value(&self, j: usize) -> usize {
        (j / self.inner) % self.count
    }
}

fn scan(y: &Tensor, kind: &str, units: Units, active: &mut [bool]) -> Scan {
    fn go<T: Copy + Into<f64>>(d: &[T], units: Units, kind: u8, active: &mut [bool]) -> Scan {
        let mut s = Scan {
            lo: f64::INFINITY,
            hi: f64::NEG_INFINITY,
            ..Scan::default()
        };
        for row in d.chunks(units.row) {
            for (j, &v) in row.iter().enumerate() {
                let v: f64 = v.into();
                s.sum += v;
                s.sum_sq += v * v;
                s.zeros += f64::from(u8::from(v == 0.0));
                s.lo = s.lo.min(v);
                s.hi = s.hi.max(v);
                match kind {
                    1 => active[units.of_value(j)] |= v > 0.0,
                    2 => s.saturated += f64::from(u8::from(!(0.01..=0.99).contains(&v))),
                    3 => s.saturated += f64::from(u8::from(v.abs() > 0.99)),
                    _ => {}
                }
            }
        }
        s
    }
    let code = match kind {
        "ReLU" if active.len() == units.count => 1,
        "Sigmoid" => 2,
        "Tanh" => 3,
        _ => 0,
    };
    match y.dtype() {
        DType::F32 => y
            .contiguous_data::<f32>()
            .map(|d| go(&d, units, code, active)),
        DType::F64 => y
            .contiguous_data::<f64>()
            .map(|d| go(&d, units, code, active)),
        DType::I64 => return Scan::default(),
    }
    .unwrap_or_default()
}

/// `(‖new − old‖², ‖old‖²)` of two tensors of the same shape and dtype.
fn change(old: &Tensor, new: &Tensor) -> (f64, f64) {
    fn pair<T: nabla_core::Element + Into<f64>>(a: &Tensor, b: &Tensor) -> Option<(f64, f64)> {
        let (a, b) = (
            a.contiguous_data::<T>().ok()?,
            b.contiguous_data::<T>().ok()?,
        );
        Some(a.iter().zip(b.iter()).fold((0.0, 0.0), |(d, n), (&x, &y)| {
            let (x, y): (f64, f64) = (x.into(), y.into());
            (d + (y - x) * (y - x), n + x * x)
        }))
    }
    match old.dtype() {
        DType::F32 => pair::<f32>(old, new),
        DType::F64 => pair::<f64>(old, new),
        DType::I64 => None,
    }
    .unwrap_or((0.0, 0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-feature statistics by column: feature 1 has mean 100 and std 2, feature 2 std 0.5,
    /// feature 0 is constant (left out of the ratio); also for sequences (per channel).
    #[test]
    fn input_scale_reads_each_feature_by_column() {
        let rows = [
            [3.0, 98.0, 0.5],
            [3.0, 102.0, -0.5],
            [3.0, 98.0, 0.5],
            [3.0, 102.0, -0.5],
        ];
        let x: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
        let y = Tensor::from_vec(vec![0.0f32; 4], [4, 1]).unwrap();
        let flat = Dataset::new(Tensor::from_vec(x.clone(), [4, 3]).unwrap(), y.clone()).unwrap();
        let want = InputScale {
            largest: 100.0,
            largest_feature: 1,
            largest_std: 2.0,
            std_ratio: 4.0,
            min: -0.5,
            max: 102.0,
            pixels: false,
        };
        assert_eq!(InputScale::of(&flat), want);
        let steps = Dataset::new(
            Tensor::from_vec(x, [2, 2, 3]).unwrap(),
            y.narrow(0, 0, 2).unwrap(),
        )
        .unwrap();
        assert_eq!(InputScale::of(&steps), want);
    }

    /// Images' intensities count as pixels only when the caller says so and they are still in
    /// `[0, 255]` (a scaling has not moved them).
    #[test]
    fn inputs_are_pixels_when_said_and_in_range() {
        let data = |values: Vec<f32>| {
            let n = values.len();
            let y = Tensor::from_vec(vec![0.0f32; n / 2], [n / 2, 1]).unwrap();
            Dataset::new(Tensor::from_vec(values, [n / 2, 2]).unwrap(), y).unwrap()
        };
        let raw = InputScale::of(&data(vec![0.0, 255.0, 17.0, 3.0]));
        assert_eq!((raw.min, raw.max), (0.0, 255.0));
        assert!(!raw.are_pixels(), "not said to be images");
        let said = |s: &InputScale| InputScale {
            pixels: true,
            ..s.clone()
        };
        assert!(said(&raw).are_pixels());
        let centred = InputScale::of(&data(vec![-0.5, 0.5, 0.25, 0.0]));
        assert!(!said(&centred).are_pixels(), "already scaled");
        let wide = InputScale::of(&data(vec![0.0, 1000.0, 2.0, 3.0]));
        assert!(!said(&wide).are_pixels(), "not 8-bit");
        let divided = InputScale::of(&data(vec![0.0, 1.0, 0.5, 0.25]));
        assert!(!said(&divided).are_pixels(), "already divided");
        assert_eq!(said(&raw).suited_scaling().0, Scaling::Divide(255.0));
        assert_eq!(said(&divided).suited_scaling().0, Scaling::Standardize);
    }

    /// A convolution's ReLU unit is its channel: dead only when zero at every position of
    /// every example. A sequence's is its feature, at every step.
    #[test]
    fn a_filter_that_fires_anywhere_is_alive() {
        // 2 examples x 3 channels x 2x2 positions: channel 0 fires at one position of one
        // example (zero on the other 7 values: the border of an image), channel 1 never,
        // channel 2 everywhere.
        let mut values = vec![0.0f32; 24];
        values[3] = 0.5;
        for e in 0..2 {
            for p in 0..4 {
                values[e * 12 + 8 + p] = 1.0;
            }
        }
        let y = Tensor::from_vec(values, [2, 3, 2, 2]).unwrap();
        let units = Units::of(&y);
        assert_eq!(
            units,
            Units {
                row: 12,
                count: 3,
                inner: 4
            }
        );
        let mut active = vec![false; 3];
        scan(&y, "ReLU", units, &mut active);
        assert_eq!(active, [true, false, true]);
        // [batch, steps, features]: feature 1 fires at the last step only.
        let y = Tensor::from_vec(vec![0.0f32, 0.0, 0.0, 0.0, 0.0, 2.0], [1, 3, 2]).unwrap();
        let units = Units::of(&y);
        assert_eq!((units.count, units.inner), (2, 1));
        let mut active = vec![false; 2];
        scan(&y, "ReLU", units, &mut active);
        assert_eq!(active, [false, true]);
    }

    /// The first step's share of the error against the step that gets the most; nothing
    /// without two steps or without any gradient.
    #[test]
    fn first_step_gradient_compares_norms_not_squares() {
        assert_eq!(first_step_gradient(&[1.0, 4.0, 100.0]), Some(0.1));
        assert_eq!(first_step_gradient(&[9.0, 4.0]), Some(1.0));
        assert_eq!(first_step_gradient(&[1.0]), None);
        assert_eq!(first_step_gradient(&[0.0, 0.0]), None);
    }

    /// Two identical units have spread 0; different ones a positive spread.
    #[test]
    fn unit_spread_compares_rows() {
        let same = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 1.0, 2.0, 3.0], [2, 3]).unwrap();
        assert_eq!(unit_spread(&same), 0.0);
        let apart = Tensor::from_vec(vec![1.0f32, 0.0, 0.0, -1.0, 0.0, 0.0], [2, 3]).unwrap();
        assert_eq!(unit_spread(&apart), 1.0);
        // Filters [2, 1, 1, 3] are rows of 3 weights.
        assert_eq!(unit_spread(&same.reshape([2, 1, 1, 3]).unwrap()), 0.0);
        assert_eq!(unit_spread(&apart.reshape([2, 1, 1, 3]).unwrap()), 1.0);
    }
}

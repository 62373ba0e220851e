//! From a config to the objects that train: the model (layer widths chained from the data's
//! width, the last one checked against the targets), the loss (checked against the task and the
//! model's last layer), the optimizer and the schedule. Every error names the config key.

use super::{
    GanSpec, InitSpec, LayerSpec, LossSpec, ModelSpec, OptimizerSpec, RecurrentSpec,
    RnnNonlinearity, ScheduleSpec, SequenceOutputSpec, SparsityPenalty, SparsitySpec, TrainSpec,
    Weighting,
};
use nabla_core::{DType, RecurrentCell, Rng};
use nabla_nn::init::FanMode;
use nabla_nn::layers::{
    AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Elu, Embedding, Flatten, GaussianNoise,
    Gelu, GlobalAvgPool2d, HardTanh, LayerNorm, LeakyRelu, Linear, LogSoftmax, MaskingNoise,
    MaxPool2d, PRelu, RandomFlip, RandomRotation, RandomTranslation, RandomZoom, Recurrent, Relu,
    Reshape, Residual, SequenceOutput, Sequential, Sigmoid, Softmax, Tanh,
};
use nabla_nn::loss::{ActivityPenalty, CrossEntropy, Loss, Sparsity};
use nabla_nn::optim::{Adagrad, Adam, DeltaBarDelta, Optimizer, RmsProp, Sgd};
use nabla_nn::schedule::{LrSchedule, Schedule};
use nabla_nn::{Init, Module};

/// What the targets demand of the model's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSpec {
    /// Class indices `0..k`.
    Classes(usize),
    /// `k` real values per row.
    Values(usize),
    /// Class indices `0..classes` at each of `steps` steps (a character model's next
    /// characters): outputs `[steps, classes]` per example.
    StepClasses { steps: usize, classes: usize },
}

/// `(key, message)`: what a build step found wrong (located in the file by the caller).
pub type KeyError = (String, String);

fn key_err(key: impl Into<String>, e: impl std::fmt::Display) -> KeyError {
    (key.into(), e.to_string())
}

impl From<InitSpec> for Init {
    fn from(spec: InitSpec) -> Init {
        match spec {
            InitSpec::Zeros => Init::Zeros,
            InitSpec::Constant(c) => Init::Constant(c),
            InitSpec::Uniform { low, high } => Init::Uniform { low, high },
            InitSpec::Normal { mean, std } => Init::Normal { mean, std },
            InitSpec::XavierUniform => Init::XavierUniform { gain: 1.0 },
            InitSpec::XavierNormal => Init::XavierNormal { gain: 1.0 },
            InitSpec::LecunUniform => Init::LeCunUniform,
            InitSpec::LecunNormal => Init::LeCunNormal,
            InitSpec::HeUniform => Init::KaimingUniform {
                negative_slope: 0.0,
                mode: FanMode::FanIn,
            },
            InitSpec::HeNormal => Init::HE,
            InitSpec::Kaiming {
                negative_slope,
                fan_out,
                uniform,
            } => {
                let mode = if fan_out {
                    FanMode::FanOut
                } else {
                    FanMode::FanIn
                };
                if uniform {
                    Init::KaimingUniform {
                        negative_slope,
                        mode,
                    }
                } else {
                    Init::KaimingNormal {
                        negative_slope,
                        mode,
                    }
                }
            }
            InitSpec::Orthogonal { gain } => Init::Orthogonal { gain },
        }
    }
}

/// The per-example shape as the config speaks of it: `[64]`, `[1, 8, 8]`.
fn show(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// A batch of examples of `shape`, as errors show it: `[batch, 8, 10]`.
fn batched(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
    format!("[batch, {}]", dims.join(", "))
}

/// The width of a flat per-example shape, or an error saying to flatten first.
fn flat(shape: &[usize], here: &str, layer: &str) -> Result<usize, KeyError> {
    match shape {
        [w] => Ok(*w),
        _ => Err(key_err(
            here,
            format!(
                "{layer} needs flat inputs, but each example is {} here: add \
                 {{ type = \"flatten\" }} before it",
                show(shape)
            ),
        )),
    }
}

/// `[channels, height, width]`, or an error saying to reshape first.
fn image(shape: &[usize], here: &str, layer: &str) -> Result<[usize; 3], KeyError> {
    match *shape {
        [c, h, w] => Ok([c, h, w]),
        _ => Err(key_err(
            here,
            format!(
                "{layer} needs [channels, height, width] inputs, but each example is {} here: \
                 add {{ type = \"reshape\", shape = [1, H, W] }} before it",
                show(shape)
            ),
        )),
    }
}

/// `[time, features]`, or an error saying to reshape first.
fn sequence(shape: &[usize], here: &str, layer: &str) -> Result<[usize; 2], KeyError> {
    match *shape {
        [t, f] => Ok([t, f]),
        [w] => Err(key_err(
            here,
            format!(
                "{layer} needs [time, features] sequences, but each example is {}: add \
                 {{ type = \"reshape\", shape = [{w}, 1] }} before it for a univariate series \
                 (or [T, F] with T * F = {w})",
                show(shape)
            ),
        )),
        _ => Err(key_err(
            here,
            format!(
                "{layer} needs [time, features] sequences, but each example is {}: add a \
                 reshape before it",
                show(shape)
            ),
        )),
    }
}

/// A recurrent layer from its config; returns it and its per-example output shape.
fn recurrent(
    layer: &LayerSpec,
    spec: &RecurrentSpec,
    shape: &[usize],
    here: &str,
    params: &mut ParameterBudget,
    rng: &mut Rng,
) -> Result<(Recurrent, Vec<usize>), KeyError> {
    let (cell, name) = match (layer, spec.nonlinearity) {
        (LayerSpec::Lstm(_), None) => (RecurrentCell::Lstm, "lstm"),
        (LayerSpec::Gru(_), None) => (RecurrentCell::Gru, "gru"),
        (LayerSpec::Rnn(_), None | Some(RnnNonlinearity::Tanh)) => (RecurrentCell::RnnTanh, "rnn"),
        (LayerSpec::Rnn(_), Some(RnnNonlinearity::Relu)) => (RecurrentCell::RnnRelu, "rnn"),
        _ => {
            return Err(key_err(
                format!("{here}.nonlinearity"),
                "applies to type = \"rnn\" only (LSTM and GRU gates have fixed activations)",
            ));
        }
    };
    let [time, features] = sequence(shape, here, name)?;
    for (key, value) in [("units", spec.units), ("layers", spec.layers)] {
        if value == 0 {
            return Err(key_err(format!("{here}.{key}"), "must be at least 1"));
        }
    }
    if spec.forget_bias.is_some() && !cell.keeps_state_by_gate() {
        return Err(key_err(
            format!("{here}.forget_bias"),
            "applies to type = \"lstm\" (the forget gate) and \"gru\" (the update gate) only",
        ));
    }
    let gates = cell.gates() * spec.units;
    params.add(features + spec.units, gates, here)?;
    for _ in 1..spec.layers {
        params.add(2 * spec.units, gates, here)?;
    }
    let mut b = Recurrent::builder(cell, features, spec.units)
        .layers(spec.layers)
        .dropout(spec.dropout)
        .output(match spec.output {
            SequenceOutputSpec::Last => SequenceOutput::Last,
            SequenceOutputSpec::All => SequenceOutput::All,
        });
    if let Some(v) = spec.mask_value {
        b = b.mask_value(v);
    }
    if let Some(v) = spec.forget_bias {
        b = b.forget_bias(v);
    }
    let layer = b.build(rng).map_err(|e| key_err(here, e))?;
    let out = match spec.output {
        SequenceOutputSpec::Last => vec![spec.units],
        SequenceOutputSpec::All => vec![time, spec.units],
    };
    Ok((layer, out))
}

/// Builds the layers for examples of shape `input` (`[features]` for a table); returns the
/// model and the output's per-example shape. `key` is the config path of the list
/// (`model.layers`).
fn build_layers(
    layers: &[LayerSpec],
    input: &[usize],
    key: &str,
    params: &mut ParameterBudget,
    rng: &mut Rng,
) -> Result<(Sequential, Vec<usize>), KeyError> {
    let mut model = Sequential::new();
    let mut shape = input.to_vec();
    for (i, layer) in layers.iter().enumerate() {
        let here = format!("{key}[{i}]");
        let err = |e: nabla_core::Error| key_err(&here, e);
        shape = match layer {
            LayerSpec::Linear {
                units,
                bias,
                init,
                bias_init,
            } => {
                // A sequence [steps, width] gets the same map at every step (a character
                // model's output layer); anything else must be flat.
                let (steps, width) = match *shape.as_slice() {
                    [steps, width] => (Some(steps), width),
                    _ => (None, flat(&shape, &here, "a linear layer")?),
                };
                if *units == 0 {
                    return Err(key_err(format!("{here}.units"), "must be at least 1"));
                }
                params.add(width, *units, &here)?;
                let mut b = Linear::builder(width, *units).bias(*bias);
                if let Some(init) = init {
                    b = b.init((*init).into());
                }
                if let Some(init) = bias_init {
                    b = b.bias_init((*init).into());
                }
                model.push(Box::new(b.build(rng).map_err(err)?));
                match steps {
                    Some(steps) => vec![steps, *units],
                    None => vec![*units],
                }
            }
            LayerSpec::Relu => push(&mut model, Relu, shape),
            LayerSpec::LeakyRelu { negative_slope } => {
                push(&mut model, LeakyRelu::new(*negative_slope), shape)
            }
            LayerSpec::Prelu { init, per_unit } => {
                let n = if *per_unit {
                    flat(&shape, &here, "a per-unit PReLU")?
                } else {
                    1
                };
                push(
                    &mut model,
                    PRelu::new(n, *init, DType::F32).map_err(err)?,
                    shape,
                )
            }
            LayerSpec::Elu { alpha } => push(&mut model, Elu::new(*alpha), shape),
            LayerSpec::Sigmoid => push(&mut model, Sigmoid, shape),
            LayerSpec::Tanh => push(&mut model, Tanh, shape),
            LayerSpec::HardTanh { min, max } => {
                if min.partial_cmp(max) != Some(std::cmp::Ordering::Less) {
                    return Err(key_err(&here, format!("needs min < max, got {min}, {max}")));
                }
                push(&mut model, HardTanh::new(*min, *max), shape)
            }
            LayerSpec::Gelu => push(&mut model, Gelu, shape),
            LayerSpec::Softmax => push(&mut model, Softmax::default(), shape),
            LayerSpec::LogSoftmax => push(&mut model, LogSoftmax::default(), shape),
            LayerSpec::Dropout { p } => push(
                &mut model,
                Dropout::new(*p).map_err(|e| key_err(format!("{here}.p"), e))?,
                shape,
            ),
            LayerSpec::GaussianNoise { std } => push(
                &mut model,
                GaussianNoise::new(*std).map_err(|e| key_err(format!("{here}.std"), e))?,
                shape,
            ),
            LayerSpec::MaskingNoise { p } => push(
                &mut model,
                MaskingNoise::new(*p).map_err(|e| key_err(format!("{here}.p"), e))?,
                shape,
            ),
            LayerSpec::RandomFlip { mode } => {
                image(&shape, &here, "random_flip")?;
                push(&mut model, RandomFlip::new((*mode).into()), shape)
            }
            LayerSpec::RandomTranslation { pixels } => {
                let [_, height, width] = image(&shape, &here, "random_translation")?;
                let pixels_err = |e| key_err(format!("{here}.pixels"), e);
                let layer = RandomTranslation::new(*pixels).map_err(pixels_err)?;
                RandomTranslation::check_fits(*pixels, height, width).map_err(pixels_err)?;
                push(&mut model, layer, shape)
            }
            LayerSpec::RandomRotation { degrees } => {
                image(&shape, &here, "random_rotation")?;
                let layer = RandomRotation::new(*degrees)
                    .map_err(|e| key_err(format!("{here}.degrees"), e))?;
                push(&mut model, layer, shape)
            }
            LayerSpec::RandomZoom { factor } => {
                image(&shape, &here, "random_zoom")?;
                let layer =
                    RandomZoom::new(*factor).map_err(|e| key_err(format!("{here}.factor"), e))?;
                push(&mut model, layer, shape)
            }
            LayerSpec::BatchNorm { eps, momentum } => {
                // Per feature after a linear layer, per channel after a convolution.
                let layer = match *shape {
                    [width] => BatchNorm1d::with_options(width, *eps, *momentum, DType::F32),
                    [channels, _, _] => {
                        BatchNorm2d::with_options(channels, *eps, *momentum, DType::F32)
                    }
                    _ => {
                        return Err(key_err(
                            &here,
                            format!(
                                "batch_norm normalizes [features] or [channels, height, width], \
                                 but each example is {} here: add {{ type = \"flatten\" }} \
                                 before it, or use layer_norm",
                                show(&shape)
                            ),
                        ));
                    }
                };
                push(&mut model, layer.map_err(err)?, shape)
            }
            LayerSpec::LayerNorm => push(
                &mut model,
                LayerNorm::new(&shape, DType::F32).map_err(err)?,
                shape,
            ),
            LayerSpec::Flatten => {
                model.push(Box::new(Flatten));
                vec![shape.iter().product()]
            }
            LayerSpec::Reshape { shape: to } => {
                let (from, want): (usize, usize) = (shape.iter().product(), to.iter().product());
                if to.is_empty() || to.contains(&0) || from != want {
                    return Err(key_err(
                        format!("{here}.shape"),
                        format!(
                            "each example has {from} values ({}), but {} holds {want}",
                            show(&shape),
                            show(to)
                        ),
                    ));
                }
                model.push(Box::new(Reshape { shape: to.clone() }));
                to.clone()
            }
            LayerSpec::Conv2d {
                filters,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias,
                init,
            } => {
                let [c, _, _] = image(&shape, &here, "conv2d")?;
                if *filters == 0 {
                    return Err(key_err(format!("{here}.filters"), "must be at least 1"));
                }
                if *groups == 0 || !c.is_multiple_of(*groups) || !filters.is_multiple_of(*groups) {
                    return Err(key_err(
                        format!("{here}.groups"),
                        format!(
                            "must divide both the input channels ({c}) and the filters \
                             ({filters}), got {groups}"
                        ),
                    ));
                }
                params.add(c / groups * kernel * kernel, *filters, &here)?;
                let mut b = Conv2d::builder(c, *filters, [*kernel, *kernel])
                    .stride([*stride, *stride])
                    .padding([*padding, *padding])
                    .dilation([*dilation, *dilation])
                    .groups(*groups)
                    .bias(*bias);
                if let Some(init) = init {
                    b = b.init((*init).into());
                }
                let conv = b.build(rng).map_err(err)?;
                let out = conv
                    .output_shape(image(&shape, &here, "conv2d")?)
                    .map_err(err)?;
                model.push(Box::new(conv));
                out.to_vec()
            }
            LayerSpec::MaxPool2d {
                kernel,
                stride,
                padding,
            }
            | LayerSpec::AvgPool2d {
                kernel,
                stride,
                padding,
            } => {
                let input = image(&shape, &here, "pooling")?;
                let options = nabla_core::Pool2dOptions {
                    kernel: [*kernel, *kernel],
                    stride: [stride.unwrap_or(*kernel); 2],
                    padding: [*padding; 2],
                };
                if *kernel == 0 || options.stride[0] == 0 || 2 * padding > *kernel {
                    return Err(key_err(
                        &here,
                        format!(
                            "needs kernel >= 1, stride >= 1 and padding <= kernel / 2, got \
                             kernel {kernel}, stride {}, padding {padding}",
                            options.stride[0]
                        ),
                    ));
                }
                let out = if matches!(layer, LayerSpec::MaxPool2d { .. }) {
                    let p = MaxPool2d { options };
                    let out = p.output_shape(input).map_err(err)?;
                    model.push(Box::new(p));
                    out
                } else {
                    let p = AvgPool2d { options };
                    let out = p.output_shape(input).map_err(err)?;
                    model.push(Box::new(p));
                    out
                };
                out.to_vec()
            }
            LayerSpec::GlobalAvgPool2d => {
                let [c, _, _] = image(&shape, &here, "global_avg_pool2d")?;
                model.push(Box::new(GlobalAvgPool2d));
                vec![c]
            }
            LayerSpec::Lstm(spec) | LayerSpec::Gru(spec) | LayerSpec::Rnn(spec) => {
                let (layer, out) = recurrent(layer, spec, &shape, &here, params, rng)?;
                model.push(Box::new(layer));
                out
            }
            LayerSpec::Embedding { vocab, dim } => {
                let time = flat(&shape, &here, "an embedding (ids per step)")?;
                if *vocab == 0 || *dim == 0 {
                    return Err(key_err(&here, "vocab and dim must be at least 1"));
                }
                params.add(*vocab, *dim, &here)?;
                let table = Embedding::new(*vocab, *dim, rng).map_err(err)?;
                model.push(Box::new(table));
                vec![time, *dim]
            }
            LayerSpec::Residual { layers, projection } => {
                if layers.is_empty() {
                    return Err(key_err(
                        format!("{here}.layers"),
                        "needs at least one layer",
                    ));
                }
                let (block, out) =
                    build_layers(layers, &shape, &format!("{here}.layers"), params, rng)?;
                if out == shape {
                    model.push(Box::new(Residual::new(block)));
                } else if *projection {
                    let width = flat(&shape, &here, "a projection (linear)")?;
                    let out_width = flat(&out, &here, "a projection (linear)")?;
                    params.add(width, out_width, &here)?;
                    let p = Linear::builder(width, out_width)
                        .bias(false)
                        .build(rng)
                        .map_err(err)?;
                    model.push(Box::new(Residual::with_projection(block, p)));
                } else {
                    return Err(key_err(
                        &here,
                        format!(
                            "the block maps {} to {}, but a skip connection adds its input to \
                             its output: make the block keep the shape, or set projection = \
                             true",
                            show(&shape),
                            show(&out)
                        ),
                    ));
                }
                out
            }
        };
    }
    Ok((model, shape))
}

/// The weights a model may have on this machine, checked layer by layer before any is
/// allocated: a typo like `units = 100000000` is an error naming the layer rather than an
/// out-of-memory abort.
struct ParameterBudget {
    used: usize,
    /// Bytes of memory available to the process.
    available: u64,
}

/// Bytes per weight while training in f32: the weight, its gradient and two optimizer moments
/// (Adam's m and v).
const TRAINING_BYTES_PER_WEIGHT: u64 = 16;

impl ParameterBudget {
    fn of_this_machine() -> Self {
        ParameterBudget {
            used: 0,
            available: nabla_data::available_memory().unwrap_or(u64::MAX),
        }
    }

    /// Counts a `fan_in -> fan_out` linear map (weights and bias) against the memory.
    fn add(&mut self, fan_in: usize, fan_out: usize, key: &str) -> Result<(), KeyError> {
        let total = fan_in
            .checked_mul(fan_out)
            .and_then(|w| w.checked_add(fan_out))
            .and_then(|w| w.checked_add(self.used));
        let bytes = total
            .map(|t| t as u64)
            .and_then(|t| t.checked_mul(TRAINING_BYTES_PER_WEIGHT));
        match (total, bytes) {
            (Some(total), Some(bytes)) if bytes <= self.available => {
                self.used = total;
                Ok(())
            }
            _ => {
                let weights = fan_in as f64 * fan_out as f64 + self.used as f64;
                let gb = |b: f64| b / 1e9;
                Err(key_err(
                    key,
                    format!(
                        "a linear map {fan_in} -> {fan_out} brings the model to {weights:.3e} \
                         weights: about {:.1} GB to train in f32 (weights, gradients and two \
                         optimizer moments), more than the {:.1} GB of memory available",
                        gb(weights * TRAINING_BYTES_PER_WEIGHT as f64),
                        gb(self.available as f64)
                    ),
                ))
            }
        }
    }
}

fn push(model: &mut Sequential, layer: impl Module + 'static, shape: Vec<usize>) -> Vec<usize> {
    model.push(Box::new(layer));
    shape
}

/// Builds the model for examples of shape `input` (`[features]` for a table, `[steps,
/// channels]` for sequences) and checks its output against the targets and the loss.
pub fn build_model(
    spec: &ModelSpec,
    input: &[usize],
    output: OutputSpec,
    loss: &LossSpec,
    rng: &mut Rng,
) -> Result<Sequential, KeyError> {
    if spec.layers.is_empty() {
        return Err(key_err("model.layers", "needs at least one layer"));
    }
    let mut params = ParameterBudget::of_this_machine();
    let (model, out) = build_layers(&spec.layers, input, "model.layers", &mut params, rng)?;
    let last = spec.layers.len() - 1;
    let last_key = format!("model.layers[{last}]");
    let binary = matches!(
        loss,
        LossSpec::BinaryCrossEntropy { .. } | LossSpec::BinaryCrossEntropyWithLogits { .. }
    );
    let (want, what) = match output {
        OutputSpec::Classes(k) if binary => (
            vec![1],
            format!("one output (a binary target; {k} classes)"),
        ),
        OutputSpec::Classes(k) => (vec![k], format!("{k} outputs, one per class")),
        OutputSpec::Values(k) => (vec![k], format!("{k} output(s), one per target value")),
        OutputSpec::StepClasses { steps, classes } => (
            vec![steps, classes],
            format!(
                "[{steps}, {classes}]: {classes} outputs (one per character) at each of the \
                 {steps} steps (a recurrent layer with output = \"all\", then a linear layer)"
            ),
        ),
    };
    if out != want {
        let units = want[want.len() - 1];
        let last_linear = spec
            .layers
            .iter()
            .rposition(|l| matches!(l, LayerSpec::Linear { .. }))
            .map_or(String::new(), |i| {
                format!(": set model.layers[{i}].units = {units}")
            });
        let fix = if out.len() > 1 && want.len() == 1 {
            ": flatten the steps (or use output = \"last\" on the recurrent layer) before the \
             last linear layer"
                .to_string()
        } else {
            last_linear
        };
        return Err(key_err(
            &last_key,
            format!(
                "the model maps {} to {}, but the data needs {what}{fix}",
                batched(input),
                batched(&out)
            ),
        ));
    }
    let ends_with = |f: fn(&LayerSpec) -> bool| f(&spec.layers[last]);
    match loss {
        LossSpec::CrossEntropy { .. }
            if ends_with(|l| matches!(l, LayerSpec::Softmax | LayerSpec::LogSoftmax)) =>
        {
            Err(key_err(
                &last_key,
                "cross_entropy applies the softmax itself (stably, on logits): remove this \
                 softmax layer",
            ))
        }
        LossSpec::BinaryCrossEntropyWithLogits { .. }
            if ends_with(|l| matches!(l, LayerSpec::Sigmoid)) =>
        {
            Err(key_err(
                &last_key,
                "binary_cross_entropy_with_logits applies the sigmoid itself: remove this \
                 sigmoid layer",
            ))
        }
        LossSpec::BinaryCrossEntropy { .. } if !ends_with(|l| matches!(l, LayerSpec::Sigmoid)) => {
            Err(key_err(
                "loss.type",
                "binary_cross_entropy needs probabilities: end the model with a sigmoid layer \
                 (or use binary_cross_entropy_with_logits on a linear output, which is more \
                 stable)",
            ))
        }
        _ => Ok(model),
    }
}

/// Builds a GAN's networks for examples of shape `example`: the generator from `[latent]`
/// noise to `example`, the discriminator from `example` to one logit.
pub fn build_gan(
    spec: &GanSpec,
    example: &[usize],
    rng: &mut Rng,
) -> Result<(Sequential, Sequential), KeyError> {
    if spec.latent == 0 {
        return Err(key_err("gan.latent", "must be at least 1"));
    }
    let mut params = ParameterBudget::of_this_machine();
    let g_key = "gan.generator.layers";
    let d_key = "gan.discriminator.layers";
    for (key, layers) in [
        (g_key, &spec.generator.layers),
        (d_key, &spec.discriminator.layers),
    ] {
        if layers.is_empty() {
            return Err(key_err(key, "needs at least one layer"));
        }
    }
    let (generator, out) = build_layers(
        &spec.generator.layers,
        &[spec.latent],
        g_key,
        &mut params,
        rng,
    )?;
    if out != example {
        let hint = match (
            example,
            spec.generator
                .layers
                .iter()
                .rposition(|l| matches!(l, LayerSpec::Linear { .. })),
        ) {
            ([w], Some(i)) => format!(": set {g_key}[{i}].units = {w}"),
            _ => String::new(),
        };
        return Err(key_err(
            format!("{g_key}[{}]", spec.generator.layers.len() - 1),
            format!(
                "the generator maps {} noise to {}, but the data's examples are {}{hint}",
                batched(&[spec.latent]),
                batched(&out),
                show(example)
            ),
        ));
    }
    let (discriminator, out) =
        build_layers(&spec.discriminator.layers, example, d_key, &mut params, rng)?;
    let last = format!("{d_key}[{}]", spec.discriminator.layers.len() - 1);
    if out != [1] {
        return Err(key_err(
            last,
            format!(
                "the discriminator must give one logit per example, but gives {}: end it \
                 with {{ type = \"linear\", units = 1 }}",
                show(&out)
            ),
        ));
    }
    if matches!(spec.discriminator.layers.last(), Some(LayerSpec::Sigmoid)) {
        return Err(key_err(
            last,
            "the discriminator's loss applies the sigmoid itself (stably, on logits): remove \
             this sigmoid layer",
        ));
    }
    Ok((generator, discriminator))
}

/// The sparsity penalty of `train.sparsity` on a layer of `layers` (`model.layers`).
pub fn build_sparsity(
    spec: &SparsitySpec,
    layers: &[LayerSpec],
) -> Result<ActivityPenalty, KeyError> {
    let key = "train.sparsity";
    let Some(layer) = layers.get(spec.layer) else {
        return Err(key_err(
            format!("{key}.layer"),
            format!(
                "is {}, but model.layers has {} layers (0 to {})",
                spec.layer,
                layers.len(),
                layers.len().saturating_sub(1)
            ),
        ));
    };
    if !(spec.weight.is_finite() && spec.weight >= 0.0) {
        return Err(key_err(
            format!("{key}.weight"),
            format!("must be finite and >= 0, got {}", spec.weight),
        ));
    }
    let kind = match spec.penalty {
        SparsityPenalty::L1 => {
            if spec.target.is_some() {
                return Err(key_err(
                    format!("{key}.target"),
                    "is the target activation of the kl penalty; l1 has none",
                ));
            }
            Sparsity::L1 {
                weight: spec.weight,
            }
        }
        SparsityPenalty::Kl => {
            // KL(ρ ‖ ρ̂) needs mean activations in (0, 1): a sigmoid's.
            if *layer != LayerSpec::Sigmoid {
                return Err(key_err(
                    format!("{key}.layer"),
                    format!(
                        "the kl penalty reads activations in (0, 1), but model.layers[{}] is not \
                         a sigmoid: point it at a sigmoid, or use penalty = \"l1\"",
                        spec.layer
                    ),
                ));
            }
            let target = spec.target.unwrap_or(0.05);
            if !(target > 0.0 && target < 1.0) {
                return Err(key_err(
                    format!("{key}.target"),
                    format!("must be in (0, 1), got {target}"),
                ));
            }
            Sparsity::Kl {
                target,
                weight: spec.weight,
            }
        }
    };
    Ok(ActivityPenalty {
        layer: spec.layer.to_string(),
        kind,
    })
}

/// The loss, checked against the task: classification needs a classification loss and
/// regression a regression loss. `None` picks cross-entropy or MSE.
pub fn build_loss(spec: Option<&LossSpec>, output: OutputSpec) -> Result<LossSpec, KeyError> {
    let spec = spec.cloned().unwrap_or(match output {
        OutputSpec::Classes(_) | OutputSpec::StepClasses { .. } => LossSpec::CrossEntropy {
            label_smoothing: 0.0,
            class_weights: None,
        },
        OutputSpec::Values(_) => LossSpec::Mse,
    });
    if let OutputSpec::StepClasses { classes, .. } = output {
        // One of many characters per step: the softmax cross-entropy, checked as for classes.
        if !matches!(spec, LossSpec::CrossEntropy { .. }) {
            return Err(key_err(
                "loss.type",
                format!(
                    "a character model picks one of {classes} characters at each step: use \
                     cross_entropy"
                ),
            ));
        }
        return build_loss(Some(&spec), OutputSpec::Classes(classes));
    }
    let classification = matches!(
        spec,
        LossSpec::CrossEntropy { .. }
            | LossSpec::BinaryCrossEntropy { .. }
            | LossSpec::BinaryCrossEntropyWithLogits { .. }
    );
    match (output, &spec) {
        (OutputSpec::Classes(_), _) if !classification => Err(key_err(
            "loss.type",
            "a regression loss on a classification target: use cross_entropy (or \
             binary_cross_entropy_with_logits for two classes), or set data.task = \
             \"regression\"",
        )),
        (OutputSpec::Values(_), _) if classification => Err(key_err(
            "loss.type",
            "a classification loss on a regression target: use mse, l1 or huber, or set \
             data.task = \"classification\"",
        )),
        (OutputSpec::Classes(k), LossSpec::BinaryCrossEntropy { .. })
        | (OutputSpec::Classes(k), LossSpec::BinaryCrossEntropyWithLogits { .. })
            if k != 2 =>
        {
            Err(key_err(
                "loss.type",
                format!(
                    "binary cross-entropy needs two classes, the target has {k}: use cross_entropy"
                ),
            ))
        }
        (
            _,
            LossSpec::BinaryCrossEntropy {
                pos_weight: Some(Weighting::Given(p)),
            }
            | LossSpec::BinaryCrossEntropyWithLogits {
                pos_weight: Some(Weighting::Given(p)),
            },
        ) if !(p.is_finite() && *p >= 0.0) => Err(key_err(
            "loss.pos_weight",
            format!(
                "must be finite and >= 0, got {p} (the weight of the positive class's term; \
                 \"balanced\" sets it to n_negative / n_positive)"
            ),
        )),
        (
            OutputSpec::Classes(k),
            LossSpec::CrossEntropy {
                label_smoothing,
                class_weights,
            },
        ) => {
            if !(0.0..1.0).contains(label_smoothing) {
                return Err(key_err(
                    "loss.label_smoothing",
                    format!("must be in [0, 1), got {label_smoothing}"),
                ));
            }
            if let Some(Weighting::Given(w)) = class_weights
                && (w.len() != k || w.iter().any(|v| !(v.is_finite() && *v >= 0.0)))
            {
                return Err(key_err(
                    "loss.class_weights",
                    format!("needs {k} finite weights >= 0 (one per class), got {w:?}"),
                ));
            }
            Ok(spec)
        }
        (_, LossSpec::Huber { delta }) if !(delta.is_finite() && *delta > 0.0) => Err(key_err(
            "loss.delta",
            format!("must be finite and > 0, got {delta}"),
        )),
        _ => Ok(spec),
    }
}

impl LossSpec {
    /// The loss, with `"balanced"` weights worked out from `class_counts`, the training split's
    /// rows per class (see [`balanced_class_weights`], [`balanced_pos_weight`]).
    pub fn to_loss(&self, class_counts: &[usize]) -> Result<Loss, KeyError> {
        let uncounted = |key: &str| {
            key_err(
                key,
                "\"balanced\" weighs the classes by their counts in the training split, which \
                 this run did not record (a character model, or a run saved by an earlier \
                 nabla): give the weights themselves",
            )
        };
        let pos_weight = |w: &Option<Weighting<f64>>| match w {
            None => Ok(None),
            Some(Weighting::Given(p)) => Ok(Some(*p)),
            Some(Weighting::Balanced) => balanced_pos_weight(class_counts)
                .map(Some)
                .ok_or_else(|| uncounted("loss.pos_weight")),
        };
        Ok(match self {
            LossSpec::Mse => Loss::Mse,
            LossSpec::L1 => Loss::L1,
            LossSpec::Huber { delta } => Loss::Huber { delta: *delta },
            LossSpec::CrossEntropy {
                label_smoothing,
                class_weights,
            } => Loss::CrossEntropy(CrossEntropy {
                label_smoothing: *label_smoothing,
                class_weights: match class_weights {
                    None => None,
                    Some(Weighting::Given(w)) => Some(w.clone()),
                    Some(Weighting::Balanced) if class_counts.is_empty() => {
                        return Err(uncounted("loss.class_weights"));
                    }
                    Some(Weighting::Balanced) => Some(balanced_class_weights(class_counts)),
                },
            }),
            LossSpec::BinaryCrossEntropy { pos_weight: w } => Loss::BinaryCrossEntropy {
                pos_weight: pos_weight(w)?,
            },
            LossSpec::BinaryCrossEntropyWithLogits { pos_weight: w } => {
                Loss::BinaryCrossEntropyWithLogits {
                    pos_weight: pos_weight(w)?,
                }
            }
        })
    }
}

/// `"balanced"` class weights: `w_k = n / (C · n_k)` for `n` rows of `C` classes, `n_k` of
/// class `k` (scikit-learn's `class_weight="balanced"`), so that every class carries the same
/// total weight, `n / C`, and a model cannot lower its loss by ignoring the rare ones. A class
/// with no training rows gets 1.
pub fn balanced_class_weights(class_counts: &[usize]) -> Vec<f64> {
    let n: usize = class_counts.iter().sum();
    let c = class_counts.len() as f64;
    class_counts
        .iter()
        .map(|&k| {
            if k == 0 {
                1.0
            } else {
                n as f64 / (c * k as f64)
            }
        })
        .collect()
}

/// A `"balanced"` positive weight for two classes: `n_negative / n_positive` (what PyTorch's
/// documentation suggests for `pos_weight`), the positives then weighing as much as the
/// negatives in all; 1 when a class has no rows. `None` unless there are two counts.
pub fn balanced_pos_weight(class_counts: &[usize]) -> Option<f64> {
    match *class_counts {
        [negative, positive] if negative > 0 && positive > 0 => {
            Some(negative as f64 / positive as f64)
        }
        [_, _] => Some(1.0),
        _ => None,
    }
}

/// The optimizer; its own range checks become errors at `optimizer`.
pub fn build_optimizer(spec: &OptimizerSpec) -> Result<Box<dyn Optimizer>, KeyError> {
    let err = |e: nabla_core::Error| key_err("optimizer", e);
    Ok(match *spec {
        OptimizerSpec::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
        } => Box::new(
            Sgd::with_options(lr, momentum, dampening, weight_decay, nesterov).map_err(err)?,
        ),
        OptimizerSpec::Adagrad {
            lr,
            lr_decay,
            weight_decay,
            eps,
        } => Box::new(Adagrad::with_options(lr, lr_decay, weight_decay, 0.0, eps).map_err(err)?),
        OptimizerSpec::Rmsprop {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
        } => Box::new(
            RmsProp::with_options(lr, alpha, eps, weight_decay, momentum, centered).map_err(err)?,
        ),
        // AdamW is Adam with the weight decay decoupled from the gradient.
        OptimizerSpec::Adam {
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
        }
        | OptimizerSpec::Adamw {
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
        } => Box::new(
            Adam::with_options(lr, (betas[0], betas[1]), eps, weight_decay, amsgrad)
                .map_err(err)?
                .decoupled(matches!(spec, OptimizerSpec::Adamw { .. })),
        ),
        OptimizerSpec::DeltaBarDelta {
            lr,
            kappa,
            phi,
            theta,
        } => Box::new(DeltaBarDelta::new(lr, kappa, phi, theta).map_err(err)?),
    })
}

/// The learning-rate schedule with the warm-up of `[train]`.
pub fn build_schedule(spec: &ScheduleSpec, train: &TrainSpec) -> Result<LrSchedule, KeyError> {
    let schedule = match *spec {
        ScheduleSpec::Constant => Schedule::Constant,
        ScheduleSpec::Exponential { k } => Schedule::Exponential { k },
        ScheduleSpec::Inverse { k } => Schedule::Inverse { k },
        ScheduleSpec::Step { step_size, gamma } => Schedule::Step { step_size, gamma },
        ScheduleSpec::Cosine { t_max, min_lr } => Schedule::Cosine { t_max, min_lr },
        ScheduleSpec::ReduceOnPlateau {
            factor,
            patience,
            threshold,
            cooldown,
            min_lr,
        } => Schedule::ReduceOnPlateau {
            factor,
            patience,
            threshold,
            cooldown,
            min_lr,
        },
    };
    schedule.validate().map_err(|e| key_err("schedule", e))?;
    Ok(LrSchedule {
        schedule,
        warmup_epochs: train.warmup_epochs,
    })
}

//! The training config: one TOML file that names the data, the model (a list of layers), the
//! loss, the optimizer, the learning-rate schedule and the training settings. Documented, with
//! complete examples, in `docs/config.md`.
//!
//! [`load`] reads a file and checks it before anything trains: an unknown key names the valid
//! ones and the closest match, a wrong type or value names the key and the file's line, and
//! [`build`] then checks that the layers fit the data (with the shapes) and that every
//! hyperparameter is in range. The resolved config (every default filled in, paths absolute)
//! is what a run directory keeps as `config.toml`.

pub mod build;
pub mod parse;
pub(crate) mod tagged;

pub use build::{
    KeyError, OutputSpec, balanced_class_weights, balanced_pos_weight, build_gan, build_loss,
    build_model, build_optimizer, build_schedule, build_sparsity,
};
pub use parse::{
    ConfigError, Located, load, load_str, load_text_at, parse_literal, parse_override, set_value,
};

use nabla_data::{Scaling, Task};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A complete training config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seeds the split, the initial weights, the batch order and dropout.
    #[serde(default)]
    pub seed: u64,
    pub data: DataSpec,
    /// The network (absent in a GAN config, whose networks are in `[gan]`).
    #[serde(default, skip_serializing_if = "ModelSpec::is_empty")]
    pub model: ModelSpec,
    /// A generative adversarial network instead of a model of the targets: a generator of
    /// examples like the data's, trained against a discriminator (see [`GanSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gan: Option<GanSpec>,
    /// Default: `cross_entropy` for classification, `mse` for regression.
    #[serde(
        default,
        deserialize_with = "tagged::de_opt",
        serialize_with = "tagged::ser_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub loss: Option<LossSpec>,
    #[serde(
        default,
        deserialize_with = "tagged::de",
        serialize_with = "tagged::ser"
    )]
    pub optimizer: OptimizerSpec,
    #[serde(
        default,
        deserialize_with = "tagged::de",
        serialize_with = "tagged::ser"
    )]
    pub schedule: ScheduleSpec,
    #[serde(default)]
    pub train: TrainSpec,
    /// The convergence doctor (on by default).
    #[serde(default)]
    pub diagnostics: DiagnosticsSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tune: Option<TuneSpec>,
}

impl Config {
    /// The config as TOML, as a run folder keeps it. A GAN config leaves out the top-level
    /// `[optimizer]` and `[schedule]`: every config resolves them to defaults, but a GAN
    /// config must not set them (its networks have their own optimizers).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        let mut table = toml::Table::try_from(self)?;
        if self.gan.is_some() {
            table.remove("optimizer");
            table.remove("schedule");
        }
        toml::to_string(&table)
    }
}

/// The convergence doctor: per-layer statistics sampled while training, and findings with
/// their remedies (see `nabla doctor`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosticsSpec {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Sample a step every this many steps (and the first of each epoch).
    #[serde(default = "default_every")]
    pub every: u64,
}

impl Default for DiagnosticsSpec {
    fn default() -> Self {
        DiagnosticsSpec {
            enabled: true,
            every: default_every(),
        }
    }
}

fn default_every() -> u64 {
    crate::doctor::DoctorConfig::default().every
}

/// Where the data comes from and how it is prepared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// The training CSV (header row), IDX images when `train_labels` is given, or a folder of
    /// images with a folder per class; relative paths are relative to the config file.
    pub train: PathBuf,
    /// The IDX labels of the `train` images (MNIST format, optionally gzipped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_labels: Option<PathBuf>,
    /// A test CSV (or IDX images, or a folder of class folders), evaluated once after
    /// training (read with the training file's schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<PathBuf>,
    /// The IDX labels of the `test` images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_labels: Option<PathBuf>,
    /// The target column; default: the last column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The feature columns; default: every column but the target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Feature columns holding categories, one-hot encoded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categorical: Vec<String>,
    /// `classification` or `regression`; default: inferred from the target column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// `none`, `standardize`, `min_max`, `{ divide = 255 }`, or
    /// `{ pca_whiten = { components = 20, eps = 1e-5 } }`; fitted on the training split only.
    #[serde(default)]
    pub scaling: Scaling,
    /// Fill missing feature values: `mean`, `median` or `{ constant = 0.0 }`; default: a
    /// missing value is an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impute: Option<nabla_data::Imputation>,
    /// Standardize a regression target on the training split (predictions and the MAE and
    /// RMSE metrics are reported in the target's own units).
    #[serde(default)]
    pub scale_target: bool,
    /// Fraction of the training file held out for validation (early stopping, model choice).
    #[serde(default = "default_valid_split")]
    pub valid_split: f64,
    /// Fraction held out as a test set when there is no test file.
    #[serde(default)]
    pub test_split: f64,
    /// Keep each class's share in every split (classification).
    #[serde(default = "yes")]
    pub stratify: bool,
    /// The CSV is long, one row per time step: `{ id = "series_id", step = "t" }` groups the
    /// rows into sequences (examples of `[steps, channels]`, padded with `pad`, default 0, to
    /// `max_steps`, default the longest training sequence). Scaling is per channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<nabla_data::SequenceSpec>,
    /// One time series to forecast a step ahead: `{ column = "sunactivity", window = 9,
    /// test_last = 50 }` reads the column's values in the file's row order, makes each example
    /// the previous `window` values (`lag_9 … lag_1`) and its target the next value, and holds
    /// out the last `test_last` targets as the test set. Validation is the last `valid_split`
    /// of the windows before the test; nothing is shuffled across time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<nabla_data::SeriesSpec>,
    /// A text for a character-level language model: `{ context = 100 }` reads `train` (and
    /// `test`) as UTF-8 text, makes each example 100 characters (as class ids, for an
    /// embedding) and its targets the 100 characters one step later. The training text's
    /// characters are the classes; validation is its last `valid_split`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<nabla_data::TextSpec>,
    /// How a folder of images is read: `{ size = [height, width], channels = 1 }` resizes
    /// every image and converts it to gray (1) or RGB (3); default: the images' own size,
    /// which they must share, and gray only when every image is gray.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<nabla_data::ImageSpec>,
    /// An autoencoder: the targets are the preprocessed inputs themselves (the target column,
    /// if there is one, only stratifies the split). The model ends in as many units as there
    /// are inputs; the loss is `mse` (default), `l1` or `huber`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub reconstruct: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn default_valid_split() -> f64 {
    0.15
}
fn yes() -> bool {
    true
}

/// The network: layers applied in order. Input and output widths come from the data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(
        deserialize_with = "tagged::de_vec",
        serialize_with = "tagged::ser_vec"
    )]
    pub layers: Vec<LayerSpec>,
}

impl ModelSpec {
    /// No layers (a config without `[model]`).
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

/// A GAN (`[gan]`): `generator` maps `latent` noise values to an example shaped like the
/// data's, `discriminator` maps an example to one logit (real or generated), and each trains
/// with its own optimizer (default: Adam, lr 2e-4, betas (0.5, 0.999), as in DCGAN). The data's
/// target column is not generated: it stratifies the split and, for classes, measures which
/// classes the samples cover. `[train]` gives the epochs, the batch size and `clip_grad_norm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GanSpec {
    /// Width of the noise `z`.
    #[serde(default = "default_latent")]
    pub latent: usize,
    /// `"normal"` (default) or `"uniform"` (on [-1, 1]).
    #[serde(default)]
    pub noise: crate::gan::LatentNoise,
    /// Discriminator steps per generator step (Goodfellow's k).
    #[serde(default = "one_usize")]
    pub discriminator_steps: usize,
    /// The discriminator's target for real examples (below 1: one-sided label smoothing).
    #[serde(default = "one")]
    pub real_label: f64,
    /// `"non_saturating"` (default, `-log D(G(z))`) or `"minimax"` (`log(1 - D(G(z)))`).
    #[serde(default)]
    pub generator_loss: crate::gan::GeneratorLoss,
    /// Samples measured after each epoch (diversity, distance to the data, class coverage);
    /// 0 for none.
    #[serde(default = "default_gan_samples")]
    pub samples: usize,
    pub generator: NetworkSpec,
    pub discriminator: NetworkSpec,
}

fn default_latent() -> usize {
    32
}
fn default_gan_samples() -> usize {
    500
}

/// One of a GAN's networks: its layers and its optimizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    #[serde(
        deserialize_with = "tagged::de_vec",
        serialize_with = "tagged::ser_vec"
    )]
    pub layers: Vec<LayerSpec>,
    #[serde(
        default = "gan_adam",
        deserialize_with = "tagged::de",
        serialize_with = "tagged::ser"
    )]
    pub optimizer: OptimizerSpec,
    /// The network's learning-rate schedule (default constant; a GAN refuses
    /// `train.warmup_epochs`).
    #[serde(
        default,
        deserialize_with = "tagged::de",
        serialize_with = "tagged::ser"
    )]
    pub schedule: ScheduleSpec,
}

/// Radford et al.'s DCGAN settings, the usual starting point for GANs: Adam with lr 2e-4 and
/// β₁ = 0.5 (a shorter momentum memory keeps up with the moving game).
fn gan_adam() -> OptimizerSpec {
    OptimizerSpec::Adam {
        lr: 2e-4,
        betas: [0.5, 0.999],
        eps: default_eps(),
        weight_decay: 0.0,
        amsgrad: false,
    }
}

/// Which mirror images a `random_flip` layer draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipSpec {
    /// Left-right.
    #[default]
    Horizontal,
    /// Top-bottom.
    Vertical,
    /// Left-right and top-bottom, each on its own.
    Both,
}

impl From<FlipSpec> for nabla_nn::layers::FlipMode {
    fn from(spec: FlipSpec) -> Self {
        match spec {
            FlipSpec::Horizontal => Self::Horizontal,
            FlipSpec::Vertical => Self::Vertical,
            FlipSpec::Both => Self::Both,
        }
    }
}

/// One layer (`type = "..."` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerSpec {
    /// `y = W x + b` with `units` outputs; default init Xavier uniform, zero bias.
    Linear {
        units: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<InitSpec>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bias_init: Option<InitSpec>,
    },
    Relu,
    LeakyRelu {
        #[serde(default = "default_negative_slope")]
        negative_slope: f64,
    },
    /// Learnable negative slope, one per unit when `per_unit` (else one shared).
    Prelu {
        #[serde(default = "default_prelu_init")]
        init: f64,
        #[serde(default)]
        per_unit: bool,
    },
    Elu {
        #[serde(default = "one")]
        alpha: f64,
    },
    Sigmoid,
    Tanh,
    HardTanh {
        #[serde(default = "minus_one")]
        min: f64,
        #[serde(default = "one")]
        max: f64,
    },
    Gelu,
    Softmax,
    LogSoftmax,
    Dropout {
        p: f64,
    },
    /// Adds `N(0, std²)` noise to each value in training (a denoising autoencoder's input).
    GaussianNoise {
        std: f64,
    },
    /// Sets each value to 0 with probability `p` in training, without rescaling (a denoising
    /// autoencoder's input).
    MaskingNoise {
        p: f64,
    },
    /// Mirrors each image `[channels, height, width]` with probability 1/2 in training
    /// (augmentation; the identity in evaluation).
    RandomFlip {
        #[serde(default)]
        mode: FlipSpec,
    },
    /// Shifts each image `[channels, height, width]` by up to `pixels` down or up and right or
    /// left in training, the border filled with 0 (augmentation; the identity in evaluation).
    RandomTranslation {
        pixels: usize,
    },
    /// Rotates each image `[channels, height, width]` about its centre by up to `degrees`
    /// either way in training, sampled bilinearly, the corners filled with 0 (augmentation;
    /// the identity in evaluation).
    RandomRotation {
        degrees: f64,
    },
    /// Zooms each image `[channels, height, width]` about its centre by a factor in `[1 -
    /// factor, 1 + factor]` in training, sampled bilinearly, what a zoom out brings in filled
    /// with 0 (augmentation; the identity in evaluation).
    RandomZoom {
        factor: f64,
    },
    BatchNorm {
        #[serde(default = "default_bn_eps")]
        eps: f64,
        #[serde(default = "default_bn_momentum")]
        momentum: f64,
    },
    LayerNorm,
    Flatten,
    /// Gives each flat example the shape `[channels, height, width]` (pixels from a CSV or IDX).
    Reshape {
        shape: Vec<usize>,
    },
    /// A 2-D convolution with `filters` output channels over `[channels, height, width]`
    /// inputs; default init He normal.
    Conv2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one_usize")]
        stride: usize,
        #[serde(default)]
        padding: usize,
        #[serde(default = "one_usize")]
        dilation: usize,
        /// Channel groups: each filter reads `channels / groups` input channels (`groups =
        /// channels`: depthwise). Both channel counts must be multiples of it.
        #[serde(default = "one_usize")]
        groups: usize,
        #[serde(default = "yes")]
        bias: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<InitSpec>,
    },
    /// The maximum of each `kernel x kernel` window (stride: the kernel, unless given).
    MaxPool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// The mean of each window.
    AvgPool2d {
        kernel: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
        #[serde(default)]
        padding: usize,
    },
    /// The mean of each channel: `[channels, height, width] -> [channels]`.
    GlobalAvgPool2d,
    /// An LSTM over `[time, features]` examples (reshape flat rows first).
    Lstm(RecurrentSpec),
    /// A GRU over `[time, features]` examples.
    Gru(RecurrentSpec),
    /// A plain (Elman) RNN over `[time, features]` examples.
    Rnn(RecurrentSpec),
    /// A table of `dim`-long vectors looked up by id: `[time]` ids in `0..vocab` (whole
    /// numbers) -> `[time, dim]`.
    Embedding {
        vocab: usize,
        dim: usize,
    },
    /// `y = x + F(x)` around the given layers (a skip connection); with `projection = true`
    /// the identity path goes through a bias-free linear map when `F` changes the width.
    Residual {
        #[serde(
            deserialize_with = "tagged::de_vec",
            serialize_with = "tagged::ser_vec"
        )]
        layers: Vec<LayerSpec>,
        #[serde(default)]
        projection: bool,
    },
}

fn one_usize() -> usize {
    1
}

/// The options of a recurrent layer (`type = "lstm"`, `"gru"` or `"rnn"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurrentSpec {
    /// Hidden units per layer.
    pub units: usize,
    /// Stacked layers (default 1).
    #[serde(default = "one_usize")]
    pub layers: usize,
    /// `"last"` (default): the state after the last step, `[units]`, for classifying or
    /// forecasting a sequence; `"all"`: every step's state, `[time, units]`.
    #[serde(default)]
    pub output: SequenceOutputSpec,
    /// Steps whose features all equal this value are padding (variable-length sequences): the
    /// state passes through them unchanged. Sequence data read with `data.sequence` is padded
    /// with `data.sequence.pad` (default 0), so set the same value here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask_value: Option<f64>,
    /// Dropout between stacked layers, in training (default 0).
    #[serde(default)]
    pub dropout: f64,
    /// LSTM and GRU: the initial bias of the gate that keeps the state (the LSTM's forget gate,
    /// the GRU's update gate): `σ(b)` of the state is kept per step, so 1 or more keeps the
    /// cell's memory early in training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forget_bias: Option<f64>,
    /// RNN only: `"tanh"` (default) or `"relu"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonlinearity: Option<RnnNonlinearity>,
}

/// What a recurrent layer passes on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SequenceOutputSpec {
    #[default]
    Last,
    All,
}

/// The plain RNN's activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RnnNonlinearity {
    Tanh,
    Relu,
}
fn default_negative_slope() -> f64 {
    0.01
}
fn default_prelu_init() -> f64 {
    0.25
}
fn one() -> f64 {
    1.0
}
fn minus_one() -> f64 {
    -1.0
}
fn default_bn_eps() -> f64 {
    1e-5
}
fn default_bn_momentum() -> f64 {
    0.1
}

/// A weight initializer: a name (`"he_normal"`) or a table with options
/// (`{ normal = { mean = 0.0, std = 0.01 } }`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum InitSpec {
    Zeros,
    Constant(f64),
    Uniform {
        low: f64,
        high: f64,
    },
    Normal {
        #[serde(default)]
        mean: f64,
        std: f64,
    },
    /// Glorot: variance `2 / (n_in + n_out)`.
    XavierUniform,
    XavierNormal,
    /// Variance `1 / n_in`.
    LecunUniform,
    LecunNormal,
    /// Kaiming with the ReLU gain: variance `2 / n_in`.
    HeUniform,
    HeNormal,
    /// Kaiming with a leaky-ReLU slope and a fan mode (`fan_in` or `fan_out`).
    Kaiming {
        #[serde(default)]
        negative_slope: f64,
        #[serde(default)]
        fan_out: bool,
        #[serde(default)]
        uniform: bool,
    },
    Orthogonal {
        #[serde(default = "one")]
        gain: f64,
    },
}

/// The loss (`type = "..."`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LossSpec {
    Mse,
    L1,
    Huber {
        #[serde(default = "one")]
        delta: f64,
    },
    CrossEntropy {
        #[serde(default)]
        label_smoothing: f64,
        /// One weight per class, or `"balanced"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class_weights: Option<Weighting<Vec<f64>>>,
    },
    /// On probabilities (the model ends in a sigmoid); one output unit.
    BinaryCrossEntropy {
        /// The positive term's weight, or `"balanced"`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pos_weight: Option<Weighting<f64>>,
    },
    /// On logits (sigmoid fused, stable); one output unit.
    BinaryCrossEntropyWithLogits {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pos_weight: Option<Weighting<f64>>,
    },
}

/// A loss's class weights as the config gives them: numbers, or `"balanced"`, which weighs
/// the classes by the inverse of their counts in the training split (see
/// [`build::balanced_class_weights`]), as scikit-learn's `class_weight="balanced"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Weighting<T> {
    Balanced,
    Given(T),
}

impl<T: Serialize> Serialize for Weighting<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Weighting::Balanced => s.serialize_str("balanced"),
            Weighting::Given(v) => v.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Weighting<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match toml::Value::deserialize(d)? {
            toml::Value::String(s) if s == "balanced" => Ok(Weighting::Balanced),
            toml::Value::String(s) => Err(D::Error::custom(format!(
                "expected \"balanced\" or the weights themselves, got {s:?}"
            ))),
            other => T::deserialize(other)
                .map(Weighting::Given)
                .map_err(|e| D::Error::custom(e.to_string())),
        }
    }
}

/// The optimizer (`type = "..."`), PyTorch's hyperparameter names and defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum OptimizerSpec {
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        dampening: f64,
        #[serde(default)]
        nesterov: bool,
        #[serde(default)]
        weight_decay: f64,
    },
    Adagrad {
        #[serde(default = "default_adagrad_lr")]
        lr: f64,
        #[serde(default)]
        lr_decay: f64,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default = "default_adagrad_eps")]
        eps: f64,
    },
    Rmsprop {
        #[serde(default = "default_rmsprop_lr")]
        lr: f64,
        #[serde(default = "default_alpha")]
        alpha: f64,
        #[serde(default = "default_eps")]
        eps: f64,
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        centered: bool,
    },
    Adam {
        #[serde(default = "default_adam_lr")]
        lr: f64,
        #[serde(default = "default_betas")]
        betas: [f64; 2],
        #[serde(default = "default_eps")]
        eps: f64,
        /// L2 penalty added to the gradient (PyTorch's Adam `weight_decay`).
        #[serde(default)]
        weight_decay: f64,
        #[serde(default)]
        amsgrad: bool,
    },
    /// Adam with decoupled weight decay (Loshchilov & Hutter).
    Adamw {
        #[serde(default = "default_adam_lr")]
        lr: f64,
        #[serde(default = "default_betas")]
        betas: [f64; 2],
        #[serde(default = "default_eps")]
        eps: f64,
        #[serde(default = "default_adamw_decay")]
        weight_decay: f64,
        #[serde(default)]
        amsgrad: bool,
    },
    /// Per-weight rates: `+kappa` while a gradient keeps its sign, `x(1 - phi)` when it flips;
    /// `theta` weighs the gradient average.
    DeltaBarDelta {
        lr: f64,
        #[serde(default = "default_kappa")]
        kappa: f64,
        #[serde(default = "default_phi")]
        phi: f64,
        #[serde(default = "default_theta")]
        theta: f64,
    },
}

impl OptimizerSpec {
    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            OptimizerSpec::Sgd { lr, .. }
            | OptimizerSpec::Adagrad { lr, .. }
            | OptimizerSpec::Rmsprop { lr, .. }
            | OptimizerSpec::Adam { lr, .. }
            | OptimizerSpec::Adamw { lr, .. }
            | OptimizerSpec::DeltaBarDelta { lr, .. } => lr,
        }
    }

    /// The weight decay (0 for delta-bar-delta, which has none).
    pub fn weight_decay(&self) -> f64 {
        match *self {
            OptimizerSpec::Sgd { weight_decay, .. }
            | OptimizerSpec::Adagrad { weight_decay, .. }
            | OptimizerSpec::Rmsprop { weight_decay, .. }
            | OptimizerSpec::Adam { weight_decay, .. }
            | OptimizerSpec::Adamw { weight_decay, .. } => weight_decay,
            OptimizerSpec::DeltaBarDelta { .. } => 0.0,
        }
    }
}

impl Default for OptimizerSpec {
    fn default() -> Self {
        OptimizerSpec::Adam {
            lr: default_adam_lr(),
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: 0.0,
            amsgrad: false,
        }
    }
}

fn default_adagrad_lr() -> f64 {
    1e-2
}
fn default_adagrad_eps() -> f64 {
    1e-10
}
fn default_rmsprop_lr() -> f64 {
    1e-2
}
fn default_alpha() -> f64 {
    0.99
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adam_lr() -> f64 {
    1e-3
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_adamw_decay() -> f64 {
    1e-2
}
fn default_kappa() -> f64 {
    1e-4
}
fn default_phi() -> f64 {
    0.1
}
fn default_theta() -> f64 {
    0.7
}

/// The learning-rate schedule (`type = "..."`), evaluated at the start of every epoch.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ScheduleSpec {
    #[default]
    Constant,
    /// `lr · e^(−k t)`.
    Exponential { k: f64 },
    /// `lr / (1 + k t)`.
    Inverse { k: f64 },
    /// `lr · gamma^⌊t / step_size⌋`.
    Step {
        step_size: usize,
        #[serde(default = "default_gamma")]
        gamma: f64,
    },
    /// Cosine annealing to `min_lr` over `t_max` epochs.
    Cosine {
        t_max: usize,
        #[serde(default)]
        min_lr: f64,
    },
    /// Multiply by `factor` after `patience` epochs without improvement of the monitored loss.
    ReduceOnPlateau {
        #[serde(default = "default_plateau_factor")]
        factor: f64,
        #[serde(default = "default_plateau_patience")]
        patience: usize,
        #[serde(default = "default_plateau_threshold")]
        threshold: f64,
        #[serde(default)]
        cooldown: usize,
        #[serde(default)]
        min_lr: f64,
    },
}

fn default_gamma() -> f64 {
    0.1
}
fn default_plateau_factor() -> f64 {
    0.1
}
fn default_plateau_patience() -> usize {
    10
}
fn default_plateau_threshold() -> f64 {
    1e-4
}

/// How long and in what batches to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Linear learning-rate warm-up over this many epochs (before the schedule takes over).
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Rescale the gradients when their global L2 norm exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_norm: Option<f64>,
    /// Clamp each gradient element to `[-v, v]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_grad_value: Option<f64>,
    /// L2 penalty `λ/2 · Σ‖W‖²` on the weight matrices (not biases or normalization scales),
    /// added to each batch's loss, as Keras' kernel regularizer and scikit-learn's `alpha`
    /// (whose `alpha` is `l2 · batch_size`). The optimizer's `weight_decay` is the other kind:
    /// on every parameter, inside the optimizer.
    #[serde(default)]
    pub l2: f64,
    /// L1 penalty `λ · Σ|W|` on the weight matrices (sparse weights).
    #[serde(default)]
    pub l1: f64,
    /// A sparsity penalty on one hidden layer's output (a sparse autoencoder's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparsity: Option<SparsitySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<EarlyStoppingSpec>,
    /// Commit a checkpoint after an epoch once this many seconds have passed since the last
    /// one (0: after every epoch); always after the first and the last epoch. Each commit
    /// syncs several files to disk, which costs more than an epoch of a tiny model.
    #[serde(default = "default_checkpoint_seconds")]
    pub checkpoint_seconds: f64,
}

fn default_checkpoint_seconds() -> f64 {
    2.0
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            epochs: default_epochs(),
            batch_size: default_batch_size(),
            warmup_epochs: 0,
            clip_grad_norm: None,
            clip_grad_value: None,
            l2: 0.0,
            l1: 0.0,
            sparsity: None,
            early_stopping: None,
            checkpoint_seconds: default_checkpoint_seconds(),
        }
    }
}

fn default_epochs() -> usize {
    20
}
fn default_batch_size() -> usize {
    32
}

/// A sparsity penalty on the output of `model.layers[layer]`, added to each batch's loss:
/// `l1`: `weight · Σ|h| / N`; `kl` (Ng's sparse autoencoder, on a sigmoid's output):
/// `weight · Σ_j KL(target ‖ ρ̂_j)`, with `ρ̂_j` unit j's mean activation over the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparsitySpec {
    pub layer: usize,
    pub penalty: SparsityPenalty,
    pub weight: f64,
    /// `kl` only: the target mean activation ρ (default 0.05).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
}

/// The kind of [`SparsitySpec`] penalty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparsityPenalty {
    L1,
    Kl,
}

/// Stop when the validation loss has not improved for `patience` epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingSpec {
    #[serde(default = "default_patience")]
    pub patience: usize,
    #[serde(default)]
    pub min_delta: f64,
    /// Keep the weights of the best epoch at the end.
    #[serde(default = "yes")]
    pub restore_best: bool,
}

fn default_patience() -> usize {
    10
}

/// Hyperparameter search (`nabla tune`): ranges over config keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneSpec {
    /// The validation metric to rank trials by (`loss`, `accuracy`, `f1`, `rmse`, `r2`, ...);
    /// default `loss`. Losses and errors are minimized, scores maximized.
    #[serde(default = "default_metric")]
    pub metric: String,
    /// Dotted config keys (`"optimizer.lr"`, `"model.layers.0.units"`) and their ranges.
    pub space: std::collections::BTreeMap<String, RangeSpec>,
    /// Score each trial by k-fold cross-validation (the mean over `folds` stratified folds of
    /// the training data) instead of the one validation split; 1 (the default) uses the split.
    #[serde(default = "one_fold")]
    pub folds: usize,
}

fn one_fold() -> usize {
    1
}

fn default_metric() -> String {
    "loss".into()
}

/// The values a tuned key takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RangeSpec {
    /// Exactly these values (grid and random search).
    Values(Vec<toml::Value>),
    /// `[low, high]` sampled uniformly in log space (random); `points` log-spaced values (grid).
    LogUniform {
        low: f64,
        high: f64,
        #[serde(default = "default_points")]
        points: usize,
    },
    /// `[low, high]` sampled uniformly (random); `points` evenly spaced values (grid).
    Uniform {
        low: f64,
        high: f64,
        #[serde(default = "default_points")]
        points: usize,
    },
    /// Integers in `[low, high]` (random: uniform; grid: every `step`).
    Int {
        low: i64,
        high: i64,
        #[serde(default = "default_int_step")]
        step: i64,
    },
}

fn default_points() -> usize {
    3
}
fn default_int_step() -> i64 {
    1
}

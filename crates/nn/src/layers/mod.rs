//! Layers, one concept per file. Linear maps and activations are separate modules (the decoupled
//! view of a layer: `a = φ(W x + b)` is `Linear` then an activation).

/// The options every builder of a layer with a weight and an optional bias shares (fields
/// `bias`, `init`, `bias_init`, `dtype`), and the bias they make.
macro_rules! weight_options {
    ($default_init:literal) => {
        /// With or without a bias (default: with).
        pub fn bias(mut self, bias: bool) -> Self {
            self.bias = bias;
            self
        }
        #[doc = concat!("The weight initializer (default ", $default_init, ").")]
        pub fn init(mut self, init: Init) -> Self {
            self.init = init;
            self
        }
        /// The bias initializer (default [`Init::Zeros`]).
        pub fn bias_init(mut self, init: Init) -> Self {
            self.bias_init = init;
            self
        }
        /// The parameters' dtype (default f32).
        pub fn dtype(mut self, dtype: DType) -> Self {
            self.dtype = dtype;
            self
        }
        /// The bias `[n]` when the layer has one, drawn from `rng`.
        fn make_bias(&self, n: usize, rng: &mut Rng) -> Result<Option<Var>> {
            if !self.bias {
                return Ok(None);
            }
            Ok(Some(Var::new(&self.bias_init.tensor(
                [n],
                self.dtype,
                rng,
            )?)?))
        }
    };
}

mod activation;
mod augment;
mod conv;
mod dropout;
mod embedding;
mod flatten;
mod linear;
mod noise;
mod norm;
mod recurrent;
mod residual;
mod sequential;

pub use activation::{
    Elu, Gelu, HardTanh, LeakyRelu, LogSoftmax, PRelu, Relu, Sigmoid, Softmax, Tanh,
};
pub use augment::{FlipMode, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};
pub use conv::{AvgPool2d, Conv2d, Conv2dBuilder, GlobalAvgPool2d, MaxPool2d, Reshape};
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use linear::{Linear, LinearBuilder};
pub use noise::{GaussianNoise, MaskingNoise};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, LayerNorm};
pub use recurrent::{Recurrent, RecurrentBuilder, SequenceOutput};
pub use residual::Residual;
pub use sequential::Sequential;

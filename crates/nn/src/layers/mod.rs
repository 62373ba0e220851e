//! Layers, one concept per file. Linear maps and activations are separate modules (the decoupled
//! view of a layer: `a = φ(W x + b)` is `Linear` then an activation).

mod activation;
mod dropout;
mod flatten;
mod linear;
mod norm;
mod residual;
mod sequential;

pub use activation::{
    Elu, Gelu, HardTanh, LeakyRelu, LogSoftmax, PRelu, Relu, Sigmoid, Softmax, Tanh,
};
pub use dropout::Dropout;
pub use flatten::Flatten;
pub use linear::{Linear, LinearBuilder};
pub use norm::{BatchNorm1d, LayerNorm};
pub use residual::Residual;
pub use sequential::Sequential;

//! Activation layers: elementwise non-linearities `a = φ(z)` as modules of their own. Each
//! delegates to the op of the same name in nabla-core, where its derivative lives.

use crate::module::{Ctx, Module, VarKind};
use nabla_core::{DType, Error, Result, Tensor, Var};

/// Declares a parameter-free activation module that applies `$op` to its input.
macro_rules! activation {
    ($(#[$doc:meta])* $name:ident, $label:literal, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Module for $name {
            fn forward(&self, $x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
                $body
            }
            fn describe(&self) -> String {
                $label.to_string()
            }
        }
    };
}

activation!(
    /// `max(0, z)`; derivative 0 for z < 0 (dead units pass no gradient), 1 for z > 0, 0 at 0.
    Relu, "ReLU", |x| x.relu()
);
activation!(
    /// `1 / (1 + e^{−z})`; derivative `σ(1 − σ)` ≤ 1/4, tiny when |z| is large (saturation).
    Sigmoid, "Sigmoid", |x| x.sigmoid()
);
activation!(
    /// `tanh z`; derivative `1 − tanh² z` ≤ 1, tiny when |z| is large (saturation).
    Tanh, "Tanh", |x| x.tanh()
);
activation!(
    /// Gaussian error linear unit `z Φ(z)` (the exact erf form, as PyTorch's default).
    Gelu, "GELU", |x| x.gelu()
);

/// `max(0, z) + slope · min(0, z)`: a ReLU whose negative side keeps a small gradient.
#[derive(Debug, Clone, Copy)]
pub struct LeakyRelu {
    pub negative_slope: f64,
}

impl LeakyRelu {
    /// Slope on the negative side (PyTorch's default is 0.01).
    pub fn new(negative_slope: f64) -> Self {
        LeakyRelu { negative_slope }
    }
}

impl Default for LeakyRelu {
    fn default() -> Self {
        LeakyRelu::new(0.01)
    }
}

impl Module for LeakyRelu {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.leaky_relu(self.negative_slope)
    }
    fn describe(&self) -> String {
        format!("LeakyReLU({})", self.negative_slope)
    }
}

/// `z` for z > 0, `α (e^z − 1)` otherwise.
#[derive(Debug, Clone, Copy)]
pub struct Elu {
    pub alpha: f64,
}

impl Elu {
    /// ELU with the given α (PyTorch's default is 1).
    pub fn new(alpha: f64) -> Self {
        Elu { alpha }
    }
}

impl Default for Elu {
    fn default() -> Self {
        Elu::new(1.0)
    }
}

impl Module for Elu {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.elu(self.alpha)
    }
    fn describe(&self) -> String {
        format!("ELU({})", self.alpha)
    }
}

/// `clamp(z, min, max)`: gradient 1 strictly inside the bounds, 0 outside.
#[derive(Debug, Clone, Copy)]
pub struct HardTanh {
    pub min: f64,
    pub max: f64,
}

impl HardTanh {
    /// Bounds `[min, max]` (PyTorch's default is `[-1, 1]`).
    pub fn new(min: f64, max: f64) -> Self {
        HardTanh { min, max }
    }
}

impl Default for HardTanh {
    fn default() -> Self {
        HardTanh::new(-1.0, 1.0)
    }
}

impl Module for HardTanh {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.hard_tanh(self.min, self.max)
    }
    fn describe(&self) -> String {
        format!("HardTanh({}, {})", self.min, self.max)
    }
}

/// `e^{z_i} / Σ_j e^{z_j}` along `dim`. For classification, feed logits to the cross-entropy
/// loss instead (it fuses the softmax and is stable); use this layer for probabilities.
#[derive(Debug, Clone, Copy)]
pub struct Softmax {
    pub dim: isize,
}

impl Softmax {
    /// Softmax over `dim` (negative counts from the end).
    pub fn new(dim: isize) -> Self {
        Softmax { dim }
    }
}

impl Default for Softmax {
    fn default() -> Self {
        Softmax::new(-1)
    }
}

impl Module for Softmax {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.softmax(self.dim)
    }
    fn describe(&self) -> String {
        format!("Softmax(dim={})", self.dim)
    }
}

/// `log softmax` along `dim`, computed stably as `z − logsumexp(z)`.
#[derive(Debug, Clone, Copy)]
pub struct LogSoftmax {
    pub dim: isize,
}

impl LogSoftmax {
    /// Log-softmax over `dim`.
    pub fn new(dim: isize) -> Self {
        LogSoftmax { dim }
    }
}

impl Default for LogSoftmax {
    fn default() -> Self {
        LogSoftmax::new(-1)
    }
}

impl Module for LogSoftmax {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.log_softmax(self.dim)
    }
    fn describe(&self) -> String {
        format!("LogSoftmax(dim={})", self.dim)
    }
}

/// Parametric ReLU: `max(0, z) + a · min(0, z)` with a learnable slope `a`, one shared
/// (`num_parameters = 1`) or one per channel (dim 1 of the input). Initial slope 0.25, as He et
/// al. (2015) and PyTorch.
pub struct PRelu {
    weight: Var,
}

impl PRelu {
    /// `num_parameters` slopes (1, or the number of channels), each starting at `init`.
    pub fn new(num_parameters: usize, init: f64, dtype: DType) -> Result<PRelu> {
        if num_parameters == 0 {
            return Err(Error::invalid("PReLU", "num_parameters must be positive"));
        }
        Ok(PRelu {
            weight: Var::new(&Tensor::full([num_parameters], init, dtype))?,
        })
    }

    /// The learnable slopes.
    pub fn weight(&self) -> &Var {
        &self.weight
    }
}

impl Module for PRelu {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.prelu(&self.weight.as_tensor())
    }
    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        f("weight", &self.weight, VarKind::Parameter);
    }
    fn describe(&self) -> String {
        format!("PReLU({})", self.weight.elem_count())
    }
}

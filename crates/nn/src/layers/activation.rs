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
            fn runs_step_by_step(&self) -> bool {
                true
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

/// Declares an activation module with one option `$field` (with PyTorch's default), a `new`
/// constructor, `Default`, a forward pass `$body` over input `$x` and option `$v`, and whether
/// it acts on each step of a sequence alone given the option ([`Module::runs_step_by_step`]).
macro_rules! activation_with {
    ($(#[$doc:meta])* $name:ident { $field:ident: $ty:ty = $default:expr },
     $new_doc:literal, $label:literal, |$x:ident, $v:ident| $body:expr,
     steps: |$s:ident| $steps:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name {
            pub $field: $ty,
        }

        impl $name {
            #[doc = $new_doc]
            pub fn new($field: $ty) -> Self {
                $name { $field }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new($default)
            }
        }

        impl Module for $name {
            fn forward(&self, $x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
                let $v = self.$field;
                $body
            }
            fn describe(&self) -> String {
                format!($label, self.$field)
            }
            fn runs_step_by_step(&self) -> bool {
                let $s = self.$field;
                $steps
            }
        }
    };
}

activation_with!(
    /// `max(0, z) + slope · min(0, z)`: a ReLU whose negative side keeps a small gradient.
    LeakyRelu { negative_slope: f64 = 0.01 },
    "Slope on the negative side (PyTorch's default is 0.01).",
    "LeakyReLU({})",
    |x, slope| x.leaky_relu(slope),
    steps: |_slope| true
);
activation_with!(
    /// `z` for z > 0, `α (e^z − 1)` otherwise.
    Elu { alpha: f64 = 1.0 },
    "ELU with the given α (PyTorch's default is 1).",
    "ELU({})",
    |x, alpha| x.elu(alpha),
    steps: |_alpha| true
);

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
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

activation_with!(
    /// `e^{z_i} / Σ_j e^{z_j}` along `dim`. For classification, feed logits to the cross-entropy
    /// loss instead (it fuses the softmax and is stable); use this layer for probabilities.
    Softmax { dim: isize = -1 },
    "Softmax over `dim` (negative counts from the end).",
    "Softmax(dim={})",
    |x, dim| x.softmax(dim),
    steps: |dim| dim == -1
);
activation_with!(
    /// `log softmax` along `dim`, computed stably as `z − logsumexp(z)`.
    LogSoftmax { dim: isize = -1 },
    "Log-softmax over `dim`.",
    "LogSoftmax(dim={})",
    |x, dim| x.log_softmax(dim),
    steps: |dim| dim == -1
);

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
    /// One shared slope only: per-channel slopes index dim 1, a sequence's time.
    fn runs_step_by_step(&self) -> bool {
        self.weight.elem_count() == 1
    }
}

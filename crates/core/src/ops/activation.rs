//! Activations: relu, leaky_relu, prelu, elu, sigmoid, tanh, hard_tanh, gelu, softmax,
//! log_softmax, dropout. Derivatives at kinks follow PyTorch (documented per function).

use super::elementwise::{UnaryFn, c, unary_fn};
use crate::autograd::{Backward, InputGrads};
use crate::cpu::reduce::{softmax_backward_middle, softmax_middle};
use crate::dtype::Float;
use crate::random::Rng;
use crate::tensor::float_dispatch;
use crate::{Error, Result, Tensor};
use smallvec::smallvec;

unary_fn!(
    Relu,
    "relu",
    |x| if x > T::zero() { x } else { T::zero() },
    |x, y| if x > T::zero() { T::one() } else { T::zero() }
);

// σ(x) computed without overflow for any x (f32: branch-free, so the loop vectorizes).
unary_fn!(Sigmoid, "sigmoid", |x| x.sigmoid_fma::<FMA>(), |x, y| y
    * (T::one() - y));

unary_fn!(Tanh, "tanh", |x| x.tanh_fma::<FMA>(), |x, y| T::one()
    - y * y);

// GELU(x) = x Φ(x) with the exact normal CDF Φ(x) = erfc(−x/√2) / 2 (PyTorch's default GELU,
// which writes Φ as (1 + erf(x/√2)) / 2: the same function, without its cancellation for
// x < 0); GELU'(x) = Φ(x) + x φ(x), φ(x) = e^(−x²/2) / √(2π).
unary_fn!(Gelu, "gelu", |x| x * x.normal_cdf_fma::<FMA>(), |x, y| {
    let pdf = (-(x * x) * c::<T>(0.5)).exp_fma::<FMA>() * c::<T>(0.398_942_280_401_432_7);
    x.normal_cdf_fma::<FMA>() + x * pdf
});

#[derive(Clone, Copy)]
struct LeakyRelu(f64);
impl UnaryFn for LeakyRelu {
    const NAME: &'static str = "leaky_relu";
    #[inline(always)]
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T {
        if x > T::zero() { x } else { x * c(self.0) }
    }
    #[inline(always)]
    fn df<T: Float, const FMA: bool>(&self, x: T, _y: T) -> T {
        if x > T::zero() { T::one() } else { c(self.0) }
    }
}

#[derive(Clone, Copy)]
struct Elu(f64);
impl UnaryFn for Elu {
    const NAME: &'static str = "elu";
    #[inline(always)]
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T {
        if x > T::zero() {
            x
        } else {
            c::<T>(self.0) * x.exp_m1_fma::<FMA>()
        }
    }
    #[inline(always)]
    fn df<T: Float, const FMA: bool>(&self, x: T, _y: T) -> T {
        if x > T::zero() {
            T::one()
        } else {
            c::<T>(self.0) * x.exp_fma::<FMA>()
        }
    }
}

#[derive(Clone, Copy)]
struct HardTanh {
    min: f64,
    max: f64,
}
impl UnaryFn for HardTanh {
    const NAME: &'static str = "hard_tanh";
    #[inline(always)]
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T {
        if x.is_nan() {
            x
        } else {
            x.max(c(self.min)).min(c(self.max))
        }
    }
    #[inline(always)]
    fn df<T: Float, const FMA: bool>(&self, x: T, _y: T) -> T {
        if x > c(self.min) && x < c(self.max) {
            T::one()
        } else {
            T::zero()
        }
    }
}

impl Tensor {
    /// `max(x, 0)`. Its derivative at 0 is 0 (PyTorch's choice).
    pub fn relu(&self) -> Result<Tensor> {
        self.unary(Relu)
    }

    /// `x` for `x > 0`, `slope · x` otherwise; derivative at 0 is `slope`.
    pub fn leaky_relu(&self, negative_slope: f64) -> Result<Tensor> {
        Error::check_finite("leaky_relu", "negative_slope", negative_slope)?;
        self.unary(LeakyRelu(negative_slope))
    }

    /// `x` for `x > 0`, `α (eˣ − 1)` otherwise; derivative at 0 is `α`.
    pub fn elu(&self, alpha: f64) -> Result<Tensor> {
        Error::check_finite("elu", "alpha", alpha)?;
        self.unary(Elu(alpha))
    }

    /// The logistic function `1 / (1 + e⁻ˣ)`, computed without overflow for any `x`.
    pub fn sigmoid(&self) -> Result<Tensor> {
        self.unary(Sigmoid)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Result<Tensor> {
        self.unary(Tanh)
    }

    /// `x` clamped to `[min, max]`; derivative 1 strictly inside, 0 at and beyond the bounds
    /// (PyTorch's `hardtanh`; note `clamp` passes the gradient at the bounds).
    pub fn hard_tanh(&self, min: f64, max: f64) -> Result<Tensor> {
        if min.is_nan() || max.is_nan() || min >= max {
            return Err(Error::invalid(
                "hard_tanh",
                format!("needs min < max, got min {min}, max {max}"),
            ));
        }
        self.unary(HardTanh { min, max })
    }

    /// GELU with the exact normal CDF: `x Φ(x)`.
    pub fn gelu(&self) -> Result<Tensor> {
        self.unary(Gelu)
    }

    /// Parametric ReLU: `x` for `x > 0`, `w · x` otherwise, with a learnable slope `w` that has
    /// one element or one per channel (dim 1 of the input). Derivative in x at 0 is `w`.
    pub fn prelu(&self, weight: &Tensor) -> Result<Tensor> {
        let n = weight.elem_count();
        let slope = if n == 1 {
            weight.reshape(())?
        } else if weight.rank() == 1 && self.rank() >= 2 && self.dims()[1] == n {
            let mut dims = vec![1; self.rank()];
            dims[1] = n;
            weight.reshape(dims)?
        } else {
            return Err(Error::ShapeMismatch {
                op: "prelu",
                lhs: self.shape().clone().into(),
                rhs: weight.shape().clone().into(),
                reason: "the weight needs 1 element or one per channel (dim 1 of the input)".into(),
            });
        };
        let positive = self.gt(&Tensor::scalar_of(0.0, self.dtype()))?;
        Tensor::where_cond(&positive, self, &self.mul(&slope)?)
    }

    /// Softmax along `dim`, computed stably (the max is subtracted first).
    pub fn softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, false)
    }

    /// `log(softmax(x))` along `dim`, computed as `x − max − log Σ exp(x − max)`.
    pub fn log_softmax(&self, dim: isize) -> Result<Tensor> {
        self.softmax_impl(dim, true)
    }

    fn softmax_impl(&self, dim: isize, log: bool) -> Result<Tensor> {
        let op = if log { "log_softmax" } else { "softmax" };
        let dtype = self.expect_float(op)?;
        if self.rank() == 0 {
            return Err(Error::bad_shape(op, self.shape(), "needs at least one dim"));
        }
        let dim = self.shape().resolve_dim(op, dim)?;
        let (outer, len, inner) = split_at_dim(self.dims(), dim);
        float_dispatch!(dtype, op, |T| {
            let x = self.float_data::<T>();
            let y = softmax_middle(&x, outer, len, inner, log);
            Ok(Tensor::record_vec(
                y,
                self.shape().clone(),
                &[self],
                SoftmaxBackward { dim, log },
            ))
        })
    }

    /// Inverted dropout: each element is zeroed with probability `p` and the survivors are scaled
    /// by `1 / (1 − p)`, so the expectation is unchanged. The mask comes from `rng`, so a seed
    /// fixes it. Gradients flow through the kept elements, scaled the same way.
    pub fn dropout(&self, p: f64, rng: &mut Rng) -> Result<Tensor> {
        let dtype = self.expect_float("dropout")?;
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid(
                "dropout",
                format!("p must be in [0, 1], got {p}"),
            ));
        }
        if p == 0.0 {
            return Ok(self.clone());
        }
        let mask = if p == 1.0 {
            Tensor::zeros(self.shape().clone(), dtype)
        } else {
            let scale = 1.0 / (1.0 - p);
            let keep: Vec<f64> = (0..self.elem_count())
                .map(|_| if rng.uniform() >= p { scale } else { 0.0 })
                .collect();
            Tensor::from_vec(keep, self.shape().clone())?.to_dtype(dtype)?
        };
        self.mul(&mask)
    }
}

/// `[outer, len, inner]`: the extents before, at and after `dim`.
pub(crate) fn split_at_dim(dims: &[usize], dim: usize) -> (usize, usize, usize) {
    (
        dims[..dim].iter().product(),
        dims[dim],
        dims[dim + 1..].iter().product(),
    )
}

struct SoftmaxBackward {
    dim: usize,
    log: bool,
}

impl Backward for SoftmaxBackward {
    fn name(&self) -> &'static str {
        if self.log { "log_softmax" } else { "softmax" }
    }
    fn backward(&self, _inputs: &[Tensor], y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let (outer, len, inner) = split_at_dim(y.dims(), self.dim);
        float_dispatch!(y.dtype(), self.name(), |T| {
            let dx = softmax_backward_middle(
                &y.float_data::<T>(),
                &g.float_data::<T>(),
                outer,
                len,
                inner,
                self.log,
            );
            Ok(smallvec![Some(Tensor::from_parts(dx, y.shape().clone()))])
        })
    }
}

//! Elementwise ops with NumPy broadcasting: arithmetic, math functions, comparisons, `where`.
//!
//! A unary op is a [`UnaryFn`] (value and derivative side by side), a binary op a [`BinaryFn`]
//! (value and both partial derivatives). One generic forward and one generic backward serve them
//! all: the backward is a single fused pass `g ⊙ f'(x)`, summed over broadcast dims.

use crate::autograd::{Backward, InputGrads};
use crate::cpu::simd_map::{SimdFn, map_simd};
use crate::cpu::strided::map_n;
use crate::dtype::{Element, Float};
use crate::layout::Layout;
use crate::tensor::float_dispatch;
use crate::{DType, Error, Result, Shape, Tensor};
use smallvec::smallvec;

/// An elementwise function of one argument with its derivative. Both are compiled once per
/// vector width (see [`map_simd`]); `FMA` says whether multiply-adds are fused there, for the
/// [`Float`] functions that take it (`sigmoid_fma` and its kin).
pub(crate) trait UnaryFn: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    /// y = f(x)
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T;
    /// dy/dx, given x and y = f(x) (whichever is cheaper).
    fn df<T: Float, const FMA: bool>(&self, x: T, y: T) -> T;
}

/// `y = f(x)` of a [`UnaryFn`], as the vectorized kernel's function.
#[derive(Clone, Copy)]
struct Value<F>(F);
impl<T: Float, F: UnaryFn> SimdFn<T, 1> for Value<F> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, [x]: [T; 1]) -> T {
        self.0.f::<T, FMA>(x)
    }
}

/// `dx = g f'(x)` of a [`UnaryFn`], from `[x, y, g]`.
#[derive(Clone, Copy)]
struct Gradient<F>(F);
impl<T: Float, F: UnaryFn> SimdFn<T, 3> for Gradient<F> {
    #[inline(always)]
    fn apply<const FMA: bool>(&self, [x, y, g]: [T; 3]) -> T {
        g * self.0.df::<T, FMA>(x, y)
    }
}

/// An elementwise function of two arguments with its partial derivatives.
pub(crate) trait BinaryFn: Copy + Send + Sync + 'static {
    const NAME: &'static str;
    fn f<T: Float>(&self, a: T, b: T) -> T;
    /// ∂y/∂a given a, b and y.
    fn da<T: Float>(&self, a: T, b: T, y: T) -> T;
    /// ∂y/∂b given a, b and y.
    fn db<T: Float>(&self, a: T, b: T, y: T) -> T;
}

impl Tensor {
    /// Applies a unary function and records its backward.
    pub(crate) fn unary<F: UnaryFn>(&self, op: F) -> Result<Tensor> {
        let dtype = self.expect_float(F::NAME)?;
        float_dispatch!(dtype, F::NAME, |T| {
            let out = map_simd(Value(op), [&self.contiguous_data::<T>()?]);
            Ok(Tensor::record_vec(
                out,
                self.shape().clone(),
                &[self],
                UnaryBackward(op),
            ))
        })
    }

    /// The two operands broadcast to their common shape, as layouts over their own storage.
    fn broadcast_pair(&self, op: &'static str, rhs: &Tensor) -> Result<(Shape, Layout, Layout)> {
        let shape = Shape::broadcast(op, self.shape(), rhs.shape())?;
        let la = self.layout().broadcast_to(&shape);
        let lb = rhs.layout().broadcast_to(&shape);
        Ok((shape, la, lb))
    }

    /// Applies a binary function with broadcasting and records `backward`.
    fn binary<F: BinaryFn>(
        &self,
        rhs: &Tensor,
        op: F,
        backward: impl Backward + 'static,
    ) -> Result<Tensor> {
        let dtype = self.same_dtype(F::NAME, rhs)?;
        self.expect_float(F::NAME)?;
        let (shape, la, lb) = self.broadcast_pair(F::NAME, rhs)?;
        float_dispatch!(dtype, F::NAME, |T| {
            let out = map_n(
                [(self.raw::<T>()?, &la), (rhs.raw::<T>()?, &lb)],
                |[a, b]| op.f(a, b),
            );
            Ok(Tensor::record_vec(out, shape, &[self, rhs], backward))
        })
    }

    /// Applies a [`BinaryFn`] with broadcasting, its backward from the partial derivatives.
    pub(crate) fn binary_fn<F: BinaryFn>(&self, rhs: &Tensor, op: F) -> Result<Tensor> {
        self.binary(rhs, op, BinaryBackward(op))
    }

    /// `self + rhs`, broadcasting.
    pub fn add(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(
            rhs,
            Add,
            LinearBackward {
                name: Add::NAME,
                coef_b: 1.0,
            },
        )
    }

    /// `self - rhs`, broadcasting.
    pub fn sub(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(
            rhs,
            Sub,
            LinearBackward {
                name: Sub::NAME,
                coef_b: -1.0,
            },
        )
    }

    /// `self * rhs` (elementwise), broadcasting.
    pub fn mul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Mul, BinaryBackward(Mul))
    }

    /// `self / rhs` (elementwise), broadcasting.
    pub fn div(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Div, BinaryBackward(Div))
    }

    /// Elementwise maximum. At ties the gradient is split evenly (as PyTorch's `maximum`).
    pub fn maximum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Maximum, BinaryBackward(Maximum))
    }

    /// Elementwise minimum. At ties the gradient is split evenly (as PyTorch's `minimum`).
    pub fn minimum(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Minimum, BinaryBackward(Minimum))
    }

    /// `self ^ rhs` elementwise. `∂/∂rhs = y ln(self)`, taken as 0 where `self == 0` (PyTorch's
    /// convention).
    pub fn pow(&self, rhs: &Tensor) -> Result<Tensor> {
        self.binary(rhs, Pow, BinaryBackward(Pow))
    }

    /// `-self`.
    pub fn neg(&self) -> Result<Tensor> {
        self.unary(Neg)
    }
    /// `e^self`.
    pub fn exp(&self) -> Result<Tensor> {
        self.unary(Exp)
    }
    /// Natural logarithm (−inf at 0, NaN below, as IEEE).
    pub fn log(&self) -> Result<Tensor> {
        self.unary(Log)
    }
    /// Square root.
    pub fn sqrt(&self) -> Result<Tensor> {
        self.unary(Sqrt)
    }
    /// `self²`.
    pub fn square(&self) -> Result<Tensor> {
        self.unary(Square)
    }
    /// Absolute value; its derivative at 0 is taken as 0 (PyTorch's `sgn`).
    pub fn abs(&self) -> Result<Tensor> {
        self.unary(Abs)
    }
    /// `self ^ exponent` for a constant exponent.
    pub fn powf(&self, exponent: f64) -> Result<Tensor> {
        self.unary(Powf(exponent))
    }
    /// `self + c`.
    pub fn add_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(AddScalar(c))
    }
    /// `self * c`.
    pub fn mul_scalar(&self, c: f64) -> Result<Tensor> {
        self.unary(MulScalar(c))
    }
    /// Limits values to `[min, max]`; the gradient is 1 inside the range, bounds included
    /// (PyTorch's `clamp`), 0 outside.
    pub fn clamp(&self, min: f64, max: f64) -> Result<Tensor> {
        if min.is_nan() || max.is_nan() || min > max {
            return Err(Error::invalid(
                "clamp",
                format!("needs min <= max, got min {min}, max {max}"),
            ));
        }
        self.unary(Clamp { min, max })
    }

    /// Converts to another dtype (floats round to f32; to i64 truncates toward zero). Gradients
    /// flow between f32 and f64.
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let converted = match (self.dtype(), dtype) {
            (DType::F32, DType::F64) => self.convert::<f32, f64>(|v| v as f64),
            (DType::F64, DType::F32) => self.convert::<f64, f32>(|v| v as f32),
            (DType::I64, DType::F32) => self.convert::<i64, f32>(|v| v as f32),
            (DType::I64, DType::F64) => self.convert::<i64, f64>(|v| v as f64),
            (DType::F32, DType::I64) => self.convert::<f32, i64>(|v| v as i64),
            (DType::F64, DType::I64) => self.convert::<f64, i64>(|v| v as i64),
            _ => unreachable!("same dtype returned above"),
        }?;
        let storage = std::sync::Arc::new(converted);
        let layout = Layout::contiguous(self.shape().clone());
        if dtype.is_float() && self.dtype().is_float() {
            Ok(Tensor::record(storage, layout, &[self], ToDType))
        } else {
            Ok(Tensor::from_shared(storage, layout, false))
        }
    }

    fn convert<A: Element, B: Element + Default>(
        &self,
        f: impl Fn(A) -> B + Sync + Send,
    ) -> Result<crate::storage::Storage> {
        let out = map_n([(self.raw::<A>()?, self.layout())], |[v]| f(v));
        Ok(B::into_storage(out))
    }

    /// Elementwise `self == rhs` as 0/1 in the inputs' dtype (no gradient).
    pub fn eq(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare("eq", rhs, |o| o == std::cmp::Ordering::Equal)
    }
    /// Elementwise `self != rhs` as 0/1 (no gradient).
    pub fn ne(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare("ne", rhs, |o| o != std::cmp::Ordering::Equal)
    }
    /// Elementwise `self < rhs` as 0/1 (no gradient).
    pub fn lt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare("lt", rhs, |o| o == std::cmp::Ordering::Less)
    }
    /// Elementwise `self <= rhs` as 0/1 (no gradient).
    pub fn le(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare("le", rhs, |o| o != std::cmp::Ordering::Greater)
    }
    /// Elementwise `self > rhs` as 0/1 (no gradient).
    pub fn gt(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare("gt", rhs, |o| o == std::cmp::Ordering::Greater)
    }
    /// Elementwise `self >= rhs` as 0/1 (no gradient).
    pub fn ge(&self, rhs: &Tensor) -> Result<Tensor> {
        self.compare("ge", rhs, |o| o != std::cmp::Ordering::Less)
    }

    /// Compares with broadcasting; NaN compares false with everything (so `ne` is true).
    fn compare(
        &self,
        op: &'static str,
        rhs: &Tensor,
        pick: fn(std::cmp::Ordering) -> bool,
    ) -> Result<Tensor> {
        let dtype = self.same_dtype(op, rhs)?;
        let (shape, la, lb) = self.broadcast_pair(op, rhs)?;
        // Unordered (NaN) pairs are "not equal" and nothing else.
        let unordered = op == "ne";
        fn run<T: Element + PartialOrd + Default>(
            [a, b]: [&Tensor; 2],
            [la, lb]: [&Layout; 2],
            shape: Shape,
            [zero, one]: [T; 2],
            pick: fn(std::cmp::Ordering) -> bool,
            unordered: bool,
        ) -> Result<Tensor> {
            let out = map_n([(a.raw::<T>()?, la), (b.raw::<T>()?, lb)], |[x, y]| {
                let hit = x.partial_cmp(&y).map_or(unordered, pick);
                if hit { one } else { zero }
            });
            Ok(Tensor::from_parts(out, shape))
        }
        let operands = [self, rhs];
        let layouts = [&la, &lb];
        match dtype {
            DType::F32 => run::<f32>(operands, layouts, shape, [0.0, 1.0], pick, unordered),
            DType::F64 => run::<f64>(operands, layouts, shape, [0.0, 1.0], pick, unordered),
            DType::I64 => run::<i64>(operands, layouts, shape, [0, 1], pick, unordered),
        }
    }

    /// `cond ? on_true : on_false` elementwise, broadcasting all three; `cond` is true where
    /// non-zero and may have any dtype. Gradients flow to the branch that was taken.
    pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let dtype = on_true.same_dtype("where", on_false)?;
        on_true.expect_float("where")?;
        let shape = Shape::broadcast("where", on_true.shape(), on_false.shape())?;
        let shape = Shape::broadcast("where", cond.shape(), &shape)?;
        let mask = cond.nonzero_mask(dtype)?;
        let (lm, la, lb) = (
            mask.layout().broadcast_to(&shape),
            on_true.layout().broadcast_to(&shape),
            on_false.layout().broadcast_to(&shape),
        );
        float_dispatch!(dtype, "where", |T| {
            let out = map_n(
                [
                    (mask.raw::<T>()?, &lm),
                    (on_true.raw::<T>()?, &la),
                    (on_false.raw::<T>()?, &lb),
                ],
                |[m, a, b]| if m != T::zero() { a } else { b },
            );
            Ok(Tensor::record_vec(
                out,
                shape,
                &[on_true, on_false],
                WhereBackward { mask },
            ))
        })
    }

    /// 1 where non-zero, 0 elsewhere, in `dtype` (no gradient).
    pub(crate) fn nonzero_mask(&self, dtype: DType) -> Result<Tensor> {
        let t = match self.dtype() {
            DType::I64 => self.ne(&Tensor::scalar(0i64))?,
            _ => self.ne(&Tensor::scalar_of(0.0, self.dtype()))?,
        };
        t.to_dtype(dtype).map(|t| t.detach())
    }

    /// Sums this gradient over the dims that broadcasting expanded, down to `shape`.
    pub(crate) fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let dims = crate::autograd::reduced_dims_for_broadcast(self.dims(), shape.dims());
        let dims: Vec<isize> = dims.iter().map(|&d| d as isize).collect();
        self.sum_dims(&dims, true)?.reshape(shape.clone())
    }
}

// ------------------------------------------------------------------------ generic backward rules

/// Backward of any [`UnaryFn`]: `dx = g ⊙ f'(x)` in one pass over (x, y, g).
struct UnaryBackward<F>(F);

impl<F: UnaryFn> Backward for UnaryBackward<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }
    fn backward(&self, inputs: &[Tensor], y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        float_dispatch!(g.dtype(), F::NAME, |T| {
            let operands = [
                x.contiguous_data::<T>()?,
                y.contiguous_data::<T>()?,
                g.contiguous_data::<T>()?,
            ];
            let out = map_simd(Gradient(self.0), operands.each_ref().map(|o| &o[..]));
            Ok(smallvec![Some(Tensor::from_parts(out, x.shape().clone()))])
        })
    }
}

/// Backward of any [`BinaryFn`]: `da = Σ_broadcast g ⊙ ∂y/∂a`, likewise for b.
struct BinaryBackward<F>(F);

impl<F: BinaryFn> Backward for BinaryBackward<F> {
    fn name(&self) -> &'static str {
        F::NAME
    }
    fn backward(&self, inputs: &[Tensor], y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let shape = y.shape();
        let (la, lb) = (
            a.layout().broadcast_to(shape),
            b.layout().broadcast_to(shape),
        );
        float_dispatch!(g.dtype(), F::NAME, |T| {
            let srcs = [
                (a.raw::<T>()?, &la),
                (b.raw::<T>()?, &lb),
                (y.raw::<T>()?, y.layout()),
                (g.raw::<T>()?, g.layout()),
            ];
            let mut grads: InputGrads = smallvec![None, None];
            if a.requires_grad() {
                let d = map_n(srcs, |[a, b, y, g]| g * self.0.da(a, b, y));
                grads[0] = Some(Tensor::from_parts(d, shape.clone()).sum_to(a.shape())?);
            }
            if b.requires_grad() {
                let d = map_n(srcs, |[a, b, y, g]| g * self.0.db(a, b, y));
                grads[1] = Some(Tensor::from_parts(d, shape.clone()).sum_to(b.shape())?);
            }
            Ok(grads)
        })
    }
}

/// Backward of `a + c·b` (add, sub): no multiplication needed for `a`.
struct LinearBackward {
    name: &'static str,
    coef_b: f64,
}

impl Backward for LinearBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let ga = if a.requires_grad() {
            Some(g.sum_to(a.shape())?)
        } else {
            None
        };
        let gb = if b.requires_grad() {
            let s = g.sum_to(b.shape())?;
            Some(if self.coef_b == 1.0 {
                s
            } else {
                s.mul_scalar(self.coef_b)?
            })
        } else {
            None
        };
        Ok(smallvec![ga, gb])
    }
}

struct WhereBackward {
    mask: Tensor,
}

impl Backward for WhereBackward {
    fn name(&self) -> &'static str {
        "where"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let zero = Tensor::scalar_of(0.0, g.dtype());
        let mut grads: InputGrads = smallvec![None, None];
        if inputs[0].requires_grad() {
            grads[0] = Some(Tensor::where_cond(&self.mask, g, &zero)?.sum_to(inputs[0].shape())?);
        }
        if inputs[1].requires_grad() {
            grads[1] = Some(Tensor::where_cond(&self.mask, &zero, g)?.sum_to(inputs[1].shape())?);
        }
        Ok(grads)
    }
}

struct ToDType;

impl Backward for ToDType {
    fn name(&self) -> &'static str {
        "to_dtype"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        Ok(smallvec![Some(g.to_dtype(inputs[0].dtype())?)])
    }
}

// ------------------------------------------------------------------------ the functions

macro_rules! unary_fn {
    ($name:ident, $label:literal, |$x:ident| $f:expr, |$x2:ident, $y2:ident| $df:expr) => {
        #[derive(Clone, Copy)]
        pub(crate) struct $name;
        impl $crate::ops::elementwise::UnaryFn for $name {
            const NAME: &'static str = $label;
            #[inline(always)]
            fn f<T: $crate::dtype::Float, const FMA: bool>(&self, $x: T) -> T {
                $f
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn df<T: $crate::dtype::Float, const FMA: bool>(&self, $x2: T, $y2: T) -> T {
                $df
            }
        }
    };
}
pub(crate) use unary_fn;

#[inline(always)]
pub(crate) fn c<T: Float>(v: f64) -> T {
    T::from_f64(v)
}

unary_fn!(Neg, "neg", |x| -x, |x, y| -T::one());
// f32 exp and log: vectorized polynomials, within a few ulp of libm, its special values and
// subnormals included.
unary_fn!(Exp, "exp", |x| x.exp_fma::<FMA>(), |x, y| y);
unary_fn!(Log, "log", |x| x.ln_fma::<FMA>(), |x, y| x.recip());
unary_fn!(Sqrt, "sqrt", |x| x.sqrt(), |x, y| c::<T>(0.5) / y);
unary_fn!(Square, "square", |x| x * x, |x, y| x + x);
unary_fn!(Abs, "abs", |x| x.abs(), |x, y| if x > T::zero() {
    T::one()
} else if x < T::zero() {
    -T::one()
} else {
    T::zero()
});

#[derive(Clone, Copy)]
pub(crate) struct Powf(pub(crate) f64);
impl UnaryFn for Powf {
    const NAME: &'static str = "powf";
    #[inline(always)]
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T {
        x.powf(c(self.0))
    }
    #[inline(always)]
    fn df<T: Float, const FMA: bool>(&self, x: T, _y: T) -> T {
        if self.0 == 0.0 {
            T::zero()
        } else {
            c::<T>(self.0) * x.powf(c(self.0 - 1.0))
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) struct AddScalar(pub(crate) f64);
impl UnaryFn for AddScalar {
    const NAME: &'static str = "add_scalar";
    #[inline(always)]
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T {
        x + c(self.0)
    }
    #[inline(always)]
    fn df<T: Float, const FMA: bool>(&self, _x: T, _y: T) -> T {
        T::one()
    }
}

#[derive(Clone, Copy)]
pub(crate) struct MulScalar(pub(crate) f64);
impl UnaryFn for MulScalar {
    const NAME: &'static str = "mul_scalar";
    #[inline(always)]
    fn f<T: Float, const FMA: bool>(&self, x: T) -> T {
        x * c(self.0)
    }
    #[inline(always)]
    fn df<T: Float, const FMA: bool>(&self, _x: T, _y: T) -> T {
        c(self.0)
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Clamp {
    min: f64,
    max: f64,
}
impl UnaryFn for Clamp {
    const NAME: &'static str = "clamp";
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
        if x >= c(self.min) && x <= c(self.max) {
            T::one()
        } else {
            T::zero()
        }
    }
}

#[derive(Clone, Copy)]
struct Add;
impl BinaryFn for Add {
    const NAME: &'static str = "add";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a + b
    }
    fn da<T: Float>(&self, _: T, _: T, _: T) -> T {
        T::one()
    }
    fn db<T: Float>(&self, _: T, _: T, _: T) -> T {
        T::one()
    }
}

#[derive(Clone, Copy)]
struct Sub;
impl BinaryFn for Sub {
    const NAME: &'static str = "sub";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a - b
    }
    fn da<T: Float>(&self, _: T, _: T, _: T) -> T {
        T::one()
    }
    fn db<T: Float>(&self, _: T, _: T, _: T) -> T {
        -T::one()
    }
}

#[derive(Clone, Copy)]
struct Mul;
impl BinaryFn for Mul {
    const NAME: &'static str = "mul";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a * b
    }
    fn da<T: Float>(&self, _: T, b: T, _: T) -> T {
        b
    }
    fn db<T: Float>(&self, a: T, _: T, _: T) -> T {
        a
    }
}

#[derive(Clone, Copy)]
struct Div;
impl BinaryFn for Div {
    const NAME: &'static str = "div";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a / b
    }
    fn da<T: Float>(&self, _: T, b: T, _: T) -> T {
        b.recip()
    }
    fn db<T: Float>(&self, a: T, b: T, _: T) -> T {
        -a / (b * b)
    }
}

#[derive(Clone, Copy)]
struct Maximum;
impl BinaryFn for Maximum {
    const NAME: &'static str = "maximum";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        if a.is_nan() || b.is_nan() {
            T::nan()
        } else {
            a.max(b)
        }
    }
    fn da<T: Float>(&self, a: T, b: T, _: T) -> T {
        if a > b {
            T::one()
        } else if a == b {
            c(0.5)
        } else {
            T::zero()
        }
    }
    fn db<T: Float>(&self, a: T, b: T, _: T) -> T {
        if b > a {
            T::one()
        } else if a == b {
            c(0.5)
        } else {
            T::zero()
        }
    }
}

#[derive(Clone, Copy)]
struct Minimum;
impl BinaryFn for Minimum {
    const NAME: &'static str = "minimum";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        if a.is_nan() || b.is_nan() {
            T::nan()
        } else {
            a.min(b)
        }
    }
    fn da<T: Float>(&self, a: T, b: T, _: T) -> T {
        if a < b {
            T::one()
        } else if a == b {
            c(0.5)
        } else {
            T::zero()
        }
    }
    fn db<T: Float>(&self, a: T, b: T, _: T) -> T {
        if b < a {
            T::one()
        } else if a == b {
            c(0.5)
        } else {
            T::zero()
        }
    }
}

#[derive(Clone, Copy)]
struct Pow;
impl BinaryFn for Pow {
    const NAME: &'static str = "pow";
    fn f<T: Float>(&self, a: T, b: T) -> T {
        a.powf(b)
    }
    fn da<T: Float>(&self, a: T, b: T, _: T) -> T {
        if b == T::zero() {
            T::zero()
        } else {
            b * a.powf(b - T::one())
        }
    }
    fn db<T: Float>(&self, a: T, _: T, y: T) -> T {
        if a == T::zero() {
            T::zero()
        } else {
            y * a.ln()
        }
    }
}

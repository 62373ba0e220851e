//! Element types. Tensors hold `f32` (the default, for training), `f64` (for gradient checking) or
//! `i64` (class indices and other integer data, not differentiable).

use std::fmt;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F64,
    I64,
}

impl DType {
    /// Whether values of this type can carry gradients.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 | DType::I64 => 8,
        }
    }

    /// The lower-case name used in messages and files (`"f32"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I64 => "i64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A floating-point element type that kernels are written over once, generically.
pub trait Float:
    num_traits::Float
    + num_traits::FloatConst
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + std::ops::DivAssign
    + std::iter::Sum
    + fmt::Debug
    + fmt::Display
    + Default
    + Send
    + Sync
    + 'static
{
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Converts from `f64`, rounding for `f32`.
    fn from_f64(v: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// `σ(x) = 1 / (1 + e⁻ˣ)` without overflow, with the f32 polynomial's multiply-adds fused
    /// when `FMA`. Pass `true` only in code compiled with the `fma` target feature (elsewhere a
    /// fused multiply-add is a libm call), as the crate's `with_simd!` does. f32: branch-free,
    /// so loops over it vectorize.
    fn sigmoid_fma<const FMA: bool>(self) -> Self;
    /// `tanh x`, with fused multiply-adds when `FMA` (as [`Float::sigmoid_fma`]). f32:
    /// branch-free, within a few ulp of libm.
    fn tanh_fma<const FMA: bool>(self) -> Self;
    /// `eˣ`, with fused multiply-adds when `FMA` (as [`Float::sigmoid_fma`]). f32: branch-free, so
    /// loops over it vectorize, within a few ulp of libm (subnormal results included). f64:
    /// libm's.
    fn exp_fma<const FMA: bool>(self) -> Self;
    /// `eˣ − 1`, accurate near 0 (as [`Float::exp_fma`]; f64: libm's).
    fn exp_m1_fma<const FMA: bool>(self) -> Self;
    /// `ln x` (as [`Float::exp_fma`]; f32: within a few ulp of libm, relative near 1 too, with
    /// libm's special values; f64: libm's).
    fn ln_fma<const FMA: bool>(self) -> Self;
    /// The standard normal CDF `Φ(x) = erfc(−x/√2) / 2`, accurate relative to its value in the
    /// left tail (`(1 + erf(x/√2)) / 2` cancels there). f32: vectorizable, within a few ulp
    /// (plus `x²` ulp far out, the function's own conditioning); f64: libm's `erfc`.
    fn normal_cdf_fma<const FMA: bool>(self) -> Self;
}

impl Float for f32 {
    const DTYPE: DType = DType::F32;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn sigmoid_fma<const FMA: bool>(self) -> Self {
        crate::cpu::fast_math::sigmoid_f32::<FMA>(self)
    }
    #[inline(always)]
    fn tanh_fma<const FMA: bool>(self) -> Self {
        crate::cpu::fast_math::tanh_f32::<FMA>(self)
    }
    #[inline(always)]
    fn exp_fma<const FMA: bool>(self) -> Self {
        crate::cpu::fast_math::exp_f32::<FMA>(self)
    }
    #[inline(always)]
    fn exp_m1_fma<const FMA: bool>(self) -> Self {
        crate::cpu::fast_math::exp_m1_f32::<FMA>(self)
    }
    #[inline(always)]
    fn ln_fma<const FMA: bool>(self) -> Self {
        crate::cpu::fast_math::ln_f32::<FMA>(self)
    }
    #[inline(always)]
    fn normal_cdf_fma<const FMA: bool>(self) -> Self {
        0.5 * crate::cpu::fast_math::erfc_f32::<FMA>(-self * std::f32::consts::FRAC_1_SQRT_2)
    }
}

impl Float for f64 {
    const DTYPE: DType = DType::F64;
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn sigmoid_fma<const FMA: bool>(self) -> Self {
        // Exp of a non-positive number only (libm's exp either way).
        if self >= 0.0 {
            1.0 / (1.0 + (-self).exp())
        } else {
            let e = self.exp();
            e / (1.0 + e)
        }
    }
    #[inline(always)]
    fn tanh_fma<const FMA: bool>(self) -> Self {
        self.tanh()
    }
    #[inline(always)]
    fn exp_fma<const FMA: bool>(self) -> Self {
        self.exp()
    }
    #[inline(always)]
    fn exp_m1_fma<const FMA: bool>(self) -> Self {
        self.exp_m1()
    }
    #[inline(always)]
    fn ln_fma<const FMA: bool>(self) -> Self {
        self.ln()
    }
    #[inline(always)]
    fn normal_cdf_fma<const FMA: bool>(self) -> Self {
        0.5 * libm::erfc(-self * std::f64::consts::FRAC_1_SQRT_2)
    }
}

/// Any element type a tensor can hold: the floats and `i64`.
pub trait Element: Copy + Send + Sync + fmt::Debug + PartialEq + 'static {
    /// The matching [`DType`].
    const DTYPE: DType;
    /// Wraps a vector into a storage.
    fn into_storage(v: Vec<Self>) -> crate::storage::Storage;
    /// Borrows a storage's buffer when it holds this type.
    fn slice(s: &crate::storage::Storage) -> Option<&[Self]>;
    /// Mutably borrows a storage's buffer when it holds this type.
    fn slice_mut(s: &mut crate::storage::Storage) -> Option<&mut [Self]>;
    /// Converts to `f64` (exact for the floats, rounding for large `i64`).
    fn as_f64(self) -> f64;
}

macro_rules! impl_element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn into_storage(v: Vec<Self>) -> crate::storage::Storage {
                crate::storage::Storage::$variant(v)
            }
            fn slice(s: &crate::storage::Storage) -> Option<&[Self]> {
                match s {
                    crate::storage::Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn slice_mut(s: &mut crate::storage::Storage) -> Option<&mut [Self]> {
                match s {
                    crate::storage::Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn as_f64(self) -> f64 {
                self as f64
            }
        }
    };
}
impl_element!(f32, F32);
impl_element!(f64, F64);
impl_element!(i64, I64);

//! Branch-free `exp`, `tanh` and `σ` for f32 that the compiler vectorizes (libm's are scalar
//! calls: in an LSTM they cost more than the matrix products). Cephes' single-precision
//! algorithms (S. Moshier): a few ulp from the exact values.
//!
//! Each takes `FMA`: whether its multiply-adds are fused (one rounding each, and fewer
//! instructions: the LSTM benchmark's step 3.6% faster, the GRU's 2%). Pass `true` only in code
//! compiled with the `fma` target feature, where `mul_add` is one instruction; elsewhere it is
//! a libm call.

// The coefficients are Cephes' as published, digits beyond f32 included.
#![allow(clippy::excessive_precision)]

/// Runs `$body` compiled for the widest vectors the CPU has: AVX-512 (16 f32 lanes), else AVX2 +
/// FMA (8 lanes), else the baseline target. `$body` sees the arguments and a constant `FMA`,
/// true in the first two forms, for the functions of this module and
/// [`Float::exp_fma`](crate::dtype::Float::exp_fma) and its kin. It must sit in a function
/// generic over `T: Float` that returns `()`.
macro_rules! with_simd {
    (($($arg:ident: $ty:ty),*), $body:block) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512<T: Float>($($arg: $ty),*) {
                const FMA: bool = true;
                $body
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<T: Float>($($arg: $ty),*) {
                const FMA: bool = true;
                $body
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU has the features the function was compiled for (AVX-512F
                // implies AVX2 and FMA).
                return unsafe { avx512::<T>($($arg),*) };
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: as above.
                return unsafe { avx2::<T>($($arg),*) };
            }
        }
        const FMA: bool = false;
        $body
    }};
}
pub(crate) use with_simd;

/// `a·b + c`, fused when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `eˣ`: range reduction `x = k ln 2 + r`, `|r| ≤ ln 2 / 2`, a degree-7 polynomial for `eʳ`,
/// and `2ᵏ` built in the exponent bits. Inputs are clamped to `[−87.3, 88.7]` (NaN stays NaN):
/// far below, the result stays at the smallest normal number (no denormals); far above, +∞.
#[inline(always)]
pub(crate) fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that k·ln2 is exact in the first part.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let nan = x.is_nan();
    let x = x.clamp(-87.3, 88.7);
    // Round to nearest by adding and removing 1.5·2²³ (floor() would be a libm call without
    // SSE4.1, which stops vectorization).
    const ROUND: f32 = 12_582_912.0;
    let rounded = madd::<FMA>(x, LOG2E, ROUND);
    let k = rounded - ROUND;
    let r = madd::<FMA>(-k, LN2_LO, madd::<FMA>(-k, LN2_HI, x));
    let p = 1.987_569_1e-4_f32;
    let p = madd::<FMA>(p, r, 1.398_199_9e-3);
    let p = madd::<FMA>(p, r, 8.333_452e-3);
    let p = madd::<FMA>(p, r, 4.166_579_6e-2);
    let p = madd::<FMA>(p, r, 1.666_666_5e-1);
    let p = madd::<FMA>(p, r, 5.000_000_1e-1);
    let er = madd::<FMA>(p * r, r, r + 1.0);
    // k as an integer from the bits: `rounded` lies in [2²³, 2²⁴), where consecutive floats are
    // 1 apart, so the difference of the bit patterns is k. (`k as i32` saturates, which the
    // compiler turns into scalar compares per lane.)
    let k_int = rounded.to_bits() as i32 - ROUND.to_bits() as i32;
    let two_k = f32::from_bits(((k_int + 127) as u32) << 23);
    if nan { x } else { er * two_k }
}

/// `tanh x`: `x + x³ P(x²)` for `|x| < 0.625` (no cancellation near 0), `1 − 2 / (e²ˣ + 1)`
/// with the sign of `x` otherwise.
#[inline(always)]
pub(crate) fn tanh_f32<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = -5.704_988_7e-3_f32;
    let p = madd::<FMA>(p, z, 2.063_908_9e-2);
    let p = madd::<FMA>(p, z, -5.373_971_6e-2);
    let p = madd::<FMA>(p, z, 1.333_144_2e-1);
    let p = madd::<FMA>(p, z, -3.333_328_2e-1);
    let small = madd::<FMA>(x * z, p, x);
    let large = 1.0 - 2.0 / (exp_f32::<FMA>(2.0 * a) + 1.0);
    if a < 0.625 { small } else { large.copysign(x) }
}

/// `σ(x) = 1 / (1 + e⁻ˣ)`; exact limits 0 and 1 far out (the clamped exponential stays finite).
#[inline(always)]
pub(crate) fn sigmoid_f32<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32::<FMA>(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest error over a dense sweep, relative to the exact f64 value (absolute below 1).
    fn worst(f: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64, lo: f32, hi: f32) -> f64 {
        let n = 200_000;
        (0..=n)
            .map(|i| {
                let x = lo + (hi - lo) * i as f32 / n as f32;
                let (got, want) = (f(x) as f64, exact(x as f64));
                (got - want).abs() / want.abs().max(1.0)
            })
            .fold(0.0, f64::max)
    }

    /// Both forms, separate and fused multiply-adds (the test binary is not compiled with
    /// FMA: the fused form calls libm's exact `fmaf`, which rounds as the instruction does).
    fn within_a_few_ulp<const FMA: bool>() {
        let ulp = f32::EPSILON as f64;
        assert!(worst(exp_f32::<FMA>, f64::exp, -80.0, 80.0) < 3.0 * ulp);
        assert!(worst(tanh_f32::<FMA>, f64::tanh, -20.0, 20.0) < 3.0 * ulp);
        let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
        assert!(worst(sigmoid_f32::<FMA>, sigmoid, -90.0, 90.0) < 3.0 * ulp);
        // Near zero tanh keeps its relative accuracy (no 1 − 2/(e²ˣ+1) cancellation).
        for x in [1e-3f32, 1e-6, -1e-7, 1e-30] {
            let exact = (x as f64).tanh();
            let rel = ((tanh_f32::<FMA>(x) as f64 - exact) / exact).abs();
            assert!(rel < 2.0 * ulp, "tanh({x}): relative error {rel}");
        }
    }

    #[test]
    fn within_a_few_ulp_of_the_exact_functions() {
        within_a_few_ulp::<false>();
        within_a_few_ulp::<true>();
    }

    fn limits_and_nan_of<const FMA: bool>() {
        assert_eq!(sigmoid_f32::<FMA>(200.0), 1.0);
        assert!(sigmoid_f32::<FMA>(-200.0) < 1e-37);
        assert_eq!(tanh_f32::<FMA>(50.0), 1.0);
        assert_eq!(tanh_f32::<FMA>(-50.0), -1.0);
        assert!(exp_f32::<FMA>(f32::NAN).is_nan());
        assert!(tanh_f32::<FMA>(f32::NAN).is_nan());
        assert!(sigmoid_f32::<FMA>(f32::NAN).is_nan());
        assert_eq!(exp_f32::<FMA>(1000.0), f32::INFINITY);
        assert!(exp_f32::<FMA>(-1000.0) < 1.3e-38);
    }

    #[test]
    fn limits_and_nan() {
        limits_and_nan_of::<false>();
        limits_and_nan_of::<true>();
    }
}

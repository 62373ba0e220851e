//! Branch-free `eˣ`, `eˣ − 1`, `ln`, `tanh`, `σ` and `erfc` for f32 that the compiler vectorizes
//! (libm's are scalar calls: in an LSTM they cost more than the matrix products, and in a GELU
//! layer more than its linear layer). Cephes' single-precision algorithms (S. Moshier), with
//! coefficients refitted where noted: a few ulp from the exact values.
//!
//! Each takes `FMA`: whether its multiply-adds are fused (one rounding each, and fewer
//! instructions: the LSTM benchmark's step 3.6% faster, the GRU's 2%). Pass `true` only in code
//! compiled with the `fma` target feature, where `mul_add` is one instruction; elsewhere it is
//! a libm call.

// The coefficients are printed with the digits they were published or fitted with, some
// beyond f32's.
#![allow(clippy::excessive_precision)]

/// Runs `$body` compiled for the widest vectors the CPU has, or the level `NABLA_SIMD` caps it
/// at ([`crate::simd`]): AVX-512 (16 f32 lanes), AVX2 + FMA (8 lanes), or the baseline target.
/// `$body` sees the arguments and a constant `FMA`, true in the first two forms, for the
/// functions of this module and [`Float::exp_fma`](crate::dtype::Float::exp_fma) and its kin.
/// It must sit in a function that returns `()`, generic over `T: Float` in the short form; the
/// long form lists the generic parameters of the arguments in a leading `[..]`, as in
/// `with_simd!([T: Float, F: Fn(T) -> T] (f: F, x: &mut [T]), { .. })`.
macro_rules! with_simd {
    ([$($generics:tt)*] ($($arg:ident: $ty:ty),*), $body:block) => {{
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512<$($generics)*>($($arg: $ty),*) {
                #[allow(dead_code)] // Bodies without polynomials do not read it.
                const FMA: bool = true;
                $body
            }
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2<$($generics)*>($($arg: $ty),*) {
                #[allow(dead_code)] // Bodies without polynomials do not read it.
                const FMA: bool = true;
                $body
            }
            match $crate::simd::simd_level() {
                // SAFETY: the level is never above what the CPU has (`SimdLevel::detected`).
                $crate::simd::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                $crate::simd::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                $crate::simd::SimdLevel::Baseline => {}
            }
        }
        #[allow(dead_code)]
        const FMA: bool = false;
        $body
    }};
    (($($arg:ident: $ty:ty),*), $body:block) => {
        with_simd!([T: Float] ($($arg: $ty),*), $body)
    };
}
pub(crate) use with_simd;

/// `a·b + c`, fused when `FMA`.
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

/// `eʳ` and `k` for `x = k ln 2 + r`, `|r| ≤ ln 2 / 2`, with a degree-7 polynomial for `eʳ`.
/// `x` must lie in `[−104, 89]`, where `k ∈ [−150, 129]`.
#[inline(always)]
fn exp_reduced<const FMA: bool>(x: f32) -> (f32, i32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that k·ln2 is exact in the first part.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
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
    (er, rounded.to_bits() as i32 - ROUND.to_bits() as i32)
}

/// `2ᵏ` for `k ∈ [−127, 128]`, built in the exponent bits (`2⁻¹²⁷` reads as 0, `2¹²⁸` as +∞).
#[inline(always)]
fn two_to(k: i32) -> f32 {
    f32::from_bits(((k + 127) as u32) << 23)
}

/// `eˣ` over the whole f32 range, as libm's: `eʳ 2ᵏ` with `2ᵏ` as two factors `2^⌊k/2⌋ 2^⌈k/2⌉`,
/// so that results down in the subnormals (`x < −87.3`) and up to `f32::MAX` (`x ≤ 88.72`) come
/// out right. 0 below −104, +∞ above 88.72, NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32<const FMA: bool>(x: f32) -> f32 {
    let (er, k) = exp_reduced::<FMA>(x.clamp(-104.0, 89.0));
    // Each half of k ∈ [−150, 129] lies in [−75, 65]. The first product is exact; the second
    // rounds once, into the subnormals or to +∞ where the result does.
    let scaled = er * two_to(k >> 1) * two_to(k - (k >> 1));
    if x.is_nan() { x } else { scaled }
}

/// [`exp_f32`] with one `2ᵏ` factor, a few instructions fewer, for `σ` and `tanh`, which do not
/// need the extremes: below −87.3 it stays at the smallest normal number, and from 88.38 it is
/// +∞ (where the exact value is still finite).
#[inline(always)]
fn exp_normal_range_f32<const FMA: bool>(x: f32) -> f32 {
    let (er, k) = exp_reduced::<FMA>(x.clamp(-87.3, 88.7));
    if x.is_nan() { x } else { er * two_to(k) }
}

/// `p(x)` from its coefficients, highest degree first (Horner's rule).
#[inline(always)]
fn poly<const FMA: bool, const N: usize>(x: f32, coefficients: [f32; N]) -> f32 {
    let mut p = coefficients[0];
    for &c in &coefficients[1..] {
        p = madd::<FMA>(p, x, c);
    }
    p
}

/// `eˣ − 1` without the cancellation near 0: `x + x² P(x)` for `|x| < 0.35` (P a degree-5
/// polynomial fitted to `(eˣ − 1 − x) / x²` at Chebyshev nodes, ~1 ulp), `eˣ − 1` beyond, where
/// the subtraction loses at most a bit.
#[inline(always)]
pub(crate) fn exp_m1_f32<const FMA: bool>(x: f32) -> f32 {
    let p = poly::<FMA, 6>(
        x,
        [
            1.990_889_1e-4,
            1.394_215_0e-3,
            8.333_281_6e-3,
            4.166_634_0e-2,
            1.666_666_7e-1,
            0.5,
        ],
    );
    let small = madd::<FMA>(x * x, p, x);
    let large = exp_f32::<FMA>(x) - 1.0;
    if x.abs() < 0.35 { small } else { large }
}

/// `erfc x = 1 − erf x`, accurate relative to its own value in both tails (`1 − erf x` would
/// cancel to nothing where GELU's left tail needs it): within `6 + 2x²` ulp, `2x²` being the
/// function's condition number (what the rounding of `x²` alone costs).
/// - `|x| < 1`: `1 − x P(x²)`, P of degree 6 fitted to `erf(x) / x` (Cephes' form).
/// - `x ≥ 1`: `e^(−x²) Q(1/x)`, Q of degree 11 fitted to `e^(x²) erfc x` over `1/x ∈ [0, 1]`
///   (subnormal from `x > 9.3`, with the subnormals' coarser relative accuracy).
/// - `x ≤ −1`: `2 − erfc(−x)`.
///
/// The coefficients were fitted in f64 at 6000 Chebyshev nodes (numpy's `Chebyshev.fit`) and are
/// checked over a dense sweep against the f64 function (the tests below).
#[inline(always)]
#[allow(clippy::approx_constant)] // P's constant term is fitted, near 2/√π but not it.
pub(crate) fn erfc_f32<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let p = poly::<FMA, 7>(
        z,
        [
            7.882_497_4e-5,
            -8.018_855e-4,
            5.189_312_2e-3,
            -2.685_432_9e-2,
            1.128_359_7e-1,
            -3.761_262_6e-1,
            1.128_379_1,
        ],
    );
    let small = madd::<FMA>(-x, p, 1.0);
    let t = 1.0 / a.max(1.0);
    let q = poly::<FMA, 12>(
        t,
        [
            -6.568_116_7e-2,
            3.415_467_7e-1,
            -6.843_31e-1,
            5.249_478e-1,
            2.730_862_2e-1,
            -9.133_588e-1,
            7.182_259e-1,
            -5.429_939_6e-2,
            -2.764_509_9e-1,
            -2.973_852e-4,
            5.641_957e-1,
            -2.057_749_5e-8,
        ],
    );
    // Q(0) is a hair below 0 (a fitting residue): clamped, so that erfc(+∞) is +0.
    let tail = exp_f32::<FMA>(-z) * q.max(0.0);
    let large = if x < 0.0 { 2.0 - tail } else { tail };
    if a < 1.0 { small } else { large }
}

/// `ln x`: `x = 2ᵉ (1 + m)` with `1 + m ∈ [√½, √2)` taken from the bits (subnormal inputs scaled
/// by 2²³ first), `ln(1 + m) = m − m²/2 + m³ P(m)` with P of degree 8 fitted at Chebyshev nodes
/// (Cephes' form), plus `e ln 2` in two parts. `m` is exact, so the result keeps its relative
/// accuracy near `x = 1`. −∞ at ±0, NaN below 0, +∞ at +∞, as libm.
#[inline(always)]
pub(crate) fn ln_f32<const FMA: bool>(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let subnormal = x < f32::MIN_POSITIVE;
    let scaled = if subnormal { x * 8_388_608.0 } else { x };
    let bits = scaled.to_bits() as i32;
    // The exponent for a mantissa in [0.5, 1), then moved to [√½, √2).
    let e = ((bits >> 23) & 0xff) - 126 - if subnormal { 23 } else { 0 };
    let half_to_one = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32);
    let below = half_to_one < std::f32::consts::FRAC_1_SQRT_2;
    let e = (if below { e - 1 } else { e }) as f32;
    // Both differences are exact (Sterbenz).
    let m = if below {
        half_to_one + half_to_one - 1.0
    } else {
        half_to_one - 1.0
    };
    let z = m * m;
    let p = poly::<FMA, 9>(
        m,
        [
            7.149_753_7e-2,
            -1.157_120_1e-1,
            1.166_151_1e-1,
            -1.241_105e-1,
            1.424_993_7e-1,
            -1.666_848_1e-1,
            2.000_070_8e-1,
            -2.499_999e-1,
            3.333_333_1e-1,
        ],
    );
    let y = madd::<FMA>(e, LN2_LO, madd::<FMA>(m * z, p, -0.5 * z));
    let ln = madd::<FMA>(e, LN2_HI, m + y);
    let special = if x == 0.0 {
        f32::NEG_INFINITY
    } else if x == f32::INFINITY {
        x
    } else {
        f32::NAN
    };
    if x > 0.0 && x < f32::INFINITY {
        ln
    } else {
        special
    }
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
    let large = 1.0 - 2.0 / (exp_normal_range_f32::<FMA>(2.0 * a) + 1.0);
    if a < 0.625 { small } else { large.copysign(x) }
}

/// `σ(x) = 1 / (1 + e⁻ˣ)`; exact limits 0 and 1 far out (the clamped exponential stays finite).
#[inline(always)]
pub(crate) fn sigmoid_f32<const FMA: bool>(x: f32) -> f32 {
    1.0 / (1.0 + exp_normal_range_f32::<FMA>(-x))
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

    /// The largest relative error over a dense sweep, in ulp of 1, each point's error divided
    /// by `allowed(x)` (so a result below 1 means within bounds everywhere).
    fn worst_relative(
        f: impl Fn(f32) -> f32,
        exact: impl Fn(f64) -> f64,
        allowed: impl Fn(f64) -> f64,
        lo: f32,
        hi: f32,
    ) -> f64 {
        let n = 400_000;
        (0..=n)
            .map(|i| {
                let x = lo + (hi - lo) * i as f32 / n as f32;
                let (got, want) = (f(x) as f64, exact(x as f64));
                let rel = if want == 0.0 {
                    got.abs()
                } else {
                    ((got - want) / want).abs()
                };
                rel / f32::EPSILON as f64 / allowed(x as f64)
            })
            .fold(0.0, f64::max)
    }

    /// Relative accuracy over the normal range: `eˣ` down to the smallest normal result, `ln x`
    /// from subnormal inputs to the largest, and where a naive formula cancels, `eˣ − 1` near 0,
    /// `ln x` near 1 and `erfc` in its right tail.
    fn relative_accuracy_of<const FMA: bool>() {
        let exp = worst_relative(exp_f32::<FMA>, f64::exp, |_| 3.0, -87.3, 88.7);
        assert!(exp < 1.0, "exp: {exp}");
        let exp_m1 = worst_relative(exp_m1_f32::<FMA>, f64::exp_m1, |_| 2.0, -30.0, 80.0);
        assert!(exp_m1 < 1.0, "exp_m1: {exp_m1}");
        for x in [1e-3f32, -1e-5, 1e-8, -3e-30, 0.349, -0.351] {
            let rel = (exp_m1_f32::<FMA>(x) as f64 - (x as f64).exp_m1()) / (x as f64).exp_m1();
            assert!(rel.abs() < 2.0 * f32::EPSILON as f64, "exp_m1({x}): {rel}");
        }
        for (lo, hi) in [(1e-6, 4.0), (0.5, 1.5), (4.0, 1e6), (1e30, 3e38)] {
            let ln = worst_relative(ln_f32::<FMA>, f64::ln, |_| 2.0, lo, hi);
            assert!(ln < 1.0, "ln over [{lo}, {hi}]: {ln}");
        }
        // Subnormal inputs, and the neighbours of 1 (where ln x ≈ x − 1 must stay relative).
        for x in [
            1e-40f32,
            1.5e-45,
            1.0 + f32::EPSILON,
            1.0 - f32::EPSILON / 2.0,
            1.001,
            0.999,
        ] {
            let rel = (ln_f32::<FMA>(x) as f64 - (x as f64).ln()) / (x as f64).ln();
            assert!(rel.abs() < 2.0 * f32::EPSILON as f64, "ln({x}): {rel}");
        }
        // The rounding of x² alone costs 2x² ulp (erfc's condition number).
        let erfc = worst_relative(
            erfc_f32::<FMA>,
            libm::erfc,
            |x| 6.0 + 2.0 * x * x,
            -10.0,
            9.3,
        );
        assert!(erfc < 1.0, "erfc: {erfc}");
    }

    #[test]
    fn relative_accuracy_where_naive_formulas_cancel() {
        relative_accuracy_of::<false>();
        relative_accuracy_of::<true>();
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
        assert_eq!(exp_f32::<FMA>(-1000.0), 0.0);
        assert_eq!(exp_f32::<FMA>(f32::NEG_INFINITY), 0.0);
        // Where a single 2ᵏ factor would overflow or stop at the smallest normal number.
        for x in [88.5f32, 88.72, -87.5, -95.0, -103.0] {
            let (got, want) = (exp_f32::<FMA>(x) as f64, (x as f64).exp());
            let tolerance = if want < f32::MIN_POSITIVE as f64 {
                f32::from_bits(1) as f64 // one subnormal step
            } else {
                3.0 * want * f32::EPSILON as f64
            };
            assert!(
                (got - want).abs() <= tolerance,
                "exp({x}) = {got}, not {want}"
            );
        }
        assert_eq!(exp_f32::<FMA>(88.73), f32::INFINITY);
        assert_eq!(exp_m1_f32::<FMA>(-200.0), -1.0);
        assert_eq!(exp_m1_f32::<FMA>(f32::INFINITY), f32::INFINITY);
        assert!(exp_m1_f32::<FMA>(f32::NAN).is_nan());
        assert_eq!(erfc_f32::<FMA>(f32::INFINITY).to_bits(), 0.0f32.to_bits());
        assert_eq!(erfc_f32::<FMA>(10.5), 0.0);
        assert_eq!(erfc_f32::<FMA>(f32::NEG_INFINITY), 2.0);
        assert_eq!(erfc_f32::<FMA>(0.0), 1.0);
        assert!(erfc_f32::<FMA>(f32::NAN).is_nan());
        assert_eq!(ln_f32::<FMA>(1.0), 0.0);
        assert_eq!(ln_f32::<FMA>(0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32::<FMA>(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln_f32::<FMA>(f32::INFINITY), f32::INFINITY);
        assert!(ln_f32::<FMA>(-1.0).is_nan());
        assert!(ln_f32::<FMA>(f32::NEG_INFINITY).is_nan());
        assert!(ln_f32::<FMA>(f32::NAN).is_nan());
    }

    #[test]
    fn limits_and_nan() {
        limits_and_nan_of::<false>();
        limits_and_nan_of::<true>();
    }
}

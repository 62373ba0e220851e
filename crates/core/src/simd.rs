//! Which vector instructions nabla's own loops run with: the activations, `exp` and `log`, the
//! softmax rows, the recurrent gates and, through [`dispatch`], the optimizers' updates (the
//! matrix products' `gemm` and `faer` pick their own kernels). By default the widest the CPU
//! has. A cap, from the environment variable `NABLA_SIMD` or [`set_max_simd_level`], runs the
//! narrower code instead: to test it on a machine that has wider units, or to compare speed or
//! results across levels.
//!
//! AVX-512 and AVX2 give the same bits: the same arithmetic in wider registers, with fused
//! multiply-adds in both. The baseline has no fused multiply-add, so its polynomials round
//! differently, within a few ulp.

use crate::{Error, Result};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// A set of vector instructions the CPU kernels are compiled for, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// The compilation target's own (SSE2 on x86-64): 4 f32 lanes, no fused multiply-add.
    Baseline,
    /// AVX2 and FMA: 8 f32 lanes.
    Avx2,
    /// AVX-512 F and VL (with AVX2 and FMA): 16 f32 lanes.
    Avx512,
}

impl SimdLevel {
    /// Every level, narrowest first.
    pub const ALL: [SimdLevel; 3] = [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512];

    /// The name `NABLA_SIMD` and `--simd` take: `baseline`, `avx2` or `avx512`.
    pub fn as_str(self) -> &'static str {
        match self {
            SimdLevel::Baseline => "baseline",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }

    /// The names, widest first, as an error lists them: `avx512, avx2 or baseline`.
    pub fn choices() -> String {
        let names: Vec<&str> = SimdLevel::ALL.iter().rev().map(|l| l.as_str()).collect();
        let (last, rest) = names.split_last().expect("three levels");
        format!("{} or {last}", rest.join(", "))
    }

    /// The widest level this CPU supports.
    pub fn detected() -> SimdLevel {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            if has!("avx512f") && has!("avx512vl") && has!("avx2") && has!("fma") {
                return SimdLevel::Avx512;
            }
            if has!("avx2") && has!("fma") {
                return SimdLevel::Avx2;
            }
        }
        SimdLevel::Baseline
    }

    fn from_u8(v: u8) -> SimdLevel {
        SimdLevel::ALL[v as usize]
    }
}

impl fmt::Display for SimdLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SimdLevel {
    type Err = Error;

    fn from_str(s: &str) -> Result<SimdLevel> {
        SimdLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::invalid(
                    "simd level",
                    format!("unknown level '{s}': expected {}", SimdLevel::choices()),
                )
            })
    }
}

/// Work to compile once per SIMD level: [`dispatch`] runs [`SimdKernel::run`] in a function
/// built for the level in use, so that its loops vectorize to that width. Mark `run`, and what
/// it calls, `#[inline(always)]`: only code inlined into that function gets the wider
/// instructions.
pub trait SimdKernel {
    /// The work. `FMA` says whether fused multiply-adds are single instructions here (AVX2 and
    /// AVX-512); without it, `mul_add` is a slow library call.
    fn run<const FMA: bool>(self);
}

/// Runs `kernel` compiled for the level in use ([`simd_level`]). The optimizers' update loops
/// go through it; within the crate, `with_simd!` does the same for the CPU kernels.
pub fn dispatch<K: SimdKernel>(kernel: K) {
    use crate::cpu::fast_math::with_simd;
    with_simd!([K: SimdKernel] (kernel: K), {
        kernel.run::<FMA>();
    })
}

/// The level in use, as an index into [`SimdLevel::ALL`]; `UNSET` until first asked.
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);
const UNSET: u8 = u8::MAX;

/// The level the kernels run with: the widest the CPU has, capped by `NABLA_SIMD` (read on
/// first use) or by [`set_max_simd_level`]. An unknown `NABLA_SIMD` is reported once on stderr
/// and ignored (the command line refuses it instead).
pub fn simd_level() -> SimdLevel {
    match LEVEL.load(Ordering::Relaxed) {
        UNSET => {
            let cap = match std::env::var("NABLA_SIMD") {
                Ok(value) => value.parse().unwrap_or_else(|e| {
                    eprintln!("nabla: ignoring NABLA_SIMD: {e}");
                    SimdLevel::Avx512
                }),
                Err(_) => SimdLevel::Avx512,
            };
            set_max_simd_level(cap)
        }
        v => SimdLevel::from_u8(v),
    }
}

/// Caps the level for the whole process (a level the CPU lacks gives the widest it has) and
/// returns the level now in use. Kernels already running finish with the level they started
/// with.
pub fn set_max_simd_level(max: SimdLevel) -> SimdLevel {
    let level = max.min(SimdLevel::detected());
    LEVEL.store(level as u8, Ordering::Relaxed);
    level
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors_that_list_the_choices() {
        for level in SimdLevel::ALL {
            assert_eq!(level.as_str().parse::<SimdLevel>().unwrap(), level);
            assert_eq!(
                level as usize,
                SimdLevel::ALL.iter().position(|&l| l == level).unwrap()
            );
        }
        assert_eq!(" AVX2 ".parse::<SimdLevel>().unwrap(), SimdLevel::Avx2);
        let message = "sse9".parse::<SimdLevel>().unwrap_err().to_string();
        assert!(
            message.contains("'sse9'") && message.contains("avx512, avx2 or baseline"),
            "{message}"
        );
    }
}

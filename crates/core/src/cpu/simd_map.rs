//! Elementwise maps whose function is compiled once per vector width (`with_simd!`): the
//! activations' polynomial `σ`, `tanh`, `eˣ − 1` and `Φ` then run 8 or 16 lanes at a time with
//! fused multiply-adds, where `map_n`'s closures get the baseline target's 4.

use super::PARALLEL_THRESHOLD;
use super::fast_math::with_simd;
use super::strided::at;
use crate::dtype::Float;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A function of `N` elements, written once for both forms of multiply-add: `FMA` says whether
/// they are fused (see [`Float::sigmoid_fma`]).
pub(crate) trait SimdFn<T: Float, const N: usize>: Copy + Send + Sync {
    fn apply<const FMA: bool>(&self, args: [T; N]) -> T;
}

/// `f` applied elementwise to `N` contiguous slices of equal length. Large inputs run in
/// parallel chunks; every element is computed alone, so the thread count never changes a bit.
pub(crate) fn map_simd<T: Float, F: SimdFn<T, N>, const N: usize>(f: F, srcs: [&[T]; N]) -> Vec<T> {
    let n = srcs[0].len();
    assert!(
        srcs.iter().all(|s| s.len() == n),
        "map_simd: operands of different lengths"
    );
    let mut out: Vec<T> = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    if n >= PARALLEL_THRESHOLD {
        const CHUNK: usize = 1 << 14;
        slots
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(c, chunk)| {
                let parts: [&[T]; N] =
                    std::array::from_fn(|k| &srcs[k][c * CHUNK..][..chunk.len()]);
                map_chunk(f, parts, chunk);
            });
    } else {
        map_chunk(f, srcs, slots);
    }
    // SAFETY: `map_chunk` writes every slot it is given, and the chunks cover all n.
    unsafe { out.set_len(n) };
    out
}

/// One chunk of [`map_simd`]: `out[i] = f(srcs[..][i])`, every slot written.
fn map_chunk<T: Float, F: SimdFn<T, N>, const N: usize>(
    f: F,
    srcs: [&[T]; N],
    out: &mut [MaybeUninit<T>],
) {
    with_simd!([T: Float, F: SimdFn<T, N>, const N: usize] (f: F, srcs: [&[T]; N], out: &mut [MaybeUninit<T>]), {
        // Slices of exactly out.len(): no bounds checks in the loop, so it vectorizes.
        let srcs: [&[T]; N] = std::array::from_fn(|k| &srcs[k][..out.len()]);
        for (i, slot) in out.iter_mut().enumerate() {
            slot.write(f.apply::<FMA>(at(&srcs, i)));
        }
    })
}

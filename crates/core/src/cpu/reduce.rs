//! Reductions and row-wise kernels over a contiguous buffer viewed as `[outer, len, inner]`:
//! the middle axis is reduced (or normalized, for softmax), the others are kept.

use super::PARALLEL_THRESHOLD;
use super::fast_math::with_simd;
use crate::dtype::Float;
use rayon::prelude::*;

/// Sum over the middle axis. Rows are accumulated whole (vectorized along `inner`); a lone
/// contiguous axis (`inner == 1`) uses eight partial sums, which also bounds the rounding error
/// of long f32 sums.
pub(crate) fn sum_middle<T: Float>(x: &[T], outer: usize, len: usize, inner: usize) -> Vec<T> {
    let mut out = vec![T::zero(); outer * inner];
    if !out.is_empty() {
        sum_middle_into(x, &mut out, len, inner);
    }
    out
}

/// [`sum_middle`] into `out` (zeroed, `outer · inner` long, not empty), compiled per SIMD
/// level: at the baseline's 4 lanes, `sum_contiguous`'s eight accumulators took shuffles on
/// every step (7% of the CNN benchmark). The same additions in the same order at every level:
/// the same bits.
fn sum_middle_into<T: Float>(x: &[T], out: &mut [T], len: usize, inner: usize) {
    with_simd!((x: &[T], out: &mut [T], len: usize, inner: usize), {
        if inner == 1 {
            for (o, slot) in out.iter_mut().enumerate() {
                *slot = sum_contiguous(&x[o * len..(o + 1) * len]);
            }
            return;
        }
        for (o, acc) in out.chunks_exact_mut(inner).enumerate() {
            for r in 0..len {
                let row = &x[(o * len + r) * inner..(o * len + r + 1) * inner];
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
        }
    })
}

/// `op` folded over a slice with eight independent accumulators, so that the loop vectorizes:
/// element `i` goes to accumulator `i mod 8`, the accumulators are combined pairwise, then the
/// tail is folded in, in order.
#[inline(always)]
fn fold8<T: Copy>(x: &[T], identity: T, op: impl Fn(T, T) -> T) -> T {
    let mut acc = [identity; 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] = op(acc[k], c[k]);
        }
    }
    let pairs = |a: usize| op(op(acc[a], acc[a + 1]), op(acc[a + 2], acc[a + 3]));
    tail.iter().fold(op(pairs(0), pairs(4)), |s, &v| op(s, v))
}

/// Sum of a slice with eight independent accumulators (vectorizes; pairwise-like error).
#[inline(always)]
pub(crate) fn sum_contiguous<T: Float>(x: &[T]) -> T {
    fold8(x, T::zero(), |a, b| a + b)
}

/// Max (or min) over the middle axis with the index of the first extreme element. NaN wins
/// (propagates), as in PyTorch.
pub(crate) fn extreme_middle<T: Float>(
    x: &[T],
    outer: usize,
    len: usize,
    inner: usize,
    max: bool,
) -> (Vec<T>, Vec<usize>) {
    let mut values = Vec::with_capacity(outer * inner);
    let mut indices = Vec::with_capacity(outer * inner);
    if inner == 1 && len > 0 {
        for row in x.chunks_exact(len) {
            let at = extreme_index(row, max);
            values.push(row[at]);
            indices.push(at);
        }
        return (values, indices);
    }
    for o in 0..outer {
        for i in 0..inner {
            let base = o * len * inner + i;
            let mut best = x[base];
            let mut best_r = 0;
            for r in 1..len {
                let v = x[base + r * inner];
                if best.is_nan() {
                    break;
                }
                let better = if max { v > best } else { v < best };
                if better || v.is_nan() {
                    best = v;
                    best_r = r;
                }
            }
            values.push(best);
            indices.push(best_r);
        }
    }
    (values, indices)
}

/// The index of the first max (or min) of a non-empty contiguous row, or of its first NaN
/// (NaN wins, as in [`extreme_middle`]). The extreme comes from eight running extremes
/// (vectorized), the index from a scan for it.
fn extreme_index<T: Float>(row: &[T], max: bool) -> usize {
    if row.iter().fold(false, |any, v| any | v.is_nan()) {
        return row.iter().position(|v| v.is_nan()).unwrap_or(0);
    }
    let best = if max {
        max_contiguous(row)
    } else {
        min_contiguous(row)
    };
    row.iter().position(|&v| v == best).unwrap_or(0)
}

/// The largest element of a slice, NaN ignored (−∞ for an empty slice or one of NaN only):
/// eight running maxima, so the loop vectorizes.
#[inline(always)]
pub(crate) fn max_contiguous<T: Float>(x: &[T]) -> T {
    fold8(x, T::neg_infinity(), |a, b| if b > a { b } else { a })
}

/// The smallest element of a slice, NaN ignored (+∞ for an empty slice or one of NaN only), as
/// [`max_contiguous`].
#[inline(always)]
fn min_contiguous<T: Float>(x: &[T]) -> T {
    fold8(x, T::infinity(), |a, b| if b < a { b } else { a })
}

/// Calls `f(offset, stride)` for each of the `outer * inner` lines along the middle axis.
pub(crate) fn for_each_line(
    outer: usize,
    len: usize,
    inner: usize,
    mut f: impl FnMut(usize, usize),
) {
    for o in 0..outer {
        for i in 0..inner {
            f(o * len * inner + i, inner);
        }
    }
}

/// Elements per parallel task of the row-wise kernels (whole rows, at least one): enough work
/// to outweigh a task's scheduling.
const ROW_CHUNK: usize = 1 << 14;

/// Calls `f(first_row, inputs, out)` on chunks of whole rows of `len` elements (the same rows of
/// every input and of `out`), in parallel from [`PARALLEL_THRESHOLD`] elements. The chunks
/// depend on `len` only and each row is computed alone, so the result does not depend on the
/// number of threads.
pub(crate) fn for_row_chunks<T: Sync, U: Send, const N: usize>(
    inputs: [&[T]; N],
    out: &mut [U],
    len: usize,
    f: impl Fn(usize, [&[T]; N], &mut [U]) + Sync,
) {
    if len == 0 {
        return;
    }
    let rows_per_chunk = (ROW_CHUNK / len).max(1);
    let chunk = rows_per_chunk * len;
    let part = |c: usize, out: &mut [U]| {
        let at = c * chunk;
        f(
            c * rows_per_chunk,
            std::array::from_fn(|k| &inputs[k][at..at + out.len()]),
            out,
        )
    };
    if out.len() >= PARALLEL_THRESHOLD {
        out.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, out)| part(c, out));
    } else {
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(c, out)| part(c, out));
    }
}

/// `out = eˣ` elementwise, vectorized for f32 ([`Float::exp_fma`]).
pub(crate) fn exp_into<T: Float>(x: &[T], out: &mut [T]) {
    with_simd!((x: &[T], out: &mut [T]), {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v.exp_fma::<FMA>();
        }
    })
}

/// Softmax (or log-softmax) along the middle axis, computed stably: the line's max is subtracted
/// before exponentiating, so logits of any magnitude give finite results. Along the last axis
/// (`inner == 1`, the usual case) the rows run in parallel with a vectorized exponential.
pub(crate) fn softmax_middle<T: Float>(
    x: &[T],
    outer: usize,
    len: usize,
    inner: usize,
    log: bool,
) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
    if inner == 1 {
        for_row_chunks([x], &mut out, len, |_, [x], out| {
            softmax_rows(x, out, len, log)
        });
        return out;
    }
    for_each_line(outer, len, inner, |base, stride| {
        let at = |r: usize| base + r * stride;
        let mut max = T::neg_infinity();
        for r in 0..len {
            max = max.max(x[at(r)]);
        }
        if max == T::neg_infinity() {
            max = T::zero();
        }
        let mut sum = T::zero();
        for r in 0..len {
            let e = (x[at(r)] - max).exp();
            out[at(r)] = e;
            sum += e;
        }
        if log {
            let lse = sum.ln();
            for r in 0..len {
                out[at(r)] = x[at(r)] - max - lse;
            }
        } else {
            let inv = T::one() / sum;
            for r in 0..len {
                out[at(r)] *= inv;
            }
        }
    });
    out
}

/// [`softmax_middle`] of contiguous rows of `len` elements: `y = e^(x − m) / Σ e^(x − m)`, or
/// `x − m − log Σ e^(x − m)`, with `m` the row's max.
fn softmax_rows<T: Float>(x: &[T], out: &mut [T], len: usize, log: bool) {
    with_simd!((x: &[T], out: &mut [T], len: usize, log: bool), {
        let mut shifts = Vec::with_capacity(x.len() / len);
        for (x, out) in x.chunks_exact(len).zip(out.chunks_exact_mut(len)) {
            let mut max = max_contiguous(x);
            if max == T::neg_infinity() {
                max = T::zero();
            }
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v - max;
            }
            shifts.push(max);
        }
        // One pass over all the rows: a row's length is rarely a multiple of the vector width.
        for o in out.iter_mut() {
            *o = o.exp_fma::<FMA>();
        }
        for ((x, out), max) in x.chunks_exact(len).zip(out.chunks_exact_mut(len)).zip(shifts) {
            let sum = sum_contiguous(out);
            if log {
                let lse = sum.ln();
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = v - max - lse;
                }
            } else {
                let inv = T::one() / sum;
                for o in out.iter_mut() {
                    *o *= inv;
                }
            }
        }
    })
}

/// Backward of softmax along the middle axis: `dx = y ⊙ (g - Σ g ⊙ y)` (from the Jacobian
/// `diag(y) - y yᵀ`); for log-softmax `dx = g - exp(y) Σ g`.
pub(crate) fn softmax_backward_middle<T: Float>(
    y: &[T],
    g: &[T],
    outer: usize,
    len: usize,
    inner: usize,
    log: bool,
) -> Vec<T> {
    let mut out = vec![T::zero(); y.len()];
    if inner == 1 {
        for_row_chunks([y, g], &mut out, len, |_, [y, g], out| {
            if log {
                exp_into(y, out);
            }
            for ((y, g), out) in y
                .chunks_exact(len)
                .zip(g.chunks_exact(len))
                .zip(out.chunks_exact_mut(len))
            {
                if log {
                    let gsum = sum_contiguous(g);
                    for (o, &g) in out.iter_mut().zip(g) {
                        *o = g - *o * gsum;
                    }
                } else {
                    let dot = y.iter().zip(g).fold(T::zero(), |d, (&y, &g)| d + g * y);
                    for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
                        *o = y * (g - dot);
                    }
                }
            }
        });
        return out;
    }
    for_each_line(outer, len, inner, |base, stride| {
        let at = |r: usize| base + r * stride;
        if log {
            let mut gsum = T::zero();
            for r in 0..len {
                gsum += g[at(r)];
            }
            for r in 0..len {
                out[at(r)] = g[at(r)] - y[at(r)].exp() * gsum;
            }
        } else {
            let mut dot = T::zero();
            for r in 0..len {
                dot += g[at(r)] * y[at(r)];
            }
            for r in 0..len {
                out[at(r)] = y[at(r)] * (g[at(r)] - dot);
            }
        }
    });
    out
}

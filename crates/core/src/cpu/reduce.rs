//! Reductions and row-wise kernels over a contiguous buffer viewed as `[outer, len, inner]`:
//! the middle axis is reduced (or normalized, for softmax), the others are kept.

use crate::dtype::Float;

/// Sum over the middle axis. Rows are accumulated whole (vectorized along `inner`); a lone
/// contiguous axis (`inner == 1`) uses eight partial sums, which also bounds the rounding error
/// of long f32 sums.
pub(crate) fn sum_middle<T: Float>(x: &[T], outer: usize, len: usize, inner: usize) -> Vec<T> {
    let mut out = vec![T::zero(); outer * inner];
    if inner == 1 {
        for (o, slot) in out.iter_mut().enumerate() {
            *slot = sum_contiguous(&x[o * len..(o + 1) * len]);
        }
        return out;
    }
    for o in 0..outer {
        let acc = &mut out[o * inner..(o + 1) * inner];
        for r in 0..len {
            let row = &x[(o * len + r) * inner..(o * len + r + 1) * inner];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a += v;
            }
        }
    }
    out
}

/// Sum of a slice with eight independent accumulators (vectorizes; pairwise-like error).
pub(crate) fn sum_contiguous<T: Float>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] += c[k];
        }
    }
    let mut s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for &v in tail {
        s += v;
    }
    s
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

/// Softmax (or log-softmax) along the middle axis, computed stably: the line's max is subtracted
/// before exponentiating, so logits of any magnitude give finite results.
pub(crate) fn softmax_middle<T: Float>(
    x: &[T],
    outer: usize,
    len: usize,
    inner: usize,
    log: bool,
) -> Vec<T> {
    let mut out = vec![T::zero(); x.len()];
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

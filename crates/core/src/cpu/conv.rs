//! Convolution by im2col + GEMM, and 2-D pooling, over one `[C, H, W]` sample at a time.

use crate::cpu::fast_math::with_simd;
use crate::dtype::Float;

/// The geometry of a 2-D sliding window over a `[C, H, W]` sample.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl Window {
    /// Output extent along one axis: `⌊(n + 2p − d(k − 1) − 1) / s⌋ + 1`, or `None` when the
    /// (dilated) kernel does not fit in the padded input.
    pub fn out_len(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
        let span = d * (k - 1) + 1;
        (n + 2 * p).checked_sub(span).map(|r| r / s + 1)
    }

    /// Rows of the im2col matrix: `C · kh · kw`.
    pub fn patch_len(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the im2col matrix: `ho · wo`.
    pub fn positions(&self) -> usize {
        self.ho * self.wo
    }

    /// Input coordinate of output position `o` and kernel tap `k` along one axis, if inside.
    #[inline(always)]
    fn source(o: usize, k: usize, s: usize, p: usize, d: usize, n: usize) -> Option<usize> {
        (o * s + k * d).checked_sub(p).filter(|&i| i < n)
    }

    /// The output positions along one axis whose tap `k` reads inside the input (the rest read
    /// the padding), and the input index the first of them reads; `None` when all read
    /// padding. Output `o` reads `o·s + k·d − p`, inside when in `0..n`. Solving the bounds
    /// once per kernel tap replaces a check per element.
    #[inline(always)]
    fn inside(
        n: usize,
        out_len: usize,
        k: usize,
        s: usize,
        p: usize,
        d: usize,
    ) -> Option<(std::ops::Range<usize>, usize)> {
        let offset = k * d;
        let lo = p.saturating_sub(offset).div_ceil(s);
        let hi = (n + p).saturating_sub(offset).div_ceil(s).min(out_len);
        (lo < hi).then(|| (lo..hi, lo * s + offset - p))
    }

    /// [`Window::inside`] for kernel row `i`: output rows, first input row.
    #[inline(always)]
    fn rows_inside(&self, i: usize) -> Option<(std::ops::Range<usize>, usize)> {
        Self::inside(self.h, self.ho, i, self.sh, self.ph, self.dh)
    }

    /// [`Window::inside`] for kernel column `j`: output columns, first input column.
    #[inline(always)]
    fn columns_inside(&self, j: usize) -> Option<(std::ops::Range<usize>, usize)> {
        Self::inside(self.w, self.wo, j, self.sw, self.pw, self.dw)
    }
}

/// Copies a short run, such as an im2col row segment (tens of elements), inline: in blocks of
/// eight, the last block overlapping the one before. `copy_from_slice` calls `memmove` for
/// each run, which cost more than the copy at these lengths (8% of `nabla bench cnn`).
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    const BLOCK: usize = 8;
    let n = dst.len();
    let src = &src[..n];
    if n < BLOCK {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = v;
        }
        return;
    }
    let copy_block = |dst: &mut [T], src: &[T], at: usize| {
        let block: [T; BLOCK] = src[at..at + BLOCK].try_into().unwrap();
        dst[at..at + BLOCK].copy_from_slice(&block);
    };
    for at in (0..n - BLOCK).step_by(BLOCK) {
        copy_block(dst, src, at);
    }
    copy_block(dst, src, n - BLOCK);
}

/// Unfolds one sample into `cols[(c, i, j), (y, x)] = x[c, y·sh + i·dh − ph, x·sw + j·dw − pw]`
/// (zero where the window hangs over the padding).
pub(crate) fn im2col<T: Float>(x: &[T], g: &Window, cols: &mut [T]) {
    with_simd!((x: &[T], g: &Window, cols: &mut [T]), {
        let (p, wo) = (g.positions(), g.wo);
        let plane = g.h * g.w;
        for c in 0..g.c {
            let channel = &x[c * plane..][..plane];
            for i in 0..g.kh {
                let rows = g.rows_inside(i);
                for j in 0..g.kw {
                    let row = &mut cols[((c * g.kh + i) * g.kw + j) * p..][..p];
                    let (Some((oys, iy)), Some((oxs, ix))) = (rows.clone(), g.columns_inside(j))
                    else {
                        row.fill(T::zero());
                        continue;
                    };
                    row[..oys.start * wo].fill(T::zero());
                    row[oys.end * wo..].fill(T::zero());
                    let margins = oxs.start > 0 || oxs.end < wo;
                    let lines = row[oys.start * wo..oys.end * wo].chunks_exact_mut(wo);
                    for (k, line) in lines.enumerate() {
                        let src = &channel[(iy + k * g.sh) * g.w + ix..];
                        if margins {
                            line[..oxs.start].fill(T::zero());
                            line[oxs.end..].fill(T::zero());
                        }
                        let dst = &mut line[oxs.clone()];
                        if g.sw == 1 {
                            copy_run(dst, src);
                        } else {
                            for (k, d) in dst.iter_mut().enumerate() {
                                *d = src[k * g.sw];
                            }
                        }
                    }
                }
            }
        }
    })
}

/// The adjoint of [`im2col`]: adds each column entry back onto the input pixel it came from.
pub(crate) fn col2im<T: Float>(cols: &[T], g: &Window, dx: &mut [T]) {
    with_simd!((cols: &[T], g: &Window, dx: &mut [T]), {
        let (p, wo) = (g.positions(), g.wo);
        let plane = g.h * g.w;
        for c in 0..g.c {
            let channel = &mut dx[c * plane..][..plane];
            for i in 0..g.kh {
                let rows = g.rows_inside(i);
                for j in 0..g.kw {
                    let row = &cols[((c * g.kh + i) * g.kw + j) * p..][..p];
                    // A kernel tap that read only padding sends nothing back.
                    let (Some((oys, iy)), Some((oxs, ix))) = (rows.clone(), g.columns_inside(j))
                    else {
                        continue;
                    };
                    let lines = row[oys.start * wo..oys.end * wo].chunks_exact(wo);
                    for (k, line) in lines.enumerate() {
                        let dst = &mut channel[(iy + k * g.sh) * g.w + ix..];
                        let src = &line[oxs.clone()];
                        if g.sw == 1 {
                            for (d, &v) in dst[..src.len()].iter_mut().zip(src) {
                                *d += v;
                            }
                        } else {
                            for (k, &v) in src.iter().enumerate() {
                                dst[k * g.sw] += v;
                            }
                        }
                    }
                }
            }
        }
    })
}

/// `y[c, ·] += bias[c]` over rows of `row_len`: a convolution's bias, once its product is
/// written. Compiled per SIMD level: the pass reads back a sample's output (50 KB for 16
/// filters on 28×28), 3.5% of an MNIST CNN's epoch at the baseline's four lanes.
pub(crate) fn add_row_bias<T: Float>(y: &mut [T], bias: &[T], row_len: usize) {
    with_simd!((y: &mut [T], bias: &[T], row_len: usize), {
        for (row, &b) in y.chunks_exact_mut(row_len).zip(bias) {
            for v in row {
                *v += b;
            }
        }
    })
}

/// Max pooling of one sample (all channels); records the argmax (index within the channel's
/// `H·W` plane) of each window. Padding counts as −∞, so it is never picked.
pub(crate) fn max_pool<T: Float>(x: &[T], g: &Window, out: &mut [T], argmax: &mut [usize]) {
    if g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 {
        if (g.kh, g.kw, g.sh, g.sw) == (2, 2, 2, 2) {
            return max_pool_2x2(x, g, out, argmax);
        }
        return max_pool_inside(x, g, out, argmax);
    }
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..][..g.h * g.w];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let mut best = T::neg_infinity();
                let mut best_at = usize::MAX;
                for i in 0..g.kh {
                    let Some(iy) = Window::source(oy, i, g.sh, g.ph, g.dh, g.h) else {
                        continue;
                    };
                    for j in 0..g.kw {
                        let Some(ix) = Window::source(ox, j, g.sw, g.pw, g.dw, g.w) else {
                            continue;
                        };
                        let v = plane[iy * g.w + ix];
                        if v > best || best_at == usize::MAX || v.is_nan() {
                            best = v;
                            best_at = iy * g.w + ix;
                            if v.is_nan() {
                                break;
                            }
                        }
                    }
                }
                let o = (c * g.ho + oy) * g.wo + ox;
                out[o] = best;
                argmax[o] = best_at;
            }
        }
    }
}

/// [`max_pool`] when every window lies inside the plane (no padding, no dilation, the usual
/// case): the same picks without a bounds check per tap, and without a branch on each
/// comparison (on real activations `v > best` is a coin flip, and its mispredictions cost more
/// than the rest of the loop). A window holding a NaN is scanned again by the exact rule.
fn max_pool_inside<T: Float>(x: &[T], g: &Window, out: &mut [T], argmax: &mut [usize]) {
    let (plane_in, plane_out) = (g.h * g.w, g.ho * g.wo);
    for ((plane, out), argmax) in x
        .chunks_exact(plane_in)
        .zip(out.chunks_exact_mut(plane_out))
        .zip(argmax.chunks_exact_mut(plane_out))
        .take(g.c)
    {
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let corner = oy * g.sh * g.w + ox * g.sw;
                let (mut best, mut best_at, mut nan) = (plane[corner], corner, false);
                for i in 0..g.kh {
                    let row = corner + i * g.w;
                    for (j, &v) in plane[row..row + g.kw].iter().enumerate() {
                        let take = v > best;
                        best = if take { v } else { best };
                        best_at = if take { row + j } else { best_at };
                        nan |= v.is_nan();
                    }
                }
                if nan {
                    (best, best_at) = exact_window_pick(plane, corner, g.w, (g.kh, g.kw));
                }
                out[oy * g.wo + ox] = best;
                argmax[oy * g.wo + ox] = best_at;
            }
        }
    }
}

/// The exact rule's pick in a `kh × kw` window lying inside a plane of width `w`, its top-left
/// tap at `corner`: the window's value and tap, scanned row by row; a NaN is taken and ends
/// its row, so a window holding NaNs gives the first NaN of the last row holding one. The
/// branch-free kernels scan again with it only when a window holds a NaN.
#[inline(always)]
fn exact_window_pick<T: Float>(
    plane: &[T],
    corner: usize,
    w: usize,
    (kh, kw): (usize, usize),
) -> (T, usize) {
    let (mut best, mut best_at) = (T::neg_infinity(), usize::MAX);
    for i in 0..kh {
        let row = corner + i * w;
        for (j, &v) in plane[row..row + kw].iter().enumerate() {
            if v > best || best_at == usize::MAX || v.is_nan() {
                (best, best_at) = (v, row + j);
                if v.is_nan() {
                    break;
                }
            }
        }
    }
    (best, best_at)
}

/// [`max_pool_inside`] for 2×2 windows at stride 2, the usual pooling: the four taps
/// unrolled, read as pairs from the window's two rows, with the same picks (the first maximum
/// in row-major order; in a window holding a NaN, the first NaN of the last row holding one).
fn max_pool_2x2<T: Float>(x: &[T], g: &Window, out: &mut [T], argmax: &mut [usize]) {
    with_simd!((x: &[T], g: &Window, out: &mut [T], argmax: &mut [usize]), {
        let (w, plane_in, plane_out) = (g.w, g.h * g.w, g.ho * g.wo);
        for ((plane, out), argmax) in x
            .chunks_exact(plane_in)
            .zip(out.chunks_exact_mut(plane_out))
            .zip(argmax.chunks_exact_mut(plane_out))
            .take(g.c)
        {
            let rows = out.chunks_exact_mut(g.wo).zip(argmax.chunks_exact_mut(g.wo));
            for (oy, (out, argmax)) in rows.enumerate() {
                let top = 2 * oy * w;
                // wo = ⌊w / 2⌋ and ho = ⌊h / 2⌋: both rows hold the 2·wo columns read.
                let pairs = plane[top..][..2 * g.wo]
                    .chunks_exact(2)
                    .zip(plane[top + w..][..2 * g.wo].chunks_exact(2));
                for (ox, ((out, argmax), (upper, lower))) in
                    out.iter_mut().zip(argmax.iter_mut()).zip(pairs).enumerate()
                {
                    let at = top + 2 * ox;
                    let taps = [
                        (upper[0], at),
                        (upper[1], at + 1),
                        (lower[0], at + w),
                        (lower[1], at + w + 1),
                    ];
                    let (mut best, mut best_at) = taps[0];
                    let mut nan = best.is_nan();
                    for &(v, i) in &taps[1..] {
                        let take = v > best;
                        best = if take { v } else { best };
                        best_at = if take { i } else { best_at };
                        nan |= v.is_nan();
                    }
                    if nan {
                        (best, best_at) = exact_window_pick(plane, at, w, (2, 2));
                    }
                    *out = best;
                    *argmax = best_at;
                }
            }
        }
    })
}

/// Average pooling of one sample; padding counts as zeros in the average (PyTorch's default
/// `count_include_pad=True`), so every window divides by `kh · kw`.
pub(crate) fn avg_pool<T: Float>(x: &[T], g: &Window, out: &mut [T]) {
    let inv = T::one() / T::from_f64((g.kh * g.kw) as f64);
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..][..g.h * g.w];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let mut sum = T::zero();
                for i in 0..g.kh {
                    let Some(iy) = Window::source(oy, i, g.sh, g.ph, 1, g.h) else {
                        continue;
                    };
                    for j in 0..g.kw {
                        if let Some(ix) = Window::source(ox, j, g.sw, g.pw, 1, g.w) {
                            sum += plane[iy * g.w + ix];
                        }
                    }
                }
                out[(c * g.ho + oy) * g.wo + ox] = sum * inv;
            }
        }
    }
}

/// Backward of [`avg_pool`]: each output gradient spread evenly over its window.
pub(crate) fn avg_pool_backward<T: Float>(grad: &[T], g: &Window, dx: &mut [T]) {
    let inv = T::one() / T::from_f64((g.kh * g.kw) as f64);
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..][..g.h * g.w];
        for oy in 0..g.ho {
            for ox in 0..g.wo {
                let share = grad[(c * g.ho + oy) * g.wo + ox] * inv;
                for i in 0..g.kh {
                    let Some(iy) = Window::source(oy, i, g.sh, g.ph, 1, g.h) else {
                        continue;
                    };
                    for j in 0..g.kw {
                        if let Some(ix) = Window::source(ox, j, g.sw, g.pw, 1, g.w) {
                            plane[iy * g.w + ix] += share;
                        }
                    }
                }
            }
        }
    }
}

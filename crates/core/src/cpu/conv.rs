//! Convolution by im2col + GEMM, and 2-D pooling, over one `[C, H, W]` sample at a time.

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

    /// The output columns that kernel column `j` reads inside the image (the rest read the
    /// padding), and the input column the first of them reads; `None` when all read padding.
    /// Solving the bounds once per kernel column replaces a check per element.
    #[inline(always)]
    fn columns_inside(&self, j: usize) -> Option<(std::ops::Range<usize>, usize)> {
        // Output column o reads input column o·sw + j·dw − pw, inside when in 0..w.
        let offset = j * self.dw;
        let lo = self.pw.saturating_sub(offset).div_ceil(self.sw);
        let hi = (self.w + self.pw)
            .saturating_sub(offset)
            .div_ceil(self.sw)
            .min(self.wo);
        (lo < hi).then(|| (lo..hi, lo * self.sw + offset - self.pw))
    }
}

/// Unfolds one sample into `cols[(c, i, j), (y, x)] = x[c, y·sh + i·dh − ph, x·sw + j·dw − pw]`
/// (zero where the window hangs over the padding).
pub(crate) fn im2col<T: Float>(x: &[T], g: &Window, cols: &mut [T]) {
    let p = g.positions();
    for c in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &mut cols[((c * g.kh + i) * g.kw + j) * p..][..p];
                let inside = g.columns_inside(j);
                for oy in 0..g.ho {
                    let dst = &mut row[oy * g.wo..(oy + 1) * g.wo];
                    let iy = Window::source(oy, i, g.sh, g.ph, g.dh, g.h);
                    let (Some(iy), Some((span, first))) = (iy, inside.clone()) else {
                        dst.fill(T::zero());
                        continue;
                    };
                    let src = &x[(c * g.h + iy) * g.w..][..g.w];
                    dst[..span.start].fill(T::zero());
                    dst[span.end..].fill(T::zero());
                    let dst = &mut dst[span];
                    if g.sw == 1 {
                        dst.copy_from_slice(&src[first..first + dst.len()]);
                    } else {
                        for (k, d) in dst.iter_mut().enumerate() {
                            *d = src[first + k * g.sw];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds each column entry back onto the input pixel it came from.
pub(crate) fn col2im<T: Float>(cols: &[T], g: &Window, dx: &mut [T]) {
    let p = g.positions();
    for c in 0..g.c {
        for i in 0..g.kh {
            for j in 0..g.kw {
                let row = &cols[((c * g.kh + i) * g.kw + j) * p..][..p];
                // A kernel column that read only padding sends nothing back.
                let Some((span, first)) = g.columns_inside(j) else {
                    continue;
                };
                for oy in 0..g.ho {
                    let Some(iy) = Window::source(oy, i, g.sh, g.ph, g.dh, g.h) else {
                        continue;
                    };
                    let dst = &mut dx[(c * g.h + iy) * g.w..][..g.w];
                    let src = &row[oy * g.wo + span.start..oy * g.wo + span.end];
                    if g.sw == 1 {
                        for (d, &v) in dst[first..first + src.len()].iter_mut().zip(src) {
                            *d += v;
                        }
                    } else {
                        for (k, &v) in src.iter().enumerate() {
                            dst[first + k * g.sw] += v;
                        }
                    }
                }
            }
        }
    }
}

/// Max pooling of one sample (all channels); records the argmax (index within the channel's
/// `H·W` plane) of each window. Padding counts as −∞, so it is never picked.
pub(crate) fn max_pool<T: Float>(x: &[T], g: &Window, out: &mut [T], argmax: &mut [usize]) {
    if g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1 {
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
                    (best, best_at) = (T::neg_infinity(), usize::MAX);
                    for i in 0..g.kh {
                        let row = corner + i * g.w;
                        for (j, &v) in plane[row..row + g.kw].iter().enumerate() {
                            if v > best || best_at == usize::MAX || v.is_nan() {
                                (best, best_at) = (v, row + j);
                                if v.is_nan() {
                                    break;
                                }
                            }
                        }
                    }
                }
                out[oy * g.wo + ox] = best;
                argmax[oy * g.wo + ox] = best_at;
            }
        }
    }
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

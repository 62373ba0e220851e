//! 2-D convolution (cross-correlation, as in PyTorch: no kernel flip) and pooling over
//! `[N, C, H, W]` batches.

use crate::autograd::{Backward, InputGrads};
use crate::cpu::conv::{
    Window, add_row_bias, avg_pool, avg_pool_backward, col2im, im2col, max_pool,
};
use crate::cpu::matmul::{MatRef, matmul_into, matmul_uninit};
use crate::dtype::{Element, Float};
use crate::tensor::float_dispatch;
use crate::{Error, Result, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// How many chunks the batch is cut into for the weight gradient's sum (fixed, so that the
/// sum's order does not depend on the machine's thread count).
const DW_CHUNKS: usize = 16;
use smallvec::smallvec;

/// Stride, padding and dilation of a 2-D convolution, per axis `[h, w]`, and its groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    /// The channels split into this many groups, each convolved with its own share of the
    /// filters (PyTorch's `groups`; `C` = groups is a depthwise convolution). Both channel
    /// counts must be multiples of it.
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Kernel, stride and padding of a 2-D pooling, per axis `[h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Pool2dOptions {
    /// A `k x k` window moving by `k` (non-overlapping), no padding.
    pub fn square(k: usize) -> Self {
        Pool2dOptions {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
        }
    }
}

fn check_nchw(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    x.expect_float(op)?;
    match *x.dims() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::bad_shape(
            op,
            x.shape(),
            "expects a 4-D [batch, channels, height, width] input",
        )),
    }
}

fn window(
    op: &'static str,
    x: &Tensor,
    [c, h, w]: [usize; 3],
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
    d: [usize; 2],
) -> Result<Window> {
    if k.contains(&0) || s.contains(&0) || d.contains(&0) {
        return Err(Error::invalid(
            op,
            format!("kernel {k:?}, stride {s:?} and dilation {d:?} must be positive"),
        ));
    }
    let ho = Window::out_len(h, k[0], s[0], p[0], d[0]);
    let wo = Window::out_len(w, k[1], s[1], p[1], d[1]);
    match (ho, wo) {
        (Some(ho), Some(wo)) => Ok(Window {
            c,
            h,
            w,
            kh: k[0],
            kw: k[1],
            sh: s[0],
            sw: s[1],
            ph: p[0],
            pw: p[1],
            dh: d[0],
            dw: d[1],
            ho,
            wo,
        }),
        _ => Err(Error::bad_shape(
            op,
            x.shape(),
            format!(
                "the kernel {k:?} (dilation {d:?}) does not fit in the input of {h}x{w} padded by {p:?}"
            ),
        )),
    }
}

impl Tensor {
    /// 2-D convolution of `[N, C, H, W]` by a `[O, C / groups, kh, kw]` kernel, plus an
    /// optional `[O]` bias: `y[n, o] = b[o] + Σ_c x[n, c] ⋆ w[o, c]`, the sum over the channels
    /// of `o`'s group. Computed as one GEMM per sample and group over the im2col matrix.
    pub fn conv2d(
        &self,
        weight: &Tensor,
        bias: Option<&Tensor>,
        opts: Conv2dOptions,
    ) -> Result<Tensor> {
        let [n, c, h, w] = check_nchw("conv2d", self)?;
        let dtype = self.same_dtype("conv2d", weight)?;
        let [o, wc, kh, kw] = match *weight.dims() {
            [o, wc, kh, kw] => [o, wc, kh, kw],
            _ => {
                return Err(Error::ShapeMismatch {
                    op: "conv2d",
                    lhs: self.shape().clone().into(),
                    rhs: weight.shape().clone().into(),
                    reason: "the weight must be 4-D [out_channels, in_channels, kh, kw]".into(),
                });
            }
        };
        let groups = opts.groups;
        if groups == 0 || !c.is_multiple_of(groups) || !o.is_multiple_of(groups) {
            return Err(Error::ShapeMismatch {
                op: "conv2d",
                lhs: self.shape().clone().into(),
                rhs: weight.shape().clone().into(),
                reason: format!(
                    "groups = {groups} must divide both the input channels ({c}) and the \
                     output channels ({o})"
                ),
            });
        }
        if wc * groups != c {
            let reason = if groups == 1 {
                format!("input channels differ ({c} != {wc})")
            } else {
                format!(
                    "each of the {groups} groups reads {} input channels, the weight has {wc}",
                    c / groups
                )
            };
            return Err(Error::ShapeMismatch {
                op: "conv2d",
                lhs: self.shape().clone().into(),
                rhs: weight.shape().clone().into(),
                reason,
            });
        }
        if let Some(b) = bias {
            self.same_dtype("conv2d", b)?;
            if b.dims() != [o] {
                return Err(Error::ShapeMismatch {
                    op: "conv2d",
                    lhs: weight.shape().clone().into(),
                    rhs: b.shape().clone().into(),
                    reason: format!("the bias must have shape [{o}]"),
                });
            }
        }
        let g = window(
            "conv2d",
            self,
            [c, h, w],
            [kh, kw],
            opts.stride,
            opts.padding,
            opts.dilation,
        )?;
        let mut inputs = vec![self, weight];
        inputs.extend(bias);
        float_dispatch!(dtype, "conv2d", |T| {
            let out = conv_forward::<T>(self, weight, bias, &g, n, o, groups)?;
            Ok(Tensor::record_vec(
                out,
                [n, o, g.ho, g.wo].into(),
                &inputs,
                Conv2dBackward { g, groups },
            ))
        })
    }

    /// Max pooling over `[N, C, H, W]` (padding counts as −∞; output size rounds down). The
    /// gradient goes to each window's maximum; overlapping windows accumulate.
    pub fn max_pool2d(&self, opts: Pool2dOptions) -> Result<Tensor> {
        let (g, n) = self.pool_window("max_pool2d", &opts)?;
        float_dispatch!(self.dtype(), "max_pool2d", |T| {
            let x = self.float_data::<T>();
            let (plane_in, plane_out) = (g.c * g.h * g.w, g.c * g.positions());
            let mut out = vec![T::zero(); n * plane_out];
            let mut argmax = vec![0usize; n * plane_out];
            // Samples in parallel (each is independent: the same bits on any thread count).
            out.par_chunks_mut(plane_out.max(1))
                .zip(argmax.par_chunks_mut(plane_out.max(1)))
                .enumerate()
                .with_min_len(chunks_per_pool_task(plane_out))
                .for_each(|(s, (out, argmax))| {
                    max_pool(&x[s * plane_in..][..plane_in], &g, out, argmax)
                });
            Ok(Tensor::record_vec(
                out,
                [n, g.c, g.ho, g.wo].into(),
                &[self],
                MaxPoolBackward { g, argmax },
            ))
        })
    }

    /// Average pooling over `[N, C, H, W]`; zero padding is counted in the average.
    pub fn avg_pool2d(&self, opts: Pool2dOptions) -> Result<Tensor> {
        let (g, n) = self.pool_window("avg_pool2d", &opts)?;
        float_dispatch!(self.dtype(), "avg_pool2d", |T| {
            let x = self.float_data::<T>();
            let (plane_in, plane_out) = (g.c * g.h * g.w, g.c * g.positions());
            let mut out = vec![T::zero(); n * plane_out];
            for s in 0..n {
                avg_pool(
                    &x[s * plane_in..][..plane_in],
                    &g,
                    &mut out[s * plane_out..][..plane_out],
                );
            }
            Ok(Tensor::record_vec(
                out,
                [n, g.c, g.ho, g.wo].into(),
                &[self],
                AvgPoolBackward { g },
            ))
        })
    }

    fn pool_window(&self, op: &'static str, opts: &Pool2dOptions) -> Result<(Window, usize)> {
        let [n, c, h, w] = check_nchw(op, self)?;
        for a in 0..2 {
            if opts.padding[a] * 2 > opts.kernel[a] {
                return Err(Error::invalid(
                    op,
                    format!(
                        "padding {:?} must be at most half the kernel {:?}",
                        opts.padding, opts.kernel
                    ),
                ));
            }
        }
        Ok((
            window(
                op,
                self,
                [c, h, w],
                opts.kernel,
                opts.stride,
                opts.padding,
                [1, 1],
            )?,
            n,
        ))
    }
}

/// Per sample: `y[n] = W [O, CKK] · cols(x[n]) [CKK, P] (+ b)`, samples in parallel. With
/// groups, each group's `O / groups` filters multiply its own block of `CKK / groups` rows
/// of the same im2col matrix (the rows are ordered by channel).
fn conv_forward<T: Float + Element>(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    g: &Window,
    n: usize,
    o: usize,
    groups: usize,
) -> Result<Vec<T>> {
    let xd = x.float_data::<T>();
    let wd = weight.float_data::<T>();
    let bd = bias.map(|b| b.float_data::<T>());
    let (ckk, p, plane_in) = (g.patch_len(), g.positions(), g.c * g.h * g.w);
    let (og, ckk_g) = (o / groups, ckk / groups);
    let len = n * o * p;
    if len == 0 {
        return Ok(Vec::new());
    }
    // The products write every element, so the output is not zeroed first.
    let mut out = Vec::with_capacity(len);
    // One sample: its GEMM gets the threads; a batch: the samples do.
    let threads = if n == 1 {
        rayon::current_num_threads()
    } else {
        1
    };
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(o * p)
        .enumerate()
        .for_each_init(
            || vec![T::zero(); ckk * p],
            |cols, (s, y)| {
                im2col(&xd[s * plane_in..][..plane_in], g, cols);
                for (k, y) in y.chunks_mut(og * p).enumerate() {
                    // y_k [O/G, P] = W_k [O/G, CKK/G] · cols_k [CKK/G, P]
                    matmul_uninit(
                        og,
                        p,
                        ckk_g,
                        MatRef {
                            data: &wd,
                            offset: k * og * ckk_g,
                            rs: ckk_g,
                            cs: 1,
                        },
                        MatRef {
                            data: cols,
                            offset: k * ckk_g * p,
                            rs: p,
                            cs: 1,
                        },
                        y,
                        threads,
                    );
                }
                // SAFETY: the groups' products (O/G rows each, G groups) wrote all O·P elements.
                let y = unsafe { &mut *(y as *mut [MaybeUninit<T>] as *mut [T]) };
                if let Some(b) = &bd {
                    add_row_bias(y, b, p);
                }
            },
        );
    // SAFETY: every sample's chunk was written above.
    unsafe { out.set_len(len) };
    Ok(out)
}

struct Conv2dBackward {
    g: Window,
    groups: usize,
}

impl Backward for Conv2dBackward {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, grad: &Tensor) -> Result<InputGrads> {
        float_dispatch!(grad.dtype(), "conv2d", |T| conv_backward::<T>(
            &self.g,
            self.groups,
            inputs,
            grad
        ))
    }
}

/// `dW = Σ_n G[n] · cols(x[n])ᵀ`, `dx[n] = col2im(Wᵀ · G[n])`, `db = Σ_{n,y,x} G`, the
/// products group by group.
fn conv_backward<T: Float + Element>(
    g: &Window,
    groups: usize,
    inputs: &[Tensor],
    grad: &Tensor,
) -> Result<InputGrads> {
    let (x, weight) = (&inputs[0], &inputs[1]);
    let (n, o) = (x.dims()[0], weight.dims()[0]);
    let (ckk, p, plane_in) = (g.patch_len(), g.positions(), g.c * g.h * g.w);
    let (og, ckk_g) = (o / groups, ckk / groups);
    let xd = x.float_data::<T>();
    let wd = weight.float_data::<T>();
    let gd = grad.float_data::<T>();
    let need_w = weight.requires_grad();
    let need_x = x.requires_grad();
    let mut dx = vec![T::zero(); if need_x { n * plane_in } else { 0 }];
    let dw = if need_w {
        // dW = Σ_s G[s] · cols(x[s])ᵀ. The samples are cut into a fixed number of contiguous
        // chunks, each summed in order on one thread, and the chunks' sums added in order:
        // the same floating-point sum however the threads are scheduled (a work-stealing
        // fold would group the samples differently from run to run).
        let samples: Vec<usize> = (0..n).collect();
        let partials: Vec<Vec<T>> = samples
            .par_chunks(n.div_ceil(DW_CHUNKS).max(1))
            .map(|chunk| {
                let mut acc = vec![T::zero(); o * ckk_g];
                let mut cols = vec![T::zero(); ckk * p];
                let mut part = vec![T::zero(); o * ckk_g];
                for &s in chunk {
                    im2col(&xd[s * plane_in..][..plane_in], g, &mut cols);
                    for (k, part) in part.chunks_mut(og * ckk_g).enumerate() {
                        // part_k = G[s]_k [O/G, P] · cols_kᵀ [P, CKK/G]
                        matmul_into(
                            og,
                            ckk_g,
                            p,
                            MatRef {
                                data: &gd,
                                offset: (s * o + k * og) * p,
                                rs: p,
                                cs: 1,
                            },
                            MatRef {
                                data: &cols,
                                offset: k * ckk_g * p,
                                rs: 1,
                                cs: p,
                            },
                            part,
                            1,
                        );
                    }
                    acc.iter_mut().zip(&part).for_each(|(a, &v)| *a += v);
                }
                acc
            })
            .collect();
        let mut dw = vec![T::zero(); o * ckk_g];
        for part in partials {
            dw.iter_mut().zip(&part).for_each(|(a, &v)| *a += v);
        }
        dw
    } else {
        Vec::new()
    };
    if need_x {
        dx.par_chunks_mut(plane_in).enumerate().for_each_init(
            || vec![T::zero(); ckk * p],
            |dcols, (s, dxs)| {
                for (k, dcols) in dcols.chunks_mut(ckk_g * p).enumerate() {
                    // dcols_k = W_kᵀ [CKK/G, O/G] · G[s]_k [O/G, P]
                    matmul_into(
                        ckk_g,
                        p,
                        og,
                        MatRef {
                            data: &wd,
                            offset: k * og * ckk_g,
                            rs: 1,
                            cs: ckk_g,
                        },
                        MatRef {
                            data: &gd,
                            offset: (s * o + k * og) * p,
                            rs: p,
                            cs: 1,
                        },
                        dcols,
                        1,
                    );
                }
                col2im(dcols, g, dxs);
            },
        );
    }
    let mut grads: InputGrads = smallvec![
        need_x.then(|| Tensor::from_parts(dx, x.shape().clone())),
        need_w.then(|| Tensor::from_parts(dw, weight.shape().clone())),
    ];
    if let Some(b) = inputs.get(2) {
        grads.push(if b.requires_grad() {
            Some(grad.sum_dims(&[0, 2, 3], false)?)
        } else {
            None
        });
    }
    Ok(grads)
}

/// Samples (or planes) per parallel task of max pooling, for tasks of at least 16 K outputs
/// (about 15 µs): the peers' CNN pools 64 samples of 1,352 outputs, 86 K, in 6 tasks; a small
/// batch stays on one thread.
fn chunks_per_pool_task(outputs_per_chunk: usize) -> usize {
    (1usize << 14).div_ceil(outputs_per_chunk.max(1))
}

struct MaxPoolBackward {
    g: Window,
    argmax: Vec<usize>,
}

impl Backward for MaxPoolBackward {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, grad: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        let plane_in = self.g.h * self.g.w;
        let per_plane = self.g.positions();
        float_dispatch!(grad.dtype(), "max_pool2d", |T| {
            let gd = grad.float_data::<T>();
            let mut dx = vec![T::zero(); x.elem_count()];
            // Plane by plane: the argmax indices are within a plane (no division per element).
            // Planes in parallel.
            self.argmax
                .par_chunks(per_plane.max(1))
                .zip(gd.par_chunks(per_plane.max(1)))
                .zip(dx.par_chunks_mut(plane_in.max(1)))
                .with_min_len(chunks_per_pool_task(per_plane))
                .for_each(|((argmax, grads), dx)| {
                    for (&at, &v) in argmax.iter().zip(grads) {
                        if at != usize::MAX {
                            dx[at] += v;
                        }
                    }
                });
            Ok(smallvec![Some(Tensor::from_parts(dx, x.shape().clone()))])
        })
    }
}

struct AvgPoolBackward {
    g: Window,
}

impl Backward for AvgPoolBackward {
    fn name(&self) -> &'static str {
        "avg_pool2d"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, grad: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        let (plane_in, plane_out) = (
            self.g.c * self.g.h * self.g.w,
            self.g.c * self.g.positions(),
        );
        float_dispatch!(grad.dtype(), "avg_pool2d", |T| {
            let gd = grad.float_data::<T>();
            let mut dx = vec![T::zero(); x.elem_count()];
            for s in 0..x.dims()[0] {
                avg_pool_backward(
                    &gd[s * plane_out..][..plane_out],
                    &self.g,
                    &mut dx[s * plane_in..][..plane_in],
                );
            }
            Ok(smallvec![Some(Tensor::from_parts(dx, x.shape().clone()))])
        })
    }
}

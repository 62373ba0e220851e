//! Matrix product, 2-D and batched (`[..., m, k] @ [..., k, n]`, batch dims broadcast).
//! Backward: `dA = G Bᵀ`, `dB = Aᵀ G`, with the transposes taken as strided views (no copies).

use crate::autograd::{Backward, InputGrads};
use crate::cpu::matmul::{MatRef, matmul_uninit};
use crate::cpu::strided::for_each_run;
use crate::dtype::{Element, Float};
use crate::shape::Dims;
use crate::tensor::float_dispatch;
use crate::{Error, Result, Shape, Tensor};
use rayon::prelude::*;
use smallvec::smallvec;

/// Below this many multiply-adds per batch, batches run in parallel instead of each product.
const PER_BATCH_PARALLEL_WORK: usize = 1 << 18;

impl Tensor {
    /// The matrix product of the last two dims, broadcasting the leading (batch) dims.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let dtype = self.same_dtype("matmul", rhs)?;
        self.expect_float("matmul")?;
        let mismatch = |reason: String| Error::ShapeMismatch {
            op: "matmul",
            lhs: self.shape().clone().into(),
            rhs: rhs.shape().clone().into(),
            reason,
        };
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(mismatch(
                "both operands need at least 2 dims (unsqueeze a vector to a 1-row matrix)".into(),
            ));
        }
        let (a, b) = (self.dims(), rhs.dims());
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (k2, n) = (b[b.len() - 2], b[b.len() - 1]);
        if k != k2 {
            return Err(mismatch(format!("inner dimensions differ ({k} != {k2})")));
        }
        let batch_a: Shape = Shape::from(&a[..a.len() - 2]);
        let batch_b: Shape = Shape::from(&b[..b.len() - 2]);
        let batch = Shape::broadcast("matmul", &batch_a, &batch_b).map_err(|_| {
            mismatch(format!(
                "batch dims {batch_a} and {batch_b} do not broadcast"
            ))
        })?;
        let mut out_dims: Dims = batch.dims().into();
        out_dims.extend_from_slice(&[m, n]);
        float_dispatch!(dtype, "matmul", |T| {
            let out = batched_matmul::<T>(self, rhs, &batch, m, k, n)?;
            Ok(Tensor::record_vec(
                out,
                out_dims.into(),
                &[self, rhs],
                MatmulBackward,
            ))
        })
    }
}

/// Computes every batch's product into one contiguous `[batch..., m, n]` buffer.
fn batched_matmul<T: Float + Element>(
    a: &Tensor,
    b: &Tensor,
    batch: &Shape,
    m: usize,
    k: usize,
    n: usize,
) -> Result<Vec<T>> {
    let with = |dims: &[usize], x: usize, y: usize| -> Shape {
        let mut d: Dims = dims.into();
        d.extend_from_slice(&[x, y]);
        d.into()
    };
    let la = a.layout().broadcast_to(&with(batch.dims(), m, k));
    let lb = b.layout().broadcast_to(&with(batch.dims(), k, n));
    let (ra, rb) = (a.raw::<T>()?, b.raw::<T>()?);
    let r = batch.rank();
    // Offsets of each batch's matrix in the two storages.
    let mut starts = Vec::with_capacity(batch.elem_count());
    for_each_run(
        batch.dims(),
        [&la.strides[..r], &lb.strides[..r]],
        [la.offset, lb.offset],
        |[oa, ob], len, [sa, sb]| {
            starts.extend((0..len).map(|i| (oa + i * sa, ob + i * sb)));
        },
    );
    let mat = |data, offset, l: &crate::layout::Layout| MatRef {
        data,
        offset,
        rs: l.strides[r],
        cs: l.strides[r + 1],
    };
    let len = batch.elem_count() * m * n;
    if len == 0 {
        return Ok(Vec::new());
    }
    // The products write every element, so the output is not zeroed first.
    assert_eq!(starts.len() * m * n, len, "matmul: one product per batch");
    let mut out = Vec::with_capacity(len);
    let slots = &mut out.spare_capacity_mut()[..len];
    let threads = rayon::current_num_threads();
    if starts.len() > 1
        && m * n * k < PER_BATCH_PARALLEL_WORK
        && threads > 1
        && starts.len() * m * n * k >= PER_BATCH_PARALLEL_WORK
    {
        slots
            .par_chunks_mut(m * n)
            .zip(starts.par_iter())
            .for_each(|(c, &(oa, ob))| {
                matmul_uninit(m, n, k, mat(ra, oa, &la), mat(rb, ob, &lb), c, 1);
            });
    } else {
        for (c, &(oa, ob)) in slots.chunks_mut(m * n).zip(&starts) {
            matmul_uninit(m, n, k, mat(ra, oa, &la), mat(rb, ob, &lb), c, threads);
        }
    }
    // SAFETY: the `starts.len() = len / (m * n)` products above (asserted) wrote all `len`
    // elements.
    unsafe { out.set_len(len) };
    Ok(out)
}

struct MatmulBackward;

/// A 2-D tensor whose elements are laid out column-major (the transpose of a contiguous matrix).
fn is_transposed_2d(t: &Tensor) -> bool {
    let l = t.layout();
    let dims = t.dims();
    dims.len() == 2 && dims[0] > 1 && dims[1] > 1 && l.strides() == [1, dims[0]]
}

impl Backward for MatmulBackward {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let (a, b) = (&inputs[0], &inputs[1]);
        let mut grads: InputGrads = smallvec![None, None];
        if a.requires_grad() {
            grads[0] = Some(g.matmul(&b.transpose(-1, -2)?)?.sum_to(a.shape())?);
        }
        if b.requires_grad() {
            grads[1] = Some(if is_transposed_2d(b) {
                // b is a transposed view (a Linear layer's `Wᵀ`): compute `(∂L/∂b)ᵀ = gᵀ a` as a
                // contiguous matrix and hand back its transposed view, so that the transpose's
                // own backward yields W's gradient contiguous (no strided copy in the optimizer).
                g.t()?.matmul(a)?.t()?
            } else {
                a.transpose(-1, -2)?.matmul(g)?.sum_to(b.shape())?
            });
        }
        Ok(grads)
    }
}

//! Shape ops. Views (reshape of contiguous data, transpose, permute, broadcast, narrow, squeeze,
//! unsqueeze) share the input's storage; copies: contiguous, concat, stack, index_select, gather.

use crate::autograd::{Backward, InputGrads};
use crate::cpu::strided::for_each_run;
use crate::dtype::Element;
use crate::layout::Layout;
use crate::shape::Dims;
use crate::storage::Storage;
use crate::tensor::float_dispatch;
use crate::{DType, Error, Result, Shape, Tensor};
use smallvec::smallvec;
use std::sync::Arc;

impl Tensor {
    /// A view of the same storage with another layout, recording `backward`.
    fn view(&self, layout: Layout, backward: impl Backward + 'static) -> Tensor {
        Tensor::record(Arc::clone(&self.0.storage), layout, &[self], backward)
    }

    /// The same elements in row-major order, copied only when not already contiguous.
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let storage = self.storage_copy();
        Tensor::record(
            Arc::new(storage),
            Layout::contiguous(self.shape().clone()),
            &[self],
            Identity("contiguous"),
        )
    }

    /// The same elements with a new shape (same element count); a view when contiguous.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.elem_count() != self.elem_count() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().clone().into(),
                rhs: shape.clone().into(),
                reason: format!(
                    "{} elements cannot take a shape of {}",
                    self.elem_count(),
                    shape.elem_count()
                ),
            });
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        let source = self.contiguous();
        let layout = source.layout().reshaped(&shape).expect("contiguous source");
        Ok(source.view(layout, Reshape))
    }

    /// Reshape where one extent may be -1 (inferred from the element count).
    pub fn reshape_infer(&self, dims: &[isize]) -> Result<Tensor> {
        let known: usize = dims
            .iter()
            .filter(|&&d| d >= 0)
            .map(|&d| d as usize)
            .product();
        let inferred = dims.iter().filter(|&&d| d == -1).count();
        let bad = dims.iter().any(|&d| d < -1);
        if inferred > 1
            || bad
            || (inferred == 1 && (known == 0 || !self.elem_count().is_multiple_of(known)))
        {
            return Err(Error::bad_shape(
                "reshape",
                self.shape(),
                format!(
                    "cannot reshape {} elements to {dims:?} (at most one -1, other extents >= 0 dividing the count)",
                    self.elem_count()
                ),
            ));
        }
        let shape: Dims = dims
            .iter()
            .map(|&d| {
                if d == -1 {
                    self.elem_count() / known
                } else {
                    d as usize
                }
            })
            .collect();
        self.reshape(shape)
    }

    /// Flattens dims `start..=end` into one.
    pub fn flatten(&self, start: isize, end: isize) -> Result<Tensor> {
        if self.rank() == 0 {
            return self.reshape([1]);
        }
        let s = self.shape().resolve_dim("flatten", start)?;
        let e = self.shape().resolve_dim("flatten", end)?;
        if s > e {
            return Err(Error::invalid(
                "flatten",
                format!("start dim {start} comes after end dim {end}"),
            ));
        }
        let d = self.dims();
        let mut out: Dims = d[..s].into();
        out.push(d[s..=e].iter().product());
        out.extend_from_slice(&d[e + 1..]);
        self.reshape(out)
    }

    /// Swaps two dims (a view).
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Result<Tensor> {
        let a = self.shape().resolve_dim("transpose", dim0)?;
        let b = self.shape().resolve_dim("transpose", dim1)?;
        let mut perm: Dims = (0..self.rank()).collect();
        perm.swap(a, b);
        Ok(self.view(
            self.layout().permuted(&perm),
            Permute {
                inverse: perm.clone(),
            },
        ))
    }

    /// The transpose of a 2-D tensor (a view).
    pub fn t(&self) -> Result<Tensor> {
        if self.rank() != 2 {
            return Err(Error::bad_shape(
                "t",
                self.shape(),
                "t() needs a 2-D tensor; use transpose(d0, d1)",
            ));
        }
        self.transpose(0, 1)
    }

    /// Reorders dims: result dim `i` is input dim `perm[i]` (a view).
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        let valid = perm.len() == self.rank()
            && perm
                .iter()
                .all(|&p| p < self.rank() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::bad_shape(
                "permute",
                self.shape(),
                format!("{perm:?} is not a permutation of 0..{}", self.rank()),
            ));
        }
        let mut inverse: Dims = smallvec![0; perm.len()];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(self.view(self.layout().permuted(perm), Permute { inverse }))
    }

    /// Repeats extent-1 dims (and adds leading dims) to reach `shape`, without copying.
    pub fn broadcast_as(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        let target = Shape::broadcast("broadcast_as", self.shape(), &shape)?;
        if target != shape {
            return Err(Error::ShapeMismatch {
                op: "broadcast_as",
                lhs: self.shape().clone().into(),
                rhs: shape.into(),
                reason: "only extent-1 dims and new leading dims can be broadcast".into(),
            });
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        Ok(self.view(self.layout().broadcast_to(&shape), Broadcast))
    }

    /// Elements `start..start + len` along `dim` (a view).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        let d = self.shape().resolve_dim("narrow", dim)?;
        let size = self.dims()[d];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::bad_shape(
                "narrow",
                self.shape(),
                format!(
                    "range {start}..{} is outside dim {dim} of size {size}",
                    start.saturating_add(len)
                ),
            ));
        }
        if start == 0 && len == size {
            return Ok(self.clone());
        }
        Ok(self.view(
            self.layout().narrowed(d, start, len),
            Narrow { dim: d, start },
        ))
    }

    /// Removes `dim`, which must have extent 1 (a view).
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        let d = self.shape().resolve_dim("squeeze", dim)?;
        if self.dims()[d] != 1 {
            return Err(Error::bad_shape(
                "squeeze",
                self.shape(),
                format!("dim {dim} has extent {}, not 1", self.dims()[d]),
            ));
        }
        let mut layout = self.layout().clone();
        layout.shape.0.remove(d);
        layout.strides.remove(d);
        Ok(self.view(layout, Reshape))
    }

    /// Inserts an extent-1 dim at `dim` (`0..=rank`, negative counts from the end) (a view).
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank + 1 } else { dim };
        if d < 0 || d > rank {
            return Err(Error::DimOutOfRange {
                op: "unsqueeze",
                dim,
                rank: self.rank() + 1,
                shape: self.shape().clone().into(),
            });
        }
        let d = d as usize;
        let mut layout = self.layout().clone();
        let stride = if d < self.rank() {
            layout.strides[d] * layout.shape.0[d]
        } else {
            1
        };
        layout.shape.0.insert(d, 1);
        layout.strides.insert(d, stride);
        Ok(self.view(layout, Reshape))
    }

    /// Joins tensors along an existing dim; all other extents must match.
    pub fn concat(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = *tensors
            .first()
            .ok_or_else(|| Error::invalid("concat", "needs at least one tensor"))?;
        let d = first.shape().resolve_dim("concat", dim)?;
        for t in &tensors[1..] {
            first.same_dtype("concat", t)?;
            let fits = t.rank() == first.rank()
                && (0..first.rank()).all(|i| i == d || t.dims()[i] == first.dims()[i]);
            if !fits {
                return Err(Error::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape().clone().into(),
                    rhs: t.shape().clone().into(),
                    reason: format!("all extents except dim {dim} must match"),
                });
            }
        }
        let mut shape: Dims = first.dims().into();
        shape[d] = tensors.iter().map(|t| t.dims()[d]).sum();
        let shape = Shape::from(shape);
        let storage = match first.dtype() {
            DType::F32 => concat_kernel::<f32>(tensors, d, &shape)?,
            DType::F64 => concat_kernel::<f64>(tensors, d, &shape)?,
            DType::I64 => concat_kernel::<i64>(tensors, d, &shape)?,
        };
        let lens: Vec<usize> = tensors.iter().map(|t| t.dims()[d]).collect();
        Ok(Tensor::record(
            Arc::new(storage),
            Layout::contiguous(shape),
            tensors,
            Concat { dim: d, lens },
        ))
    }

    /// Joins same-shape tensors along a new dim.
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Result<Tensor> {
        let first = *tensors
            .first()
            .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
        for t in &tensors[1..] {
            if t.shape() != first.shape() {
                return Err(Error::ShapeMismatch {
                    op: "stack",
                    lhs: first.shape().clone().into(),
                    rhs: t.shape().clone().into(),
                    reason: "stacked tensors must have the same shape".into(),
                });
            }
        }
        let expanded = tensors
            .iter()
            .map(|t| t.unsqueeze(dim))
            .collect::<Result<Vec<_>>>()?;
        let refs: Vec<&Tensor> = expanded.iter().collect();
        let rank = first.rank() as isize + 1;
        Tensor::concat(&refs, if dim < 0 { dim + rank } else { dim })
    }

    /// Picks entries along `dim` by a 1-D i64 index tensor (rows of an embedding table, samples
    /// of a batch). Indices may repeat; their gradients add up.
    pub fn index_select(&self, dim: isize, indices: &Tensor) -> Result<Tensor> {
        let d = self.shape().resolve_dim("index_select", dim)?;
        let idx = check_indices("index_select", indices, self.dims()[d], d)?;
        if indices.rank() != 1 {
            return Err(Error::bad_shape(
                "index_select",
                indices.shape(),
                "indices must be 1-D",
            ));
        }
        let (outer, len, inner) = crate::ops::activation::split_at_dim(self.dims(), d);
        let mut shape: Dims = self.dims().into();
        shape[d] = idx.len();
        let storage = match self.dtype() {
            DType::F32 => select_rows::<f32>(self, outer, len, inner, &idx),
            DType::F64 => select_rows::<f64>(self, outer, len, inner, &idx),
            DType::I64 => select_rows::<i64>(self, outer, len, inner, &idx),
        };
        Ok(Tensor::record(
            Arc::new(storage),
            Layout::contiguous(shape.into()),
            &[self],
            IndexSelect { dim: d, idx },
        ))
    }

    /// `out[i][j] = self[i][index[i][j]]` (for `dim = 1`; likewise for any dim): picks one entry
    /// per position along `dim`, e.g. the score of each sample's class. `index` is i64 with the
    /// same rank; its other extents must not exceed the input's.
    pub fn gather(&self, dim: isize, index: &Tensor) -> Result<Tensor> {
        let d = self.shape().resolve_dim("gather", dim)?;
        let fits = index.rank() == self.rank()
            && (0..self.rank()).all(|i| i == d || index.dims()[i] <= self.dims()[i]);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: "gather",
                lhs: self.shape().clone().into(),
                rhs: index.shape().clone().into(),
                reason: format!(
                    "the index needs the same rank, extents no larger except along dim {dim}"
                ),
            });
        }
        let idx = check_indices("gather", index, self.dims()[d], d)?;
        let offsets = gather_offsets(self.layout(), index.shape(), d, &idx);
        let storage = match self.dtype() {
            DType::F32 => Storage::F32(pick::<f32>(self, &offsets)),
            DType::F64 => Storage::F64(pick::<f64>(self, &offsets)),
            DType::I64 => Storage::I64(pick::<i64>(self, &offsets)),
        };
        // For the backward, positions in the contiguous layout of the input.
        let dense = gather_offsets(
            &Layout::contiguous(self.shape().clone()),
            index.shape(),
            d,
            &idx,
        );
        Ok(Tensor::record(
            Arc::new(storage),
            Layout::contiguous(index.shape().clone()),
            &[self],
            ScatterAdd { positions: dense },
        ))
    }
}

/// The index values as usize, each checked against the dim's extent.
pub(crate) fn check_indices(
    op: &'static str,
    indices: &Tensor,
    size: usize,
    dim: usize,
) -> Result<Vec<usize>> {
    if indices.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op,
            got: indices.dtype(),
            expected: "i64 indices",
        });
    }
    indices
        .to_vec::<i64>()?
        .into_iter()
        .map(|i| {
            if i < 0 || i as usize >= size {
                Err(Error::IndexOutOfRange {
                    op,
                    index: i,
                    dim,
                    size,
                })
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}

/// Storage offsets (in `layout`) of the elements `gather` picks, in the index's row-major order.
fn gather_offsets(layout: &Layout, index_shape: &Shape, dim: usize, idx: &[usize]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(idx.len());
    let mut pos: Dims = smallvec![0; index_shape.rank()];
    for &i in idx {
        let mut off = layout.offset;
        for (k, &p) in pos.iter().enumerate() {
            off += if k == dim { i } else { p } * layout.strides[k];
        }
        offsets.push(off);
        for k in (0..pos.len()).rev() {
            pos[k] += 1;
            if pos[k] < index_shape.dims()[k] {
                break;
            }
            pos[k] = 0;
        }
    }
    offsets
}

fn pick<T: Element>(t: &Tensor, offsets: &[usize]) -> Vec<T> {
    let raw = t.raw::<T>().expect("dtype dispatched");
    offsets.iter().map(|&o| raw[o]).collect()
}

fn select_rows<T: Element>(
    t: &Tensor,
    outer: usize,
    len: usize,
    inner: usize,
    idx: &[usize],
) -> Storage {
    let data = t.contiguous_data::<T>().expect("dtype dispatched");
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &i in idx {
            let start = (o * len + i) * inner;
            out.extend_from_slice(&data[start..start + inner]);
        }
    }
    T::into_storage(out)
}

fn concat_kernel<T: Element>(tensors: &[&Tensor], dim: usize, shape: &Shape) -> Result<Storage> {
    let mut out: Vec<T> = Vec::with_capacity(shape.elem_count());
    let outer: usize = shape.dims()[..dim].iter().product();
    let parts: Vec<(std::borrow::Cow<'_, [T]>, usize)> = tensors
        .iter()
        .map(|t| Ok((t.contiguous_data::<T>()?, t.dims()[dim..].iter().product())))
        .collect::<Result<_>>()?;
    for o in 0..outer {
        for (data, block) in &parts {
            out.extend_from_slice(&data[o * block..(o + 1) * block]);
        }
    }
    Ok(T::into_storage(out))
}

// ------------------------------------------------------------------------ backward rules

struct Identity(&'static str);
impl Backward for Identity {
    fn name(&self) -> &'static str {
        self.0
    }
    fn backward(&self, _inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        Ok(smallvec![Some(g.clone())])
    }
}

struct Reshape;
impl Backward for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        Ok(smallvec![Some(g.reshape(inputs[0].shape().clone())?)])
    }
}

struct Permute {
    inverse: Dims,
}
impl Backward for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn backward(&self, _inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        Ok(smallvec![Some(g.permute(&self.inverse)?)])
    }
}

struct Broadcast;
impl Backward for Broadcast {
    fn name(&self) -> &'static str {
        "broadcast"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        Ok(smallvec![Some(g.sum_to(inputs[0].shape())?)])
    }
}

/// Backward of narrow: the gradient placed in a zero tensor of the input's shape.
struct Narrow {
    dim: usize,
    start: usize,
}
impl Backward for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        let region = Layout::contiguous(x.shape().clone()).narrowed(
            self.dim,
            self.start,
            g.dims()[self.dim],
        );
        float_dispatch!(g.dtype(), "narrow", |T| {
            let mut dx = vec![T::zero(); x.elem_count()];
            let src = g.raw::<T>()?;
            let gl = g.layout();
            for_each_run(
                region.shape.dims(),
                [&region.strides[..], gl.strides()],
                [region.offset, gl.offset],
                |[o, s], len, [so, ss]| {
                    for i in 0..len {
                        dx[o + i * so] = src[s + i * ss];
                    }
                },
            );
            Ok(smallvec![Some(Tensor::from_parts(dx, x.shape().clone()))])
        })
    }
}

struct Concat {
    dim: usize,
    lens: Vec<usize>,
}
impl Backward for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let mut start = 0;
        let mut grads = InputGrads::new();
        for (input, &len) in inputs.iter().zip(&self.lens) {
            grads.push(
                input
                    .requires_grad()
                    .then(|| g.narrow(self.dim as isize, start, len))
                    .transpose()?,
            );
            start += len;
        }
        Ok(grads)
    }
}

/// Backward of index_select: rows of the gradient added back at their indices.
struct IndexSelect {
    dim: usize,
    idx: Vec<usize>,
}
impl Backward for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        let (outer, len, inner) = crate::ops::activation::split_at_dim(x.dims(), self.dim);
        float_dispatch!(g.dtype(), "index_select", |T| {
            let gd = g.float_data::<T>();
            let mut dx = vec![T::zero(); x.elem_count()];
            for o in 0..outer {
                for (j, &i) in self.idx.iter().enumerate() {
                    let src = &gd[(o * self.idx.len() + j) * inner..][..inner];
                    let dst = &mut dx[(o * len + i) * inner..][..inner];
                    dst.iter_mut().zip(src).for_each(|(d, &s)| *d += s);
                }
            }
            Ok(smallvec![Some(Tensor::from_parts(dx, x.shape().clone()))])
        })
    }
}

/// Backward of gather: each gradient element added at the position it was read from.
struct ScatterAdd {
    positions: Vec<usize>,
}
impl Backward for ScatterAdd {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        float_dispatch!(g.dtype(), "gather", |T| {
            let gd = g.float_data::<T>();
            let mut dx = vec![T::zero(); x.elem_count()];
            for (&p, &v) in self.positions.iter().zip(gd.iter()) {
                dx[p] += v;
            }
            Ok(smallvec![Some(Tensor::from_parts(dx, x.shape().clone()))])
        })
    }
}

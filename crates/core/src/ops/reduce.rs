//! Reductions over chosen dims, with `keepdim`: sum, mean, max, min, argmax, argmin, var.

use crate::autograd::{Backward, InputGrads};
use crate::cpu::reduce::{extreme_middle, sum_middle};
use crate::dtype::Float;
use crate::shape::Dims;
use crate::tensor::float_dispatch;
use crate::{Error, Result, Shape, Tensor};
use smallvec::smallvec;
use std::borrow::Cow;

/// How a reduction along one dim reads its input: a contiguous buffer viewed as
/// `[outer, len, inner]`, the middle axis reduced.
struct Plan<'a, T: Clone> {
    data: Cow<'a, [T]>,
    outer: usize,
    len: usize,
    inner: usize,
    /// The result's shape with the reduced dim kept as 1, and with it removed.
    keep_shape: Shape,
    drop_shape: Shape,
}

impl Tensor {
    /// The result's shape of a reduction over `dims`: with them kept as extent 1, and removed.
    fn reduced_shapes(&self, dims: &Dims) -> (Shape, Shape) {
        let shape = self.dims();
        let keep: Dims = shape
            .iter()
            .enumerate()
            .map(|(i, &d)| if dims.contains(&i) { 1 } else { d })
            .collect();
        let drop: Dims = shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !dims.contains(i))
            .map(|(_, &d)| d)
            .collect();
        (keep.into(), drop.into())
    }

    /// The data arranged for a reduction along dim `d`: the dims before it are `outer`, those
    /// after it `inner`.
    fn plan<T: Float + crate::dtype::Element>(&self, d: usize) -> Plan<'_, T> {
        let shape = self.dims();
        let (keep_shape, drop_shape) = self.reduced_shapes(&smallvec![d]);
        Plan {
            data: self.float_data::<T>(),
            outer: shape[..d].iter().product(),
            len: shape[d],
            inner: shape[d + 1..].iter().product(),
            keep_shape,
            drop_shape,
        }
    }

    /// The sum over `dims` (resolved, ascending), in the kept dims' order. Each run of adjacent
    /// reduced dims is one pass of [`sum_middle`], the last run first, each pass reading the
    /// previous one's result: summing a conv's `[N, C, H, W]` gradient to `[C]` is a sum over
    /// each `H·W` plane, then over `N`, where a single pass needed a permuting copy of the
    /// whole input first.
    fn sum_by_groups<T: Float + crate::dtype::Element>(&self, dims: &Dims) -> Vec<T> {
        let mut shape: Dims = self.dims().iter().copied().collect();
        let mut data: Cow<'_, [T]> = self.float_data::<T>();
        if dims.is_empty() {
            return data.into_owned();
        }
        let mut end = dims.len();
        while end > 0 {
            // The run of adjacent dims that ends at dims[end - 1].
            let mut start = end - 1;
            while start > 0 && dims[start - 1] + 1 == dims[start] {
                start -= 1;
            }
            let (first, last) = (dims[start], dims[end - 1] + 1);
            let outer = shape[..first].iter().product();
            let len = shape[first..last].iter().product();
            let inner = shape[last..].iter().product();
            data = Cow::Owned(sum_middle(&data, outer, len, inner));
            shape[first..last].fill(1);
            end = start;
        }
        data.into_owned()
    }

    /// Sum over `dims` (negative dims count from the end); `keepdim` keeps them as extent 1.
    pub fn sum_dims(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.sum_impl("sum", Some(dims), keepdim)
    }

    /// Sum of all elements, as a scalar.
    pub fn sum_all(&self) -> Result<Tensor> {
        self.sum_impl("sum", None, false)
    }

    /// Mean over `dims`.
    pub fn mean_dims(&self, dims: &[isize], keepdim: bool) -> Result<Tensor> {
        self.sum_impl("mean", Some(dims), keepdim)
    }

    /// Mean of all elements, as a scalar (NaN for an empty tensor, as 0/0).
    pub fn mean_all(&self) -> Result<Tensor> {
        self.sum_impl("mean", None, false)
    }

    /// Sum (`op` = "sum") or mean (`op` = "mean": the sum scaled by 1 / count) over `dims`.
    fn sum_impl(&self, op: &'static str, dims: Option<&[isize]>, keepdim: bool) -> Result<Tensor> {
        let dtype = self.expect_float(op)?;
        let dims = self.shape().resolve_dims(op, dims)?;
        let scale = if op == "mean" {
            1.0 / dims.iter().map(|&d| self.dims()[d]).product::<usize>() as f64
        } else {
            1.0
        };
        let (keep_shape, drop_shape) = self.reduced_shapes(&dims);
        float_dispatch!(dtype, op, |T| {
            let mut out = self.sum_by_groups::<T>(&dims);
            if scale != 1.0 {
                let s = T::from_f64(scale);
                out.iter_mut().for_each(|v| *v *= s);
            }
            let shape = if keepdim {
                keep_shape.clone()
            } else {
                drop_shape.clone()
            };
            Ok(Tensor::record_vec(
                out,
                shape,
                &[self],
                SumBackward {
                    keep_shape: keep_shape.clone(),
                    scale,
                },
            ))
        })
    }

    /// Maximum along `dim`. The gradient goes to the first maximal element (the one `argmax`
    /// returns), as PyTorch's `max(dim)`.
    pub fn max_dim(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.extreme_dim("max", dim, keepdim, true).map(|(v, _)| v)
    }

    /// Minimum along `dim`; the gradient goes to the first minimal element.
    pub fn min_dim(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.extreme_dim("min", dim, keepdim, false).map(|(v, _)| v)
    }

    /// Index of the first maximum along `dim`, as i64.
    pub fn argmax(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.extreme_dim("argmax", dim, keepdim, true)
            .map(|(_, i)| i)
    }

    /// Index of the first minimum along `dim`, as i64.
    pub fn argmin(&self, dim: isize, keepdim: bool) -> Result<Tensor> {
        self.extreme_dim("argmin", dim, keepdim, false)
            .map(|(_, i)| i)
    }

    fn extreme_dim(
        &self,
        op: &'static str,
        dim: isize,
        keepdim: bool,
        max: bool,
    ) -> Result<(Tensor, Tensor)> {
        let dtype = self.expect_float(op)?;
        let d = self.shape().resolve_dim(op, dim)?;
        if self.dims()[d] == 0 {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                format!("dim {dim} is empty: it has no {op}"),
            ));
        }
        float_dispatch!(dtype, op, |T| {
            let p = self.plan::<T>(d);
            let (values, idx) = extreme_middle(&p.data, p.outer, p.len, p.inner, max);
            let shape = if keepdim {
                p.keep_shape.clone()
            } else {
                p.drop_shape.clone()
            };
            let indices = Tensor::from_parts(
                idx.iter().map(|&i| i as i64).collect::<Vec<_>>(),
                shape.clone(),
            );
            let backward = ExtremeBackward {
                name: op,
                dim: d,
                keep_shape: p.keep_shape,
                indices: idx,
            };
            Ok((
                Tensor::record_vec(values, shape, &[self], backward),
                indices,
            ))
        })
    }

    /// Maximum of all elements, as a scalar. At ties the gradient is split evenly among the
    /// maximal elements (as PyTorch's `max()`).
    pub fn max_all(&self) -> Result<Tensor> {
        self.extreme_all("max", true)
    }

    /// Minimum of all elements; at ties the gradient is split evenly.
    pub fn min_all(&self) -> Result<Tensor> {
        self.extreme_all("min", false)
    }

    fn extreme_all(&self, op: &'static str, max: bool) -> Result<Tensor> {
        let dtype = self.expect_float(op)?;
        if self.elem_count() == 0 {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                format!("an empty tensor has no {op}"),
            ));
        }
        float_dispatch!(dtype, op, |T| {
            let data = self.float_data::<T>();
            let (v, _) = extreme_middle(&data, 1, data.len(), 1, max);
            Ok(Tensor::record_vec(
                v,
                Shape::scalar(),
                &[self],
                ExtremeAllBackward { name: op },
            ))
        })
    }

    /// Variance over `dims` with Bessel's `correction` (1 = unbiased, PyTorch's default; 0 =
    /// biased, the mean squared deviation): `Σ (x − mean)² / (N − correction)`.
    pub fn var_dims(&self, dims: &[isize], keepdim: bool, correction: usize) -> Result<Tensor> {
        self.expect_float("var")?;
        let resolved = self.shape().resolve_dims("var", Some(dims))?;
        let count: usize = resolved.iter().map(|&d| self.dims()[d]).product();
        if count <= correction {
            return Err(Error::bad_shape(
                "var",
                self.shape(),
                format!(
                    "{count} elements over dims {dims:?} leave no degrees of freedom with correction {correction}"
                ),
            ));
        }
        let centered = self.sub(&self.mean_dims(dims, true)?)?;
        centered
            .square()?
            .sum_dims(dims, keepdim)?
            .mul_scalar(1.0 / (count - correction) as f64)
    }

    /// Variance of all elements with Bessel's `correction`.
    pub fn var_all(&self, correction: usize) -> Result<Tensor> {
        let dims: Vec<isize> = (0..self.rank() as isize).collect();
        self.var_dims(&dims, false, correction)
    }
}

/// Backward of sum and mean: the gradient, scaled, broadcast back over the reduced dims (a view).
struct SumBackward {
    keep_shape: Shape,
    scale: f64,
}

impl Backward for SumBackward {
    fn name(&self) -> &'static str {
        if self.scale == 1.0 { "sum" } else { "mean" }
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let g = if self.scale == 1.0 {
            g.clone()
        } else {
            g.mul_scalar(self.scale)?
        };
        let g = g.reshape(self.keep_shape.clone())?;
        Ok(smallvec![Some(g.broadcast_as(inputs[0].shape().clone())?)])
    }
}

/// Backward of max/min along a dim: the gradient goes to the recorded index of each line.
struct ExtremeBackward {
    name: &'static str,
    dim: usize,
    keep_shape: Shape,
    indices: Vec<usize>,
}

impl Backward for ExtremeBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        let (outer, len, inner) = crate::ops::activation::split_at_dim(x.dims(), self.dim);
        let g = g.reshape(self.keep_shape.clone())?;
        float_dispatch!(g.dtype(), self.name, |T| {
            let gd = g.float_data::<T>();
            let mut dx = vec![T::zero(); x.elem_count()];
            for o in 0..outer {
                for i in 0..inner {
                    let line = o * inner + i;
                    dx[(o * len + self.indices[line]) * inner + i] = gd[line];
                }
            }
            Ok(smallvec![Some(Tensor::from_parts(dx, x.shape().clone()))])
        })
    }
}

/// Backward of the global max/min: split evenly among the elements equal to the result.
struct ExtremeAllBackward {
    name: &'static str,
}

impl Backward for ExtremeAllBackward {
    fn name(&self) -> &'static str {
        self.name
    }
    fn backward(&self, inputs: &[Tensor], y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let x = &inputs[0];
        let mask = x.eq(y)?;
        let count = mask.sum_all()?;
        let share = g.div(&count)?;
        Ok(smallvec![Some(mask.mul(&share)?)])
    }
}

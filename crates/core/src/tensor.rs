//! `Tensor`: a cheap, cloneable handle to an immutable n-dimensional value, and the record of how
//! it was computed (its autograd node).

use crate::autograd::{Backward, Node, NodeSlot, is_grad_enabled};
use crate::dtype::{Element, Float};
use crate::layout::Layout;
use crate::storage::Storage;
use crate::{DType, Error, Result, Shape};
use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// A process-wide unique identity of a tensor value: gradients are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// An n-dimensional array of `f32`, `f64` or `i64`, with the autograd record of how it was made.
///
/// Cloning is cheap (a reference count). Values never change after creation, except the value
/// behind a [`crate::Var`], which an optimizer replaces.
#[derive(Clone)]
pub struct Tensor(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) id: TensorId,
    pub(crate) storage: Arc<Storage>,
    pub(crate) layout: Layout,
    /// True for a `Var` and for every result computed from one while recording.
    pub(crate) requires_grad: bool,
    pub(crate) is_var: bool,
    pub(crate) node: Mutex<NodeSlot>,
}

impl Drop for Inner {
    /// A recorded result holds its inputs, which hold theirs: left to the compiler, dropping
    /// the last tensor of a chain that no `backward()` released takes one nested drop per op,
    /// and a chain of 30,000 ops overflowed a rayon worker's 2 MiB stack (100,000 the main
    /// thread's 8 MiB). The graph is released one node at a time instead.
    fn drop(&mut self) {
        let slot = self.node.get_mut().unwrap_or_else(PoisonError::into_inner);
        if let NodeSlot::Recorded(node) = std::mem::replace(slot, NodeSlot::None) {
            crate::autograd::release_graph(node);
        }
    }
}

impl Tensor {
    // ---------------------------------------------------------------- construction (internal)

    /// A fresh tensor without history.
    pub(crate) fn from_storage(storage: Storage, layout: Layout) -> Tensor {
        Self::from_shared(Arc::new(storage), layout, false)
    }

    pub(crate) fn from_shared(storage: Arc<Storage>, layout: Layout, is_var: bool) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage,
            layout,
            requires_grad: is_var,
            is_var,
            node: Mutex::new(NodeSlot::None),
        }))
    }

    /// The result of an op: records `op` with its `inputs` when recording is on and an input
    /// requires a gradient; a plain tensor otherwise.
    pub(crate) fn record(
        storage: Arc<Storage>,
        layout: Layout,
        inputs: &[&Tensor],
        op: impl Backward + 'static,
    ) -> Tensor {
        let track = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        let node = if track {
            NodeSlot::Recorded(Node::new(op, inputs))
        } else {
            NodeSlot::None
        };
        Tensor(Arc::new(Inner {
            id: TensorId::fresh(),
            storage,
            layout,
            requires_grad: track,
            is_var: false,
            node: Mutex::new(node),
        }))
    }

    /// A contiguous result of an op from its buffer.
    pub(crate) fn record_vec<T: Element>(
        data: Vec<T>,
        shape: Shape,
        inputs: &[&Tensor],
        op: impl Backward + 'static,
    ) -> Tensor {
        Self::record(
            Arc::new(T::into_storage(data)),
            Layout::contiguous(shape),
            inputs,
            op,
        )
    }

    /// A contiguous tensor without history from its buffer (length checked by the caller).
    pub(crate) fn from_parts<T: Element>(data: Vec<T>, shape: Shape) -> Tensor {
        debug_assert_eq!(data.len(), shape.elem_count());
        Self::from_storage(T::into_storage(data), Layout::contiguous(shape))
    }

    // ---------------------------------------------------------------- construction (public)

    /// A tensor from a flat row-major buffer; errors when the length does not match the shape.
    pub fn from_vec<T: Element>(data: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.elem_count() {
            return Err(Error::bad_shape(
                "from_vec",
                &shape,
                format!("needs {} elements, got {}", shape.elem_count(), data.len()),
            ));
        }
        Ok(Self::from_parts(data, shape))
    }

    /// A tensor from a slice (copied).
    pub fn from_slice<T: Element>(data: &[T], shape: impl Into<Shape>) -> Result<Tensor> {
        Self::from_vec(data.to_vec(), shape)
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(value: T) -> Tensor {
        Self::from_parts(vec![value], Shape::scalar())
    }

    /// A rank-0 tensor of the given dtype holding `value` (rounded for f32, truncated for i64).
    pub fn scalar_of(value: f64, dtype: DType) -> Tensor {
        Self::full(Shape::scalar(), value, dtype)
    }

    /// A tensor filled with `value` (converted to the dtype).
    pub fn full(shape: impl Into<Shape>, value: f64, dtype: DType) -> Tensor {
        let shape = shape.into();
        let n = shape.elem_count();
        let storage = match dtype {
            DType::F32 => Storage::F32(vec![value as f32; n]),
            DType::F64 => Storage::F64(vec![value; n]),
            DType::I64 => Storage::I64(vec![value as i64; n]),
        };
        Self::from_storage(storage, Layout::contiguous(shape))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        Self::full(shape, 0.0, dtype)
    }

    /// A tensor of ones.
    pub fn ones(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        Self::full(shape, 1.0, dtype)
    }

    /// Zeros of the same shape and dtype.
    pub fn zeros_like(&self) -> Tensor {
        Self::zeros(self.shape().clone(), self.dtype())
    }

    /// Ones of the same shape and dtype.
    pub fn ones_like(&self) -> Tensor {
        Self::ones(self.shape().clone(), self.dtype())
    }

    /// The values `start, start + step, ...` below `end` (above it for a negative step), as a
    /// 1-D tensor.
    pub fn arange(start: f64, end: f64, step: f64, dtype: DType) -> Result<Tensor> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(Error::invalid(
                "arange",
                format!("start {start}, end {end} and step {step} must be finite, step non-zero"),
            ));
        }
        let n = ((end - start) / step).ceil().max(0.0) as usize;
        let values: Vec<f64> = (0..n).map(|i| start + i as f64 * step).collect();
        Tensor::from_vec(values, [n])?.to_dtype(dtype)
    }

    // ---------------------------------------------------------------- accessors

    /// The unique identity of this value (gradients are keyed by it).
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.layout.shape
    }

    /// The extents, outermost first.
    pub fn dims(&self) -> &[usize] {
        self.0.layout.shape.dims()
    }

    /// The number of dims.
    pub fn rank(&self) -> usize {
        self.0.layout.shape.rank()
    }

    /// The number of elements.
    pub fn elem_count(&self) -> usize {
        self.0.layout.shape.elem_count()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.storage.dtype()
    }

    /// How the elements sit in the storage.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// Whether the elements are stored row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// Whether gradients flow back through this tensor (a `Var`, or computed from one while
    /// recording).
    pub fn requires_grad(&self) -> bool {
        self.0.requires_grad
    }

    /// Whether this is the value of a [`crate::Var`].
    pub fn is_var(&self) -> bool {
        self.0.is_var
    }

    /// The name of the op that produced this tensor, while its graph is recorded (`"matmul"`);
    /// `None` for leaves and after `backward()` released the graph.
    pub fn op_name(&self) -> Option<&'static str> {
        match &*self.0.node.lock().unwrap_or_else(|p| p.into_inner()) {
            NodeSlot::Recorded(n) => Some(n.op.name()),
            _ => None,
        }
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.0.storage
    }

    /// The whole storage buffer (the layout says which elements are this tensor's).
    pub(crate) fn raw<T: Element>(&self) -> Result<&[T]> {
        T::slice(&self.0.storage).ok_or(Error::UnsupportedDType {
            op: "read",
            got: self.dtype(),
            expected: T::DTYPE.as_str(),
        })
    }

    /// The elements in row-major order, borrowed when contiguous (no copy), copied otherwise;
    /// errors when `T` is not the tensor's dtype.
    pub fn contiguous_data<T: Element>(&self) -> Result<Cow<'_, [T]>> {
        let raw = self.raw::<T>()?;
        Ok(match self.0.layout.contiguous_range() {
            Some(r) => Cow::Borrowed(&raw[r]),
            None => Cow::Owned(crate::cpu::strided::gather(raw, &self.0.layout)),
        })
    }

    /// The elements in row-major order; errors when `T` is not the tensor's dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        if T::DTYPE != self.dtype() {
            return Err(Error::UnsupportedDType {
                op: "to_vec",
                got: self.dtype(),
                expected: T::DTYPE.as_str(),
            });
        }
        Ok(self.contiguous_data::<T>()?.into_owned())
    }

    /// The elements in row-major order converted to `f64`, whatever the dtype.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        match self.storage() {
            Storage::F32(_) => self.map_vec(|v: f32| v as f64),
            Storage::F64(_) => self.map_vec(|v: f64| v),
            Storage::I64(_) => self.map_vec(|v: i64| v as f64),
        }
    }

    fn map_vec<T: Element>(&self, f: impl Fn(T) -> f64) -> Vec<f64> {
        let data = self
            .contiguous_data::<T>()
            .expect("dtype matched by caller");
        data.iter().map(|&v| f(v)).collect()
    }

    /// The value of a one-element tensor as `f64`.
    pub fn to_scalar_f64(&self) -> Result<f64> {
        if self.elem_count() != 1 {
            return Err(Error::bad_shape(
                "to_scalar",
                self.shape(),
                "only a one-element tensor converts to a scalar",
            ));
        }
        Ok(self.to_vec_f64()[0])
    }

    /// The value of a one-element tensor.
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        if self.elem_count() != 1 {
            return Err(Error::bad_shape(
                "to_scalar",
                self.shape(),
                "only a one-element tensor converts to a scalar",
            ));
        }
        Ok(self.to_vec::<T>()?[0])
    }

    /// The same value cut off from the graph: gradients do not flow through the result.
    pub fn detach(&self) -> Tensor {
        if !self.requires_grad() {
            return self.clone();
        }
        Self::from_shared(self.0.storage.clone(), self.0.layout.clone(), false)
    }

    /// Errors unless the dtype is a float (ops that compute need one).
    pub(crate) fn expect_float(&self, op: &'static str) -> Result<DType> {
        let d = self.dtype();
        if d.is_float() {
            Ok(d)
        } else {
            Err(Error::UnsupportedDType {
                op,
                got: d,
                expected: "f32 or f64",
            })
        }
    }

    /// Errors unless both tensors have the same dtype.
    pub(crate) fn same_dtype(&self, op: &'static str, other: &Tensor) -> Result<DType> {
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: self.dtype(),
                rhs: other.dtype(),
            });
        }
        Ok(self.dtype())
    }

    /// Float data of a float tensor as `T` (used by kernels after dtype dispatch).
    pub(crate) fn float_data<T: Float + Element>(&self) -> Cow<'_, [T]> {
        self.contiguous_data::<T>()
            .expect("float dtype dispatched by the caller")
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 16;
        let values = self.to_vec_f64();
        write!(f, "Tensor({}, {}, [", self.dtype(), self.shape())?;
        for (i, v) in values.iter().take(MAX).enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{v}")?;
        }
        if values.len() > MAX {
            write!(f, ", ... ({} more)", values.len() - MAX)?;
        }
        write!(f, "]")?;
        if self.requires_grad() {
            write!(f, ", requires_grad")?;
        }
        write!(f, ")")
    }
}

/// Dispatches on a float tensor's dtype, binding the element type to `$T` inside `$body`, or
/// returns an [`Error::UnsupportedDType`] naming `$op`.
macro_rules! float_dispatch {
    ($dtype:expr, $op:expr, |$T:ident| $body:expr) => {
        match $dtype {
            $crate::DType::F32 => {
                #[allow(dead_code)]
                type $T = f32;
                #[allow(unused_imports)]
                use num_traits::{Float as _, One as _, Zero as _};
                $body
            }
            $crate::DType::F64 => {
                #[allow(dead_code)]
                type $T = f64;
                #[allow(unused_imports)]
                use num_traits::{Float as _, One as _, Zero as _};
                $body
            }
            other => {
                return Err($crate::Error::UnsupportedDType {
                    op: $op,
                    got: other,
                    expected: "f32 or f64",
                })
            }
        }
    };
}
pub(crate) use float_dispatch;

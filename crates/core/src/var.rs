//! `Var`: a trainable parameter. Its value is a tensor that gradients flow to, and that an
//! optimizer replaces after each step, in place when no graph still holds the old value. A `Var`
//! made by [`Var::buffer`] is model state that no gradient reaches (BatchNorm's running
//! statistics and its integer batch count).

use crate::dtype::Element;
use crate::layout::Layout;
use crate::storage::Storage;
use crate::tensor::{Inner, Tensor, TensorId};
use crate::{Error, Result};
use std::sync::{Arc, Mutex, RwLock};

/// A trainable parameter: a tensor with a stable identity whose value can be updated.
///
/// `Var` is a shared handle: clones refer to the same parameter (a model and its optimizer both
/// hold it). Every value it ever holds has the same [`TensorId`], so the gradient of a loss with
/// respect to the parameter is `grads.get(&var)`.
#[derive(Clone)]
pub struct Var(Arc<RwLock<Tensor>>);

impl Var {
    /// A parameter initialized with a copy of `value`'s data (contiguous, detached from any graph).
    pub fn new(value: &Tensor) -> Result<Var> {
        value.expect_float("Var::new")?;
        Ok(Var::with_grad(value, true))
    }

    /// Model state that is updated in place but never differentiated (a buffer): any dtype,
    /// including i64 counters. Its value does not require a gradient.
    pub fn buffer(value: &Tensor) -> Var {
        Var::with_grad(value, false)
    }

    fn with_grad(value: &Tensor, requires_grad: bool) -> Var {
        let storage = match value.layout().contiguous_range() {
            Some(r) if r.start == 0 && r.len() == value.storage().len() => {
                Arc::clone(&value.0.storage)
            }
            _ => Arc::new(value.contiguous().storage_copy()),
        };
        let layout = Layout::contiguous(value.shape().clone());
        let mut tensor = Tensor::from_shared(storage, layout, true);
        Arc::get_mut(&mut tensor.0)
            .expect("a fresh tensor has one handle")
            .requires_grad = requires_grad;
        Var(Arc::new(RwLock::new(tensor)))
    }

    /// The current value, as a tensor that records gradients (use it in the forward pass).
    pub fn as_tensor(&self) -> Tensor {
        self.read().clone()
    }

    /// The identity shared by all values of this parameter.
    pub fn id(&self) -> TensorId {
        self.read().id()
    }

    /// The shape (fixed for the life of the parameter).
    pub fn shape(&self) -> crate::Shape {
        self.read().shape().clone()
    }

    /// The dtype (fixed for the life of the parameter).
    pub fn dtype(&self) -> crate::DType {
        self.read().dtype()
    }

    /// Number of elements.
    pub fn elem_count(&self) -> usize {
        self.read().elem_count()
    }

    /// Replaces the value with `value`'s data; shape and dtype must match.
    pub fn set(&self, value: &Tensor) -> Result<()> {
        let current = self.as_tensor();
        if value.shape() != current.shape() {
            return Err(Error::ShapeMismatch {
                op: "Var::set",
                lhs: current.shape().clone().into(),
                rhs: value.shape().clone().into(),
                reason: "a parameter keeps its shape".into(),
            });
        }
        current.same_dtype("Var::set", value)?;
        drop(current);
        match value.dtype() {
            crate::DType::F32 => self.set_from::<f32>(value),
            crate::DType::F64 => self.set_from::<f64>(value),
            crate::DType::I64 => self.set_from::<i64>(value),
        }
    }

    fn set_from<T: Element>(&self, value: &Tensor) -> Result<()> {
        let src = value.contiguous_data::<T>()?;
        self.update(|w: &mut [T]| w.copy_from_slice(&src))
    }

    /// Runs `f` on the value's elements (row-major) to update them in place. The buffer is
    /// written in place when nothing else holds it; when a live graph or a view still holds the
    /// old value, the old value is left intact and a new buffer takes its place (copy on write).
    pub fn update<T: Element>(&self, f: impl FnOnce(&mut [T])) -> Result<()> {
        let mut guard = self.0.write().unwrap_or_else(|p| p.into_inner());
        let tensor = &mut *guard;
        if tensor.dtype() != T::DTYPE {
            return Err(Error::DTypeMismatch {
                op: "Var::update",
                lhs: tensor.dtype(),
                rhs: T::DTYPE,
            });
        }
        if Arc::get_mut(&mut tensor.0).is_none() {
            // Someone holds this value (a graph, the caller): give the Var a fresh handle with the
            // same identity and the same (shared) buffer; the buffer is copied below if needed.
            let inner = Inner {
                id: tensor.id(),
                storage: Arc::clone(&tensor.0.storage),
                layout: tensor.0.layout.clone(),
                requires_grad: tensor.requires_grad(),
                is_var: true,
                node: Mutex::new(crate::autograd::NodeSlot::None),
            };
            *tensor = Tensor(Arc::new(inner));
        }
        let inner = Arc::get_mut(&mut tensor.0).expect("handle made unique above");
        let storage: &mut Storage = Arc::make_mut(&mut inner.storage);
        f(T::slice_mut(storage).expect("dtype checked above"));
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tensor> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Var({:?})", self.as_tensor())
    }
}

impl Tensor {
    /// A fresh contiguous copy of the elements as a storage.
    pub(crate) fn storage_copy(&self) -> Storage {
        match self.storage() {
            Storage::F32(_) => Storage::F32(self.contiguous_data::<f32>().unwrap().into_owned()),
            Storage::F64(_) => Storage::F64(self.contiguous_data::<f64>().unwrap().into_owned()),
            Storage::I64(_) => Storage::I64(self.contiguous_data::<i64>().unwrap().into_owned()),
        }
    }
}

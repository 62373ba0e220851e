//! Errors of tensor operations. Every misuse reachable from user input is an `Err`, never a panic,
//! and the message names the op and the shapes, dims or dtypes at fault.

use crate::{DType, Shape};

/// The error type of every fallible nabla-core operation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// Two operands whose shapes do not fit together, e.g.
    /// `matmul: [32, 784] x [256, 10]: inner dimensions differ (784 != 256)`.
    #[error("{op}: {lhs} x {rhs}: {reason}")]
    ShapeMismatch {
        op: &'static str,
        lhs: Box<Shape>,
        rhs: Box<Shape>,
        reason: String,
    },
    /// A shape that is wrong for the op on its own (wrong rank, wrong element count, ...).
    #[error("{op}: shape {shape}: {reason}")]
    BadShape {
        op: &'static str,
        shape: Box<Shape>,
        reason: String,
    },
    /// A dimension index outside `-rank..rank`.
    #[error("{op}: dim {dim} is out of range for a tensor of rank {rank} (shape {shape})")]
    DimOutOfRange {
        op: &'static str,
        dim: isize,
        rank: usize,
        shape: Box<Shape>,
    },
    /// Operands of different dtypes (nabla never converts implicitly).
    #[error("{op}: dtype mismatch: {lhs} vs {rhs} (convert one with .to_dtype())")]
    DTypeMismatch {
        op: &'static str,
        lhs: DType,
        rhs: DType,
    },
    /// A dtype the op does not accept, e.g. an i64 index tensor passed to `exp`.
    #[error("{op}: {got} tensors are not supported here (expected {expected})")]
    UnsupportedDType {
        op: &'static str,
        got: DType,
        expected: &'static str,
    },
    /// An index outside its dimension (class targets, `index_select`, `gather`, `narrow`).
    #[error("{op}: index {index} is out of range for dim {dim} of size {size}")]
    IndexOutOfRange {
        op: &'static str,
        index: i64,
        dim: usize,
        size: usize,
    },
    /// Any other invalid argument (a negative probability, a zero stride, ...).
    #[error("{op}: {reason}")]
    InvalidArgument { op: &'static str, reason: String },
    /// Misuse of automatic differentiation (backward of a non-scalar, a released graph, ...).
    #[error("backward: {0}")]
    Backward(String),
    /// An error from inside a larger computation, with where it happened (e.g. the layer
    /// `layers.2 (Linear 784 -> 256)` whose forward pass failed).
    // `inner`, not `source`: the message already holds it, and a source would print twice in
    // an error chain (`{:#}`).
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<Error> },
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidArgument {
            op,
            reason: reason.into(),
        }
    }

    /// `Ok` when `value` (the argument `name` of `op`) is finite, else an
    /// [`Error::InvalidArgument`] naming it: `"elu: alpha must be finite, got NaN"`.
    pub fn check_finite(op: &'static str, name: &str, value: f64) -> Result<()> {
        if value.is_finite() {
            Ok(())
        } else {
            Err(Error::invalid(
                op,
                format!("{name} must be finite, got {value}"),
            ))
        }
    }

    /// Shorthand for [`Error::BadShape`].
    pub fn bad_shape(op: &'static str, shape: &Shape, reason: impl Into<String>) -> Self {
        Error::BadShape {
            op,
            shape: Box::new(shape.clone()),
            reason: reason.into(),
        }
    }
}

/// Adds where an error happened to its message: `result.context(|| format!("layer {name}"))`.
pub trait ResultExt<T> {
    /// Wraps an `Err` in [`Error::Context`] with the given description.
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|inner| Error::Context {
            context: context().into(),
            inner: Box::new(inner),
        })
    }
}

/// `Result` with nabla-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

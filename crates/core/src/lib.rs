//! # nabla-core
//!
//! Tensors in `f32`/`f64` (and `i64` indices), CPU kernels, and reverse-mode automatic
//! differentiation. Everything else in nabla builds on this crate.
//!
//! ```
//! use nabla_core::{Tensor, Var, DType};
//! // Fit y = w·x by one gradient step on the squared error.
//! let w = Var::new(&Tensor::scalar(0.0f64)).unwrap();
//! let x = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], [3]).unwrap();
//! let y = Tensor::from_vec(vec![2.0f64, 4.0, 6.0], [3]).unwrap();
//! let loss = x.mul(&w.as_tensor()).unwrap().mse_loss(&y, nabla_core::Reduction::Mean).unwrap();
//! let grads = loss.backward().unwrap();
//! // dL/dw = mean(2 (w x − y) x) = −2 · (2·1 + 4·2 + 6·3) / 3
//! let dw = grads.get(&w).unwrap().to_scalar::<f64>().unwrap();
//! assert!((dw + 56.0 / 3.0).abs() < 1e-12);
//! # let _ = DType::F32;
//! ```

pub mod anomaly;
mod autograd;
mod cpu;
mod dtype;
mod error;
mod layout;
mod ops;
mod random;
mod shape;
pub mod simd;
mod storage;
mod tensor;
mod var;

pub use autograd::{GradKey, Grads, NoGradGuard, is_grad_enabled, no_grad, with_no_grad};
pub use dtype::{DType, Element, Float};
pub use error::{Error, Result, ResultExt};
pub use layout::Layout;
pub use ops::conv::{Conv2dOptions, Pool2dOptions};
pub use ops::loss::Reduction;
pub use ops::recurrent::RecurrentCell;
pub use random::Rng;
pub use shape::Shape;
pub use simd::{SimdLevel, set_max_simd_level, simd_level};
pub use storage::Storage;
pub use tensor::{Tensor, TensorId};
pub use var::Var;

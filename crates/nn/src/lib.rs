//! # nabla-nn
//!
//! Layers (Linear and activations as separate modules, Sequential, Residual, convolution and
//! pooling, RNN/LSTM/GRU and Embedding, normalization, dropout), losses (including penalties on
//! hidden activations), initializers, optimizers matching PyTorch's update rules, learning-rate
//! schedules and gradient clipping, on top of `nabla-core`.
//!
//! ```
//! use nabla_core::{Rng, Tensor, DType};
//! use nabla_nn::{layers::*, loss::Loss, optim::{Adam, Optimizer}, Ctx, Module, ModuleExt};
//!
//! let mut rng = Rng::seed(0);
//! let model = Sequential::new()
//!     .with(Linear::new(2, 8, &mut rng).unwrap())
//!     .with(Tanh)
//!     .with(Linear::new(8, 1, &mut rng).unwrap());
//! let x = Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], [4, 2]).unwrap();
//! let y = Tensor::from_vec(vec![0f32, 1., 1., 0.], [4, 1]).unwrap();
//! let mut adam = Adam::new(0.05).unwrap();
//! let params = model.named_parameters();
//! for _ in 0..300 {
//!     let out = model.forward(&x, &mut Ctx::train(Rng::seed(1))).unwrap();
//!     let loss = Loss::Mse.compute(&out, &y).unwrap();
//!     adam.step(&params, &loss.backward().unwrap()).unwrap();
//! }
//! let out = model.predict(&x).unwrap();
//! let loss = Loss::Mse.compute(&out, &y).unwrap().to_scalar::<f32>().unwrap();
//! assert!(loss < 0.01, "XOR not learned: {loss}");
//! # let _ = DType::F32;
//! ```

pub mod clip;
pub mod init;
pub mod layers;
pub mod loss;
mod module;
pub mod optim;
pub mod schedule;

pub use init::Init;
pub use module::{CarriedState, Ctx, Mode, Module, ModuleExt, NamedVar, VarKind, visit_child};

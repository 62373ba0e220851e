//! # nabla
//!
//! The `nabla` command line and the library facade: `use nabla::prelude::*` brings the tensor,
//! autodiff and (as they land) layer, data and training APIs into scope.

pub mod commands;

/// Everything a typical program needs.
pub mod prelude {
    pub use nabla_core::{
        Conv2dOptions, DType, Error, Grads, Pool2dOptions, Reduction, Result, Rng, Shape, Tensor,
        Var, no_grad, with_no_grad,
    };
    pub use nabla_nn::{Ctx, Init, Module, ModuleExt};
}

pub use nabla_core as core;
pub use nabla_data as data;
pub use nabla_nn as nn;
pub use nabla_train as train;

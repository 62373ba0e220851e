//! # nabla-nn
//!
//! Layers (Linear and activations as separate modules, Sequential, Residual, normalization),
//! losses, initializers, optimizers and learning-rate schedules on top of `nabla-core`.
//! Work in progress: see the project's issues for what lands here next.

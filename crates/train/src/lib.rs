//! # nabla-train
//!
//! The training loop (fit/evaluate/predict), metrics, callbacks, checkpoints, convergence
//! diagnostics, hyperparameter search and reports.
//! Work in progress: see the project's issues for what lands here next.

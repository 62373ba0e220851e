//! # nabla-train
//!
//! The training loop (`fit`, `evaluate`, `predict`), metrics, callbacks, early stopping, and
//! checkpoints (safetensors, PyTorch names, atomic writes). Convergence diagnostics,
//! hyperparameter search and reports land here next.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod experiment;
pub mod metrics;
pub mod report;
pub mod run_dir;
pub mod trainer;

pub use error::{Error, Result};
pub use metrics::{MetricAccumulator, OutputKind};
pub use trainer::{
    Callback, EarlyStopping, EpochRecord, History, TrainConfig, Trainer, evaluate, evaluate_scaled,
    fit, fit_from, predict,
};

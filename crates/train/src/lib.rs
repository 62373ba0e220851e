//! # nabla-train
//!
//! The training loop (`fit`, `evaluate`, `predict`, the stepwise `Trainer`), metrics,
//! callbacks, early stopping, and checkpoints (safetensors, PyTorch names, atomic writes); the
//! TOML training config (`config`), runs built from it into a run directory with per-epoch
//! checkpoint sets and resume (`experiment`, `run_dir`), and the HTML report (`report`).
//! Hyperparameter search over a config's ranges (`tune`), the learning-rate range test
//! (`lr_find`), the convergence doctor (`doctor`),
//! autoencoders' code statistics and reconstructions (`autoencoder`), and GANs: the two-player
//! training loop, measures of their samples, and their runs (`gan`); character-level language
//! models from a text file and the text they write (`text`).

pub mod autoencoder;
pub mod checkpoint;
pub mod config;
pub mod doctor;
pub mod error;
pub mod experiment;
pub mod gan;
pub mod image_grid;
pub mod lr_find;
pub mod metrics;
mod readable_json;
pub mod report;
pub mod run_dir;
pub mod text;
pub mod trainer;
pub mod tune;

pub use error::{Error, Result};
pub use metrics::{MetricAccumulator, OutputKind};
pub use trainer::{
    Callback, EarlyStopping, EpochRecord, History, TrainConfig, Trainer, evaluate,
    evaluate_batches, evaluate_scaled, fit, fit_from, predict,
};

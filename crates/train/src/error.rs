//! Errors of training, evaluation and checkpoints.

use std::path::PathBuf;

/// The error type of nabla-train.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Tensor(#[from] nabla_core::Error),
    #[error(transparent)]
    Data(#[from] nabla_data::Error),
    /// A config key with a bad value, located in its file.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        // Not named `source`: the message already holds it (see nabla-data's `Error::Io`).
        cause: std::io::Error,
    },
    /// A checkpoint that does not fit the model (missing or unexpected names, wrong shapes).
    #[error("{}: {message}", path.display())]
    Checkpoint { path: PathBuf, message: String },
    /// The loss stopped being finite: training diverged.
    #[error(
        "the loss became {loss} at epoch {epoch}, step {step}: training diverged: {trace} \
         (lower the learning rate, clip gradients, or check the inputs for unscaled or missing \
         values; `nabla doctor` diagnoses the config)"
    )]
    Diverged {
        epoch: usize,
        step: u64,
        loss: f64,
        /// Where the first non-finite value appeared (the doctor's trace).
        trace: String,
    },
    /// An invalid setting.
    #[error("{0}")]
    Invalid(String),
}

/// `Result` with nabla-train's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

//! Errors of data loading and preprocessing. Each names the file, and where it can the line
//! and the column, of the bad input.

use std::path::PathBuf;

/// The error type of nabla-data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        // Not named `source`: the message already holds it, and a source would print twice
        // in an error chain (`{:#}`).
        cause: std::io::Error,
    },
    /// A problem at a place in a text file: `data.csv:14: column "age" (2): ...`.
    #[error("{}:{line}: {}{message}", path.display(), column.as_ref().map(|c| format!("column {c}: ")).unwrap_or_default())]
    At {
        path: PathBuf,
        line: u64,
        /// The column, as `"name" (number)`, counting from 1.
        column: Option<String>,
        message: String,
    },
    /// A problem with a whole file (bad header, bad IDX magic number, no rows).
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// An invalid option or argument (a split fraction out of range, a batch size of 0, ...).
    #[error("{0}")]
    Invalid(String),
    /// An error from a tensor operation.
    #[error(transparent)]
    Tensor(#[from] nabla_core::Error),
}

/// `Result` with nabla-data's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn file(path: &std::path::Path, message: impl Into<String>) -> Error {
        Error::File {
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// For `map_err`: an I/O error on `path`.
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

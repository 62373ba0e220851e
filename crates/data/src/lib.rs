//! # nabla-data
//!
//! Getting real data into tensors: CSV (columns by name, errors that name file, line and
//! column, one-hot categories, missing values), IDX (MNIST, optionally gzip), folders of
//! images (a folder per class), sequences stored
//! one row per time step (grouped and padded), plain text for character models, in-memory datasets, seeded mini-batching, seeded (stratified) splits, and preprocessing fitted on the
//! training split only (imputation, standardization, min-max, PCA whitening).

pub mod csv;
pub mod dataset;
pub mod error;
pub mod idx;
pub mod images;
pub mod loader;
pub mod memory;
pub mod preprocess;
pub mod sequence;
pub mod series;
pub mod split;
pub mod text;

pub use csv::{
    CsvOptions, CsvSchema, Missing, Table, Target, Task, read_csv, read_csv_from, read_csv_with,
    read_csv_with_from, read_series,
};
pub use dataset::Dataset;
pub use error::{Error, Result};
pub use idx::{
    IdxArray, decode_idx, idx_dims, is_idx, read_idx, read_idx_images_with, read_idx_table,
    read_idx_table_with,
};
pub use images::{ImageShape, ImageSpec, ImageTable, read_image_folder, read_images_with};
pub use loader::DataLoader;
pub use memory::available_memory;
pub use preprocess::{Imputation, Preprocessor, Scaling};
pub use sequence::{SequenceShape, SequenceSpec};
pub use series::SeriesSpec;
pub use split::{Split, k_fold, split};
pub use text::{TextSpec, Vocabulary, read_text};

//! # nabla-data
//!
//! CSV and IDX readers, datasets, the DataLoader (batching, seeded shuffling) and preprocessing
//! (standardize, min-max, PCA whitening) with train/validation/test splits.
//! Work in progress: see the project's issues for what lands here next.

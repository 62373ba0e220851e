//! Seeded randomness: the same seed gives the same numbers on every platform and run.

use crate::{DType, Error, Result, Shape, Tensor};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// A seeded random generator (ChaCha8: a fixed, documented algorithm, so sequences do not change
/// when dependencies are updated).
pub struct Rng(ChaCha8Rng);

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng(ChaCha8)")
    }
}

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn seed(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform sample in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        self.0.random::<f64>()
    }

    /// A standard normal sample.
    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// A uniform integer in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    /// Shuffles `items` in place (Fisher–Yates): every order equally likely, fixed by the seed.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// A fresh generator for a sub-task, derived from this one (keeps streams independent).
    pub fn fork(&mut self) -> Rng {
        Rng::seed(self.0.random::<u64>())
    }
}

impl Tensor {
    /// Uniform samples in `[low, high)`.
    pub fn rand_uniform(
        shape: impl Into<Shape>,
        low: f64,
        high: f64,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(Error::invalid(
                "rand_uniform",
                format!("needs finite low < high, got {low}, {high}"),
            ));
        }
        let shape = shape.into();
        let values: Vec<f64> = (0..shape.elem_count())
            .map(|_| low + (high - low) * rng.uniform())
            .collect();
        Tensor::from_vec(values, shape)?.to_dtype(dtype)
    }

    /// Normal samples with the given mean and standard deviation.
    pub fn randn(
        shape: impl Into<Shape>,
        mean: f64,
        std: f64,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Tensor> {
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::invalid(
                "randn",
                format!("needs a finite mean and std >= 0, got {mean}, {std}"),
            ));
        }
        let shape = shape.into();
        let values: Vec<f64> = (0..shape.elem_count())
            .map(|_| mean + std * rng.normal())
            .collect();
        Tensor::from_vec(values, shape)?.to_dtype(dtype)
    }
}

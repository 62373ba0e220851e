//! Mini-batches: a seeded shuffle per epoch, a fixed batch size, and the last partial batch kept
//! (or dropped with `drop_last`).

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use nabla_core::{Rng, Tensor};

/// Batching options over a dataset.
#[derive(Debug, Clone, Copy)]
pub struct DataLoader {
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
}

impl DataLoader {
    /// Shuffled batches of `batch_size`, keeping the last partial batch.
    pub fn new(batch_size: usize, seed: u64) -> Result<DataLoader> {
        if batch_size == 0 {
            return Err(Error::Invalid("batch_size must be positive".into()));
        }
        Ok(DataLoader {
            batch_size,
            shuffle: true,
            drop_last: false,
            seed,
        })
    }

    /// The row order of `epoch`: a permutation that depends only on (seed, epoch), so that a
    /// resumed run sees the same batches as an uninterrupted one.
    pub fn order(&self, n: usize, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        if self.shuffle {
            let mut rng = Rng::seed(self.seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            rng.shuffle(&mut order);
        }
        order
    }

    /// Number of batches per epoch for `n` rows.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The batches of `epoch` as `(x, y)` pairs.
    pub fn epoch<'a>(
        &self,
        data: &'a Dataset,
        epoch: u64,
    ) -> impl Iterator<Item = Result<(Tensor, Tensor)>> + 'a {
        let order = self.order(data.len(), epoch);
        let (batch, count) = (self.batch_size, self.batches_per_epoch(data.len()));
        (0..count).map(move |b| {
            let rows = &order[b * batch..((b + 1) * batch).min(order.len())];
            let part = data.select(rows)?;
            Ok((part.x().clone(), part.y().clone()))
        })
    }
}

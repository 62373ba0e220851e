//! How good and how varied a generator's samples are, measured against real data without a
//! trained classifier: by distances in the data's own (preprocessed) space.
//!
//! - **diversity**: the mean pairwise distance between samples over the mean pairwise distance
//!   between held-out real examples. About 1 when the samples vary as much as the data; near 0
//!   when the generator has collapsed to one output (mode collapse).
//! - **nearest distance**: the mean distance from a sample to its nearest training example,
//!   over the same for held-out real examples. About 1 for samples as close to the data as new
//!   real data; far above 1 for noise; far below 1 for copies of training examples.
//! - **class coverage** (labelled data): each sample takes the class of its nearest training
//!   example (1-nearest-neighbour); the entropy of that class histogram over `ln K` is 1 when the
//!   samples spread evenly over the K classes and 0 when they all fall in one; a class is
//!   covered when it gets at least a quarter of an even share.

use crate::error::{Error, Result};
use nabla_core::{DType, Rng, Tensor};
use serde::{Deserialize, Serialize};

/// Real data that samples are measured against (see the module docs).
#[derive(Debug, Clone)]
pub struct RealReference {
    /// Training examples `[m, d]` (f64), at most [`RealReference::MAX_ROWS`] of them.
    train: Tensor,
    train_norms: Vec<f64>,
    /// Their class indices, when the data is labelled.
    labels: Option<Vec<usize>>,
    classes: usize,
    /// What held-out real examples score: the yardsticks of the ratios.
    baseline: Baseline,
}

#[derive(Debug, Clone, Copy)]
struct Baseline {
    pairwise: f64,
    nearest: f64,
}

/// A generator's figures on one set of samples (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleQuality {
    pub samples: usize,
    /// Mean pairwise distance of the samples over that of held-out real examples.
    pub diversity: f64,
    /// Mean distance to the nearest training example, over that of held-out real examples.
    pub nearest_distance: f64,
    /// Normalized entropy (0 to 1) of the samples' nearest-neighbour classes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_entropy: Option<f64>,
    /// Classes that get at least a quarter of an even share of the samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes_covered: Option<usize>,
    /// The share of the most frequent class (1 when every sample looks like one class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_class_share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<usize>,
}

impl SampleQuality {
    /// The figures as named metrics (for an epoch's record).
    pub fn to_metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let mut m = std::collections::BTreeMap::new();
        m.insert("diversity".into(), self.diversity);
        m.insert("nearest_distance".into(), self.nearest_distance);
        if let Some(e) = self.class_entropy {
            m.insert("class_entropy".into(), e);
        }
        if let Some(c) = self.classes_covered {
            m.insert("classes_covered".into(), c as f64);
        }
        if let Some(s) = self.top_class_share {
            m.insert("top_class_share".into(), s);
        }
        m
    }
}

impl RealReference {
    /// More training rows than this are subsampled (seeded): the nearest-neighbour search costs
    /// `samples × rows × width` per measurement.
    pub const MAX_ROWS: usize = 5000;

    /// A reference from training examples `train` (`[n, ...]`, flattened per row), their
    /// class indices (`labels`, with `classes` classes) when labelled, and held-out real
    /// examples for the yardsticks (without them, each training example's nearest *other*
    /// training example serves).
    pub fn new(
        train: &Tensor,
        labels: Option<(&[usize], usize)>,
        held_out: Option<&Tensor>,
        seed: u64,
    ) -> Result<RealReference> {
        let n = train.dims().first().copied().unwrap_or(0);
        if n < 2 {
            return Err(Error::Invalid(format!(
                "measuring samples needs at least 2 real training examples, got {n}"
            )));
        }
        if let Some((l, _)) = labels
            && l.len() != n
        {
            return Err(Error::Invalid(format!(
                "{} labels for {n} training examples",
                l.len()
            )));
        }
        let mut rows: Vec<usize> = (0..n).collect();
        if n > Self::MAX_ROWS {
            Rng::seed(seed ^ 0x5EED_0FAE_u64).shuffle(&mut rows);
            rows.truncate(Self::MAX_ROWS);
            rows.sort_unstable();
        }
        let train = flat_f64(&train.index_select(0, &index(&rows))?)?;
        let train_norms = squared_norms(&train);
        let labels = labels.map(|(l, k)| (rows.iter().map(|&r| l[r]).collect::<Vec<_>>(), k));
        let mut reference = RealReference {
            train,
            train_norms,
            classes: labels.as_ref().map_or(0, |(_, k)| *k),
            labels: labels.map(|(l, _)| l),
            baseline: Baseline {
                pairwise: 1.0,
                nearest: 1.0,
            },
        };
        let (pairwise, nearest) = match held_out {
            Some(h) if h.dims().first().copied().unwrap_or(0) >= 2 => {
                let h = flat_f64(h)?;
                (
                    mean_pairwise_distance(&h)?,
                    mean(&reference.nearest(&h, false)?.0),
                )
            }
            _ => (
                mean_pairwise_distance(&reference.train)?,
                mean(&reference.nearest(&reference.train.clone(), true)?.0),
            ),
        };
        if !(pairwise > 0.0 && nearest > 0.0) {
            return Err(Error::Invalid(
                "the real examples are all identical: there is no spread to compare samples \
                 with"
                    .into(),
            ));
        }
        reference.baseline = Baseline { pairwise, nearest };
        Ok(reference)
    }

    /// How many classes the data has, when it is labelled.
    pub fn classes(&self) -> Option<usize> {
        self.labels.as_ref().map(|_| self.classes)
    }

    /// The width of one example.
    pub fn width(&self) -> usize {
        self.train.dims()[1]
    }

    /// Measures `samples` (`[n, ...]`, flattened per row; at least 2 rows).
    pub fn measure(&self, samples: &Tensor) -> Result<SampleQuality> {
        let s = flat_f64(samples)?;
        let n = s.dims()[0];
        if n < 2 || s.dims()[1] != self.width() {
            return Err(Error::Invalid(format!(
                "measuring samples needs at least 2 of width {}, got {:?}",
                self.width(),
                samples.dims()
            )));
        }
        let (distances, nearest) = self.nearest(&s, false)?;
        let mut quality = SampleQuality {
            samples: n,
            diversity: mean_pairwise_distance(&s)? / self.baseline.pairwise,
            nearest_distance: mean(&distances) / self.baseline.nearest,
            class_entropy: None,
            classes_covered: None,
            top_class_share: None,
            classes: None,
        };
        if let Some(labels) = &self.labels {
            let k = self.classes.max(1);
            let mut counts = vec![0usize; k];
            for &j in &nearest {
                counts[labels[j].min(k - 1)] += 1;
            }
            let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / n as f64).collect();
            let entropy: f64 = shares
                .iter()
                .filter(|&&p| p > 0.0)
                // p·ln(1/p), not −p·ln p: one class gives +0, not −0 ("-0.000" in reports).
                .map(|&p| p * (1.0 / p).ln())
                .sum();
            quality.class_entropy = Some(if k > 1 {
                entropy / (k as f64).ln()
            } else {
                1.0
            });
            quality.classes_covered =
                Some(shares.iter().filter(|&&p| p >= 0.25 / k as f64).count());
            quality.top_class_share = Some(shares.iter().copied().fold(0.0, f64::max));
            quality.classes = Some(k);
        }
        Ok(quality)
    }

    /// For each row of `x` (`[n, d]`, f64), the distance to its nearest training example and
    /// that example's index; `skip_self` ignores exact index matches (x is the training set).
    fn nearest(&self, x: &Tensor, skip_self: bool) -> Result<(Vec<f64>, Vec<usize>)> {
        let m = self.train.dims()[0];
        let x_norms = squared_norms(x);
        // ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b, one matrix product for all pairs.
        let dots = x.matmul(&self.train.t()?)?.to_vec_f64();
        let mut distances = Vec::with_capacity(x_norms.len());
        let mut indices = Vec::with_capacity(x_norms.len());
        for (i, row) in dots.chunks(m).enumerate() {
            let (best, d2) = row
                .iter()
                .enumerate()
                .filter(|(j, _)| !(skip_self && *j == i))
                .map(|(j, dot)| (j, x_norms[i] + self.train_norms[j] - 2.0 * dot))
                .fold((0, f64::INFINITY), |b, c| if c.1 < b.1 { c } else { b });
            distances.push(d2.max(0.0).sqrt());
            indices.push(best);
        }
        Ok((distances, indices))
    }
}

fn index(rows: &[usize]) -> Tensor {
    let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_vec(ids, [rows.len()]).expect("a 1-D index")
}

/// `[n, ...]` as `[n, d]` in f64.
fn flat_f64(t: &Tensor) -> Result<Tensor> {
    let n = t.dims().first().copied().unwrap_or(0);
    let d = t.elem_count() / n.max(1);
    Ok(t.to_dtype(DType::F64)?.reshape([n, d])?)
}

fn squared_norms(x: &Tensor) -> Vec<f64> {
    let d = x.dims()[1].max(1);
    x.to_vec_f64()
        .chunks(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

/// The mean Euclidean distance over all pairs `i < j` of the rows of `x` (`[n, d]`, f64).
fn mean_pairwise_distance(x: &Tensor) -> Result<f64> {
    let n = x.dims()[0];
    let norms = squared_norms(x);
    let gram = x.matmul(&x.t()?)?.to_vec_f64();
    let mut sum = 0.0;
    for i in 0..n {
        for j in i + 1..n {
            sum += (norms[i] + norms[j] - 2.0 * gram[i * n + j])
                .max(0.0)
                .sqrt();
        }
    }
    Ok(sum / (n * (n - 1) / 2).max(1) as f64)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

//! The distribution of a layer's outputs over an epoch's sampled steps: the picture of Glorot
//! and Bengio (2010, figures 3-4) that shows sigmoid units piling up at 0 and 1, tanh units at
//! ±1, and dead ReLUs as a spike at 0, layer by layer.
//!
//! The doctor keeps a thinned sample of each activation layer's outputs while the epoch runs
//! ([`Reservoir`]), and the epoch's record keeps only the binned counts ([`Histogram`]).

use serde::{Deserialize, Serialize};

/// Bins of a layer's histogram.
pub const BINS: usize = 24;
/// Values kept of one sampled step's outputs, at most (evenly spaced over the tensor).
const PER_SAMPLE: usize = 1024;
/// Values kept over an epoch, at most: beyond it the sample is halved, and later steps keep
/// half as many, so that every sampled step weighs about the same.
const PER_EPOCH: usize = 16384;
/// The quantiles the bins span: the few values beyond are counted in the edge bins, so that
/// one outlier does not squash the rest into a bin.
const TAIL: f64 = 0.001;

/// The layer kinds whose outputs are charted: activations and recurrent layers (their hidden
/// states are tanh's), not the affine maps between them.
pub fn charted(kind: &str) -> bool {
    matches!(
        kind,
        "ReLU"
            | "LeakyReLU"
            | "PReLU"
            | "ELU"
            | "GELU"
            | "Sigmoid"
            | "Tanh"
            | "HardTanh"
            | "RNN"
            | "LSTM"
            | "GRU"
    )
}

/// A deterministic sample of a layer's outputs over an epoch: every `stride`-th value of each
/// sampled step, the stride doubling whenever the sample outgrows 16,384 values.
#[derive(Debug, Clone, Default)]
pub struct Reservoir {
    values: Vec<f32>,
    /// How many times the sample was halved this epoch.
    halvings: u32,
}

impl Reservoir {
    /// Keeps about 1,024 of the `count` values that `for_each` offers the [`Sampler`] (a step's
    /// outputs), thinned as the epoch's sample has been.
    pub fn keep(&mut self, count: usize, for_each: impl FnOnce(&mut Sampler<'_>)) {
        let stride = count.div_ceil(PER_SAMPLE).max(1) << self.halvings;
        for_each(&mut Sampler {
            values: &mut self.values,
            stride,
            next: 0,
        });
        while self.values.len() > PER_EPOCH {
            let halved: Vec<f32> = self.values.iter().step_by(2).copied().collect();
            self.values = halved;
            self.halvings += 1;
        }
    }

    /// The histogram of the values kept (`None` when none were).
    pub fn histogram(&self) -> Option<Histogram> {
        Histogram::of(&self.values, BINS)
    }
}

/// Takes every `stride`-th value offered into a [`Reservoir`].
pub struct Sampler<'a> {
    values: &'a mut Vec<f32>,
    stride: usize,
    /// Values to let pass before the next one kept.
    next: usize,
}

impl Sampler<'_> {
    /// Offers the next value.
    #[inline]
    pub fn offer(&mut self, v: f64) {
        if self.next == 0 {
            self.values.push(v as f32);
            self.next = self.stride;
        }
        self.next -= 1;
    }
}

/// Counts in `counts.len()` equal bins over `[lo, hi]`, the 0.1st and 99.9th percentiles of
/// the values (those beyond are counted in the edge bins); non-finite values are left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub lo: f64,
    pub hi: f64,
    pub counts: Vec<u32>,
}

impl Histogram {
    /// The histogram of `values` in `bins` bins (`None` without a finite value). Constant
    /// values `c` (a layer of dead ReLUs: all 0) fill the first bin of `[c, c + max(|c|, 1)]`,
    /// a span on which a chart's axis still reads.
    pub fn of(values: &[f32], bins: usize) -> Option<Histogram> {
        let mut finite: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() || bins == 0 {
            return None;
        }
        // The two order statistics by selection, not a sort: linear in the values.
        let last = finite.len() - 1;
        let mut quantile = |q: f64| {
            let at = (last as f64 * q).round() as usize;
            f64::from(*finite.select_nth_unstable_by(at, f32::total_cmp).1)
        };
        let lo = quantile(TAIL);
        let mut hi = quantile(1.0 - TAIL);
        if hi <= lo {
            hi = lo + lo.abs().max(1.0);
        }
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0u32; bins];
        for &v in &finite {
            let bin = ((f64::from(v) - lo) / width).floor().max(0.0) as usize;
            counts[bin.min(bins - 1)] += 1;
        }
        Some(Histogram { lo, hi, counts })
    }

    /// The fraction of the values in each bin as a step curve of `(value, fraction)` points,
    /// from 0 at `lo` to 0 at `hi`, for a line chart.
    pub fn steps(&self) -> Vec<(f64, f64)> {
        let total = self
            .counts
            .iter()
            .map(|&c| f64::from(c))
            .sum::<f64>()
            .max(1.0);
        let width = (self.hi - self.lo) / self.counts.len().max(1) as f64;
        let mut points = vec![(self.lo, 0.0)];
        for (i, &c) in self.counts.iter().enumerate() {
            let (x0, y) = (self.lo + i as f64 * width, f64::from(c) / total);
            points.push((x0, y));
            points.push((x0 + width, y));
        }
        points.push((self.hi, 0.0));
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_span_the_bulk_and_count_every_value() {
        // 0..=999 and one far outlier: the bins span the 0.1st-99.9th percentiles, the
        // outlier lands in the last bin instead of stretching the range a thousandfold.
        let mut values: Vec<f32> = (0..1000).map(|v| v as f32).collect();
        values.push(1e6);
        values.push(f32::NAN);
        let h = Histogram::of(&values, 10).unwrap();
        assert_eq!((h.lo, h.hi), (1.0, 999.0));
        assert_eq!(
            h.counts.iter().sum::<u32>(),
            1001,
            "NaN left out, the rest counted"
        );
        // 0 (below lo) to 100 in the first bin, up to 100.8; 900 to 999 and 1e6 in the last.
        assert_eq!(h.counts[0], 101);
        assert_eq!(h.counts[9], 101);
        // The step curve: fractions that sum to 1, closed at both ends.
        let steps = h.steps();
        assert_eq!(
            (steps[0], steps[steps.len() - 1]),
            ((1.0, 0.0), (999.0, 0.0))
        );
        let sum: f64 = steps[1..steps.len() - 1]
            .iter()
            .step_by(2)
            .map(|p| p.1)
            .sum();
        assert!((sum - 1.0).abs() < 1e-12, "{sum}");
    }

    #[test]
    fn dead_units_make_one_spike_and_nothing_makes_no_histogram() {
        let h = Histogram::of(&[0.0; 50], BINS).unwrap();
        assert_eq!(h.counts[0], 50);
        assert_eq!((h.lo, h.hi), (0.0, 1.0));
        let h = Histogram::of(&[-3.0; 5], BINS).unwrap();
        assert_eq!((h.lo, h.hi, h.counts[0]), (-3.0, 0.0, 5));
        assert_eq!(Histogram::of(&[], BINS), None);
        assert_eq!(Histogram::of(&[f32::INFINITY], BINS), None);
    }

    #[test]
    fn every_sampled_step_weighs_about_the_same() {
        // 40 steps of 4096 outputs, step k all equal to k: the sample stays bounded, and
        // halving it keeps the early steps as well represented as the late ones.
        let mut r = Reservoir::default();
        for k in 0..40 {
            r.keep(4096, |s| (0..4096).for_each(|_| s.offer(k as f64)));
        }
        assert!(r.values.len() <= PER_EPOCH, "{}", r.values.len());
        let count = |k: f32| r.values.iter().filter(|&&v| v == k).count();
        let (first, last) = (count(0.0), count(39.0));
        assert!(
            first > 0 && (first as f64 / last as f64 - 1.0).abs() < 0.5,
            "{first} vs {last}"
        );
        let h = r.histogram().unwrap();
        assert_eq!(h.counts.iter().sum::<u32>() as usize, r.values.len());
    }
}

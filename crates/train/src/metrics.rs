//! Evaluation metrics, from a model's outputs and the targets.
//!
//! Classification (multi-class logits `[N, C]` against class indices): accuracy, balanced
//! accuracy (the mean recall of the classes), macro-averaged precision, recall and F1, and
//! log-loss (mean cross-entropy). Per-step classes (logits `[N, T,
//! C]` against `[N, T]`, a character model's next characters): accuracy, log-loss and
//! `bits_per_char`, the log-loss in bits (`log_loss / ln 2`). Binary (one logit per row against
//! 0/1 targets): the same with threshold 0 on the logit. Regression: MAE, RMSE and R²
//! (`1 − SS_res / SS_tot`).

use crate::error::{Error, Result};
use nabla_core::{DType, Reduction, Tensor, with_no_grad};
use std::collections::BTreeMap;

/// What the model's outputs mean, which decides the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// `[N, C]` logits, targets `[N]` class indices (or `[N, T, C]` and `[N, T]`: a class per
    /// step).
    MultiClass,
    /// `[N, 1]` logits, targets `[N, 1]` in {0, 1}.
    BinaryLogit,
    /// `[N, 1]` probabilities, targets `[N, 1]` in {0, 1}.
    BinaryProbability,
    /// Real-valued outputs, targets of the same shape.
    Regression,
}

impl OutputKind {
    /// The metrics measured for outputs of this kind (the keys of
    /// [`MetricAccumulator::finish`]; `r2` only when the targets vary).
    pub fn metric_names(self) -> &'static [&'static str] {
        match self {
            OutputKind::Regression => &["loss", "mae", "rmse", "r2"],
            _ => &[
                "loss",
                "accuracy",
                "balanced_accuracy",
                "precision",
                "recall",
                "f1",
                "log_loss",
            ],
        }
    }
}

/// The metrics of per-step classes (logits `[N, T, C]` against `[N, T]`, a character model):
/// the keys of [`MetricAccumulator::finish`] for them.
pub const PER_STEP_METRICS: &[&str] = &["loss", "accuracy", "log_loss", "bits_per_char"];

/// Whether a larger value of the metric `name` is better (scores), smaller (losses and
/// errors), or `None` for a name no output kind measures.
pub fn higher_is_better(name: &str) -> Option<bool> {
    match name {
        "accuracy" | "balanced_accuracy" | "precision" | "recall" | "f1" | "r2" => Some(true),
        "loss" | "log_loss" | "bits_per_char" | "mae" | "rmse" => Some(false),
        _ => None,
    }
}

/// Running sums from which the metrics of a pass are computed (batch by batch, without keeping
/// the outputs).
#[derive(Debug, Clone, Default)]
pub struct MetricAccumulator {
    rows: usize,
    loss_sum: f64,
    /// Confusion counts `[true][predicted]` (classification).
    confusion: BTreeMap<(i64, i64), usize>,
    log_loss_sum: f64,
    /// The targets had a class per step (a sequence of predictions per row).
    per_step: bool,
    abs_err: f64,
    sq_err: f64,
    target_sum: f64,
    target_sq: f64,
    values: usize,
}

impl MetricAccumulator {
    /// Adds one batch: its mean loss, outputs and targets.
    pub fn add(
        &mut self,
        kind: OutputKind,
        loss: f64,
        output: &Tensor,
        target: &Tensor,
    ) -> Result<()> {
        let n = output.dims().first().copied().unwrap_or(0);
        // Real-valued outputs and targets, one per output (binary and regression metrics).
        let values = |what: &str| -> Result<(Vec<f64>, Vec<f64>)> {
            let t = target.to_dtype(DType::F64)?.to_vec::<f64>()?;
            if t.len() != output.elem_count() {
                return Err(Error::Invalid(format!(
                    "{what} metrics need one target per output, got {} and {}",
                    output.shape(),
                    target.shape()
                )));
            }
            Ok((output.to_vec_f64(), t))
        };
        match kind {
            OutputKind::MultiClass => {
                let t = target.to_vec::<i64>().map_err(|_| {
                    Error::Invalid("multi-class metrics need i64 class targets".into())
                })?;
                let dims = output.dims();
                let c = dims.last().copied().unwrap_or(1);
                if output.rank() < 2 || target.dims() != &dims[..dims.len() - 1] {
                    return Err(Error::Invalid(format!(
                        "multi-class metrics need [N, C] outputs and N targets (or [N, T, C] \
                         and [N, T]), got {} and {}",
                        output.shape(),
                        target.shape()
                    )));
                }
                if c == 0 {
                    return Err(Error::Invalid(format!(
                        "multi-class metrics need at least one class, got outputs {}",
                        output.shape()
                    )));
                }
                if let Some(bad) = t.iter().find(|&&k| k < 0 || k as usize >= c) {
                    return Err(Error::Invalid(format!(
                        "class target {bad} is out of range for {c} outputs"
                    )));
                }
                self.per_step |= output.rank() > 2;
                // Per row: the log-loss `log Σ_k e^(z_k) − z_target` as the cross-entropy op
                // computes it (rows in parallel, vectorized), and the prediction, the row's
                // argmax (the first of ties).
                let rows = t.len();
                let logits = output.reshape([rows, c])?;
                let (log_losses, predicted) = with_no_grad(|| -> Result<_> {
                    let targets = target.reshape([rows])?;
                    let log_losses = logits
                        .cross_entropy(&targets, Reduction::None)?
                        .to_vec_f64();
                    Ok((log_losses, logits.argmax(1, false)?.to_vec::<i64>()?))
                })?;
                // In row order: the sum does not depend on the number of threads.
                self.log_loss_sum += log_losses.iter().sum::<f64>();
                for (&truth, &guess) in t.iter().zip(&predicted) {
                    *self.confusion.entry((truth, guess)).or_default() += 1;
                }
            }
            OutputKind::BinaryLogit | OutputKind::BinaryProbability => {
                let (out, t) = values("binary")?;
                for (&z, &y) in out.iter().zip(&t) {
                    let p = if kind == OutputKind::BinaryLogit {
                        1.0 / (1.0 + (-z).exp())
                    } else {
                        z
                    };
                    let label = i64::from(y >= 0.5);
                    *self
                        .confusion
                        .entry((label, i64::from(p >= 0.5)))
                        .or_default() += 1;
                    let p = p.clamp(1e-15, 1.0 - 1e-15);
                    self.log_loss_sum -= y * p.ln() + (1.0 - y) * (1.0 - p).ln();
                }
            }
            OutputKind::Regression => {
                let (out, t) = values("regression")?;
                for (&p, &y) in out.iter().zip(&t) {
                    self.abs_err += (p - y).abs();
                    self.sq_err += (p - y) * (p - y);
                    self.target_sum += y;
                    self.target_sq += y * y;
                    self.values += 1;
                }
            }
        }
        // Counted only once the batch was accepted.
        self.rows += n;
        self.loss_sum += loss * n as f64;
        Ok(())
    }

    /// The metrics so far, by name (`loss`, `accuracy`, `precision`, `recall`, `f1`,
    /// `log_loss`, `bits_per_char`, `mae`, `rmse`, `r2`).
    pub fn finish(&self, kind: OutputKind) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        if self.rows == 0 {
            return m;
        }
        m.insert("loss".into(), self.loss_sum / self.rows as f64);
        match kind {
            OutputKind::Regression => {
                let n = self.values.max(1) as f64;
                m.insert("mae".into(), self.abs_err / n);
                m.insert("rmse".into(), (self.sq_err / n).sqrt());
                let ss_tot = self.target_sq - self.target_sum * self.target_sum / n;
                if ss_tot > 0.0 {
                    m.insert("r2".into(), 1.0 - self.sq_err / ss_tot);
                }
            }
            _ => {
                let total: usize = self.confusion.values().sum();
                let correct: usize = self
                    .confusion
                    .iter()
                    .filter(|((t, p), _)| t == p)
                    .map(|(_, c)| c)
                    .sum();
                m.insert("accuracy".into(), correct as f64 / total.max(1) as f64);
                let log_loss = self.log_loss_sum / total.max(1) as f64;
                m.insert("log_loss".into(), log_loss);
                if self.per_step {
                    // Next-step prediction: the cost of coding each step, in bits. Precision
                    // and recall averaged over a vocabulary say little there.
                    m.insert("bits_per_char".into(), log_loss / std::f64::consts::LN_2);
                    return m;
                }
                m.insert("balanced_accuracy".into(), self.balanced_accuracy());
                let (p, r, f) = self.macro_prf(kind);
                m.insert("precision".into(), p);
                m.insert("recall".into(), r);
                m.insert("f1".into(), f);
            }
        }
        m
    }

    /// Precision, recall and F1: of the positive class for binary outputs, macro-averaged over
    /// the classes present (in targets or predictions) otherwise.
    fn macro_prf(&self, kind: OutputKind) -> (f64, f64, f64) {
        let count = |pred: Option<i64>, truth: Option<i64>| -> f64 {
            self.confusion
                .iter()
                .filter(|((t, p), _)| pred.is_none_or(|x| *p == x) && truth.is_none_or(|x| *t == x))
                .map(|(_, c)| *c as f64)
                .sum()
        };
        let prf = |c: i64| {
            let tp = count(Some(c), Some(c));
            let predicted = count(Some(c), None);
            let actual = count(None, Some(c));
            let p = if predicted > 0.0 { tp / predicted } else { 0.0 };
            let r = if actual > 0.0 { tp / actual } else { 0.0 };
            let f = if p + r > 0.0 {
                2.0 * p * r / (p + r)
            } else {
                0.0
            };
            (p, r, f)
        };
        if kind != OutputKind::MultiClass {
            return prf(1);
        }
        let classes: std::collections::BTreeSet<i64> =
            self.confusion.keys().flat_map(|(t, p)| [*t, *p]).collect();
        let k = classes.len().max(1) as f64;
        let (mut p, mut r, mut f) = (0.0, 0.0, 0.0);
        for c in classes {
            let (a, b, d) = prf(c);
            p += a;
            r += b;
            f += d;
        }
        (p / k, r / k, f / k)
    }

    /// The mean over the true classes of each one's recall, `(1/K) Σ_k TP_k / n_k`
    /// (scikit-learn's `balanced_accuracy_score`): what accuracy would be if every class had as
    /// many examples. A model that predicts one class for everything scores `1/K` however
    /// imbalanced the data, where its accuracy is the majority class's share.
    fn balanced_accuracy(&self) -> f64 {
        let mut per_class: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
        for (&(truth, guess), &count) in &self.confusion {
            let (hit, all) = per_class.entry(truth).or_default();
            *all += count;
            if truth == guess {
                *hit += count;
            }
        }
        let k = per_class.len().max(1) as f64;
        per_class
            .values()
            .map(|&(hit, all)| hit as f64 / all as f64)
            .sum::<f64>()
            / k
    }

    /// The confusion counts `(true, predicted) -> count` (classification).
    pub fn confusion(&self) -> &BTreeMap<(i64, i64), usize> {
        &self.confusion
    }
}

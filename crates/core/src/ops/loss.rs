//! Losses. Cross-entropy is fused with its softmax (gradient `p − y`, log-sum-exp forward);
//! binary cross-entropy with logits is computed without overflow for any logit.

use super::elementwise::{BinaryFn, c};
use crate::autograd::{Backward, InputGrads};
use crate::cpu::reduce::{exp_into, for_row_chunks};
use crate::dtype::{Element, Float};
use crate::tensor::float_dispatch;
use crate::{DType, Error, Result, Tensor};
use smallvec::smallvec;

/// How per-element (or per-sample) losses are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// The average (the default, as in PyTorch).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// No reduction: one loss per element or sample.
    None,
}

impl Reduction {
    /// Parses `"mean"`, `"sum"` or `"none"`.
    pub fn parse(s: &str) -> Result<Reduction> {
        match s {
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            "none" => Ok(Reduction::None),
            other => Err(Error::invalid(
                "reduction",
                format!("unknown reduction {other:?} (expected mean, sum or none)"),
            )),
        }
    }

    /// Reduces per-element losses `t` to their mean or sum, or leaves them.
    pub fn apply(self, t: Tensor) -> Result<Tensor> {
        match self {
            Reduction::Mean => t.mean_all(),
            Reduction::Sum => t.sum_all(),
            Reduction::None => Ok(t),
        }
    }
}

impl Tensor {
    fn same_shape(&self, op: &'static str, target: &Tensor) -> Result<()> {
        self.same_dtype(op, target)?;
        if self.shape() != target.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().clone().into(),
                rhs: target.shape().clone().into(),
                reason: "input and target must have the same shape".into(),
            });
        }
        Ok(())
    }

    /// Mean squared error (L2 loss): `reduce((x − y)²)`.
    pub fn mse_loss(&self, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
        self.same_shape("mse_loss", target)?;
        reduction.apply(self.sub(target)?.square()?)
    }

    /// Mean absolute error (L1 loss): `reduce(|x − y|)` (subgradient 0 at 0, as PyTorch).
    pub fn l1_loss(&self, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
        self.same_shape("l1_loss", target)?;
        reduction.apply(self.sub(target)?.abs()?)
    }

    /// Huber loss (PyTorch's `HuberLoss(delta)`): `½ d²` for `|d| < δ`, `δ (|d| − ½ δ)` beyond,
    /// with `d = x − y`: quadratic near the target, linear (robust to outliers) far from it.
    pub fn huber_loss(&self, target: &Tensor, delta: f64, reduction: Reduction) -> Result<Tensor> {
        if !(delta.is_finite() && delta > 0.0) {
            return Err(Error::invalid(
                "huber_loss",
                format!("delta must be finite and > 0, got {delta}"),
            ));
        }
        self.same_shape("huber_loss", target)?;
        let d = self.sub(target)?;
        let abs = d.abs()?;
        let quadratic = d.square()?.mul_scalar(0.5)?;
        let linear = abs.add_scalar(-0.5 * delta)?.mul_scalar(delta)?;
        let inside = abs.lt(&Tensor::scalar_of(delta, d.dtype()))?;
        reduction.apply(Tensor::where_cond(&inside, &quadratic, &linear)?)
    }

    /// Binary cross-entropy on logits `x` against targets `t` in [0, 1]:
    /// `max(x, 0) − x t + log(1 + e^−|x|)`, exact and finite for any `x`. ∂/∂x = σ(x) − t.
    pub fn binary_cross_entropy_with_logits(
        &self,
        target: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        self.same_shape("binary_cross_entropy_with_logits", target)?;
        reduction.apply(self.binary_fn(target, BceWithLogits)?)
    }

    /// Binary cross-entropy on probabilities `p` against targets `t`:
    /// `−(t log p + (1 − t) log(1 − p))`, with each log clamped at −100 (as PyTorch), so that
    /// p = 0 or 1 gives a large finite loss, not inf. Prefer the logits form for training.
    pub fn binary_cross_entropy(&self, target: &Tensor, reduction: Reduction) -> Result<Tensor> {
        self.same_shape("binary_cross_entropy", target)?;
        reduction.apply(self.binary_fn(target, Bce)?)
    }

    /// Cross-entropy of `[N, C]` logits against `[N]` i64 class indices:
    /// `−log softmax(x)[n, t_n]`, fused with the softmax (gradient `(softmax − onehot) · g`).
    pub fn cross_entropy(&self, targets: &Tensor, reduction: Reduction) -> Result<Tensor> {
        let op = "cross_entropy";
        let dtype = self.expect_float(op)?;
        let [n, classes] = *self.dims() else {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                "logits must be 2-D [batch, classes]",
            ));
        };
        if targets.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op,
                got: targets.dtype(),
                expected: "i64 class indices (use cross_entropy_soft for probabilities)",
            });
        }
        if targets.dims() != [n] {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape().clone().into(),
                rhs: targets.shape().clone().into(),
                reason: format!("targets must have shape [{n}], one class index per row"),
            });
        }
        let t = crate::ops::shape::check_indices(op, targets, classes, 1)?;
        let logp = self.detach().log_softmax(1)?;
        let per_sample = float_dispatch!(dtype, op, |T| {
            let lp = logp.float_data::<T>();
            let v: Vec<T> = t
                .iter()
                .enumerate()
                .map(|(i, &k)| -lp[i * classes + k])
                .collect();
            reduce_values(v, reduction)
        });
        Ok(Tensor::record(
            std::sync::Arc::new(per_sample.0),
            per_sample.1,
            &[self],
            CrossEntropyBackward {
                logp,
                targets: Target::Index(t),
                reduction,
            },
        ))
    }

    /// Cross-entropy of `[N, C]` logits against `[N, C]` target probabilities (soft labels):
    /// `−Σ_c p_c log softmax(x)_c`. Gradients flow to the logits (`softmax · Σp − p`) and, when
    /// they require one, to the targets (`−log softmax(x)`).
    pub fn cross_entropy_soft(&self, probs: &Tensor, reduction: Reduction) -> Result<Tensor> {
        let op = "cross_entropy_soft";
        let dtype = self.expect_float(op)?;
        if self.rank() != 2 {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                "logits must be 2-D [batch, classes]",
            ));
        }
        self.same_shape(op, probs)?;
        let classes = self.dims()[1];
        let logp = self.detach().log_softmax(1)?;
        let per_sample = float_dispatch!(dtype, op, |T| {
            let lp = logp.float_data::<T>();
            let p = probs.float_data::<T>();
            let v: Vec<T> = lp
                .chunks(classes.max(1))
                .zip(p.chunks(classes.max(1)))
                .map(|(l, p)| -l.iter().zip(p).map(|(&a, &b)| a * b).sum::<T>())
                .collect();
            reduce_values(v, reduction)
        });
        Ok(Tensor::record(
            std::sync::Arc::new(per_sample.0),
            per_sample.1,
            &[self, probs],
            CrossEntropyBackward {
                logp,
                targets: Target::Probs,
                reduction,
            },
        ))
    }
}

/// Combines per-sample values into the reduced storage and its shape.
fn reduce_values<T: Float + Element>(
    v: Vec<T>,
    reduction: Reduction,
) -> (crate::storage::Storage, crate::layout::Layout) {
    use crate::layout::Layout;
    let n = v.len();
    match reduction {
        Reduction::None => (T::into_storage(v), Layout::contiguous([n].into())),
        Reduction::Sum => (
            T::into_storage(vec![v.into_iter().sum()]),
            Layout::contiguous(().into()),
        ),
        Reduction::Mean => {
            let s: T = v.into_iter().sum();
            (
                T::into_storage(vec![s / T::from_f64(n as f64)]),
                Layout::contiguous(().into()),
            )
        }
    }
}

enum Target {
    Index(Vec<usize>),
    Probs,
}

struct CrossEntropyBackward {
    logp: Tensor,
    targets: Target,
    reduction: Reduction,
}

impl Backward for CrossEntropyBackward {
    fn name(&self) -> &'static str {
        match self.targets {
            Target::Index(_) => "cross_entropy",
            Target::Probs => "cross_entropy_soft",
        }
    }
    fn backward(&self, inputs: &[Tensor], _y: &Tensor, g: &Tensor) -> Result<InputGrads> {
        let [n, classes] = *self.logp.dims() else {
            unreachable!("checked in forward")
        };
        float_dispatch!(g.dtype(), self.name(), |T| {
            let lp = self.logp.float_data::<T>();
            let gd = g.float_data::<T>();
            // The upstream gradient of sample i, with the mean's 1/N folded in.
            let scale = |i: usize| match self.reduction {
                Reduction::None => gd[i],
                Reduction::Sum => gd[0],
                Reduction::Mean => gd[0] / T::from_f64(n as f64),
            };
            // softmax = exp(log softmax), rows in parallel with a vectorized exponential.
            let mut dx = vec![T::zero(); n * classes];
            let mut dp = Vec::new();
            match &self.targets {
                Target::Index(t) => {
                    // (softmax − onehot) · g
                    for_row_chunks([&lp[..]], &mut dx, classes, |first, [lp], dx| {
                        exp_into(lp, dx);
                        for (r, row) in dx.chunks_exact_mut(classes).enumerate() {
                            let i = first + r;
                            row[t[i]] -= T::one();
                            let s = scale(i);
                            row.iter_mut().for_each(|v| *v *= s);
                        }
                    });
                }
                Target::Probs => {
                    // (softmax · Σp − p) · g, and −log softmax · g for the targets.
                    let p = inputs[1].float_data::<T>();
                    for_row_chunks([&lp[..], &p[..]], &mut dx, classes, |first, [lp, p], dx| {
                        exp_into(lp, dx);
                        for (r, (row, p)) in dx
                            .chunks_exact_mut(classes)
                            .zip(p.chunks_exact(classes))
                            .enumerate()
                        {
                            let s = scale(first + r);
                            let mass: T = p.iter().copied().sum();
                            for (v, &p) in row.iter_mut().zip(p) {
                                *v = (*v * mass - p) * s;
                            }
                        }
                    });
                    if inputs[1].requires_grad() {
                        dp = lp
                            .iter()
                            .enumerate()
                            .map(|(k, &l)| -l * scale(k / classes.max(1)))
                            .collect();
                    }
                }
            }
            let mut grads: InputGrads =
                smallvec![Some(Tensor::from_parts(dx, inputs[0].shape().clone()))];
            if inputs.len() > 1 {
                grads.push(
                    (!dp.is_empty()).then(|| Tensor::from_parts(dp, inputs[1].shape().clone())),
                );
            }
            Ok(grads)
        })
    }
}

#[derive(Clone, Copy)]
struct BceWithLogits;
impl BinaryFn for BceWithLogits {
    const NAME: &'static str = "binary_cross_entropy_with_logits";
    fn f<T: Float>(&self, x: T, t: T) -> T {
        x.max(T::zero()) - x * t + (-x.abs()).exp().ln_1p()
    }
    fn da<T: Float>(&self, x: T, t: T, _: T) -> T {
        let s = if x >= T::zero() {
            T::one() / (T::one() + (-x).exp())
        } else {
            let e = x.exp();
            e / (T::one() + e)
        };
        s - t
    }
    fn db<T: Float>(&self, x: T, _: T, _: T) -> T {
        -x
    }
}

#[derive(Clone, Copy)]
struct Bce;
impl Bce {
    fn clamped_log<T: Float>(v: T) -> T {
        v.ln().max(c(-100.0))
    }
}
impl BinaryFn for Bce {
    const NAME: &'static str = "binary_cross_entropy";
    fn f<T: Float>(&self, p: T, t: T) -> T {
        -(t * Self::clamped_log(p) + (T::one() - t) * Self::clamped_log(T::one() - p))
    }
    fn da<T: Float>(&self, p: T, t: T, _: T) -> T {
        // (p − t) / (p (1 − p)), the denominator kept away from 0 (PyTorch uses eps 1e-12).
        (p - t) / (p * (T::one() - p)).max(c(1e-12))
    }
    fn db<T: Float>(&self, p: T, _: T, _: T) -> T {
        Self::clamped_log(T::one() - p) - Self::clamped_log(p)
    }
}

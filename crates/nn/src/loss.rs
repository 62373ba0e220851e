//! Losses. Each takes the model's output and the target and returns a scalar (or per-element
//! values with [`Reduction::None`]); gradients come from autodiff. Penalties on parameters (L1,
//! L2) and on hidden activations (L1 and KL sparsity, the losses at hidden nodes of sparse
//! autoencoders) are plain tensors to add to a loss.

use nabla_core::{DType, Error, Reduction, Result, Tensor, Var};

/// A loss function, as chosen in code or in a config file.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// Mean squared error `(ŷ − y)²` (the L2 loss).
    Mse,
    /// Mean absolute error `|ŷ − y|` (the L1 loss; subgradient 0 at 0, as PyTorch).
    L1,
    /// Huber: `½ d²` for `|d| < δ`, `δ (|d| − ½ δ)` beyond (PyTorch's `HuberLoss(delta)`):
    /// quadratic near the target, linear (robust to outliers) far from it.
    Huber { delta: f64 },
    /// Softmax cross-entropy on logits `[N, C]` against i64 class indices `[N]` (or class
    /// probabilities `[N, C]`), with optional label smoothing ε and per-class weights. Logits
    /// `[N, T, C]` (one prediction per step, classes last) take targets `[N, T]`; the mean is
    /// over all `N·T` predictions.
    CrossEntropy(CrossEntropy),
    /// Binary cross-entropy on probabilities in `[0, 1]` (after a sigmoid), with an optional
    /// weight `p` on the positive term: `−[p · y · log x + (1 − y) · log(1 − x)]`.
    BinaryCrossEntropy { pos_weight: Option<f64> },
    /// Binary cross-entropy on logits (the sigmoid is fused, stable for any logit), with an
    /// optional weight on the positive term: PyTorch's `BCEWithLogitsLoss(pos_weight)`.
    BinaryCrossEntropyWithLogits { pos_weight: Option<f64> },
}

/// Options of the softmax cross-entropy.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrossEntropy {
    /// ε in `[0, 1)`: the target becomes `(1 − ε) · onehot + ε / C` (Szegedy et al., 2016).
    pub label_smoothing: f64,
    /// One weight per class; the mean is then `Σ_i loss_i / Σ_i w_{y_i}` (PyTorch's convention).
    pub class_weights: Option<Vec<f64>>,
}

impl Loss {
    /// The loss of `output` against `target`, averaged over the batch.
    pub fn compute(&self, output: &Tensor, target: &Tensor) -> Result<Tensor> {
        self.compute_with(output, target, Reduction::Mean)
    }

    /// The loss with the given reduction.
    pub fn compute_with(
        &self,
        output: &Tensor,
        target: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        match self {
            Loss::Mse => output.mse_loss(target, reduction),
            Loss::L1 => output.l1_loss(target, reduction),
            Loss::Huber { delta } => output.huber_loss(target, *delta, reduction),
            Loss::CrossEntropy(options) => options.compute(output, target, reduction),
            Loss::BinaryCrossEntropy { pos_weight } => weighted_binary(
                "binary_cross_entropy",
                |t| output.binary_cross_entropy(t, Reduction::None),
                target,
                *pos_weight,
                reduction,
            ),
            Loss::BinaryCrossEntropyWithLogits { pos_weight } => weighted_binary(
                "binary_cross_entropy_with_logits",
                |t| output.binary_cross_entropy_with_logits(t, Reduction::None),
                target,
                *pos_weight,
                reduction,
            ),
        }
    }

    /// The name used in configs and reports (`"cross_entropy"`).
    pub fn name(&self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::L1 => "l1",
            Loss::Huber { .. } => "huber",
            Loss::CrossEntropy(_) => "cross_entropy",
            Loss::BinaryCrossEntropy { .. } => "binary_cross_entropy",
            Loss::BinaryCrossEntropyWithLogits { .. } => "binary_cross_entropy_with_logits",
        }
    }
}

/// Binary cross-entropy with the positive term weighted by `p` (PyTorch's `pos_weight`):
/// `ℓ = −[p · y · log σ + (1 − y) · log(1 − σ)]`, which is the unweighted loss plus
/// `(p − 1) · y · (−log σ)`, and `−log σ` is the unweighted loss against a target of 1. So
/// `ℓ = base(y) + (p − 1) · y ⊙ base(1)`, exact for soft targets too and as stable as `base`.
/// The mean is over the elements, as PyTorch's. `p = n_negative / n_positive` makes the
/// positives of imbalanced data weigh as much as the negatives.
fn weighted_binary(
    op: &'static str,
    base: impl Fn(&Tensor) -> Result<Tensor>,
    target: &Tensor,
    pos_weight: Option<f64>,
    reduction: Reduction,
) -> Result<Tensor> {
    let unweighted = base(target)?;
    let per_element = match pos_weight {
        None => unweighted,
        Some(p) if !(p.is_finite() && p >= 0.0) => {
            return Err(Error::invalid(
                op,
                format!("pos_weight must be finite and >= 0, got {p}"),
            ));
        }
        Some(p) => {
            let positive = base(&target.ones_like())?;
            unweighted.add(&target.mul(&positive)?.mul_scalar(p - 1.0)?)?
        }
    };
    reduction.apply(per_element)
}

impl CrossEntropy {
    /// The loss of `[N, C]` logits against `[N]` class indices or `[N, C]` probabilities, or of
    /// `[N, ..., C]` logits against `[N, ...]` indices (or `[N, ..., C]` probabilities): each
    /// position is one prediction, as if the leading dims were one batch dim (PyTorch puts
    /// the classes in dim 1 instead; here they stay last, where a sequence model's `Linear`
    /// puts them). With [`Reduction::None`] the per-prediction losses keep the leading dims.
    pub fn compute(
        &self,
        logits: &Tensor,
        target: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        if logits.rank() > 2 {
            return self.compute_per_position(logits, target, reduction);
        }
        let op = "cross_entropy";
        let eps = self.label_smoothing;
        if !(0.0..1.0).contains(&eps) {
            return Err(Error::invalid(
                op,
                format!("label_smoothing must be in [0, 1), got {eps}"),
            ));
        }
        if target.dtype() != DType::I64 {
            if eps != 0.0 || self.class_weights.is_some() {
                return Err(Error::invalid(
                    op,
                    "label smoothing and class weights need class-index targets (i64), \
                     not probabilities",
                ));
            }
            return logits.cross_entropy_soft(target, reduction);
        }
        if eps == 0.0 && self.class_weights.is_none() {
            return logits.cross_entropy(target, reduction);
        }
        // General form: loss_i = −Σ_c q_ic log p_ic with the constant target weights
        // q_ic = (1 − ε) w_{y_i} [c = y_i] + (ε / C) w_c, and the mean divides by Σ_i w_{y_i}.
        if logits.rank() != 2 {
            return Err(Error::bad_shape(
                op,
                logits.shape(),
                "logits must be 2-D [batch, classes]",
            ));
        }
        let (n, classes) = (logits.dims()[0], logits.dims()[1]);
        let weights = match &self.class_weights {
            Some(w) if w.len() != classes => {
                return Err(Error::invalid(
                    op,
                    format!("{} class weights given for {classes} classes", w.len()),
                ));
            }
            Some(w) if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) => {
                return Err(Error::invalid(op, "class weights must be finite and >= 0"));
            }
            Some(w) => w.clone(),
            None => vec![1.0; classes],
        };
        if target.dims() != [n] {
            return Err(Error::ShapeMismatch {
                op,
                lhs: logits.shape().clone().into(),
                rhs: target.shape().clone().into(),
                reason: format!("targets must have shape [{n}], one class index per row"),
            });
        }
        let labels = target.to_vec::<i64>()?;
        let mut q = vec![0.0; n * classes];
        let mut total_weight = 0.0;
        for (i, &y) in labels.iter().enumerate() {
            if y < 0 || y as usize >= classes {
                return Err(Error::IndexOutOfRange {
                    op,
                    index: y,
                    dim: 1,
                    size: classes,
                });
            }
            let y = y as usize;
            total_weight += weights[y];
            for c in 0..classes {
                q[i * classes + c] = eps / classes as f64 * weights[c];
            }
            q[i * classes + y] += (1.0 - eps) * weights[y];
        }
        let q = Tensor::from_vec(q, [n, classes])?.to_dtype(logits.dtype())?;
        match reduction {
            Reduction::Mean => logits
                .cross_entropy_soft(&q, Reduction::Sum)?
                .mul_scalar(1.0 / total_weight),
            other => logits.cross_entropy_soft(&q, other),
        }
    }
}

impl CrossEntropy {
    /// [`CrossEntropy::compute`] for logits with more than two dims: flattened to one
    /// prediction per row.
    fn compute_per_position(
        &self,
        logits: &Tensor,
        target: &Tensor,
        reduction: Reduction,
    ) -> Result<Tensor> {
        let dims = logits.dims();
        let (leading, classes) = (&dims[..dims.len() - 1], dims[dims.len() - 1]);
        let rows: usize = leading.iter().product();
        let target = if target.dtype() == DType::I64 {
            if target.dims() != leading {
                return Err(Error::ShapeMismatch {
                    op: "cross_entropy",
                    lhs: logits.shape().clone().into(),
                    rhs: target.shape().clone().into(),
                    reason: format!(
                        "targets must have shape {leading:?}, one class index per position \
                         (the logits' dims without the last, the classes)"
                    ),
                });
            }
            target.reshape([rows])?
        } else {
            if target.dims() != dims {
                return Err(Error::ShapeMismatch {
                    op: "cross_entropy",
                    lhs: logits.shape().clone().into(),
                    rhs: target.shape().clone().into(),
                    reason: "class probabilities must have the logits' shape".into(),
                });
            }
            target.reshape([rows, classes])?
        };
        let loss = self.compute(&logits.reshape([rows, classes])?, &target, reduction)?;
        match reduction {
            Reduction::None => loss.reshape(leading.to_vec()),
            _ => Ok(loss),
        }
    }
}

/// L2 weight penalty `λ/2 · Σ_w ‖w‖²` (its gradient is `λ w`: weight decay).
pub fn l2_penalty(params: &[Var], lambda: f64) -> Result<Tensor> {
    penalty(params, lambda * 0.5, |w| w.square())
}

/// L1 weight penalty `λ · Σ_w |w|` (drives weights to exactly zero; subgradient 0 at 0).
pub fn l1_penalty(params: &[Var], lambda: f64) -> Result<Tensor> {
    penalty(params, lambda, |w| w.abs())
}

fn penalty(params: &[Var], scale: f64, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let Some(first) = params.first() else {
        return Ok(Tensor::scalar(0.0f32));
    };
    let mut total = Tensor::scalar_of(0.0, first.dtype());
    for p in params {
        total = total.add(&f(&p.as_tensor())?.sum_all()?)?;
    }
    total.mul_scalar(scale)
}

/// L1 activity penalty on hidden activations `h: [N, ...]`: `λ · Σ|h| / N`, which pushes the code
/// of a sparse autoencoder towards few active units (a loss on a hidden node).
pub fn activity_l1(h: &Tensor, lambda: f64) -> Result<Tensor> {
    let n = batch_size("activity_l1", h)?;
    h.abs()?.sum_all()?.mul_scalar(lambda / n as f64)
}

/// KL sparsity penalty (Ng's sparse autoencoder) on activations `h: [N, units]` in `(0, 1)`:
/// `β · Σ_j KL(ρ ‖ ρ̂_j)`, with `ρ̂_j` the mean activation of unit j over the batch and
/// `KL(ρ‖ρ̂) = ρ log(ρ/ρ̂) + (1 − ρ) log((1 − ρ)/(1 − ρ̂))`.
pub fn kl_sparsity(h: &Tensor, rho: f64, beta: f64) -> Result<Tensor> {
    if !(rho > 0.0 && rho < 1.0) {
        return Err(Error::invalid(
            "kl_sparsity",
            format!("the target activation rho must be in (0, 1), got {rho}"),
        ));
    }
    batch_size("kl_sparsity", h)?;
    // ρ̂ is kept inside (0, 1) so that the logs stay finite for dead or saturated units.
    let rho_hat = h.mean_dims(&[0], false)?.clamp(1e-6, 1.0 - 1e-6)?;
    let one = Tensor::scalar_of(1.0, h.dtype());
    let term1 = rho_hat
        .log()?
        .neg()?
        .add_scalar(rho.ln())?
        .mul_scalar(rho)?;
    let term2 = one
        .sub(&rho_hat)?
        .log()?
        .neg()?
        .add_scalar((1.0 - rho).ln())?
        .mul_scalar(1.0 - rho)?;
    term1.add(&term2)?.sum_all()?.mul_scalar(beta)
}

/// A sparsity penalty on one hidden layer's output, named by its path (`"2"`, `"1.block.0"`, as
/// [`crate::Ctx::tap`] names it): the loss at a hidden node of a sparse autoencoder. The forward
/// pass must record taps ([`crate::Ctx::with_taps`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPenalty {
    pub layer: String,
    pub kind: Sparsity,
}

/// Which sparsity penalty: see [`activity_l1`] and [`kl_sparsity`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sparsity {
    /// `λ · Σ|h| / N`.
    L1 { weight: f64 },
    /// `β · Σ_j KL(ρ ‖ ρ̂_j)`, for activations in (0, 1).
    Kl { target: f64, weight: f64 },
}

impl ActivityPenalty {
    /// The penalty on the layer's output recorded in `ctx`.
    pub fn compute(&self, ctx: &crate::Ctx) -> Result<Tensor> {
        let h = ctx.tap(&self.layer).ok_or_else(|| {
            Error::invalid(
                "ActivityPenalty",
                format!(
                    "no layer output named {:?} was recorded (taps are off, or no such layer)",
                    self.layer
                ),
            )
        })?;
        match self.kind {
            Sparsity::L1 { weight } => activity_l1(h, weight),
            Sparsity::Kl { target, weight } => kl_sparsity(h, target, weight),
        }
    }
}

fn batch_size(op: &'static str, h: &Tensor) -> Result<usize> {
    match h.dims().first() {
        Some(&n) if n > 0 => Ok(n),
        _ => Err(Error::bad_shape(
            op,
            h.shape(),
            "needs a non-empty batch dim",
        )),
    }
}

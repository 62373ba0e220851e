//! Normalization layers. BatchNorm (Ioffe & Szegedy, 2015) normalizes each feature over the batch
//! and keeps running statistics for evaluation; LayerNorm (Ba et al., 2016) normalizes each sample
//! over its features and behaves the same in training and evaluation.

use crate::module::{Ctx, Module, VarKind};
use nabla_core::{DType, Error, Result, Tensor, Var, with_no_grad};

/// Batch normalization over `[N, C]` or `[N, C, L]` inputs, per channel `C`:
/// `y = (x − μ) / √(σ² + ε) · γ + β`.
///
/// In training, μ and σ² (biased) come from the batch, and the running statistics move towards
/// the batch's: `running ← (1 − momentum) · running + momentum · batch`, with the *unbiased*
/// batch variance, as in PyTorch. In evaluation the running statistics are used. Parameters
/// `weight` (γ, ones) and `bias` (β, zeros); buffers `running_mean` (zeros) and `running_var`
/// (ones): PyTorch's names.
pub struct BatchNorm1d {
    weight: Var,
    bias: Var,
    running_mean: Var,
    running_var: Var,
    eps: f64,
    momentum: f64,
}

impl BatchNorm1d {
    /// Batch normalization of `num_features` channels with PyTorch's defaults (ε = 1e-5,
    /// momentum 0.1).
    pub fn new(num_features: usize, dtype: DType) -> Result<BatchNorm1d> {
        Self::with_options(num_features, 1e-5, 0.1, dtype)
    }

    /// Batch normalization with the given ε and momentum.
    pub fn with_options(
        num_features: usize,
        eps: f64,
        momentum: f64,
        dtype: DType,
    ) -> Result<BatchNorm1d> {
        if num_features == 0 {
            return Err(Error::invalid(
                "BatchNorm1d",
                "num_features must be positive",
            ));
        }
        if !(eps.is_finite() && eps >= 0.0 && (0.0..=1.0).contains(&momentum)) {
            return Err(Error::invalid(
                "BatchNorm1d",
                format!(
                    "needs eps >= 0 and momentum in [0, 1], got eps {eps}, momentum {momentum}"
                ),
            ));
        }
        let c = [num_features];
        Ok(BatchNorm1d {
            weight: Var::new(&Tensor::ones(c, dtype))?,
            bias: Var::new(&Tensor::zeros(c, dtype))?,
            running_mean: Var::new(&Tensor::zeros(c, dtype))?,
            running_var: Var::new(&Tensor::ones(c, dtype))?,
            eps,
            momentum,
        })
    }

    /// Number of channels.
    pub fn num_features(&self) -> usize {
        self.weight.elem_count()
    }

    /// The running mean (a buffer).
    pub fn running_mean(&self) -> &Var {
        &self.running_mean
    }

    /// The running (unbiased) variance (a buffer).
    pub fn running_var(&self) -> &Var {
        &self.running_var
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        if !(x.rank() == 2 || x.rank() == 3) || x.dims()[1] != self.num_features() {
            return Err(Error::bad_shape(
                "BatchNorm1d",
                x.shape(),
                format!(
                    "expected [batch, {c}] or [batch, {c}, length]",
                    c = self.num_features()
                ),
            ));
        }
        Ok(())
    }

    /// The running statistics move towards this batch's statistics.
    fn update_running_stats(&self, x: &Tensor, dims: &[isize]) -> Result<()> {
        with_no_grad(|| {
            let x = x.detach();
            let m = self.momentum;
            let mean = x.mean_dims(dims, false)?;
            let var = x.var_dims(dims, false, 1)?;
            let blend = |running: &Var, batch: &Tensor| -> Result<()> {
                let new = running
                    .as_tensor()
                    .mul_scalar(1.0 - m)?
                    .add(&batch.mul_scalar(m)?)?;
                running.set(&new)
            };
            blend(&self.running_mean, &mean)?;
            blend(&self.running_var, &var)
        })
    }
}

impl Module for BatchNorm1d {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.check_input(x)?;
        let dims: Vec<isize> = if x.rank() == 2 { vec![0] } else { vec![0, 2] };
        let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
        if ctx.is_training() {
            let per_channel = x.elem_count() / self.num_features();
            if per_channel < 2 {
                return Err(Error::bad_shape(
                    "BatchNorm1d",
                    x.shape(),
                    "training needs more than one value per channel (a batch of at least 2; \
                     use drop_last or a larger batch)",
                ));
            }
            self.update_running_stats(x, &dims)?;
            return x.batch_norm(Some(&w), Some(&b), self.eps);
        }
        let mut affine = vec![1usize; x.rank()];
        affine[1] = self.num_features();
        let mean = self.running_mean.as_tensor().reshape(affine.clone())?;
        let std = self
            .running_var
            .as_tensor()
            .add_scalar(self.eps)?
            .sqrt()?
            .reshape(affine.clone())?;
        x.sub(&mean)?
            .div(&std)?
            .mul(&w.reshape(affine.clone())?)?
            .add(&b.reshape(affine)?)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        f("weight", &self.weight, VarKind::Parameter);
        f("bias", &self.bias, VarKind::Parameter);
        f("running_mean", &self.running_mean, VarKind::Buffer);
        f("running_var", &self.running_var, VarKind::Buffer);
    }

    fn describe(&self) -> String {
        format!("BatchNorm1d({})", self.num_features())
    }
}

/// Layer normalization over the trailing dims `normalized_shape`:
/// `y = (x − μ) / √(σ² + ε) · γ + β` with μ, σ² (biased) per sample. Parameters `weight` (γ, ones)
/// and `bias` (β, zeros) of shape `normalized_shape`.
pub struct LayerNorm {
    normalized_shape: Vec<usize>,
    weight: Var,
    bias: Var,
    eps: f64,
}

impl LayerNorm {
    /// Layer normalization over trailing dims `normalized_shape` (ε = 1e-5, PyTorch's default).
    pub fn new(normalized_shape: &[usize], dtype: DType) -> Result<LayerNorm> {
        if normalized_shape.is_empty() || normalized_shape.contains(&0) {
            return Err(Error::invalid(
                "LayerNorm",
                format!(
                    "normalized_shape must be non-empty and positive, got {normalized_shape:?}"
                ),
            ));
        }
        Ok(LayerNorm {
            normalized_shape: normalized_shape.to_vec(),
            weight: Var::new(&Tensor::ones(normalized_shape.to_vec(), dtype))?,
            bias: Var::new(&Tensor::zeros(normalized_shape.to_vec(), dtype))?,
            eps: 1e-5,
        })
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        x.layer_norm(
            &self.normalized_shape,
            Some(&self.weight.as_tensor()),
            Some(&self.bias.as_tensor()),
            self.eps,
        )
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        f("weight", &self.weight, VarKind::Parameter);
        f("bias", &self.bias, VarKind::Parameter);
    }

    fn describe(&self) -> String {
        format!("LayerNorm({:?})", self.normalized_shape)
    }
}

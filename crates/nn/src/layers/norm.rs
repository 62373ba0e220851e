//! Normalization layers. BatchNorm (Ioffe & Szegedy, 2015) normalizes each channel over the batch
//! and keeps running statistics for evaluation; LayerNorm (Ba et al., 2016) normalizes each sample
//! over its features and behaves the same in training and evaluation.

use crate::module::{Ctx, Module, VarKind};
use nabla_core::{DType, Error, Result, Tensor, Var, with_no_grad};

/// Batch normalization per channel `C` of `[N, C, ...]` inputs:
/// `y = (x − μ) / √(σ² + ε) · γ + β`. [`BatchNorm1d`] and [`BatchNorm2d`] are this layer with
/// the input ranks PyTorch's classes of those names accept.
///
/// In training, μ and σ² (biased) come from the batch (over every dim but `C`), and the running
/// statistics move towards the batch's: `running ← (1 − m) · running + m · batch`, with the
/// *unbiased* batch variance, as in PyTorch. `m` is the momentum (0.1), or `1 / t` after `t`
/// batches for a cumulative average ([`BatchNorm::cumulative_average`], PyTorch's
/// `momentum=None`). In evaluation the running statistics are used.
///
/// Parameters `weight` (γ, ones) and `bias` (β, zeros); buffers `running_mean` (zeros),
/// `running_var` (ones) and `num_batches_tracked` (an i64 scalar counting training batches):
/// PyTorch's names, dtypes and shapes.
pub struct BatchNorm {
    weight: Var,
    bias: Var,
    running_mean: Var,
    running_var: Var,
    num_batches_tracked: Var,
    eps: f64,
    momentum: Option<f64>,
    variant: &'static Variant,
}

impl BatchNorm {
    fn build(
        variant: &'static Variant,
        num_features: usize,
        eps: f64,
        momentum: f64,
        dtype: DType,
    ) -> Result<BatchNorm> {
        let name = variant.name;
        if num_features == 0 {
            return Err(Error::invalid(name, "num_features must be positive"));
        }
        if !(eps.is_finite() && eps >= 0.0 && (0.0..=1.0).contains(&momentum)) {
            return Err(Error::invalid(
                name,
                format!(
                    "needs eps >= 0 and momentum in [0, 1], got eps {eps}, momentum {momentum}"
                ),
            ));
        }
        let c = [num_features];
        Ok(BatchNorm {
            weight: Var::new(&Tensor::ones(c, dtype))?,
            bias: Var::new(&Tensor::zeros(c, dtype))?,
            running_mean: Var::buffer(&Tensor::zeros(c, dtype)),
            running_var: Var::buffer(&Tensor::ones(c, dtype)),
            num_batches_tracked: Var::buffer(&Tensor::from_vec(vec![0i64], [])?),
            eps,
            momentum: Some(momentum),
            variant,
        })
    }

    /// Running statistics as the plain average over all training batches so far (PyTorch's
    /// `momentum=None`): the momentum becomes `1 / num_batches_tracked`.
    pub fn cumulative_average(mut self) -> BatchNorm {
        self.momentum = None;
        self
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

    /// How many training batches have updated the running statistics.
    pub fn num_batches_tracked(&self) -> i64 {
        self.num_batches_tracked
            .as_tensor()
            .contiguous_data::<i64>()
            .map_or(0, |d| d[0])
    }

    fn check_input(&self, x: &Tensor) -> Result<()> {
        let v = self.variant;
        if !v.ranks.contains(&x.rank()) || x.dims()[1] != self.num_features() {
            return Err(Error::bad_shape(
                v.name,
                x.shape(),
                format!(
                    "expected {}",
                    v.layout.replace("C", &self.num_features().to_string())
                ),
            ));
        }
        Ok(())
    }

    /// Counts the batch and moves the running statistics towards this batch's.
    fn update_running_stats(&self, x: &Tensor, dims: &[isize]) -> Result<()> {
        self.num_batches_tracked.update(|t: &mut [i64]| t[0] += 1)?;
        let m = self
            .momentum
            .unwrap_or_else(|| 1.0 / self.num_batches_tracked() as f64);
        with_no_grad(|| {
            let x = x.detach();
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

impl Module for BatchNorm {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        self.check_input(x)?;
        let dims: Vec<isize> = (0..x.rank() as isize).filter(|&d| d != 1).collect();
        let (w, b) = (self.weight.as_tensor(), self.bias.as_tensor());
        if ctx.is_training() {
            let per_channel = x.elem_count() / self.num_features();
            if per_channel < 2 {
                return Err(Error::bad_shape(
                    self.variant.name,
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
        f(
            "num_batches_tracked",
            &self.num_batches_tracked,
            VarKind::Buffer,
        );
    }

    fn describe(&self) -> String {
        format!("{}({})", self.variant.name, self.num_features())
    }
}

/// A named BatchNorm class: PyTorch's name, the input ranks it accepts, and what they look like
/// (for errors).
struct Variant {
    name: &'static str,
    ranks: &'static [usize],
    layout: &'static str,
}

/// `BatchNormXd::new` and `BatchNormXd::with_options` for one [`Variant`].
macro_rules! batch_norm_variant {
    ($(#[$doc:meta])* $ty:ident, $variant:expr) => {
        $(#[$doc])*
        pub struct $ty;

        impl $ty {
            /// Batch normalization of `num_features` channels with PyTorch's defaults
            /// (ε = 1e-5, momentum 0.1).
            #[allow(clippy::new_ret_no_self)]
            pub fn new(num_features: usize, dtype: DType) -> Result<BatchNorm> {
                Self::with_options(num_features, 1e-5, 0.1, dtype)
            }

            /// Batch normalization with the given ε and momentum.
            pub fn with_options(
                num_features: usize,
                eps: f64,
                momentum: f64,
                dtype: DType,
            ) -> Result<BatchNorm> {
                const VARIANT: Variant = $variant;
                BatchNorm::build(&VARIANT, num_features, eps, momentum, dtype)
            }
        }
    };
}

batch_norm_variant!(
    /// Batch normalization over `[N, C]` or `[N, C, L]` inputs (after a linear layer, or over
    /// the channels of a sequence), as PyTorch's `nn.BatchNorm1d`.
    BatchNorm1d,
    Variant {
        name: "BatchNorm1d",
        ranks: &[2, 3],
        layout: "[batch, C] or [batch, C, length]",
    }
);

batch_norm_variant!(
    /// Batch normalization over `[N, C, H, W]` inputs, per channel over the batch and every
    /// pixel (after a convolution), as PyTorch's `nn.BatchNorm2d`.
    BatchNorm2d,
    Variant {
        name: "BatchNorm2d",
        ranks: &[4],
        layout: "[batch, C, height, width]",
    }
);

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
    /// Over the last dim only: each step alone.
    fn runs_step_by_step(&self) -> bool {
        self.normalized_shape.len() == 1
    }
}

//! Input corruption for denoising autoencoders (Vincent et al., 2008): the model learns to
//! reconstruct the clean input from a corrupted copy. Both layers corrupt in training only and
//! are the identity in evaluation, like dropout, but unlike dropout they do not rescale.

use crate::module::{Ctx, Module};
use nabla_core::{Error, Result, Tensor};

/// Adds `N(0, std²)` noise to every element in training mode: `x̃ = x + ε`.
#[derive(Debug, Clone, Copy)]
pub struct GaussianNoise {
    std: f64,
}

impl GaussianNoise {
    /// Noise of standard deviation `std` (finite, ≥ 0).
    pub fn new(std: f64) -> Result<GaussianNoise> {
        if !(std.is_finite() && std >= 0.0) {
            return Err(Error::invalid(
                "GaussianNoise",
                format!("std must be finite and >= 0, got {std}"),
            ));
        }
        Ok(GaussianNoise { std })
    }
}

impl Module for GaussianNoise {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if !ctx.is_training() || self.std == 0.0 {
            return Ok(x.clone());
        }
        let noise = Tensor::randn(x.shape().clone(), 0.0, self.std, x.dtype(), ctx.rng())?;
        x.add(&noise)
    }

    fn describe(&self) -> String {
        format!("GaussianNoise({})", self.std)
    }
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

/// Masking noise: in training mode each element is set to 0 with probability `p`, and the
/// others are left as they are (`x̃ = x · m`, `m ~ Bernoulli(1 − p)`; no `1 / (1 − p)` scaling,
/// since the target is the clean input, not an expectation-preserving copy).
#[derive(Debug, Clone, Copy)]
pub struct MaskingNoise {
    p: f64,
}

impl MaskingNoise {
    /// Masks each element with probability `p` in `[0, 1)`.
    pub fn new(p: f64) -> Result<MaskingNoise> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "MaskingNoise",
                format!("p must be in [0, 1), got {p}"),
            ));
        }
        Ok(MaskingNoise { p })
    }
}

impl Module for MaskingNoise {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if !ctx.is_training() || self.p == 0.0 {
            return Ok(x.clone());
        }
        let rng = ctx.rng();
        let keep: Vec<f64> = (0..x.elem_count())
            .map(|_| if rng.uniform() >= self.p { 1.0 } else { 0.0 })
            .collect();
        x.mul(&Tensor::from_vec(keep, x.shape().clone())?.to_dtype(x.dtype())?)
    }

    fn describe(&self) -> String {
        format!("MaskingNoise({})", self.p)
    }
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

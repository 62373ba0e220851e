//! Normalization in training mode, composed from primitive ops (so their gradients follow from
//! the chain rule and are checked against PyTorch like every other op).

use crate::{Error, Result, Tensor};

impl Tensor {
    /// Batch normalization (training mode) of `[N, C, ...]` over every dim but the channel dim 1:
    /// `y = (x − μ) / √(σ² + ε) · w + b` with the batch mean μ and the biased variance σ².
    /// `weight` and `bias`, if given, have shape `[C]`.
    pub fn batch_norm(
        &self,
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        if self.rank() < 2 {
            return Err(Error::bad_shape(
                "batch_norm",
                self.shape(),
                "needs [batch, channels, ...]",
            ));
        }
        let dims: Vec<isize> = (0..self.rank() as isize).filter(|&d| d != 1).collect();
        let mut affine_shape = vec![1; self.rank()];
        affine_shape[1] = self.dims()[1];
        self.normalize("batch_norm", &dims, weight, bias, &affine_shape, eps)
    }

    /// Layer normalization over the trailing dims `normalized_shape`:
    /// `y = (x − μ) / √(σ² + ε) · w + b`, μ and the biased σ² over those dims; `weight` and
    /// `bias`, if given, have shape `normalized_shape`.
    pub fn layer_norm(
        &self,
        normalized_shape: &[usize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        eps: f64,
    ) -> Result<Tensor> {
        let k = normalized_shape.len();
        if k == 0 || k > self.rank() || &self.dims()[self.rank() - k..] != normalized_shape {
            return Err(Error::bad_shape(
                "layer_norm",
                self.shape(),
                format!("the trailing dims must equal normalized_shape {normalized_shape:?}"),
            ));
        }
        let dims: Vec<isize> = (self.rank() - k..self.rank()).map(|d| d as isize).collect();
        self.normalize("layer_norm", &dims, weight, bias, normalized_shape, eps)
    }

    fn normalize(
        &self,
        op: &'static str,
        dims: &[isize],
        weight: Option<&Tensor>,
        bias: Option<&Tensor>,
        affine_shape: &[usize],
        eps: f64,
    ) -> Result<Tensor> {
        if !(eps >= 0.0 && eps.is_finite()) {
            return Err(Error::invalid(
                op,
                format!("eps must be finite and >= 0, got {eps}"),
            ));
        }
        let mean = self.mean_dims(dims, true)?;
        let var = self.var_dims(dims, true, 0)?;
        let mut y = self.sub(&mean)?.div(&var.add_scalar(eps)?.sqrt()?)?;
        let expected: usize = affine_shape.iter().product();
        for (name, p) in [("weight", weight), ("bias", bias)] {
            let Some(p) = p else { continue };
            if p.elem_count() != expected || (p.rank() != 1 && p.dims() != affine_shape) {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: self.shape().clone().into(),
                    rhs: p.shape().clone().into(),
                    reason: format!("the {name} must have {expected} elements"),
                });
            }
            let p = p.reshape(affine_shape.to_vec())?;
            y = if name == "weight" {
                y.mul(&p)?
            } else {
                y.add(&p)?
            };
        }
        Ok(y)
    }
}

//! Gradient clipping, the remedy for exploding gradients: rescale all gradients together when
//! their global norm is too large (keeps the direction), or clamp each component.

use nabla_core::{Error, Grads, Result, Var};

/// Scales the gradients of `params` so that their global L2 norm `√(Σ ‖g‖²)` is at most
/// `max_norm` (PyTorch's `clip_grad_norm_`: factor `max_norm / (norm + 1e-6)` when above).
/// Returns the norm before clipping. A NaN or infinite norm is an error (scaling would turn
/// every gradient into NaN): the message says where to look.
pub fn clip_grad_norm(grads: &mut Grads, params: &[Var], max_norm: f64) -> Result<f64> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(Error::invalid(
            "clip_grad_norm",
            format!("max_norm must be finite and > 0, got {max_norm}"),
        ));
    }
    let mut sum_sq = 0.0;
    for p in params {
        if let Some(g) = grads.get(p) {
            sum_sq += g.to_vec_f64().iter().map(|v| v * v).sum::<f64>();
        }
    }
    let norm = sum_sq.sqrt();
    if !norm.is_finite() {
        return Err(Error::invalid(
            "clip_grad_norm",
            format!(
                "the gradient norm is {norm}: a NaN or Inf reached the gradients (exploding \
                 gradients or an invalid op; lower the learning rate or check the inputs)"
            ),
        ));
    }
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for p in params {
            if let Some(g) = grads.get(p) {
                let scaled = g.mul_scalar(coef)?;
                grads.insert(p, scaled);
            }
        }
    }
    Ok(norm)
}

/// Clamps every gradient component of `params` into `[−clip_value, clip_value]`.
pub fn clip_grad_value(grads: &mut Grads, params: &[Var], clip_value: f64) -> Result<()> {
    if !(clip_value.is_finite() && clip_value > 0.0) {
        return Err(Error::invalid(
            "clip_grad_value",
            format!("clip_value must be finite and > 0, got {clip_value}"),
        ));
    }
    for p in params {
        if let Some(g) = grads.get(p) {
            let clamped = g.clamp(-clip_value, clip_value)?;
            grads.insert(p, clamped);
        }
    }
    Ok(())
}

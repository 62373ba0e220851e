//! Dropout (Srivastava et al., 2014), inverted: in training each element is zeroed with
//! probability `p` and the survivors are scaled by `1 / (1 − p)`, so evaluation is the identity.

use crate::module::{Ctx, Module};
use nabla_core::{Error, Result, Tensor};

/// Zeroes elements with probability `p` in training mode; the identity in eval mode.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Dropout with drop probability `p` in `[0, 1)`.
    pub fn new(p: f64) -> Result<Dropout> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                "Dropout",
                format!("p must be in [0, 1), got {p}"),
            ));
        }
        Ok(Dropout { p })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        if ctx.is_training() && self.p > 0.0 {
            x.dropout(self.p, ctx.rng())
        } else {
            Ok(x.clone())
        }
    }
    fn describe(&self) -> String {
        format!("Dropout({})", self.p)
    }
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

//! RMSprop (Hinton's lecture 6e), in PyTorch's form:
//! ```text
//! g ← g + λ w
//! v ← α v + (1 − α) g²                       (no bias correction)
//! centered: ḡ ← ḡ + (1 − α)(g − ḡ);  a = √(v − ḡ²) + ε   else a = √v + ε
//! momentum μ > 0: b ← μ b + g / a;  w ← w − η b      else w ← w − η g / a
//! ```

use super::{States, UpdateRule, c, check_range, impl_optimizer};
use nabla_core::{Float, Result};

/// RMSprop; see the module docs for the update.
#[derive(Debug, Clone)]
pub struct RmsProp {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
    states: States,
}

impl RmsProp {
    /// RMSprop with PyTorch's defaults besides `lr` (α = 0.99, ε = 1e-8).
    pub fn new(lr: f64) -> Result<RmsProp> {
        Self::with_options(lr, 0.99, 1e-8, 0.0, 0.0, false)
    }

    /// Every option: learning rate η, decay α of the squared-gradient average, ε, weight decay
    /// λ, momentum μ, centered (divide by the gradient's estimated standard deviation).
    pub fn with_options(
        lr: f64,
        alpha: f64,
        eps: f64,
        weight_decay: f64,
        momentum: f64,
        centered: bool,
    ) -> Result<RmsProp> {
        check_range("RMSprop", "lr", lr, 0.0, f64::MAX)?;
        check_range("RMSprop", "alpha", alpha, 0.0, 1.0)?;
        check_range("RMSprop", "eps", eps, 0.0, f64::MAX)?;
        check_range("RMSprop", "weight_decay", weight_decay, 0.0, f64::MAX)?;
        check_range("RMSprop", "momentum", momentum, 0.0, 1.0)?;
        Ok(RmsProp {
            lr,
            alpha,
            eps,
            weight_decay,
            momentum,
            centered,
            states: States::default(),
        })
    }
}

impl UpdateRule for RmsProp {
    fn slots(&self) -> &'static [&'static str] {
        &["square_avg", "momentum_buffer", "grad_avg"]
    }

    #[inline(always)]
    fn update<T: Float>(&self, _t: u64, w: &mut [T], g: &[T], slots: &mut [&mut [T]]) {
        let (lr, alpha, eps) = (c::<T>(self.lr), c::<T>(self.alpha), c::<T>(self.eps));
        let (wd, mu, one) = (c::<T>(self.weight_decay), c::<T>(self.momentum), T::one());
        let [sq, buf, gavg] = slots else {
            unreachable!("three slots")
        };
        for i in 0..w.len() {
            let mut d = g[i];
            if self.weight_decay != 0.0 {
                d += wd * w[i];
            }
            sq[i] = alpha * sq[i] + (one - alpha) * d * d;
            let avg = if self.centered {
                gavg[i] += (one - alpha) * (d - gavg[i]);
                (sq[i] - gavg[i] * gavg[i]).sqrt() + eps
            } else {
                sq[i].sqrt() + eps
            };
            if self.momentum > 0.0 {
                buf[i] = mu * buf[i] + d / avg;
                w[i] -= lr * buf[i];
            } else {
                w[i] -= lr * (d / avg);
            }
        }
    }
}

impl_optimizer!(RmsProp, "rmsprop");

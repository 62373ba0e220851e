//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, in PyTorch's
//! form (the velocity is a sum of gradients and `lr` multiplies it at use time):
//! ```text
//! g ← g + λ w
//! b ← g (first step);  b ← μ b + (1 − d) g (afterwards)
//! g ← g + μ b (Nesterov)  or  g ← b
//! w ← w − η g
//! ```
//! With μ = 0 this is plain (mini-batch) gradient descent, `w ← w − η ∇L`.

use super::{States, UpdateRule, c, check_range, impl_optimizer};
use nabla_core::{Error, Float, Result};

/// SGD; see the module docs for the update.
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f64,
    momentum: f64,
    dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    states: States,
}

impl Sgd {
    /// Plain gradient descent with learning rate `lr`.
    pub fn new(lr: f64) -> Result<Sgd> {
        Self::with_options(lr, 0.0, 0.0, 0.0, false)
    }

    /// SGD with momentum μ (classical momentum, or Nesterov's when `nesterov`).
    pub fn momentum(lr: f64, momentum: f64, nesterov: bool) -> Result<Sgd> {
        Self::with_options(lr, momentum, 0.0, 0.0, nesterov)
    }

    /// Every option: learning rate η, momentum μ, dampening d, weight decay λ (L2), Nesterov.
    pub fn with_options(
        lr: f64,
        momentum: f64,
        dampening: f64,
        weight_decay: f64,
        nesterov: bool,
    ) -> Result<Sgd> {
        check_range("SGD", "lr", lr, 0.0, f64::MAX)?;
        check_range("SGD", "momentum", momentum, 0.0, 1.0)?;
        check_range("SGD", "dampening", dampening, 0.0, 1.0)?;
        check_range("SGD", "weight_decay", weight_decay, 0.0, f64::MAX)?;
        if nesterov && (momentum <= 0.0 || dampening != 0.0) {
            return Err(Error::invalid(
                "SGD",
                format!(
                    "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum \
                     {momentum}, dampening {dampening}"
                ),
            ));
        }
        Ok(Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            states: States::default(),
        })
    }
}

impl UpdateRule for Sgd {
    fn slots(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    #[inline(always)]
    fn update<T: Float>(&self, t: u64, w: &mut [T], g: &[T], slots: &mut [&mut [T]]) {
        let (lr, mu, wd) = (
            c::<T>(self.lr),
            c::<T>(self.momentum),
            c::<T>(self.weight_decay),
        );
        let keep = c::<T>(1.0 - self.dampening);
        for i in 0..w.len() {
            let mut d = g[i];
            if self.weight_decay != 0.0 {
                d += wd * w[i];
            }
            if let [buf] = slots {
                buf[i] = if t == 1 { d } else { mu * buf[i] + keep * d };
                d = if self.nesterov {
                    d + mu * buf[i]
                } else {
                    buf[i]
                };
            }
            w[i] -= lr * d;
        }
    }
}

impl_optimizer!(Sgd, "sgd");

//! Delta-bar-delta (Jacobs, 1988): every weight has its own learning rate, which grows by a
//! constant while the gradient keeps its sign and shrinks by a factor when the sign flips:
//! ```text
//! δ̄ ← (1 − θ) δ + θ δ̄        (the exponential average of past gradients, δ = ∂L/∂w)
//! ε ← ε + κ          if δ̄_prev · δ > 0
//! ε ← ε (1 − φ)      if δ̄_prev · δ < 0
//! w ← w − ε δ
//! ```
//! PyTorch has no counterpart; it is checked against a plain re-implementation in the tests.

use super::{States, UpdateRule, c, check_range, impl_optimizer};
use nabla_core::{Float, Result};

/// Delta-bar-delta; see the module docs for the update. `lr` is the starting rate of every
/// weight; the rates then adapt on their own, so a learning-rate schedule (which sets `lr`)
/// only affects parameters that have taken no step yet.
#[derive(Debug, Clone)]
pub struct DeltaBarDelta {
    lr: f64,
    kappa: f64,
    phi: f64,
    theta: f64,
    states: States,
}

impl DeltaBarDelta {
    /// Starting rate `lr`, additive increase κ, multiplicative decrease φ in (0, 1), and
    /// averaging factor θ in [0, 1).
    pub fn new(lr: f64, kappa: f64, phi: f64, theta: f64) -> Result<DeltaBarDelta> {
        check_range("delta-bar-delta", "lr", lr, 0.0, f64::MAX)?;
        check_range("delta-bar-delta", "kappa", kappa, 0.0, f64::MAX)?;
        check_range("delta-bar-delta", "phi", phi, 0.0, 1.0)?;
        check_range("delta-bar-delta", "theta", theta, 0.0, 1.0 - f64::EPSILON)?;
        Ok(DeltaBarDelta {
            lr,
            kappa,
            phi,
            theta,
            states: States::default(),
        })
    }
}

impl UpdateRule for DeltaBarDelta {
    fn slots(&self) -> &'static [&'static str] {
        &["rate", "delta_bar"]
    }

    fn initial_value(&self, slot: usize) -> f64 {
        if slot == 0 { self.lr } else { 0.0 }
    }

    #[inline(always)]
    fn update<T: Float>(&self, _t: u64, w: &mut [T], g: &[T], slots: &mut [&mut [T]]) {
        let (kappa, theta, one) = (c::<T>(self.kappa), c::<T>(self.theta), T::one());
        let shrink = c::<T>(1.0 - self.phi);
        let [rate, bar] = slots else {
            unreachable!("two slots")
        };
        for i in 0..w.len() {
            let agreement = bar[i] * g[i];
            if agreement > T::zero() {
                rate[i] += kappa;
            } else if agreement < T::zero() {
                rate[i] *= shrink;
            }
            bar[i] = (one - theta) * g[i] + theta * bar[i];
            w[i] -= rate[i] * g[i];
        }
    }
}

impl_optimizer!(DeltaBarDelta, "delta_bar_delta");

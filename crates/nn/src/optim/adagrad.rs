//! AdaGrad (Duchi et al., 2011): per-coordinate rates shrink with the accumulated squared
//! gradient, in PyTorch's form:
//! ```text
//! g ← g + λ w;   η_t = η / (1 + (t − 1) · lr_decay)
//! s ← s + g²     (s starts at initial_accumulator_value)
//! w ← w − η_t · g / (√s + ε)
//! ```

use super::{States, UpdateRule, c, check_range, impl_optimizer};
use nabla_core::{Float, Result};

/// AdaGrad; see the module docs for the update.
#[derive(Debug, Clone)]
pub struct Adagrad {
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    states: States,
}

impl Adagrad {
    /// AdaGrad with PyTorch's defaults besides `lr` (no decay, accumulator 0, ε = 1e-10).
    pub fn new(lr: f64) -> Result<Adagrad> {
        Self::with_options(lr, 0.0, 0.0, 0.0, 1e-10)
    }

    /// Every option.
    pub fn with_options(
        lr: f64,
        lr_decay: f64,
        weight_decay: f64,
        initial_accumulator_value: f64,
        eps: f64,
    ) -> Result<Adagrad> {
        check_range("Adagrad", "lr", lr, 0.0, f64::MAX)?;
        check_range("Adagrad", "lr_decay", lr_decay, 0.0, f64::MAX)?;
        check_range("Adagrad", "weight_decay", weight_decay, 0.0, f64::MAX)?;
        check_range(
            "Adagrad",
            "initial_accumulator_value",
            initial_accumulator_value,
            0.0,
            f64::MAX,
        )?;
        check_range("Adagrad", "eps", eps, 0.0, f64::MAX)?;
        Ok(Adagrad {
            lr,
            lr_decay,
            weight_decay,
            initial_accumulator_value,
            eps,
            states: States::default(),
        })
    }
}

impl UpdateRule for Adagrad {
    fn slots(&self) -> &'static [&'static str] {
        &["sum"]
    }

    fn initial_value(&self, _slot: usize) -> f64 {
        self.initial_accumulator_value
    }

    #[inline(always)]
    fn update<T: Float>(&self, t: u64, w: &mut [T], g: &[T], slots: &mut [&mut [T]]) {
        let clr = c::<T>(self.lr / (1.0 + (t - 1) as f64 * self.lr_decay));
        let (wd, eps) = (c::<T>(self.weight_decay), c::<T>(self.eps));
        let sum = &mut *slots[0];
        for i in 0..w.len() {
            let mut d = g[i];
            if self.weight_decay != 0.0 {
                d += wd * w[i];
            }
            sum[i] += d * d;
            w[i] -= clr * (d / (sum[i].sqrt() + eps));
        }
    }
}

impl_optimizer!(Adagrad, "adagrad");

//! Adam (Kingma & Ba, 2015, Algorithm 1), AMSGrad (Reddi et al., 2018) and AdamW (Loshchilov &
//! Hutter, 2019), in PyTorch's form:
//! ```text
//! AdamW: w ← w (1 − η λ)          Adam: g ← g + λ w   (L2, "coupled")
//! m ← m + (1 − β1)(g − m);   v ← β2 v + (1 − β2) g²
//! AMSGrad: v̂max ← max(v̂max, v), used in place of v
//! w ← w − (η / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
//! ```

use super::{States, UpdateRule, c, check_range, impl_optimizer};
use nabla_core::{Float, Result};

/// Adam or AdamW; see the module docs for the update.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled: bool,
    states: States,
}

impl Adam {
    /// Adam with the usual defaults besides `lr` (β = (0.9, 0.999), ε = 1e-8).
    pub fn new(lr: f64) -> Result<Adam> {
        Self::with_options(lr, (0.9, 0.999), 1e-8, 0.0, false)
    }

    /// AdamW with decoupled weight decay `weight_decay` (PyTorch's default is 0.01).
    pub fn adamw(lr: f64, weight_decay: f64) -> Result<Adam> {
        let mut a = Self::with_options(lr, (0.9, 0.999), 1e-8, weight_decay, false)?;
        a.decoupled = true;
        Ok(a)
    }

    /// Adam with every option; `weight_decay` is L2 added to the gradient.
    pub fn with_options(
        lr: f64,
        betas: (f64, f64),
        eps: f64,
        weight_decay: f64,
        amsgrad: bool,
    ) -> Result<Adam> {
        check_range("Adam", "lr", lr, 0.0, f64::MAX)?;
        check_range("Adam", "beta1", betas.0, 0.0, 1.0 - f64::EPSILON)?;
        check_range("Adam", "beta2", betas.1, 0.0, 1.0 - f64::EPSILON)?;
        check_range("Adam", "eps", eps, 0.0, f64::MAX)?;
        check_range("Adam", "weight_decay", weight_decay, 0.0, f64::MAX)?;
        Ok(Adam {
            lr,
            beta1: betas.0,
            beta2: betas.1,
            eps,
            weight_decay,
            amsgrad,
            decoupled: false,
            states: States::default(),
        })
    }

    /// Switches the weight decay to AdamW's decoupled form `w ← w (1 − η λ)`.
    pub fn decoupled(mut self, decoupled: bool) -> Adam {
        self.decoupled = decoupled;
        self
    }
}

impl UpdateRule for Adam {
    fn slots(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    #[inline(always)]
    fn update<T: Float>(&self, t: u64, w: &mut [T], g: &[T], slots: &mut [&mut [T]]) {
        let one = T::one();
        let (b1, b2, eps) = (c::<T>(self.beta1), c::<T>(self.beta2), c::<T>(self.eps));
        let wd = c::<T>(self.weight_decay);
        let decay = c::<T>(1.0 - self.lr * self.weight_decay);
        let bias_correction1 = one - b1.powi(t as i32);
        let bias_correction2 = one - b2.powi(t as i32);
        let step_size = c::<T>(self.lr) / bias_correction1;
        let bias_correction2_sqrt = bias_correction2.sqrt();
        // Branch-free loops (one per AMSGrad setting) so that they vectorize: with no decay,
        // the coupled term adds `0 · w` and the decoupled factor is exactly 1.
        let coupled = if self.decoupled { T::zero() } else { wd };
        let decay = if self.decoupled { decay } else { one };
        let (m, rest) = slots.split_first_mut().expect("exp_avg");
        let (v, rest) = rest.split_first_mut().expect("exp_avg_sq");
        let update = |w: &mut T, g: T, m: &mut T, v: &mut T, vmax: Option<&mut T>| {
            let d = if self.weight_decay != 0.0 {
                g + coupled * *w
            } else {
                g
            };
            *w *= decay;
            *m += (one - b1) * (d - *m);
            *v = b2 * *v + (one - b2) * d * d;
            let second = match vmax {
                Some(vmax) => {
                    *vmax = vmax.max(*v);
                    *vmax
                }
                None => *v,
            };
            *w -= step_size * (*m / (second.sqrt() / bias_correction2_sqrt + eps));
        };
        match rest.first_mut() {
            Some(vmax) => {
                for ((((w, &g), m), v), vmax) in w
                    .iter_mut()
                    .zip(g)
                    .zip(m.iter_mut())
                    .zip(v.iter_mut())
                    .zip(vmax.iter_mut())
                {
                    update(w, g, m, v, Some(vmax));
                }
            }
            None => {
                for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    update(w, g, m, v, None);
                }
            }
        }
    }
}

impl_optimizer!(Adam, "adam");

//! Learning-rate schedules: pure functions of the epoch and the history of the monitored metric,
//! so that a resumed run computes exactly the rate an uninterrupted one would.

use nabla_core::{Error, Result};

/// A learning-rate schedule, evaluated at the start of each epoch (epoch 0 is the first).
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// `η_t = η₀`.
    Constant,
    /// `η_t = η₀ · e^{−k t}`.
    Exponential { k: f64 },
    /// `η_t = η₀ / (1 + k t)`.
    Inverse { k: f64 },
    /// `η_t = η₀ · γ^{⌊t / step_size⌋}`: multiply by γ every `step_size` epochs.
    Step { step_size: usize, gamma: f64 },
    /// Cosine annealing from η₀ to `min_lr` over `t_max` epochs:
    /// `η_t = min + (η₀ − min)(1 + cos(π t / t_max)) / 2`, then `min_lr`.
    Cosine { t_max: usize, min_lr: f64 },
    /// Reduce on plateau (PyTorch's `ReduceLROnPlateau`, mode "min", relative threshold):
    /// after more than `patience` epochs without the metric improving on its best by a relative
    /// `threshold`, multiply the rate by `factor` (never below `min_lr`), then wait `cooldown`
    /// epochs before counting again.
    ReduceOnPlateau {
        factor: f64,
        patience: usize,
        threshold: f64,
        cooldown: usize,
        min_lr: f64,
    },
}

/// A schedule with an optional linear warm-up: during the first `warmup_epochs` epochs the rate
/// is multiplied by `(t + 1) / (warmup_epochs + 1)` (rising linearly towards the full rate).
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    pub schedule: Schedule,
    pub warmup_epochs: usize,
}

impl From<Schedule> for LrSchedule {
    fn from(schedule: Schedule) -> Self {
        LrSchedule {
            schedule,
            warmup_epochs: 0,
        }
    }
}

impl Schedule {
    /// Checks the parameters (finite, in range); an error names the schedule and the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::invalid("lr schedule", what));
        match *self {
            Schedule::Constant => Ok(()),
            Schedule::Exponential { k } | Schedule::Inverse { k }
                if !(k.is_finite() && k >= 0.0) =>
            {
                bad(format!("k must be finite and >= 0, got {k}"))
            }
            Schedule::Step { step_size: 0, .. } => bad("step_size must be positive".into()),
            Schedule::Step { gamma, .. } if !(gamma > 0.0 && gamma.is_finite()) => {
                bad(format!("gamma must be > 0, got {gamma}"))
            }
            Schedule::Cosine { t_max: 0, .. } => bad("t_max must be positive".into()),
            Schedule::Cosine { min_lr, .. } if !(min_lr >= 0.0 && min_lr.is_finite()) => {
                bad(format!("min_lr must be >= 0, got {min_lr}"))
            }
            Schedule::ReduceOnPlateau {
                factor,
                threshold,
                min_lr,
                ..
            } => {
                if !(factor > 0.0 && factor < 1.0) {
                    bad(format!("factor must be in (0, 1), got {factor}"))
                } else if !(threshold >= 0.0 && threshold.is_finite()) {
                    bad(format!("threshold must be >= 0, got {threshold}"))
                } else if !(min_lr >= 0.0 && min_lr.is_finite()) {
                    bad(format!("min_lr must be >= 0, got {min_lr}"))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// The rate for epoch `epoch`, given the base rate and the monitored metric (lower is
    /// better, e.g. the validation loss) of every finished epoch.
    pub fn learning_rate(&self, base_lr: f64, epoch: usize, metric_history: &[f64]) -> f64 {
        let t = epoch as f64;
        match *self {
            Schedule::Constant => base_lr,
            Schedule::Exponential { k } => base_lr * (-k * t).exp(),
            Schedule::Inverse { k } => base_lr / (1.0 + k * t),
            Schedule::Step { step_size, gamma } => {
                base_lr * gamma.powi((epoch / step_size.max(1)) as i32)
            }
            Schedule::Cosine { t_max, min_lr } => {
                if epoch >= t_max {
                    min_lr
                } else {
                    let cos = (std::f64::consts::PI * t / t_max as f64).cos();
                    min_lr + (base_lr - min_lr) * (1.0 + cos) / 2.0
                }
            }
            Schedule::ReduceOnPlateau {
                factor,
                patience,
                threshold,
                cooldown,
                min_lr,
            } => {
                // Replays PyTorch's ReduceLROnPlateau.step over the metrics seen so far.
                let mut lr = base_lr;
                let mut best = f64::INFINITY;
                let (mut bad_epochs, mut cooldown_left) = (0usize, 0usize);
                for &m in metric_history.iter().take(epoch) {
                    if m < best * (1.0 - threshold) || best.is_infinite() && m.is_finite() {
                        best = m;
                        bad_epochs = 0;
                    } else {
                        bad_epochs += 1;
                    }
                    if cooldown_left > 0 {
                        cooldown_left -= 1;
                        bad_epochs = 0;
                    }
                    if bad_epochs > patience {
                        lr = (lr * factor).max(min_lr);
                        cooldown_left = cooldown;
                        bad_epochs = 0;
                    }
                }
                lr
            }
        }
    }
}

impl LrSchedule {
    /// The rate for `epoch` (see [`Schedule::learning_rate`]), with the warm-up applied.
    pub fn learning_rate(&self, base_lr: f64, epoch: usize, metric_history: &[f64]) -> f64 {
        let lr = self.schedule.learning_rate(base_lr, epoch, metric_history);
        if epoch < self.warmup_epochs {
            lr * (epoch + 1) as f64 / (self.warmup_epochs + 1) as f64
        } else {
            lr
        }
    }
}

//! Optimizers. Each implements [`Optimizer`]: one `step` over named parameters and their
//! gradients, with its state kept per parameter name (so that it can be checkpointed and resumed
//! exactly). The update rules follow PyTorch's `torch.optim` to the order of operations, and are
//! checked against its trajectories in `shared/oracle/optim_cases.json` (`nabla check-optim`).

mod adagrad;
mod adam;
mod delta_bar_delta;
mod rmsprop;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use delta_bar_delta::DeltaBarDelta;
pub use rmsprop::RmsProp;
pub use sgd::Sgd;

use nabla_core::simd::SimdKernel;
use nabla_core::{DType, Error, Float, Grads, Result, Shape, Storage, Tensor, Var};
use std::collections::BTreeMap;

/// A first-order optimizer.
pub trait Optimizer: Send {
    /// Updates every parameter that has a gradient in `grads` (parameters that took no part in
    /// the loss are left alone, and their step count does not advance, as in PyTorch).
    fn step(&mut self, params: &[(String, Var)], grads: &Grads) -> Result<()>;

    /// The current (base) learning rate.
    fn learning_rate(&self) -> f64;

    /// Sets the learning rate (what schedules do between epochs).
    fn set_learning_rate(&mut self, lr: f64);

    /// The optimizer's state: per-parameter buffers, named `"{param}.{slot}"`, and step counts.
    fn state(&self) -> OptimizerState;

    /// Restores a state saved by [`Optimizer::state`] (for resuming training).
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;

    /// The optimizer's name (`"adam"`).
    fn name(&self) -> &'static str;
}

/// A snapshot of an optimizer's state: everything needed to continue bit-exactly.
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    /// Buffers named `"{param}.{slot}"` (e.g. `"0.weight.exp_avg"`), each shaped like its
    /// parameter.
    pub tensors: BTreeMap<String, Tensor>,
    /// Steps taken per parameter name.
    pub steps: BTreeMap<String, u64>,
    /// The learning rate.
    pub learning_rate: f64,
}

/// The per-element update rule of an optimizer, written once for f32 and f64.
pub(crate) trait UpdateRule: Sync {
    /// Names of the per-parameter buffers (`["exp_avg", "exp_avg_sq"]`).
    fn slots(&self) -> &'static [&'static str];

    /// The starting value of buffer `slot` (0 for all but Adagrad's accumulator).
    fn initial_value(&self, slot: usize) -> f64 {
        let _ = slot;
        0.0
    }

    /// Updates weights `w` with gradient `g` at step `t` (1 on the first step), reading and
    /// writing the buffers in `slots` (in the order of [`UpdateRule::slots`]).
    fn update<T: Float>(&self, t: u64, w: &mut [T], g: &[T], slots: &mut [&mut [T]]);
}

/// One parameter's buffers and step count.
#[derive(Debug, Clone)]
struct ParamState {
    step: u64,
    /// The dtype and shape of the buffers; `None` for a rule without buffers (plain SGD), whose
    /// state is only a step count and fits any parameter.
    layout: Option<(DType, Shape)>,
    buffers: Vec<Storage>,
}

/// Per-parameter state shared by every optimizer, and the loop that applies an [`UpdateRule`].
#[derive(Debug, Clone, Default)]
pub(crate) struct States {
    params: BTreeMap<String, ParamState>,
}

impl States {
    /// Applies `rule` to every parameter that has a gradient.
    pub(crate) fn step(
        &mut self,
        rule: &impl UpdateRule,
        params: &[(String, Var)],
        grads: &Grads,
    ) -> Result<()> {
        // Validate everything before touching anything, so that an error leaves the model and
        // the optimizer as they were.
        for (name, var) in params {
            if let Some(g) = grads.get(var) {
                check_grad(name, var, g)?;
                if let Some((dtype, shape)) = self.params.get(name).and_then(|s| s.layout.as_ref())
                    && (*shape != var.shape() || *dtype != var.dtype())
                {
                    return Err(Error::invalid(
                        "optimizer",
                        format!(
                            "parameter {name:?} is {} {} but the optimizer's state for it is \
                             {dtype} {shape}",
                            var.dtype(),
                            var.shape(),
                        ),
                    ));
                }
            }
        }
        for (name, var) in params {
            let Some(g) = grads.get(var) else { continue };
            // Look up first: `entry` would allocate the name on every step.
            if !self.params.contains_key(name) {
                let state = ParamState {
                    step: 0,
                    layout: (!rule.slots().is_empty()).then(|| (var.dtype(), var.shape())),
                    buffers: (0..rule.slots().len())
                        .map(|slot| filled(var.dtype(), var.elem_count(), rule.initial_value(slot)))
                        .collect(),
                };
                self.params.insert(name.clone(), state);
            }
            let state = self.params.get_mut(name).expect("inserted above");
            state.step += 1;
            match var.dtype() {
                DType::F32 => apply::<f32>(rule, state, var, g)?,
                DType::F64 => apply::<f64>(rule, state, var, g)?,
                DType::I64 => unreachable!("a Var is always float"),
            }
        }
        Ok(())
    }

    pub(crate) fn snapshot(&self, rule: &impl UpdateRule, learning_rate: f64) -> OptimizerState {
        let mut out = OptimizerState {
            learning_rate,
            ..Default::default()
        };
        for (name, p) in &self.params {
            out.steps.insert(name.clone(), p.step);
            let Some((_, shape)) = &p.layout else {
                continue;
            };
            for (slot, buf) in rule.slots().iter().zip(&p.buffers) {
                let t = match buf {
                    Storage::F32(v) => Tensor::from_vec(v.clone(), shape.clone()),
                    Storage::F64(v) => Tensor::from_vec(v.clone(), shape.clone()),
                    Storage::I64(_) => unreachable!("optimizer buffers are float"),
                }
                .expect("buffer length matches its parameter's shape");
                out.tensors.insert(format!("{name}.{slot}"), t);
            }
        }
        out
    }

    pub(crate) fn restore(&mut self, rule: &impl UpdateRule, state: &OptimizerState) -> Result<()> {
        let mut params = BTreeMap::new();
        for (name, &step) in &state.steps {
            let mut buffers = Vec::new();
            let mut layout: Option<(DType, Shape)> = None;
            for slot in rule.slots() {
                let key = format!("{name}.{slot}");
                let t = state.tensors.get(&key).ok_or_else(|| {
                    Error::invalid("optimizer state", format!("missing buffer {key:?}"))
                })?;
                if let Some((dtype, shape)) = &layout
                    && (t.dtype() != *dtype || t.shape() != shape)
                {
                    return Err(Error::invalid(
                        "optimizer state",
                        format!("buffer {key:?} does not match its parameter's other buffers"),
                    ));
                }
                layout = Some((t.dtype(), t.shape().clone()));
                buffers.push(match t.dtype() {
                    DType::F32 => Storage::F32(t.to_vec()?),
                    DType::F64 => Storage::F64(t.to_vec()?),
                    DType::I64 => {
                        return Err(Error::invalid(
                            "optimizer state",
                            format!("buffer {key:?} must be float"),
                        ));
                    }
                });
            }
            params.insert(
                name.clone(),
                ParamState {
                    step,
                    layout,
                    buffers,
                },
            );
        }
        self.params = params;
        Ok(())
    }
}

fn check_grad(name: &str, var: &Var, g: &Tensor) -> Result<()> {
    if g.shape() != &var.shape() || g.dtype() != var.dtype() {
        return Err(Error::invalid(
            "optimizer",
            format!(
                "the gradient of {name:?} is {} {} but the parameter is {} {}",
                g.dtype(),
                g.shape(),
                var.dtype(),
                var.shape()
            ),
        ));
    }
    Ok(())
}

fn filled(dtype: DType, len: usize, value: f64) -> Storage {
    match dtype {
        DType::F32 => Storage::F32(vec![value as f32; len]),
        DType::F64 => Storage::F64(vec![value; len]),
        DType::I64 => unreachable!("a Var is always float"),
    }
}

fn apply<T: Float + nabla_core::Element>(
    rule: &impl UpdateRule,
    state: &mut ParamState,
    var: &Var,
    g: &Tensor,
) -> Result<()> {
    let g = g.contiguous_data::<T>()?;
    let t = state.step;
    let mut slots: Vec<&mut [T]> = state
        .buffers
        .iter_mut()
        .map(|b| T::slice_mut(b).expect("buffers have the parameter's dtype"))
        .collect();
    var.update(|w: &mut [T]| {
        if w.len() < PARALLEL_UPDATE || rayon::current_num_threads() == 1 {
            update_vectorized(rule, t, w, &g, &mut slots);
            return;
        }
        // Every rule works element by element, so chunks of a large parameter (and of its
        // buffers) update independently, on all threads.
        use rayon::prelude::*;
        let mut slot_chunks: Vec<_> = slots
            .iter_mut()
            .map(|s| s.chunks_mut(UPDATE_CHUNK))
            .collect();
        let chunks: Vec<_> = w
            .chunks_mut(UPDATE_CHUNK)
            .zip(g.chunks(UPDATE_CHUNK))
            .map(|(w, g)| {
                let slots: Vec<&mut [T]> =
                    slot_chunks.iter_mut().filter_map(Iterator::next).collect();
                (w, g, slots)
            })
            .collect();
        chunks
            .into_par_iter()
            .for_each(|(w, g, mut slots)| update_vectorized(rule, t, w, g, &mut slots));
    })
}

/// [`UpdateRule::update`] compiled for the SIMD level in use, so that the rules' loops run 8 or
/// 16 lanes wide where the CPU has them (compiled for the baseline target, they ran 4 lanes, and
/// Adam's update took 17% of an MNIST MLP's training step). No rule uses fused multiply-adds,
/// so every level gives the same bits.
fn update_vectorized<T: Float>(
    rule: &impl UpdateRule,
    t: u64,
    w: &mut [T],
    g: &[T],
    slots: &mut [&mut [T]],
) {
    struct Update<'a, 'b, R, T> {
        rule: &'a R,
        t: u64,
        w: &'a mut [T],
        g: &'a [T],
        slots: &'a mut [&'b mut [T]],
    }
    impl<R: UpdateRule, T: Float> SimdKernel for Update<'_, '_, R, T> {
        #[inline(always)]
        fn run<const FMA: bool>(self) {
            self.rule.update(self.t, self.w, self.g, self.slots);
        }
    }
    nabla_core::simd::dispatch(Update {
        rule,
        t,
        w,
        g,
        slots,
    });
}

/// A parameter of at least this many elements is updated in parallel chunks of
/// [`UPDATE_CHUNK`]; a smaller one on the calling thread. Measured on two threads, alternated
/// with the serial update (`nabla bench mlp --threads 2`, 3 steady rounds): the MNIST MLP
/// (784x256 first weight) +19–27% at batch 32, −3 to +22% at 128, −8 to +5% at 512.
const PARALLEL_UPDATE: usize = 1 << 16;
const UPDATE_CHUNK: usize = 1 << 14;

/// Checks a hyperparameter: finite and within `[min, max]` (`max = f64::MAX`: no bound above).
pub(crate) fn check_range(
    optimizer: &'static str,
    name: &str,
    value: f64,
    min: f64,
    max: f64,
) -> Result<()> {
    if value.is_finite() && value >= min && value <= max {
        return Ok(());
    }
    let range = if max == f64::MAX {
        format!("finite and >= {min}")
    } else {
        format!("in [{min}, {max}]")
    };
    Err(Error::invalid(
        optimizer,
        format!("{name} must be {range}, got {value}"),
    ))
}

/// `T` from an f64 hyperparameter.
#[inline]
pub(crate) fn c<T: Float>(v: f64) -> T {
    T::from_f64(v)
}

/// Implements the [`Optimizer`] trait's bookkeeping for a struct with fields `lr: f64` and
/// `states: States` that implements [`UpdateRule`].
macro_rules! impl_optimizer {
    ($ty:ty, $name:literal) => {
        impl $crate::optim::Optimizer for $ty {
            fn step(
                &mut self,
                params: &[(String, nabla_core::Var)],
                grads: &nabla_core::Grads,
            ) -> nabla_core::Result<()> {
                let mut states = std::mem::take(&mut self.states);
                let result = states.step(&*self, params, grads);
                self.states = states;
                result
            }
            fn learning_rate(&self) -> f64 {
                self.lr
            }
            fn set_learning_rate(&mut self, lr: f64) {
                self.lr = lr;
            }
            fn state(&self) -> $crate::optim::OptimizerState {
                self.states.snapshot(self, self.lr)
            }
            fn load_state(
                &mut self,
                state: &$crate::optim::OptimizerState,
            ) -> nabla_core::Result<()> {
                let mut states = $crate::optim::States::default();
                states.restore(&*self, state)?;
                self.states = states;
                self.lr = state.learning_rate;
                Ok(())
            }
            fn name(&self) -> &'static str {
                $name
            }
        }
    };
}
pub(crate) use impl_optimizer;

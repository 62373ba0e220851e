//! Anomaly tracing: where in a recorded graph a NaN or an infinity first appeared, forward
//! ([`Tensor::first_non_finite`]) or backward ([`Tensor::backward_detect_anomaly`]), with the
//! op's name and the statistics of its inputs. Run after the fact, on a replay of the step that
//! failed, so that training never pays for the checks.

use crate::autograd::{InputGrads, Node, NodeSlot, topological_order};
use crate::{Result, Tensor};

/// What a tensor held: its dims, the largest and mean magnitude of its finite elements, and
/// how many elements were NaN or infinite.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueStats {
    pub dims: Vec<usize>,
    pub max_abs: f64,
    pub mean_abs: f64,
    pub non_finite: usize,
}

impl ValueStats {
    /// Measures `t`.
    pub fn of(t: &Tensor) -> ValueStats {
        let v = t.to_vec_f64();
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        ValueStats {
            dims: t.dims().to_vec(),
            max_abs: finite.iter().fold(0.0f64, |m, x| m.max(x.abs())),
            mean_abs: finite.iter().map(|x| x.abs()).sum::<f64>() / finite.len().max(1) as f64,
            non_finite: v.len() - finite.len(),
        }
    }
}

impl std::fmt::Display for ValueStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:?} max |x| {:.3e}, mean |x| {:.3e}",
            self.dims, self.max_abs, self.mean_abs
        )?;
        if self.non_finite > 0 {
            write!(f, ", {} not finite", self.non_finite)?;
        }
        Ok(())
    }
}

/// The first op that produced a non-finite value.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// The op's name (`matmul`, `exp`, `log`, ...); `leaf` for a parameter or input that was
    /// already non-finite.
    pub op: &'static str,
    /// In the backward pass (the op's vector-Jacobian product), or the forward pass.
    pub backward: bool,
    /// The op's inputs (forward), or its output gradient (backward).
    pub inputs: Vec<ValueStats>,
    /// What it produced: its output (forward), or its inputs' gradients (backward).
    pub outputs: Vec<ValueStats>,
}

impl std::fmt::Display for Anomaly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[ValueStats]| {
            v.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        if self.backward {
            write!(
                f,
                "the backward of `{}` turned a finite gradient ({}) into non-finite input \
                 gradients ({})",
                self.op,
                list(&self.inputs),
                list(&self.outputs)
            )
        } else if self.op == "leaf" {
            write!(
                f,
                "a leaf (parameter or input) is not finite: {}",
                list(&self.outputs)
            )
        } else {
            write!(
                f,
                "`{}` produced non-finite values ({}) from inputs {}",
                self.op,
                list(&self.outputs),
                list(&self.inputs)
            )
        }
    }
}

/// Whether every element is finite.
pub fn is_finite(t: &Tensor) -> bool {
    t.to_vec_f64().iter().all(|x| x.is_finite())
}

impl Anomaly {
    pub(crate) fn backward(node: &Node, grad: &Tensor, input_grads: &InputGrads) -> Anomaly {
        Anomaly {
            op: node.op.name(),
            backward: true,
            inputs: vec![ValueStats::of(grad)],
            outputs: input_grads.iter().flatten().map(ValueStats::of).collect(),
        }
    }
}

impl Tensor {
    /// The first op, in the order the ops ran, whose output holds a NaN or an infinity: since
    /// every tensor comes after its inputs in that order, that op's inputs were finite, so it
    /// is where the values broke. `None` when the whole graph is finite. The graph must not
    /// have been released by a `backward()`.
    pub fn first_non_finite(&self) -> Result<Option<Anomaly>> {
        for t in topological_order(self)? {
            if is_finite(&t) {
                continue;
            }
            let slot = t.0.node.lock().unwrap_or_else(|p| p.into_inner());
            let anomaly = match &*slot {
                NodeSlot::Recorded(node) => Anomaly {
                    op: node.op.name(),
                    backward: false,
                    inputs: node.inputs.iter().map(ValueStats::of).collect(),
                    outputs: vec![ValueStats::of(&t)],
                },
                _ => Anomaly {
                    op: "leaf",
                    backward: false,
                    inputs: Vec::new(),
                    outputs: vec![ValueStats::of(&t)],
                },
            };
            return Ok(Some(anomaly));
        }
        Ok(None)
    }
}

//! Anomaly tracing: when the loss stops being finite, the step is replayed layer by layer to
//! find the first place a NaN or infinity appeared (PyTorch's `detect_anomaly`, but run only
//! once, after the fact, and telling why): weights already non-finite (the previous update
//! overflowed), a layer's forward output, the loss itself, or a gradient on the way back.

use nabla_core::anomaly::{ValueStats, is_finite as finite};
use nabla_core::{Rng, Tensor};
use nabla_nn::loss::Loss;
use nabla_nn::{Ctx, Module, ModuleExt};

/// Where the first non-finite value appeared.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The layer's path (`"3"`, `"1.block.0"`), when a layer is to blame.
    pub layer: Option<String>,
    /// `weights`, `forward`, `loss` or `backward`.
    pub phase: &'static str,
    /// What happened, with the statistics of the layer's input.
    pub message: String,
}

/// `max |x|`, `mean |x|` and the count of non-finite values (core's [`ValueStats`]), in words.
fn describe_values(t: &Tensor) -> String {
    let v = ValueStats::of(t);
    let mut s = format!(
        "max |x| {}, mean |x| {}",
        super::rules::sig(v.max_abs),
        super::rules::sig(v.mean_abs)
    );
    if v.non_finite > 0 {
        s += &format!(", {} of {} not finite", v.non_finite, t.elem_count());
    }
    s
}

/// `: the first op to break was ...`, from core's anomaly trace of the graph.
fn op_detail(found: nabla_core::Result<Option<nabla_core::anomaly::Anomaly>>) -> String {
    match found {
        Ok(Some(a)) => format!("; the first op to break: {a}"),
        _ => String::new(),
    }
}

/// Replays the step on `(x, y)` with the step's random numbers (`rng`) and finds the first
/// non-finite value.
pub fn trace_non_finite(
    model: &dyn Module,
    loss: &Loss,
    x: &Tensor,
    y: &Tensor,
    rng: Rng,
) -> Trace {
    for (name, var) in model.named_parameters() {
        if !finite(&var.as_tensor()) {
            let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
            return Trace {
                layer: Some(layer.to_string()),
                phase: "weights",
                message: format!(
                    "the weights of layer {layer} ({name}) were already not finite: an earlier \
                     update overflowed, a step too large for the gradient it followed"
                ),
            };
        }
    }
    if !finite(x) {
        return Trace {
            layer: None,
            phase: "forward",
            message: format!(
                "the input batch holds non-finite values ({})",
                describe_values(x)
            ),
        };
    }
    let mut ctx = Ctx::train(rng).with_taps();
    let out = match model.forward(x, &mut ctx) {
        Ok(out) => out,
        Err(e) => {
            return Trace {
                layer: None,
                phase: "forward",
                message: format!("replaying the step failed: {e}"),
            };
        }
    };
    let mut leaves = Vec::new();
    super::measure::leaves(model, "", &mut leaves);
    let mut input = x.clone();
    for (path, y) in ctx.taps() {
        let Some((_, description)) = leaves.iter().find(|(p, _)| p == path) else {
            continue;
        };
        if !finite(y) {
            return Trace {
                layer: Some(path.clone()),
                phase: "forward",
                message: format!(
                    "layer {path} ({description}) produced non-finite outputs from an input \
                     with {}{}",
                    describe_values(&input),
                    op_detail(y.first_non_finite())
                ),
            };
        }
        input = y.clone();
    }
    let value = match loss.compute(&out, y) {
        Ok(v) => v,
        Err(e) => {
            return Trace {
                layer: None,
                phase: "loss",
                message: format!("replaying the loss failed: {e}"),
            };
        }
    };
    if !finite(&value) {
        return Trace {
            layer: None,
            phase: "loss",
            message: format!(
                "the loss turned finite model outputs ({}) into {}{}",
                describe_values(&out),
                value.to_vec_f64().first().copied().unwrap_or(f64::NAN),
                op_detail(value.first_non_finite())
            ),
        };
    }
    if let Ok((grads, anomaly)) = value.backward_detect_anomaly() {
        if let Some(a) = anomaly {
            return Trace {
                layer: None,
                phase: "backward",
                message: format!("backward: {a}"),
            };
        }
        for (path, y) in ctx.taps().iter().rev() {
            if let (Some((_, description)), Some(g)) =
                (leaves.iter().find(|(p, _)| p == path), grads.get(y))
                && !finite(g)
            {
                return Trace {
                    layer: Some(path.clone()),
                    phase: "backward",
                    message: format!(
                        "the gradient at the output of layer {path} ({description}) is not \
                         finite ({})",
                        describe_values(g)
                    ),
                };
            }
        }
    }
    Trace {
        layer: None,
        phase: "forward",
        message: "replaying the step gave finite values: the overflow depends on state the \
                  replay does not have"
            .into(),
    }
}

//! The convergence doctor: it watches the quantities that the theory of backpropagation says
//! decide whether a network trains, and names the problem, the layer and the remedy.
//!
//! The gradient reaching layer 1 is a product over the layers above it,
//! `δ₁ = (W₂ᵀ … W_Lᵀ (f − y)) ⊙ a₁′(z₁) ⊙ …`: it vanishes when weights or activation
//! derivatives are small (sigmoid's σ′ ≤ 1/4, saturated units), explodes when they are large,
//! stops at units whose derivative is zero (dead ReLUs), and training stalls on unscaled inputs
//! (an ill-conditioned loss surface) or a learning rate far from the curvature's scale.
//!
//! Every `every` steps (and at the first step) the trainer runs its step with taps on and hands
//! the doctor the layer outputs, their gradients and the parameters before and after the update
//! ([`measure`]). At the end of an epoch the samples become per-layer statistics in the
//! epoch's record, and the rules ([`rules`]) turn the records so far into findings, each reported
//! once. When the loss stops being finite, [`trace`] finds the first layer that produced a
//! non-finite value, forward or backward.
//!
//! Everything the rules read is in the epoch records, so a resumed run reaches the same
//! findings at the same epochs as an uninterrupted one.

pub mod fixes;
pub mod histogram;
pub mod measure;
pub mod probe;
pub mod rules;
pub mod trace;

use serde::{Deserialize, Serialize};

pub use histogram::Histogram;
pub use measure::{Doctor, InputScale};
pub use rules::{Finding, Problem};

/// How often the doctor samples a training step, and what it should know of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorConfig {
    /// Sample every this many steps (and the first step of each epoch).
    pub every: u64,
    /// The run stops early and keeps its best validation epoch's weights: overfitting is
    /// handled there, and not reported.
    #[serde(default)]
    pub keeps_best: bool,
    /// How many examples the validation loss is measured on (`None`: not said). Below
    /// [`rules::OVERFIT_MIN_VALID`] a rise is not read as overfitting.
    #[serde(default)]
    pub valid_examples: Option<usize>,
}

impl Default for DoctorConfig {
    fn default() -> Self {
        DoctorConfig {
            every: 50,
            keeps_best: false,
            valid_examples: None,
        }
    }
}

/// What the doctor measured in one layer over an epoch's sampled steps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerDiagnostics {
    /// The layer's kind (`Linear`, `ReLU`, `Sigmoid`, ...).
    pub kind: String,
    /// Mean and standard deviation of the layer's outputs.
    #[serde(deserialize_with = "null_as_nan")]
    pub activation_mean: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub activation_std: f64,
    /// ReLU: the fraction of units that were zero for every example of every sampled batch (a
    /// convolution's unit is a channel, zero at every position; a sequence's a feature, zero
    /// at every step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_fraction: Option<f64>,
    /// Sigmoid, tanh, hard tanh: the fraction of outputs in the flat part of the curve
    /// (derivative below 2% of its peak: σ outside [0.01, 0.99], |tanh| > 0.99, at the clamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated_fraction: Option<f64>,
    /// Linear: the fraction of its inputs that are exactly zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_input_fraction: Option<f64>,
    /// Layers with parameters: `‖ΔW‖ / ‖W‖` of one optimizer step (healthy: about 1e-3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_ratio: Option<f64>,
    /// Layers with parameters: `‖W‖` at the end of the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_norm: Option<f64>,
    /// Linear, Conv2d: how much its units (weight rows, filters) differ, `max_i ‖w_i − w̄‖ / max_i ‖w_i‖`; 0
    /// when every unit is the same (symmetry never broken).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_spread: Option<f64>,
    /// A recurrent layer that passes on its last step: the gradient reaching its input at the
    /// sequence's first step over the largest at any step, `‖∂L/∂x₁‖ / maxₜ ‖∂L/∂xₜ‖`: how
    /// much of the error flows back through time to the start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_step_gradient: Option<f64>,
    /// The sequence's steps, with `first_step_gradient`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// `‖∂L/∂a‖` of the layer's output per example: the backpropagated error δ.
    #[serde(deserialize_with = "null_as_nan")]
    pub delta_norm: f64,
    /// Activations and recurrent layers: the distribution of the outputs over the sampled
    /// steps (see [`histogram`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Histogram>,
}

/// The doctor's part of an epoch's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochDiagnostics {
    /// How many steps were sampled.
    pub samples: usize,
    /// By layer path (`"0"`, `"2.block.1"`), in the model's order.
    pub layers: Vec<(String, LayerDiagnostics)>,
    /// Problems first seen in this epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<Finding>,
}

impl EpochDiagnostics {
    /// The statistics of `path`.
    pub fn layer(&self, path: &str) -> Option<&LayerDiagnostics> {
        self.layers.iter().find(|(p, _)| p == path).map(|(_, l)| l)
    }
}

/// The keys of the findings already in `history`: a finding is reported once, across a resumed
/// run too (see [`Finding::key`]).
pub fn reported(history: &[crate::trainer::EpochRecord]) -> std::collections::BTreeSet<String> {
    history
        .iter()
        .filter_map(|r| r.diagnostics.as_ref())
        .flat_map(|d| d.findings.iter().map(Finding::key))
        .collect()
}

/// The layer kinds the doctor tells apart, from a module's description.
pub fn kind_of(description: &str) -> &str {
    description.split('(').next().unwrap_or(description).trim()
}

/// A finding for the console: the headline, then the cause, the remedy and the config changes
/// that apply it, indented.
pub fn describe(f: &Finding) -> String {
    let mut s = format!(
        "doctor: {}\n  why: {}\n  fix: {}",
        f.headline(),
        f.cause,
        f.remedy
    );
    match f.fix.len() {
        0 => {}
        1..=3 => {
            s += "\n  try:";
            for change in &f.fix {
                s += &format!(" --set '{change}'");
            }
        }
        n => {
            s += &format!(
                "\n  try: {n} config changes (`nabla doctor CONFIG --fixed OUT.toml` writes them)"
            )
        }
    }
    s
}

/// JSON has no NaN or infinity (serde_json writes them as `null`): read `null` back as NaN, so
/// that a record of a run whose values overflowed still loads.
pub fn null_as_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

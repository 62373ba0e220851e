//! A finding in a config's terms: its layers named by their config keys
//! (`model.layers[3]`, `model.layers[1].layers[0]`), and the config changes (`key=value`, as
//! `--set` takes them) that apply its remedy.

use super::{Finding, Problem};
use crate::config::{
    Config, InitSpec, LayerSpec, LossSpec, OptimizerSpec, SparsityPenalty, SparsitySpec, Weighting,
};
use nabla_data::Scaling;

/// The config key of the layer at `path` (`"1.block.0"` → `model.layers[1].layers[0]`; a
/// residual block's projection is named after its block).
pub fn config_key(path: &str) -> String {
    let mut key = "model.layers".to_string();
    let mut parts = path.split('.');
    if let Some(first) = parts.next() {
        key += &format!("[{first}]");
    }
    while let Some(part) = parts.next() {
        match part {
            "block" => {
                if let Some(i) = parts.next() {
                    key += &format!(".layers[{i}]");
                }
            }
            "projection" => key += " (projection)",
            other => key += &format!(".{other}"),
        }
    }
    key
}

/// Every layer spec with its config key, depth first (residual blocks' layers included).
fn all_layers(layers: &[LayerSpec], key: &str, out: &mut Vec<(String, LayerSpec)>) {
    for (i, l) in layers.iter().enumerate() {
        let here = format!("{key}[{i}]");
        out.push((here.clone(), l.clone()));
        if let LayerSpec::Residual { layers, .. } = l {
            all_layers(layers, &format!("{here}.layers"), out);
        }
    }
}

/// The Linear layer just before the layer at `key` in its list, if it is one.
fn linear_before<'a>(
    layers: &'a [(String, LayerSpec)],
    key: &str,
) -> Option<&'a (String, LayerSpec)> {
    let (list, index) = key.rsplit_once('[')?;
    let i: usize = index.trim_end_matches(']').parse().ok()?;
    let prev = format!("{list}[{}]", i.checked_sub(1)?);
    layers
        .iter()
        .find(|(k, l)| *k == prev && matches!(l, LayerSpec::Linear { .. }))
}

/// A scaling as its TOML value (`"standardize"`, `{ divide = 255 }`).
fn scaling_toml(scaling: Scaling) -> String {
    match scaling {
        Scaling::None => "\"none\"".into(),
        Scaling::Standardize => "\"standardize\"".into(),
        Scaling::MinMax => "\"min_max\"".into(),
        Scaling::Divide(d) => format!("{{ divide = {} }}", number(d)),
        Scaling::PcaWhiten { components, eps } => {
            let components = components.map_or(String::new(), |c| format!("components = {c}, "));
            format!("{{ pca_whiten = {{ {components}eps = {} }} }}", number(eps))
        }
    }
}

/// A number as TOML, in 3 significant digits.
fn number(x: f64) -> String {
    let text = format!("{}", crate::tune::round3(x));
    if text.contains('.') || text.contains('e') {
        text
    } else {
        format!("{text}.0")
    }
}

/// A dead-ReLU finding on the layer that `train.sparsity` penalizes, told in the penalty's
/// terms.
fn explain_silenced_code(f: &mut Finding, sparsity: &SparsitySpec) {
    let penalty = match sparsity.penalty {
        SparsityPenalty::L1 => "l1",
        SparsityPenalty::Kl => "kl",
    };
    f.cause = format!(
        "the sparsity penalty on this layer (train.sparsity: {penalty}, weight {}) pushes its \
         outputs to zero, and it has silenced whole units instead of making each fire on a few \
         examples: a unit that is zero on every example passes no gradient (relu'(z) = 0 for \
         z < 0) and carries nothing, so the code is narrower than it looks",
        number(sparsity.weight)
    );
    f.remedy = "lower the penalty's weight (train.sparsity.weight) so that the units fire \
                selectively instead of not at all, or use a sigmoid code with the KL penalty \
                (penalty = \"kl\", target = 0.05), which holds every unit's mean activation \
                at the target rather than letting whole units go silent"
        .into();
}

/// Names the finding's layers after `config` and lists the changes that apply its remedy.
pub fn present(config: &Config, f: &mut Finding) {
    f.names = f.layers.iter().map(|p| config_key(p)).collect();
    // Its cause's finding carries the changes.
    if f.follows.is_some() {
        f.fix.clear();
        return;
    }
    let mut layers = Vec::new();
    all_layers(&config.model.layers, "model.layers", &mut layers);
    let mut fix: Vec<String> = Vec::new();
    let mut set = |k: String, v: String| {
        let change = format!("{k}={v}");
        if !fix.contains(&change) {
            fix.push(change);
        }
    };
    let he = "\"he_normal\"".to_string();
    let linears = || {
        layers
            .iter()
            .filter(|(_, l)| matches!(l, LayerSpec::Linear { .. }))
    };
    let init_of = |l: &LayerSpec| match l {
        LayerSpec::Linear { init, .. } => *init,
        _ => None,
    };
    match f.problem {
        Problem::VanishingGradients => {
            for (k, l) in &layers {
                if matches!(l, LayerSpec::Sigmoid | LayerSpec::Tanh) {
                    set(format!("{k}.type"), "\"relu\"".into());
                }
            }
            for (k, _) in linears() {
                set(format!("{k}.init"), he.clone());
            }
        }
        Problem::ExplodingGradients | Problem::NonFinite => {
            for (k, l) in linears() {
                let fine = matches!(
                    init_of(l),
                    None | Some(
                        InitSpec::HeNormal
                            | InitSpec::HeUniform
                            | InitSpec::XavierNormal
                            | InitSpec::XavierUniform
                    )
                );
                if !fine {
                    set(format!("{k}.init"), he.clone());
                }
            }
            set("train.clip_grad_norm".into(), "1.0".into());
        }
        Problem::DeadRelu => {
            // The layer a sparsity penalty pushes to zero: the penalty, not the activation,
            // is what to change (a leaky unit would only trade the zeros for small values).
            let penalized = config
                .train
                .sparsity
                .as_ref()
                .filter(|s| f.names.contains(&format!("model.layers[{}]", s.layer)));
            if let Some(sparsity) = penalized {
                explain_silenced_code(f, sparsity);
                set(
                    "train.sparsity.weight".into(),
                    number(sparsity.weight / 10.0),
                );
                f.lr_factor = None;
            }
            for key in f.names.iter().filter(|_| penalized.is_none()) {
                set(format!("{key}.type"), "\"leaky_relu\"".into());
                if let Some((k, LayerSpec::Linear { bias_init, .. })) = linear_before(&layers, key)
                    && bias_init.is_some()
                {
                    set(format!("{k}.bias_init"), "\"zeros\"".into());
                }
            }
        }
        Problem::SaturatedUnits => {
            if config.data.scaling == Scaling::None {
                let scaling = f.scaling.unwrap_or(Scaling::Standardize);
                set("data.scaling".into(), scaling_toml(scaling));
            }
            for key in &f.names {
                if let Some((k, _)) = linear_before(&layers, key) {
                    set(format!("{k}.init"), "\"xavier_normal\"".into());
                }
            }
        }
        Problem::Symmetry => {
            for key in &f.names {
                set(format!("{key}.init"), he.clone());
            }
        }
        Problem::UnscaledInputs => {
            let scaling = f.scaling.unwrap_or(Scaling::Standardize);
            set("data.scaling".into(), scaling_toml(scaling));
            // Plain gradient descent's stable step is about 2/λ_max, and λ_max of a linear
            // layer's loss scales with the inputs' second moment: scaling a feature of scale
            // s down to 1 lowers it by about s², so the step may grow as much (adaptive
            // optimizers rescale their steps themselves).
            if matches!(
                config.optimizer,
                OptimizerSpec::Sgd { .. } | OptimizerSpec::DeltaBarDelta { .. }
            ) {
                let shrink = match scaling {
                    Scaling::Divide(d) => d,
                    _ => f.value,
                };
                let factor = (shrink * shrink).clamp(1.0, 1e6);
                set(
                    "optimizer.lr".into(),
                    number(config.optimizer.lr() * factor),
                );
            }
        }
        Problem::UnscaledTargets => set("data.scale_target".into(), "true".into()),
        Problem::Overfitting => {
            let train = &config.train;
            match &train.early_stopping {
                None => set("train.early_stopping".into(), "{ patience = 5 }".into()),
                Some(e) if !e.restore_best => {
                    set("train.early_stopping.restore_best".into(), "true".into());
                }
                Some(_) => {}
            }
            if train.l2 == 0.0 && config.optimizer.weight_decay() == 0.0 {
                set("train.l2".into(), "0.0001".into());
            }
        }
        Problem::IgnoredClasses => match &config.loss {
            // The default loss of a classifier is cross-entropy, without a [loss] table.
            None => {
                set("loss.type".into(), "\"cross_entropy\"".into());
                set("loss.class_weights".into(), "\"balanced\"".into());
            }
            Some(LossSpec::CrossEntropy {
                class_weights: None | Some(Weighting::Given(_)),
                ..
            }) => set("loss.class_weights".into(), "\"balanced\"".into()),
            Some(
                LossSpec::BinaryCrossEntropy {
                    pos_weight: None | Some(Weighting::Given(_)),
                }
                | LossSpec::BinaryCrossEntropyWithLogits {
                    pos_weight: None | Some(Weighting::Given(_)),
                },
            ) => set("loss.pos_weight".into(), "\"balanced\"".into()),
            // Balanced already: the remedy's other half (measure by balanced accuracy) and
            // more capacity or training are for the user to weigh.
            Some(_) => {}
        },
        // The learning rate is the whole fix (below).
        Problem::LearningRateTooSmall | Problem::LearningRateTooLarge | Problem::Overconfidence => {
        }
        // These findings come with their changes from their rules (a GAN's: `gan::doctor`).
        Problem::DiscriminatorWins
        | Problem::ModeCollapse
        | Problem::PartialModeCollapse
        | Problem::VanishingThroughTime => {
            return;
        }
    }
    if let Some(factor) = f.lr_factor {
        set(
            "optimizer.lr".into(),
            number(config.optimizer.lr() * factor),
        );
    }
    f.fix = fix;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_config_keys() {
        assert_eq!(config_key("3"), "model.layers[3]");
        assert_eq!(config_key("1.block.0"), "model.layers[1].layers[0]");
        assert_eq!(config_key("1.projection"), "model.layers[1] (projection)");
        assert_eq!(number(1e-7 * 1e4), "0.001");
        assert_eq!(number(1.0), "1.0");
    }
}

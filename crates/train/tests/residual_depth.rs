//! Skip connections against depth: the 22-layer residual MLP of `examples/digits_residual.toml`
//! trains; the same layers without the skip connections (the same initialization: each block's
//! second linear map starts small) pass almost no signal or gradient through 10 blocks, and the
//! doctor says so.

use nabla_train::config::{self, LayerSpec};
use nabla_train::doctor::Problem;
use nabla_train::doctor::probe::probe;
use nabla_train::experiment::prepare;
use std::path::Path;

fn unrolled(layers: &[LayerSpec]) -> Vec<LayerSpec> {
    layers
        .iter()
        .flat_map(|l| match l {
            LayerSpec::Residual { layers, .. } => unrolled(layers),
            other => vec![other.clone()],
        })
        .collect()
}

#[test]
fn a_deep_residual_net_trains_where_the_same_plain_net_does_not() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/digits_residual.toml");
    let mut residual = config::load(&path, &["train.epochs=15".into()]).unwrap();
    residual.config.train.early_stopping = None;
    let mut plain = residual.clone();
    plain.config.model.layers = unrolled(&residual.config.model.layers);
    assert_eq!(plain.config.model.layers.len(), 1 + 10 * 3 + 2);
    let accuracy = |l: &config::Located| {
        let mut exp = prepare(l).unwrap();
        let h = exp.fit().unwrap();
        h.epochs.last().unwrap().valid.as_ref().unwrap()["accuracy"]
    };
    let (with_skips, without) = (accuracy(&residual), accuracy(&plain));
    eprintln!("validation accuracy after 15 epochs: residual {with_skips:.4}, plain {without:.4}");
    assert!(with_skips > 0.9, "residual: {with_skips}");
    assert!(without < 0.5, "plain: {without}");
    // The doctor sees why: the gradient vanishes on its way down the plain stack.
    let d = probe(&plain, 5).unwrap();
    assert!(
        d.findings
            .iter()
            .any(|f| f.problem == Problem::VanishingGradients),
        "{:?}",
        d.findings
    );
    assert!(probe(&residual, 5).unwrap().findings.is_empty());
}

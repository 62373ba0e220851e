//! Config checking: every mistake is caught before training, with the file, line, key and (for
//! unknown names) the closest valid one.

use nabla_nn::loss::Loss;
use nabla_train::config::{self, Config, LayerSpec, OptimizerSpec, load_str, load_text_at};
use nabla_train::experiment::prepare;
use std::path::{Path, PathBuf};

fn digits_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits")
}

/// A digits config with `model` as its layers section.
fn digits(extra: &str) -> String {
    let dir = digits_dir();
    format!(
        "seed = 0\n[data]\ntrain = {:?}\ntarget = \"digit\"\nscaling = \"standardize\"\n{extra}",
        dir.join("train.csv")
    )
}

const MLP: &str = "[[model.layers]]\ntype = \"linear\"\nunits = 32\n\
                   [[model.layers]]\ntype = \"relu\"\n\
                   [[model.layers]]\ntype = \"linear\"\nunits = 10\n";

fn error_of(text: &str) -> String {
    match load_str(text, Some(Path::new("my.toml")), &[]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

/// The error of building (data read, layers checked) a config that parses.
fn build_error_of(text: &str, overrides: &[String]) -> String {
    let l = load_str(text, Some(Path::new("my.toml")), overrides).expect("parses");
    match prepare(&l) {
        Ok(_) => panic!("expected a build error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_complete_config_parses_with_its_defaults() {
    let l = load_str(&digits(MLP), None, &[]).unwrap();
    let c: &Config = &l.config;
    assert_eq!(c.model.layers.len(), 3);
    assert_eq!(
        c.model.layers[0],
        LayerSpec::Linear {
            units: 32,
            bias: true,
            init: None,
            bias_init: None
        }
    );
    assert!(matches!(c.optimizer, OptimizerSpec::Adam { lr, .. } if lr == 1e-3));
    assert_eq!(c.train.epochs, 20);
    assert_eq!(c.data.valid_split, 0.15);
    assert!(c.loss.is_none());
}

#[test]
fn the_resolved_config_reads_back_identically() {
    let text = digits(&format!(
        "{MLP}[optimizer]\ntype = \"sgd\"\nlr = 0.1\nmomentum = 0.9\nnesterov = true\n\
         [schedule]\ntype = \"step\"\nstep_size = 5\n[loss]\ntype = \"cross_entropy\"\n\
         label_smoothing = 0.1\n[train]\nearly_stopping = {{ patience = 3 }}\n"
    ));
    let first = load_str(&text, None, &[]).unwrap().config;
    let written = toml::to_string(&first).unwrap();
    let again = load_str(&written, None, &[]).unwrap().config;
    assert_eq!(first, again, "{written}");
}

#[test]
fn unknown_keys_name_the_valid_ones_and_the_closest() {
    let e = error_of(&format!("sed = 1\n{}", digits(MLP)));
    assert!(e.starts_with("my.toml:1:1: "), "{e}");
    assert!(e.contains("unknown field `sed`"), "{e}");
    assert!(e.contains("did you mean `seed`?"), "{e}");

    let e = error_of(&digits(&format!(
        "{MLP}[optimizer]\ntype = \"adam\"\nlrr = 0.1\n"
    )));
    let line = digits(MLP).lines().count() + 3;
    assert!(
        e.starts_with(&format!("my.toml:{line}:1: optimizer.lrr: ")),
        "{e}"
    );
    assert!(e.contains("did you mean `lr`?"), "{e}");
}

#[test]
fn unknown_layer_and_optimizer_types_suggest_the_closest() {
    let e = error_of(&digits("[[model.layers]]\ntype = \"lineer\"\nunits = 3\n"));
    assert!(
        e.contains("model.layers[0].type: unknown type `lineer`"),
        "{e}"
    );
    assert!(e.contains("did you mean `linear`?"), "{e}");
    let e = error_of(&digits(&format!("{MLP}[optimizer]\ntype = \"adamm\"\n")));
    assert!(e.contains("optimizer.type"), "{e}");
    assert!(e.contains("did you mean `adam`?"), "{e}");
}

#[test]
fn wrong_types_and_values_name_the_key_and_line() {
    let base = digits(MLP);
    let n = base.lines().count();
    let e = error_of(&format!(
        "{base}[optimizer]\ntype = \"adam\"\nlr = \"fast\"\n"
    ));
    assert!(e.starts_with(&format!("my.toml:{}:", n + 3)), "{e}");
    assert!(
        e.contains("optimizer.lr: invalid type: string \"fast\""),
        "{e}"
    );

    let e = error_of(&digits("[[model.layers]]\ntype = \"linear\"\nunits = -3\n"));
    assert!(e.contains("model.layers[0].units"), "{e}");
    assert!(e.contains("-3"), "{e}");

    let e = error_of(&digits("[[model.layers]]\ntype = \"relu\"\nalpha = 2\n"));
    assert!(e.contains("model.layers[0]"), "{e}");
    assert!(e.contains("takes no options"), "{e}");

    let e = error_of("seed = 1\n[data\n");
    assert!(
        e.starts_with("my.toml:2:"),
        "a syntax error names its line: {e}"
    );
}

#[test]
fn layers_that_do_not_fit_the_data_are_caught_with_the_shapes() {
    let text = digits(
        "[[model.layers]]\ntype = \"linear\"\nunits = 32\n[[model.layers]]\ntype = \"relu\"\n\
         [[model.layers]]\ntype = \"linear\"\nunits = 5\n",
    );
    let e = build_error_of(&text, &[]);
    assert!(e.contains("model.layers[2]"), "{e}");
    assert!(e.contains("[batch, 64] to [batch, 5]"), "{e}");
    assert!(e.contains("10 outputs, one per class"), "{e}");
    assert!(e.contains("units = 10"), "{e}");
    let line = text.lines().position(|l| l == "units = 5").unwrap();
    assert!(e.starts_with(&format!("my.toml:{}:", line - 1)), "{e}");
}

#[test]
fn a_softmax_before_cross_entropy_is_an_error() {
    let e = build_error_of(
        &digits(&format!("{MLP}[[model.layers]]\ntype = \"softmax\"\n")),
        &[],
    );
    assert!(e.contains("model.layers[3]"), "{e}");
    assert!(e.contains("remove this softmax"), "{e}");
}

#[test]
fn a_regression_loss_on_classes_is_an_error() {
    let e = build_error_of(&digits(&format!("{MLP}[loss]\ntype = \"mse\"\n")), &[]);
    assert!(e.contains("loss.type"), "{e}");
    assert!(
        e.contains("regression loss on a classification target"),
        "{e}"
    );
}

#[test]
fn optimizer_and_doctor_ranges_are_checked_with_their_key() {
    let e = build_error_of(
        &digits(&format!("{MLP}[optimizer]\ntype = \"sgd\"\nlr = -1.0\n")),
        &[],
    );
    assert!(
        e.contains("optimizer: SGD: lr must be finite and >= 0, got -1"),
        "{e}"
    );
    let e = build_error_of(
        &digits(&format!(
            "{MLP}[optimizer]\ntype = \"sgd\"\nlr = 0.1\nmomentum = 1.5\n"
        )),
        &[],
    );
    assert!(
        e.contains("optimizer: SGD: momentum must be in [0, 1], got 1.5"),
        "{e}"
    );
    let e = build_error_of(&digits(MLP), &["diagnostics.every=0".into()]);
    assert!(e.contains("diagnostics.every: must be at least 1"), "{e}");
}

#[test]
fn overrides_change_values_and_their_errors_say_so() {
    let text = digits(MLP);
    let l = load_str(
        &text,
        None,
        &[
            "optimizer.lr=0.01".into(),
            "model.layers[0].units=64".into(),
            "seed=7".into(),
        ],
    )
    .unwrap();
    assert!(matches!(l.config.optimizer, OptimizerSpec::Adam { lr, .. } if lr == 0.01));
    assert!(matches!(
        l.config.model.layers[0],
        LayerSpec::Linear { units: 64, .. }
    ));
    assert_eq!(l.config.seed, 7);
    // The dotted form of a list index works too.
    let l = load_str(&text, None, &["model.layers.2.units=10".into()]).unwrap();
    assert!(matches!(
        l.config.model.layers[2],
        LayerSpec::Linear { units: 10, .. }
    ));

    let err = load_str(&text, None, &["optimizer.lr=fast".into()]).unwrap_err();
    let e = err.to_string();
    assert!(e.contains("optimizer.lr"), "{e}");
    assert!(e.contains("--set"), "{e}");
    let e = load_str(&text, None, &["model.layers[9].units=3".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("no item 9 (the list has 3)"), "{e}");
    let e = load_str(&text, None, &["nokey".into()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected key=value"), "{e}");

    let e = build_error_of(&text, &["model.layers[2].units=4".into()]);
    assert!(e.contains("(set on the command line)"), "{e}");
}

#[test]
fn data_paths_are_relative_to_the_config_and_missing_files_are_named() {
    let l = load_text_at(
        "[data]\ntrain = \"nowhere/train.csv\"\n[[model.layers]]\ntype = \"linear\"\nunits = 1\n",
        Path::new("/some/dir/cfg.toml"),
        &[],
    )
    .unwrap();
    assert_eq!(
        l.config.data.train,
        PathBuf::from("/some/dir/nowhere/train.csv")
    );
    let e = match prepare(&l) {
        Ok(_) => panic!("the file does not exist"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("/some/dir/nowhere/train.csv"), "{e}");
    let e = config::load(Path::new("/no/such/config.toml"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/no/such/config.toml: cannot read the config"),
        "{e}"
    );
}

#[test]
fn a_residual_block_must_keep_the_width_or_project() {
    let block = "[[model.layers]]\ntype = \"residual\"\nlayers = [{ type = \"linear\", units = 16 }, { type = \"relu\" }]\n";
    let rest = "[[model.layers]]\ntype = \"linear\"\nunits = 10\n";
    let e = build_error_of(&digits(&format!("{block}{rest}")), &[]);
    assert!(e.contains("model.layers[0]"), "{e}");
    assert!(e.contains("maps [64] to [16]"), "{e}");
    let ok = digits(&format!("{block}projection = true\n{rest}"));
    let l = load_str(&ok, None, &[]).unwrap();
    assert!(prepare(&l).is_ok());
    // A bad key inside the block names its full path.
    let e = error_of(&digits(
        "[[model.layers]]\ntype = \"residual\"\nlayers = [{ type = \"linear\", unit = 16 }]\n",
    ));
    assert!(e.contains("model.layers[0].layers[0].unit"), "{e}");
}

#[test]
fn every_shipped_example_config_builds() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let l = config::load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            let built = if l.config.gan.is_some() {
                nabla_train::gan::run::prepare(&l).map(drop)
            } else {
                prepare(&l).map(drop)
            };
            if let Err(e) = built {
                panic!("{}: {e}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 4, "{seen} example configs");
}

#[test]
fn a_model_too_large_for_memory_is_an_error_not_an_abort() {
    // 64 inputs x 10^10 units: 6.4e11 weights, about 10 TB to train; no machine here has it.
    let err = build_error_of(&digits(MLP), &["model.layers[0].units=10000000000".into()]);
    assert!(err.contains("model.layers[0]"), "{err}");
    assert!(err.contains("64 -> 10000000000"), "{err}");
    assert!(err.contains("GB of memory available"), "{err}");
    // The same inside a residual block, where the widths are counted too.
    let text = digits(
        "[[model.layers]]\ntype = \"residual\"\nprojection = true\n\
         layers = [{ type = \"linear\", units = 10000000000 }]\n\
         [[model.layers]]\ntype = \"linear\"\nunits = 10\n",
    );
    let err = build_error_of(&text, &[]);
    assert!(err.contains("model.layers[0].layers[0]"), "{err}");
}

#[test]
fn image_layers_check_their_shapes() {
    let conv = "[[model.layers]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\n";
    let head = |layers: &str| {
        digits(&format!(
            "{layers}[[model.layers]]\ntype = \"flatten\"\n[[model.layers]]\ntype = \"linear\"\nunits = 10\n"
        ))
    };
    // A convolution on flat rows: reshape first.
    let e = build_error_of(&head(conv), &[]);
    assert!(
        e.contains("model.layers[0]: conv2d needs [channels, height, width]"),
        "{e}"
    );
    assert!(e.contains("\"reshape\""), "{e}");
    // A reshape that does not hold the row's 64 values.
    let reshape = |s: &str| format!("[[model.layers]]\ntype = \"reshape\"\nshape = {s}\n");
    let e = build_error_of(&head(&reshape("[1, 8, 7]")), &[]);
    assert!(
        e.contains("model.layers[0].shape: each example has 64 values"),
        "{e}"
    );
    // A window larger than the image.
    let e = build_error_of(
        &head(&(reshape("[1, 8, 8]") + "[[model.layers]]\ntype = \"max_pool2d\"\nkernel = 9\n")),
        &[],
    );
    assert!(
        e.contains("model.layers[1]") && e.contains("does not fit"),
        "{e}"
    );
    // A linear layer straight after a convolution: flatten first.
    let text = digits(
        &(reshape("[1, 8, 8]") + conv + "[[model.layers]]\ntype = \"linear\"\nunits = 10\n"),
    );
    let e = build_error_of(&text, &[]);
    assert!(
        e.contains(
            "model.layers[2]: a linear layer needs flat inputs, but each example is [4, 6, 6]"
        ),
        "{e}"
    );
    // And a well-formed stack builds: 8x8 -> conv 3x3 -> [4, 6, 6] -> pool 2 -> [4, 3, 3].
    let ok = head(
        &(reshape("[1, 8, 8]") + conv + "[[model.layers]]\ntype = \"max_pool2d\"\nkernel = 2\n"),
    );
    let l = load_str(&ok, None, &[]).unwrap();
    let exp = prepare(&l).unwrap();
    let params: usize = nabla_nn::ModuleExt::parameter_count(&exp.model);
    assert_eq!(params, 4 * 9 + 4 + 36 * 10 + 10);
    // Grouped: a second convolution 4 -> 8 in 2 groups reads 2 channels per filter.
    let grouped = "[[model.layers]]\ntype = \"conv2d\"\nfilters = 8\nkernel = 2\ngroups = 2\n";
    let ok = head(&(reshape("[1, 8, 8]") + conv + grouped));
    let exp = prepare(&load_str(&ok, None, &[]).unwrap()).unwrap();
    let params: usize = nabla_nn::ModuleExt::parameter_count(&exp.model);
    assert_eq!(params, (4 * 9 + 4) + (8 * 2 * 4 + 8) + 8 * 5 * 5 * 10 + 10);
    let bad = head(&(reshape("[1, 8, 8]") + conv + &grouped.replace("groups = 2", "groups = 3")));
    let e = build_error_of(&bad, &[]);
    assert!(
        e.contains("model.layers[2].groups") && e.contains("input channels (4)"),
        "{e}"
    );
}

#[test]
fn batch_norm_is_per_feature_on_flat_inputs_and_per_channel_on_images() {
    let layer = |t: &str| format!("[[model.layers]]\ntype = \"{t}\"\n");
    let text = digits(
        &("[[model.layers]]\ntype = \"reshape\"\nshape = [1, 8, 8]\n".to_string()
            + "[[model.layers]]\ntype = \"conv2d\"\nfilters = 4\nkernel = 3\n"
            + &layer("batch_norm")
            + &layer("relu")
            + &layer("flatten")
            + "[[model.layers]]\ntype = \"linear\"\nunits = 10\n"
            + &layer("batch_norm")),
    );
    let exp = prepare(&load_str(&text, None, &[]).unwrap()).unwrap();
    let buffers: Vec<(String, Vec<usize>)> = nabla_nn::ModuleExt::named_buffers(&exp.model)
        .into_iter()
        .map(|(n, v)| (n, v.shape().dims().to_vec()))
        .collect();
    let want = |i: usize, c: usize| {
        [
            (format!("{i}.running_mean"), vec![c]),
            (format!("{i}.running_var"), vec![c]),
            (format!("{i}.num_batches_tracked"), vec![]),
        ]
    };
    assert_eq!(buffers, [want(2, 4), want(6, 10)].concat());
    let kinds: Vec<String> = nabla_nn::Module::children(&exp.model)
        .iter()
        .map(|(_, m)| m.describe())
        .collect();
    assert_eq!(
        (kinds[2].as_str(), kinds[6].as_str()),
        ("BatchNorm2d(4)", "BatchNorm1d(10)")
    );
    // A [time, units] sequence has no channel axis batch_norm could pick without surprise.
    let text = "seed = 0\n[data]\ntrain = \"../../data/italy_power_demand/train.csv\"\n\
                target = \"label\"\n"
        .to_string()
        + "[[model.layers]]\ntype = \"reshape\"\nshape = [24, 1]\n"
        + &layer("batch_norm");
    let l = load_text_at(
        &text,
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("x.toml")
            .as_path(),
        &[],
    );
    let e = prepare(&l.unwrap()).err().unwrap().to_string();
    assert!(
        e.contains("model.layers[1]: batch_norm normalizes [features] or [channels, height, width], but each example is [24, 1]"),
        "{e}"
    );
}

#[test]
fn recurrent_and_embedding_layers_check_their_shapes() {
    let layer = |s: &str| format!("[[model.layers]]\n{s}\n");
    let head =
        |layers: &str| digits(&(layers.to_string() + &layer("type = \"linear\"\nunits = 10")));
    // Each 64-pixel row read as 8 steps of 8 pixels by a 2-layer GRU: the parameter count is
    // PyTorch's: 3·h·(in + h) + 2·3·h per layer.
    let reshape = layer("type = \"reshape\"\nshape = [8, 8]");
    let gru = layer("type = \"gru\"\nunits = 5\nlayers = 2");
    let l = load_str(&head(&(reshape.clone() + &gru)), None, &[]).unwrap();
    let exp = prepare(&l).unwrap();
    let params = nabla_nn::ModuleExt::parameter_count(&exp.model);
    let per_layer = |inputs: usize| 15 * (inputs + 5) + 30;
    assert_eq!(params, per_layer(8) + per_layer(5) + 5 * 10 + 10);
    // output = "all" keeps the steps: a linear head maps each step, which gives a class per
    // step, not per example: the error says to flatten or keep the last step.
    let all = layer("type = \"lstm\"\nunits = 4\noutput = \"all\"");
    let e = build_error_of(&head(&(reshape.clone() + &all)), &[]);
    assert!(
        e.contains("model.layers[2]: the model maps [batch, 64] to [batch, 8, 10], but the data needs 10 outputs")
            && e.contains("flatten the steps (or use output = \"last\""),
        "{e}"
    );
    let flat = layer("type = \"flatten\"");
    let l = load_str(&head(&(reshape + &all + &flat)), None, &[]).unwrap();
    assert!(prepare(&l).is_ok());
    // Ids through an embedding: 64 ids per row (pixel counts 0-16 are valid ids of a table of
    // 17) -> [64, 3] -> an RNN -> [6].
    let emb = layer("type = \"embedding\"\nvocab = 17\ndim = 3");
    let rnn = layer("type = \"rnn\"\nunits = 6\nnonlinearity = \"relu\"");
    let text =
        head(&(emb.clone() + &rnn)).replace("scaling = \"standardize\"", "scaling = \"none\"");
    let l = load_str(&text, None, &[]).unwrap();
    let exp = prepare(&l).unwrap();
    assert_eq!(
        nabla_nn::ModuleExt::parameter_count(&exp.model),
        17 * 3 + (6 * (3 + 6) + 12) + 6 * 10 + 10
    );
    // An empty table is a config error.
    let small = emb.replace("vocab = 17", "vocab = 0");
    let e = build_error_of(&head(&(small + &rnn)), &[]);
    assert!(e.contains("vocab and dim must be at least 1"), "{e}");
}

#[test]
fn autoencoder_options_are_checked_with_their_keys() {
    let ae = |extra_data: &str, layers: &str, train: &str| {
        let dir = digits_dir();
        format!(
            "seed = 0\n[data]\ntrain = {:?}\ntarget = \"digit\"\nreconstruct = true\n{extra_data}\n\
             {layers}[train]\nepochs = 1\n{train}",
            dir.join("train.csv")
        )
    };
    let lin = |u: usize| format!("[[model.layers]]\ntype = \"linear\"\nunits = {u}\n");
    let act = |t: &str| format!("[[model.layers]]\ntype = \"{t}\"\n");
    let model = lin(16) + &act("relu") + &lin(64);
    // It builds: the output is as wide as the input, and the targets are the inputs.
    let exp = prepare(&load_str(&ae("", &model, ""), None, &[]).unwrap()).unwrap();
    assert_eq!(
        exp.data.train.x().to_vec_f64(),
        exp.data.train.y().to_vec_f64()
    );
    // A model whose output is not the input's width.
    let e = build_error_of(&ae("", &(lin(16) + &act("relu") + &lin(10)), ""), &[]);
    assert!(e.contains("64"), "{e}");
    // A classification loss, a standardized target, sequences: named, with the reason.
    let e = build_error_of(
        &(ae("", &model, "") + "[loss]\ntype = \"cross_entropy\"\n"),
        &[],
    );
    assert!(
        e.contains("loss.type") && e.contains("use mse, l1 or huber"),
        "{e}"
    );
    let e = build_error_of(&ae("scale_target = true", &model, ""), &[]);
    assert!(
        e.contains("data.scale_target") && e.contains("autoencoder"),
        "{e}"
    );
    // Sparsity: a layer that does not exist, kl on a non-sigmoid, a target for l1.
    let sparsity = |s: &str| format!("sparsity = {s}\n");
    let e = build_error_of(
        &ae(
            "",
            &model,
            &sparsity("{ layer = 7, penalty = \"l1\", weight = 1e-3 }"),
        ),
        &[],
    );
    assert!(
        e.contains("train.sparsity.layer") && e.contains("has 3 layers (0 to 2)"),
        "{e}"
    );
    let e = build_error_of(
        &ae(
            "",
            &model,
            &sparsity("{ layer = 1, penalty = \"kl\", weight = 3.0 }"),
        ),
        &[],
    );
    assert!(
        e.contains("train.sparsity.layer") && e.contains("not a sigmoid"),
        "{e}"
    );
    let e = build_error_of(
        &ae(
            "",
            &model,
            &sparsity("{ layer = 1, penalty = \"l1\", weight = 1e-3, target = 0.1 }"),
        ),
        &[],
    );
    assert!(e.contains("train.sparsity.target"), "{e}");
    let e = build_error_of(
        &ae(
            "",
            &model,
            &sparsity("{ layer = 1, penalty = \"l1\", weight = -1.0 }"),
        ),
        &[],
    );
    assert!(
        e.contains("train.sparsity.weight") && e.contains(">= 0"),
        "{e}"
    );
    let sig = lin(16) + &act("sigmoid") + &lin(64);
    let e = build_error_of(
        &ae(
            "",
            &sig,
            &sparsity("{ layer = 1, penalty = \"kl\", weight = 3.0, target = 1.5 }"),
        ),
        &[],
    );
    assert!(
        e.contains("train.sparsity.target") && e.contains("(0, 1)"),
        "{e}"
    );
    // Noise layers check their parameters.
    let noisy =
        |t: &str, param: &str| format!("[[model.layers]]\ntype = \"{t}\"\n{param}\n") + &model;
    let e = error_of(&ae("", &noisy("masking_noise", ""), ""));
    assert!(
        e.contains("model.layers[0]") && e.contains("missing field `p`"),
        "{e}"
    );
    let e = build_error_of(&ae("", &noisy("masking_noise", "p = 1.0"), ""), &[]);
    assert!(
        e.contains("model.layers[0].p") && e.contains("[0, 1)"),
        "{e}"
    );
    let e = build_error_of(&ae("", &noisy("gaussian_noise", "std = -0.5"), ""), &[]);
    assert!(
        e.contains("model.layers[0].std") && e.contains(">= 0"),
        "{e}"
    );
}

/// A text's examples are its characters: the options that shape tables are refused at their key.
#[test]
fn table_options_are_refused_with_a_text() {
    let dir = std::env::temp_dir().join(format!("nabla-text-options-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    std::fs::write(&text, "in the beginning was the word ".repeat(20)).unwrap();
    let config = |extra: &str| {
        format!(
            "seed = 0\n[data]\ntrain = {text:?}\ntext = {{ context = 8 }}\n{extra}\n\
             [[model.layers]]\ntype = \"embedding\"\nvocab = 14\ndim = 4\n\
             [[model.layers]]\ntype = \"lstm\"\nunits = 8\noutput = \"all\"\n\
             [[model.layers]]\ntype = \"linear\"\nunits = 14\n"
        )
    };
    if let Err(e) = prepare(&load_str(&config(""), None, &[]).unwrap()) {
        panic!("the plain text config: {e}");
    }
    for (extra, key) in [
        ("scaling = \"standardize\"", "data.scaling"),
        ("target = \"x\"", "data.target"),
        ("reconstruct = true", "data.reconstruct"),
    ] {
        let e = build_error_of(&config(extra), &[]);
        assert!(
            e.contains(&format!("{key}: does not apply with data.text")),
            "{extra}: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_classifier_with_one_class_is_an_error_naming_the_target() {
    // A target column with one value is a mistake in the data or in data.target: the model
    // would be right by construction (accuracy 1.0) and learn nothing.
    let dir = std::env::temp_dir().join(format!("nabla-one-class-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("one.csv");
    std::fs::write(&csv, "a,b,label\n1,2,yes\n3,4,yes\n5,6,yes\n7,8,yes\n").unwrap();
    let text = format!(
        "seed = 0\n[data]\ntrain = {csv:?}\nvalid_split = 0.0\n\
         [[model.layers]]\ntype = \"linear\"\nunits = 1\n"
    );
    let e = build_error_of(&text, &[]);
    assert!(
        e.contains("data.target")
            && e.contains("one.csv")
            && e.contains("`label` holds one class (yes) in all 4 rows"),
        "{e}"
    );
    // An autoencoder reads the same file: it has no classes to need.
    let autoencoder = text
        .replace("valid_split", "reconstruct = true\nvalid_split")
        .replace("units = 1", "units = 2");
    let l = load_str(&autoencoder, Some(Path::new("my.toml")), &[]).expect("parses");
    assert!(prepare(&l).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn balanced_loss_weights_come_from_the_training_split() {
    // The imbalanced tumours: 30 malignant (0), 285 benign (1); a stratified 30% held out.
    let train = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/tumour_texture/train.csv");
    let config = |units: usize, loss: &str| {
        format!(
            "seed = 0\n[data]\ntrain = {train:?}\ntarget = \"target\"\nscaling = \"standardize\"\n\
             valid_split = 0.3\nstratify = true\n\
             [[model.layers]]\ntype = \"linear\"\nunits = {units}\n[loss]\n{loss}\n"
        )
    };
    let counts = |exp: &nabla_train::experiment::Experiment| -> [f64; 2] {
        let y = exp.data.train.y().to_dtype(nabla_core::DType::F64).unwrap();
        let y = y.to_vec::<f64>().unwrap();
        let positives = y.iter().filter(|&&v| v == 1.0).count() as f64;
        [y.len() as f64 - positives, positives]
    };
    let ce = config(2, "type = \"cross_entropy\"\nclass_weights = \"balanced\"");
    let exp = prepare(&load_str(&ce, None, &[]).unwrap()).unwrap();
    let [n0, n1] = counts(&exp);
    assert_eq!((n0, n1), (21.0, 199.0));
    // w_k = n / (C n_k): each class then weighs n / C in all.
    let want = vec![(n0 + n1) / (2.0 * n0), (n0 + n1) / (2.0 * n1)];
    let Loss::CrossEntropy(got) = &exp.train_config.loss else {
        panic!("{:?}", exp.train_config.loss)
    };
    assert_eq!(got.class_weights.as_deref(), Some(want.as_slice()));
    // The run's config keeps the word, not the numbers: another split would get its own.
    let resolved = toml::to_string(&exp.config).unwrap();
    assert!(
        resolved.contains("class_weights = \"balanced\""),
        "{resolved}"
    );
    for kind in ["binary_cross_entropy_with_logits", "binary_cross_entropy"] {
        let mut text = config(1, &format!("type = \"{kind}\"\npos_weight = \"balanced\""));
        if kind == "binary_cross_entropy" {
            text += "[[model.layers]]\ntype = \"sigmoid\"\n";
        }
        let exp = prepare(&load_str(&text, None, &[]).unwrap()).unwrap();
        let pos_weight = match exp.train_config.loss {
            Loss::BinaryCrossEntropy { pos_weight } => pos_weight,
            Loss::BinaryCrossEntropyWithLogits { pos_weight } => pos_weight,
            ref other => panic!("{other:?}"),
        };
        // n_negative / n_positive: here the positives (benign) are the many, so below 1.
        assert_eq!(pos_weight, Some(n0 / n1), "{kind}");
    }
    // Given numbers pass through; integers read as numbers.
    let exp = prepare(
        &load_str(
            &config(
                1,
                "type = \"binary_cross_entropy_with_logits\"\npos_weight = 3",
            ),
            None,
            &[],
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        exp.train_config.loss,
        Loss::BinaryCrossEntropyWithLogits {
            pos_weight: Some(3.0)
        }
    );

    // Mistakes name the key.
    let e = error_of(&config(
        2,
        "type = \"cross_entropy\"\nclass_weights = \"even\"",
    ));
    assert!(
        e.contains("loss.class_weights") && e.contains("expected \"balanced\" or the weights"),
        "{e}"
    );
    let e = build_error_of(
        &config(
            1,
            "type = \"binary_cross_entropy_with_logits\"\npos_weight = -2.0",
        ),
        &[],
    );
    assert!(
        e.contains("loss.pos_weight: must be finite and >= 0, got -2"),
        "{e}"
    );
    let e = build_error_of(
        &config(2, "type = \"cross_entropy\"\nclass_weights = [1.0]"),
        &[],
    );
    assert!(
        e.contains("loss.class_weights: needs 2 finite weights >= 0 (one per class)"),
        "{e}"
    );
    let e = error_of(&config(
        1,
        "type = \"binary_cross_entropy_with_logits\"\nclass_weights = \"balanced\"",
    ));
    assert!(
        e.contains("class_weights") && e.contains("pos_weight"),
        "{e}"
    );
}

//! The convergence doctor on deliberately broken configs (`examples/broken/`): it names the
//! right problem and layer, and after its own remedy (`--fixed`) the problem is gone and the
//! loss falls. Healthy runs get a clean bill.

mod common;

use common::{nabla_ok, read_json, read_json_lines, repo, run, scratch};
use std::path::Path;
use std::process::Command;

/// `nabla doctor CONFIG --json [extra]`, parsed.
fn doctor(config: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run(Command::new(env!("CARGO_BIN_EXE_nabla"))
        .arg("doctor")
        .arg(config)
        .arg("--json")
        .args(extra));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn problems(d: &serde_json::Value) -> Vec<String> {
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["problem"].as_str().unwrap().to_string())
        .collect()
}

/// The strings under `field` of the first finding of `problem`.
fn finding_strings(d: &serde_json::Value, problem: &str, field: &str) -> Vec<String> {
    let f = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["problem"] == problem)
        .unwrap_or_else(|| panic!("no {problem} in {d}"));
    f[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// The config names of the layers of the first finding of `problem`.
fn layers_of(d: &serde_json::Value, problem: &str) -> Vec<String> {
    finding_strings(d, problem, "names")
}

/// The config changes (`key=value`) of the first finding of `problem`.
fn fix_of(d: &serde_json::Value, problem: &str) -> Vec<String> {
    finding_strings(d, problem, "fix")
}

fn losses(d: &serde_json::Value) -> Vec<f64> {
    d["losses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_f64().unwrap())
        .collect()
}

/// Diagnoses `examples/broken/NAME.toml`, checks the finding, applies its remedy, and checks
/// that the fixed config is clean and its loss falls by at least 10% over the probe; returns
/// the diagnosis.
fn broken(name: &str, problem: &str, layer: Option<&str>) -> serde_json::Value {
    let dir = scratch(name);
    let fixed = dir.join("fixed.toml");
    let config = repo().join(format!("examples/broken/{name}.toml"));
    let sick = doctor(&config, &["--fixed", fixed.to_str().unwrap()]);
    assert!(
        problems(&sick).contains(&problem.to_string()),
        "{name}: {sick}"
    );
    if let Some(layer) = layer {
        let names = layers_of(&sick, problem);
        assert!(names.iter().any(|n| n == layer), "{name}: {names:?}");
    }
    let well = doctor(&fixed, &[]);
    assert!(
        problems(&well).is_empty(),
        "{name} after its remedy: {well}"
    );
    assert!(well["diverged"].is_null(), "{name}: {well}");
    let l = losses(&well);
    assert!(
        l.len() >= 2 && l[l.len() - 1] < 0.9 * l[0],
        "{name}: loss {l:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    sick
}

/// The test-split metrics (`history.json`'s `test`) of `config` trained with the `--set`
/// changes `sets` on seeds 0-4, each run in its own folder under `dir`.
fn test_metrics_over_seeds(config: &Path, dir: &Path, sets: &[&str]) -> Vec<serde_json::Value> {
    (0..5)
        .map(|seed| {
            let seed = seed.to_string();
            let run = dir.join(format!("{}-{seed}", sets.join(",")));
            let (config, run_dir) = (config.to_str().unwrap(), run.to_str().unwrap());
            let mut args = vec!["train", "-q", config, "--seed", &seed, "--out", run_dir];
            for set in sets {
                args.extend(["--set", set]);
            }
            nabla_ok(&args);
            read_json(run.join("history.json"))["test"].clone()
        })
        .collect()
}

/// The mean of `metric` over `runs`' test metrics.
fn mean_of(runs: &[serde_json::Value], metric: &str) -> f64 {
    runs.iter()
        .map(|m| m[metric].as_f64().unwrap())
        .sum::<f64>()
        / runs.len() as f64
}

#[test]
fn relus_killed_by_too_large_steps_are_cured_by_the_rate_alone() {
    // The digits CNN with Adam at 100x its rate: the training log loss is worse than a
    // guess's from the first epoch, and two epochs later whole layers of ReLUs are dead.
    let dir = scratch("rate_kills_relus");
    let fixed = dir.join("fixed.toml");
    let config = repo().join("examples/digits_cnn.toml");
    let sick = doctor(
        &config,
        &[
            "--set",
            "optimizer.lr=0.1",
            "--fixed",
            fixed.to_str().unwrap(),
        ],
    );
    let found = problems(&sick);
    assert!(found.contains(&"learning_rate_too_large".into()), "{sick}");
    let dead: Vec<_> = sick["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["problem"] == "dead_relu")
        .collect();
    assert!(!dead.is_empty(), "{sick}");
    // They are the rate's doing: no leaky ReLUs, the rate's change is the whole fix, and
    // with it the CNN trains clean with its ReLUs.
    for f in dead {
        assert_eq!(f["follows"], "learning_rate_too_large", "{f}");
        assert!(f["fix"].is_null(), "{f}");
    }
    let text = std::fs::read_to_string(&fixed).unwrap();
    assert!(!text.contains("leaky_relu"), "{text}");
    let well = doctor(&fixed, &[]);
    assert!(problems(&well).is_empty(), "after the remedy: {well}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn vanishing_gradients_in_a_deep_sigmoid_net() {
    broken("vanishing", "vanishing_gradients", Some("model.layers[0]"));
}

#[test]
fn exploding_activations_and_the_first_nan_in_a_net_with_large_weights() {
    let config = repo().join("examples/broken/exploding.toml");
    let d = doctor(&config, &[]);
    assert!(d["diverged"].is_string(), "{d}");
    let p = problems(&d);
    assert_eq!(p[0], "non_finite", "{d}");
    // The NaN is traced to a linear layer deep in the stack, where the activations overflow.
    let at = &layers_of(&d, "non_finite")[0];
    assert!(at.starts_with("model.layers["), "{at}");
    // ... and, inside that layer, to the op: the matrix product overflowed f32.
    let cause = d["findings"][0]["cause"].as_str().unwrap();
    assert!(cause.contains("the first op to break: `matmul`"), "{cause}");
    assert!(p.contains(&"exploding_gradients".to_string()), "{d}");
    broken("exploding", "exploding_gradients", None);
}

#[test]
fn dead_relus_behind_a_large_negative_bias() {
    broken("dead_relu", "dead_relu", Some("model.layers[1]"));
}

#[test]
fn unscaled_house_areas() {
    let d = broken("unscaled", "unscaled_inputs", None);
    let fix = fix_of(&d, "unscaled_inputs");
    assert!(
        fix.contains(&"data.scaling=\"standardize\"".to_string()),
        "{fix:?}"
    );
}

#[test]
fn raw_pixels_are_divided_by_255_not_standardized() {
    // MNIST's IDX pixels as read (0-255): the remedy is the division that keeps black at 0,
    // and plain SGD's learning rate may grow by the curvature's factor, 255².
    let d = broken("unscaled_pixels", "unscaled_inputs", None);
    let fix = fix_of(&d, "unscaled_inputs");
    assert!(
        fix.contains(&"data.scaling={ divide = 255.0 }".to_string()),
        "{fix:?}"
    );
    let lr = fix
        .iter()
        .find_map(|c| c.strip_prefix("optimizer.lr="))
        .unwrap_or_else(|| panic!("no learning rate in {fix:?}"));
    let lr: f64 = lr.parse().unwrap();
    assert!((lr - 1e-6 * 255.0 * 255.0).abs() < 1e-3, "{lr}");
}

#[test]
fn a_learning_rate_of_1e_7_is_a_plateau() {
    broken("plateau", "learning_rate_too_small", None);
}

#[test]
fn all_zero_initialization_leaves_the_units_identical() {
    broken("symmetric", "symmetry", Some("model.layers[0]"));
}

#[test]
fn all_zero_filters_are_symmetric_not_dead() {
    // The digits CNN with both convolutions initialized to zero: every filter computes the
    // same (zero) output and gets the same gradient. The doctor names the two convolutions,
    // not the ReLUs after them that their zeros silence, and its remedy trains.
    let dir = scratch("symmetric_cnn");
    let fixed = dir.join("fixed.toml");
    let config = repo().join("examples/digits_cnn.toml");
    let sick = doctor(
        &config,
        &[
            "--set",
            "model.layers[1].init=\"zeros\"",
            "--set",
            "model.layers[4].init=\"zeros\"",
            "--fixed",
            fixed.to_str().unwrap(),
        ],
    );
    assert_eq!(problems(&sick), ["symmetry", "symmetry"], "{sick}");
    let layers: Vec<String> = sick["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["names"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, ["model.layers[1]", "model.layers[4]"]);
    let well = doctor(&fixed, &[]);
    assert!(problems(&well).is_empty(), "{well}");
    let l = losses(&well);
    assert!(l[l.len() - 1] < 0.5 * l[0], "loss {l:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tanh_saturated_by_large_inputs() {
    broken("saturated_tanh", "saturated_units", Some("model.layers[1]"));
}

#[test]
fn adam_at_a_hundred_times_its_rate_is_overconfident() {
    // Most digits right, a log loss worse than a uniform guess's: the doctor lowers the rate
    // to where the range test puts it (`nabla lr-find`, to 3 digits), and the fixed config's
    // probe is clean with a falling loss.
    let d = broken("overconfident", "overconfidence", None);
    assert_eq!(problems(&d), ["overconfidence"], "{d}");
    let config = repo().join("examples/broken/overconfident.toml");
    let sweep: serde_json::Value =
        serde_json::from_str(&nabla_ok(&["lr-find", config.to_str().unwrap(), "--json"])).unwrap();
    let suggested = sweep["suggested"].as_f64().unwrap();
    let fix = fix_of(&d, "overconfidence");
    let fixed_lr: f64 = match fix.as_slice() {
        [change] => change
            .strip_prefix("optimizer.lr=")
            .unwrap()
            .parse()
            .unwrap(),
        _ => panic!("{fix:?}"),
    };
    assert!(
        (fixed_lr / suggested - 1.0).abs() < 5e-3 && fixed_lr < 0.1 / 10.0,
        "fix {fixed_lr}, lr-find {suggested}"
    );

    // Over the config's 10 epochs, on the test file (seeds 0-4): the remedy keeps the
    // accuracy and brings the log loss below a uniform guess's, ln 10.
    let dir = scratch("overconfident_runs");
    let sick = test_metrics_over_seeds(&config, &dir, &["optimizer.lr=0.1"]);
    let fixed = test_metrics_over_seeds(&config, &dir, &[fix[0].as_str()]);
    let (sick_loss, fixed_loss) = (mean_of(&sick, "log_loss"), mean_of(&fixed, "log_loss"));
    let (sick_accuracy, fixed_accuracy) = (mean_of(&sick, "accuracy"), mean_of(&fixed, "accuracy"));
    assert!(
        sick_loss > 2.0 * 10f64.ln() && fixed_loss < 10f64.ln(),
        "log loss {sick_loss} -> {fixed_loss}"
    );
    assert!(
        fixed_accuracy > sick_accuracy,
        "accuracy {sick_accuracy} -> {fixed_accuracy}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sparsity_penalty_that_silences_the_code_is_lowered() {
    // An L1 weight of 1e-2 on the sparse autoencoder's 64-unit ReLU code silences almost all
    // of it. The finding names the penalty and lowers its weight, rather than swapping the
    // ReLU for a leaky one; with the lower weight, fewer code units are silent.
    let config = repo().join("examples/digits_sparse_autoencoder.toml");
    let dead_in_code = |d: &serde_json::Value| {
        d["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l[0] == "3")
            .map(|l| l[1]["dead_fraction"].as_f64().unwrap())
            .unwrap()
    };
    let sick = doctor(&config, &["--set", "train.sparsity.weight=1e-2"]);
    assert_eq!(layers_of(&sick, "dead_relu"), ["model.layers[3]"], "{sick}");
    assert_eq!(fix_of(&sick, "dead_relu"), ["train.sparsity.weight=0.001"]);
    let f = &sick["findings"][0];
    assert!(
        f["cause"].as_str().unwrap().contains("sparsity penalty"),
        "{f}"
    );
    let lowered = doctor(&config, &["--set", "train.sparsity.weight=1e-3"]);
    assert!(
        dead_in_code(&lowered) < dead_in_code(&sick) - 0.2,
        "{} -> {}",
        dead_in_code(&sick),
        dead_in_code(&lowered)
    );
}

#[test]
fn a_forecast_of_unscaled_targets_crawls_until_they_are_standardized() {
    // Sunspot numbers as the target: the doctor sets data.scale_target, and the fixed probe is
    // clean with a falling loss.
    let d = broken("unscaled_targets", "unscaled_targets", None);
    assert_eq!(problems(&d), ["unscaled_targets"], "{d}");
    assert_eq!(fix_of(&d, "unscaled_targets"), ["data.scale_target=true"]);
    // Over the full training (300 epochs, early stopping), the forecasts of the last 50
    // years improve with the remedy: test RMSE, mean of seeds 0-4.
    let config = repo().join("examples/broken/unscaled_targets.toml");
    let dir = scratch("unscaled_targets_runs");
    let rmse = |scaled: &str| mean_of(&test_metrics_over_seeds(&config, &dir, &[scaled]), "rmse");
    let (raw, scaled) = (
        rmse("data.scale_target=false"),
        rmse("data.scale_target=true"),
    );
    assert!(scaled < 0.9 * raw, "test RMSE {raw} -> {scaled}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_plain_rnn_that_must_remember_forty_steps_back_gets_an_open_gated_cell() {
    // The label is the sign of the first of 40 values: the error reaching the first step dies
    // out in the RNN. The doctor names the layer and swaps in an LSTM whose forget gate keeps
    // a tenth of the state over the 40 steps, σ(b)^40 = 0.1.
    let d = broken(
        "long_memory",
        "vanishing_through_time",
        Some("model.layers[1]"),
    );
    assert_eq!(problems(&d), ["vanishing_through_time"], "{d}");
    let fix = fix_of(&d, "vanishing_through_time");
    assert_eq!(
        fix,
        [
            "model.layers[1].type=\"lstm\"",
            "model.layers[1].forget_bias=2.8"
        ]
    );
    let sigmoid = |b: f64| 1.0 / (1.0 + (-b).exp());
    assert!((sigmoid(2.8).powi(40) - 0.1).abs() < 0.02);
    // Over the config's 30 epochs, test accuracy (seeds 0-4): the fix beats the RNN, and the
    // same LSTM with the gate at its usual zero bias stays at chance.
    let config = repo().join("examples/broken/long_memory.toml");
    let dir = scratch("long_memory_runs");
    let accuracy =
        |sets: &[&str]| mean_of(&test_metrics_over_seeds(&config, &dir, sets), "accuracy");
    let rnn = accuracy(&[]);
    let closed = accuracy(&[fix[0].as_str()]);
    let open = accuracy(&[fix[0].as_str(), fix[1].as_str()]);
    assert!(
        open > rnn + 0.03 && open > 0.93,
        "open LSTM {open} vs RNN {rnn}"
    );
    assert!(closed < 0.6, "LSTM with a closed forget gate {closed}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_autoencoders_saturated_output_is_not_a_finding() {
    // MNIST is mostly black background: the output sigmoid reconstructs it from its lower
    // tail (60% of the outputs there in the first epoch). That is the fit, not stuck units.
    let config = repo().join("examples/mnist_autoencoder.toml");
    let d = doctor(&config, &["--epochs", "2"]);
    assert!(
        !problems(&d).contains(&"saturated_units".to_string()),
        "{d}"
    );
}

#[test]
fn a_rare_class_the_model_ignores_is_weighed_up() {
    // The doctor names the ignored class, and its remedy leaves a clean probe whose loss falls.
    let d = broken("ignored_classes", "ignored_classes", None);
    assert_eq!(
        fix_of(&d, "ignored_classes"),
        [
            "loss.type=\"cross_entropy\"",
            "loss.class_weights=\"balanced\""
        ]
    );
    let f = &d["findings"][0];
    // Every validation tumour called benign: balanced accuracy exactly chance, 1/2.
    assert_eq!(f["value"].as_f64(), Some(0.5), "{f}");
    let config = repo().join("examples/broken/ignored_classes.toml");
    // A one-logit model with binary cross-entropy gets the positive class's weight instead.
    let binary = doctor(
        &config,
        &[
            "--set",
            "loss.type=\"binary_cross_entropy_with_logits\"",
            "--set",
            "model.layers[2].units=1",
        ],
    );
    assert_eq!(
        fix_of(&binary, "ignored_classes"),
        ["loss.pos_weight=\"balanced\""]
    );

    // Over the config's full 30 epochs the remedy tells the rare class better on the test
    // file (its own class mix, 42 malignant of 114): balanced accuracy, seeds 0-4.
    let dir = scratch("ignored_classes_runs");
    let (mut plain, mut weighted) = (0.0, 0.0);
    for seed in 0..5 {
        let seed = seed.to_string();
        for (weights, sum) in [(None, &mut plain), (Some("balanced"), &mut weighted)] {
            let run = dir.join(format!("{seed}-{}", weights.unwrap_or("plain")));
            let mut args = vec!["train", "-q", config.to_str().unwrap(), "--seed", &seed];
            let set = weights.map(|w| format!("loss.class_weights=\"{w}\""));
            if let Some(set) = &set {
                args.extend(["--set", "loss.type=\"cross_entropy\"", "--set", set]);
            }
            args.extend(["--out", run.to_str().unwrap()]);
            nabla_ok(&args);
            *sum += eval_on_test(&run)["balanced_accuracy"].as_f64().unwrap() / 5.0;
        }
    }
    assert!(
        weighted > plain + 0.03,
        "balanced {weighted} vs plain {plain}"
    );

    // A saved run keeps its training split's class counts, so that `eval` weighs the loss as
    // training did: Σ w_y (−log p_y) / Σ w_y with w_k = n / (2 n_k), from the probabilities
    // `predict` writes.
    let run = dir.join("0-balanced");
    let saved = read_json(run.join("preprocessing.json"));
    let counts: Vec<f64> = saved["class_counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_f64().unwrap())
        .collect();
    // 70% of 30 malignant and 285 benign rows (the stratified split).
    assert_eq!(counts, [21.0, 199.0]);
    let n: f64 = counts.iter().sum();
    let w: Vec<f64> = counts.iter().map(|c| n / (2.0 * c)).collect();
    let predictions = run.join("predictions.csv");
    nabla_ok(&[
        "predict",
        run.to_str().unwrap(),
        test_csv().to_str().unwrap(),
        "-o",
        predictions.to_str().unwrap(),
    ]);
    let truth: Vec<usize> = std::fs::read_to_string(test_csv())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let (mut total, mut weight) = (0.0, 0.0);
    for (line, &y) in std::fs::read_to_string(&predictions)
        .unwrap()
        .lines()
        .skip(1)
        .zip(&truth)
    {
        let p: f64 = line.split(',').nth(1 + y).unwrap().parse().unwrap();
        total -= w[y] * p.ln();
        weight += w[y];
    }
    let m = eval_on_test(&run);
    let (loss, log_loss) = (m["loss"].as_f64().unwrap(), m["log_loss"].as_f64().unwrap());
    assert!(
        (loss - total / weight).abs() < 1e-4 * loss,
        "{loss} vs {}",
        total / weight
    );
    assert!(
        (loss - log_loss).abs() > 0.01,
        "weighted {loss}, unweighted {log_loss}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn test_csv() -> std::path::PathBuf {
    repo().join("data/tumour_texture/test.csv")
}

/// `nabla eval RUN` on the tumours' test file: its metrics.
fn eval_on_test(run: &Path) -> serde_json::Value {
    let out = nabla_ok(&[
        "eval",
        run.to_str().unwrap(),
        test_csv().to_str().unwrap(),
        "--json",
    ]);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn healthy_runs_get_a_clean_bill() {
    // The probe, and full training (every epoch's findings in metrics.jsonl).
    let dir = scratch("healthy");
    for name in ["digits", "xor", "digits_residual"] {
        let config = repo().join(format!("examples/{name}.toml"));
        let d = doctor(&config, &[]);
        assert!(problems(&d).is_empty(), "{name}: {d}");
        let run = dir.join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .args(["train", "-q"])
            .arg(&config)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("doctor:"),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for r in read_json_lines(run.join("metrics.jsonl")) {
            let diag = &r["diagnostics"];
            assert!(diag["samples"].as_u64().unwrap() >= 1, "{name}: sampled");
            assert!(diag["findings"].is_null(), "{name}: {r}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn overfitting_is_found_in_training_unless_early_stopping_keeps_the_best() {
    // The 22-layer residual net learns the 1,500 digits by heart: its training loss falls
    // towards 0 while the validation loss leaves its best and stays 20% above it. Its config
    // stops early and restores the best weights (a clean bill in `healthy_runs_...`); without
    // the restoring, the doctor reports the overfitting and the fix restores it.
    let dir = scratch("overfitting");
    let config = repo().join("examples/digits_residual.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["train", "-q"])
        .arg(&config)
        .args([
            "--set",
            "train.early_stopping.restore_best=false",
            "--set",
            "train.early_stopping.patience=1000",
            "--set",
            "train.epochs=20",
            "--out",
        ])
        .arg(dir.join("run"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("doctor: overfitting"), "{stderr}");
    let findings: Vec<serde_json::Value> = read_json_lines(dir.join("run/metrics.jsonl"))
        .into_iter()
        .filter_map(|r| r["diagnostics"]["findings"].as_array().cloned())
        .flatten()
        .collect();
    let f = findings
        .iter()
        .find(|f| f["problem"] == "overfitting")
        .unwrap_or_else(|| panic!("{findings:?}"));
    // Reported once a 10-epoch window follows the best epoch, and with the value that crossed.
    assert!(f["epoch"].as_u64().unwrap() > 10, "{f}");
    assert!(f["value"].as_f64().unwrap() > 1.2, "{f}");
    let fix: Vec<&str> = f["fix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        fix.contains(&"train.early_stopping.restore_best=true"),
        "{fix:?}"
    );
    // The airline GRU's 14 validation windows rise 20% above their best and stay there, but so
    // few windows are not judged (stopping on them would worsen its test RMSE).
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(["train", "-q"])
        .arg(repo().join("examples/airline_gru.toml"))
        .arg("--out")
        .arg(dir.join("airline"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("doctor:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

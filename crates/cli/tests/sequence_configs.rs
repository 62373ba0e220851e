//! The shipped sequence configs trained through the binary: the LSTM on japanese_vowels
//! (variable-length series stored one row per frame, grouped and masked), the LSTM and the GRU on
//! italy_power_demand (fixed-length rows reshaped to sequences), then eval and predict on the
//! saved run, and the errors a sequence config can meet.

mod common;

use common::{rejects, rejects_overrides, repo, run, scratch, stdout};
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

fn test_accuracy(out: &std::process::Output) -> f64 {
    let summary: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    summary["test"]["accuracy"].as_f64().unwrap()
}

#[test]
fn the_lstm_reads_variable_length_vowels_and_the_saved_run_regroups_new_files() {
    let dir = scratch("vowels");
    let config = repo().join("examples/japanese_vowels_lstm.toml");
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir.join("run"))
        .arg(&config));
    // The data README: a working LSTM on the raw sequences reaches >= 0.95.
    let acc = test_accuracy(&out);
    assert!(acc >= 0.95, "test accuracy {acc}");

    // eval regroups the long test file with the saved sequence layout and padding length.
    let test_csv = repo().join("data/japanese_vowels/test.csv");
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(&test_csv));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let eval_acc = metrics["accuracy"].as_f64().unwrap();
    assert!(
        (eval_acc - acc).abs() < 1e-9,
        "eval {eval_acc} vs train {acc}"
    );
    // predict: one line per series (370), not per frame (5687).
    let pred = dir.join("pred.csv");
    run(nabla()
        .arg("predict")
        .arg(dir.join("run"))
        .arg(&test_csv)
        .arg("-o")
        .arg(&pred));
    let lines = std::fs::read_to_string(&pred).unwrap().lines().count();
    assert_eq!(lines, 370 + 1, "a header and one row per series");

    // A later file with a series longer than the model reads: named, with the remedy.
    let long = dir.join("long.csv");
    let mut text = String::from("series_id,t,c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11,speaker\n");
    for t in 0..33 {
        text.push_str(&format!("7,{t},1,2,3,4,5,6,7,8,9,10,11,12,3\n"));
    }
    std::fs::write(&long, text).unwrap();
    let err = rejects(nabla().arg("eval").arg(dir.join("run")).arg(&long));
    assert!(
        err.contains("long.csv: sequence 7 (from line 2) has 33 steps, more than the 32")
            && err.contains("max_steps"),
        "{err}"
    );
}

#[test]
fn the_gated_cells_classify_italian_power_days() {
    let dir = scratch("italy");
    for config in ["italy_power_lstm", "italy_power_gru"] {
        let out = run(nabla()
            .args(["train", "-q", "--json", "--out"])
            .arg(dir.join(config))
            .arg(repo().join(format!("examples/{config}.toml"))));
        // The data README's references: LogisticRegression 0.9631, MLP 0.9535, 1-NN about 0.955.
        let acc = test_accuracy(&out);
        assert!(acc >= 0.945, "{config}: test accuracy {acc}");
    }
}

#[test]
fn sequence_config_errors_name_the_key_and_the_remedy() {
    let dir = scratch("seq-errors");
    let vowels = repo().join("examples/japanese_vowels_lstm.toml");
    let italy = repo().join("examples/italy_power_lstm.toml");
    let cases: [(&std::path::Path, &[&str], &str); 5] = [
        (
            &vowels,
            &["data.sequence.id=\"speaker_id\""],
            "data.sequence.id names column \"speaker_id\"",
        ),
        (
            &vowels,
            &[
                "model.layers[0].forget_bias=1.0",
                "model.layers[0].type=\"rnn\"",
            ],
            "model.layers[0].forget_bias",
        ),
        (
            &vowels,
            &["model.layers[0].nonlinearity=\"relu\""],
            "applies to type = \"rnn\" only",
        ),
        (
            &vowels,
            &["data.scaling={ pca_whiten = { components = 4 } }"],
            "pca_whiten",
        ),
        (
            &italy,
            &["model.layers[0].shape=[24]"],
            "add { type = \"reshape\", shape = [24, 1] } before it",
        ),
    ];
    for (i, (config, sets, want)) in cases.iter().enumerate() {
        let err = rejects_overrides(config, &dir.join(format!("run{i}")), sets);
        assert!(err.contains(want), "case {i}: {err}");
        // Located in the config that set it.
        let config_name = config.file_name().unwrap().to_string_lossy();
        assert!(err.contains(config_name.as_ref()), "case {i}: {err}");
        assert!(
            !dir.join(format!("run{i}")).exists(),
            "case {i} left a run folder"
        );
    }
}

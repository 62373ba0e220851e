//! The shipped image configs trained through the binary: MNIST from IDX files (one epoch, eval
//! and predict on IDX files, and the IDX errors) and the digits CNN to its 98% target. They are the heaviest runs of the
//! suite, so they live in a test binary of their own: cargo runs test binaries one after
//! another, and the timing-based kill test in `cli_runs.rs` must not share the machine with
//! them.

mod common;

use common::{rejects, repo, run, scratch, stdout};
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

#[test]
fn the_mnist_config_trains_on_idx_files() {
    let dir = scratch("mnist");
    let config = repo().join("examples/mnist.toml");
    let out = run(nabla()
        .args(["train", "-q", "--json", "--set", "train.epochs=1", "--out"])
        .arg(dir.join("run"))
        .arg(&config));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    // One epoch of the 784-128-10 MLP on 54,000 images: well past the 0.93 that
    // logistic regression reaches.
    let acc = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(acc > 0.94, "{acc}");
    // The 10,000 test images were evaluated, with the pixel schema saved for later files.
    let pre: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/preprocessing.json")).unwrap())
            .unwrap();
    assert_eq!(pre["schema"]["features"].as_array().unwrap().len(), 784);
    assert_eq!(pre["schema"]["classes"].as_array().unwrap().len(), 10);
    let text = std::fs::read_to_string(dir.join("run/report.html")).unwrap();
    assert!(text.contains("test"), "the report names its split");

    // The saved run reads IDX files too: eval with the label file reproduces the test
    // accuracy; predict writes one row per image; eval without the labels says what is missing.
    let mnist = repo().join("../shared/data/mnist");
    let (images, labels) = (
        mnist.join("t10k-images-idx3-ubyte.gz"),
        mnist.join("t10k-labels-idx1-ubyte.gz"),
    );
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(&images)
        .arg("--labels")
        .arg(&labels));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(metrics["accuracy"].as_f64().unwrap(), acc);
    let predictions = stdout(&run(nabla()
        .arg("predict")
        .arg(dir.join("run"))
        .arg(&images)));
    let rows: Vec<&str> = predictions.lines().collect();
    assert_eq!(rows.len(), 10_000 + 1, "a header and one row per image");
    assert!(rows[0].starts_with("predicted,p_0,"), "{}", rows[0]);
    let err = rejects(nabla().arg("eval").arg(dir.join("run")).arg(&images));
    assert!(
        err.contains("t10k-images-idx3-ubyte.gz: is an IDX image file") && err.contains("--labels"),
        "{err}"
    );

    // Labels that do not belong to the images: named, exit 2, no run folder.
    let err = rejects(
        nabla()
            .arg("train")
            .arg(&config)
            .arg("--set")
            .arg(format!(
                "data.train_labels={:?}",
                mnist.join("t10k-labels-idx1-ubyte.gz")
            ))
            .arg("--out")
            .arg(dir.join("bad")),
    );
    assert!(
        err.contains("t10k-labels-idx1-ubyte.gz: 10000 labels for the 60000 examples"),
        "{err}"
    );
    // A CSV-only option on IDX data, and test images without labels.
    let err = rejects(
        nabla()
            .arg("train")
            .arg(&config)
            .args(["--set", "data.target=\"digit\"", "--out"])
            .arg(dir.join("bad")),
    );
    assert!(err.contains("data.target: applies to CSV files"), "{err}");
    let text = std::fs::read_to_string(&config).unwrap();
    let no_labels: String = text
        .lines()
        .filter(|l| !l.starts_with("test_labels"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace(
            "../../shared",
            &repo().join("../shared").display().to_string(),
        );
    std::fs::write(dir.join("m.toml"), no_labels).unwrap();
    let err = rejects(
        nabla()
            .arg("train")
            .arg(dir.join("m.toml"))
            .arg("--out")
            .arg(dir.join("bad")),
    );
    assert!(
        err.contains("m.toml:12:1: data.test: IDX test images need their labels"),
        "{err}"
    );
    assert!(!dir.join("bad").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cnn_config_reaches_98_percent_on_the_digits() {
    let dir = scratch("cnn");
    let out = run(nabla()
        .args(["train", "-q", "--json"])
        .arg(repo().join("examples/digits_cnn.toml"))
        .arg("--out")
        .arg(dir.join("run")));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let acc = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.98, "{acc}");
    // The checkpoint holds PyTorch's conv layout: [out, in, kh, kw].
    let bytes = std::fs::read(dir.join("run/model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    assert_eq!(
        header["1.weight"]["shape"],
        serde_json::json!([32, 1, 3, 3])
    );
    assert_eq!(
        header["4.weight"]["shape"],
        serde_json::json!([64, 32, 3, 3])
    );
    let _ = std::fs::remove_dir_all(&dir);
}

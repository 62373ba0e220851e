//! The shipped autoencoder configs trained through the binary on the 8x8 digits: the plain
//! autoencoder's reconstruction error against PCA and the mean image, its report's image grid
//! and its predictions; the sparse autoencoder's code against the same model without the
//! penalty.

mod common;

use common::{repo, run, scratch, stdout};
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

fn train(config: &str, dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir)
        .arg(repo().join(config))
        .args(extra));
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The digits' pixels scaled to [0, 1], row by row.
fn pixels(file: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(repo().join("data/digits").join(file)).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .take(64)
                .map(|v| v.parse::<f64>().unwrap() / 16.0)
                .collect()
        })
        .collect()
}

#[test]
fn the_digits_autoencoder_beats_pca_and_reports_its_reconstructions() {
    let dir = scratch("autoencoder");
    let summary = train("examples/digits_autoencoder.toml", &dir.join("run"), &[]);
    let mse = summary["test"]["loss"].as_f64().unwrap();
    // Baseline computed here: every test digit reconstructed as the mean training image.
    let (train, test) = (pixels("train.csv"), pixels("test.csv"));
    let mean: Vec<f64> = (0..64)
        .map(|j| train.iter().map(|r| r[j]).sum::<f64>() / train.len() as f64)
        .collect();
    let mean_image_mse = test
        .iter()
        .flat_map(|r| r.iter().zip(&mean).map(|(x, m)| (x - m).powi(2)))
        .sum::<f64>()
        / (test.len() * 64) as f64;
    assert!(
        mse < 0.2 * mean_image_mse,
        "mse {mse} vs mean image {mean_image_mse}"
    );
    // PCA with as many components as the code (16), fitted on the training file, reconstructs
    // the test digits with MSE 0.01137 (numpy SVD; README). A nonlinear code should do better.
    assert!(mse < 0.01137, "mse {mse} vs PCA-16 0.01137");

    // The report shows test digits above their reconstructions, as an embedded PNG.
    let report = std::fs::read_to_string(dir.join("run/report.html")).unwrap();
    assert!(
        report.contains("Reconstructions on the test data"),
        "no grid"
    );
    assert!(
        report.contains("src=\"data:image/png;base64,iVBORw0KGgo"),
        "no PNG"
    );
    assert!(
        report.contains("one example of each class, left to right: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9"),
        "the grid is not one digit of each class"
    );
    // Each digit's reconstruction error, in history.json and the summary: the examples add up
    // to the test file, and their weighted mean is the test loss. The report tabulates them.
    let errors = summary["class_errors"]
        .as_array()
        .expect("per-class errors");
    let digits: Vec<&str> = errors
        .iter()
        .map(|e| e["class"].as_str().unwrap())
        .collect();
    assert_eq!(digits, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    let count = |e: &serde_json::Value| e["examples"].as_u64().unwrap() as f64;
    assert_eq!(errors.iter().map(count).sum::<f64>(), 360.0);
    let weighted = errors
        .iter()
        .map(|e| count(e) * e["mse"].as_f64().unwrap())
        .sum::<f64>()
        / 360.0;
    assert!(
        (weighted - mse).abs() <= 1e-6 * mse,
        "per-class {weighted} vs test loss {mse}"
    );
    let table = report
        .split("<h2>Reconstruction error per class</h2>")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .expect("no per-class table");
    assert_eq!(table.matches("<tr><td>").count(), 10, "{table}");
    assert_eq!(table.matches("<b>").count(), 1, "one worst class: {table}");
    assert!(report.contains("<h2>Code</h2>"), "no code statistics");
    assert_eq!(
        summary["code"]["layer"], 3,
        "the 16-unit sigmoid is the code"
    );

    // predict writes one reconstruction per test row, a column per pixel.
    let pred = dir.join("pred.csv");
    run(nabla()
        .arg("predict")
        .arg(dir.join("run"))
        .arg(repo().join("data/digits/test.csv"))
        .arg("-o")
        .arg(&pred));
    let text = std::fs::read_to_string(&pred).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!((rows.len(), rows[0].len()), (360, 64));
    let pred_mse = rows
        .iter()
        .zip(&test)
        .flat_map(|(p, x)| p.iter().zip(x).map(|(a, b)| (a - b).powi(2)))
        .sum::<f64>()
        / (360.0 * 64.0);
    assert!(
        (pred_mse - mse).abs() < 1e-4,
        "predict {pred_mse} vs train {mse}"
    );

    // eval measures reconstructions: the digit column (only used to stratify) may be absent.
    let original = std::fs::read_to_string(repo().join("data/digits/test.csv")).unwrap();
    let pixels_only: String = original
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    assert!(original.lines().next().unwrap().ends_with(",digit"));
    std::fs::write(dir.join("pixels.csv"), pixels_only).unwrap();
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(dir.join("pixels.csv")));
    let metrics: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let eval_mse = metrics["loss"].as_f64().unwrap();
    assert!(
        (eval_mse - mse).abs() < 1e-6,
        "eval {eval_mse} vs train {mse}"
    );
}

#[test]
fn the_sparse_autoencoders_code_is_mostly_near_zero_unlike_without_the_penalty() {
    let dir = scratch("sparse-autoencoder");
    let config = "examples/digits_sparse_autoencoder.toml";
    let sparse = train(config, &dir.join("sparse"), &[]);
    let plain = train(
        config,
        &dir.join("plain"),
        &["--set", "train.sparsity.weight=0.0"],
    );
    let near = |s: &serde_json::Value| s["code"]["near_zero"].as_f64().unwrap();
    let mean = |s: &serde_json::Value| s["code"]["mean_activation"].as_f64().unwrap();
    assert!(
        near(&sparse) >= 0.6 && near(&sparse) >= near(&plain) + 0.3,
        "near zero: sparse {} vs plain {}",
        near(&sparse),
        near(&plain)
    );
    assert!(
        mean(&sparse) < mean(&plain) / 10.0,
        "mean |h|: sparse {} vs plain {}",
        mean(&sparse),
        mean(&plain)
    );
    // And not merely from silent units (near zero on every test example, which a ReLU code
    // has without a penalty too): the units that do fire are near zero on most examples,
    // each firing selectively, where the plain code's fire on nearly all.
    let live_near_zero = |s: &serde_json::Value| {
        let units = s["code"]["units"].as_f64().unwrap();
        let silent = s["code"]["silent_units"].as_f64().unwrap();
        assert!(silent < units, "{s}");
        (near(s) * units - silent) / (units - silent)
    };
    assert!(
        live_near_zero(&sparse) >= 0.4 && live_near_zero(&sparse) >= live_near_zero(&plain) + 0.3,
        "the firing units' activations near zero: sparse {} vs plain {}",
        live_near_zero(&sparse),
        live_near_zero(&plain)
    );
    // The sparse code still reconstructs: well under the mean image's MSE (about 0.074).
    let mse = sparse["test"]["loss"].as_f64().unwrap();
    assert!(mse < 0.02, "sparse autoencoder test mse {mse}");
}

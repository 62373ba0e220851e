//! `nabla check-optim` on the PyTorch optimizer trajectories in `shared/oracle/optim_cases.json`.

mod common;

use common::{nabla, oracle, read_json as read};
use serde_json::Value;

fn with_temp_file(doc: &Value, f: impl FnOnce(&str)) {
    let tmp = std::env::temp_dir().join(format!(
        "nabla-optim-{}-{:?}.json",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, doc.to_string()).unwrap();
    f(tmp.to_str().unwrap());
    std::fs::remove_file(&tmp).ok();
}

#[test]
fn every_pytorch_trajectory_is_matched() {
    let file = oracle("optim_cases.json");
    let (code, stdout, stderr) = nabla(&["check-optim", file.to_str().unwrap()]);
    let n = read(&file)["cases"].as_array().unwrap().len();
    assert!(n >= 16, "the oracle holds {n} cases");
    assert_eq!(
        stdout.lines().last().unwrap_or(""),
        format!("{n} passed, 0 failed"),
        "{stdout}{stderr}"
    );
    assert_eq!(code, 0);
}

#[test]
fn emit_prints_trajectories_in_the_file_layout() {
    let file = oracle("optim_cases.json");
    let (code, stdout, _) = nabla(&["check-optim", file.to_str().unwrap(), "--emit"]);
    assert_eq!(code, 0);
    let emitted: Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(emitted["format"], "optim-oracle/1");
    let expected = read(&file);
    for (g, w) in emitted["cases"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected["cases"].as_array().unwrap())
    {
        assert_eq!(g["name"], w["name"]);
        let (gt, wt) = (
            g["trajectory"].as_array().unwrap(),
            w["trajectory"].as_array().unwrap(),
        );
        assert_eq!(gt.len(), wt.len(), "{}", g["name"]);
        let (gl, wl) = (
            gt.last().unwrap()["loss"].as_f64().unwrap(),
            wt.last().unwrap()["loss"].as_f64().unwrap(),
        );
        assert!(
            (gl - wl).abs() <= 1e-9 * wl.abs(),
            "{}: {gl} vs {wl}",
            g["name"]
        );
    }
}

#[test]
fn a_perturbed_trajectory_and_an_unknown_optimizer_fail() {
    let file = oracle("optim_cases.json");
    let mut doc = read(&file);
    let mut bad = doc["cases"][5].clone();
    let name = bad["name"].as_str().unwrap().to_string();
    // A relative change of 1e-7 in one coordinate of the last iterate must be caught.
    let last = bad["trajectory"]
        .as_array_mut()
        .unwrap()
        .last_mut()
        .unwrap();
    let w0 = last["w"][1].as_f64().unwrap();
    last["w"][1] = Value::from(w0 * (1.0 + 1e-7));
    let mut unknown = doc["cases"][0].clone();
    unknown["name"] = Value::from("lion");
    unknown["torch_class"] = Value::from("Lion");
    doc["cases"] = Value::Array(vec![bad, unknown]);
    with_temp_file(&doc, |path| {
        let (code, stdout, _) = nabla(&["check-optim", path]);
        assert_eq!(code, 1, "{stdout}");
        assert!(
            stdout.contains(&format!("FAILED {name}: w_20[1]")),
            "{stdout}"
        );
        assert!(
            stdout.contains("FAILED lion: error: unknown torch_class \"Lion\""),
            "{stdout}"
        );
        assert!(stdout.ends_with("0 passed, 2 failed\n"), "{stdout}");
    });
}

#[test]
fn a_wrong_format_is_a_usage_error() {
    let doc = serde_json::json!({"format": "grad-oracle/1", "cases": []});
    with_temp_file(&doc, |path| {
        let (code, _, stderr) = nabla(&["check-optim", path]);
        assert_eq!(code, 2);
        assert!(
            stderr.contains("expected \"format\": \"optim-oracle/1\""),
            "{stderr}"
        );
    });
}

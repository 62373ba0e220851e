//! `nabla check-grads` on the PyTorch reference cases in `shared/oracle/` (beside the repository;
//! override with NABLA_ORACLE_DIR).

use serde_json::Value;
mod common;

use common::{nabla, oracle, read_json};
use std::path::PathBuf;

fn case_count(path: &PathBuf) -> usize {
    read_json(path)["cases"].as_array().unwrap().len()
}

#[test]
fn every_pytorch_case_passes() {
    let file = oracle("grad_cases.json");
    let (code, stdout, _) = nabla(&["check-grads", file.to_str().unwrap()]);
    let n = case_count(&file);
    let summary = stdout.lines().last().unwrap_or("");
    assert_eq!(
        summary,
        format!("{n} passed, 0 failed"),
        "failures:\n{}",
        stdout
            .lines()
            .filter(|l| l.starts_with("FAILED"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(code, 0);
}

#[test]
fn emit_prints_nablas_own_results_in_the_file_layout() {
    let file = oracle("grad_cases.json");
    let (code, stdout, _) = nabla(&["check-grads", file.to_str().unwrap(), "--emit"]);
    assert_eq!(code, 0);
    let emitted: Value = serde_json::from_str(&stdout).expect("valid JSON");
    assert_eq!(emitted["format"], "grad-oracle/1");
    let expected = read_json(&file);
    let (got, want) = (
        emitted["cases"].as_array().unwrap(),
        expected["cases"].as_array().unwrap(),
    );
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["id"], w["id"]);
        let (o, e) = (
            g["output"].as_f64().unwrap(),
            w["expected"]["output"].as_f64().unwrap(),
        );
        assert!(
            (o - e).abs() <= 1e-9 + 1e-7 * e.abs(),
            "{}: {o} vs {e}",
            g["id"]
        );
        let names: Vec<&String> = w["expected"]["grads"].as_object().unwrap().keys().collect();
        for name in names {
            assert_eq!(
                g["grads"][name]["shape"], w["expected"]["grads"][name]["shape"],
                "{} {name}",
                g["id"]
            );
        }
    }
}

#[test]
fn a_wrong_case_is_reported_as_failed() {
    // Corrupt one expected gradient: the checker must notice and exit 1.
    let file = oracle("grad_cases.json");
    let mut doc = read_json(&file);
    let case = &mut doc["cases"][0];
    let grad = case["expected"]["grads"]
        .as_object_mut()
        .unwrap()
        .values_mut()
        .next()
        .unwrap();
    grad["data"][0] = Value::from(grad["data"][0].as_f64().unwrap() + 1e-3);
    let id = case["id"].as_str().unwrap().to_string();
    doc["cases"] = Value::Array(vec![doc["cases"][0].clone()]);
    let tmp = std::env::temp_dir().join(format!("nabla-corrupt-{}.json", std::process::id()));
    std::fs::write(&tmp, doc.to_string()).unwrap();
    let (code, stdout, _) = nabla(&["check-grads", tmp.to_str().unwrap()]);
    std::fs::remove_file(&tmp).ok();
    assert_eq!(code, 1);
    assert!(stdout.contains(&format!("FAILED {id}: grad")), "{stdout}");
    assert!(stdout.ends_with("0 passed, 1 failed\n"), "{stdout}");
}

#[test]
fn bad_input_files_give_one_line_errors_and_exit_2() {
    let (code, _, stderr) = nabla(&["check-grads", "/nonexistent/cases.json"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: cannot read /nonexistent/cases.json"),
        "{stderr}"
    );
    let tmp = std::env::temp_dir().join(format!("nabla-bad-{}.json", std::process::id()));
    std::fs::write(&tmp, "{\"format\": \"grad-oracle/1\", \"cases\": [").unwrap();
    let (code, _, stderr) = nabla(&["check-grads", tmp.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("not valid JSON") && stderr.contains("line 1 column"),
        "{stderr}"
    );
    std::fs::write(&tmp, "{\"format\": \"other\"}").unwrap();
    let (code, _, stderr) = nabla(&["check-grads", tmp.to_str().unwrap()]);
    std::fs::remove_file(&tmp).ok();
    assert_eq!(code, 2);
    assert!(
        stderr.contains("expected \"format\": \"grad-oracle/1\""),
        "{stderr}"
    );
    let (code, _, stderr) = nabla(&["no-such-command"]);
    assert_eq!(code, 2, "{stderr}");
}

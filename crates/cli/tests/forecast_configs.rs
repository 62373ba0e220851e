//! The shipped forecasting config trained through the binary: a GRU reads 9-year windows of
//! the yearly sunspot numbers (`data.series`) and forecasts the last 50 years one step ahead
//! better than the linear AR(9) model, fitted here by least squares on the same training
//! years, and than persistence; `predict` and `eval` window a series file the same way; and the
//! mistakes a series config can make name their key.

mod common;

use common::{rejects, repo, run, scratch, stdout};
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

fn sunspots() -> Vec<f64> {
    let text = std::fs::read_to_string(repo().join("data/sunspots/sunspots.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

/// Solves `a x = b` (`n × n`, row-major) by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs()))
            .unwrap();
        for k in 0..n {
            a.swap(c * n + k, p * n + k);
        }
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r * n + c] / a[c * n + c];
            for k in c..n {
                a[r * n + k] -= f * a[c * n + k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r * n + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * n + r];
    }
    x
}

fn rmse(pairs: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (sum, n) = pairs.fold((0.0, 0), |(s, n), (p, y)| (s + (p - y).powi(2), n + 1));
    (sum / n as f64).sqrt()
}

#[test]
fn the_gru_forecasts_sunspots_better_than_linear_autoregression() {
    let y = sunspots();
    let (lags, test) = (9, 50);
    let first_test = y.len() - test;
    // AR(9) with an intercept by ordinary least squares on every target before the test.
    let row = |t: usize| -> Vec<f64> {
        let mut r = vec![1.0];
        r.extend_from_slice(&y[t - lags..t]);
        r
    };
    let k = lags + 1;
    let (mut xtx, mut xty) = (vec![0.0; k * k], vec![0.0; k]);
    for (t, &target) in y.iter().enumerate().take(first_test).skip(lags) {
        let r = row(t);
        for i in 0..k {
            xty[i] += r[i] * target;
            for j in 0..k {
                xtx[i * k + j] += r[i] * r[j];
            }
        }
    }
    let beta = solve(xtx, xty);
    let ar = rmse((first_test..y.len()).map(|t| {
        let p: f64 = row(t).iter().zip(&beta).map(|(a, b)| a * b).sum();
        (p, y[t])
    }));
    let persistence = rmse((first_test..y.len()).map(|t| (y[t - 1], y[t])));
    // The data README's figures, recomputed here.
    assert!((ar - 16.95).abs() < 0.01, "AR(9) {ar}");
    assert!(
        (persistence - 30.35).abs() < 0.01,
        "persistence {persistence}"
    );

    let dir = scratch("sunspots");
    let config = repo().join("examples/sunspots_gru.toml");
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir.join("run"))
        .arg(&config));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let gru = summary["test"]["rmse"].as_f64().unwrap();
    assert!(gru < ar, "GRU test RMSE {gru} vs AR(9) {ar}");

    // predict windows the file as training did: one forecast per year after the first 9, in
    // sunspot numbers; the last 50 are the test forecasts.
    let series = repo().join("data/sunspots/sunspots.csv");
    let out = run(nabla().arg("predict").arg(dir.join("run")).arg(&series));
    let forecasts: Vec<f64> = stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(forecasts.len(), y.len() - lags);
    let from_predict = rmse(
        forecasts[forecasts.len() - test..]
            .iter()
            .copied()
            .zip(y[first_test..].iter().copied()),
    );
    assert!(
        (from_predict - gru).abs() < 1e-3 * gru,
        "{from_predict} vs {gru}"
    );
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(&series));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(metrics["rmse"].as_f64().unwrap() < persistence);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn series_config_mistakes_name_their_key() {
    let dir = scratch("series-errors");
    let reject = |set: &str| {
        rejects(
            nabla()
                .args(["train", "-q", "--out"])
                .arg(dir.join("never"))
                .arg(repo().join("examples/sunspots_lstm.toml"))
                .args(["--set", set]),
        )
    };
    let err = reject("data.target=\"year\"");
    assert!(
        err.contains("data.target") && err.contains("data.series"),
        "{err}"
    );
    let err = reject("data.series.test_last=400");
    assert!(
        err.contains("data.series.test_last") && err.contains("no training windows"),
        "{err}"
    );
    let err = reject("data.series.column=\"sunspots\"");
    assert!(err.contains("sunactivity"), "did you mean: {err}");
    let err = reject("data.series.window=0");
    assert!(err.contains("data.series.window"), "{err}");
    assert!(!dir.join("never").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

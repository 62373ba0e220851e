//! The shipped forecasting config trained through the binary: a GRU reads 9-year windows of
//! the yearly sunspot numbers (`data.series`) and forecasts the last 50 years one step ahead
//! better than the linear AR(9) model, fitted here by least squares on the same training
//! years, and than persistence; on the monthly airline passengers, LSTM and GRU forecast the
//! yearly changes (`data.series.difference`) better than AR(13) and a same-size plain RNN;
//! `predict` and `eval` window a series file the same way; and the
//! mistakes a series config can make name their key.

mod common;

use common::{read_json, rejects_overrides, repo, run, scratch, stdout};
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

/// The second column of a shipped series file.
fn series(file: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(repo().join(file)).unwrap();
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

/// The test RMSE of a linear AR(`lags`) model with an intercept, fitted by ordinary least
/// squares on every target of `y` before its last `test`, forecasting those one step ahead.
fn autoregression_rmse(y: &[f64], lags: usize, test: usize) -> f64 {
    let first_test = y.len() - test;
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
    rmse((first_test..y.len()).map(|t| {
        let p: f64 = row(t).iter().zip(&beta).map(|(a, b)| a * b).sum();
        (p, y[t])
    }))
}

/// The forecasts `nabla predict RUN FILE` prints, one per line under its header.
fn predicted(run_dir: &std::path::Path, file: &std::path::Path) -> Vec<f64> {
    let out = run(nabla().arg("predict").arg(run_dir).arg(file));
    stdout(&out)
        .lines()
        .skip(1)
        .map(|l| l.parse().unwrap())
        .collect()
}

#[test]
fn the_gru_forecasts_sunspots_better_than_linear_autoregression() {
    let y = series("data/sunspots/sunspots.csv");
    let (lags, test) = (9, 50);
    let first_test = y.len() - test;
    let ar = autoregression_rmse(&y, lags, test);
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
    let forecasts = predicted(&dir.join("run"), &series);
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

/// The test RMSE of an example config trained with each seed 0–4.
fn seed_rmses(config: &str, dir: &std::path::Path) -> Vec<f64> {
    (0..5)
        .map(|seed| {
            let out = run(nabla()
                .args([
                    "train",
                    "-q",
                    "--json",
                    "--seed",
                    &seed.to_string(),
                    "--out",
                ])
                .arg(dir.join(format!("{config}-{seed}")))
                .arg(repo().join("examples").join(format!("{config}.toml"))));
            let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
            summary["test"]["rmse"].as_f64().unwrap()
        })
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn gated_cells_forecast_airline_changes_better_than_autoregression_and_a_plain_rnn() {
    let y = series("data/airline/airline.csv");
    let (lags, test, season) = (13, 24, 12);
    let first_test = y.len() - test;
    // The data README's references, recomputed: AR(13) on the levels, persistence, and the
    // seasonal naive forecast y[t-12].
    let ar = autoregression_rmse(&y, lags, test);
    assert!((ar - 18.81).abs() < 0.01, "AR(13) {ar}");
    let persistence = rmse((first_test..y.len()).map(|t| (y[t - 1], y[t])));
    assert!((persistence - 51.78).abs() < 0.01, "{persistence}");
    let seasonal = rmse((first_test..y.len()).map(|t| (y[t - season], y[t])));
    assert!((seasonal - 49.99).abs() < 0.01, "{seasonal}");
    // The same linear model on the yearly changes is a harder bar (the error of a change is
    // that of its level); the networks read the same changes.
    let changes: Vec<f64> = (season..y.len()).map(|t| y[t] - y[t - season]).collect();
    let ar_changes = autoregression_rmse(&changes, lags, test);
    assert!(ar_changes < ar - 2.0, "{ar_changes} vs {ar}");

    let dir = scratch("airline");
    let (lstm, gru, rnn) = (
        mean(&seed_rmses("airline_lstm", &dir)),
        mean(&seed_rmses("airline_gru", &dir)),
        mean(&seed_rmses("airline_rnn", &dir)),
    );
    assert!(
        lstm < ar && gru < ar,
        "LSTM {lstm}, GRU {gru} vs AR(13) {ar}"
    );
    assert!(
        lstm < rnn - 1.0 && gru < rnn - 1.0,
        "LSTM {lstm}, GRU {gru} vs the same-size RNN {rnn}"
    );

    // predict gives levels: one forecast per month after the 12 that start the changes and the
    // 13 of the first window; the last 24 reproduce the test RMSE against the passengers.
    let file = repo().join("data/airline/airline.csv");
    let forecasts = predicted(&dir.join("airline_lstm-0"), &file);
    assert_eq!(forecasts.len(), y.len() - season - lags);
    let truth = &y[season + lags..];
    let from_predict = rmse(
        forecasts[forecasts.len() - test..]
            .iter()
            .copied()
            .zip(truth[truth.len() - test..].iter().copied()),
    );
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("airline_lstm-0"))
        .arg(&file));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let history = read_json(dir.join("airline_lstm-0/history.json"));
    let test_rmse = history["test"]["rmse"].as_f64().unwrap();
    assert!(
        (from_predict - test_rmse).abs() < 1e-3 * test_rmse,
        "{from_predict} vs {test_rmse}"
    );
    // Over every month the levels are tracked (a change forecast without its level would be
    // off by hundreds).
    let all = rmse(forecasts.iter().copied().zip(truth.iter().copied()));
    assert!(all < 25.0, "RMSE over all months {all}");
    assert!((metrics["rmse"].as_f64().unwrap() - all).abs() < 1e-3 * all);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn series_config_mistakes_name_their_key() {
    let dir = scratch("series-errors");
    let config = repo().join("examples/sunspots_lstm.toml");
    let reject = |set: &str| rejects_overrides(&config, &dir.join("never"), &[set]);
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
    let err = reject("data.series.difference=300");
    assert!(
        err.contains("data.series") && err.contains("difference of 300"),
        "{err}"
    );
    assert!(!dir.join("never").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

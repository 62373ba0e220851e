//! `nabla train / eval / predict / report` end to end through the binary: the run directory's
//! files, predictions that agree with the evaluation, errors with exit code 2 and no files left
//! behind, a run killed (SIGKILL) at many points that resumes to the same bytes as a run that
//! was never stopped, and the report rendered by headless Chromium.

mod common;

use common::{read_json, refuses_arguments, rejects, repo, run, run_maybe_killed, scratch, stdout};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

fn test_csv() -> PathBuf {
    repo().join("data/digits/test.csv")
}

#[test]
fn train_eval_predict_and_report_agree() {
    let dir = scratch("e2e");
    let runs = dir.join("run");
    let out = run(nabla()
        .args(["train", "-q", "--json", "--set", "train.epochs=8", "--out"])
        .arg(&runs));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["epochs"], 8);
    for f in [
        "model.safetensors",
        "optimizer.safetensors",
        "config.toml",
        "preprocessing.json",
        "metrics.jsonl",
        "history.json",
        "report.html",
    ] {
        assert!(runs.join(f).is_file(), "{f} missing");
    }
    let metrics = std::fs::read_to_string(runs.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 8);
    let test_acc = summary["test"]["accuracy"].as_f64().unwrap();
    assert!(test_acc > 0.9, "8 epochs reach 0.9 on digits: {test_acc}");

    // eval reads the test file again through the saved preprocessing.
    let out = run(nabla().args(["eval", "--json"]).arg(&runs).arg(test_csv()));
    let eval: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!((eval["accuracy"].as_f64().unwrap() - test_acc).abs() < 1e-12);

    // predict: one row per test image, probabilities summing to 1, the same accuracy.
    let pred_path = dir.join("pred.csv");
    run(nabla()
        .arg("predict")
        .arg(&runs)
        .arg(test_csv())
        .arg("-o")
        .arg(&pred_path));
    let pred = std::fs::read_to_string(&pred_path).unwrap();
    let mut lines = pred.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[0], "predicted");
    assert_eq!(
        header[1..],
        [
            "p_0", "p_1", "p_2", "p_3", "p_4", "p_5", "p_6", "p_7", "p_8", "p_9"
        ]
    );
    let truth: Vec<String> = std::fs::read_to_string(test_csv())
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), truth.len());
    let mut correct = 0;
    for (row, t) in rows.iter().zip(&truth) {
        let p: Vec<f64> = row[1..].iter().map(|v| v.parse().unwrap()).collect();
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-4);
        correct += usize::from(row[0] == t);
    }
    assert!((correct as f64 / truth.len() as f64 - test_acc).abs() < 1e-12);

    // report rebuilds the same file from the run's files.
    let before = std::fs::read_to_string(runs.join("report.html")).unwrap();
    std::fs::remove_file(runs.join("report.html")).unwrap();
    let out = run(nabla().arg("report").arg(&runs));
    assert!(stdout(&out).trim().ends_with("report.html"));
    let after = std::fs::read_to_string(runs.join("report.html")).unwrap();
    assert_eq!(before, after);
    assert!(
        after.matches("<svg").count() >= 5,
        "loss, metric, lr, gradients, confusion"
    );
    // The doctor's picture of the hidden ReLU's outputs, at the first epoch and the last: a
    // histogram in each epoch's record (arrays of numbers on one line each), drawn twice.
    for epoch in [1, 8] {
        let title = format!("Output distribution per layer, epoch {epoch} (doctor)");
        assert!(after.contains(&title), "{title}");
    }
    let history_text = std::fs::read_to_string(runs.join("history.json")).unwrap();
    assert!(
        history_text.contains("\"counts\": ["),
        "histogram counts on one line"
    );
    let history = read_json(runs.join("history.json"));
    for record in history["history"]["epochs"].as_array().unwrap() {
        let layers = record["diagnostics"]["layers"].as_array().unwrap();
        let relu = layers.iter().find(|l| l[1]["kind"] == "ReLU").unwrap();
        let h = &relu[1]["histogram"];
        let counts: u64 = h["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .sum();
        assert!(counts >= 128 && h["lo"].as_f64().unwrap() >= 0.0, "{h}");
        assert!(h["hi"].as_f64().unwrap() > h["lo"].as_f64().unwrap(), "{h}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_exits_2_and_leaves_nothing_behind() {
    let dir = scratch("bad");
    let config = dir.join("bad.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\ntrain = {:?}\n[[model.layers]]\ntype = \"linear\"\nunits = 3\n",
            repo().join("data/digits/train.csv")
        ),
    )
    .unwrap();
    let out_dir = dir.join("run");
    let err = rejects(nabla().arg("train").arg(&config).arg("--out").arg(&out_dir));
    // The layer's `[[model.layers]]` header is on line 3.
    assert!(err.contains("bad.toml:3:1: model.layers[0]"), "{err}");
    assert!(err.contains("[batch, 3]"), "{err}");
    assert!(
        !out_dir.exists(),
        "no run directory for a config that does not build"
    );

    // A taken --out is reported before any data is read: here the data file does not exist.
    let taken = dir.join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), "mine").unwrap();
    let unread = dir.join("unread.toml");
    std::fs::write(
        &unread,
        "[data]\ntrain = \"/no/such/data.csv\"\n[[model.layers]]\ntype = \"linear\"\nunits = 3\n",
    )
    .unwrap();
    let err = rejects(nabla().arg("train").arg(&unread).arg("--out").arg(&taken));
    assert!(err.contains("already exists and is not empty"), "{err}");
    assert!(!err.contains("/no/such/data.csv"), "{err}");
    assert_eq!(
        std::fs::read_to_string(taken.join("notes.txt")).unwrap(),
        "mine"
    );
    // With a free --out, the missing file is named, and the system's reason given once.
    let err = rejects(nabla().arg("train").arg(&unread).arg("--out").arg(&out_dir));
    assert!(err.contains("/no/such/data.csv: No such file"), "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    assert!(!out_dir.exists());

    let err = rejects(nabla().args(["train", "/no/such.toml"]));
    assert!(err.contains("/no/such.toml"), "{err}");

    let err = rejects(
        nabla()
            .args(["eval"])
            .arg(dir.join("nothing"))
            .arg(test_csv()),
    );
    assert!(err.contains("no such run directory"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trains `epochs` of the digits example into `dir` in a child process, killing it with
/// SIGKILL after `kill_after` when given; returns whether it finished.
fn train_child(dir: &Path, epochs: usize, resume: bool, kill_after: Option<Duration>) -> bool {
    let mut cmd = nabla();
    cmd.args(["train", "-q"]);
    if resume {
        cmd.arg("--resume").arg(dir);
    } else {
        cmd.args(["--set", &format!("train.epochs={epochs}"), "--out"])
            .arg(dir);
    }
    run_maybe_killed(&mut cmd, kill_after)
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_run_killed_at_any_point_resumes_to_the_same_bytes() {
    let dir = scratch("kill");
    let epochs = 12;
    let reference = dir.join("reference");
    let start = Instant::now();
    train_child(&reference, epochs, false, None);
    let duration = start.elapsed();
    let want_model = std::fs::read(reference.join("model.safetensors")).unwrap();
    let want_metrics = std::fs::read(reference.join("metrics.jsonl")).unwrap();
    let kills = 8;
    let mut interrupted = 0;
    for i in 0..kills {
        let run_dir = dir.join(format!("killed-{i}"));
        // Kill points spread over the whole run (process start-up included).
        let at = duration.mul_f64((i as f64 + 0.5) / kills as f64);
        let mut finished = train_child(&run_dir, epochs, false, Some(at));
        interrupted += usize::from(!finished);
        let mut attempts = 0;
        while !finished {
            attempts += 1;
            assert!(attempts < 20, "resume does not make progress");
            // A run: a committed checkpoint, in place or still being moved in (killed between
            // the commit marker and the last rename; whatever opens the folder rolls it
            // forward).
            let has_run = (run_dir.join("config.toml").is_file()
                && run_dir.join("history.json").is_file())
                || run_dir.join(".checkpoint-next/COMMITTED").is_file();
            if has_run {
                // What the kill left is a complete checkpoint: it loads and evaluates.
                let out = nabla()
                    .args(["eval", "--json"])
                    .arg(&run_dir)
                    .arg(test_csv())
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                finished = train_child(&run_dir, epochs, true, None);
            } else {
                // Killed before the first checkpoint: start again in the same folder.
                finished = train_child(&run_dir, epochs, false, None);
            }
        }
        assert_eq!(
            std::fs::read(run_dir.join("model.safetensors")).unwrap(),
            want_model,
            "kill {i} at {at:?}: the resumed model differs"
        );
        assert_eq!(
            std::fs::read(run_dir.join("metrics.jsonl")).unwrap(),
            want_metrics,
            "kill {i} at {at:?}: the resumed metrics differ"
        );
        assert_eq!(listing(&run_dir), listing(&reference), "no stray files");
    }
    assert!(
        interrupted >= kills / 2,
        "most kills should land mid-run ({interrupted}/{kills})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn chromium() -> Option<PathBuf> {
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

fn headless(chrome: &Path, profile: &Path) -> Command {
    let mut cmd = Command::new(chrome);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,2400",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    cmd
}

#[test]
fn the_report_renders_its_plots_in_headless_chromium() {
    let Some(chrome) = chromium() else {
        assert!(
            std::env::var_os("NABLA_REQUIRE_CHROMIUM").is_none(),
            "NABLA_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        eprintln!("skipped: no chromium (install Debian's `chromium`; .ci/run does)");
        return;
    };
    let dir = scratch("chromium");
    let runs = dir.join("run");
    run(nabla()
        .args(["train", "-q", "--set", "train.epochs=5", "--out"])
        .arg(&runs));
    // A copy of the report with a script that writes each SVG's rendered size into the page.
    let report = std::fs::read_to_string(runs.join("report.html")).unwrap();
    let probe = report.replace(
        "</body>",
        "<script>window.addEventListener('load',()=>{const s=[...document.querySelectorAll('svg')]\
         .map(e=>{const r=e.getBoundingClientRect();return Math.round(r.width)+'x'+Math.round(r.height)\
         +':'+e.querySelectorAll('polyline,path,rect,circle').length});const p=document.createElement('pre');\
         p.id='svg-sizes';p.textContent=s.join(' ');document.body.appendChild(p);});</script></body>",
    );
    let probe_path = dir.join("probe.html");
    std::fs::write(&probe_path, probe).unwrap();
    let out = headless(&chrome, &dir.join("profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", probe_path.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    let sizes = dom
        .split("<pre id=\"svg-sizes\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "the probe did not run: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let figures: Vec<(f64, f64, usize)> = sizes
        .split_whitespace()
        .map(|s| {
            let (wh, n) = s.split_once(':').unwrap();
            let (w, h) = wh.split_once('x').unwrap();
            (w.parse().unwrap(), h.parse().unwrap(), n.parse().unwrap())
        })
        .collect();
    assert!(figures.len() >= 5, "{sizes}");
    for (w, h, shapes) in &figures {
        assert!(
            *w > 100.0 && *h > 100.0,
            "an SVG rendered at {w}x{h}: {sizes}"
        );
        assert!(*shapes > 3, "an SVG with {shapes} drawn shapes: {sizes}");
    }
    // And a screenshot of the report itself.
    let shot = dir.join("report.png");
    let out = headless(&chrome, &dir.join("profile"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", runs.join("report.html").display()))
        .output()
        .unwrap();
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a screenshot of plots is not blank ({} bytes)",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_seed_examples_run_as_configs() {
    let dir = scratch("seeds");
    let train = |name: &str| -> serde_json::Value {
        let out = run(nabla()
            .args(["train", "-q", "--json"])
            .arg(repo().join(format!("examples/{name}.toml")))
            .arg("--out")
            .arg(dir.join(name)));
        serde_json::from_str(&stdout(&out)).unwrap()
    };
    // XOR needs the hidden layer: all four points right.
    assert_eq!(train("xor")["train"]["accuracy"], 1.0);
    // Age and affordability separate the 15 people of the insurance data.
    assert_eq!(train("insurance")["train"]["accuracy"], 1.0);
    // Least squares on two scaled features explains most of the six prices.
    let r2 = train("house_prices")["train"]["r2"].as_f64().unwrap();
    assert!(r2 > 0.9, "{r2}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A small iris net whose `[tune]` grid has a learning rate too small to learn (it stops
/// early), one that learns, and one that diverges, times two widths.
fn tune_config(dir: &Path) -> PathBuf {
    let path = dir.join("tune.toml");
    let iris = repo().join("../shared/data/iris/train.csv");
    std::fs::write(
        &path,
        format!(
            r#"seed = 0
[data]
train = {iris:?}
target = "species"
scaling = "standardize"
valid_split = 0.25
[[model.layers]]
type = "linear"
units = 16
[[model.layers]]
type = "relu"
[[model.layers]]
type = "linear"
units = 3
[optimizer]
type = "sgd"
lr = 0.1
momentum = 0.9
[train]
epochs = 40
batch_size = 16
early_stopping = {{ patience = 5, min_delta = 0.01 }}
[tune]
metric = "loss"
[tune.space]
"optimizer.lr" = {{ values = [1e-5, 0.03, 1e3] }}
"model.layers[0].units" = {{ values = [8, 32] }}
"#
        ),
    )
    .unwrap();
    path
}

#[test]
fn tune_ranks_the_trials_and_its_best_config_trains_to_the_same_score() {
    let dir = scratch("tune");
    let config = tune_config(&dir);
    let out_dir = dir.join("search");
    let out = run(nabla()
        .args(["tune", "--grid", "-q", "--json"])
        .arg(&config)
        .arg("--out")
        .arg(&out_dir));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let trials = doc["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6, "3 learning rates x 2 widths");
    let numbers: std::collections::BTreeSet<u64> = trials
        .iter()
        .map(|t| t["trial"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=6).collect());
    // Ranked: scores ascending (loss), then the diverged trials.
    let scores: Vec<f64> = trials.iter().filter_map(|t| t["score"].as_f64()).collect();
    assert_eq!(scores.len(), 4);
    assert!(scores.windows(2).all(|w| w[0] <= w[1]), "{scores:?}");
    for t in &trials[4..] {
        assert_eq!(t["status"], "diverged", "{t}");
        assert_eq!(t["values"]["optimizer.lr"], 1e3);
    }
    // The tiny learning rate cannot improve the loss by min_delta: early stopping ends it
    // after its patience (epoch 1 best, 5 more), far before the 40 epochs.
    for t in trials
        .iter()
        .filter(|t| t["values"]["optimizer.lr"] == 1e-5)
    {
        assert_eq!(t["status"], "stopped_early", "{t}");
        assert_eq!(t["epochs"], 6);
    }
    assert_eq!(trials[0]["values"]["optimizer.lr"], 0.03);

    // The table marks early stops and divergence, best first.
    let out = run(nabla()
        .args(["tune", "--grid", "-q"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("search-table")));
    let table = stdout(&out);
    let rows: Vec<&str> = table.lines().skip(1).take(6).collect();
    assert!(rows[0].trim_start().starts_with("1 "), "{table}");
    assert!(rows[0].contains("0.03"), "{table}");
    assert!(rows[2].contains("stopped early"), "{table}");
    assert!(rows[5].contains("diverged at epoch"), "{table}");

    // best.toml is the winner's config: training it reproduces the trial's validation loss.
    let best = out_dir.join("best.toml");
    let text = std::fs::read_to_string(&best).unwrap();
    assert!(!text.contains("[tune"), "the best config is for training");
    let out = run(nabla()
        .args(["train", "-q", "--json"])
        .arg(&best)
        .arg("--out")
        .arg(dir.join("best-run")));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(summary["valid"]["loss"].as_f64(), Some(scores[0]));
    assert_eq!(summary["best_epoch"], trials[0]["best_epoch"]);

    // trials.json holds every trial, in the order they ran.
    let saved = read_json(out_dir.join("trials.json"));
    let order: Vec<u64> = saved["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trial"].as_u64().unwrap())
        .collect();
    assert_eq!(order, [1, 2, 3, 4, 5, 6]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_tuning_draws_in_log_space_deterministically() {
    let dir = scratch("tune-random");
    let config = tune_config(&dir);
    let draw = |name: &str, seed: &str| -> Vec<f64> {
        let out = run(nabla()
            .args(["tune", "--random", "5", "-q", "--json", "--seed", seed])
            .args([
                "--set",
                "tune.space={\"optimizer.lr\" = { log_uniform = { low = 1e-4, high = 1e-1 } }}",
                "--set",
                "train.epochs=3",
            ])
            .arg(&config)
            .arg("--out")
            .arg(dir.join(name)));
        let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        let mut lrs: Vec<f64> = doc["trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["values"]["optimizer.lr"].as_f64().unwrap())
            .collect();
        lrs.sort_by(f64::total_cmp);
        lrs
    };
    let first = draw("a", "1");
    assert_eq!(first.len(), 5);
    assert!(
        first.iter().all(|lr| (1e-4..=1e-1).contains(lr)),
        "{first:?}"
    );
    assert_eq!(first, draw("b", "1"), "the same seed draws the same trials");
    assert_ne!(first, draw("c", "2"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_tune_section_is_a_located_error_before_any_trial() {
    let dir = scratch("tune-bad");
    let config = tune_config(&dir);
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("\"optimizer.lr\"", "\"optimizer.lrr\""),
    )
    .unwrap();
    let out_dir = dir.join("search");
    let err = rejects(
        nabla()
            .args(["tune", "--grid"])
            .arg(&config)
            .arg("--out")
            .arg(&out_dir),
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("\"optimizer.lr\""))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("tune.toml:{line}:1: tune.space.\"optimizer.lrr\"")),
        "{err}"
    );
    assert!(err.contains("did you mean `lr`"), "{err}");
    assert!(!out_dir.exists());

    // No validation split: nothing to rank on.
    let err = rejects(
        nabla()
            .args(["tune", "--grid", "--set", "data.valid_split=0"])
            .arg(&config)
            .arg("--out")
            .arg(&out_dir),
    );
    assert!(err.contains("data.valid_split"), "{err}");
    assert!(!out_dir.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trains the tiny config of `dir` on `csv` (bytes written to `dir/d.csv`).
fn train_on(dir: &Path, csv: &[u8], out: &str) -> Command {
    std::fs::write(dir.join("d.csv"), csv).unwrap();
    std::fs::write(
        dir.join("cfg.toml"),
        "[data]\ntrain = \"d.csv\"\ntarget = \"y\"\nvalid_split = 0.0\nstratify = false\n\
         [[model.layers]]\ntype = \"linear\"\nunits = 2\n[train]\nepochs = 3\nbatch_size = 4\n",
    )
    .unwrap();
    let mut cmd = nabla();
    cmd.args(["train", "-q", "--json"])
        .arg(dir.join("cfg.toml"))
        .arg("--out")
        .arg(dir.join(out));
    cmd
}

#[test]
fn malformed_csv_files_are_one_line_errors_that_say_where() {
    let dir = scratch("csv");
    let good = "a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n";
    let with = |line: &str| good.replace("0,1,1\n", line);
    // (what, file, the parts the error must name)
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        ("empty file", String::new(), vec!["d.csv", "empty file"]),
        ("blank lines", "\n\n\n".into(), vec!["d.csv", "empty file"]),
        (
            "only a header",
            "a,b,y\n".into(),
            vec!["d.csv", "no data rows"],
        ),
        (
            "short row",
            with("0,1\n"),
            vec!["d.csv:3", "2 fields, but the header has 3"],
        ),
        ("long row", with("0,1,1,7\n"), vec!["d.csv:3", "4 fields"]),
        (
            "word",
            with("0,one,1\n"),
            vec!["d.csv:3", "column \"b\" (2)", "\"one\""],
        ),
        (
            "NaN",
            with("0,NaN,1\n"),
            vec!["d.csv:3", "column \"b\" (2)", "missing value"],
        ),
        (
            "inf",
            with("0,-inf,1\n"),
            vec!["d.csv:3", "column \"b\" (2)", "not a finite"],
        ),
        (
            "1e300",
            with("0,1e300,1\n"),
            vec!["d.csv:3", "column \"b\" (2)", "range of f32"],
        ),
        (
            "missing target",
            with("0,1,\n"),
            vec!["d.csv:3", "column \"y\" (3)", "missing target"],
        ),
        (
            "fractional class",
            with("0,1,0.5\n"),
            vec!["d.csv:3", "\"0.5\"", "regression"],
        ),
        (
            "duplicate column",
            "a,a,y\n0,0,0\n".into(),
            vec!["d.csv:1", "appears twice"],
        ),
        ("open quote", with("0,\"1,1\n"), vec!["d.csv:3", "fields"]),
    ];
    for (what, csv, parts) in &cases {
        let out_dir = dir.join("run");
        let err = rejects(&mut train_on(&dir, csv.as_bytes(), "run"));
        for p in parts {
            assert!(err.contains(p), "{what}: {p:?} not in {err}");
        }
        assert!(!out_dir.exists(), "{what}: a run folder was left behind");
    }
    // Bytes that are not UTF-8, and a file that is not there.
    let mut bytes = with("0,1,1\n").into_bytes();
    bytes[good.find("0,1,1").unwrap() + 2] = 0xff;
    let err = rejects(&mut train_on(&dir, &bytes, "run"));
    assert!(err.contains("d.csv:3: not valid UTF-8"), "{err}");
    let mut cmd = train_on(&dir, good.as_bytes(), "run");
    std::fs::remove_file(dir.join("d.csv")).unwrap();
    let err = rejects(&mut cmd);
    assert!(
        err.contains("d.csv") && err.contains("No such file"),
        "{err}"
    );

    // A byte-order mark and CRLF line ends are the same data: the same trained model.
    let summary = |csv: &str, out: &str| -> serde_json::Value {
        let o = run(&mut train_on(&dir, csv.as_bytes(), out));
        let mut s: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        s["run"] = serde_json::Value::Null;
        s["report"] = serde_json::Value::Null;
        s["train_seconds"] = serde_json::Value::Null;
        s
    };
    let plain = summary(good, "plain");
    let weights = |out: &str| std::fs::read(dir.join(out).join("model.safetensors")).unwrap();
    for (name, csv) in [
        ("bom", format!("\u{feff}{good}")),
        ("crlf", good.replace('\n', "\r\n")),
    ] {
        assert_eq!(summary(&csv, name), plain, "{name}");
        assert_eq!(weights(name), weights("plain"), "{name}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn damaged_run_files_are_errors_that_name_the_file() {
    let dir = scratch("damaged");
    let good = "a,b,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n";
    run(&mut train_on(&dir, good.as_bytes(), "run"));
    let data = dir.join("d.csv");
    let copy = |name: &str| -> PathBuf {
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(dir.join("run")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
        to
    };
    // Truncated weights: eval and predict refuse, and predict writes no output file.
    let run_dir = copy("truncated");
    let bytes = std::fs::read(run_dir.join("model.safetensors")).unwrap();
    std::fs::write(run_dir.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let err = rejects(nabla().arg("eval").arg(&run_dir).arg(&data));
    assert!(err.contains("model.safetensors"), "{err}");
    let pred = dir.join("pred.csv");
    let err = rejects(
        nabla()
            .arg("predict")
            .arg(&run_dir)
            .arg(&data)
            .arg("-o")
            .arg(&pred),
    );
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(!pred.exists());
    // Not safetensors at all.
    std::fs::write(run_dir.join("model.safetensors"), b"not a tensor file").unwrap();
    let err = rejects(nabla().arg("eval").arg(&run_dir).arg(&data));
    assert!(
        err.contains("model.safetensors: not a safetensors file"),
        "{err}"
    );

    // A config from another model: the weights' shapes do not fit it.
    let run_dir = copy("other-model");
    let config = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    let other = config.replacen(
        "[[model.layers]]",
        "[[model.layers]]\ntype = \"linear\"\nunits = 5\n\n[[model.layers]]",
        1,
    );
    assert_ne!(other, config);
    std::fs::write(run_dir.join("config.toml"), other).unwrap();
    let err = rejects(nabla().arg("eval").arg(&run_dir).arg(&data));
    assert!(
        err.contains("model.safetensors: does not fit the model: missing [\"1.weight\""),
        "{err}"
    );

    // Unreadable preprocessing.
    let run_dir = copy("preprocessing");
    std::fs::write(run_dir.join("preprocessing.json"), b"{\"schema\": 1").unwrap();
    let err = rejects(nabla().arg("eval").arg(&run_dir).arg(&data));
    assert!(err.contains("preprocessing.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tune_cross_validates_when_asked() {
    let dir = scratch("tune-folds");
    let config = tune_config(&dir);
    // Without a validation split the plain search has nothing to rank on; 3 folds do.
    let out = run(nabla()
        .args(["tune", "--grid", "-q", "--json"])
        .args([
            "--set",
            "data.valid_split=0",
            "--set",
            "tune.folds=3",
            "--set",
            "tune.space={\"optimizer.lr\" = { values = [1e-5, 0.03] }}",
        ])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("cv")));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let trials = doc["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    for t in trials {
        let folds: Vec<f64> = t["fold_scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(folds.len(), 3, "{t}");
        let mean = folds.iter().sum::<f64>() / 3.0;
        assert!((t["score"].as_f64().unwrap() - mean).abs() < 1e-12, "{t}");
        // Different folds validate on different flowers: the scores differ.
        assert!(folds.iter().any(|f| *f != folds[0]), "{t}");
    }
    assert_eq!(trials[0]["values"]["optimizer.lr"], 0.03);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--threads` sets the worker threads of any command: the same seed and thread count give
/// the same bytes (here an LSTM whose batches run as two groups of sequences on two threads),
/// a count of 0 is refused, naming the option, and one far above the cores is warned about.
#[test]
fn the_same_seed_and_thread_count_give_the_same_model() {
    let dir = scratch("threads");
    let config = repo().join("examples/japanese_vowels_lstm.toml");
    let train = |threads: &str, out: &str| {
        run(nabla()
            .args([
                "train",
                "-q",
                "--threads",
                threads,
                "--set",
                "train.epochs=2",
                "--out",
            ])
            .arg(dir.join(out))
            .arg(&config));
        std::fs::read(dir.join(out).join("model.safetensors")).unwrap()
    };
    let first = train("2", "a");
    assert_eq!(first, train("2", "b"), "two runs on two threads differ");
    assert!(!train("1", "c").is_empty());
    let err = refuses_arguments(nabla().args(["train", "--threads", "0"]).arg(&config));
    assert!(
        err.contains("--threads") && err.contains("0 is not in 1.."),
        "{err}"
    );
    // Far more threads than cores is allowed, with a warning (here before a run that fails).
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    for (threads, warned) in [(cores, false), (8 * cores + 1, true)] {
        let out = nabla()
            .args(["report", "--threads", &threads.to_string()])
            .arg(dir.join("missing"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        let warning = format!("warning: {threads} worker threads");
        assert_eq!(err.contains(&warning), warned, "{threads} threads: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--simd` (or `NABLA_SIMD`) caps the vector instructions of nabla's own loops: AVX2 and AVX-512
/// train the same bytes, bench lines say which level ran, and an unknown level is refused,
/// naming where it came from.
#[test]
fn simd_levels_are_chosen_reported_and_checked() {
    let dir = scratch("simd");
    let config = repo().join("examples/xor.toml");
    let train = |level: &str, out: &str| {
        run(nabla()
            .args([
                "train",
                "-q",
                "--simd",
                level,
                "--set",
                "train.epochs=50",
                "--out",
            ])
            .arg(dir.join(out))
            .arg(&config));
        std::fs::read(dir.join(out).join("model.safetensors")).unwrap()
    };
    assert_eq!(
        train("avx2", "a"),
        train("avx512", "b"),
        "AVX2 and AVX-512 differ"
    );

    let out = nabla()
        .args(["bench", "mlp", "--min-time", "0.001"])
        .env("NABLA_SIMD", "baseline")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8(out.stdout).unwrap();
    for line in lines.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["simd"], "baseline", "{line}");
    }
    assert!(!lines.is_empty());

    let err = refuses_arguments(nabla().args(["train", "--simd", "sse9"]).arg(&config));
    assert!(
        err.contains("--simd") && err.contains("expected avx512, avx2 or baseline"),
        "{err}"
    );
    let err = rejects(nabla().arg("train").arg(&config).env("NABLA_SIMD", "sse9"));
    assert!(
        err.contains("NABLA_SIMD") && err.contains("'sse9'"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

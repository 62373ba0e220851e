//! The shipped GAN config (`examples/digits_gan.toml`) trained through the binary on the 8x8
//! digits: its samples grow digit-like and cover every digit (measured against real digits, and
//! against its own first epoch), the report shows the samples and the measures, `nabla sample`
//! writes digits in the training file's columns and units, a killed run resumes to the same
//! bytes, and config mistakes name their key.

mod common;

use common::{
    read_json, read_json_lines, rejects, rejects_overrides, repo, run, run_maybe_killed, scratch,
    stdout,
};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

fn config() -> std::path::PathBuf {
    repo().join("examples/digits_gan.toml")
}

fn train(dir: &Path, extra: &[&str]) -> serde_json::Value {
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir)
        .arg(config())
        .args(extra));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn the_digits_gan_learns_to_draw_every_digit() {
    let dir = scratch("gan").join("run");
    // 120 of the config's 200 epochs: past the early phase where coverage still swings (from
    // about epoch 80 on every digit is drawn), so that other floating-point paths (another
    // GEMM kernel) land in the same regime.
    let summary = train(&dir, &["--set", "train.epochs=120"]);
    let samples = &summary["gan"]["samples"];
    let figure = |key: &str| samples[key].as_f64().unwrap();
    // Every digit drawn, in near-even shares (each sample takes the class of its nearest
    // training digit), and about as varied as real test digits: no mode collapse.
    assert!(figure("classes_covered") >= 9.0, "{samples}");
    assert!(figure("class_entropy") > 0.9, "{samples}");
    assert!((0.6..1.4).contains(&figure("diversity")), "{samples}");
    assert_eq!(summary["gan"]["split"], "test");
    assert!(summary["gan"]["real"]["class_entropy"].as_f64().unwrap() > 0.97);

    // Against its own first epoch: the samples moved towards the digits and spread out.
    let epochs = read_json_lines(dir.join("metrics.jsonl"));
    assert_eq!(epochs.len(), 120);
    // The GAN doctor watched it and found nothing wrong.
    assert_eq!(findings(&dir), []);
    let first = &epochs[0]["samples"];
    assert!(
        figure("nearest_distance") < 0.8 * first["nearest_distance"].as_f64().unwrap(),
        "{samples} vs epoch 1 {first}"
    );
    assert!(figure("diversity") > 2.0 * first["diversity"].as_f64().unwrap());
    for e in &epochs {
        for key in ["d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm"] {
            assert!(e["train"][key].as_f64().unwrap().is_finite(), "{e}");
        }
    }
    // The discriminator cannot tell at the end: it neither rejects every sample nor is fooled.
    let last = &epochs[119]["train"];
    assert!(
        (0.1..0.9).contains(&last["d_fake"].as_f64().unwrap()),
        "{last}"
    );

    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("Samples of the generator"));
    assert!(report.contains("data:image/png;base64,"));
    assert!(report.contains("real test data"));
    assert!(report.contains("mean output (0.5: it cannot tell)"));

    // `nabla sample`: digits in the training file's pixel columns and units (0..16).
    let file = dir.join("samples.csv");
    let draw = |seed: &str, to: &Path| {
        run(nabla()
            .args(["sample", "-n", "20", "--seed", seed, "-o"])
            .arg(to)
            .arg(&dir));
        std::fs::read_to_string(to).unwrap()
    };
    let csv = draw("3", &file);
    let train_header = std::fs::read_to_string(repo().join("data/digits/train.csv")).unwrap();
    let pixel_columns: Vec<&str> = train_header
        .lines()
        .next()
        .unwrap()
        .split(',')
        .filter(|c| *c != "digit")
        .collect();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap().split(',').collect::<Vec<_>>(),
        pixel_columns
    );
    let rows: Vec<Vec<f64>> = lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().flatten().all(|v| (0.0..=16.0).contains(v)));
    assert!(
        rows.iter().flatten().any(|v| *v > 12.0),
        "ink in the samples"
    );
    assert_eq!(
        draw("3", &dir.join("again.csv")),
        csv,
        "same seed, same samples"
    );
    assert_ne!(draw("4", &dir.join("other.csv")), csv);

    // A GAN has nothing to evaluate on a file: the error says what to do instead.
    let err = rejects(
        nabla()
            .arg("eval")
            .arg(&dir)
            .arg(repo().join("data/digits/test.csv")),
    );
    assert!(
        err.contains("GAN run") && err.contains("nabla sample"),
        "{err}"
    );
    // The report rebuilds from the files; resuming a finished run only reports it.
    std::fs::remove_file(dir.join("report.html")).unwrap();
    run(nabla().arg("report").arg(&dir));
    assert!(dir.join("report.html").is_file());
    let again = run(nabla()
        .args(["train", "-q", "--json", "--resume"])
        .arg(&dir));
    let again: serde_json::Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(again["gan"], summary["gan"]);
}

/// Trains the GAN config into `dir` in a child process (or resumes it), killed after
/// `kill_after` when given; returns whether it finished.
fn train_child(dir: &Path, resume: bool, kill_after: Option<Duration>) -> bool {
    let mut cmd = nabla();
    cmd.args(["train", "-q"]);
    if resume {
        cmd.arg("--resume").arg(dir);
    } else {
        cmd.arg(config())
            .args([
                "--set",
                "train.epochs=30",
                "--set",
                "train.checkpoint_seconds=0",
            ])
            .arg("--out")
            .arg(dir);
    }
    run_maybe_killed(&mut cmd, kill_after)
}

#[test]
fn a_killed_gan_run_resumes_to_the_same_bytes() {
    let dir = scratch("gan-kill");
    let reference = dir.join("reference");
    let start = Instant::now();
    train_child(&reference, false, None);
    let duration = start.elapsed();
    // The weights of both networks, both optimizers' states, and every epoch's figures.
    let files = [
        "model.safetensors",
        "optimizer.safetensors",
        "discriminator_optimizer.safetensors",
        "metrics.jsonl",
    ];
    let mut interrupted = 0;
    for (i, fraction) in [0.3, 0.6].into_iter().enumerate() {
        let run_dir = dir.join(format!("killed-{i}"));
        let mut finished = train_child(&run_dir, false, Some(duration.mul_f64(fraction)));
        interrupted += usize::from(!finished);
        let mut attempts = 0;
        while !finished {
            attempts += 1;
            assert!(attempts < 10, "resume does not make progress");
            let has_run = run_dir.join("history.json").is_file()
                || run_dir.join(".checkpoint-next/COMMITTED").is_file();
            finished = train_child(&run_dir, has_run, None);
        }
        for f in files {
            assert!(
                std::fs::read(run_dir.join(f)).unwrap()
                    == std::fs::read(reference.join(f)).unwrap(),
                "kill {i}: the resumed {f} differs"
            );
        }
    }
    assert!(
        interrupted >= 1,
        "no run was interrupted: nothing was tested"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The doctor's findings in a run's record, as (problem, 1-based epoch, config changes).
fn findings(dir: &Path) -> Vec<(String, u64, Vec<String>)> {
    read_json(dir.join("history.json"))["history"]["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| {
            e["diagnostics"]["findings"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|f| {
            let fix = f["fix"].as_array().cloned().unwrap_or_default();
            (
                f["problem"].as_str().unwrap().to_string(),
                f["epoch"].as_u64().unwrap(),
                fix.iter()
                    .map(|c| c.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}

/// The GAN doctor on the digits GAN unbalanced both ways, and starved of noise: a generator
/// learning 100x slower than its discriminator (which then rejects every sample), 10x faster
/// (whose samples collapse), and fed one noise value (whose varied samples stay on a few
/// digits). Each finding's config change, applied, gives a run without it; the shipped config's
/// run has none (`the_digits_gan_learns_to_draw_every_digit` checks 120 epochs).
#[test]
fn the_gan_doctor_names_a_winning_discriminator_and_a_collapse() {
    let dir = scratch("gan-doctor");
    let adam =
        |lr: &str| format!("gan.generator.optimizer={{type=\"adam\",lr={lr},betas=[0.5,0.999]}}");
    let cases = [
        (
            "slow",
            adam("2e-6"),
            "discriminator_wins",
            12,
            "gan.generator.optimizer.lr=0.0002",
        ),
        (
            "fast",
            adam("2e-3"),
            "mode_collapse",
            6,
            "gan.generator.optimizer.lr=0.0002",
        ),
        // Found from epoch 34 (seed 0): ten epochs of varied samples on at most 5 digits.
        (
            "narrow",
            "gan.latent=1".into(),
            "partial_mode_collapse",
            40,
            "gan.latent=32",
        ),
    ];
    for (name, change, problem, epochs, remedy) in cases {
        let epochs_set = format!("train.epochs={epochs}");
        let run_dir = dir.join(name);
        train(&run_dir, &["--set", &epochs_set, "--set", &change]);
        let found = findings(&run_dir);
        let (_, epoch, fix) = found
            .iter()
            .find(|(p, _, _)| p == problem)
            .unwrap_or_else(|| panic!("{name}: no {problem} in {found:?}"));
        assert!(
            *epoch >= 3,
            "{name}: three epochs must show it, found at {epoch}"
        );
        assert_eq!(fix, &[remedy], "{name}");
        let report = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
        assert!(report.contains(&problem.replace('_', " ")), "{name}");

        let fixed_dir = dir.join(format!("{name}-fixed"));
        let mut args = vec!["--set", &epochs_set, "--set", &change];
        for change in fix {
            args.extend(["--set", change.as_str()]);
        }
        train(&fixed_dir, &args);
        assert_eq!(findings(&fixed_dir), [], "{name} with the fix");
    }
}

/// `nabla doctor` on a GAN config plays 10 epochs of its game and prints what the GAN doctor
/// found; `--fixed` writes a GAN config (no top-level optimizer) that probes clean.
#[test]
fn nabla_doctor_probes_a_gan_config_and_writes_the_fix() {
    let dir = scratch("gan-doctor-probe");
    let fixed = dir.join("fixed.toml");
    let out = stdout(&run(nabla()
        .arg("doctor")
        .arg(config())
        .args(["--set", "gan.generator.optimizer.lr=2e-6", "--fixed"])
        .arg(&fixed)));
    assert!(
        out.contains("1 problem(s) found (D(G(z))")
            && out.contains("over 10 epochs")
            && out.contains("doctor: discriminator wins")
            && out.contains("try: --set 'gan.generator.optimizer.lr=0.0002'"),
        "{out}"
    );
    let text = std::fs::read_to_string(&fixed).unwrap();
    assert!(text.contains("gan.generator.optimizer.lr=0.0002"), "{text}");
    let out = stdout(&run(nabla().args(["doctor", "--json"]).arg(&fixed)));
    let diagnosis: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diagnosis["findings"], serde_json::json!([]), "{out}");
    assert_eq!(diagnosis["d_fake"].as_array().unwrap().len(), 10);
}

#[test]
fn gan_config_mistakes_name_their_key() {
    let dir = scratch("gan-errors");
    let reject = |sets: &[&str]| rejects_overrides(&config(), &dir.join("never"), sets);
    let err = reject(&["gan.generator.layers.4.units=50"]);
    assert!(
        err.contains("gan.generator.layers[5]") && err.contains("units = 64"),
        "{err}"
    );
    let err = reject(&["gan.discriminator.layers.5.units=2"]);
    assert!(
        err.contains("gan.discriminator.layers[5]") && err.contains("one logit"),
        "{err}"
    );
    let err = reject(&["optimizer.lr=0.1"]);
    assert!(err.contains("gan.generator.optimizer"), "{err}");
    let err = reject(&["gan.real_label=1.5"]);
    assert!(err.contains("gan.real_label"), "{err}");
    let err = reject(&["gan.latnt=3"]);
    assert!(err.contains("latent"), "{err}");
    let err = reject(&["gan.generator.optimizer.lr=-1"]);
    assert!(
        err.contains("gan.generator.optimizer") && err.contains("lr must be"),
        "{err}"
    );
    let err = reject(&["train.early_stopping.patience=3"]);
    assert!(err.contains("train.early_stopping"), "{err}");
    // Schedules belong to each network; a plateau schedule has no validation loss to watch.
    let err = reject(&["schedule={type=\"step\",step_size=2}"]);
    assert!(err.contains("gan.generator.schedule"), "{err}");
    let err = reject(&["gan.discriminator.schedule={type=\"reduce_on_plateau\"}"]);
    assert!(
        err.contains("gan.discriminator.schedule") && err.contains("validation loss"),
        "{err}"
    );
    let err = reject(&["gan.generator.schedule={type=\"step\",step_size=0}"]);
    assert!(
        err.contains("gan.generator.schedule") && err.contains("step_size"),
        "{err}"
    );
    let err = reject(&["data.text={ context = 8 }"]);
    assert!(
        err.contains("data.text") && err.contains("GANs over text"),
        "{err}"
    );
    assert!(
        !dir.join("never").exists(),
        "a rejected config leaves no run behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

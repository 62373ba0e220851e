//! `nabla lr-find`: the range test's suggestion trains a config that the configured rate
//! leaves on a plateau, and the rate where the sweep diverged trains worse (a test loss many
//! times larger); a loss that cannot
//! fall gets no suggestion; bad options and GAN configs are refused by name.

mod common;

use common::{nabla, nabla_ok, repo, scratch};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

#[test]
fn the_suggested_rate_trains_what_the_configured_one_leaves_on_a_plateau() {
    // Adam at 1e-7 on the digits: the doctor's "learning rate too small".
    let config = repo().join("examples/broken/plateau.toml");
    let config = config.to_str().unwrap();
    let sweep = json(&nabla_ok(&["lr-find", config, "--json"]));
    let suggested = sweep["suggested"].as_f64().unwrap();
    let diverged = sweep["diverged_at"].as_f64().unwrap();
    assert!((1e-4..1e-1).contains(&suggested), "{suggested}");
    assert!(diverged > 10.0 * suggested, "{sweep}");
    // The loss fell by more than half before the steps overshot.
    let (first, lowest) = (
        sweep["first_loss"].as_f64().unwrap(),
        sweep["lowest_loss"].as_f64().unwrap(),
    );
    assert!(lowest < 0.5 * first, "{first} -> {lowest}");

    // Trained for the config's 10 epochs at each rate, scored on the digits' test file:
    // (accuracy, loss).
    let dir = scratch("lr_find");
    let scores = |lr: f64| -> (f64, f64) {
        let run = dir.join(format!("lr{lr}"));
        nabla_ok(&[
            "train",
            "-q",
            config,
            "--set",
            &format!("optimizer.lr={lr}"),
            "--out",
            run.to_str().unwrap(),
        ]);
        let test = repo().join("data/digits/test.csv");
        let m = json(&nabla_ok(&[
            "eval",
            run.to_str().unwrap(),
            test.to_str().unwrap(),
            "--json",
        ]));
        (m["accuracy"].as_f64().unwrap(), m["loss"].as_f64().unwrap())
    };
    let (suggested_scores, configured, overshot) =
        (scores(suggested), scores(1e-7), scores(diverged));
    assert!(suggested_scores.0 > 0.95, "{suggested_scores:?}");
    assert!(configured.0 < 0.5, "{configured:?}");
    // Adam's steps at the rate where the sweep took off still find most digits, but blow the
    // weights up: a confident, badly calibrated model whose test loss is many times larger.
    assert!(
        overshot.0 <= suggested_scores.0 && overshot.1 > 10.0 * suggested_scores.1,
        "{overshot:?} vs {suggested_scores:?}"
    );

    // The text form says the same, with the change to make, and the chart is written.
    let plot = dir.join("lr.svg");
    let text = nabla_ok(&["lr-find", config, "--plot", plot.to_str().unwrap()]);
    assert!(text.contains("suggested learning rate:"), "{text}");
    assert!(text.contains("x smaller"), "{text}");
    assert!(text.contains("try: --set 'optimizer.lr="), "{text}");
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("smoothed"), "{svg}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_loss_no_rate_lowers_gets_no_suggestion() {
    // All-zero weights: every unit the same, the loss cannot fall at any rate.
    let config = repo().join("examples/broken/symmetric.toml");
    let config = config.to_str().unwrap();
    let sweep = json(&nabla_ok(&["lr-find", config, "--json"]));
    assert!(sweep["suggested"].is_null(), "{sweep}");
    let text = nabla_ok(&["lr-find", config]);
    assert!(text.contains("the loss did not fall"), "{text}");
    assert!(
        text.contains("`nabla doctor` looks for the cause"),
        "{text}"
    );
}

#[test]
fn bad_options_and_gan_configs_are_refused_by_name() {
    for (args, want) in [
        (
            &["lr-find", "--start", "0"][..],
            "--start: must be a finite learning rate > 0, got 0",
        ),
        (
            &["lr-find", "--start", "1e-3", "--end", "1e-4"][..],
            "--end: must be above start (0.00100), got 1.00e-4",
        ),
        (
            &["lr-find", "--steps", "3"][..],
            "--steps: must be in 10..=100000, got 3",
        ),
        (
            &["lr-find", "--plot", "curve.png"][..],
            "--plot curve.png: the chart is written as SVG",
        ),
    ] {
        let (code, _, err) = nabla(args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let gan = repo().join("examples/digits_gan.toml");
    let (code, _, err) = nabla(&["lr-find", gan.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("digits_gan.toml: a GAN trains two networks"),
        "{err}"
    );
}

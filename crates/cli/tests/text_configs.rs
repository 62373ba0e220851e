//! Character-level language models through the binary, on a small slice of the KJV text (the
//! shipped kjv_*.toml configs train on all of it for the README's figures): an LSTM trained a
//! few epochs predicts held-out text in fewer bits per character than a bigram model fitted
//! here on the same training text; `eval` measures a text file the same way; `sample` writes
//! text from the model's characters, the same for the same seed; `predict` says what to use
//! instead; mistakes in a text config name their key, line or character; and a model trained
//! with its state carried across batches (truncated BPTT) learns to use that state.

mod common;

use common::{rejects, rejects_overrides, repo, run, scratch, stdout};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

/// The training and held-out texts: consecutive stretches of the Old Testament.
fn texts() -> (String, String) {
    let all = std::fs::read_to_string(repo().join("../shared/data/kjv/kjv_train.txt")).unwrap();
    (
        all[..400_000].to_string(),
        all[400_000..460_000].to_string(),
    )
}

/// Bits per character of `test` under a bigram model of `train` with add-one smoothing
/// (each character predicted from the one before it).
fn bigram_bits(train: &str, test: &str, vocabulary: usize) -> f64 {
    let mut pairs: HashMap<(char, char), f64> = HashMap::new();
    let mut firsts: HashMap<char, f64> = HashMap::new();
    for (a, b) in train.chars().zip(train.chars().skip(1)) {
        *pairs.entry((a, b)).or_default() += 1.0;
        *firsts.entry(a).or_default() += 1.0;
    }
    let (mut bits, mut n) = (0.0, 0.0);
    for (a, b) in test.chars().zip(test.chars().skip(1)) {
        let p = (pairs.get(&(a, b)).unwrap_or(&0.0) + 1.0)
            / (firsts.get(&a).unwrap_or(&0.0) + vocabulary as f64);
        bits -= p.log2();
        n += 1.0;
    }
    bits / n
}

fn config(dir: &Path, characters: usize) -> std::path::PathBuf {
    let path = dir.join("chars.toml");
    std::fs::write(
        &path,
        format!(
            "seed = 0\n\
             [data]\ntrain = \"train.txt\"\ntest = \"test.txt\"\ntext = {{ context = 50 }}\n\
             valid_split = 0.05\n\
             [[model.layers]]\ntype = \"embedding\"\nvocab = {characters}\ndim = 16\n\
             [[model.layers]]\ntype = \"lstm\"\nunits = 96\noutput = \"all\"\n\
             [[model.layers]]\ntype = \"linear\"\nunits = {characters}\n\
             [optimizer]\ntype = \"adam\"\nlr = 0.005\n\
             [train]\nepochs = 3\nbatch_size = 32\nclip_grad_norm = 5.0\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn an_lstm_predicts_held_out_text_better_than_a_bigram_model() {
    let dir = scratch("text");
    let (train, test) = texts();
    let characters: BTreeSet<char> = train.chars().collect();
    assert!(test.chars().all(|c| characters.contains(&c)));
    std::fs::write(dir.join("train.txt"), &train).unwrap();
    std::fs::write(dir.join("test.txt"), &test).unwrap();
    let bigram = bigram_bits(&train, &test, characters.len());
    // Sanity of the yardstick: far below the 6 bits of a uniform guess over ~60 characters.
    assert!((2.5..4.0).contains(&bigram), "bigram {bigram}");

    let config = config(&dir, characters.len());
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir.join("run"))
        .arg(&config));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let test_metrics = &summary["test"];
    let bits = test_metrics["bits_per_char"].as_f64().unwrap();
    assert!(
        bits < bigram - 0.2,
        "LSTM {bits} bits/char vs bigram {bigram}"
    );
    // Bits are the log-loss in base 2.
    let log_loss = test_metrics["log_loss"].as_f64().unwrap();
    assert!((bits - log_loss / std::f64::consts::LN_2).abs() < 1e-9);
    assert!(test_metrics.get("f1").is_none());

    // eval on the same file measures the same windows.
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(dir.join("test.txt")));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!((metrics["bits_per_char"].as_f64().unwrap() - bits).abs() < 1e-6 * bits);
    // With its state carried from window to window the model predicts the characters at the
    // start of a window with the context before it: fewer bits.
    let carried = metrics["bits_per_char_carried"].as_f64().unwrap();
    assert!(
        carried < bits - 0.005,
        "carried {carried} vs windowed {bits}"
    );

    // sample continues a prompt with the training text's characters; a seed repeats it.
    let sample = |seed: &str| {
        stdout(&run(nabla()
            .args([
                "sample",
                "--prompt",
                "And God said",
                "-n",
                "200",
                "--seed",
                seed,
            ])
            .arg(dir.join("run"))))
    };
    let (a, b, c) = (sample("1"), sample("1"), sample("2"));
    assert!(a.starts_with("And God said"), "{a}");
    assert_eq!(
        a.trim_end_matches('\n').chars().count(),
        "And God said".len() + 200
    );
    assert!(a.chars().all(|ch| characters.contains(&ch)));
    assert_eq!(a, b);
    assert_ne!(a, c);
    // A trained model writes words: most of what it writes between spaces is a word of the
    // training text (an untrained one writes noise).
    let words: BTreeSet<&str> = train.split_whitespace().collect();
    let written: Vec<&str> = a.split_whitespace().skip(3).collect();
    let known = written.iter().filter(|w| words.contains(*w)).count();
    assert!(
        known * 2 > written.len(),
        "{known} of {} words known: {a}",
        written.len()
    );
    let report = std::fs::read_to_string(dir.join("run/report.html")).unwrap();
    assert!(report.contains("Text written by the model"));

    // predict has nothing to say per row; the error says what to use.
    let err = rejects(
        nabla()
            .arg("predict")
            .arg(dir.join("run"))
            .arg(dir.join("test.txt")),
    );
    assert!(
        err.contains("nabla eval") && err.contains("nabla sample"),
        "{err}"
    );
    // A character the training text lacks: its line and column.
    std::fs::write(dir.join("unseen.txt"), "In the beginning\nwas the Word§\n").unwrap();
    let err = rejects(
        nabla()
            .args(["eval"])
            .arg(dir.join("run"))
            .arg(dir.join("unseen.txt")),
    );
    assert!(
        err.contains("unseen.txt:2") && err.contains("column 13") && err.contains("U+00A7"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn text_config_mistakes_name_their_key() {
    let dir = scratch("text-errors");
    std::fs::write(dir.join("train.txt"), "abc abc abc\n".repeat(200)).unwrap();
    std::fs::write(dir.join("test.txt"), "abc\n".repeat(20)).unwrap();
    // 5 characters: '\n', ' ', 'a', 'b', 'c'.
    let config = config(&dir, 5);
    let reject = |set: &str| rejects_overrides(&config, &dir.join("never"), &[set]);
    let err = reject("data.target=\"x\"");
    assert!(
        err.contains("data.target") && err.contains("data.text"),
        "{err}"
    );
    let err = reject("data.scaling=\"standardize\"");
    assert!(err.contains("data.scaling"), "{err}");
    let err = reject("model.layers.0.vocab=4");
    assert!(
        err.contains("model.layers[0].vocab") && err.contains("5 distinct characters"),
        "{err}"
    );
    let err = reject("model.layers.2.units=7");
    assert!(
        err.contains("model.layers[2]") && err.contains("units = 5"),
        "{err}"
    );
    let err = reject("model.layers.1.output=\"last\"");
    assert!(
        err.contains("[batch, 5]") && err.contains("[50, 5]"),
        "{err}"
    );
    let err = reject("data.text.context=0");
    assert!(err.contains("data.text.context"), "{err}");
    let err = reject("data.text.context=5000");
    assert!(
        err.contains("data.text.context") && err.contains("too few"),
        "{err}"
    );
    let err = reject("loss.type=\"mse\"");
    assert!(
        err.contains("loss.type") && err.contains("cross_entropy"),
        "{err}"
    );
    assert!(!dir.join("never").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_text_config_tunes_on_bits_per_char() {
    let dir = scratch("text-tune");
    std::fs::write(dir.join("train.txt"), "abc abd abe\n".repeat(200)).unwrap();
    std::fs::write(dir.join("test.txt"), "abc\n".repeat(20)).unwrap();
    // 7 characters: '\n', ' ', 'a' .. 'e'.
    let config = config(&dir, 7);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += "[tune]\nmetric = \"bits_per_char\"\n[tune.space]\n\
             \"optimizer.lr\" = { values = [1e-5, 0.01] }\n";
    std::fs::write(&config, text).unwrap();
    let out = run(nabla()
        .args(["tune", "--grid", "-q", "--json"])
        .arg(&config)
        .arg("--out")
        .arg(dir.join("search")));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let trials = doc["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    // Ranked by validation bits per character: the learning rate that learns comes first, far
    // below the ~2.8 bits (log2 7) of a model that has not learned.
    assert_eq!(trials[0]["values"]["optimizer.lr"], 0.01, "{doc}");
    let (best, worst) = (
        trials[0]["score"].as_f64().unwrap(),
        trials[1]["score"].as_f64().unwrap(),
    );
    assert!(best < 1.5 && worst > 2.5, "{best} {worst}");
    // A metric a character model does not measure is refused, with the ones it does.
    let err = rejects(
        nabla()
            .args(["tune", "--grid", "-q", "--set", "tune.metric=\"f1\""])
            .arg(&config)
            .arg("--out")
            .arg(dir.join("never")),
    );
    assert!(
        err.contains("tune.metric") && err.contains("bits_per_char"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `data.text.carry_state`: training reads the text as one stream per batch row, each batch
/// continuing the previous one's state, and validation and test read the same way. The model
/// learns to use the state it is handed: scored from the zero-state windows it never trained
/// on (eval's `bits_per_char`) it does worse than with its state carried (the run's test
/// figure, and eval's `bits_per_char_carried` over 64 streams, close to it), and it beats the
/// same model trained on zero-state windows.
#[test]
fn a_model_trained_with_carried_state_uses_it() {
    let dir = scratch("text-carried");
    let (train, test) = texts();
    std::fs::write(dir.join("train.txt"), &train[..150_000]).unwrap();
    std::fs::write(dir.join("test.txt"), &test[..30_000]).unwrap();
    let characters: BTreeSet<char> = train[..150_000].chars().collect();
    assert!(test[..30_000].chars().all(|c| characters.contains(&c)));
    let config = config(&dir, characters.len());
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir.join("run"))
        .arg(&config)
        .args([
            "--set",
            "data.text.carry_state=true",
            "--set",
            "train.epochs=2",
        ]));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let carried = summary["test"]["bits_per_char"].as_f64().unwrap();
    assert!(carried < 3.0, "{summary}");
    let out = run(nabla()
        .args(["eval", "--json"])
        .arg(dir.join("run"))
        .arg(dir.join("test.txt")));
    let metrics: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let windowed = metrics["bits_per_char"].as_f64().unwrap();
    let carried_eval = metrics["bits_per_char_carried"].as_f64().unwrap();
    assert!(
        carried < windowed - 0.02,
        "carried {carried} vs zero-state windows {windowed}"
    );
    assert!(
        (carried_eval - carried).abs() < 0.02,
        "eval carried {carried_eval} vs the run's {carried}"
    );
    // And it beats the same model trained on zero-state windows, scored as it was trained
    // (measured: 2.67 against 2.73 bits).
    let out = run(nabla()
        .args(["train", "-q", "--json", "--out"])
        .arg(dir.join("windowed"))
        .arg(&config)
        .args(["--set", "train.epochs=2"]));
    let summary: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let windowed_run = summary["test"]["bits_per_char"].as_f64().unwrap();
    assert!(
        carried < windowed_run - 0.02,
        "carried training {carried} vs windowed training {windowed_run}"
    );

    // A validation text too short for one window per batch row names its key and what it needs.
    let err = rejects_overrides(
        &config,
        &dir.join("never"),
        &["data.text.carry_state=true", "data.valid_split=0.005"],
    );
    assert!(
        err.contains("data.valid_split") && err.contains("32 streams") && err.contains("1601"),
        "{err}"
    );
    assert!(!dir.join("never").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

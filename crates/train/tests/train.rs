//! The training loop, metrics and checkpoints: determinism, exact resume from files, early
//! stopping, metrics against hand-computed values, and checkpoint errors.

use nabla_core::{DType, Rng, Tensor};
use nabla_data::Dataset;
use nabla_nn::layers::{BatchNorm2d, Conv2d, Dropout, Linear, Relu, Sequential, Tanh};
use nabla_nn::loss::Loss;
use nabla_nn::optim::{Adam, Optimizer};
use nabla_nn::{Module, ModuleExt, schedule::Schedule};
use nabla_train::checkpoint::{
    load_history, load_optimizer, load_weights, save_history, save_optimizer, save_weights,
};
use nabla_train::metrics::{MetricAccumulator, OutputKind};
use nabla_train::{EarlyStopping, History, TrainConfig, evaluate, fit, fit_from};

/// Two interleaved noisy spirals-ish classes in 2-D: learnable but not trivially.
fn toy_classes(n: usize, seed: u64) -> Dataset {
    let mut rng = Rng::seed(seed);
    let mut x = Vec::new();
    let mut y = Vec::new();
    for i in 0..n {
        let c = (i % 3) as i64;
        let angle = c as f64 * 2.1 + rng.normal() * 0.4;
        let r = 1.0 + rng.uniform();
        x.extend([(r * angle.cos()) as f32, (r * angle.sin()) as f32]);
        y.push(c);
    }
    Dataset::new(
        Tensor::from_vec(x, [n, 2]).unwrap(),
        Tensor::from_vec(y, [n]).unwrap(),
    )
    .unwrap()
}

fn model(seed: u64) -> Sequential {
    let mut rng = Rng::seed(seed);
    Sequential::new()
        .with(Linear::new(2, 16, &mut rng).unwrap())
        .with(Relu)
        .with(Dropout::new(0.2).unwrap())
        .with(Linear::new(16, 3, &mut rng).unwrap())
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: 16,
        seed: 5,
        schedule: Schedule::Step {
            step_size: 2,
            gamma: 0.7,
        }
        .into(),
        clip_grad_norm: Some(5.0),
        ..Default::default()
    }
}

fn weights(m: &Sequential) -> Vec<Vec<f32>> {
    m.state_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().to_vec::<f32>().unwrap())
        .collect()
}

fn losses(h: &History) -> Vec<f64> {
    h.epochs.iter().map(|e| e.train["loss"]).collect()
}

#[test]
fn training_learns_and_the_same_seed_gives_the_same_run() {
    let (train, valid) = (toy_classes(240, 1), toy_classes(90, 2));
    let run = |seed: u64| {
        let m = model(seed);
        let mut adam = Adam::new(0.02).unwrap();
        let h = fit(&m, &mut adam, &train, Some(&valid), &config(8), &mut []).unwrap();
        (h, weights(&m))
    };
    let (h1, w1) = run(0);
    let (h2, w2) = run(0);
    assert_eq!(losses(&h1), losses(&h2));
    assert_eq!(w1, w2);
    let (h3, _) = run(1);
    assert_ne!(losses(&h1), losses(&h3));
    let first = h1.epochs[0].valid.as_ref().unwrap();
    let last = h1.epochs.last().unwrap().valid.as_ref().unwrap();
    assert!(last["loss"] < 0.6 * first["loss"], "{first:?} -> {last:?}");
    assert!(last["accuracy"] > 0.8, "{last:?}");
    // The step schedule: 0.02, 0.02, 0.014, 0.014, 0.0098, ...
    let lrs: Vec<f64> = h1.epochs.iter().map(|e| e.learning_rate).collect();
    assert!(
        (lrs[2] - 0.014).abs() < 1e-12 && (lrs[4] - 0.0098).abs() < 1e-12,
        "{lrs:?}"
    );
}

#[test]
fn the_lr_range_test_only_looks() {
    use nabla_train::lr_find::{SweepOptions, sweep};
    let train = toy_classes(240, 1);
    let options = SweepOptions {
        start: 1e-5,
        end: 100.0,
        steps: 60,
    };
    let m = model(0);
    let mut adam = Adam::new(0.02).unwrap();
    let before = weights(&m);
    let s = sweep(&m, &mut adam, &train, &config(8), options).unwrap();
    // The model and the optimizer are as they were: training afterwards is the run it would
    // have been (Adam's moments and step count included), and the same rate is set.
    assert_eq!(weights(&m), before);
    assert_eq!(adam.learning_rate(), 0.02);
    let after = fit(&m, &mut adam, &train, None, &config(3), &mut []).unwrap();
    let fresh = model(0);
    let untouched = fit(
        &fresh,
        &mut Adam::new(0.02).unwrap(),
        &train,
        None,
        &config(3),
        &mut [],
    )
    .unwrap();
    assert_eq!(losses(&after), losses(&untouched));
    assert_eq!(weights(&m), weights(&fresh));
    // The rates are geometric from start, each step's ratio (end/start)^(1/59); the curve falls
    // and then, at Adam's rates of 1 and more, takes off before the end.
    let ratio = (100.0f64 / 1e-5).powf(1.0 / 59.0);
    assert_eq!(s.learning_rates[0], 1e-5);
    assert!(
        s.learning_rates
            .windows(2)
            .all(|w| (w[1] / w[0] - ratio).abs() < 1e-9)
    );
    let diverged = s.diverged_at.expect("diverges below 100");
    assert!(s.learning_rates.len() < 60 && diverged > s.lowest, "{s:?}");
    assert!(s.lowest_loss < 0.7 * s.first_loss, "{s:?}");
    assert_eq!(s.suggested, Some(s.lowest / 10.0));
    // The same seed, the same sweep.
    let again = sweep(&m, &mut adam, &train, &config(8), options).unwrap();
    assert_eq!(
        again.losses,
        sweep(&m, &mut adam, &train, &config(8), options)
            .unwrap()
            .losses
    );
    // A range that is not one is refused, naming the option.
    let bad = SweepOptions {
        steps: 5,
        ..options
    };
    let err = sweep(&m, &mut adam, &train, &config(8), bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("steps must be in 10..=100000, got 5"), "{err}");
}

#[test]
fn resuming_from_saved_files_continues_bit_exactly() {
    let (train, valid) = (toy_classes(200, 3), toy_classes(60, 4));
    let dir = std::env::temp_dir().join(format!("nabla-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let straight = model(7);
    let mut adam = Adam::new(0.01).unwrap();
    let full = fit(
        &straight,
        &mut adam,
        &train,
        Some(&valid),
        &config(6),
        &mut [],
    )
    .unwrap();

    // Three epochs, then everything to disk.
    let first = model(7);
    let mut adam = Adam::new(0.01).unwrap();
    let part = fit(&first, &mut adam, &train, Some(&valid), &config(3), &mut []).unwrap();
    save_weights(&dir.join("model.safetensors"), &first.state_vars()).unwrap();
    save_optimizer(
        &dir.join("optimizer.safetensors"),
        adam.name(),
        &adam.state(),
    )
    .unwrap();
    save_history(&dir.join("history.json"), &part).unwrap();
    drop(part);
    // A fresh process would build a fresh model (other initial weights) and load the files.
    let resumed = model(99);
    load_weights(&dir.join("model.safetensors"), &resumed.state_vars()).unwrap();
    let (name, state) = load_optimizer(&dir.join("optimizer.safetensors")).unwrap();
    assert_eq!(name, "adam");
    let mut adam = Adam::new(0.5).unwrap();
    adam.load_state(&state).unwrap();
    let part = load_history(&dir.join("history.json")).unwrap();
    assert_eq!(part.epochs.len(), 3);
    let rest = fit_from(
        &resumed,
        &mut adam,
        &train,
        Some(&valid),
        &config(6),
        part,
        &mut [],
    )
    .unwrap();
    assert_eq!(losses(&rest), losses(&full));
    assert_eq!(weights(&resumed), weights(&straight));
    // The same state gives the same bytes every time (its metadata, a step count per
    // parameter, is written in sorted order, not a hash map's), and they read back the same.
    let bytes = |adam: &Adam| nabla_train::checkpoint::optimizer_bytes(adam.name(), &adam.state());
    let first_bytes = bytes(&adam).unwrap();
    for _ in 0..5 {
        assert_eq!(bytes(&adam).unwrap(), first_bytes);
    }
    std::fs::write(dir.join("again.safetensors"), &first_bytes).unwrap();
    let (_, again) = load_optimizer(&dir.join("again.safetensors")).unwrap();
    assert_eq!(again.steps, adam.state().steps);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() {
    // A tiny training set and a large model overfit: the validation loss turns up.
    let (train, valid) = (toy_classes(24, 5), toy_classes(300, 6));
    let mut rng = Rng::seed(3);
    let m = Sequential::new()
        .with(Linear::new(2, 64, &mut rng).unwrap())
        .with(Tanh)
        .with(Linear::new(64, 3, &mut rng).unwrap());
    let mut adam = Adam::new(0.05).unwrap();
    let cfg = TrainConfig {
        epochs: 300,
        batch_size: 8,
        early_stopping: Some(EarlyStopping {
            patience: 5,
            min_delta: 0.0,
            restore_best: true,
        }),
        ..Default::default()
    };
    let h = fit(&m, &mut adam, &train, Some(&valid), &cfg, &mut []).unwrap();
    assert!(
        h.stopped_early && h.epochs.len() < 300,
        "{} epochs",
        h.epochs.len()
    );
    let best = h.best_epoch.unwrap();
    assert_eq!(h.epochs.len(), best + 1 + 5);
    let best_loss = h.epochs[best].valid.as_ref().unwrap()["loss"];
    let now = evaluate(&m, &valid, &cfg.loss, 64).unwrap()["loss"];
    assert!(
        (now - best_loss).abs() < 1e-6,
        "restored {now} vs best {best_loss}"
    );
}

#[test]
fn a_diverging_run_stops_with_an_explanation() {
    // Unscaled inputs (house areas in the thousands) and plain SGD: the steps overshoot and grow
    // until the squared error overflows.
    let area = [1200.0f32, 1500.0, 2100.0, 1100.0, 1300.0, 900.0];
    let price = [70.0f32, 120.0, 230.0, 105.0, 90.0, 55.0];
    let data = Dataset::new(
        Tensor::from_vec(area.to_vec(), [6, 1]).unwrap(),
        Tensor::from_vec(price.to_vec(), [6, 1]).unwrap(),
    )
    .unwrap();
    let m = Linear::new(1, 1, &mut Rng::seed(0)).unwrap();
    let mut sgd = nabla_nn::optim::Sgd::new(0.01).unwrap();
    let cfg = TrainConfig {
        epochs: 100,
        batch_size: 6,
        loss: Loss::Mse,
        ..Default::default()
    };
    let err = match fit(&m, &mut sgd, &data, None, &cfg, &mut []) {
        Ok(h) => panic!("expected divergence, got {} epochs", h.epochs.len()),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("training diverged: "), "{err}");
    // The trace: the outputs were still finite; squaring them in the loss overflowed f32.
    assert!(
        err.contains("the loss turned finite model outputs (max |x| "),
        "{err}"
    );
    assert!(err.contains("(lower the learning rate"), "{err}");
}

#[test]
fn classification_and_regression_metrics_match_hand_counts() {
    // Predictions (argmax): 0, 1, 1, 2, 2, 0 for truths 0, 1, 2, 2, 2, 1.
    let logits = Tensor::from_vec(
        vec![
            3.0f64, 0., 0., 0., 2., 0., 0., 1., 0., 0., 0., 1., 0., 0., 5., 1., 0., 0.,
        ],
        [6, 3],
    )
    .unwrap();
    let truth = Tensor::from_vec(vec![0i64, 1, 2, 2, 2, 1], [6]).unwrap();
    let mut acc = MetricAccumulator::default();
    acc.add(OutputKind::MultiClass, 0.5, &logits, &truth)
        .unwrap();
    let m = acc.finish(OutputKind::MultiClass);
    assert!((m["accuracy"] - 4.0 / 6.0).abs() < 1e-12);
    // Per class (precision, recall): 0: (1/2, 1/1), 1: (1/2, 1/2), 2: (2/2, 2/3).
    let p = (0.5 + 0.5 + 1.0) / 3.0;
    let r = (1.0 + 0.5 + 2.0 / 3.0) / 3.0;
    let f = (2.0 * 0.5 / 1.5 + 0.5 + 2.0 * (2.0 / 3.0) / (5.0 / 3.0)) / 3.0;
    assert!((m["precision"] - p).abs() < 1e-12 && (m["recall"] - r).abs() < 1e-12);
    assert!((m["f1"] - f).abs() < 1e-12);
    // Balanced accuracy: the mean recall of the three true classes.
    assert!((m["balanced_accuracy"] - r).abs() < 1e-12);
    // A binary classifier that says "0" to all of 9 negatives and 1 positive: accuracy 0.9,
    // balanced accuracy (1 + 0) / 2; one positive found of two raises it to (1 + 1/2) / 2.
    let all_negative = Tensor::from_vec(vec![-2.0f64; 10], [10, 1]).unwrap();
    let mut labels = vec![0.0f64; 10];
    labels[3] = 1.0;
    let mut acc = MetricAccumulator::default();
    let y = Tensor::from_vec(labels.clone(), [10, 1]).unwrap();
    acc.add(OutputKind::BinaryLogit, 0.3, &all_negative, &y)
        .unwrap();
    let b = acc.finish(OutputKind::BinaryLogit);
    assert!((b["accuracy"] - 0.9).abs() < 1e-12 && (b["balanced_accuracy"] - 0.5).abs() < 1e-12);
    let mut found = vec![-2.0f64; 12];
    found[3] = 2.0;
    labels.extend([1.0, 0.0]);
    let mut acc = MetricAccumulator::default();
    acc.add(
        OutputKind::BinaryLogit,
        0.3,
        &Tensor::from_vec(found, [12, 1]).unwrap(),
        &Tensor::from_vec(labels, [12, 1]).unwrap(),
    )
    .unwrap();
    let b = acc.finish(OutputKind::BinaryLogit);
    assert!((b["balanced_accuracy"] - 0.75).abs() < 1e-12, "{b:?}");
    let ce = Loss::CrossEntropy(Default::default())
        .compute(&logits, &truth)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!((m["log_loss"] - ce).abs() < 1e-12);

    // Out-of-range targets are an error, not a panic.
    let bad = Tensor::from_vec(vec![0i64, 1, 3, 2, 2, 1], [6]).unwrap();
    let err = MetricAccumulator::default()
        .add(OutputKind::MultiClass, 0.5, &logits, &bad)
        .unwrap_err()
        .to_string();
    assert_eq!(err, "class target 3 is out of range for 3 outputs");

    // The same six predictions as 2 sequences of 3 steps (a character model's [N, T, C]
    // against [N, T]): accuracy and log-loss per step, and the log-loss in bits.
    let steps = logits.reshape([2, 3, 3]).unwrap();
    let mut acc = MetricAccumulator::default();
    acc.add(
        OutputKind::MultiClass,
        0.5,
        &steps,
        &truth.reshape([2, 3]).unwrap(),
    )
    .unwrap();
    let per_step = acc.finish(OutputKind::MultiClass);
    assert!((per_step["accuracy"] - 4.0 / 6.0).abs() < 1e-12);
    assert!((per_step["log_loss"] - ce).abs() < 1e-12);
    assert!((per_step["bits_per_char"] - ce / std::f64::consts::LN_2).abs() < 1e-12);
    assert!(!per_step.contains_key("f1") && !m.contains_key("bits_per_char"));
    assert!(!per_step.contains_key("balanced_accuracy"));
    let err = MetricAccumulator::default()
        .add(OutputKind::MultiClass, 0.5, &steps, &truth)
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3, 3]") && err.contains("[6]"), "{err}");

    let pred = Tensor::from_vec(vec![1.0f64, 2.0, 4.0], [3, 1]).unwrap();
    let y = Tensor::from_vec(vec![1.5f64, 2.0, 3.0], [3, 1]).unwrap();
    let mut acc = MetricAccumulator::default();
    acc.add(OutputKind::Regression, 0.0, &pred, &y).unwrap();
    let m = acc.finish(OutputKind::Regression);
    assert!((m["mae"] - 0.5).abs() < 1e-12);
    assert!((m["rmse"] - (1.25f64 / 3.0).sqrt()).abs() < 1e-12);
    // SS_tot = Σ(y − ȳ)² with ȳ = 13/6.
    let mean = 6.5 / 3.0;
    let ss_tot: f64 = [1.5f64, 2.0, 3.0].iter().map(|v| (v - mean).powi(2)).sum();
    assert!((m["r2"] - (1.0 - 1.25 / ss_tot)).abs() < 1e-12);
}

#[test]
fn checkpoints_that_do_not_fit_are_rejected_with_names() {
    let dir = std::env::temp_dir().join(format!("nabla-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let small = model(0);
    save_weights(&path, &small.state_vars()).unwrap();
    let mut rng = Rng::seed(0);
    let wider = Sequential::new()
        .with(Linear::new(2, 32, &mut rng).unwrap())
        .with(Relu)
        .with(Dropout::new(0.2).unwrap())
        .with(Linear::new(32, 3, &mut rng).unwrap());
    let before = weights(&wider);
    let err = load_weights(&path, &wider.state_vars())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("0.weight: the file has f32 [16, 2], the model f32 [32, 2]"),
        "{err}"
    );
    assert_eq!(weights(&wider), before, "nothing changed on error");
    let other = Sequential::new().with(Linear::new(2, 16, &mut rng).unwrap());
    let err = load_weights(&path, &other.state_vars())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing [], unexpected [\"3.bias\", \"3.weight\"]"),
        "{err}"
    );
    std::fs::write(dir.join("junk.safetensors"), b"not a checkpoint").unwrap();
    let err = load_weights(&dir.join("junk.safetensors"), &small.state_vars())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a safetensors file"), "{err}");
    // f64 models round-trip too.
    let m64 = Linear::builder(3, 2)
        .dtype(DType::F64)
        .build(&mut rng)
        .unwrap();
    save_weights(&dir.join("f64.safetensors"), &m64.state_vars()).unwrap();
    let copy = Linear::builder(3, 2)
        .dtype(DType::F64)
        .build(&mut Rng::seed(42))
        .unwrap();
    load_weights(&dir.join("f64.safetensors"), &copy.state_vars()).unwrap();
    assert_eq!(
        copy.weight().as_tensor().to_vec::<f64>().unwrap(),
        m64.weight().as_tensor().to_vec::<f64>().unwrap()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn batchnorm_buffers_and_batch_count_round_trip_and_old_files_without_the_count_load() {
    let dir = std::env::temp_dir().join(format!("nabla-bn-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cnn = |seed| {
        let mut rng = Rng::seed(seed);
        Sequential::new()
            .with(
                Conv2d::builder(1, 4, [3, 3])
                    .padding([1, 1])
                    .build(&mut rng)
                    .unwrap(),
            )
            .with(BatchNorm2d::new(4, DType::F32).unwrap())
            .with(Relu)
    };
    let trained = cnn(0);
    for s in 0..5 {
        let x = Tensor::randn([3, 1, 6, 6], 0.5, 2.0, DType::F32, &mut Rng::seed(s)).unwrap();
        trained
            .forward(&x, &mut nabla_nn::Ctx::train(Rng::seed(s)))
            .unwrap();
    }
    let path = dir.join("model.safetensors");
    save_weights(&path, &trained.state_vars()).unwrap();
    let (saved, _) = nabla_train::checkpoint::read_tensors(&path).unwrap();
    let count = &saved["1.num_batches_tracked"];
    assert_eq!((count.dtype(), count.dims()), (DType::I64, &[][..]));
    let copy = cnn(1);
    load_weights(&path, &copy.state_vars()).unwrap();
    for ((name, a), (_, b)) in trained.state_vars().iter().zip(copy.state_vars()) {
        assert_eq!(
            a.as_tensor().to_vec_f64(),
            b.as_tensor().to_vec_f64(),
            "{name}"
        );
    }
    let count = copy
        .state_vars()
        .into_iter()
        .find(|(n, _)| n == "1.num_batches_tracked");
    assert_eq!(count.unwrap().1.as_tensor().to_vec::<i64>().unwrap(), [5]);
    // A file written before the count existed (or by code that drops it) still loads, as in
    // PyTorch; any other missing name is an error.
    let mut old: Vec<(String, Tensor)> = saved.into_iter().collect();
    old.retain(|(n, _)| !n.ends_with("num_batches_tracked"));
    let old_path = dir.join("old.safetensors");
    std::fs::write(
        &old_path,
        nabla_train::checkpoint::serialize(&old, None).unwrap(),
    )
    .unwrap();
    load_weights(&old_path, &cnn(2).state_vars()).unwrap();
    old.retain(|(n, _)| n != "1.running_var");
    std::fs::write(
        &old_path,
        nabla_train::checkpoint::serialize(&old, None).unwrap(),
    )
    .unwrap();
    let err = load_weights(&old_path, &cnn(2).state_vars())
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing [\"1.running_var\"]"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn l2_and_l1_penalize_the_weight_matrices_only() {
    // One SGD step on a single example: x = 1, y = 0, w = 1, b = 1, so out = 2, the MSE is 4 and
    // its gradient is 2·(out − y)·x = 4 for both w and b. The L2 penalty λ/2·w² adds λ·w to w's
    // gradient only; L1 adds λ·sign(w).
    for (l2, l1, w_grad) in [(0.5, 0.0, 4.5), (0.0, 0.25, 4.25)] {
        let data = Dataset::new(
            Tensor::from_vec(vec![1.0f64], [1, 1]).unwrap(),
            Tensor::from_vec(vec![0.0f64], [1, 1]).unwrap(),
        )
        .unwrap();
        let m = Linear::from_parameters(
            &Tensor::from_vec(vec![1.0f64], [1, 1]).unwrap(),
            Some(&Tensor::from_vec(vec![1.0f64], [1]).unwrap()),
        )
        .unwrap();
        let mut sgd = nabla_nn::optim::Sgd::new(0.1).unwrap();
        let cfg = TrainConfig {
            epochs: 1,
            batch_size: 1,
            loss: Loss::Mse,
            l2,
            l1,
            ..Default::default()
        };
        let h = fit(&m, &mut sgd, &data, None, &cfg, &mut []).unwrap();
        let w = m.weight().as_tensor().to_vec_f64()[0];
        let b = m.bias().unwrap().as_tensor().to_vec_f64()[0];
        assert!((w - (1.0 - 0.1 * w_grad)).abs() < 1e-12, "w {w}");
        assert!(
            (b - (1.0 - 0.1 * 4.0)).abs() < 1e-12,
            "the bias is not penalized: {b}"
        );
        // The reported loss is the data's alone.
        assert_eq!(h.epochs[0].train["loss"], 4.0);
    }
}

#[test]
fn the_doctor_does_not_read_token_ids_as_unscaled_features() {
    use nabla_nn::layers::{Embedding, Flatten};
    use nabla_train::doctor::{Doctor, DoctorConfig};
    // Ids 0..199, eight per row: as features they are far from scaled.
    let n = 64;
    let ids: Vec<f32> = (0..n * 8).map(|i| ((i * 37) % 200) as f32).collect();
    let data = Dataset::new(
        Tensor::from_vec(ids, [n, 8]).unwrap(),
        Tensor::from_vec((0..n as i64).map(|i| i % 2).collect::<Vec<_>>(), [n]).unwrap(),
    )
    .unwrap();
    let mut rng = Rng::seed(0);
    let embedded = Sequential::new()
        .with(Embedding::new(200, 4, &mut rng).unwrap())
        .with(Flatten)
        .with(Linear::new(32, 2, &mut rng).unwrap());
    let dense = Sequential::new().with(Linear::new(8, 2, &mut rng).unwrap());
    let scale = |m: &Sequential| {
        Doctor::new(DoctorConfig::default(), m, &m.named_parameters(), &data)
            .input_scale()
            .largest
    };
    assert!(scale(&dense) > nabla_train::doctor::rules::UNSCALED_SCALE);
    assert_eq!(scale(&embedded), 0.0, "ids are not measured");
}

#[test]
fn per_step_metrics_of_a_large_batch_match_a_direct_count_on_any_thread_count() {
    // A character model's batch: [40, 100, 63] f32 logits, more than the kernels' parallel
    // threshold, against [40, 100] targets.
    let (batch, steps, classes) = (40, 100, 63);
    let logits = Tensor::randn(
        [batch, steps, classes],
        0.0,
        3.0,
        DType::F32,
        &mut Rng::seed(4),
    )
    .unwrap();
    let targets: Vec<i64> = (0..batch * steps)
        .map(|i| ((i * 31 + i / 7) % classes) as i64)
        .collect();
    let target = Tensor::from_vec(targets.clone(), [batch, steps]).unwrap();
    let metrics = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut acc = MetricAccumulator::default();
                acc.add(OutputKind::MultiClass, 1.0, &logits, &target)
                    .unwrap();
                acc.finish(OutputKind::MultiClass)
            })
    };
    let one = metrics(1);
    assert_eq!(one, metrics(2), "1 and 2 threads give different metrics");
    // Directly, in f64: the first largest logit is the prediction; the log-loss is
    // log Σ e^z − z_target.
    let z = logits.to_vec_f64();
    let (mut correct, mut nats) = (0, 0.0);
    for (row, &t) in z.chunks(classes).zip(&targets) {
        let mut best = 0;
        for (k, &v) in row.iter().enumerate() {
            if v > row[best] {
                best = k;
            }
        }
        correct += usize::from(best as i64 == t);
        let m = row[best];
        nats += m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln() - row[t as usize];
    }
    let rows = (batch * steps) as f64;
    assert_eq!(one["accuracy"], correct as f64 / rows);
    let log_loss = nats / rows;
    assert!(
        (one["log_loss"] - log_loss).abs() < 1e-6 * log_loss,
        "{} vs {log_loss}",
        one["log_loss"]
    );
    assert!((one["bits_per_char"] - log_loss / std::f64::consts::LN_2).abs() < 1e-6 * log_loss);
}

/// A CSV of rows `x, colour, y` with `x` away from 0 and a categorical `colour`: `y` is the
/// class of `x`'s sign (`pos`, `neg`), or for a `regression` `3x` plus the colour's offset. The
/// rows at `corrupted` (indices) carry the other class, or 40 more. Blank lines after every
/// seventh row make a row's line differ from its index: row i is on line i + 2 + i / 7.
fn signed_rows(n: usize, corrupted: &[usize], regression: bool) -> String {
    let mut csv = "x,colour,y\n".to_string();
    for i in 0..n {
        let x = (1.5 + (i % 5) as f64 * 0.25) * if i % 2 == 0 { 1.0 } else { -1.0 };
        let bad = corrupted.contains(&i);
        let y = match regression {
            true => (3.0 * x + [0.0, 1.0, -1.0][i % 3] + if bad { 40.0 } else { 0.0 }).to_string(),
            false if (x > 0.0) != bad => "pos".into(),
            false => "neg".into(),
        };
        csv += &format!("{x},{},{y}\n", ["red", "blue", "green"][i % 3]);
        if i % 7 == 6 {
            csv += "\n";
        }
    }
    csv
}

/// The corrupted rows of `mixed.csv`: enough that a quarter drawn at random holds some.
const MIXED_FLIPS: [usize; 12] = [5, 21, 40, 58, 77, 96, 115, 150, 171, 190, 201, 230];

#[test]
fn the_report_names_a_csvs_worst_rows_by_line_with_their_inputs() {
    use nabla_train::report::{Evaluation, Mistakes, ShownInputs};
    use std::path::Path;
    let dir = std::env::temp_dir().join(format!("nabla-csv-mistakes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, regression) in [("classes", false), ("values", true)] {
        let write = |file: &str, n, corrupted: &[usize]| {
            let text = signed_rows(n, corrupted, regression);
            std::fs::write(dir.join(format!("{name}_{file}.csv")), text).unwrap();
        };
        write("train", 200, &[]);
        write("test", 40, &[3, 17, 30]);
    }
    let mixed = signed_rows(240, &MIXED_FLIPS, false);
    std::fs::write(dir.join("classes_mixed.csv"), mixed).unwrap();
    let at = |file: &str| format!("{:?}", dir.join(file));
    let worst_of = |data: String, regression: bool| {
        let (task, units) = if regression {
            ("task = \"regression\"\n", 1)
        } else {
            ("", 2)
        };
        let text = format!(
            "seed = 0\n[data]\n{data}\n{task}categorical = [\"colour\"]\n\
             scaling = \"standardize\"\n[[model.layers]]\ntype = \"linear\"\nunits = {units}\n\
             [optimizer]\ntype = \"adam\"\nlr = 0.05\n[train]\nepochs = 60\nbatch_size = 32\n"
        );
        let l = nabla_train::config::load_str(&text, Some(&dir.join("c.toml")), &[]).unwrap();
        let mut exp = nabla_train::experiment::prepare(&l).unwrap();
        exp.fit().unwrap();
        match nabla_train::experiment::evaluation(&exp).unwrap() {
            Some(Evaluation::Confusion {
                mistakes: Some(m), ..
            }) if !regression => m,
            Some(Evaluation::Regression { worst: Some(m), .. }) if regression => m,
            other => panic!("{other:?}"),
        }
    };
    // Each example's line of its file holds the target and inputs the report gives it; the
    // lines are returned in the report's order, highest score first.
    let check = |m: &Mistakes, file: &str| {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut named = Vec::new();
        for e in &m.examples {
            let (path, line) = e.name.rsplit_once(':').unwrap();
            assert_eq!(Path::new(path), dir.join(file));
            let line: usize = line.parse().unwrap();
            let cells: Vec<&str> = lines[line - 1].split(',').collect();
            assert_eq!(e.truth, cells[2], "{}", e.name);
            match m.wrong {
                Some(_) => assert_ne!(e.truth, e.predicted),
                None => {
                    let predicted: f64 = e.predicted.parse().unwrap();
                    let error = (predicted - cells[2].parse::<f64>().unwrap()).abs();
                    assert!((error - e.score).abs() < 1e-4 * (1.0 + error), "{}", e.name);
                }
            }
            let ShownInputs::Columns(inputs) = &e.inputs else {
                panic!("{:?}", e.inputs)
            };
            let got: Vec<(&str, &str)> = inputs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, [("x", cells[0]), ("colour", cells[1])], "{}", e.name);
            named.push(line);
        }
        assert!(
            m.examples.windows(2).all(|w| w[0].score >= w[1].score),
            "highest score first"
        );
        assert_eq!(m.noun, "rows");
        named
    };
    let line = |i: usize| i + 2 + i / 7;
    // A test file: the three corrupted rows, and only they, are wrong (a classifier), or
    // predicted worst, far worse than the rest (a regression).
    let sorted = |mut lines: Vec<usize>| {
        lines.sort_unstable();
        lines
    };
    let classes = worst_of(
        format!(
            "train = {}\ntest = {}\nvalid_split = 0.2",
            at("classes_train.csv"),
            at("classes_test.csv")
        ),
        false,
    );
    assert_eq!((classes.wrong, classes.total), (Some(3), 40));
    let corrupted = vec![line(3), line(17), line(30)];
    assert_eq!(sorted(check(&classes, "classes_test.csv")), corrupted);
    let values = worst_of(
        format!(
            "train = {}\ntest = {}\nvalid_split = 0.2",
            at("values_train.csv"),
            at("values_test.csv")
        ),
        true,
    );
    assert_eq!(
        (values.wrong, values.total, values.examples.len()),
        (None, 40, 12)
    );
    let named = check(&values, "values_test.csv");
    assert_eq!(sorted(named[..3].to_vec()), corrupted);
    assert!(values.examples[2].score > 30.0 && values.examples[3].score < 3.0);
    // A test split drawn from the training file names its rows' lines in that file.
    let split = worst_of(
        format!(
            "train = {}\ntest_split = 0.25\nvalid_split = 0.1",
            at("classes_mixed.csv")
        ),
        false,
    );
    let named = check(&split, "classes_mixed.csv");
    assert!(
        !named.is_empty() && Some(named.len()) == split.wrong,
        "{named:?}"
    );
    let flipped = MIXED_FLIPS.map(line);
    assert!(named.iter().all(|l| flipped.contains(l)), "{named:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_doctor_reads_how_much_error_reaches_a_sequences_first_step() {
    use nabla_core::RecurrentCell;
    use nabla_nn::layers::{Recurrent, SequenceOutput};
    use nabla_train::doctor::{Doctor, DoctorConfig};
    // A tanh RNN that reads 6 steps and passes on the last: the doctor's statistic is
    // ‖∂L/∂x₁‖ / maxₜ ‖∂L/∂xₜ‖ of the gradient at its input, here taken by autograd directly.
    let mut rng = Rng::seed(3);
    let model = Sequential::new().with(
        Recurrent::builder(RecurrentCell::RnnTanh, 2, 8)
            .output(SequenceOutput::Last)
            .build(&mut rng)
            .unwrap(),
    );
    let x = Tensor::randn([5, 6, 2], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let y = Tensor::zeros([5, 1], DType::F32);
    let data = Dataset::new(x.clone(), y).unwrap();
    let params = model.named_parameters();
    let mut doctor = Doctor::new(DoctorConfig::default(), &model, &params, &data);
    assert!(doctor.wants_input_gradient());
    let input = nabla_core::Var::new(&x).unwrap().as_tensor();
    let out = model
        .forward(&input, &mut nabla_nn::Ctx::train(Rng::seed(0)).with_taps())
        .unwrap();
    let grads = out.sum_all().unwrap().backward().unwrap();
    let g = grads.get(&input).unwrap().to_vec_f64();
    // Per step: Σ over the batch and the features of g².
    let mut per_step = [0.0f64; 6];
    for (i, v) in g.iter().enumerate() {
        per_step[(i / 2) % 6] += v * v;
    }
    let largest = per_step.iter().copied().fold(0.0, f64::max);
    let want = (per_step[0] / largest).sqrt();
    assert!(want < 1.0, "the last step gets the most: {per_step:?}");
    let vars: Vec<nabla_core::Var> = params.iter().map(|(_, v)| v.clone()).collect();
    doctor.observe(&input, &[], &grads, &vars, &[]);
    let record = first_epoch_record();
    let diagnostics = doctor.end_epoch(&vars, &record, &[], 0);
    let got = diagnostics.layer("0").unwrap().first_step_gradient.unwrap();
    assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
}

#[test]
fn the_doctor_keeps_each_activations_output_distribution() {
    use nabla_nn::layers::Sigmoid;
    use nabla_train::doctor::{Doctor, DoctorConfig, Histogram};
    // Linear -> sigmoid, then linear -> ReLU whose bias of -100 kills every unit: the
    // sigmoid's outputs lie in (0, 1) and are all kept (fewer than a sample's 1024), the dead
    // ReLU's are one spike at 0, and the affine layers get no histogram.
    let mut rng = Rng::seed(5);
    let hidden = Linear::new(3, 16, &mut rng).unwrap();
    let dead = Linear::new(16, 4, &mut rng).unwrap();
    dead.bias()
        .unwrap()
        .set(&Tensor::full([4], -100.0, DType::F32))
        .unwrap();
    let model = Sequential::new()
        .with(hidden)
        .with(Sigmoid)
        .with(dead)
        .with(Relu);
    let x = Tensor::randn([20, 3], 0.0, 3.0, DType::F32, &mut rng).unwrap();
    let data = Dataset::new(x.clone(), Tensor::zeros([20, 4], DType::F32)).unwrap();
    let params = model.named_parameters();
    let vars: Vec<nabla_core::Var> = params.iter().map(|(_, v)| v.clone()).collect();
    let mut doctor = Doctor::new(DoctorConfig::default(), &model, &params, &data);
    let mut sigmoid_outputs = Vec::new();
    for step in 0..2 {
        let mut ctx = nabla_nn::Ctx::train(Rng::seed(step)).with_taps();
        let out = model.forward(&x, &mut ctx).unwrap();
        let grads = out.sum_all().unwrap().backward().unwrap();
        let (_, sigmoid) = ctx.taps().iter().find(|(p, _)| p == "1").unwrap();
        sigmoid_outputs.extend(sigmoid.to_vec_f64().into_iter().map(|v| v as f32));
        doctor.observe(&x, ctx.taps(), &grads, &vars, &[]);
    }
    let record = first_epoch_record();
    let diagnostics = doctor.end_epoch(&vars, &record, &[], 1);
    let histogram = |path: &str| diagnostics.layer(path).unwrap().histogram.clone();
    let sigmoid = histogram("1").expect("a sigmoid's histogram");
    assert_eq!(
        sigmoid,
        Histogram::of(&sigmoid_outputs, sigmoid.counts.len()).unwrap()
    );
    assert_eq!(sigmoid.counts.iter().sum::<u32>(), 2 * 20 * 16);
    assert!(sigmoid.lo > 0.0 && sigmoid.hi < 1.0, "{sigmoid:?}");
    let relu = histogram("3").expect("a ReLU's histogram");
    assert_eq!(relu.counts[0], 2 * 20 * 4, "{relu:?}");
    assert!(relu.counts[1..].iter().all(|&c| c == 0));
    assert_eq!((histogram("0"), histogram("2")), (None, None));
    // It travels with the epoch's record: written and read back as JSON.
    let json = serde_json::to_string(&diagnostics).unwrap();
    let back: nabla_train::doctor::EpochDiagnostics = serde_json::from_str(&json).unwrap();
    assert_eq!(back.layer("1").unwrap().histogram, Some(sigmoid));
}

/// The record of a first epoch before the doctor's statistics: what `Doctor::end_epoch` is given.
fn first_epoch_record() -> nabla_train::EpochRecord {
    nabla_train::EpochRecord {
        epoch: 0,
        learning_rate: 1e-3,
        train: Default::default(),
        valid: None,
        grad_norm: 1.0,
        layer_grad_norms: Default::default(),
        diagnostics: None,
        samples: None,
    }
}

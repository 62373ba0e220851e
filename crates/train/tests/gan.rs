//! GAN training (`nabla_train::gan`): alternating discriminator and generator steps against
//! PyTorch (`tests/torch/gan_cases.json`, made by `gan_cases.py` beside it in float64), the
//! discriminator step leaving the generator alone (its samples are detached), the sample
//! measures on real, collapsed, noisy and copied samples of the 8x8 digits, and the same seed
//! giving the same run.

use nabla_core::{DType, Rng, Tensor};
use nabla_data::Dataset;
use nabla_nn::ModuleExt;
use nabla_nn::layers::{LeakyRelu, Linear, Sequential, Sigmoid};
use nabla_nn::optim::{Adam, Optimizer, Sgd};
use nabla_train::History;
use nabla_train::gan::quality::RealReference;
use nabla_train::gan::{GanConfig, GanTrainer, GeneratorLoss};
use serde_json::Value;

/// A GAN loop starting from scratch (no history), without sample measures.
fn fresh_trainer<'a>(
    generator: &'a Sequential,
    discriminator: &'a Sequential,
    generator_optimizer: &'a mut dyn Optimizer,
    discriminator_optimizer: &'a mut dyn Optimizer,
    config: &'a GanConfig,
) -> GanTrainer<'a> {
    GanTrainer::new(
        generator,
        discriminator,
        generator_optimizer,
        discriminator_optimizer,
        config,
        History::default(),
        None,
    )
    .unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-9 + 1e-7 * w.abs(),
            "{what}[{i}]: nabla {g} vs PyTorch {w}"
        );
    }
}

/// `Linear(a, b), LeakyReLU(0.2), Linear(b, c)` in f64 with the state dict's weights, then a
/// sigmoid when asked.
fn network(state: &Value, dims: [usize; 3], sigmoid: bool) -> Sequential {
    let linear = |i: usize, fan_in: usize, fan_out: usize| {
        let w = Tensor::from_vec(floats(&state[format!("{i}.weight")]), [fan_out, fan_in]).unwrap();
        let b = Tensor::from_vec(floats(&state[format!("{i}.bias")]), [fan_out]).unwrap();
        Linear::from_parameters(&w, Some(&b)).unwrap()
    };
    let mut net = Sequential::new();
    net.push(Box::new(linear(0, dims[0], dims[1])));
    net.push(Box::new(LeakyRelu::new(0.2)));
    net.push(Box::new(linear(2, dims[1], dims[2])));
    if sigmoid {
        net.push(Box::new(Sigmoid));
    }
    net
}

fn optimizer(kind: &str) -> Box<dyn Optimizer> {
    match kind {
        "adam" => Box::new(Adam::with_options(0.01, (0.5, 0.999), 1e-8, 0.0, false).unwrap()),
        "sgd" => Box::new(Sgd::momentum(0.1, 0.9, false).unwrap()),
        other => panic!("unknown optimizer {other}"),
    }
}

fn weights(net: &Sequential, state: &Value, what: &str) {
    for (name, var) in net.state_vars() {
        close(
            &format!("{what} {name}"),
            &var.as_tensor().to_vec_f64(),
            &floats(&state[&name]),
        );
    }
}

#[test]
fn alternating_steps_match_pytorch() {
    let file: Value = serde_json::from_str(include_str!("torch/gan_cases.json")).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let generator = network(&case["generator"], [2, 3, 4], true);
        let discriminator = network(&case["discriminator"], [4, 5, 1], false);
        let (mut opt_g, mut opt_d) = (
            optimizer(case["optimizer"].as_str().unwrap()),
            optimizer(case["optimizer"].as_str().unwrap()),
        );
        let config = GanConfig {
            latent: 2,
            real_label: case["real_label"].as_f64().unwrap(),
            generator_loss: match case["generator_loss"].as_str().unwrap() {
                "minimax" => GeneratorLoss::Minimax,
                _ => GeneratorLoss::NonSaturating,
            },
            ..GanConfig::default()
        };
        let mut trainer = fresh_trainer(
            &generator,
            &discriminator,
            opt_g.as_mut(),
            opt_d.as_mut(),
            &config,
        );
        let mut rng = Rng::seed(0);
        for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let t =
                |key: &str, width: usize| Tensor::from_vec(floats(&step[key]), [6, width]).unwrap();
            let d = trainer
                .discriminator_step(&t("x", 4), &t("z_d", 2), &mut rng)
                .unwrap();
            let what = format!("{name}, step {s}");
            close(
                &format!("{what}: L_D"),
                &[d.loss],
                &[step["d_loss"].as_f64().unwrap()],
            );
            close(
                &format!("{what}: sum D(x), sum D(G(z))"),
                &[d.real_sum, d.fake_sum],
                &[
                    step["d_real_sum"].as_f64().unwrap(),
                    step["d_fake_sum"].as_f64().unwrap(),
                ],
            );
            let g = trainer.generator_step(&t("z_g", 2), &mut rng).unwrap();
            close(
                &format!("{what}: L_G"),
                &[g],
                &[step["g_loss"].as_f64().unwrap()],
            );
        }
        drop(trainer);
        weights(&generator, &case["generator_after"], name);
        weights(&discriminator, &case["discriminator_after"], name);
    }
}

fn tiny_networks(seed: u64) -> (Sequential, Sequential) {
    let mut rng = Rng::seed(seed);
    let mut g = Sequential::new();
    g.push(Box::new(Linear::new(4, 8, &mut rng).unwrap()));
    g.push(Box::new(LeakyRelu::new(0.2)));
    g.push(Box::new(Linear::new(8, 6, &mut rng).unwrap()));
    let mut d = Sequential::new();
    d.push(Box::new(Linear::new(6, 8, &mut rng).unwrap()));
    d.push(Box::new(LeakyRelu::new(0.2)));
    d.push(Box::new(Linear::new(8, 1, &mut rng).unwrap()));
    (g, d)
}

fn snapshot(m: &Sequential) -> Vec<Vec<f64>> {
    m.state_vars()
        .iter()
        .map(|(_, v)| v.as_tensor().to_vec_f64())
        .collect()
}

fn toy_data(rows: usize) -> Dataset {
    let x = Tensor::randn([rows, 6], 1.0, 0.5, DType::F32, &mut Rng::seed(3)).unwrap();
    let y = Tensor::zeros([rows], DType::I64);
    Dataset::new(x, y).unwrap()
}

#[test]
fn the_discriminator_step_leaves_the_generator_alone() {
    let (g, d) = tiny_networks(1);
    let (g0, d0) = (snapshot(&g), snapshot(&d));
    let (mut opt_g, mut opt_d) = (Adam::new(0.01).unwrap(), Adam::new(0.01).unwrap());
    // One batch per epoch and a generator step every second discriminator step: the first
    // epoch is one discriminator step alone.
    let config = GanConfig {
        latent: 4,
        batch_size: 16,
        discriminator_steps: 2,
        epochs: 2,
        ..GanConfig::default()
    };
    let data = toy_data(16);
    let mut trainer = fresh_trainer(&g, &d, &mut opt_g, &mut opt_d, &config);
    let first = trainer.run_epoch(&data).unwrap().clone();
    assert_eq!(snapshot(&g), g0, "a discriminator step moved the generator");
    assert_ne!(snapshot(&d), d0, "the discriminator did not move");
    assert!(first.train.contains_key("d_loss") && !first.train.contains_key("g_loss"));
    let d1 = snapshot(&d);
    trainer.run_epoch(&data).unwrap();
    assert_ne!(
        snapshot(&g),
        g0,
        "the generator step did not move the generator"
    );
    assert_ne!(snapshot(&d), d1);
    assert!(trainer.is_finished());
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed: u64| {
        let (g, d) = tiny_networks(5);
        let (mut opt_g, mut opt_d) = (Adam::new(0.01).unwrap(), Adam::new(0.01).unwrap());
        let config = GanConfig {
            latent: 4,
            batch_size: 8,
            epochs: 3,
            seed,
            ..GanConfig::default()
        };
        let data = toy_data(40);
        let reference = RealReference::new(data.x(), None, None, 0).unwrap();
        let mut trainer = GanTrainer::new(
            &g,
            &d,
            &mut opt_g,
            &mut opt_d,
            &config,
            History::default(),
            Some(reference),
        )
        .unwrap();
        while !trainer.is_finished() {
            trainer.run_epoch(&data).unwrap();
        }
        (trainer.finish(), snapshot(&g))
    };
    let (a, b, other) = (run(7), run(7), run(8));
    assert_eq!(a, b);
    assert_ne!(a.1, other.1, "another seed, another run");
    assert!(a.0.epochs.iter().all(|e| e.samples.is_some()));
}

/// Each network follows its own schedule from its base rate, epoch by epoch, and a trainer that
/// continues a history (a resumed run) sets the rate of the epoch it starts at, whatever rate
/// its optimizer held.
#[test]
fn each_network_follows_its_schedule_and_a_resumed_run_continues_it() {
    use nabla_nn::schedule::{LrSchedule, Schedule};
    let (g, d) = tiny_networks(2);
    let (mut opt_g, mut opt_d) = (Adam::new(1.0).unwrap(), Adam::new(1.0).unwrap());
    let step: LrSchedule = Schedule::Step {
        step_size: 2,
        gamma: 0.5,
    }
    .into();
    let exponential: LrSchedule = Schedule::Exponential { k: 0.1 }.into();
    let config = GanConfig {
        latent: 4,
        batch_size: 8,
        epochs: 5,
        schedules: Some([(step, 0.02), (exponential, 0.01)]),
        ..GanConfig::default()
    };
    let data = toy_data(16);
    let mut trainer = fresh_trainer(&g, &d, &mut opt_g, &mut opt_d, &config);
    let mut rates = Vec::new();
    for _ in 0..3 {
        let record = trainer.run_epoch(&data).unwrap().clone();
        let d_rate = trainer.discriminator_optimizer().learning_rate();
        rates.push((record.learning_rate, d_rate));
    }
    let history = trainer.finish();
    let want = |t: usize| {
        (
            0.02 * 0.5f64.powi((t / 2) as i32),
            0.01 * (-0.1 * t as f64).exp(),
        )
    };
    for (t, &(g_rate, d_rate)) in rates.iter().enumerate() {
        assert!(
            (g_rate - want(t).0).abs() < 1e-15,
            "epoch {t}: generator {g_rate}"
        );
        assert!(
            (d_rate - want(t).1).abs() < 1e-15,
            "epoch {t}: discriminator {d_rate}"
        );
    }
    // Resumed with fresh optimizers (at rate 1): epoch 3 gets its scheduled rates.
    let (mut opt_g, mut opt_d) = (Adam::new(1.0).unwrap(), Adam::new(1.0).unwrap());
    let mut trainer =
        GanTrainer::new(&g, &d, &mut opt_g, &mut opt_d, &config, history, None).unwrap();
    let record = trainer.run_epoch(&data).unwrap().clone();
    assert!((record.learning_rate - want(3).0).abs() < 1e-15);
    let d_rate = trainer.discriminator_optimizer().learning_rate();
    assert!((d_rate - want(3).1).abs() < 1e-15);
}

/// The digits' pixels scaled to [0, 1] `[n, 64]`, and their labels.
fn digits(file: &str) -> (Tensor, Vec<usize>) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits");
    let text = std::fs::read_to_string(path.join(file)).unwrap();
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for line in text.lines().skip(1) {
        let values: Vec<f64> = line.split(',').map(|v| v.parse().unwrap()).collect();
        pixels.extend(values[..64].iter().map(|v| v / 16.0));
        labels.push(values[64] as usize);
    }
    let n = labels.len();
    (Tensor::from_vec(pixels, [n, 64]).unwrap(), labels)
}

#[test]
fn the_sample_measures_tell_real_collapsed_noisy_and_copied_samples_apart() {
    let (train, train_labels) = digits("train.csv");
    let (test, _) = digits("test.csv");
    let n = test.dims()[0];
    let (yardstick, real) = (
        test.narrow(0, 0, n / 2).unwrap(),
        test.narrow(0, n / 2, n / 2).unwrap(),
    );
    let reference =
        RealReference::new(&train, Some((&train_labels, 10)), Some(&yardstick), 0).unwrap();

    // Other held-out digits: like the yardstick on every measure.
    let q = reference.measure(&real).unwrap();
    assert!((0.9..1.1).contains(&q.diversity), "{q:?}");
    assert!((0.9..1.1).contains(&q.nearest_distance), "{q:?}");
    assert!(q.class_entropy.unwrap() > 0.97, "{q:?}");
    assert_eq!(q.classes_covered, Some(10));

    // Mode collapse: one digit, over and over.
    let one = real.narrow(0, 0, 1).unwrap();
    let collapsed = Tensor::concat(&vec![&one; 200], 0).unwrap();
    let q = reference.measure(&collapsed).unwrap();
    assert!(q.diversity < 1e-6, "{q:?}");
    assert_eq!(q.class_entropy, Some(0.0));
    assert_eq!(q.classes_covered, Some(1));
    assert_eq!(q.top_class_share, Some(1.0));

    // Noise: as varied as anything, but unlike any digit.
    let noise = Tensor::rand_uniform([200, 64], 0.0, 1.0, DType::F64, &mut Rng::seed(1)).unwrap();
    let q = reference.measure(&noise).unwrap();
    assert!(q.nearest_distance > 2.0, "{q:?}");

    // Copies of training digits: as close to the data as can be.
    let copies = train.narrow(0, 0, 200).unwrap();
    let q = reference.measure(&copies).unwrap();
    assert!(q.nearest_distance < 1e-6, "{q:?}");

    // Errors, not panics.
    assert!(reference.measure(&one).is_err(), "one sample has no spread");
    assert!(reference.measure(&noise.narrow(1, 0, 10).unwrap()).is_err());
    assert!(RealReference::new(&collapsed, None, None, 0).is_err());
}

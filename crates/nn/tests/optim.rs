//! Optimizers beyond the PyTorch oracle (which `nabla check-optim` replays): delta-bar-delta
//! against a plain re-implementation, exact resume from saved state, parameters without
//! gradients, and errors. (Momentum's advantage on the ill-conditioned bowl is the `bowl` seed
//! example's test, `crates/cli/tests/seed_examples.rs`.)

mod common;
use nabla_core::{DType, Grads, Tensor, Var};
use nabla_nn::optim::{Adagrad, Adam, DeltaBarDelta, Optimizer, RmsProp, Sgd};

/// The elliptical bowl L = x² + 4y² (condition number 4).
fn bowl(p: &Var) -> Tensor {
    let scale = Tensor::from_vec(vec![1.0f64, 4.0], [2]).unwrap();
    p.as_tensor()
        .square()
        .unwrap()
        .mul(&scale)
        .unwrap()
        .sum_all()
        .unwrap()
}

fn run(opt: &mut dyn Optimizer, start: [f64; 2], steps: usize) -> Vec<f64> {
    let p = Var::new(&Tensor::from_vec(start.to_vec(), [2]).unwrap()).unwrap();
    let params = vec![("p".to_string(), p.clone())];
    for _ in 0..steps {
        opt.step(&params, &bowl(&p).backward().unwrap()).unwrap();
    }
    p.as_tensor().to_vec::<f64>().unwrap()
}

#[test]
fn delta_bar_delta_matches_a_direct_implementation() {
    let (lr, kappa, phi, theta) = (0.01, 0.01, 0.3, 0.7);
    let got = run(
        &mut DeltaBarDelta::new(lr, kappa, phi, theta).unwrap(),
        [1.0, -2.0],
        40,
    );
    let (mut w, mut rate, mut bar) = ([1.0f64, -2.0], [lr; 2], [0.0f64; 2]);
    let mut flips = 0;
    for _ in 0..40 {
        let g = [2.0 * w[0], 8.0 * w[1]];
        for i in 0..2 {
            if bar[i] * g[i] > 0.0 {
                rate[i] += kappa;
            } else if bar[i] * g[i] < 0.0 {
                rate[i] *= 1.0 - phi;
                flips += 1;
            }
            bar[i] = (1.0 - theta) * g[i] + theta * bar[i];
            w[i] -= rate[i] * g[i];
        }
    }
    assert!(flips > 0, "the run must exercise both rate rules");
    assert_eq!(got, w.to_vec());
}

#[test]
fn delta_bar_delta_rates_grow_while_the_sign_holds() {
    let mut opt = DeltaBarDelta::new(0.001, 0.001, 0.5, 0.0).unwrap();
    let p = Var::new(&Tensor::from_vec(vec![10.0f64], [1]).unwrap()).unwrap();
    let params = vec![("p".to_string(), p.clone())];
    for _ in 0..5 {
        let loss = p.as_tensor().sum_all().unwrap(); // gradient is always +1
        opt.step(&params, &loss.backward().unwrap()).unwrap();
    }
    let rate = opt.state().tensors["p.rate"].to_vec::<f64>().unwrap()[0];
    assert!((rate - 0.005).abs() < 1e-15, "rate {rate}");
}

/// What happens to the optimizer at a given step of [`train_f32`].
#[derive(Clone, Copy)]
enum Interruption {
    None,
    /// Its state is saved and loaded into a fresh optimizer (a resumed run).
    Restore(usize),
    /// A fresh optimizer takes over without the state (a run that lost it).
    Restart(usize),
}

/// Runs `steps` steps of `make()` on a small f32 model, with the given interruption.
fn train_f32(
    make: &dyn Fn() -> Box<dyn Optimizer>,
    steps: usize,
    interruption: Interruption,
) -> Vec<f32> {
    let w = Var::new(&Tensor::from_vec(vec![0.5f32, -1.0, 1.5, 0.25, 2.0, -0.75], [3, 2]).unwrap())
        .unwrap();
    let x = Tensor::from_vec(
        vec![
            1.0f32, 0.5, -0.25, 0.25, -1.0, 0.5, -0.5, 0.75, 1.0, 1.5, 0.0, -0.5,
        ],
        [4, 3],
    )
    .unwrap();
    let y = Tensor::from_vec(vec![1.0f32, -0.5, 0.25, 2.0, 0.0, 1.0, -1.0, 0.5], [4, 2]).unwrap();
    let params = vec![("layer.weight".to_string(), w.clone())];
    let mut opt = make();
    for k in 0..steps {
        match interruption {
            Interruption::Restore(at) if at == k => {
                let saved = opt.state();
                opt = make();
                opt.load_state(&saved).unwrap();
            }
            Interruption::Restart(at) if at == k => opt = make(),
            _ => {}
        }
        let loss = x
            .matmul(&w.as_tensor())
            .unwrap()
            .mse_loss(&y, nabla_core::Reduction::Mean)
            .unwrap();
        opt.step(&params, &loss.backward().unwrap()).unwrap();
    }
    w.as_tensor().to_vec::<f32>().unwrap()
}

#[test]
fn a_restored_state_continues_bit_exactly() {
    let makers: Vec<Box<dyn Fn() -> Box<dyn Optimizer>>> = vec![
        Box::new(|| Box::new(Sgd::new(0.05).unwrap())),
        Box::new(|| Box::new(Sgd::with_options(0.05, 0.9, 0.1, 0.01, false).unwrap())),
        Box::new(|| Box::new(Adagrad::with_options(0.1, 0.01, 0.0, 0.1, 1e-10).unwrap())),
        Box::new(|| Box::new(RmsProp::with_options(0.01, 0.9, 1e-8, 0.0, 0.5, true).unwrap())),
        Box::new(|| Box::new(Adam::with_options(0.01, (0.9, 0.99), 1e-8, 0.0, true).unwrap())),
        Box::new(|| Box::new(Adam::adamw(0.01, 0.1).unwrap())),
        Box::new(|| Box::new(DeltaBarDelta::new(0.01, 0.001, 0.2, 0.5).unwrap())),
    ];
    for make in &makers {
        let straight = train_f32(make.as_ref(), 30, Interruption::None);
        let resumed = train_f32(make.as_ref(), 30, Interruption::Restore(13));
        let fresh_state = train_f32(make.as_ref(), 30, Interruption::Restore(0));
        assert_eq!(straight, resumed, "{}", make().name());
        assert_eq!(straight, fresh_state);
    }
}

#[test]
fn losing_the_state_changes_the_trajectory() {
    // The control for the test above: restarting Adam from scratch at step 13 (bias correction
    // and moments reset) gives different weights than continuing it.
    let make = || Box::new(Adam::new(0.01).unwrap()) as Box<dyn Optimizer>;
    let straight = train_f32(&make, 30, Interruption::None);
    let restarted = train_f32(&make, 30, Interruption::Restart(13));
    assert_ne!(straight, restarted);
}

#[test]
fn parameters_without_gradients_are_left_alone() {
    let used = Var::new(&Tensor::from_vec(vec![1.0f64, 2.0], [2]).unwrap()).unwrap();
    let unused = Var::new(&Tensor::from_vec(vec![3.0f64], [1]).unwrap()).unwrap();
    let params = vec![
        ("used".to_string(), used.clone()),
        ("unused".to_string(), unused.clone()),
    ];
    let mut adam = Adam::new(0.1).unwrap();
    for _ in 0..3 {
        let loss = used.as_tensor().square().unwrap().sum_all().unwrap();
        adam.step(&params, &loss.backward().unwrap()).unwrap();
    }
    assert_eq!(unused.as_tensor().to_vec::<f64>().unwrap(), [3.0]);
    let state = adam.state();
    assert_eq!(state.steps.get("used"), Some(&3));
    assert_eq!(state.steps.get("unused"), None);
    assert!(state.tensors.contains_key("used.exp_avg_sq"));
}

#[test]
fn a_gradient_of_the_wrong_shape_is_an_error_and_changes_nothing() {
    let a = Var::new(&Tensor::from_vec(vec![1.0f64, 2.0], [2]).unwrap()).unwrap();
    let b = Var::new(&Tensor::from_vec(vec![3.0f64], [1]).unwrap()).unwrap();
    let params = vec![("a".to_string(), a.clone()), ("b".to_string(), b.clone())];
    let mut grads = Grads::default();
    grads.insert(&a, Tensor::from_vec(vec![1.0f64, 1.0], [2]).unwrap());
    grads.insert(&b, Tensor::from_vec(vec![1.0f64, 1.0], [2]).unwrap());
    let mut sgd = Sgd::new(0.1).unwrap();
    let err = sgd.step(&params, &grads).unwrap_err().to_string();
    assert_eq!(
        err,
        "optimizer: the gradient of \"b\" is f64 [2] but the parameter is f64 [1]"
    );
    assert_eq!(a.as_tensor().to_vec::<f64>().unwrap(), [1.0, 2.0]);
    // A parameter renamed onto another's state (a mismatched checkpoint) is caught before any
    // parameter moves.
    let mut ok = Grads::default();
    ok.insert(&a, Tensor::from_vec(vec![1.0f64, 1.0], [2]).unwrap());
    sgd.step(&params[..1], &ok).unwrap();
    let moved = a.as_tensor().to_vec::<f64>().unwrap();
    let swapped = vec![("b".to_string(), b.clone()), ("a".to_string(), b.clone())];
    let mut gb = Grads::default();
    gb.insert(&b, Tensor::from_vec(vec![1.0f64], [1]).unwrap());
    let mut momentum = Sgd::momentum(0.1, 0.9, false).unwrap();
    momentum.step(&params[..1], &ok).unwrap();
    let before_b = b.as_tensor().to_vec::<f64>().unwrap();
    let err = momentum.step(&swapped, &gb).unwrap_err().to_string();
    assert!(
        err.contains("parameter \"a\" is f64 [1] but the optimizer's state for it is f64 [2]"),
        "{err}"
    );
    assert_eq!(
        b.as_tensor().to_vec::<f64>().unwrap(),
        before_b,
        "b must not move"
    );
    assert_ne!(moved, [1.0, 2.0]);
    let mut f32_grads = Grads::default();
    f32_grads.insert(&a, Tensor::ones([2], DType::F32));
    assert!(sgd.step(&params[..1], &f32_grads).is_err());
}

#[test]
fn invalid_hyperparameters_are_rejected_with_their_names() {
    let err = Sgd::momentum(0.1, 0.0, true).unwrap_err().to_string();
    assert!(
        err.contains("Nesterov momentum needs momentum > 0"),
        "{err}"
    );
    let err = Adam::with_options(0.1, (0.9, 1.0), 1e-8, 0.0, false)
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("Adam: beta2 must be in"), "{err}");
    assert!(Sgd::new(f64::NAN).is_err());
    assert!(RmsProp::with_options(0.1, 1.5, 1e-8, 0.0, 0.0, false).is_err());
    assert!(DeltaBarDelta::new(0.1, 0.01, 1.5, 0.5).is_err());
}

/// A parameter large enough to be updated in parallel chunks (100,003 values: a ragged last
/// chunk) gets, from every optimizer, exactly the values of the serial update on one thread.
#[test]
fn large_parameters_update_in_chunks_exactly_as_serially() {
    let n = 100_003;
    let start: Vec<f32> = (0..n)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
        .collect();
    let makers: Vec<Box<dyn Fn() -> Box<dyn Optimizer> + Sync>> = vec![
        Box::new(|| Box::new(Sgd::with_options(0.05, 0.9, 0.0, 0.01, true).unwrap())),
        Box::new(|| Box::new(Adagrad::new(0.1).unwrap())),
        Box::new(|| Box::new(RmsProp::with_options(0.01, 0.9, 1e-8, 0.0, 0.5, true).unwrap())),
        Box::new(|| Box::new(Adam::with_options(0.01, (0.9, 0.99), 1e-8, 0.01, true).unwrap())),
        Box::new(|| Box::new(DeltaBarDelta::new(0.01, 0.01, 0.3, 0.7).unwrap())),
    ];
    for make in &makers {
        let on = |threads: usize| -> Vec<f32> {
            common::on_threads(threads, || {
                let mut opt = make();
                let p = Var::new(&Tensor::from_vec(start.clone(), [n]).unwrap()).unwrap();
                let params = vec![("p".to_string(), p.clone())];
                for _ in 0..3 {
                    // L = Σ p³ / 3: a gradient p² that differs per element and per step.
                    let loss = p.as_tensor().powf(3.0).unwrap().sum_all().unwrap();
                    opt.step(&params, &loss.backward().unwrap()).unwrap();
                }
                p.as_tensor().to_vec::<f32>().unwrap()
            })
        };
        let serial = on(1);
        assert_ne!(serial, start, "the optimizer moved nothing");
        assert_eq!(on(2), serial, "{}", make().name());
    }
}

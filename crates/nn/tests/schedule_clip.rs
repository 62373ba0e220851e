//! Learning-rate schedules (formulas at chosen epochs, reduce-on-plateau replayed by hand,
//! warm-up) and gradient clipping.

use nabla_core::{Grads, Tensor, Var};
use nabla_nn::clip::{clip_grad_norm, clip_grad_value};
use nabla_nn::schedule::{LrSchedule, Schedule};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn closed_form_schedules() {
    let a0 = 0.1;
    let at = |s: &Schedule, t: usize| s.learning_rate(a0, t, &[]);
    let exp = Schedule::Exponential { k: 0.5 };
    assert!(close(at(&exp, 0), 0.1) && close(at(&exp, 4), 0.1 * (-2.0f64).exp()));
    let inv = Schedule::Inverse { k: 0.5 };
    assert!(close(at(&inv, 6), 0.1 / 4.0));
    let step = Schedule::Step {
        step_size: 3,
        gamma: 0.5,
    };
    let got: Vec<f64> = (0..7).map(|t| at(&step, t)).collect();
    let want = [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025];
    assert!(got.iter().zip(want).all(|(g, w)| close(*g, w)), "{got:?}");
    let cos = Schedule::Cosine {
        t_max: 10,
        min_lr: 0.01,
    };
    assert!(close(at(&cos, 0), 0.1) && close(at(&cos, 5), 0.055) && close(at(&cos, 12), 0.01));
    assert!(close(at(&Schedule::Constant, 99), 0.1));
}

#[test]
fn reduce_on_plateau_waits_patience_epochs_then_cuts_and_cools_down() {
    let s = Schedule::ReduceOnPlateau {
        factor: 0.5,
        patience: 2,
        threshold: 0.01,
        cooldown: 1,
        min_lr: 0.02,
    };
    // Epoch losses: improving, then flat (a 0.5% change is below the 1% threshold).
    let history = [
        1.0, 0.8, 0.799, 0.798, 0.797, 0.796, 0.795, 0.794, 0.793, 0.792, 0.791,
    ];
    let lrs: Vec<f64> = (0..=history.len())
        .map(|e| s.learning_rate(0.1, e, &history))
        .collect();
    // Bad epochs after the best (0.8 at epoch 1): epochs 2, 3, 4 -> cut after epoch 4
    // (more than 2 bad epochs); cooldown 1 skips epoch 5; epochs 6, 7, 8 bad -> cut after 8;
    // after epoch 9 cooldown; then floor 0.02.
    let want = [
        0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025,
    ];
    assert!(lrs.iter().zip(want).all(|(g, w)| close(*g, w)), "{lrs:?}");
    // The floor: a long plateau never goes below min_lr.
    let flat = vec![1.0; 40];
    assert!(close(s.learning_rate(0.1, 40, &flat), 0.02));
    assert!(
        Schedule::ReduceOnPlateau {
            factor: 1.5,
            patience: 1,
            threshold: 0.0,
            cooldown: 0,
            min_lr: 0.0
        }
        .validate()
        .is_err()
    );
}

#[test]
fn warmup_ramps_linearly_then_hands_over() {
    let s = LrSchedule {
        schedule: Schedule::Step {
            step_size: 10,
            gamma: 0.1,
        },
        warmup_epochs: 3,
    };
    let lrs: Vec<f64> = (0..5).map(|e| s.learning_rate(0.4, e, &[])).collect();
    let want = [0.1, 0.2, 0.3, 0.4, 0.4];
    assert!(lrs.iter().zip(want).all(|(g, w)| close(*g, w)), "{lrs:?}");
}

#[test]
fn clipping_by_global_norm_and_by_value() {
    let a = Var::new(&Tensor::from_vec(vec![0.0f64; 2], [2]).unwrap()).unwrap();
    let b = Var::new(&Tensor::from_vec(vec![0.0f64; 1], [1]).unwrap()).unwrap();
    let params = [a.clone(), b.clone()];
    let fresh = || {
        let mut g = Grads::default();
        g.insert(&a, Tensor::from_vec(vec![3.0f64, -4.0], [2]).unwrap());
        g.insert(&b, Tensor::from_vec(vec![12.0f64], [1]).unwrap());
        g
    };
    let mut g = fresh();
    let norm = clip_grad_norm(&mut g, &params, 6.5).unwrap();
    assert!(close(norm, 13.0));
    let scale = 6.5 / (13.0 + 1e-6);
    assert_eq!(
        g.get(&a).unwrap().to_vec::<f64>().unwrap(),
        [3.0 * scale, -4.0 * scale]
    );
    let mut g = fresh();
    assert!(close(clip_grad_norm(&mut g, &params, 100.0).unwrap(), 13.0));
    assert_eq!(
        g.get(&b).unwrap().to_vec::<f64>().unwrap(),
        [12.0],
        "below the limit: untouched"
    );
    let mut g = fresh();
    clip_grad_value(&mut g, &params, 3.5).unwrap();
    assert_eq!(g.get(&a).unwrap().to_vec::<f64>().unwrap(), [3.0, -3.5]);
    assert_eq!(g.get(&b).unwrap().to_vec::<f64>().unwrap(), [3.5]);
    let mut g = fresh();
    g.insert(&b, Tensor::from_vec(vec![f64::NAN], [1]).unwrap());
    let err = clip_grad_norm(&mut g, &params, 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the gradient norm is NaN"), "{err}");
}

/// The norm of gradients of every length around the summation's 8 lanes (and an f32 one)
/// equals the plain sum of squares.
#[test]
fn the_global_norm_of_any_length_is_the_sum_of_squares() {
    use nabla_nn::clip::global_norm;
    for len in [1usize, 7, 8, 9, 16, 23, 100] {
        let values: Vec<f64> = (0..len).map(|i| (i as f64 * 0.37).sin() * 3.0).collect();
        let want = values.iter().map(|v| v * v).sum::<f64>().sqrt();
        let a = Var::new(&Tensor::from_vec(vec![0.0f64; len], [len]).unwrap()).unwrap();
        let mut g = Grads::default();
        g.insert(&a, Tensor::from_vec(values.clone(), [len]).unwrap());
        let got = global_norm(&g, std::slice::from_ref(&a));
        assert!(close(got, want), "{len}: {got} vs {want}");
        let single: Vec<f32> = values.iter().map(|&v| v as f32).collect();
        let want32 = single
            .iter()
            .map(|&v| f64::from(v).powi(2))
            .sum::<f64>()
            .sqrt();
        let b = Var::new(&Tensor::from_vec(vec![0.0f32; len], [len]).unwrap()).unwrap();
        let mut g = Grads::default();
        g.insert(&b, Tensor::from_vec(single, [len]).unwrap());
        let got = global_norm(&g, std::slice::from_ref(&b));
        assert!(close(got, want32), "f32 {len}: {got} vs {want32}");
    }
}

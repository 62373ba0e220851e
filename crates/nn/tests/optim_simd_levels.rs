//! The optimizers' update loops run compiled for the SIMD level in use. None of them uses a
//! fused multiply-add, so every level must give the same bits: checked here at each level the
//! CPU has, on a parameter large enough for the parallel chunked update and on a small one.
//!
//! One test in its own binary: the level is a process-wide setting.

mod common;
use nabla_core::{SimdLevel, Tensor, Var, set_max_simd_level};
use nabla_nn::optim::{Adagrad, Adam, DeltaBarDelta, Optimizer, RmsProp, Sgd};

/// Every optimizer and option that changes the update loop.
fn optimizers() -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(Sgd::with_options(0.05, 0.9, 0.0, 0.01, true).unwrap()),
        Box::new(Sgd::with_options(0.05, 0.9, 0.1, 0.0, false).unwrap()),
        Box::new(Adagrad::with_options(0.1, 0.01, 0.01, 0.1, 1e-10).unwrap()),
        Box::new(RmsProp::with_options(0.01, 0.9, 1e-8, 0.01, 0.5, true).unwrap()),
        Box::new(Adam::with_options(0.01, (0.9, 0.99), 1e-8, 0.01, true).unwrap()),
        Box::new(Adam::new(0.01).unwrap()),
        Box::new(Adam::adamw(0.01, 0.1).unwrap()),
        Box::new(DeltaBarDelta::new(0.01, 0.01, 0.3, 0.7).unwrap()),
    ]
}

/// Each optimizer's parameters after 3 steps on `L = Σ p³ / 3` (a gradient `p²` that differs per
/// element and per step), from 100,003 values (a ragged last chunk) and from 7, on two threads.
fn trajectories() -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    for n in [100_003, 7] {
        let start: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
            .collect();
        for mut opt in optimizers() {
            let p = Var::new(&Tensor::from_vec(start.clone(), [n]).unwrap()).unwrap();
            let params = vec![("p".to_string(), p.clone())];
            common::on_threads(2, || {
                for _ in 0..3 {
                    let loss = p.as_tensor().powf(3.0).unwrap().sum_all().unwrap();
                    opt.step(&params, &loss.backward().unwrap()).unwrap();
                }
            });
            let end = p.as_tensor().to_vec::<f32>().unwrap();
            assert_ne!(end, start, "{} moved nothing", opt.name());
            out.push(end.iter().map(|v| v.to_bits()).collect());
        }
    }
    out
}

#[test]
fn every_simd_level_updates_the_same_bits() {
    let levels: Vec<SimdLevel> = SimdLevel::ALL
        .into_iter()
        .filter(|&l| l <= SimdLevel::detected())
        .collect();
    set_max_simd_level(levels[0]);
    let baseline = trajectories();
    for &level in &levels[1..] {
        assert_eq!(set_max_simd_level(level), level);
        let got = trajectories();
        for (i, (got, want)) in got.iter().zip(&baseline).enumerate() {
            assert!(
                got == want,
                "optimizer {i} differs at {level} from the baseline"
            );
        }
    }
}

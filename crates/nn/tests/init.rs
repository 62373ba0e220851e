//! Initializers: sample moments against the variance formulas, orthogonality, determinism, and
//! errors for shapes without fans.

use nabla_core::{DType, Rng, Shape};
use nabla_nn::Init;
use nabla_nn::init::{FanMode, fans, gain_leaky_relu};

fn moments(init: Init, shape: &[usize]) -> (f64, f64, f64) {
    let v = init
        .values(&Shape::from(shape.to_vec()), &mut Rng::seed(7))
        .unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    (mean, var, max)
}

fn assert_variance(init: Init, shape: &[usize], want: f64) {
    let (mean, var, _) = moments(init, shape);
    assert!(mean.abs() < 0.05 * want.sqrt(), "{init:?}: mean {mean}");
    assert!(
        (var / want - 1.0).abs() < 0.03,
        "{init:?} on {shape:?}: variance {var}, formula {want}"
    );
}

#[test]
fn variances_follow_the_published_formulas() {
    // [out=300, in=200]: fan_in 200, fan_out 300.
    let s = [300, 200];
    assert_variance(Init::XavierUniform { gain: 1.0 }, &s, 2.0 / 500.0);
    assert_variance(Init::XavierNormal { gain: 2.0 }, &s, 4.0 * 2.0 / 500.0);
    assert_variance(Init::LeCunNormal, &s, 1.0 / 200.0);
    assert_variance(Init::LeCunUniform, &s, 1.0 / 200.0);
    let relu_in = Init::KaimingNormal {
        negative_slope: 0.0,
        mode: FanMode::FanIn,
    };
    assert_variance(relu_in, &s, 2.0 / 200.0);
    let leaky_out = Init::KaimingUniform {
        negative_slope: 0.2,
        mode: FanMode::FanOut,
    };
    assert_variance(leaky_out, &s, 2.0 / 1.04 / 300.0);
    assert_variance(
        Init::Normal {
            mean: 0.0,
            std: 0.1,
        },
        &s,
        0.01,
    );
    // Conv weights [out=16, in=8, 3, 3]: fans include the receptive field.
    assert_eq!(
        fans("Init::Xavier", &Shape::from(vec![16, 8, 3, 3])).unwrap(),
        (72, 144)
    );
    assert_variance(Init::HE, &[64, 32, 3, 3], 2.0 / 288.0);
}

#[test]
fn uniform_initializers_stay_inside_their_bounds() {
    let (_, _, max) = moments(Init::XavierUniform { gain: 1.0 }, &[300, 200]);
    let bound = (6.0f64 / 500.0).sqrt();
    assert!(
        max <= bound && max > 0.99 * bound,
        "max {max}, bound {bound}"
    );
    let (mean, _, _) = moments(
        Init::Uniform {
            low: 2.0,
            high: 3.0,
        },
        &[1000],
    );
    assert!((mean - 2.5).abs() < 0.03);
    assert!((gain_leaky_relu(0.0) - 2f64.sqrt()).abs() < 1e-15);
}

#[test]
fn orthogonal_gives_orthonormal_rows_or_columns() {
    for (rows, cols) in [(4usize, 9usize), (9, 4), (6, 6)] {
        let shape = Shape::from(vec![rows, cols]);
        let w = Init::Orthogonal { gain: 1.0 }
            .values(&shape, &mut Rng::seed(3))
            .unwrap();
        // Entry i of the a-th orthonormal vector: rows when rows <= cols, else columns.
        let (few, long) = (rows.min(cols), rows.max(cols));
        let get = |v: usize, i: usize| {
            if rows <= cols {
                w[v * cols + i]
            } else {
                w[i * cols + v]
            }
        };
        for a in 0..few {
            for b in 0..few {
                let dot: f64 = (0..long).map(|i| get(a, i) * get(b, i)).sum();
                let want = if a == b { 1.0 } else { 0.0 };
                assert!(
                    (dot - want).abs() < 1e-12,
                    "{rows}x{cols}: <{a},{b}> = {dot}"
                );
            }
        }
    }
}

#[test]
fn same_seed_same_weights_and_dtype_is_respected() {
    let a = Init::HE
        .tensor([5, 4], DType::F32, &mut Rng::seed(1))
        .unwrap();
    let b = Init::HE
        .tensor([5, 4], DType::F32, &mut Rng::seed(1))
        .unwrap();
    let c = Init::HE
        .tensor([5, 4], DType::F32, &mut Rng::seed(2))
        .unwrap();
    assert_eq!(a.dtype(), DType::F32);
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    assert_ne!(a.to_vec::<f32>().unwrap(), c.to_vec::<f32>().unwrap());
}

#[test]
fn fan_based_initializers_reject_biases_and_bad_options() {
    let err = Init::XAVIER
        .tensor([10], DType::F32, &mut Rng::seed(0))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Init::Xavier: shape [10]: needs a weight of rank >= 2"),
        "{err}"
    );
    assert!(
        Init::Normal {
            mean: 0.0,
            std: -1.0
        }
        .tensor([2, 2], DType::F32, &mut Rng::seed(0))
        .is_err()
    );
    assert!(
        Init::Uniform {
            low: 1.0,
            high: 0.0
        }
        .tensor([2], DType::F32, &mut Rng::seed(0))
        .is_err()
    );
}

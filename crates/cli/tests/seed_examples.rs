//! The seeds' examples (crates/cli/examples), each with its outcome asserted. The examples'
//! own code is included as modules.

#[path = "../examples/bowl.rs"]
mod bowl;
#[path = "../examples/house_prices.rs"]
mod house_prices;
#[path = "../examples/insurance.rs"]
mod insurance;
#[path = "../examples/xor.rs"]
mod xor;

#[test]
fn xor_is_learned_by_the_2_8_1_mlp_for_every_seed() {
    for seed in 0..5 {
        let (probs, loss) = xor::run(seed, 500).unwrap();
        let want = [0.0, 1.0, 1.0, 0.0];
        for (p, w) in probs.iter().zip(want) {
            assert!((p - w).abs() < 0.1, "seed {seed}: {probs:?}");
        }
        assert!(loss < 0.05, "seed {seed}: loss {loss}");
    }
}

/// Logistic regression by Newton's method (IRLS) in plain f64: the independent reference.
fn newton_logistic(x: &[f64], y: &[f64]) -> (f64, f64) {
    let (mut w, mut b) = (0.0, 0.0);
    for _ in 0..100 {
        let (mut gw, mut gb, mut hww, mut hwb, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&xi, &yi) in x.iter().zip(y) {
            let p = 1.0 / (1.0 + (-(w * xi + b)).exp());
            let s = p * (1.0 - p);
            gw += (p - yi) * xi;
            gb += p - yi;
            hww += s * xi * xi;
            hwb += s * xi;
            hbb += s;
        }
        let det = hww * hbb - hwb * hwb;
        w -= (hbb * gw - hwb * gb) / det;
        b -= (hww * gb - hwb * gw) / det;
    }
    (w, b)
}

#[test]
fn insurance_logistic_regression_matches_newtons_method() {
    let fitted = insurance::fit(false, 5000).unwrap();
    let (w, b) = newton_logistic(&insurance::AGE, &insurance::BOUGHT);
    assert!(
        (fitted.weights[0] - w).abs() < 1e-3 * w.abs() && (fitted.bias - b).abs() < 1e-3 * b.abs(),
        "gradient descent ({}, {}) vs Newton ({w}, {b})",
        fitted.weights[0],
        fitted.bias
    );
    assert!(fitted.probability(&[25.0]) < 0.1 && fitted.probability(&[60.0]) > 0.85);
    assert!((fitted.train_accuracy - 13.0 / 15.0).abs() < 1e-12);
    // Affordability separates the two buyers-or-not that age alone gets wrong.
    let both = insurance::fit(true, 2000).unwrap();
    assert_eq!(both.train_accuracy, 1.0);
    assert!(both.weights[1] > 0.0, "affordable -> more likely to buy");
}

#[test]
fn house_prices_need_scaling() {
    let (budget, tol) = (20_000, 1e-3);
    let scaled = house_prices::gradient_descent(true, 0.1, budget, tol).unwrap();
    let steps = scaled
        .steps_to_converge
        .expect("standardized inputs converge");
    assert!(steps < 500, "{steps} steps");
    // Raw inputs: the largest learning rates that do not diverge leave the loss far from the
    // optimum after the same budget; a slightly larger one diverges.
    let optimum = house_prices::optimum_mse();
    for lr in [1e-7, 4e-7] {
        let raw = house_prices::gradient_descent(false, lr, budget, tol).unwrap();
        assert!(raw.steps_to_converge.is_none());
        let last = *raw.losses.last().unwrap();
        assert!(
            last.is_finite() && last > 2.0 * optimum,
            "lr {lr}: {last} vs {optimum}"
        );
    }
    let diverged = house_prices::gradient_descent(false, 1e-6, budget, tol).unwrap();
    assert!(!diverged.losses.last().unwrap().is_finite());
}

#[test]
fn momentum_and_nesterov_beat_gradient_descent_on_the_bowl() {
    let table = bowl::table(0.01).unwrap();
    let steps: Vec<usize> = table.iter().map(|(_, s)| s.expect("converges")).collect();
    assert!(steps[1] < steps[0] && steps[2] < steps[0], "{table:?}");
}

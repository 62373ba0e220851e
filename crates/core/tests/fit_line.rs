//! The README's first command: the seeds' line is recovered by gradient descent on autodiff
//! gradients (the example's own code, included as a module).

#[path = "../examples/fit_line.rs"]
mod fit_line;

#[test]
fn gradient_descent_recovers_the_line() {
    let mut losses = Vec::new();
    let f = fit_line::fit(0.02, 1e-12, 20_000, |_, _, _, l| losses.push(l)).unwrap();
    assert!((f.slope - 0.5).abs() < 1e-5, "slope {}", f.slope);
    assert!(
        (f.intercept + 1.5).abs() < 1e-5,
        "intercept {}",
        f.intercept
    );
    assert!(f.steps < 20_000);
    // Gradient descent with a stable step size decreases the convex loss monotonically.
    assert!(losses.windows(2).all(|w| w[1] <= w[0]));
}

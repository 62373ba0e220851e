//! The elliptical bowl L = x² + 4y²: how many steps gradient descent, momentum and Nesterov
//! momentum need from (1, 1) to bring the loss under 1e-8, at the same learning rate.
//! Momentum accumulates speed along the shallow x direction while the oscillations across the
//! steep y direction cancel.
//!
//! Run: `cargo run --release -p nabla --example bowl`

use nabla::nn::optim::{Optimizer, Sgd};
use nabla::prelude::*;

/// Steps for `optimizer` to bring the bowl's loss below `tol` (None if not within 100,000).
pub fn steps_to_converge(optimizer: &mut dyn Optimizer, tol: f64) -> anyhow::Result<Option<usize>> {
    let p = Var::new(&Tensor::from_vec(vec![1.0f64, 1.0], [2])?)?;
    let params = vec![("p".to_string(), p.clone())];
    let scale = Tensor::from_vec(vec![1.0f64, 4.0], [2])?;
    for k in 0..100_000 {
        let loss = p.as_tensor().square()?.mul(&scale)?.sum_all()?;
        if loss.to_scalar::<f64>()? < tol {
            return Ok(Some(k));
        }
        optimizer.step(&params, &loss.backward()?)?;
    }
    Ok(None)
}

/// (method, steps) for the three methods at learning rate `lr` and momentum 0.9.
pub fn table(lr: f64) -> anyhow::Result<Vec<(&'static str, Option<usize>)>> {
    Ok(vec![
        (
            "gradient descent",
            steps_to_converge(&mut Sgd::new(lr)?, 1e-8)?,
        ),
        (
            "momentum 0.9",
            steps_to_converge(&mut Sgd::momentum(lr, 0.9, false)?, 1e-8)?,
        ),
        (
            "Nesterov 0.9",
            steps_to_converge(&mut Sgd::momentum(lr, 0.9, true)?, 1e-8)?,
        ),
    ])
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    // At a cautious rate momentum wins clearly; near the largest stable rate for plain descent,
    // momentum 0.9 overshoots and oscillates while Nesterov's look-ahead still helps.
    for lr in [0.01, 0.05] {
        println!("learning rate {lr}:");
        for (name, steps) in table(lr)? {
            println!(
                "  {name:<18} {}",
                steps.map_or("did not converge".into(), |s| s.to_string())
            );
        }
    }
    Ok(())
}

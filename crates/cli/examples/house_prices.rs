//! Linear regression of house prices on area and bedrooms, with and without feature scaling:
//! why scaling matters. Areas are in the thousands and bedrooms single digits, so the loss
//! surface is a long, thin valley (the Hessian's eigenvalues differ by ~10⁶): gradient descent
//! must take tiny steps for the steep direction and then crawls along the flat one.
//! Standardized inputs make the valley round and the same method converges in a few hundred
//! steps.
//!
//! Run: `cargo run --release -p nabla --example house_prices`

use nabla::data::{Preprocessor, Scaling};
use nabla::nn::layers::Linear;
use nabla::nn::optim::{Optimizer, Sgd};
use nabla::prelude::*;

/// (area in ft², bedrooms, price in k$), the six houses.
pub const HOUSES: [(f64, f64, f64); 6] = [
    (1200., 2., 70.),
    (1500., 3., 120.),
    (2100., 4., 230.),
    (1100., 3., 105.),
    (1300., 2., 90.),
    (900., 1., 55.),
];

/// Result of one gradient-descent run.
pub struct Run {
    /// Mean squared error after each step (index 0: before any step).
    pub losses: Vec<f64>,
    /// Steps until the loss came within `tol` (relative) of the least-squares optimum.
    pub steps_to_converge: Option<usize>,
}

/// The least-squares optimum's MSE, by the normal equations.
pub fn optimum_mse() -> f64 {
    // Solve (XᵀX) β = Xᵀy for X = [1, area, bedrooms] by Gaussian elimination (3x3).
    let mut a = [[0.0f64; 4]; 3];
    for &(area, beds, price) in &HOUSES {
        let row = [1.0, area, beds];
        for i in 0..3 {
            for j in 0..3 {
                a[i][j] += row[i] * row[j];
            }
            a[i][3] += row[i] * price;
        }
    }
    for col in 0..3 {
        let pivot = (col..3)
            .max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))
            .unwrap();
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (v, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let beta: Vec<f64> = (0..3).map(|i| a[i][3] / a[i][i]).collect();
    HOUSES
        .iter()
        .map(|&(area, beds, price)| (beta[0] + beta[1] * area + beta[2] * beds - price).powi(2))
        .sum::<f64>()
        / HOUSES.len() as f64
}

/// Full-batch gradient descent on the MSE, in f64, with or without standardized inputs.
pub fn gradient_descent(scaled: bool, lr: f64, max_steps: usize, tol: f64) -> anyhow::Result<Run> {
    let raw: Vec<f64> = HOUSES.iter().flat_map(|h| [h.0, h.1]).collect();
    let x = if scaled {
        Preprocessor::fit(&raw, 2, None, Scaling::Standardize)?.transform(&raw)?
    } else {
        raw
    };
    let x = Tensor::from_vec(x, [6, 2])?;
    let y = Tensor::from_vec(HOUSES.iter().map(|h| h.2).collect::<Vec<_>>(), [6, 1])?;
    let model = Linear::builder(2, 1)
        .dtype(DType::F64)
        .init(Init::Zeros)
        .build(&mut Rng::seed(0))?;
    let params = model.named_parameters();
    let mut gd = Sgd::new(lr)?;
    let best = optimum_mse();
    let mut losses = Vec::new();
    let mut steps_to_converge = None;
    for step in 0..=max_steps {
        let loss = model
            .forward(&x, &mut Ctx::eval())?
            .mse_loss(&y, Reduction::Mean)?;
        let value = loss.to_scalar::<f64>()?;
        losses.push(value);
        if !value.is_finite() {
            break;
        }
        if value <= best * (1.0 + tol) {
            steps_to_converge = Some(step);
            break;
        }
        if step < max_steps {
            gd.step(&params, &loss.backward()?)?;
        }
    }
    Ok(Run {
        losses,
        steps_to_converge,
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    let (budget, tol) = (100_000, 1e-3);
    println!("least-squares optimum: MSE {:.3}", optimum_mse());
    println!(
        "{:<28} {:>10} {:>18} {:>14}",
        "inputs", "lr", "steps to optimum", "final MSE"
    );
    for (scaled, lr) in [
        (true, 0.1),
        (true, 0.5),
        (false, 1e-7),
        (false, 4e-7),
        (false, 1e-6),
    ] {
        let run = gradient_descent(scaled, lr, budget, tol)?;
        println!(
            "{:<28} {:>10.0e} {:>18} {:>14.3e}",
            if scaled {
                "standardized"
            } else {
                "raw (area in thousands)"
            },
            lr,
            run.steps_to_converge
                .map_or(format!("> {budget}"), |s| s.to_string()),
            run.losses.last().copied().unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

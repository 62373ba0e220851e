//! Recovers the line y = 0.5x − 1.5 from the points (2,−0.5), (3,0), (5,1), (7,2), (9,3) by
//! gradient descent on the mean squared error, with gradients from nabla's autodiff.
//!
//! Run: `cargo run --release -p nabla-core --example fit_line`

use nabla_core::{Reduction, Result, Tensor, Var, no_grad};

/// The fitted slope and intercept, the final loss and the number of steps taken.
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    pub loss: f64,
    pub steps: usize,
}

/// Full-batch gradient descent from (0, 0) until the loss is below `tol` (or `max_steps`).
pub fn fit(
    learning_rate: f64,
    tol: f64,
    max_steps: usize,
    mut report: impl FnMut(usize, f64, f64, f64),
) -> Result<Fit> {
    let x = Tensor::from_vec(vec![2.0f64, 3.0, 5.0, 7.0, 9.0], [5])?;
    let y = Tensor::from_vec(vec![-0.5f64, 0.0, 1.0, 2.0, 3.0], [5])?;
    let w = Var::new(&Tensor::scalar(0.0f64))?;
    let b = Var::new(&Tensor::scalar(0.0f64))?;
    let mut loss_value = f64::INFINITY;
    let mut steps = 0;
    while steps < max_steps {
        // L(w, b) = mean((w·x + b − y)²)
        let loss = x
            .mul(&w.as_tensor())?
            .add(&b.as_tensor())?
            .mse_loss(&y, Reduction::Mean)?;
        loss_value = loss.to_scalar::<f64>()?;
        if loss_value < tol {
            break;
        }
        let grads = loss.backward()?;
        drop(loss);
        let _no_grad = no_grad();
        for p in [&w, &b] {
            let g = grads
                .get(p)
                .expect("both parameters are in the graph")
                .to_scalar::<f64>()?;
            p.update(|v: &mut [f64]| v[0] -= learning_rate * g)?;
        }
        steps += 1;
        report(
            steps,
            w.as_tensor().to_scalar()?,
            b.as_tensor().to_scalar()?,
            loss_value,
        );
    }
    Ok(Fit {
        slope: w.as_tensor().to_scalar()?,
        intercept: b.as_tensor().to_scalar()?,
        loss: loss_value,
        steps,
    })
}

#[allow(dead_code)]
fn main() -> Result<()> {
    println!(
        "nabla: fitting y = w·x + b to (2,-0.5) (3,0) (5,1) (7,2) (9,3) by gradient descent (lr 0.02)"
    );
    println!("{:>6}  {:>10}  {:>10}  {:>12}", "step", "w", "b", "loss");
    let f = fit(0.02, 1e-12, 20_000, |step, w, b, loss| {
        if step.is_power_of_two() || step % 1000 == 0 {
            println!("{step:>6}  {w:>10.6}  {b:>10.6}  {loss:>12.3e}");
        }
    })?;
    println!(
        "\nconverged in {} steps: y = {:.6}·x {:+.6}  (truth: y = 0.5·x - 1.5), final MSE {:.2e}",
        f.steps, f.slope, f.intercept, f.loss
    );
    if (f.slope - 0.5).abs() > 1e-4 || (f.intercept + 1.5).abs() > 1e-4 {
        eprintln!("error: did not recover the line");
        std::process::exit(1);
    }
    Ok(())
}

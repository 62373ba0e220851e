//! `nabla check-optim FILE`: replays PyTorch optimizer trajectories ("optim-oracle/1", see
//! `shared/oracle/README.md`). For each case it builds nabla's optimizer from the case's
//! `torch_class` and hyperparameters, runs it on the file's least-squares objective with
//! gradients from nabla's own autodiff (f64), and compares every iterate `w_k` with relative
//! error at most 1e-9.

use super::oracle::Verdict;
use anyhow::{Context, Result, anyhow, bail};
use nabla_core::{Reduction, Tensor, Var};
use nabla_nn::optim::{Adagrad, Adam, Optimizer, RmsProp, Sgd};
use serde_json::{Value, json};

/// Relative tolerance on each coordinate of each iterate.
pub const REL_TOL: f64 = 1e-9;

/// The objective `f(w) = Σ (A w − b)²`, as stored in the file.
pub struct Objective {
    a: Tensor,
    b: Tensor,
    w0: Vec<f64>,
}

/// One point of a trajectory.
pub struct Point {
    pub w: Vec<f64>,
    pub loss: f64,
}

/// Reads a case file: the objective and the cases.
pub fn load(path: &std::path::Path) -> Result<(Objective, Vec<Value>)> {
    let (doc, cases) = super::oracle::load(path, "optim-oracle/1")?;
    let obj = &doc["objective"];
    let matrix: Vec<Vec<f64>> = serde_json::from_value(obj["A"].clone())
        .with_context(|| format!("{}: objective.A must be a matrix", path.display()))?;
    let b: Vec<f64> = serde_json::from_value(obj["b"].clone())
        .with_context(|| format!("{}: objective.b must be a vector", path.display()))?;
    let w0: Vec<f64> = serde_json::from_value(obj["w0"].clone())
        .with_context(|| format!("{}: objective.w0 must be a vector", path.display()))?;
    let cols = w0.len();
    if matrix.len() != b.len() || matrix.iter().any(|row| row.len() != cols) {
        bail!(
            "{}: objective shapes do not fit: A is {} rows, b has {}, w0 has {cols}",
            path.display(),
            matrix.len(),
            b.len()
        );
    }
    let rows = b.len();
    Ok((
        Objective {
            a: Tensor::from_vec(matrix.concat(), [rows, cols])?,
            b: Tensor::from_vec(b, [rows, 1])?,
            w0,
        },
        cases,
    ))
}

fn hp(h: &Value, key: &str) -> Result<f64> {
    h.get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| anyhow!("hyperparameter {key:?} missing or not a number"))
}

fn flag(h: &Value, key: &str) -> bool {
    h.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// nabla's optimizer for a case's `torch_class` and `hyperparameters`.
pub fn optimizer_for(case: &Value) -> Result<Box<dyn Optimizer>> {
    let class = case["torch_class"]
        .as_str()
        .ok_or_else(|| anyhow!("no \"torch_class\""))?;
    let h = &case["hyperparameters"];
    for unsupported in ["maximize", "capturable", "differentiable"] {
        if flag(h, unsupported) {
            bail!("{class}: {unsupported}=true is not supported");
        }
    }
    let betas = || -> Result<(f64, f64)> {
        let b: Vec<f64> = serde_json::from_value(h["betas"].clone())
            .context("hyperparameter \"betas\" must be two numbers")?;
        match b[..] {
            [b1, b2] => Ok((b1, b2)),
            _ => bail!("hyperparameter \"betas\" must be two numbers"),
        }
    };
    Ok(match class {
        "SGD" => Box::new(Sgd::with_options(
            hp(h, "lr")?,
            hp(h, "momentum")?,
            hp(h, "dampening")?,
            hp(h, "weight_decay")?,
            flag(h, "nesterov"),
        )?),
        "Adagrad" => Box::new(Adagrad::with_options(
            hp(h, "lr")?,
            hp(h, "lr_decay")?,
            hp(h, "weight_decay")?,
            hp(h, "initial_accumulator_value")?,
            hp(h, "eps")?,
        )?),
        "RMSprop" => Box::new(RmsProp::with_options(
            hp(h, "lr")?,
            hp(h, "alpha")?,
            hp(h, "eps")?,
            hp(h, "weight_decay")?,
            hp(h, "momentum")?,
            flag(h, "centered"),
        )?),
        "Adam" | "AdamW" => {
            let decoupled = class == "AdamW" || flag(h, "decoupled_weight_decay");
            Box::new(
                Adam::with_options(
                    hp(h, "lr")?,
                    betas()?,
                    hp(h, "eps")?,
                    hp(h, "weight_decay")?,
                    flag(h, "amsgrad"),
                )?
                .decoupled(decoupled),
            )
        }
        other => bail!(
            "unknown torch_class {other:?} (nabla replays SGD, Adagrad, RMSprop, Adam, AdamW)"
        ),
    })
}

/// Runs a case's optimizer for its number of steps; returns `w_0 .. w_steps` with their losses.
pub fn run_case(objective: &Objective, case: &Value) -> Result<Vec<Point>> {
    let steps = case["steps"]
        .as_u64()
        .ok_or_else(|| anyhow!("no \"steps\""))?;
    let mut optimizer = optimizer_for(case)?;
    let n = objective.w0.len();
    let w = Var::new(&Tensor::from_vec(objective.w0.clone(), [n, 1])?)?;
    let params = vec![("w".to_string(), w.clone())];
    let loss_of = |w: &Var| -> Result<Tensor> {
        Ok(objective
            .a
            .matmul(&w.as_tensor())?
            .mse_loss(&objective.b, Reduction::Sum)?)
    };
    let mut points = Vec::new();
    for k in 0..=steps {
        let loss = loss_of(&w)?;
        points.push(Point {
            w: w.as_tensor().to_vec::<f64>()?,
            loss: loss.to_scalar::<f64>()?,
        });
        if k < steps {
            optimizer.step(&params, &loss.backward()?)?;
        }
    }
    Ok(points)
}

/// Compares a trajectory with the case's.
pub fn verify(case: &Value, points: &[Point]) -> std::result::Result<(), String> {
    let expected = case["trajectory"].as_array().ok_or("no \"trajectory\"")?;
    if expected.len() != points.len() {
        return Err(format!(
            "trajectory has {} points, nabla computed {}",
            expected.len(),
            points.len()
        ));
    }
    for (k, (e, got)) in expected.iter().zip(points).enumerate() {
        let want: Vec<f64> = serde_json::from_value(e["w"].clone())
            .map_err(|_| format!("trajectory[{k}].w is not a vector"))?;
        if want.len() != got.w.len() {
            return Err(format!("w_{k}: expected {} values", want.len()));
        }
        for (i, (&g, &w)) in got.w.iter().zip(&want).enumerate() {
            let rel = (g - w).abs() / w.abs().max(f64::MIN_POSITIVE);
            if rel > REL_TOL {
                return Err(format!(
                    "w_{k}[{i}]: got {g:e}, expected {w:e} (relative error {rel:e})"
                ));
            }
        }
    }
    Ok(())
}

/// Replays and checks every case.
pub fn check_all(objective: &Objective, cases: &[Value]) -> Vec<Verdict> {
    cases
        .iter()
        .map(|case| {
            let id = case["name"].as_str().unwrap_or("?").to_string();
            let outcome = run_case(objective, case)
                .map_err(|e| format!("error: {e:#}"))
                .and_then(|points| verify(case, &points));
            Verdict { id, outcome }
        })
        .collect()
}

/// nabla's own trajectories in the file's layout.
pub fn emit(objective: &Objective, cases: &[Value]) -> Value {
    let out: Vec<Value> = cases
        .iter()
        .map(|case| {
            let name = case["name"].as_str().unwrap_or("?");
            match run_case(objective, case) {
                Ok(points) => {
                    let trajectory: Vec<Value> = points
                        .iter()
                        .enumerate()
                        .map(|(k, p)| json!({"k": k, "w": p.w, "loss": p.loss}))
                        .collect();
                    json!({"name": name, "trajectory": trajectory})
                }
                Err(e) => json!({"name": name, "error": format!("{e:#}")}),
            }
        })
        .collect();
    json!({"format": "optim-oracle/1", "cases": out})
}

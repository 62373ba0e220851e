//! Shared test helpers: finite-difference gradient checking, and running on a set thread count.
#![allow(dead_code)]

use nabla_core::{Result, Rng, Tensor, Var};

/// A random f64 tensor with values in `[-2, 2)` rounded to multiples of 1/64, kept away from 0
/// by at least 1/32 when `away_from_zero` (so that kinks at 0 are not within the FD step).
pub fn input(shape: &[usize], seed: u64, away_from_zero: bool) -> Tensor {
    let mut rng = Rng::seed(seed);
    let v: Vec<f64> = (0..shape.iter().product::<usize>())
        .map(|_| {
            let mut x = ((rng.uniform() * 4.0 - 2.0) * 64.0).round() / 64.0;
            if away_from_zero && x.abs() < 1.0 / 32.0 {
                x = if x < 0.0 { -0.25 } else { 0.25 };
            }
            x
        })
        .collect();
    Tensor::from_vec(v, shape.to_vec()).unwrap()
}

/// Positive values in `[0.5, 2.5)` (for log, sqrt, division).
pub fn positive(shape: &[usize], seed: u64) -> Tensor {
    input(shape, seed, false)
        .abs()
        .unwrap()
        .add_scalar(0.5)
        .unwrap()
}

/// Checks the autodiff gradients of `sum(f(inputs) ⊙ c)` for a fixed random cotangent `c`
/// against central finite differences, for every input.
pub fn check(name: &str, inputs: Vec<Tensor>, f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::new(t).unwrap()).collect();
    let values: Vec<Tensor> = vars.iter().map(Var::as_tensor).collect();
    let out = f(&values).unwrap_or_else(|e| panic!("{name}: forward failed: {e}"));
    let cot = input(out.dims(), 99, false);
    let objective = |xs: &[Tensor]| -> f64 {
        let y = f(xs).unwrap();
        y.mul(&cot)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let grads = vjp(&out, &cot);
    let h = 1e-6;
    for (k, var) in vars.iter().enumerate() {
        let analytic = grads
            .get(var)
            .map(|g| g.to_vec::<f64>().unwrap())
            .unwrap_or_else(|| vec![0.0; var.elem_count()]);
        let base = inputs[k].to_vec::<f64>().unwrap();
        for i in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                let mut xs: Vec<Tensor> = inputs.clone();
                xs[k] = Tensor::from_vec(v, inputs[k].dims().to_vec()).unwrap();
                objective(&xs)
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * h);
            let tol = 1e-6 + 1e-5 * numeric.abs();
            assert!(
                (analytic[i] - numeric).abs() <= tol,
                "{name}: d/d input{k}[{i}]: autodiff {} vs finite difference {numeric}",
                analytic[i]
            );
        }
    }
}

/// Distinct values (a seeded permutation of multiples of 1/8), for max/pool checks where ties
/// would make the finite difference one-sided.
pub fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut values: Vec<f64> = (0..n).map(|i| (i as f64 - n as f64 / 2.0) / 8.0).collect();
    let mut rng = Rng::seed(seed);
    rng.shuffle(&mut values);
    Tensor::from_vec(values, shape.to_vec()).unwrap()
}

/// The gradients of `sum(out ⊙ cot)`: the vector-Jacobian product with cotangent `cot` for
/// every tensor `out` depends on.
pub fn vjp(out: &Tensor, cot: &Tensor) -> nabla_core::Grads {
    out.mul(cot).unwrap().sum_all().unwrap().backward().unwrap()
}

/// `work` run on a fresh pool of exactly `threads` threads (for tests that compare results
/// across thread counts).
pub fn on_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(work)
}

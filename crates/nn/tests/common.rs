//! Helpers shared by nabla-nn's tests.
#![allow(dead_code)]

use nabla_core::{Tensor, Var};

/// A deterministic f64 tensor with distinct, moderate values.
pub fn input(shape: &[usize], salt: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let data: Vec<f64> = (0..n)
        .map(|i| (((i as u64 * 7919 + salt * 104_729) % 1000) as f64 / 1000.0 - 0.5) * 2.0)
        .collect();
    Tensor::from_vec(data, shape.to_vec()).unwrap()
}

/// Checks the autodiff gradient of `loss(vars)` against central finite differences in f64.
pub fn check_fd(vars: &[Var], loss: impl Fn() -> Tensor, tol: f64) {
    let grads = loss().backward().unwrap();
    for (k, var) in vars.iter().enumerate() {
        let analytic = grads
            .get(var)
            .unwrap_or_else(|| panic!("var {k} has no gradient"))
            .to_vec::<f64>()
            .unwrap();
        let base = var.as_tensor().to_vec::<f64>().unwrap();
        let h = 1e-6;
        for i in 0..base.len() {
            let eval = |delta: f64| {
                let mut v = base.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape()).unwrap()).unwrap();
                let l = loss().to_scalar::<f64>().unwrap();
                var.set(&Tensor::from_vec(base.clone(), var.shape()).unwrap())
                    .unwrap();
                l
            };
            let numeric = (eval(h) - eval(-h)) / (2.0 * h);
            assert!(
                (numeric - analytic[i]).abs() <= tol * (1.0 + numeric.abs()),
                "var {k}[{i}]: autodiff {} vs finite differences {numeric}",
                analytic[i]
            );
        }
    }
}

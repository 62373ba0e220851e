//! Helpers shared by nabla-nn's tests.
#![allow(dead_code)]

use nabla_core::{Tensor, Var};
use serde_json::Value;

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

/// The numbers of a JSON array.
pub fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// A tensor from a JSON `{shape, data}` object.
pub fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    Tensor::from_vec(floats(&v["data"]), shape).unwrap()
}

/// Asserts `got` matches PyTorch's float64 `want` at the oracle's tolerance,
/// |got − want| ≤ 1e-9 + 1e-7·|want|.
pub fn close_to_torch(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-9 + 1e-7 * w.abs(),
            "{what}[{i}]: nabla {g} vs PyTorch {w}"
        );
    }
}

/// The gradients of `sum(out ⊙ cot)`: the vector-Jacobian product with cotangent `cot` for
/// every tensor `out` depends on.
pub fn vjp(out: &Tensor, cot: &Tensor) -> nabla_core::Grads {
    out.mul(cot).unwrap().sum_all().unwrap().backward().unwrap()
}

/// `work` run on a fresh pool of exactly `threads` threads (for tests that compare results
/// across thread counts or need the parallel paths).
pub fn on_threads<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(work)
}

//! `nabla check-grads FILE`: replays the PyTorch reference cases ("grad-oracle/1", see
//! `shared/oracle/README.md`) through nabla's autodiff in f64 and compares output, intermediate
//! values and input gradients with `|got − expected| <= 1e-9 + 1e-7 |expected|`.

use super::oracle::Verdict;
use anyhow::{Context, Result, anyhow, bail};
use nabla_core::{Conv2dOptions, DType, Pool2dOptions, Reduction, Tensor, Var};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Absolute and relative tolerance of the f64 comparison.
pub const ABS_TOL: f64 = 1e-9;
pub const REL_TOL: f64 = 1e-7;

/// nabla's result for one case.
pub struct CaseResult {
    pub id: String,
    pub output: f64,
    pub values: HashMap<String, Tensor>,
    pub grads: Vec<(String, Tensor)>,
}

/// Reads and validates a case file.
pub fn load(path: &std::path::Path) -> Result<Vec<Value>> {
    Ok(super::oracle::load(path, "grad-oracle/1")?.1)
}

fn tensor_from(name: &str, v: &Value) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v.get("shape").cloned().unwrap_or(Value::Null))
        .with_context(|| format!("tensor {name}: bad \"shape\""))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("tensor {name}: no \"data\""))?;
    match v.get("dtype").and_then(Value::as_str).unwrap_or("float64") {
        "float64" => {
            let d: Vec<f64> = data
                .iter()
                .map(|x| {
                    x.as_f64()
                        .ok_or_else(|| anyhow!("tensor {name}: non-number in data"))
                })
                .collect::<Result<_>>()?;
            Ok(Tensor::from_vec(d, shape)?)
        }
        "int64" => {
            let d: Vec<i64> = data
                .iter()
                .map(|x| {
                    x.as_i64()
                        .ok_or_else(|| anyhow!("tensor {name}: non-integer in int64 data"))
                })
                .collect::<Result<_>>()?;
            Ok(Tensor::from_vec(d, shape)?)
        }
        other => bail!("tensor {name}: unsupported dtype {other:?}"),
    }
}

fn attr<'a>(op: &'a Value, key: &str) -> Result<&'a Value> {
    op.get(key)
        .ok_or_else(|| anyhow!("op {}: missing attribute {key:?}", op["op"]))
}
fn attr_f64(op: &Value, key: &str) -> Result<f64> {
    attr(op, key)?
        .as_f64()
        .ok_or_else(|| anyhow!("op {}: {key} must be a number", op["op"]))
}
fn attr_isize(op: &Value, key: &str) -> Result<isize> {
    attr(op, key)?
        .as_i64()
        .map(|v| v as isize)
        .ok_or_else(|| anyhow!("op {}: {key} must be an integer", op["op"]))
}
fn attr_pair(op: &Value, key: &str) -> Result<[usize; 2]> {
    let v: Vec<usize> = serde_json::from_value(attr(op, key)?.clone())
        .with_context(|| format!("op {}: {key} must be [int, int]", op["op"]))?;
    v.try_into()
        .map_err(|_| anyhow!("op {}: {key} must have two entries", op["op"]))
}
fn reduction(op: &Value) -> Result<Reduction> {
    Ok(Reduction::parse(
        attr(op, "reduction")?.as_str().unwrap_or(""),
    )?)
}

/// Runs one op of the case language on already-computed operands.
fn apply(op: &Value, args: &[&Tensor]) -> Result<Tensor> {
    let name = op["op"].as_str().unwrap_or("");
    let arity = |n: usize| -> Result<()> {
        if args.len() == n {
            Ok(())
        } else {
            bail!("op {name}: expects {n} inputs, got {}", args.len())
        }
    };
    let keepdim = || op.get("keepdim").and_then(Value::as_bool).unwrap_or(false);
    let out = match name {
        "matmul"
        | "add"
        | "sub"
        | "mul"
        | "div"
        | "mse_loss"
        | "cross_entropy"
        | "binary_cross_entropy_with_logits" => {
            arity(2)?;
            let (a, b) = (args[0], args[1]);
            match name {
                "matmul" => a.matmul(b)?,
                "add" => a.add(b)?,
                "sub" => a.sub(b)?,
                "mul" => a.mul(b)?,
                "div" => a.div(b)?,
                "mse_loss" => a.mse_loss(b, reduction(op)?)?,
                "cross_entropy" => a.cross_entropy(b, reduction(op)?)?,
                _ => a.binary_cross_entropy_with_logits(b, reduction(op)?)?,
            }
        }
        "relu" | "sigmoid" | "tanh" | "exp" | "log" => {
            arity(1)?;
            let x = args[0];
            match name {
                "relu" => x.relu()?,
                "sigmoid" => x.sigmoid()?,
                "tanh" => x.tanh()?,
                "exp" => x.exp()?,
                _ => x.log()?,
            }
        }
        "leaky_relu" => {
            arity(1)?;
            args[0].leaky_relu(attr_f64(op, "negative_slope")?)?
        }
        "elu" => {
            arity(1)?;
            args[0].elu(attr_f64(op, "alpha")?)?
        }
        "hardtanh" => {
            arity(1)?;
            args[0].hard_tanh(attr_f64(op, "min_val")?, attr_f64(op, "max_val")?)?
        }
        "softmax" => {
            arity(1)?;
            args[0].softmax(attr_isize(op, "dim")?)?
        }
        "log_softmax" => {
            arity(1)?;
            args[0].log_softmax(attr_isize(op, "dim")?)?
        }
        "sum" | "mean" => {
            arity(1)?;
            let dims: Option<Vec<isize>> =
                serde_json::from_value(op.get("dims").cloned().unwrap_or(Value::Null))
                    .with_context(|| format!("op {name}: dims must be a list of ints or null"))?;
            match (name, dims) {
                ("sum", None) if !keepdim() => args[0].sum_all()?,
                ("mean", None) if !keepdim() => args[0].mean_all()?,
                (_, dims) => {
                    let dims = dims.unwrap_or_else(|| (0..args[0].rank() as isize).collect());
                    if name == "sum" {
                        args[0].sum_dims(&dims, keepdim())?
                    } else {
                        args[0].mean_dims(&dims, keepdim())?
                    }
                }
            }
        }
        "max" => {
            arity(1)?;
            match op.get("dim").and_then(Value::as_i64) {
                None => args[0].max_all()?,
                Some(d) => args[0].max_dim(d as isize, keepdim())?,
            }
        }
        "reshape" => {
            arity(1)?;
            let shape: Vec<isize> = serde_json::from_value(attr(op, "shape")?.clone())
                .context("op reshape: shape must be a list of ints")?;
            args[0].reshape_infer(&shape)?
        }
        "transpose" => {
            arity(1)?;
            args[0].transpose(attr_isize(op, "dim0")?, attr_isize(op, "dim1")?)?
        }
        "conv2d" => {
            if !(2..=3).contains(&args.len()) {
                bail!("op conv2d: expects 2 or 3 inputs, got {}", args.len());
            }
            let opts = Conv2dOptions {
                stride: attr_pair(op, "stride")?,
                padding: attr_pair(op, "padding")?,
                dilation: [1, 1],
                groups: 1,
            };
            args[0].conv2d(args[1], args.get(2).copied(), opts)?
        }
        "max_pool2d" => {
            arity(1)?;
            args[0].max_pool2d(Pool2dOptions {
                kernel: attr_pair(op, "kernel_size")?,
                stride: attr_pair(op, "stride")?,
                padding: attr_pair(op, "padding")?,
            })?
        }
        "batch_norm" | "layer_norm" => {
            if args.len() != 1 && args.len() != 3 {
                bail!("op {name}: expects 1 or 3 inputs, got {}", args.len());
            }
            let (w, b) = (args.get(1).copied(), args.get(2).copied());
            let eps = attr_f64(op, "eps")?;
            if name == "batch_norm" {
                args[0].batch_norm(w, b, eps)?
            } else {
                let shape: Vec<usize> =
                    serde_json::from_value(attr(op, "normalized_shape")?.clone())
                        .context("op layer_norm: normalized_shape must be a list of ints")?;
                args[0].layer_norm(&shape, w, b, eps)?
            }
        }
        other => bail!("unknown op {other:?}"),
    };
    Ok(out)
}

/// Runs one case through nabla in f64.
pub fn run_case(case: &Value) -> Result<CaseResult> {
    let id = case
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_string();
    let inputs = case
        .get("inputs")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no \"inputs\" object"))?;
    let mut env: HashMap<String, Tensor> = HashMap::new();
    let mut vars: Vec<(String, Var)> = Vec::new();
    for (name, spec) in inputs {
        let t = tensor_from(name, spec)?;
        let wants_grad = t.dtype() == DType::F64
            && spec
                .get("requires_grad")
                .and_then(Value::as_bool)
                .unwrap_or(true);
        if wants_grad {
            let v = Var::new(&t)?;
            env.insert(name.clone(), v.as_tensor());
            vars.push((name.clone(), v));
        } else {
            env.insert(name.clone(), t);
        }
    }
    let ops = case
        .get("ops")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no \"ops\" array"))?;
    let mut values = HashMap::new();
    for op in ops {
        let names = op
            .get("in")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("op without \"in\""))?;
        let args = names
            .iter()
            .map(|n| {
                let n = n.as_str().unwrap_or("");
                env.get(n)
                    .ok_or_else(|| anyhow!("op {}: unknown operand {n:?}", op["op"]))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = apply(op, &args).with_context(|| format!("op {}", op["op"]))?;
        let out_name = op
            .get("out")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("op without \"out\""))?
            .to_string();
        values.insert(out_name.clone(), out.clone());
        env.insert(out_name, out);
    }
    let out_name = case
        .get("output")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("no \"output\""))?;
    let loss = env
        .get(out_name)
        .ok_or_else(|| anyhow!("output {out_name:?} was never computed"))?;
    let output = loss.to_scalar_f64()?;
    let grads = if vars.is_empty() {
        None
    } else {
        Some(loss.backward()?)
    };
    let grads = vars
        .iter()
        .map(|(name, v)| {
            let g = grads
                .as_ref()
                .and_then(|g| g.get(v).cloned())
                .unwrap_or_else(|| Tensor::zeros(v.shape(), DType::F64));
            (name.clone(), g)
        })
        .collect();
    Ok(CaseResult {
        id,
        output,
        values,
        grads,
    })
}

fn close(got: f64, expected: f64) -> bool {
    if got.is_nan() || expected.is_nan() {
        return got.is_nan() && expected.is_nan();
    }
    if got.is_infinite() || expected.is_infinite() {
        return got == expected;
    }
    (got - expected).abs() <= ABS_TOL + REL_TOL * expected.abs()
}

fn compare(what: &str, got: &Tensor, expected: &Value) -> std::result::Result<(), String> {
    let shape: Vec<usize> = serde_json::from_value(expected["shape"].clone())
        .map_err(|e| format!("{what}: bad expected shape: {e}"))?;
    if got.dims() != shape.as_slice() {
        return Err(format!(
            "{what}: shape {} != expected {:?}",
            got.shape(),
            shape
        ));
    }
    let data = got.to_vec_f64();
    for (i, (g, e)) in data
        .iter()
        .zip(expected["data"].as_array().into_iter().flatten())
        .enumerate()
    {
        let e = e.as_f64().unwrap_or(f64::NAN);
        if !close(*g, e) {
            return Err(format!(
                "{what}[{i}]: got {g:e}, expected {e:e} (|diff| {:e})",
                (g - e).abs()
            ));
        }
    }
    Ok(())
}

/// Compares nabla's result with the case's expectations.
pub fn verify(case: &Value, result: &CaseResult) -> std::result::Result<(), String> {
    let expected = &case["expected"];
    let out = expected["output"].as_f64().ok_or("no expected output")?;
    if !close(result.output, out) {
        return Err(format!("output: got {:e}, expected {out:e}", result.output));
    }
    if let Some(values) = expected.get("values").and_then(Value::as_object) {
        for (name, v) in values {
            let got = result
                .values
                .get(name)
                .ok_or_else(|| format!("value {name} not computed"))?;
            compare(&format!("value {name}"), got, v)?;
        }
    }
    let grads = expected
        .get("grads")
        .and_then(Value::as_object)
        .ok_or("no expected grads")?;
    for (name, g) in grads {
        let got = result
            .grads
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| format!("no gradient for input {name}"))?;
        compare(&format!("grad {name}"), got, g)?;
    }
    Ok(())
}

/// Replays and checks every case.
pub fn check_all(cases: &[Value]) -> Vec<Verdict> {
    cases
        .iter()
        .map(|case| {
            let id = case
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string();
            let outcome = run_case(case)
                .map_err(|e| format!("error: {e:#}"))
                .and_then(|r| verify(case, &r));
            Verdict { id, outcome }
        })
        .collect()
}

fn tensor_json(t: &Tensor) -> Value {
    json!({"shape": t.dims(), "data": t.to_vec_f64()})
}

/// nabla's own results in the file's layout (for outside checkers).
pub fn emit(cases: &[Value]) -> Value {
    let out: Vec<Value> = cases
        .iter()
        .map(|case| {
            let id = case.get("id").and_then(Value::as_str).unwrap_or("?");
            match run_case(case) {
                Ok(r) => {
                    let grads: Map<String, Value> = r
                        .grads
                        .iter()
                        .map(|(n, t)| (n.clone(), tensor_json(t)))
                        .collect();
                    json!({"id": id, "output": r.output, "grads": grads})
                }
                Err(e) => json!({"id": id, "error": format!("{e:#}")}),
            }
        })
        .collect();
    json!({"format": "grad-oracle/1", "cases": out})
}

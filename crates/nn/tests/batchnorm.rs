//! BatchNorm1d and BatchNorm2d against PyTorch (`tests/torch/batchnorm_cases.json`, made by
//! `batchnorm_cases.py` beside it with torch.nn.BatchNorm{1,2}d in float64): over several training
//! steps the same outputs, input/weight/bias gradients and buffers (running statistics, with a
//! fixed momentum and with the cumulative average, and the i64 `num_batches_tracked`), then the
//! same evaluation output. Then the errors.

mod common;
use common::{close_to_torch as close, floats, vjp};
use nabla_core::{DType, Rng, Tensor, Var};
use nabla_nn::layers::{BatchNorm, BatchNorm1d, BatchNorm2d};
use nabla_nn::{Ctx, Module, ModuleExt};
use serde_json::Value;

fn layer(case: &Value) -> BatchNorm {
    let channels = case["channels"].as_u64().unwrap() as usize;
    let momentum = case["momentum"].as_f64();
    let build = match case["kind"].as_str().unwrap() {
        "1d" => BatchNorm1d::with_options,
        "2d" => BatchNorm2d::with_options,
        other => panic!("unknown kind {other}"),
    };
    let bn = build(channels, 1e-5, momentum.unwrap_or(0.1), DType::F64).unwrap();
    if momentum.is_none() {
        bn.cumulative_average()
    } else {
        bn
    }
}

fn state(bn: &BatchNorm, name: &str) -> Var {
    bn.state_vars()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn training_steps_and_evaluation_match_pytorch() {
    let file: Value = serde_json::from_str(include_str!("torch/batchnorm_cases.json")).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for (c, case) in cases.iter().enumerate() {
        let bn = layer(case);
        let shape: Vec<usize> = floats(&case["shape"]).iter().map(|d| *d as usize).collect();
        let weight = state(&bn, "weight");
        let bias = state(&bn, "bias");
        weight
            .set(&Tensor::from_vec(floats(&case["weight"]), [bn.num_features()]).unwrap())
            .unwrap();
        bias.set(&Tensor::from_vec(floats(&case["bias"]), [bn.num_features()]).unwrap())
            .unwrap();
        for (s, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            let what = format!("case {c} ({}) step {s}", bn.describe());
            let x =
                Var::new(&Tensor::from_vec(floats(&step["x"]), shape.clone()).unwrap()).unwrap();
            let y = bn
                .forward(&x.as_tensor(), &mut Ctx::train(Rng::seed(0)))
                .unwrap();
            close(
                &format!("{what} output"),
                &y.to_vec_f64(),
                &floats(&step["output"]),
            );
            let cot = Tensor::from_vec(floats(&step["cotangent"]), shape.clone()).unwrap();
            let grads = vjp(&y, &cot);
            for (var, key) in [
                (&x, "grad_x"),
                (&weight, "grad_weight"),
                (&bias, "grad_bias"),
            ] {
                close(
                    &format!("{what} {key}"),
                    &grads.get(var).unwrap().to_vec_f64(),
                    &floats(&step[key]),
                );
            }
            for key in ["running_mean", "running_var"] {
                close(
                    &format!("{what} {key}"),
                    &state(&bn, key).as_tensor().to_vec_f64(),
                    &floats(&step[key]),
                );
            }
            assert_eq!(
                bn.num_batches_tracked(),
                step["num_batches_tracked"].as_i64().unwrap(),
                "{what}"
            );
        }
        let x = Tensor::from_vec(floats(&case["eval"]["x"]), shape.clone()).unwrap();
        let y = bn.forward(&x, &mut Ctx::eval()).unwrap();
        close(
            &format!("case {c} eval output"),
            &y.to_vec_f64(),
            &floats(&case["eval"]["output"]),
        );
        // Evaluation does not count as a batch.
        assert_eq!(
            bn.num_batches_tracked() as usize,
            case["steps"].as_array().unwrap().len()
        );
    }
}

#[test]
fn the_batch_count_is_an_i64_scalar_buffer_like_pytorchs() {
    let bn = BatchNorm2d::new(3, DType::F32).unwrap();
    let count = state(&bn, "num_batches_tracked");
    assert_eq!(count.dtype(), DType::I64);
    assert!(count.shape().dims().is_empty());
    assert!(!count.as_tensor().requires_grad());
    assert_eq!(bn.parameter_count(), 6);
    let names: Vec<String> = bn.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    // A saved count can be put back (a checkpoint load).
    count
        .set(&Tensor::from_vec(vec![41i64], []).unwrap())
        .unwrap();
    bn.forward(
        &Tensor::ones([2, 3, 2, 2], DType::F32),
        &mut Ctx::train(Rng::seed(0)),
    )
    .unwrap();
    assert_eq!(bn.num_batches_tracked(), 42);
}

#[test]
fn wrong_ranks_and_options_are_errors_that_name_the_layer() {
    let bn2 = BatchNorm2d::new(3, DType::F32).unwrap();
    let err = bn2
        .forward(&Tensor::ones([4, 3], DType::F32), &mut Ctx::eval())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BatchNorm2d")
            && err.contains("[batch, 3, height, width]")
            && err.contains("[4, 3]"),
        "{err}"
    );
    let err = bn2
        .forward(&Tensor::ones([4, 2, 5, 5], DType::F32), &mut Ctx::eval())
        .unwrap_err()
        .to_string();
    assert!(err.contains("[4, 2, 5, 5]"), "{err}");
    let bn1 = BatchNorm1d::new(3, DType::F32).unwrap();
    let err = bn1
        .forward(&Tensor::ones([4, 3, 2, 2], DType::F32), &mut Ctx::eval())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("BatchNorm1d") && err.contains("[batch, 3, length]"),
        "{err}"
    );
    // One value per channel cannot be normalized in training.
    let err = bn2
        .forward(
            &Tensor::ones([1, 3, 1, 1], DType::F32),
            &mut Ctx::train(Rng::seed(0)),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than one value per channel"), "{err}");
    assert!(BatchNorm2d::new(0, DType::F32).is_err());
    let err = BatchNorm2d::with_options(3, 1e-5, 1.5, DType::F32)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("BatchNorm2d") && err.contains("momentum"),
        "{err}"
    );
}

//! Layers: forward values against direct computations, parameter names, train/eval behaviour,
//! gradients against finite differences, and errors that name the layer.

mod common;

use common::{check_fd, input};
use nabla_core::{DType, Reduction, Rng, Tensor, Var};
use nabla_nn::layers::*;
use nabla_nn::{Ctx, Init, Module, ModuleExt, VarKind};

fn f64_linear(i: usize, o: usize, seed: u64) -> Linear {
    Linear::builder(i, o)
        .dtype(DType::F64)
        .bias_init(Init::Uniform {
            low: -0.5,
            high: 0.5,
        })
        .build(&mut Rng::seed(seed))
        .unwrap()
}

#[test]
fn linear_computes_x_w_transpose_plus_b() {
    let layer = f64_linear(3, 2, 1);
    let x = input(&[4, 3], 1);
    let y = layer.forward(&x, &mut Ctx::eval()).unwrap();
    assert_eq!(y.dims(), [4, 2]);
    let (w, b) = (
        layer.weight().as_tensor().to_vec::<f64>().unwrap(),
        layer.bias().unwrap().as_tensor().to_vec::<f64>().unwrap(),
    );
    let (xv, yv) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap());
    for n in 0..4 {
        for o in 0..2 {
            let want: f64 = (0..3).map(|i| xv[n * 3 + i] * w[o * 3 + i]).sum::<f64>() + b[o];
            assert!((yv[n * 2 + o] - want).abs() < 1e-12);
        }
    }
}

#[test]
fn linear_maps_the_last_dim_of_a_sequence() {
    // [batch 2, steps 3, in 4] -> [2, 3, 5]: each step is a row of the 2-D product.
    let layer = f64_linear(4, 5, 4);
    let x = input(&[2, 3, 4], 5);
    let y = layer.forward(&x, &mut Ctx::eval()).unwrap();
    assert_eq!(y.dims(), [2, 3, 5]);
    let rows = layer
        .forward(&x.reshape([6, 4]).unwrap(), &mut Ctx::eval())
        .unwrap();
    assert_eq!(y.to_vec::<f64>().unwrap(), rows.to_vec::<f64>().unwrap());
    let xv = Var::new(&x).unwrap();
    let mut vars = vec![xv.clone()];
    layer.visit(&mut |_, v, _| vars.push(v.clone()));
    let weights = input(&[2, 3, 5], 6);
    check_fd(
        &vars,
        || {
            layer
                .forward(&xv.as_tensor(), &mut Ctx::eval())
                .unwrap()
                .mul(&weights)
                .unwrap()
                .sum_all()
                .unwrap()
        },
        1e-6,
    );
}

#[test]
fn linear_weight_gradients_reach_the_optimizer_contiguous() {
    // `x · Wᵀ` uses a transposed view of W; its gradient must come back in W's own layout so
    // that optimizers read it without a strided copy (a measured 4% of an MLP step).
    let layer = f64_linear(5, 3, 2);
    let x = input(&[4, 5], 3);
    let loss = layer
        .forward(&x, &mut Ctx::eval())
        .unwrap()
        .square()
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let gw = grads.get(layer.weight()).unwrap();
    assert_eq!(gw.dims(), [3, 5]);
    assert!(gw.is_contiguous());
}

#[test]
fn sequential_names_parameters_like_pytorch() {
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Linear::new(4, 8, &mut rng).unwrap())
        .with(Relu)
        .with(BatchNorm1d::new(8, DType::F32).unwrap())
        .with(Linear::builder(8, 2).bias(false).build(&mut rng).unwrap());
    let names: Vec<String> = model.state_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.weight",
            "0.bias",
            "2.weight",
            "2.bias",
            "2.running_mean",
            "2.running_var",
            "2.num_batches_tracked",
            "3.weight"
        ]
    );
    let params: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        params,
        ["0.weight", "0.bias", "2.weight", "2.bias", "3.weight"]
    );
    assert_eq!(model.parameter_count(), 4 * 8 + 8 + 8 + 8 + 8 * 2);
    let mut kinds = Vec::new();
    model.visit(&mut |_, _, k| kinds.push(k));
    assert_eq!(kinds.iter().filter(|k| **k == VarKind::Buffer).count(), 3);
}

#[test]
fn a_shape_error_names_the_layer_path_and_shapes() {
    let mut rng = Rng::seed(0);
    let model = Sequential::new()
        .with(Linear::new(784, 256, &mut rng).unwrap())
        .with(Relu)
        .with(Linear::new(128, 10, &mut rng).unwrap());
    let x = Tensor::zeros([32, 784], DType::F32);
    let err = model.forward(&x, &mut Ctx::eval()).unwrap_err().to_string();
    assert_eq!(
        err,
        "layer 2 (Linear(128 -> 10)): Linear: [32, 256] x [10, 128]: the input's last dim must \
         be in_features = 128"
    );
}

#[test]
fn taps_record_every_hidden_output_for_losses_on_hidden_nodes() {
    let model = Sequential::new()
        .with(f64_linear(3, 4, 2))
        .with(Sigmoid)
        .with(f64_linear(4, 3, 3));
    let x = input(&[5, 3], 4);
    let mut ctx = Ctx::train(Rng::seed(0)).with_taps();
    let out = model.forward(&x, &mut ctx).unwrap();
    let paths: Vec<&str> = ctx.taps().iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["0", "1", "2"]);
    assert_eq!(ctx.tap("2").unwrap().to_vec::<f64>(), out.to_vec::<f64>());
    // A loss on the hidden code (sparsity) plus the output loss: both reach the first layer.
    let hidden = ctx.tap("1").unwrap().clone();
    let recon = out.mse_loss(&x, Reduction::Mean).unwrap();
    let total = recon
        .add(&nabla_nn::loss::activity_l1(&hidden, 0.1).unwrap())
        .unwrap();
    let grads_total = total.backward().unwrap();
    let first = &model.named_parameters()[0].1;
    let g_total = grads_total.get(first).unwrap().to_vec::<f64>().unwrap();
    let out2 = model.forward(&x, &mut Ctx::eval()).unwrap();
    let g_recon = out2
        .mse_loss(&x, Reduction::Mean)
        .unwrap()
        .backward()
        .unwrap()
        .get(first)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(
        g_total
            .iter()
            .zip(&g_recon)
            .any(|(a, b)| (a - b).abs() > 1e-6),
        "the hidden-node penalty must change the first layer's gradient"
    );
}

#[test]
fn layer_gradients_match_finite_differences() {
    let lin = f64_linear(3, 4, 5);
    let prelu = PRelu::new(4, 0.25, DType::F64).unwrap();
    let ln = LayerNorm::new(&[4], DType::F64).unwrap();
    let bn = BatchNorm1d::new(4, DType::F64).unwrap();
    let model = Sequential::new()
        .with(lin)
        .with(bn)
        .with(prelu)
        .with(ln)
        .with(Residual::new(
            Sequential::new().with(f64_linear(4, 4, 6)).with(Tanh),
        ))
        .with(Elu::new(1.0))
        .with(f64_linear(4, 2, 7));
    let x = input(&[6, 3], 8);
    let y = input(&[6, 2], 9);
    let vars: Vec<Var> = model.parameters();
    assert_eq!(vars.len(), 2 + 2 + 1 + 2 + 2 + 2);
    check_fd(
        &vars,
        || {
            let out = model.forward(&x, &mut Ctx::train(Rng::seed(1))).unwrap();
            out.mse_loss(&y, Reduction::Sum).unwrap()
        },
        1e-6,
    );
}

#[test]
fn batchnorm_uses_batch_stats_in_training_and_running_stats_in_eval() {
    let bn = BatchNorm1d::new(2, DType::F64).unwrap();
    let x = Tensor::from_vec(vec![1.0f64, 10.0, 3.0, 20.0, 5.0, 60.0], [3, 2]).unwrap();
    let y = bn.forward(&x, &mut Ctx::train(Rng::seed(0))).unwrap();
    let yv = y.to_vec::<f64>().unwrap();
    // Column 0: mean 3, biased variance 8/3.
    let s0 = (8.0f64 / 3.0 + 1e-5).sqrt();
    for (i, v) in [1.0, 3.0, 5.0].iter().enumerate() {
        assert!((yv[i * 2] - (v - 3.0) / s0).abs() < 1e-12);
    }
    // Running stats moved 10% towards the batch's mean and *unbiased* variance.
    let rm = bn.running_mean().as_tensor().to_vec::<f64>().unwrap();
    let rv = bn.running_var().as_tensor().to_vec::<f64>().unwrap();
    assert!((rm[0] - 0.3).abs() < 1e-12 && (rm[1] - 3.0).abs() < 1e-12);
    let unbiased1 = ((10.0f64 - 30.0).powi(2) + (20.0f64 - 30.0).powi(2) + 30.0f64.powi(2)) / 2.0;
    assert!((rv[0] - (0.9 + 0.1 * 4.0)).abs() < 1e-12);
    assert!((rv[1] - (0.9 + 0.1 * unbiased1)).abs() < 1e-9);
    // Eval: (x - running_mean) / sqrt(running_var + eps).
    let e = bn
        .forward(&x, &mut Ctx::eval())
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!((e[0] - (1.0 - 0.3) / (rv[0] + 1e-5).sqrt()).abs() < 1e-12);
    // A batch of one cannot be normalized in training.
    let one = Tensor::zeros([1, 2], DType::F64);
    let err = bn.forward(&one, &mut Ctx::train(Rng::seed(0))).unwrap_err();
    assert!(
        err.to_string().contains("more than one value per channel"),
        "{err}"
    );
    let wrong = Tensor::zeros([4, 3], DType::F64);
    let err = bn.forward(&wrong, &mut Ctx::eval()).unwrap_err();
    assert!(err.to_string().contains("expected [batch, 2]"), "{err}");
}

#[test]
fn dropout_is_seeded_in_training_and_the_identity_in_eval() {
    let d = Dropout::new(0.5).unwrap();
    let x = Tensor::ones([1000], DType::F32);
    let a = d.forward(&x, &mut Ctx::train(Rng::seed(3))).unwrap();
    let b = d.forward(&x, &mut Ctx::train(Rng::seed(3))).unwrap();
    let c = d.forward(&x, &mut Ctx::train(Rng::seed(4))).unwrap();
    let av = a.to_vec::<f32>().unwrap();
    assert_eq!(av, b.to_vec::<f32>().unwrap());
    assert_ne!(av, c.to_vec::<f32>().unwrap());
    let kept = av.iter().filter(|v| **v != 0.0).count();
    assert!((400..600).contains(&kept), "{kept} of 1000 kept");
    assert!(av.iter().all(|v| *v == 0.0 || *v == 2.0));
    let e = d.forward(&x, &mut Ctx::eval()).unwrap();
    assert_eq!(e.to_vec::<f32>().unwrap(), vec![1.0; 1000]);
    assert!(Dropout::new(1.0).is_err());
}

#[test]
fn residual_adds_the_input_and_checks_shapes() {
    let block = f64_linear(3, 3, 11);
    let x = input(&[2, 3], 12);
    let fx = block
        .forward(&x, &mut Ctx::eval())
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let r = Residual::new(block);
    let y = r
        .forward(&x, &mut Ctx::eval())
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    for ((y, f), x) in y.iter().zip(&fx).zip(x.to_vec::<f64>().unwrap()) {
        assert!((y - (f + x)).abs() < 1e-12);
    }
    let names: Vec<String> = r.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["block.weight", "block.bias"]);
    let widen = Residual::new(f64_linear(3, 5, 13));
    let err = widen.forward(&x, &mut Ctx::eval()).unwrap_err().to_string();
    assert!(err.contains("Residual: [2, 3] x [2, 5]"), "{err}");
    let projected = Residual::with_projection(f64_linear(3, 5, 13), f64_linear(3, 5, 14));
    assert_eq!(
        projected.forward(&x, &mut Ctx::eval()).unwrap().dims(),
        [2, 5]
    );
}

#[test]
fn activations_and_flatten_apply_their_functions() {
    let x = Tensor::from_vec(vec![-2.0f64, -0.5, 0.0, 0.5, 3.0], [1, 5]).unwrap();
    let run = |m: &dyn Module| {
        m.forward(&x, &mut Ctx::eval())
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
    };
    assert_eq!(run(&Relu), [0.0, 0.0, 0.0, 0.5, 3.0]);
    assert_eq!(run(&LeakyRelu::new(0.1)), [-0.2, -0.05, 0.0, 0.5, 3.0]);
    assert_eq!(run(&HardTanh::default()), [-1.0, -0.5, 0.0, 0.5, 1.0]);
    let s = run(&Softmax::default());
    assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    let ls = run(&LogSoftmax::default());
    assert!(s.iter().zip(&ls).all(|(p, l)| (p.ln() - l).abs() < 1e-12));
    let sig = run(&Sigmoid);
    assert!((sig[4] - 1.0 / (1.0 + (-3.0f64).exp())).abs() < 1e-15);
    let elu = run(&Elu::default());
    assert!((elu[0] - ((-2.0f64).exp() - 1.0)).abs() < 1e-15);
    let img = Tensor::zeros([2, 3, 4, 5], DType::F32);
    assert_eq!(
        Flatten.forward(&img, &mut Ctx::eval()).unwrap().dims(),
        [2, 60]
    );
}

#[test]
fn conv_and_pool_layers_predict_their_output_shapes() {
    use nabla_nn::layers::{AvgPool2d, Conv2d, GlobalAvgPool2d, MaxPool2d, Reshape};
    let mut rng = Rng::seed(0);
    let x = Tensor::randn([2, 3, 9, 7], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let mut ctx = Ctx::eval();
    for (stride, padding, dilation) in [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 0, 1)] {
        let conv = Conv2d::builder(3, 5, [3, 3])
            .stride([stride, stride])
            .padding([padding, padding])
            .dilation([dilation, dilation])
            .build(&mut rng)
            .unwrap();
        let y = conv.forward(&x, &mut ctx).unwrap();
        let [c, h, w] = conv.output_shape([3, 9, 7]).unwrap();
        assert_eq!(
            y.dims(),
            [2, c, h, w],
            "stride {stride} padding {padding} dilation {dilation}"
        );
        let names: Vec<String> = conv
            .named_parameters()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["weight", "bias"]);
    }
    assert!(
        Conv2d::builder(4, 5, [3, 3])
            .build(&mut rng)
            .unwrap()
            .output_shape([3, 9, 7])
            .is_err()
    );
    let mut pooled = |p: &dyn Module, shape: [usize; 3]| {
        let y = p.forward(&x, &mut ctx).unwrap();
        assert_eq!(y.dims()[1..], shape);
    };
    let max = MaxPool2d::new(2);
    pooled(&max, max.output_shape([3, 9, 7]).unwrap());
    let avg = AvgPool2d::new(3);
    pooled(&avg, avg.output_shape([3, 9, 7]).unwrap());
    assert!(MaxPool2d::new(8).output_shape([3, 9, 7]).is_err());
    let g = GlobalAvgPool2d.forward(&x, &mut ctx).unwrap();
    assert_eq!(g.dims(), [2, 3]);
    // Global average pooling is the mean over each channel's plane.
    let v = x.to_vec_f64();
    let plane = &v[..63];
    assert!((g.to_vec_f64()[0] - plane.iter().sum::<f64>() / 63.0).abs() < 1e-6);
    let flat = Tensor::randn([2, 64], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let r = Reshape {
        shape: vec![1, 8, 8],
    };
    assert_eq!(r.forward(&flat, &mut ctx).unwrap().dims(), [2, 1, 8, 8]);
    assert!(
        Reshape {
            shape: vec![1, 8, 7]
        }
        .forward(&flat, &mut ctx)
        .is_err()
    );
}

#[test]
fn noise_layers_corrupt_in_training_only_and_pass_gradients_through() {
    let x = Var::new(&input(&[200, 50], 3)).unwrap();
    let xv = x.as_tensor().to_vec::<f64>().unwrap();
    // Gaussian: x̃ − x has the asked-for spread, is seeded, and ∂x̃/∂x = 1.
    let gauss = GaussianNoise::new(0.3).unwrap();
    let a = gauss
        .forward(&x.as_tensor(), &mut Ctx::train(Rng::seed(1)))
        .unwrap();
    let b = gauss
        .forward(&x.as_tensor(), &mut Ctx::train(Rng::seed(1)))
        .unwrap();
    let av = a.to_vec::<f64>().unwrap();
    assert_eq!(av, b.to_vec::<f64>().unwrap());
    let diffs: Vec<f64> = av.iter().zip(&xv).map(|(a, x)| a - x).collect();
    let n = diffs.len() as f64;
    let mean = diffs.iter().sum::<f64>() / n;
    let std = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(
        mean.abs() < 0.02 && (std - 0.3).abs() < 0.01,
        "{mean} {std}"
    );
    let g = a.sum_all().unwrap().backward().unwrap();
    assert!(
        g.get(&x)
            .unwrap()
            .to_vec::<f64>()
            .unwrap()
            .iter()
            .all(|v| *v == 1.0)
    );
    // Masking: about p of the elements become 0, the rest are unchanged (not rescaled), and
    // the gradient is the mask.
    let mask = MaskingNoise::new(0.25).unwrap();
    let m = mask
        .forward(&x.as_tensor(), &mut Ctx::train(Rng::seed(2)))
        .unwrap();
    let mv = m.to_vec::<f64>().unwrap();
    let g = m.sum_all().unwrap().backward().unwrap();
    let kept = g.get(&x).unwrap().to_vec::<f64>().unwrap();
    assert!(kept.iter().all(|k| *k == 0.0 || *k == 1.0));
    let masked = kept.iter().filter(|k| **k == 0.0).count() as f64 / n;
    assert!((masked - 0.25).abs() < 0.02, "{masked}");
    for ((m, x), k) in mv.iter().zip(&xv).zip(&kept) {
        assert_eq!(*m, if *k == 1.0 { *x } else { 0.0 });
    }
    // Evaluation: the identity.
    for layer in [&gauss as &dyn Module, &mask] {
        let e = layer.forward(&x.as_tensor(), &mut Ctx::eval()).unwrap();
        assert_eq!(e.to_vec::<f64>().unwrap(), xv, "{}", layer.describe());
    }
    assert!(GaussianNoise::new(-1.0).is_err() && GaussianNoise::new(f64::NAN).is_err());
    let err = MaskingNoise::new(1.0).unwrap_err().to_string();
    assert!(
        err.contains("MaskingNoise") && err.contains("[0, 1)"),
        "{err}"
    );
}

#[test]
fn grouped_conv2d_matches_pytorch() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/torch/conv_groups_cases.json"
    ))
    .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let dims = |v: &serde_json::Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    };
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let n = |k: &str| case[k].as_u64().unwrap() as usize;
        let layer = Conv2d::builder(n("in_channels"), n("out_channels"), [n("kernel"); 2])
            .stride([n("stride"); 2])
            .padding([n("padding"); 2])
            .dilation([n("dilation"); 2])
            .groups(n("groups"))
            .dtype(DType::F64)
            .build(&mut Rng::seed(0))
            .unwrap();
        // PyTorch's weight layout: [out, in / groups, kh, kw].
        assert_eq!(layer.weight().shape().dims(), dims(&case["weight_shape"]));
        let set = |var: &Var, key: &str| {
            var.set(&Tensor::from_vec(common::floats(&case[key]), var.shape()).unwrap())
                .unwrap();
        };
        set(layer.weight(), "weight");
        let mut bias = None;
        layer.visit(&mut |path, v, _| {
            if path == "bias" {
                bias = Some(v.clone());
            }
        });
        let bias = bias.unwrap();
        set(&bias, "bias");
        let x = Var::new(
            &Tensor::from_vec(common::floats(&case["input"]), dims(&case["input_shape"])).unwrap(),
        )
        .unwrap();
        let y = layer.forward(&x.as_tensor(), &mut Ctx::eval()).unwrap();
        assert_eq!(y.dims(), dims(&case["output_shape"]), "{name}");
        common::close_to_torch(
            &format!("{name}: output"),
            &y.to_vec::<f64>().unwrap(),
            &common::floats(&case["output"]),
        );
        let cot = Tensor::from_vec(common::floats(&case["cotangent"]), y.shape()).unwrap();
        let grads = common::vjp(&y, &cot);
        for (what, var, key) in [
            ("input", &x, "grad_input"),
            ("weight", layer.weight(), "grad_weight"),
            ("bias", &bias, "grad_bias"),
        ] {
            common::close_to_torch(
                &format!("{name}: d{what}"),
                &grads.get(var).unwrap().to_vec::<f64>().unwrap(),
                &common::floats(&case[key]),
            );
        }
    }
    // Groups that do not divide the channels are an error naming both.
    let err = Conv2d::builder(4, 6, [3, 3])
        .groups(4)
        .build(&mut Rng::seed(0))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("groups = 4") && err.contains("4 -> 6"),
        "{err}"
    );
}

//! Autodiff semantics, subgradient conventions at kinks, numerical stability, errors, determinism.

mod common;
use nabla_core::{DType, Error, Reduction, Rng, Tensor, Var, no_grad, with_no_grad};

fn t(v: &[f64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape.to_vec()).unwrap()
}

fn grad_of(x: &[f64], f: impl Fn(&Tensor) -> nabla_core::Result<Tensor>) -> Vec<f64> {
    let v = Var::new(&t(x, &[x.len()])).unwrap();
    let loss = f(&v.as_tensor()).unwrap().sum_all().unwrap();
    loss.backward()
        .unwrap()
        .get(&v)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
}

#[test]
fn subgradients_at_kinks_match_pytorch() {
    assert_eq!(
        grad_of(&[-1.0, 0.0, 2.0], |x| x.relu()),
        vec![0.0, 0.0, 1.0]
    );
    assert_eq!(
        grad_of(&[-1.0, 0.0, 2.0], |x| x.leaky_relu(0.1)),
        vec![0.1, 0.1, 1.0]
    );
    assert_eq!(grad_of(&[0.0], |x| x.elu(1.5)), vec![1.5]);
    assert_eq!(
        grad_of(&[-1.0, -0.5, 1.0, 2.0], |x| x.hard_tanh(-1.0, 1.0)),
        vec![0.0, 1.0, 0.0, 0.0]
    );
    assert_eq!(
        grad_of(&[-1.0, 1.0, 2.0], |x| x.clamp(-1.0, 1.0)),
        vec![1.0, 1.0, 0.0]
    );
    assert_eq!(grad_of(&[0.0, -3.0], |x| x.abs()), vec![0.0, -1.0]);
    // max along a dim with ties: the first maximal element (argmax) takes the gradient.
    assert_eq!(
        grad_of(&[1.0, 3.0, 3.0], |x| x.reshape([1, 3])?.max_dim(1, false)),
        vec![0.0, 1.0, 0.0]
    );
    // global max with ties: split evenly.
    assert_eq!(
        grad_of(&[3.0, 1.0, 3.0], |x| x.max_all()),
        vec![0.5, 0.0, 0.5]
    );
    // elementwise maximum at a tie: half to each side.
    assert_eq!(
        grad_of(&[2.0, 1.0], |x| x.maximum(&t(&[2.0, 0.0], &[2]))),
        vec![0.5, 1.0]
    );
    let idx = t(&[0.0, 0.0], &[2]).to_dtype(DType::I64).unwrap();
    assert_eq!(idx.to_vec::<i64>().unwrap(), vec![0, 0]);
}

#[test]
fn gradients_of_a_shared_node_are_summed() {
    // y = x² + 3x → dy/dx = 2x + 3 (x feeds two consumers).
    let g = grad_of(&[1.5, -2.0], |x| x.mul(x)?.add(&x.mul_scalar(3.0)?));
    assert_eq!(g, vec![6.0, -1.0]);
}

#[test]
fn hidden_node_gradients_are_readable() {
    let w = Var::new(&t(&[0.5, -1.0], &[2])).unwrap();
    let h = w.as_tensor().mul_scalar(2.0).unwrap();
    let loss = h.square().unwrap().sum_all().unwrap();
    let grads = loss.backward().unwrap();
    // dL/dh = 2h = [2, -4]; dL/dw = dL/dh · 2.
    assert_eq!(
        grads.get(&h).unwrap().to_vec::<f64>().unwrap(),
        vec![2.0, -4.0]
    );
    assert_eq!(
        grads.get(&w).unwrap().to_vec::<f64>().unwrap(),
        vec![4.0, -8.0]
    );
}

#[test]
fn no_grad_and_detach_stop_recording() {
    let w = Var::new(&t(&[1.0], &[1])).unwrap();
    let y = with_no_grad(|| w.as_tensor().exp().unwrap());
    assert!(!y.requires_grad());
    let err = y.sum_all().unwrap().backward().unwrap_err();
    assert!(
        err.to_string().contains("does not depend on any Var"),
        "{err}"
    );
    {
        let _guard = no_grad();
        assert!(!nabla_core::is_grad_enabled());
    }
    assert!(nabla_core::is_grad_enabled());
    let d = w.as_tensor().mul_scalar(2.0).unwrap().detach();
    let loss = d.mul(&w.as_tensor()).unwrap().sum_all().unwrap();
    // Only the direct use of w carries gradient: d(d · w)/dw = d = 2.
    assert_eq!(
        loss.backward()
            .unwrap()
            .get(&w)
            .unwrap()
            .to_vec::<f64>()
            .unwrap(),
        vec![2.0]
    );
}

#[test]
fn backward_releases_the_graph() {
    let w = Var::new(&t(&[1.0, 2.0], &[2])).unwrap();
    let h = w.as_tensor().tanh().unwrap();
    let loss = h.sum_all().unwrap();
    assert_eq!(h.op_name(), Some("tanh"));
    loss.backward().unwrap();
    assert_eq!(h.op_name(), None, "the node is released after backward");
    let err = loss.backward().unwrap_err();
    assert!(err.to_string().contains("already released"), "{err}");
    // backward_retain keeps it walkable.
    let loss2 = w.as_tensor().square().unwrap().sum_all().unwrap();
    let g1 = loss2
        .backward_retain()
        .unwrap()
        .get(&w)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let g2 = loss2
        .backward()
        .unwrap()
        .get(&w)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert_eq!(g1, g2);
}

#[test]
fn a_long_graph_is_dropped_without_deep_recursion() {
    // A 256 KiB stack: one stack frame per op would need tens of megabytes for this chain.
    let run = || {
        let x_values = [0.5, 0.25];
        let w = Var::new(&t(&x_values, &[2])).unwrap();
        let x = w.as_tensor();
        let mut y = x.clone();
        let mut kept = None;
        for i in 0..100_000 {
            // y ← y·x, then y ← y + x, alternately; mul saves both inputs for its backward,
            // so its op holds a second reference to the chain below it.
            y = if i % 2 == 0 { y.mul(&x) } else { y.add(&x) }.unwrap();
            if i == 10 {
                kept = Some(y.clone());
            }
        }
        drop(y);
        // A tensor still held keeps its history: after 11 ops, y = x² + x³ + … + x⁷.
        let kept = kept.unwrap();
        assert_eq!(kept.op_name(), Some("mul"));
        let grad = kept.sum_all().unwrap().backward().unwrap();
        let got = grad.get(&w).unwrap().to_vec::<f64>().unwrap();
        for (g, x) in got.iter().zip(x_values) {
            let expected: f64 = (2..=7).map(|j| j as f64 * x.powi(j - 1)).sum();
            assert!((g - expected).abs() < 1e-12, "{g} != {expected}");
        }
    };
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn backward_needs_a_scalar_or_a_cotangent() {
    let w = Var::new(&t(&[1.0, 2.0], &[2])).unwrap();
    let y = w.as_tensor().mul_scalar(3.0).unwrap();
    assert!(
        y.backward()
            .unwrap_err()
            .to_string()
            .contains("needs a scalar output")
    );
    let g = y.backward_with(&t(&[1.0, -1.0], &[2]), false).unwrap();
    assert_eq!(g.get(&w).unwrap().to_vec::<f64>().unwrap(), vec![3.0, -3.0]);
}

#[test]
fn var_updates_in_place_and_keeps_its_identity() {
    let w = Var::new(&t(&[1.0, 2.0], &[2])).unwrap();
    let id = w.id();
    let old = w.as_tensor(); // a live handle: the update must not change it
    w.update(|v: &mut [f64]| v[0] = 10.0).unwrap();
    assert_eq!(old.to_vec::<f64>().unwrap(), vec![1.0, 2.0]);
    assert_eq!(w.as_tensor().to_vec::<f64>().unwrap(), vec![10.0, 2.0]);
    assert_eq!(w.id(), id);
    drop(old);
    w.set(&t(&[3.0, 4.0], &[2])).unwrap();
    assert_eq!(w.as_tensor().to_vec::<f64>().unwrap(), vec![3.0, 4.0]);
    let e = w.set(&t(&[1.0], &[1])).unwrap_err();
    assert!(e.to_string().contains("Var::set: [2] x [1]"), "{e}");
    assert!(matches!(
        w.update(|_: &mut [f32]| ()),
        Err(Error::DTypeMismatch { .. })
    ));
    // Gradients computed through the new value still key to the same Var.
    let loss = w.as_tensor().sum_all().unwrap();
    assert!(loss.backward().unwrap().get(&w).is_some());
}

#[test]
fn softmax_and_cross_entropy_are_stable_for_huge_logits() {
    let x = t(&[1000.0, -1000.0, 999.0, 0.0, 1e4, -1e4], &[2, 3]);
    let p = x.softmax(1).unwrap().to_vec::<f64>().unwrap();
    assert!(p.iter().all(|v| v.is_finite()));
    assert!((p[0] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-12);
    let targets = Tensor::from_vec(vec![1i64, 2], [2]).unwrap();
    let v = Var::new(&x).unwrap();
    let loss = v
        .as_tensor()
        .cross_entropy(&targets, Reduction::Mean)
        .unwrap();
    let l = loss.to_scalar::<f64>().unwrap();
    // sample 0: −log softmax = 1000 − (−1000) + log(1 + e^{−1} + e^{−2000}) ≈ 2000.313; sample 1: 2e4.
    assert!(
        (l - (2000.0 + (1.0 + (-1.0f64).exp()).ln() + 2e4) / 2.0).abs() < 1e-9,
        "{l}"
    );
    let g = loss
        .backward()
        .unwrap()
        .get(&v)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(g.iter().all(|v| v.is_finite()));
}

#[test]
fn sigmoid_and_bce_with_logits_are_stable_to_1e4() {
    for dtype in [DType::F32, DType::F64] {
        let x = t(&[1e4, -1e4, 0.0], &[3]).to_dtype(dtype).unwrap();
        let s = x.sigmoid().unwrap().to_vec_f64();
        assert_eq!(s, vec![1.0, 0.0, 0.5]);
        let v = Var::new(&x).unwrap();
        let targets = t(&[0.0, 0.0, 1.0], &[3]).to_dtype(dtype).unwrap();
        let loss = v
            .as_tensor()
            .binary_cross_entropy_with_logits(&targets, Reduction::None)
            .unwrap();
        let l = loss.to_vec_f64();
        assert_eq!(l[0], 1e4); // max(x,0) − x·0 + log(1 + e^{−1e4})
        assert_eq!(l[1], 0.0);
        assert!((l[2] - std::f64::consts::LN_2).abs() < 1e-6);
        let g = loss
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
            .get(&v)
            .unwrap()
            .to_vec_f64();
        assert_eq!(g, vec![1.0, 0.0, -0.5]);
        let sg = Var::new(&x).unwrap();
        let gs = sg
            .as_tensor()
            .sigmoid()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(
            gs.get(&sg)
                .unwrap()
                .to_vec_f64()
                .iter()
                .all(|v| v.is_finite())
        );
    }
    // BCE on probabilities clamps its logs at −100 instead of returning inf.
    let p = t(&[0.0, 1.0], &[2]);
    let l = p
        .binary_cross_entropy(&t(&[1.0, 0.0], &[2]), Reduction::None)
        .unwrap()
        .to_vec_f64();
    assert_eq!(l, vec![100.0, 100.0]);
}

#[test]
fn errors_name_the_op_and_shapes() {
    let a = Tensor::zeros([32, 784], DType::F32);
    let b = Tensor::zeros([256, 10], DType::F32);
    assert_eq!(
        a.matmul(&b).unwrap_err().to_string(),
        "matmul: [32, 784] x [256, 10]: inner dimensions differ (784 != 256)"
    );
    let e = a
        .add(&Tensor::zeros([3], DType::F32))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("add: [32, 784] x [3]: cannot broadcast"),
        "{e}"
    );
    let e = a
        .add(&Tensor::zeros([784], DType::F64))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "add: dtype mismatch: f32 vs f64 (convert one with .to_dtype())"
    );
    let e = a.sum_dims(&[2], false).unwrap_err().to_string();
    assert_eq!(
        e,
        "sum: dim 2 is out of range for a tensor of rank 2 (shape [32, 784])"
    );
    let e = Tensor::zeros([3], DType::I64)
        .exp()
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "exp: i64 tensors are not supported here (expected f32 or f64)"
    );
    let e = a.reshape([7, 7]).unwrap_err().to_string();
    assert!(e.starts_with("reshape: [32, 784] x [7, 7]"), "{e}");
    let logits = Tensor::zeros([2, 3], DType::F32);
    let e = logits
        .cross_entropy(
            &Tensor::from_vec(vec![0i64, 3], [2]).unwrap(),
            Reduction::Mean,
        )
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "cross_entropy: index 3 is out of range for dim 1 of size 3"
    );
    let e = Tensor::from_vec(vec![1.0f32; 5], [2, 3])
        .unwrap_err()
        .to_string();
    assert_eq!(e, "from_vec: shape [2, 3]: needs 6 elements, got 5");
}

#[test]
fn same_seed_same_numbers() {
    let a = Tensor::randn([64], 0.0, 1.0, DType::F32, &mut Rng::seed(42)).unwrap();
    let b = Tensor::randn([64], 0.0, 1.0, DType::F32, &mut Rng::seed(42)).unwrap();
    let c = Tensor::randn([64], 0.0, 1.0, DType::F32, &mut Rng::seed(43)).unwrap();
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    assert_ne!(a.to_vec::<f32>().unwrap(), c.to_vec::<f32>().unwrap());
    let x = Tensor::ones([1000], DType::F32);
    let d1 = x
        .dropout(0.3, &mut Rng::seed(1))
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let d2 = x
        .dropout(0.3, &mut Rng::seed(1))
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(d1, d2);
    // Inverted dropout keeps the expectation: about 70% survive, each scaled by 1/0.7.
    let kept = d1.iter().filter(|&&v| v > 0.0).count();
    assert!((600..800).contains(&kept), "{kept}");
    assert!(d1.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    let u = Tensor::rand_uniform([1000], -1.0, 1.0, DType::F64, &mut Rng::seed(5))
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    assert!(u.iter().all(|v| (-1.0..1.0).contains(v)));
}

#[test]
fn f32_matches_f64_on_a_small_network() {
    let x = common::input(&[8, 5], 1, false);
    let w = common::input(&[5, 3], 2, false);
    let run = |dtype: DType| {
        let v = Var::new(&w.to_dtype(dtype).unwrap()).unwrap();
        let loss = x
            .to_dtype(dtype)
            .unwrap()
            .matmul(&v.as_tensor())
            .unwrap()
            .gelu()
            .unwrap()
            .log_softmax(1)
            .unwrap()
            .mean_all()
            .unwrap();
        let g = loss.backward().unwrap().get(&v).unwrap().to_vec_f64();
        (loss.to_scalar_f64().unwrap(), g)
    };
    let (l32, g32) = run(DType::F32);
    let (l64, g64) = run(DType::F64);
    assert!((l32 - l64).abs() < 1e-5);
    for (a, b) in g32.iter().zip(&g64) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

#[test]
fn creation_ops() {
    let a = Tensor::arange(0.0, 1.0, 0.25, DType::F64).unwrap();
    assert_eq!(a.to_vec::<f64>().unwrap(), vec![0.0, 0.25, 0.5, 0.75]);
    assert!(Tensor::arange(0.0, 1.0, 0.0, DType::F32).is_err());
    assert_eq!(
        Tensor::full([2, 2], 3.0, DType::I64)
            .to_vec::<i64>()
            .unwrap(),
        vec![3; 4]
    );
    assert_eq!(
        Tensor::ones([3], DType::F32)
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap(),
        3.0
    );
    let s = Tensor::stack(&[&t(&[1.0, 2.0], &[2]), &t(&[3.0, 4.0], &[2])], 0).unwrap();
    assert_eq!(s.dims(), &[2, 2]);
    assert_eq!(
        s.t().unwrap().to_vec::<f64>().unwrap(),
        vec![1.0, 3.0, 2.0, 4.0]
    );
    assert_eq!(
        s.argmax(1, false).unwrap().to_vec::<i64>().unwrap(),
        vec![1, 1]
    );
    assert_eq!(
        s.ge(&t(&[2.0], &[1])).unwrap().to_vec::<f64>().unwrap(),
        vec![0.0, 1.0, 1.0, 1.0]
    );
}

#[test]
fn anomaly_tracing_names_the_first_op_that_broke() {
    // Forward: exp overflows f32 (e^100), then log of a negative: the first break is `exp`.
    let v = Var::new(&Tensor::from_vec(vec![1.0f32, 100.0], [2]).unwrap()).unwrap();
    let x = v.as_tensor();
    let y = x
        .exp()
        .unwrap()
        .mul_scalar(2.0)
        .unwrap()
        .add_scalar(-1e30)
        .unwrap();
    let z = y.neg().unwrap().log().unwrap().sum_all().unwrap();
    let a = z.first_non_finite().unwrap().expect("something broke");
    assert_eq!(a.op, "exp");
    assert!(!a.backward);
    assert_eq!(a.inputs[0].max_abs, 100.0);
    assert_eq!(a.outputs[0].non_finite, 1);
    assert!(
        a.to_string().contains("`exp` produced non-finite values"),
        "{a}"
    );
    // A finite graph has nothing to report.
    let fine = x.mul_scalar(2.0).unwrap().sum_all().unwrap();
    assert!(fine.first_non_finite().unwrap().is_none());

    // Backward: sqrt at 0 is finite, its derivative 1 / (2 √0) is not.
    let w = Var::new(&t(&[0.0, 4.0], &[2])).unwrap();
    let loss = w.as_tensor().sqrt().unwrap().sum_all().unwrap();
    assert!(loss.first_non_finite().unwrap().is_none());
    let (_, found) = loss.backward_detect_anomaly().unwrap();
    let a = found.expect("the backward of sqrt breaks");
    assert_eq!(a.op, "sqrt");
    assert!(a.backward);
    assert_eq!(a.outputs[0].non_finite, 1);
    // A healthy backward reports nothing and gives the usual gradients.
    let loss = w.as_tensor().mul_scalar(3.0).unwrap().sum_all().unwrap();
    let (grads, found) = loss.backward_detect_anomaly().unwrap();
    assert!(found.is_none());
    assert_eq!(grads.get(&w).unwrap().to_vec::<f64>().unwrap(), [3.0, 3.0]);
}

#[test]
fn conv2d_gradients_do_not_depend_on_thread_scheduling() {
    // The weight gradient sums over the batch in parallel; the sum must come out bit-identical
    // on 1, 2 or 3 threads and from run to run.
    let mut rng = Rng::seed(5);
    let x = Tensor::randn([37, 3, 12, 12], 0.0, 1.0, DType::F32, &mut rng).unwrap();
    let w =
        Var::new(&Tensor::randn([8, 3, 3, 3], 0.0, 0.3, DType::F32, &mut rng).unwrap()).unwrap();
    let grad_on = |threads: usize| -> Vec<f32> {
        common::on_threads(threads, || {
            let y = x
                .conv2d(&w.as_tensor(), None, Default::default())
                .unwrap()
                .square()
                .unwrap()
                .sum_all()
                .unwrap();
            y.backward()
                .unwrap()
                .get(&w)
                .unwrap()
                .to_vec::<f32>()
                .unwrap()
        })
    };
    let one = grad_on(1);
    for threads in [2, 3, 2, 3] {
        assert_eq!(grad_on(threads), one, "{threads} threads");
    }
}

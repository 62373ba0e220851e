//! Losses against direct f64 computations of their formulas, and their gradients against finite
//! differences.

mod common;

use common::{check_fd, input};
use nabla_core::{DType, Reduction, Tensor, Var};
use nabla_nn::loss::{self, CrossEntropy, Loss};

fn scalar(t: Tensor) -> f64 {
    t.to_scalar::<f64>().unwrap()
}

#[test]
fn regression_losses_match_their_formulas() {
    let p = input(&[3, 4], 1).mul_scalar(3.0).unwrap();
    let t = input(&[3, 4], 2);
    let (pv, tv) = (p.to_vec::<f64>().unwrap(), t.to_vec::<f64>().unwrap());
    let n = pv.len() as f64;
    let d: Vec<f64> = pv.iter().zip(&tv).map(|(a, b)| a - b).collect();
    let mse = d.iter().map(|x| x * x).sum::<f64>() / n;
    let l1 = d.iter().map(|x| x.abs()).sum::<f64>() / n;
    let delta = 0.7;
    let huber = d
        .iter()
        .map(|x| {
            if x.abs() < delta {
                0.5 * x * x
            } else {
                delta * (x.abs() - 0.5 * delta)
            }
        })
        .sum::<f64>()
        / n;
    assert!(d.iter().any(|x| x.abs() < delta) && d.iter().any(|x| x.abs() > delta));
    assert!((scalar(Loss::Mse.compute(&p, &t).unwrap()) - mse).abs() < 1e-12);
    assert!((scalar(Loss::L1.compute(&p, &t).unwrap()) - l1).abs() < 1e-12);
    let h = Loss::Huber { delta }.compute(&p, &t).unwrap();
    assert!((scalar(h) - huber).abs() < 1e-12);
    let sum = Loss::L1.compute_with(&p, &t, Reduction::Sum).unwrap();
    assert!((scalar(sum) - l1 * n).abs() < 1e-10);
    let err = Loss::Mse
        .compute(&p, &input(&[3, 1], 0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[3, 4] x [3, 1]"), "{err}");
    assert!(Loss::Huber { delta: 0.0 }.compute(&p, &t).is_err());
}

fn naive_cross_entropy(logits: &[f64], c: usize, labels: &[i64], eps: f64, w: &[f64]) -> f64 {
    let (mut total, mut weight) = (0.0, 0.0);
    for (i, &y) in labels.iter().enumerate() {
        let row = &logits[i * c..(i + 1) * c];
        let m = row.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + row.iter().map(|z| (z - m).exp()).sum::<f64>().ln();
        let nll = -(row[y as usize] - lse);
        let smooth: f64 = (0..c).map(|k| -(row[k] - lse) * w[k]).sum();
        total += (1.0 - eps) * w[y as usize] * nll + eps / c as f64 * smooth;
        weight += w[y as usize];
    }
    total / weight
}

#[test]
fn cross_entropy_with_label_smoothing_and_class_weights() {
    let logits = input(&[5, 3], 3).mul_scalar(4.0).unwrap();
    let labels = vec![0i64, 2, 1, 2, 2];
    let targets = Tensor::from_vec(labels.clone(), [5]).unwrap();
    let lv = logits.to_vec::<f64>().unwrap();
    for (eps, weights) in [
        (0.0, None),
        (0.1, None),
        (0.0, Some(vec![1.0, 2.0, 0.5])),
        (0.2, Some(vec![0.3, 1.5, 2.0])),
    ] {
        let w = weights.clone().unwrap_or(vec![1.0; 3]);
        let ce = Loss::CrossEntropy(CrossEntropy {
            label_smoothing: eps,
            class_weights: weights,
        });
        let got = scalar(ce.compute(&logits, &targets).unwrap());
        let want = naive_cross_entropy(&lv, 3, &labels, eps, &w);
        assert!(
            (got - want).abs() < 1e-12,
            "eps {eps} w {w:?}: {got} vs {want}"
        );
        let var = Var::new(&logits).unwrap();
        check_fd(
            std::slice::from_ref(&var),
            || ce.compute(&var.as_tensor(), &targets).unwrap(),
            1e-6,
        );
    }
    let bad = Tensor::from_vec(vec![0i64, 3, 1, 2, 2], [5]).unwrap();
    let smooth = Loss::CrossEntropy(CrossEntropy {
        label_smoothing: 0.1,
        class_weights: None,
    });
    let err = smooth.compute(&logits, &bad).unwrap_err().to_string();
    assert_eq!(
        err,
        "cross_entropy: index 3 is out of range for dim 1 of size 3"
    );
    let wrong_weights = Loss::CrossEntropy(CrossEntropy {
        label_smoothing: 0.0,
        class_weights: Some(vec![1.0, 2.0]),
    });
    let err = wrong_weights
        .compute(&logits, &targets)
        .unwrap_err()
        .to_string();
    assert!(err.contains("2 class weights given for 3 classes"), "{err}");
}

#[test]
fn cross_entropy_of_a_sequence_scores_every_step() {
    // Logits [batch 2, steps 3, classes 4] against [2, 3] targets: the mean over all six
    // predictions, the same as the [6, 4] rows, with or without smoothing and weights.
    let logits = input(&[2, 3, 4], 7).mul_scalar(3.0).unwrap();
    let labels = vec![0i64, 3, 1, 2, 2, 0];
    let steps = Tensor::from_vec(labels.clone(), [2, 3]).unwrap();
    let lv = logits.to_vec::<f64>().unwrap();
    for (eps, weights) in [(0.0, None), (0.1, Some(vec![1.0, 0.5, 2.0, 1.5]))] {
        let w = weights.clone().unwrap_or(vec![1.0; 4]);
        let ce = Loss::CrossEntropy(CrossEntropy {
            label_smoothing: eps,
            class_weights: weights,
        });
        let got = scalar(ce.compute(&logits, &steps).unwrap());
        let want = naive_cross_entropy(&lv, 4, &labels, eps, &w);
        assert!((got - want).abs() < 1e-12, "eps {eps}: {got} vs {want}");
        let var = Var::new(&logits).unwrap();
        check_fd(
            std::slice::from_ref(&var),
            || ce.compute(&var.as_tensor(), &steps).unwrap(),
            1e-6,
        );
    }
    // Per-prediction losses keep the [batch, steps] layout.
    let ce = CrossEntropy::default();
    let each = ce.compute(&logits, &steps, Reduction::None).unwrap();
    assert_eq!(each.dims(), [2, 3]);
    let each = each.to_vec::<f64>().unwrap();
    for (i, &y) in labels.iter().enumerate() {
        let want = naive_cross_entropy(&lv[i * 4..i * 4 + 4], 4, &[y], 0.0, &[1.0; 4]);
        assert!((each[i] - want).abs() < 1e-12);
    }
    // Probability targets of the logits' shape.
    let probs = input(&[2, 3, 4], 8).abs().unwrap();
    let probs = probs.div(&probs.sum_dims(&[-1], true).unwrap()).unwrap();
    let soft = scalar(ce.compute(&logits, &probs, Reduction::Mean).unwrap());
    let flat = scalar(
        ce.compute(
            &logits.reshape([6, 4]).unwrap(),
            &probs.reshape([6, 4]).unwrap(),
            Reduction::Mean,
        )
        .unwrap(),
    );
    assert!((soft - flat).abs() < 1e-12);
    // Targets that do not match the positions name both shapes.
    let wrong = Tensor::from_vec(labels.clone(), [3, 2]).unwrap();
    let err = ce
        .compute(&logits, &wrong, Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[2, 3, 4]") && err.contains("[3, 2]") && err.contains("[2, 3]"),
        "{err}"
    );
}

#[test]
fn cross_entropy_accepts_probability_targets() {
    let logits = input(&[2, 3], 5);
    let probs = Tensor::from_vec(vec![0.2f64, 0.3, 0.5, 1.0, 0.0, 0.0], [2, 3]).unwrap();
    let hard = Tensor::from_vec(vec![0i64], [1]).unwrap();
    let ce = Loss::CrossEntropy(CrossEntropy::default());
    let soft = scalar(ce.compute(&logits, &probs).unwrap());
    let lv = logits.to_vec::<f64>().unwrap();
    let pv = probs.to_vec::<f64>().unwrap();
    let mut want = 0.0;
    for i in 0..2 {
        let row = &lv[i * 3..i * 3 + 3];
        let lse = row.iter().map(|z| z.exp()).sum::<f64>().ln();
        want -= (0..3).map(|k| pv[i * 3 + k] * (row[k] - lse)).sum::<f64>();
    }
    assert!((soft - want / 2.0).abs() < 1e-12);
    let one_row = logits.narrow(0, 1, 1).unwrap();
    let as_index = scalar(ce.compute(&one_row, &hard).unwrap());
    let as_probs = scalar(
        ce.compute(&one_row, &probs.narrow(0, 1, 1).unwrap())
            .unwrap(),
    );
    assert!((as_index - as_probs).abs() < 1e-12);
}

#[test]
fn binary_losses_agree_between_logits_and_probabilities() {
    let z = input(&[6], 6).mul_scalar(3.0).unwrap();
    let t = Tensor::from_vec(vec![0.0f64, 1.0, 1.0, 0.0, 0.5, 1.0], [6]).unwrap();
    let p = z.sigmoid().unwrap();
    for pos_weight in [None, Some(1.0), Some(4.0), Some(0.25)] {
        let with_logits = Loss::BinaryCrossEntropyWithLogits { pos_weight };
        let on_probs = Loss::BinaryCrossEntropy { pos_weight };
        let a = scalar(with_logits.compute(&z, &t).unwrap());
        let b = scalar(on_probs.compute(&p, &t).unwrap());
        assert!((a - b).abs() < 1e-12, "{pos_weight:?}: {a} vs {b}");
    }
}

/// PyTorch's `BCEWithLogitsLoss(pos_weight=p)` per element, written out:
/// `−[p · y · log σ(z) + (1 − y) · log(1 − σ(z))]`.
fn naive_weighted_bce(z: &[f64], y: &[f64], p: f64) -> f64 {
    let log_sigmoid = |x: f64| -((-x).exp().ln_1p());
    z.iter()
        .zip(y)
        .map(|(&z, &y)| -(p * y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z)))
        .sum::<f64>()
        / z.len() as f64
}

#[test]
fn pos_weight_scales_the_positive_term() {
    let z = input(&[8], 11).mul_scalar(3.0).unwrap();
    // Hard and soft targets: PyTorch's formula holds for both.
    let y = vec![0.0f64, 1.0, 1.0, 0.0, 0.3, 1.0, 0.0, 0.8];
    let t = Tensor::from_vec(y.clone(), [8]).unwrap();
    let zv = z.to_vec::<f64>().unwrap();
    for p in [1.0, 3.5, 0.2, 0.0] {
        let loss = Loss::BinaryCrossEntropyWithLogits {
            pos_weight: Some(p),
        };
        let got = scalar(loss.compute(&z, &t).unwrap());
        let want = naive_weighted_bce(&zv, &y, p);
        assert!((got - want).abs() < 1e-12, "p {p}: {got} vs {want}");
        let var = Var::new(&z).unwrap();
        check_fd(
            std::slice::from_ref(&var),
            || loss.compute(&var.as_tensor(), &t).unwrap(),
            1e-6,
        );
        // On probabilities the same loss, with its gradient through the sigmoid's output.
        let probs = Var::new(&z.sigmoid().unwrap()).unwrap();
        let on_probs = Loss::BinaryCrossEntropy {
            pos_weight: Some(p),
        };
        check_fd(
            std::slice::from_ref(&probs),
            || on_probs.compute(&probs.as_tensor(), &t).unwrap(),
            1e-6,
        );
    }
    // A weight of 3 on hard targets: each positive counts three times, each negative once.
    let hard = Tensor::from_vec(vec![1.0f64, 0.0], [2]).unwrap();
    let two = Tensor::from_vec(vec![0.4f64, -0.9], [2]).unwrap();
    let unweighted = Loss::BinaryCrossEntropyWithLogits { pos_weight: None }
        .compute_with(&two, &hard, Reduction::None)
        .unwrap()
        .to_vec::<f64>()
        .unwrap();
    let weighted = Loss::BinaryCrossEntropyWithLogits {
        pos_weight: Some(3.0),
    }
    .compute_with(&two, &hard, Reduction::None)
    .unwrap()
    .to_vec::<f64>()
    .unwrap();
    assert!((weighted[0] - 3.0 * unweighted[0]).abs() < 1e-12);
    assert!((weighted[1] - unweighted[1]).abs() < 1e-12);
    // Stable where the logit is far out: finite, and the loss of a confident mistake grows
    // linearly with it (p · 1000 for a positive at z = -1000).
    let far = Tensor::from_vec(vec![-1000.0f64, 1000.0], [2]).unwrap();
    let l = Loss::BinaryCrossEntropyWithLogits {
        pos_weight: Some(2.0),
    }
    .compute_with(&far, &hard, Reduction::None)
    .unwrap()
    .to_vec::<f64>()
    .unwrap();
    assert!(
        (l[0] - 2000.0).abs() < 1e-9 && (l[1] - 1000.0).abs() < 1e-9,
        "{l:?}"
    );
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let err = Loss::BinaryCrossEntropyWithLogits {
            pos_weight: Some(bad),
        }
        .compute(&z, &t)
        .unwrap_err()
        .to_string();
        assert!(err.contains("pos_weight must be finite and >= 0"), "{err}");
    }
}

#[test]
fn penalties_match_their_formulas_and_gradients() {
    let w1 = Var::new(&input(&[3, 2], 7)).unwrap();
    let w2 = Var::new(&input(&[4], 8)).unwrap();
    let all: Vec<f64> = [&w1, &w2]
        .iter()
        .flat_map(|v| v.as_tensor().to_vec::<f64>().unwrap())
        .collect();
    let params = [w1.clone(), w2.clone()];
    let l2 = scalar(loss::l2_penalty(&params, 0.3).unwrap());
    assert!((l2 - 0.15 * all.iter().map(|x| x * x).sum::<f64>()).abs() < 1e-12);
    let l1 = scalar(loss::l1_penalty(&params, 0.3).unwrap());
    assert!((l1 - 0.3 * all.iter().map(|x| x.abs()).sum::<f64>()).abs() < 1e-12);
    // d/dw of λ/2 ‖w‖² is λ w: weight decay.
    let g = loss::l2_penalty(&params, 0.3).unwrap().backward().unwrap();
    let gw = g.get(&w2).unwrap().to_vec::<f64>().unwrap();
    let w2v = w2.as_tensor().to_vec::<f64>().unwrap();
    assert!(
        gw.iter()
            .zip(&w2v)
            .all(|(g, w)| (g - 0.3 * w).abs() < 1e-12)
    );

    let h = Var::new(
        &input(&[5, 3], 9)
            .abs()
            .unwrap()
            .mul_scalar(0.8)
            .unwrap()
            .add_scalar(0.1)
            .unwrap(),
    )
    .unwrap();
    let hv = h.as_tensor().to_vec::<f64>().unwrap();
    let act = scalar(loss::activity_l1(&h.as_tensor(), 0.5).unwrap());
    assert!((act - 0.5 * hv.iter().map(|x| x.abs()).sum::<f64>() / 5.0).abs() < 1e-12);
    let (rho, beta) = (0.05, 3.0);
    let mut kl = 0.0;
    for j in 0..3 {
        let r: f64 = (0..5).map(|i| hv[i * 3 + j]).sum::<f64>() / 5.0;
        kl += rho * (rho / r).ln() + (1.0 - rho) * ((1.0 - rho) / (1.0 - r)).ln();
    }
    let got = scalar(loss::kl_sparsity(&h.as_tensor(), rho, beta).unwrap());
    assert!((got - beta * kl).abs() < 1e-10, "{got} vs {}", beta * kl);
    check_fd(
        std::slice::from_ref(&h),
        || loss::kl_sparsity(&h.as_tensor(), rho, beta).unwrap(),
        1e-6,
    );
    assert!(loss::kl_sparsity(&h.as_tensor(), 1.0, beta).is_err());
    assert_eq!(
        scalar(
            loss::l2_penalty(&[], 1.0)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap()
        ),
        0.0
    );
}

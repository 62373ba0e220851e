//! Row-wise kernels on many rows: softmax, log-softmax and cross-entropy with their gradients,
//! and argmax/argmin. Checked against the textbook formulas computed in f64, through the
//! parallel and vectorized paths (row lengths on both sides of the vector width, batches on
//! both sides of the parallel threshold), and for the same bits on one and two threads.

mod common;
use nabla_core::{DType, Reduction, Rng, Tensor, Var};

/// Logits `[rows, classes]`, normal with standard deviation 4, rounded to `dtype`. Every 7th row
/// has a masked class (−∞) when there are several, every 11th a huge logit (1e4). Each row's
/// target is a class that is not masked.
fn logits(rows: usize, classes: usize, dtype: DType, seed: u64) -> (Vec<f64>, Vec<i64>) {
    let mut rng = Rng::seed(seed);
    let mut x: Vec<f64> = (0..rows * classes).map(|_| 4.0 * rng.normal()).collect();
    let mut targets = Vec::with_capacity(rows);
    for r in 0..rows {
        let row = &mut x[r * classes..(r + 1) * classes];
        let target = (r * 5 + 3) % classes;
        if r % 7 == 0 && classes > 1 {
            row[(target + 1) % classes] = f64::NEG_INFINITY;
        }
        if r % 11 == 0 {
            row[(r / 11) % classes] = 1e4;
        }
        targets.push(target as i64);
    }
    let rounded = Tensor::from_vec(x, [rows, classes])
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_vec_f64();
    (rounded, targets)
}

/// What the kernels compute, per element (per row for the losses).
#[derive(Debug, PartialEq)]
struct Rows {
    softmax: Vec<f64>,
    log_softmax: Vec<f64>,
    cross_entropy: Vec<f64>,
    /// ∂ mean cross-entropy / ∂x.
    cross_entropy_grad: Vec<f64>,
    /// ∂ Σ softmax(x) ⊙ c / ∂x and ∂ Σ log_softmax(x) ⊙ c / ∂x.
    softmax_grad: Vec<f64>,
    log_softmax_grad: Vec<f64>,
}

/// The textbook formulas in f64: `p = e^(x − m) / Σ e^(x − m)`, `log p = x − m − log Σ e^(x − m)`;
/// gradients `(p − onehot) / N`, `p ⊙ (c − Σ c p)` and `c − p Σ c`.
fn textbook(x: &[f64], targets: &[i64], cot: &[f64], classes: usize) -> Rows {
    let rows = targets.len();
    let mut out = Rows {
        softmax: vec![],
        log_softmax: vec![],
        cross_entropy: vec![],
        cross_entropy_grad: vec![],
        softmax_grad: vec![],
        log_softmax_grad: vec![],
    };
    for ((x, &t), c) in x.chunks(classes).zip(targets).zip(cot.chunks(classes)) {
        let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = x.iter().map(|v| (v - m).exp()).sum();
        let p: Vec<f64> = x.iter().map(|v| (v - m).exp() / sum).collect();
        let log_p: Vec<f64> = x.iter().map(|v| v - m - sum.ln()).collect();
        out.cross_entropy.push(-log_p[t as usize]);
        for (k, &pk) in p.iter().enumerate() {
            let onehot = if k == t as usize { 1.0 } else { 0.0 };
            out.cross_entropy_grad.push((pk - onehot) / rows as f64);
        }
        let cp: f64 = c.iter().zip(&p).map(|(c, p)| c * p).sum();
        let csum: f64 = c.iter().sum();
        out.softmax_grad
            .extend(p.iter().zip(c).map(|(p, c)| p * (c - cp)));
        out.log_softmax_grad
            .extend(p.iter().zip(c).map(|(p, c)| c - p * csum));
        out.softmax.extend(p);
        out.log_softmax.extend(log_p);
    }
    out
}

/// The same through nabla's ops, in `dtype`.
fn nabla(x: &[f64], targets: &[i64], cot: &[f64], classes: usize, dtype: DType) -> Rows {
    let shape = [targets.len(), classes];
    let to = |v: &[f64]| {
        Tensor::from_vec(v.to_vec(), shape)
            .unwrap()
            .to_dtype(dtype)
            .unwrap()
    };
    let (x, cot) = (to(x), to(cot));
    let targets = Tensor::from_vec(targets.to_vec(), [targets.len()]).unwrap();
    let grad = |f: &dyn Fn(&Tensor) -> Tensor| {
        let v = Var::new(&x).unwrap();
        let loss = f(&v.as_tensor());
        loss.backward().unwrap().get(&v).unwrap().to_vec_f64()
    };
    let weighted = |y: Tensor| y.mul(&cot).unwrap().sum_all().unwrap();
    Rows {
        softmax: x.softmax(1).unwrap().to_vec_f64(),
        log_softmax: x.log_softmax(1).unwrap().to_vec_f64(),
        cross_entropy: x
            .cross_entropy(&targets, Reduction::None)
            .unwrap()
            .to_vec_f64(),
        cross_entropy_grad: grad(&|x| x.cross_entropy(&targets, Reduction::Mean).unwrap()),
        softmax_grad: grad(&|x| weighted(x.softmax(1).unwrap())),
        log_softmax_grad: grad(&|x| weighted(x.log_softmax(1).unwrap())),
    }
}

/// `got` within `tol · (1 + |want|)` of `want` everywhere (equal where `want` is infinite).
fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_infinite() {
            g == w
        } else {
            (g - w).abs() <= tol * (1.0 + w.abs())
        };
        assert!(ok, "{what}[{i}]: got {g}, want {w}");
    }
}

#[test]
fn softmax_and_cross_entropy_of_many_rows_match_the_textbook_on_any_thread_count() {
    // 3000 × 63 = 189 000 elements run in parallel chunks; 1500 × 10 on the calling thread.
    for (rows, classes) in [(3000, 63), (1500, 10), (40, 1), (9, 8), (9, 9), (5, 17)] {
        for (dtype, tol) in [(DType::F32, 4e-6), (DType::F64, 1e-12)] {
            let (x, targets) = logits(rows, classes, dtype, rows as u64);
            let (cot, _) = logits(rows, classes, DType::F64, 7);
            let cot: Vec<f64> = cot.iter().map(|c| c.clamp(-3.0, 3.0)).collect();
            let want = textbook(&x, &targets, &cot, classes);
            let one = common::on_threads(1, || nabla(&x, &targets, &cot, classes, dtype));
            let two = common::on_threads(2, || nabla(&x, &targets, &cot, classes, dtype));
            assert_eq!(
                one, two,
                "{rows}x{classes} {dtype:?}: 1 and 2 threads differ"
            );
            let case = |what: &str| format!("{what} {rows}x{classes} {dtype:?}");
            assert_close(&case("softmax"), &one.softmax, &want.softmax, tol);
            assert_close(
                &case("log_softmax"),
                &one.log_softmax,
                &want.log_softmax,
                tol,
            );
            assert_close(&case("ce"), &one.cross_entropy, &want.cross_entropy, tol);
            // The mean's gradient is (p − onehot) / N: compare on the scale of 1 / N.
            let scaled = |g: &[f64]| g.iter().map(|v| v * rows as f64).collect::<Vec<_>>();
            assert_close(
                &case("ce grad"),
                &scaled(&one.cross_entropy_grad),
                &scaled(&want.cross_entropy_grad),
                tol,
            );
            assert_close(
                &case("softmax grad"),
                &one.softmax_grad,
                &want.softmax_grad,
                tol,
            );
            assert_close(
                &case("log_softmax grad"),
                &one.log_softmax_grad,
                &want.log_softmax_grad,
                tol,
            );
        }
    }
}

#[test]
fn masked_classes_get_exactly_zero_probability() {
    for dtype in [DType::F32, DType::F64] {
        let x = Tensor::from_vec(vec![0.0, f64::NEG_INFINITY, -100.0, 2.0], [1, 4])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        let p = x.softmax(1).unwrap().to_vec_f64();
        assert_eq!(p[1], 0.0, "{dtype:?}");
        assert!(p[2] >= 0.0 && p[2] < 1e-40, "{dtype:?}: {}", p[2]);
        assert!((p[0] + p[3] - 1.0).abs() < 1e-6);
        // A row with every class masked has no distribution: NaN, as in PyTorch.
        let all = Tensor::from_vec(vec![f64::NEG_INFINITY; 3], [1, 3])
            .unwrap()
            .to_dtype(dtype)
            .unwrap();
        assert!(
            all.softmax(1)
                .unwrap()
                .to_vec_f64()
                .iter()
                .all(|v| v.is_nan())
        );
    }
}

/// The first maximal (or minimal) element of a row, or its first NaN.
fn first_extreme(row: &[f64], max: bool) -> usize {
    if let Some(i) = row.iter().position(|v| v.is_nan()) {
        return i;
    }
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if (max && v > row[best]) || (!max && v < row[best]) {
            best = i;
        }
    }
    best
}

#[test]
fn argmax_and_argmin_of_rows_pick_the_first_extreme_and_nan_wins() {
    // Few distinct values, so ties are common; ±0 compare equal; row lengths 1 to 20 cover the
    // tails of the eight-wide running extremes.
    let values = [
        -1.0,
        0.0,
        -0.0,
        2.0,
        2.0,
        -3.0,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let mut rng = Rng::seed(3);
    for len in 1..=20 {
        let rows = 30;
        let mut x: Vec<f64> = (0..rows * len)
            .map(|_| values[(rng.uniform() * values.len() as f64) as usize])
            .collect();
        for r in (0..rows).step_by(6) {
            x[r * len + (r / 6) % len] = f64::NAN;
        }
        for dtype in [DType::F32, DType::F64] {
            let t = Tensor::from_vec(x.clone(), [rows, len])
                .unwrap()
                .to_dtype(dtype)
                .unwrap();
            for max in [true, false] {
                let (index, value) = if max {
                    (t.argmax(1, false), t.max_dim(1, false))
                } else {
                    (t.argmin(1, false), t.min_dim(1, false))
                };
                let index = index.unwrap().to_vec::<i64>().unwrap();
                let value = value.unwrap().to_vec_f64();
                for (r, row) in x.chunks(len).enumerate() {
                    let want = first_extreme(row, max);
                    assert_eq!(
                        index[r] as usize, want,
                        "len {len} row {r} {row:?} max={max}"
                    );
                    // The element itself: −0 stays −0, NaN stays NaN.
                    let same = (value[r].is_nan() && row[want].is_nan())
                        || value[r].to_bits() == row[want].to_bits();
                    assert!(same, "len {len} row {r} {row:?} max={max}: {}", value[r]);
                }
            }
        }
    }
}

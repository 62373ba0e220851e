//! Random shapes, dims and arguments thrown at the public ops: every call returns a correct
//! result or an `Err`, never a panic. Results are compared with naive reference computations.

use nabla_core::{Conv2dOptions, DType, Pool2dOptions, Reduction, Tensor};
use proptest::prelude::*;

fn shape() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..4, 0..4)
}

/// A tensor with values i·0.5 − 3 in row-major order (distinct, easy to reason about).
fn ramp(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_vec(
        (0..n).map(|i| i as f64 * 0.5 - 3.0).collect::<Vec<_>>(),
        shape.to_vec(),
    )
    .unwrap()
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// Element of a row-major `shape` at a broadcast index (extent-1 dims read index 0).
fn at_broadcast(data: &[f64], shape: &[usize], idx: &[usize]) -> f64 {
    let off = idx.len() - shape.len();
    let mut flat = 0;
    for (d, &n) in shape.iter().enumerate() {
        flat = flat * n + if n == 1 { 0 } else { idx[d + off] };
    }
    data[flat]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn binary_broadcasting_is_correct_or_an_error(a in shape(), b in shape()) {
        let (x, y) = (ramp(&a), ramp(&b).add_scalar(0.25).unwrap());
        match x.add(&y) {
            Err(e) => prop_assert!(e.to_string().starts_with("add: "), "{e}"),
            Ok(z) => {
                let (xd, yd, zd) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap(), z.to_vec::<f64>().unwrap());
                for (i, v) in zd.iter().enumerate() {
                    let idx = unravel(i, z.dims());
                    prop_assert_eq!(*v, at_broadcast(&xd, &a, &idx) + at_broadcast(&yd, &b, &idx));
                }
            }
        }
        // The other binary ops broadcast exactly like add: same shape when it succeeds, an error when not.
        let expected = x.add(&y).ok().map(|t| t.dims().to_vec());
        for r in [x.mul(&y), x.div(&y), x.maximum(&y), x.sub(&y), x.lt(&y)] {
            prop_assert_eq!(r.ok().map(|t| t.dims().to_vec()), expected.clone());
        }
    }

    #[test]
    fn sums_over_random_dims_are_correct_or_an_error(s in shape(), dims in prop::collection::vec(-5isize..5, 0..4), keep in any::<bool>()) {
        let x = ramp(&s);
        match x.sum_dims(&dims, keep) {
            Err(e) => prop_assert!(e.to_string().starts_with("sum: "), "{e}"),
            Ok(y) => {
                let rank = s.len() as isize;
                let red: Vec<usize> = dims.iter().map(|&d| (if d < 0 { d + rank } else { d }) as usize).collect();
                let xd = x.to_vec::<f64>().unwrap();
                let mut expected = vec![0.0; y.elem_count()];
                let kept: Vec<usize> = (0..s.len()).filter(|d| !red.contains(d)).collect();
                for (i, v) in xd.iter().enumerate() {
                    let idx = unravel(i, &s);
                    let mut flat = 0;
                    for &d in &kept { flat = flat * s[d] + idx[d]; }
                    expected[flat] += v;
                }
                let got = y.to_vec::<f64>().unwrap();
                prop_assert_eq!(got.len(), expected.len());
                for (g, e) in got.iter().zip(&expected) { prop_assert!((g - e).abs() < 1e-9); }
            }
        }
        for r in [x.mean_dims(&dims, keep), x.var_dims(&dims, keep, 1)] { let _ = r; }
        if let Some(&d) = dims.first() {
            let _ = (x.max_dim(d, keep), x.argmin(d, keep), x.softmax(d), x.log_softmax(d), x.unsqueeze(d), x.squeeze(d), x.flatten(d, -1));
        }
        let _ = (x.max_all(), x.mean_all(), x.var_all(1));
    }

    #[test]
    fn views_are_correct_or_an_error(s in shape(), d0 in -4isize..4, d1 in -4isize..4, start in 0usize..4, len in 0usize..4, new in shape()) {
        let x = ramp(&s);
        if let Ok(t) = x.transpose(d0, d1) {
            let back = t.transpose(d0, d1).unwrap();
            prop_assert_eq!(back.to_vec::<f64>().unwrap(), x.to_vec::<f64>().unwrap());
        }
        if let Ok(n) = x.narrow(d0, start, len) {
            let d = if d0 < 0 { d0 + s.len() as isize } else { d0 } as usize;
            prop_assert_eq!(n.dims()[d], len);
            let xd = x.to_vec::<f64>().unwrap();
            for (i, v) in n.to_vec::<f64>().unwrap().iter().enumerate() {
                let mut idx = unravel(i, n.dims());
                idx[d] += start;
                let mut flat = 0;
                for (k, &e) in s.iter().enumerate() { flat = flat * e + idx[k]; }
                prop_assert_eq!(*v, xd[flat]);
            }
        }
        match x.reshape(new.clone()) {
            Ok(r) => prop_assert_eq!(r.to_vec::<f64>().unwrap(), x.to_vec::<f64>().unwrap()),
            Err(_) => prop_assert_ne!(new.iter().product::<usize>(), s.iter().product::<usize>()),
        }
        let _ = (x.broadcast_as(new.clone()), x.permute(&[1, 0]), x.reshape_infer(&[-1, 2]), x.t());
    }

    #[test]
    fn matmul_is_correct_or_an_error(a in prop::collection::vec(0usize..5, 0..4), b in prop::collection::vec(0usize..5, 0..4), transpose in any::<bool>()) {
        let (x, y) = (ramp(&a), ramp(&b));
        let y = if transpose && b.len() >= 2 { y.transpose(-1, -2).unwrap() } else { y };
        match x.matmul(&y) {
            Err(e) => prop_assert!(e.to_string().starts_with("matmul: "), "{e}"),
            Ok(z) if a.len() == 2 && y.rank() == 2 => {
                let (m, k, n) = (a[0], a[1], y.dims()[1]);
                let (xd, yd, zd) = (x.to_vec::<f64>().unwrap(), y.to_vec::<f64>().unwrap(), z.to_vec::<f64>().unwrap());
                for i in 0..m { for j in 0..n {
                    let e: f64 = (0..k).map(|p| xd[i * k + p] * yd[p * n + j]).sum();
                    prop_assert!((zd[i * n + j] - e).abs() < 1e-9);
                }}
            }
            Ok(_) => {}
        }
    }

    #[test]
    fn copies_and_indexing_are_correct_or_an_error(s in shape(), dim in -4isize..4, idx in prop::collection::vec(-2i64..5, 0..5), other in shape()) {
        let x = ramp(&s);
        let i = Tensor::from_vec(idx.clone(), [idx.len()]).unwrap();
        match x.index_select(dim, &i) {
            Ok(y) => {
                let d = if dim < 0 { dim + s.len() as isize } else { dim } as usize;
                prop_assert_eq!(y.dims()[d], idx.len());
                prop_assert!(idx.iter().all(|&v| v >= 0 && (v as usize) < s[d]));
            }
            Err(e) => prop_assert!(e.to_string().starts_with("index_select: "), "{e}"),
        }
        let o = ramp(&other);
        if let Ok(c) = Tensor::concat(&[&x, &o], dim) {
            prop_assert_eq!(c.elem_count(), x.elem_count() + o.elem_count());
        }
        let _ = (Tensor::stack(&[&x, &o], dim), x.gather(dim, &Tensor::zeros(s.clone(), DType::I64)), x.gather(dim, &i));
    }

    #[test]
    fn conv_and_pool_return_ok_or_err(n in 0usize..3, c in 0usize..3, h in 0usize..6, w in 0usize..6, o in 0usize..3, k in 0usize..4, stride in 0usize..3, pad in 0usize..3, dil in 0usize..3) {
        let x = ramp(&[n, c, h, w]);
        let weight = ramp(&[o, c, k, k]);
        let opts = Conv2dOptions { stride: [stride, stride], padding: [pad, pad], dilation: [dil, dil], groups: 1 };
        if let Ok(y) = x.conv2d(&weight, None, opts) {
            prop_assert_eq!(y.dims()[..2].to_vec(), vec![n, o]);
        }
        let p = Pool2dOptions { kernel: [k, k], stride: [stride, stride], padding: [pad, pad] };
        let _ = (x.max_pool2d(p), x.avg_pool2d(p), x.conv2d(&ramp(&[o, c + 1, k, k]), None, opts));
    }

    #[test]
    fn a_grouped_conv_is_the_convs_of_its_channel_groups(n in 1usize..3, groups in 1usize..4, cg in 1usize..3, og in 1usize..3, h in 1usize..6, w in 1usize..6, k in 1usize..4, stride in 1usize..3, pad in 0usize..3, dil in 1usize..3) {
        // Distinct values (not a ramp) so that a channel or filter read from the wrong group
        // changes the result.
        let distinct = |shape: &[usize], salt: usize| {
            let len: usize = shape.iter().product();
            let v: Vec<f64> = (0..len).map(|i| (((i * 7919 + salt * 104_729) % 1000) as f64) / 500.0 - 1.0).collect();
            Tensor::from_vec(v, shape.to_vec()).unwrap()
        };
        let x = distinct(&[n, cg * groups, h, w], 1);
        let weight = distinct(&[og * groups, cg, k, k], 2);
        let opts = Conv2dOptions { stride: [stride, stride], padding: [pad, pad], dilation: [dil, dil], groups };
        if let Ok(y) = x.conv2d(&weight, None, opts) {
            let single = Conv2dOptions { groups: 1, ..opts };
            let parts: Vec<Tensor> = (0..groups)
                .map(|g| {
                    x.narrow(1, g * cg, cg).unwrap()
                        .conv2d(&weight.narrow(0, g * og, og).unwrap(), None, single)
                        .unwrap()
                })
                .collect();
            let refs: Vec<&Tensor> = parts.iter().collect();
            let want = Tensor::concat(&refs, 1).unwrap();
            prop_assert_eq!(y.dims(), want.dims());
            let (got, want) = (y.to_vec::<f64>().unwrap(), want.to_vec::<f64>().unwrap());
            for (a, b) in got.iter().zip(&want) {
                prop_assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{} vs {}", a, b);
            }
        }
    }

    #[test]
    fn losses_return_ok_or_err(a in shape(), b in shape(), t in prop::collection::vec(-1i64..4, 0..4)) {
        let (x, y) = (ramp(&a), ramp(&b).sigmoid().unwrap());
        let targets = Tensor::from_vec(t.clone(), [t.len()]).unwrap();
        let _ = (x.mse_loss(&y, Reduction::Mean), x.binary_cross_entropy_with_logits(&y, Reduction::Sum),
                 x.binary_cross_entropy(&y, Reduction::None), x.cross_entropy_soft(&y, Reduction::Mean));
        match x.cross_entropy(&targets, Reduction::Mean) {
            Ok(l) => prop_assert!(l.to_scalar::<f64>().unwrap().is_finite() || a[0] == 0),
            Err(e) => prop_assert!(e.to_string().starts_with("cross_entropy: "), "{e}"),
        }
        let _ = (x.batch_norm(None, None, 1e-5), x.layer_norm(&b, None, None, 1e-5), x.prelu(&y), x.dropout(0.5, &mut nabla_core::Rng::seed(0)));
    }
}

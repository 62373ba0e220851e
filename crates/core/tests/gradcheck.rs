//! Every differentiable op against central finite differences in f64, including broadcasting and
//! non-contiguous (transposed, narrowed) inputs.

mod common;
use common::{check, distinct, input, positive};
use nabla_core::{Conv2dOptions, DType, Pool2dOptions, Reduction, Rng, Tensor};

#[test]
fn binary_ops_with_broadcasting() {
    let a = input(&[3, 1, 4], 1, false);
    let b = input(&[2, 4], 2, false);
    check("add", vec![a.clone(), b.clone()], |x| x[0].add(&x[1]));
    check("sub", vec![a.clone(), b.clone()], |x| x[0].sub(&x[1]));
    check("mul", vec![a.clone(), b.clone()], |x| x[0].mul(&x[1]));
    check("div", vec![a.clone(), positive(&[2, 4], 3)], |x| {
        x[0].div(&x[1])
    });
    check("maximum", vec![a.clone(), b.clone()], |x| {
        x[0].maximum(&x[1])
    });
    check("minimum", vec![a.clone(), b.clone()], |x| {
        x[0].minimum(&x[1])
    });
    check(
        "pow",
        vec![positive(&[3, 1, 4], 4), input(&[4], 5, false)],
        |x| x[0].pow(&x[1]),
    );
    check(
        "scalar broadcast",
        vec![a.clone(), input(&[], 6, false)],
        |x| x[0].mul(&x[1]),
    );
}

#[test]
fn unary_math_ops() {
    let x = input(&[3, 5], 7, true);
    let p = positive(&[3, 5], 8);
    check("neg", vec![x.clone()], |x| x[0].neg());
    check("exp", vec![x.clone()], |x| x[0].exp());
    check("log", vec![p.clone()], |x| x[0].log());
    check("sqrt", vec![p.clone()], |x| x[0].sqrt());
    check("square", vec![x.clone()], |x| x[0].square());
    check("abs", vec![x.clone()], |x| x[0].abs());
    check("powf", vec![p.clone()], |x| x[0].powf(2.5));
    check("add_scalar", vec![x.clone()], |x| x[0].add_scalar(1.5));
    check("mul_scalar", vec![x.clone()], |x| x[0].mul_scalar(-3.0));
    check("clamp", vec![x.clone()], |x| x[0].clamp(-0.7, 0.9));
}

#[test]
fn activations() {
    let x = input(&[4, 6], 9, true);
    check("relu", vec![x.clone()], |x| x[0].relu());
    check("leaky_relu", vec![x.clone()], |x| x[0].leaky_relu(0.1));
    check("elu", vec![x.clone()], |x| x[0].elu(1.3));
    check("sigmoid", vec![x.clone()], |x| x[0].sigmoid());
    check("tanh", vec![x.clone()], |x| x[0].tanh());
    check("hard_tanh", vec![x.clone()], |x| x[0].hard_tanh(-0.8, 0.9));
    check("gelu", vec![x.clone()], |x| x[0].gelu());
    for dim in [0, 1, -1] {
        check("softmax", vec![x.clone()], |x| x[0].softmax(dim));
        check("log_softmax", vec![x.clone()], |x| x[0].log_softmax(dim));
    }
    let img = input(&[2, 3, 2, 2], 10, true);
    check(
        "prelu per channel",
        vec![img.clone(), input(&[3], 11, false)],
        |x| x[0].prelu(&x[1]),
    );
    check("prelu shared", vec![img, input(&[1], 12, false)], |x| {
        x[0].prelu(&x[1])
    });
    check("dropout (fixed seed)", vec![x], |x| {
        x[0].dropout(0.4, &mut Rng::seed(3))
    });
}

#[test]
fn reductions() {
    let x = input(&[3, 4, 5], 13, false);
    check("sum all", vec![x.clone()], |x| x[0].sum_all());
    check("sum dim 1", vec![x.clone()], |x| x[0].sum_dims(&[1], false));
    check("sum dims 0,2 keepdim", vec![x.clone()], |x| {
        x[0].sum_dims(&[0, 2], true)
    });
    check("mean all", vec![x.clone()], |x| x[0].mean_all());
    check("mean dims -1", vec![x.clone()], |x| {
        x[0].mean_dims(&[-1], true)
    });
    let d = distinct(&[3, 4, 5], 50);
    check("max dim", vec![d.clone()], |x| x[0].max_dim(1, false));
    check("min dim keepdim", vec![d.clone()], |x| {
        x[0].min_dim(-1, true)
    });
    check("max all", vec![d.clone()], |x| x[0].max_all());
    check("min all", vec![d], |x| x[0].min_all());
    check("var unbiased", vec![x.clone()], |x| {
        x[0].var_dims(&[0, 2], false, 1)
    });
    check("var biased all", vec![x], |x| x[0].var_all(0));
}

#[test]
fn matmul_2d_batched_and_transposed() {
    check(
        "matmul",
        vec![input(&[3, 4], 14, false), input(&[4, 5], 15, false)],
        |x| x[0].matmul(&x[1]),
    );
    check(
        "batched broadcast",
        vec![
            input(&[2, 1, 3, 4], 16, false),
            input(&[3, 4, 2], 17, false),
        ],
        |x| x[0].matmul(&x[1]),
    );
    // Transposed (non-contiguous) operands go to the kernel as strides.
    check(
        "Aᵀ B",
        vec![input(&[4, 3], 18, false), input(&[4, 5], 19, false)],
        |x| x[0].t()?.matmul(&x[1]),
    );
    check(
        "A Bᵀ",
        vec![input(&[3, 4], 20, false), input(&[5, 4], 21, false)],
        |x| x[0].matmul(&x[1].t()?),
    );
    // Large enough for the gemm path (the small ones use the plain loop).
    check(
        "gemm path",
        vec![input(&[20, 24], 22, false), input(&[24, 18], 23, false)],
        |x| x[0].matmul(&x[1].t()?.t()?),
    );
}

#[test]
fn shape_ops() {
    let x = input(&[2, 3, 4], 24, false);
    check("reshape", vec![x.clone()], |x| x[0].reshape([6, 4]));
    check("reshape of transposed", vec![x.clone()], |x| {
        x[0].transpose(0, 2)?.reshape([4, 6])
    });
    check("permute", vec![x.clone()], |x| x[0].permute(&[2, 0, 1]));
    check("broadcast_as", vec![input(&[3, 1], 25, false)], |x| {
        x[0].broadcast_as([2, 3, 4])
    });
    check("narrow", vec![x.clone()], |x| x[0].narrow(1, 1, 2));
    check("narrow then op", vec![x.clone()], |x| {
        x[0].narrow(2, 1, 3)?.tanh()
    });
    check(
        "squeeze/unsqueeze",
        vec![input(&[3, 1, 2], 26, false)],
        |x| x[0].squeeze(1)?.unsqueeze(0),
    );
    check("flatten", vec![x.clone()], |x| x[0].flatten(1, 2));
    check("contiguous", vec![x.clone()], |x| {
        Ok(x[0].transpose(0, 1)?.contiguous())
    });
    check(
        "concat",
        vec![x.clone(), input(&[2, 1, 4], 27, false)],
        |x| Tensor::concat(&[&x[0], &x[1]], 1),
    );
    check(
        "stack",
        vec![input(&[3, 2], 28, false), input(&[3, 2], 29, false)],
        |x| Tensor::stack(&[&x[0], &x[1]], -1),
    );
    let idx = Tensor::from_vec(vec![2i64, 0, 2], [3]).unwrap();
    check("index_select with repeats", vec![x.clone()], |x| {
        x[0].index_select(1, &idx)
    });
    let gidx = Tensor::from_vec(vec![0i64, 3, 3, 1, 2, 0], [2, 3, 1]).unwrap();
    check("gather", vec![x.clone()], |x| x[0].gather(2, &gidx));
    let cond = input(&[3, 4], 30, true)
        .gt(&Tensor::scalar(0.0f64))
        .unwrap();
    check("where", vec![x.clone(), input(&[4], 31, false)], |x| {
        Tensor::where_cond(&cond, &x[0], &x[1])
    });
}

#[test]
fn convolution_and_pooling() {
    let x = input(&[2, 3, 6, 5], 32, false);
    let w = input(&[4, 3, 3, 2], 33, false);
    let b = input(&[4], 34, false);
    let opts = Conv2dOptions {
        stride: [2, 1],
        padding: [1, 1],
        dilation: [1, 2],
        groups: 1,
    };
    check(
        "conv2d stride/padding/dilation + bias",
        vec![x.clone(), w.clone(), b],
        |x| x[0].conv2d(&x[1], Some(&x[2]), opts),
    );
    // Groups: 4 input channels in 2 groups, 6 filters (3 per group); and depthwise (groups =
    // channels, 2 filters each), with stride and padding.
    let x4 = input(&[2, 4, 5, 5], 52, false);
    check(
        "conv2d groups = 2 + bias",
        vec![
            x4.clone(),
            input(&[6, 2, 3, 2], 53, false),
            input(&[6], 54, false),
        ],
        |x| {
            x[0].conv2d(
                &x[1],
                Some(&x[2]),
                Conv2dOptions {
                    groups: 2,
                    ..Conv2dOptions::default()
                },
            )
        },
    );
    check(
        "conv2d depthwise",
        vec![x4.clone(), input(&[8, 1, 3, 3], 55, false)],
        |x| {
            x[0].conv2d(
                &x[1],
                None,
                Conv2dOptions {
                    stride: [2, 1],
                    padding: [1, 1],
                    groups: 4,
                    ..Conv2dOptions::default()
                },
            )
        },
    );
    // Padding wider than the image with dilation: some kernel columns read only padding
    // (their im2col rows are all zeros; proptest found a panic there once).
    check(
        "conv2d with columns entirely in the padding",
        vec![
            input(&[1, 2, 3, 1], 56, false),
            input(&[2, 2, 3, 3], 57, false),
        ],
        |x| {
            x[0].conv2d(
                &x[1],
                None,
                Conv2dOptions {
                    padding: [2, 2],
                    dilation: [2, 2],
                    ..Conv2dOptions::default()
                },
            )
        },
    );
    check("conv2d plain", vec![x.clone(), w], |x| {
        x[0].conv2d(&x[1], None, Conv2dOptions::default())
    });
    let distinct_x = distinct(&[2, 3, 6, 5], 49);
    check("max_pool2d", vec![distinct_x], |x| {
        x[0].max_pool2d(Pool2dOptions {
            kernel: [2, 3],
            stride: [2, 1],
            padding: [1, 1],
        })
    });
    // Windows inside the plane (no padding): the kernels' fast path.
    for (kernel, stride) in [([2, 2], [2, 2]), ([3, 2], [1, 2])] {
        check(
            "max_pool2d unpadded",
            vec![distinct(&[2, 3, 6, 5], 50)],
            |x| {
                x[0].max_pool2d(Pool2dOptions {
                    kernel,
                    stride,
                    padding: [0, 0],
                })
            },
        );
    }
    check(
        "conv2d with a column stride over padding",
        vec![x.clone(), input(&[2, 3, 2, 3], 51, false)],
        |x| {
            x[0].conv2d(
                &x[1],
                None,
                Conv2dOptions {
                    stride: [1, 2],
                    padding: [0, 2],
                    dilation: [1, 1],
                    groups: 1,
                },
            )
        },
    );
    check("avg_pool2d", vec![x.clone()], |x| {
        x[0].avg_pool2d(Pool2dOptions {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        })
    });
    check(
        "conv on a transposed input",
        vec![
            input(&[2, 3, 5, 6], 35, false),
            input(&[2, 3, 2, 2], 36, false),
        ],
        |x| {
            x[0].transpose(2, 3)?
                .conv2d(&x[1], None, Conv2dOptions::default())
        },
    );
}

#[test]
fn normalization() {
    let x = input(&[4, 3, 2], 37, false);
    check(
        "batch_norm",
        vec![x.clone(), input(&[3], 38, false), input(&[3], 39, false)],
        |x| x[0].batch_norm(Some(&x[1]), Some(&x[2]), 1e-5),
    );
    check(
        "layer_norm",
        vec![
            x.clone(),
            input(&[3, 2], 40, false),
            input(&[3, 2], 41, false),
        ],
        |x| x[0].layer_norm(&[3, 2], Some(&x[1]), Some(&x[2]), 1e-5),
    );
}

#[test]
fn losses() {
    let logits = input(&[4, 3], 42, false);
    let targets = Tensor::from_vec(vec![2i64, 0, 1, 2], [4]).unwrap();
    for r in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        check("cross_entropy", vec![logits.clone()], |x| {
            x[0].cross_entropy(&targets, r)
        });
        check(
            "mse",
            vec![logits.clone(), input(&[4, 3], 43, false)],
            |x| x[0].mse_loss(&x[1], r),
        );
    }
    let probs = positive(&[4, 3], 44).softmax(1).unwrap();
    check(
        "cross_entropy_soft (logits and targets)",
        vec![logits.clone(), probs],
        |x| x[0].cross_entropy_soft(&x[1], Reduction::Mean),
    );
    let t = positive(&[4, 3], 45).sigmoid().unwrap();
    check("bce_with_logits", vec![logits.clone(), t.clone()], |x| {
        x[0].binary_cross_entropy_with_logits(&x[1], Reduction::Mean)
    });
    let p = logits.sigmoid().unwrap();
    check("bce", vec![p, t], |x| {
        x[0].binary_cross_entropy(&x[1], Reduction::Sum)
    });
}

#[test]
fn composite_mlp_with_shared_weights() {
    // A weight used twice (multivariate chain rule) and a loss on a hidden node.
    let x = input(&[5, 3], 46, false);
    check(
        "mlp",
        vec![input(&[3, 3], 47, false), input(&[3], 48, false)],
        |p| {
            let h = x.matmul(&p[0])?.add(&p[1])?.tanh()?;
            let out = h.matmul(&p[0])?.sigmoid()?;
            out.sum_all()?.add(&h.abs()?.mean_all()?.mul_scalar(0.1)?)
        },
    );
}

/// A direct scan of every window of one `[H, W]` plane (no padding): PyTorch's pick, the first
/// largest value in row-major order, and a NaN wins (the first of its row).
/// Returns each window's value and the index of the tap it came from.
fn scan_max_pool(
    plane: &[f64],
    w: usize,
    k: usize,
    s: usize,
    out: (usize, usize),
) -> Vec<(f64, usize)> {
    let mut picks = Vec::new();
    for oy in 0..out.0 {
        for ox in 0..out.1 {
            let mut best = f64::NEG_INFINITY;
            let mut at = usize::MAX;
            for i in 0..k {
                for j in 0..k {
                    let tap = (oy * s + i) * w + ox * s + j;
                    let v = plane[tap];
                    if at == usize::MAX || v > best || v.is_nan() {
                        best = v;
                        at = tap;
                        if v.is_nan() {
                            break;
                        }
                    }
                }
            }
            picks.push((best, at));
        }
    }
    picks
}

#[test]
fn max_pool_without_padding_picks_as_a_direct_scan() {
    // Ties (values from a set of 5), -inf and NaN, over 2x2/2 and 3x3/1 windows, in f64 and
    // f32 (whose 2x2/2 kernel is compiled per SIMD level).
    let mut rng = Rng::seed(7);
    let mut values: Vec<f64> = (0..2 * 3 * 7 * 7)
        .map(|_| (rng.below(5) as f64) - 2.0)
        .collect();
    // NaNs in both rows of the 2x2 window at (0, 1) of plane 0, and twice in one row of
    // plane 2's.
    values[3] = f64::NAN;
    values[10] = f64::NAN;
    values[2 * 49 + 2] = f64::NAN;
    values[2 * 49 + 3] = f64::NAN;
    values[60] = f64::NEG_INFINITY;
    values[61] = f64::NEG_INFINITY;
    let x64 = Tensor::from_vec(values.clone(), [2, 3, 7, 7]).unwrap();
    for ((k, s), x) in [(2, 2), (3, 1)]
        .into_iter()
        .flat_map(|ks| [(ks, x64.clone()), (ks, x64.to_dtype(DType::F32).unwrap())])
    {
        let y = x
            .max_pool2d(Pool2dOptions {
                kernel: [k, k],
                stride: [s, s],
                padding: [0, 0],
            })
            .unwrap();
        let out = ((7 - k) / s + 1, (7 - k) / s + 1);
        let picks: Vec<Vec<(f64, usize)>> = values
            .chunks(49)
            .map(|plane| scan_max_pool(plane, 7, k, s, out))
            .collect();
        let got = y.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        let want: Vec<f64> = picks.iter().flatten().map(|p| p.0).collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(g == w || (g.is_nan() && w.is_nan()), "{got:?} vs {want:?}");
        }
        // The gradient of the sum goes to the picked taps (ties: the first in row-major order).
        let xv = nabla_core::Var::new(&x).unwrap();
        let pooled = xv
            .as_tensor()
            .max_pool2d(Pool2dOptions {
                kernel: [k, k],
                stride: [s, s],
                padding: [0, 0],
            })
            .unwrap();
        let grads = pooled.sum_all().unwrap().backward().unwrap();
        let dx = grads
            .get(&xv)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec::<f64>()
            .unwrap();
        let mut hits = vec![0.0; values.len()];
        for (p, plane) in picks.iter().enumerate() {
            for &(_, at) in plane {
                hits[p * 49 + at] += 1.0;
            }
        }
        assert_eq!(dx, hits);
    }
}

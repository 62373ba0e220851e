//! The f32 activations and `exp`/`log` run polynomials (`σ`, `tanh`, `eˣ`, `eˣ − 1`, `Φ`,
//! `ln`) compiled for the CPU's widest vectors. Checked against the same ops in f64 (libm) on the same inputs: each value
//! relative to its own size, out into the tails, and each gradient. A transposed view, a large
//! (parallel) input, and one or two threads give the same bits.

mod common;
use nabla_core::{DType, Result, Tensor, Var};

const EPS: f64 = f32::EPSILON as f64;
const TINY: f64 = f32::MIN_POSITIVE as f64;

struct Case {
    name: &'static str,
    op: fn(&Tensor) -> Result<Tensor>,
    /// The swept inputs.
    range: (f64, f64),
    /// Allowed relative error of the value at `x`, in ulp.
    value_ulp: fn(f64) -> f64,
    /// Allowed absolute error of the gradient, in ulp of 1, on top of 8 ulp relative: where the
    /// textbook formula cancels (`y (1 − y)`, `1 − y²`, `Φ + x φ` far left), as PyTorch's does.
    grad_abs_ulp: f64,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "sigmoid",
            op: Tensor::sigmoid,
            range: (-95.0, 30.0),
            value_ulp: |_| 4.0,
            grad_abs_ulp: 1.0,
        },
        Case {
            name: "tanh",
            op: Tensor::tanh,
            range: (-20.0, 20.0),
            value_ulp: |_| 4.0,
            grad_abs_ulp: 2.0,
        },
        Case {
            name: "exp",
            op: Tensor::exp,
            range: (-110.0, 88.7),
            value_ulp: |_| 3.0,
            grad_abs_ulp: 0.0,
        },
        Case {
            name: "elu",
            op: |x| x.elu(1.5),
            range: (-40.0, 10.0),
            value_ulp: |_| 3.0,
            grad_abs_ulp: 0.0,
        },
        Case {
            name: "log",
            op: Tensor::log,
            range: (1e-6, 50.0),
            value_ulp: |_| 2.0,
            grad_abs_ulp: 0.0,
        },
        // Φ(x) = erfc(−x/√2)/2: the rounding of x/√2 and of its square cost the function's
        // condition number, about x²/2 ulp each.
        Case {
            name: "gelu",
            op: Tensor::gelu,
            range: (-14.0, 10.0),
            value_ulp: |x| 8.0 + 1.5 * x * x,
            grad_abs_ulp: 1.0,
        },
    ]
}

/// `n` points evenly over `[lo, hi]`, rounded to f32 (so that both dtypes see the same inputs),
/// plus 0 and the signed zeros' neighbours.
fn sweep((lo, hi): (f64, f64), n: usize) -> Vec<f64> {
    let mut xs: Vec<f64> = (0..n)
        .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32 as f64)
        .collect();
    xs.extend([0.0, 1e-30, -1e-30, 1e-7, -1e-7]);
    xs
}

/// The op's value and its gradient (for the cotangent 1) at each `x`, in `dtype`.
fn value_and_grad(
    op: fn(&Tensor) -> Result<Tensor>,
    xs: &[f64],
    dtype: DType,
) -> (Vec<f64>, Vec<f64>) {
    let x = Tensor::from_vec(xs.to_vec(), [xs.len()])
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    let var = Var::new(&x).unwrap();
    let y = op(&var.as_tensor()).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    (y.to_vec_f64(), grads.get(&var).unwrap().to_vec_f64())
}

/// Within `allowed`, or the same infinity or both NaN (log at 0 and below).
fn close(got: f64, want: f64, allowed: f64) -> bool {
    got == want || (got.is_nan() && want.is_nan()) || (got - want).abs() <= allowed
}

#[test]
fn f32_values_and_gradients_match_f64_to_a_few_ulp_out_into_the_tails() {
    for case in cases() {
        let xs = sweep(case.range, 100_001);
        let (y32, g32) = value_and_grad(case.op, &xs, DType::F32);
        let (y64, g64) = value_and_grad(case.op, &xs, DType::F64);
        for (i, &x) in xs.iter().enumerate() {
            let (want, got) = (y64[i], y32[i]);
            // A result below f32's normal range may be flushed or rounded to the subnormal grid.
            let allowed =
                (case.value_ulp)(x) * EPS * want.abs() + if want.abs() < TINY { TINY } else { 0.0 };
            assert!(
                close(got, want, allowed),
                "{}({x}): f32 {got:e}, f64 {want:e} ({:.1} ulp)",
                case.name,
                (got - want).abs() / (want.abs() * EPS)
            );
            let (want, got) = (g64[i], g32[i]);
            let allowed = 8.0 * EPS * want.abs()
                + case.grad_abs_ulp * EPS
                + if want.abs() < TINY { TINY } else { 0.0 };
            assert!(
                close(got, want, allowed),
                "{}'({x}): f32 {got:e}, f64 {want:e}",
                case.name
            );
        }
    }
}

#[test]
fn special_values_are_the_exact_ones() {
    let f = |op: fn(&Tensor) -> Result<Tensor>, x: f32| {
        op(&Tensor::from_vec(vec![x], [1]).unwrap())
            .unwrap()
            .to_vec::<f32>()
            .unwrap()[0]
    };
    for case in cases() {
        assert!(f(case.op, f32::NAN).is_nan(), "{}(NaN)", case.name);
    }
    assert_eq!(f(Tensor::sigmoid, 0.0), 0.5);
    assert_eq!(f(Tensor::sigmoid, 200.0), 1.0);
    assert_eq!(f(Tensor::sigmoid, -200.0), 0.0);
    assert_eq!(f(Tensor::tanh, f32::INFINITY), 1.0);
    assert_eq!(f(Tensor::tanh, f32::NEG_INFINITY), -1.0);
    assert_eq!(f(Tensor::exp, 0.0), 1.0);
    assert_eq!(f(Tensor::exp, f32::NEG_INFINITY), 0.0);
    assert_eq!(f(Tensor::exp, 89.0), f32::INFINITY);
    assert_eq!(f(Tensor::log, 1.0), 0.0);
    assert_eq!(f(Tensor::log, 0.0), f32::NEG_INFINITY);
    assert!(f(Tensor::log, -1.0).is_nan());
    assert_eq!(f(Tensor::log, f32::INFINITY), f32::INFINITY);
    assert_eq!(f(|x| x.elu(1.0), f32::NEG_INFINITY), -1.0);
    assert_eq!(f(Tensor::gelu, 0.0), 0.0);
    assert_eq!(f(Tensor::gelu, 20.0), 20.0);
    assert_eq!(f(Tensor::gelu, -20.0), 0.0);
}

#[test]
fn views_chunks_and_thread_counts_give_the_same_bits() {
    // 300 x 400 = 120,000 elements: above the parallel threshold (65,536).
    let x = common::input(&[300, 400], 7, false)
        .mul_scalar(3.0)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    let bits = |t: &Tensor| -> Vec<u32> {
        t.to_vec::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    };
    for case in cases() {
        let whole = common::on_threads(2, || bits(&(case.op)(&x).unwrap()));
        assert_eq!(
            whole,
            common::on_threads(1, || bits(&(case.op)(&x).unwrap())),
            "{}: 1 vs 2 threads",
            case.name
        );
        let transposed = (case.op)(&x.t().unwrap())
            .unwrap()
            .t()
            .unwrap()
            .contiguous();
        assert_eq!(whole, bits(&transposed), "{}: transposed view", case.name);
        let first_row = (case.op)(&x.narrow(0, 0, 1).unwrap()).unwrap();
        assert_eq!(
            whole[..400],
            bits(&first_row)[..],
            "{}: a small piece alone",
            case.name
        );
    }
}

//! The narrower SIMD levels, run on whatever machine the tests run on (`set_max_simd_level`), so
//! that an AVX-512 machine also tests the AVX2 and baseline code: AVX-512 and AVX2 give the same
//! bits, and the baseline (no fused multiply-add) stays within a few ulp of them.
//!
//! One test in its own binary: the level is a process-wide setting.

mod common;
use common::input;
use nabla_core::{
    DType, RecurrentCell, Reduction, Result, SimdLevel, Tensor, Var, set_max_simd_level, simd_level,
};

type Op = fn(&Tensor) -> Result<Tensor>;

/// Every kernel compiled per level, as named f32 outputs: the unary ops' values and gradients,
/// softmax, log-softmax and cross-entropy with their gradients, and each recurrent cell's states
/// and gradients.
fn outputs() -> Vec<(String, Vec<f32>)> {
    let f32_input = |shape: &[usize], seed: u64, scale: f64| {
        input(shape, seed, false)
            .mul_scalar(scale)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
    };
    let mut out = Vec::new();
    let mut record = |name: String, t: &Tensor| out.push((name, t.to_vec::<f32>().unwrap()));

    // 3,000 values in [-12, 12): both branches of every polynomial.
    let x = f32_input(&[3, 1000], 1, 6.0);
    let unary: [(&str, Op); 7] = [
        ("sigmoid", Tensor::sigmoid),
        ("tanh", Tensor::tanh),
        ("elu", |x| x.elu(1.0)),
        ("gelu", Tensor::gelu),
        ("exp", Tensor::exp),
        ("log", |x| x.abs()?.log()),
        ("relu", Tensor::relu),
    ];
    for (name, op) in unary {
        let var = Var::new(&x).unwrap();
        let y = op(&var.as_tensor()).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        record(name.to_string(), &y);
        record(format!("{name} gradient"), grads.get(&var).unwrap());
    }

    // Rows of 37 classes (not a multiple of any vector width).
    let logits = Var::new(&f32_input(&[50, 37], 2, 4.0)).unwrap();
    let targets = Tensor::from_vec((0..50).map(|i| (i * 7 % 37) as i64).collect(), [50]).unwrap();
    let cot = f32_input(&[50, 37], 3, 1.0);
    for log in [false, true] {
        let l = logits.as_tensor();
        let y = if log {
            l.log_softmax(-1)
        } else {
            l.softmax(-1)
        }
        .unwrap();
        let grads = y.mul(&cot).unwrap().sum_all().unwrap().backward().unwrap();
        record(format!("softmax (log: {log})"), &y);
        record(
            format!("softmax (log: {log}) gradient"),
            grads.get(&logits).unwrap(),
        );
    }
    let loss = logits
        .as_tensor()
        .cross_entropy(&targets, Reduction::Mean)
        .unwrap();
    record("cross-entropy".into(), &loss.reshape([1]).unwrap());
    record(
        "cross-entropy gradient".into(),
        loss.backward().unwrap().get(&logits).unwrap(),
    );

    // Each cell over 6 steps of a batch of 5, hidden 19.
    for cell in [
        RecurrentCell::RnnTanh,
        RecurrentCell::Lstm,
        RecurrentCell::Gru,
    ] {
        let (g, h) = (cell.gates(), 19);
        let gx = Var::new(&f32_input(&[5, 6, g * h], 4, 1.0)).unwrap();
        let w = Var::new(&f32_input(&[g * h, h], 5, 0.3)).unwrap();
        let c0 = cell.has_cell_state().then(|| f32_input(&[5, h], 6, 1.0));
        let (hs, _) = gx
            .as_tensor()
            .recurrence(cell, &w.as_tensor(), None, None, c0.as_ref(), None)
            .unwrap();
        let grads = hs
            .mul(&f32_input(&[5, 6, h], 7, 1.0))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        record(format!("{} states", cell.name()), &hs);
        record(
            format!("{} input gradient", cell.name()),
            grads.get(&gx).unwrap(),
        );
        record(
            format!("{} weight gradient", cell.name()),
            grads.get(&w).unwrap(),
        );
    }
    out
}

#[test]
fn avx512_and_avx2_give_the_same_bits_and_the_baseline_a_few_ulp_from_them() {
    let widest = SimdLevel::detected();
    let mut by_level = Vec::new();
    for level in SimdLevel::ALL.into_iter().filter(|&l| l <= widest) {
        assert_eq!(set_max_simd_level(level), level);
        assert_eq!(simd_level(), level);
        by_level.push((level, outputs()));
    }
    // A level above the CPU's gives the CPU's.
    assert_eq!(set_max_simd_level(SimdLevel::Avx512), widest);

    let (_, baseline) = &by_level[0];
    for (level, outputs) in &by_level[1..] {
        for ((name, got), (_, base)) in outputs.iter().zip(baseline) {
            if *level == SimdLevel::Avx512 {
                let (_, avx2) = &by_level[1];
                let avx2 = &avx2.iter().find(|(n, _)| n == name).unwrap().1;
                let same = got
                    .iter()
                    .zip(avx2)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name}: AVX-512 and AVX2 differ");
            }
            // Relative to each output's largest magnitude: a recurrence carries the rounding
            // differences through its steps, and a gradient sums over them.
            let scale = base.iter().fold(0f32, |m, v| m.max(v.abs())) as f64;
            for (i, (&a, &b)) in got.iter().zip(base).enumerate() {
                let err = (a as f64 - b as f64).abs();
                let allowed = 8.0 * f32::EPSILON as f64 * ((b as f64).abs() + 0.25 * scale);
                assert!(
                    err <= allowed || a.to_bits() == b.to_bits(),
                    "{name}[{i}]: {level} {a:e}, baseline {b:e}"
                );
            }
        }
    }
    if widest == SimdLevel::Baseline {
        eprintln!("this CPU has no AVX2: only the baseline level ran");
    }
}

//! gemm against faer on row-major f32 products `C = A·B`, one thread, alternated inside one
//! process. This is the measurement behind the small-product dispatch in
//! `crates/core/src/cpu/matmul.rs` (`FAER_MAX_ROWS`, `FAER_MIN_COLS`). Run it again on a new
//! kind of CPU before trusting those thresholds there.
//!
//! Usage: `cargo run --release -p nabla-core --example gemm_vs_faer -- [M,M,.. K,K,.. N,N,..]`
//! (default: the grid of `bench-results/gemm-small-m-faer-vs-gemm-2026-11-24.txt`, m in 8, 16,
//! 32, 64 by k and n in 9, 32, 72, 196, 784 and 32, 72, 196, 784). Prints one line per shape:
//! the median GFLOP/s of each over 7 alternated pairs, their ratio, and the largest difference
//! between their results relative to the largest value.

mod bench_common;
use bench_common::{exit_on_error, gemm_f32, gflops, median, operands, repetitions};

fn main() {
    exit_on_error("gemm_vs_faer [M,M,.. K,K,.. N,N,..]", run);
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let list = |text: &str, what: &str| -> Result<Vec<usize>, String> {
        text.split(',')
            .map(|v| match v.trim().parse::<usize>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(format!("{what} must be positive integers, got '{v}'")),
            })
            .collect()
    };
    let (ms, ks, ns) = match args.len() {
        0 => (
            vec![8, 16, 32, 64],
            vec![9, 32, 72, 196, 784],
            vec![32, 72, 196, 784],
        ),
        3 => (
            list(&args[0], "M")?,
            list(&args[1], "K")?,
            list(&args[2], "N")?,
        ),
        n => return Err(format!("expected 0 or 3 arguments, got {n}")),
    };
    println!(
        "# f32 C = A·B, row-major, one thread; gemm 0.19 against faer 0.24, 7 alternated pairs"
    );
    for &m in &ms {
        for &k in &ks {
            for &n in &ns {
                compare(m, k, n);
            }
        }
    }
    Ok(())
}

fn compare(m: usize, k: usize, n: usize) {
    let (a, b) = operands(m, k, n);
    let mut c_gemm = vec![0f32; m * n];
    let mut c_faer = vec![0f32; m * n];
    let with_gemm = |c: &mut [f32]| {
        // SAFETY: row-major strides that address exactly the m*k and k*n elements.
        unsafe {
            gemm_f32(
                (m, k, n),
                c,
                &a,
                (1, k),
                &b,
                (1, n),
                gemm::Parallelism::None,
            )
        }
    };
    let with_faer = |c: &mut [f32]| {
        let lhs = faer::MatRef::from_row_major_slice(&a, m, k);
        let rhs = faer::MatRef::from_row_major_slice(&b, k, n);
        let dst = faer::MatMut::from_row_major_slice_mut(c, m, n);
        faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, faer::Par::Seq);
    };
    with_gemm(&mut c_gemm);
    with_faer(&mut c_faer);
    let scale = c_gemm
        .iter()
        .fold(0f32, |s, v| s.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    let differ = c_gemm
        .iter()
        .zip(&c_faer)
        .fold(0f32, |d, (x, y)| d.max((x - y).abs()))
        / scale;
    // Enough repetitions for 0.05 s per timing.
    let reps = repetitions(0.05, || with_gemm(&mut c_gemm));
    let (mut gemm_rates, mut faer_rates) = (vec![], vec![]);
    for _ in 0..7 {
        gemm_rates.push(gflops((m, k, n), reps, || with_gemm(&mut c_gemm)));
        faer_rates.push(gflops((m, k, n), reps, || with_faer(&mut c_faer)));
    }
    let (g, f) = (median(&mut gemm_rates), median(&mut faer_rates));
    println!(
        "{m}x{k}x{n}: gemm {g:.1} faer {f:.1} GFLOP/s, faer/gemm {:.2}, relative difference {differ:.1e}",
        f / g
    );
}

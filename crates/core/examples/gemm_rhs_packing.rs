//! A/B of gemm's "pack the left operand" threshold, alternated inside one process so that host
//! noise and the pages the operands landed on hit both sides alike (across processes, 2048³ on
//! this 2-core host ranges 52–89 GFLOP/s with gemm's default).
//!
//! Usage: `cargo run --release -p nabla-core --example gemm_rhs_packing -- M K N FORM THREADS [THRESHOLD]`
//! with FORM one of `nn`, `nt` (B stored transposed) or `tn` (A stored transposed), and THRESHOLD
//! (default 56, nabla's setting) compared with gemm's default. Prints the median GFLOP/s of each
//! and the median of the 15 per-pair ratios.

mod bench_common;
use bench_common::{exit_on_error, gemm_f32, gflops, median, operands, repetitions};

fn main() {
    exit_on_error("gemm_rhs_packing M K N FORM THREADS [THRESHOLD]", run);
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(5..=6).contains(&args.len()) {
        return Err(format!("expected 5 or 6 arguments, got {}", args.len()));
    }
    let number = |i: usize, what: &str| -> Result<usize, String> {
        match args[i].parse::<usize>() {
            Ok(v) if v > 0 => Ok(v),
            _ => Err(format!(
                "{what} must be a positive integer, got '{}'",
                args[i]
            )),
        }
    };
    let (m, k, n) = (number(0, "M")?, number(1, "K")?, number(2, "N")?);
    let form = args[3].as_str();
    if !matches!(form, "nn" | "nt" | "tn") {
        return Err(format!("FORM must be nn, nt or tn, got '{form}'"));
    }
    let threads = number(4, "THREADS")?;
    let threshold = if args.len() == 6 {
        number(5, "THRESHOLD")?
    } else {
        56
    };

    let (a, b) = operands(m, k, n);
    let mut c = vec![0f32; m * n];
    // A is m x k row-major, or stored k x m for "tn"; B is k x n row-major, or stored n x k for
    // "nt".
    let a_strides = if form == "tn" { (m, 1) } else { (1, k) };
    let b_strides = if form == "nt" { (k, 1) } else { (1, n) };
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let mut product = || {
        // SAFETY: the strides above address exactly the m*k and k*n elements allocated.
        unsafe { gemm_f32((m, k, n), &mut c, &a, a_strides, &b, b_strides, parallelism) }
    };

    // Enough repetitions for 0.1 s per timing.
    let reps = repetitions(0.1, &mut product);
    let (mut default, mut packed, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..15 {
        let mut rates = [0.0; 2];
        for (rate, setting) in rates
            .iter_mut()
            .zip([gemm::DEFAULT_RHS_PACKING_THRESHOLD, threshold])
        {
            gemm::set_rhs_packing_threshold(setting);
            product();
            *rate = gflops((m, k, n), reps, &mut product);
        }
        default.push(rates[0]);
        packed.push(rates[1]);
        ratios.push(rates[1] / rates[0]);
    }
    println!(
        "{m}x{k}x{n} {form} threads={threads}: default {:.1} GFLOP/s, threshold {threshold} {:.1} GFLOP/s, ratio {:.3}",
        median(&mut default),
        median(&mut packed),
        median(&mut ratios)
    );
    Ok(())
}

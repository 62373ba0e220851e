//! A/B of gemm's "pack the left operand" threshold, alternated inside one process so that host
//! noise and the pages the operands landed on hit both sides alike (across processes, 2048³ on
//! this 2-core host ranges 52–89 GFLOP/s with gemm's default).
//!
//! Usage: `cargo run --release -p nabla-core --example gemm_rhs_packing -- M K N FORM THREADS [THRESHOLD]`
//! with FORM one of `nn`, `nt` (B stored transposed) or `tn` (A stored transposed), and THRESHOLD
//! (default 56, nabla's setting) compared with gemm's default. Prints the median GFLOP/s of each
//! and the median of the 15 per-pair ratios.

use std::time::Instant;

fn main() {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        eprintln!("usage: gemm_rhs_packing M K N FORM THREADS [THRESHOLD]");
        std::process::exit(2);
    }
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

    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let b: Vec<f32> = (0..k * n)
        .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let mut c = vec![0f32; m * n];
    // gemm's strides are (column, row): A is m x k row-major, or stored k x m for "tn"; B is
    // k x n row-major, or stored n x k for "nt".
    let (a_cs, a_rs) = if form == "tn" { (m, 1) } else { (1, k) };
    let (b_cs, b_rs) = if form == "nt" { (k, 1) } else { (1, n) };
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    let mut product = || {
        // SAFETY: the strides above address exactly the m*k, k*n and m*n elements allocated.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                a_cs as isize,
                a_rs as isize,
                b.as_ptr(),
                b_cs as isize,
                b_rs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            )
        }
    };

    // Enough repetitions for 0.1 s per timing.
    let mut reps = 1;
    loop {
        let start = Instant::now();
        (0..reps).for_each(|_| product());
        if start.elapsed().as_secs_f64() > 0.1 {
            break;
        }
        reps *= 2;
    }
    let gflop = 2.0 * (m * n * k) as f64 * reps as f64 / 1e9;
    let (mut default, mut packed, mut ratios) = (vec![], vec![], vec![]);
    for _ in 0..15 {
        let mut rates = [0.0; 2];
        for (rate, setting) in rates
            .iter_mut()
            .zip([gemm::DEFAULT_RHS_PACKING_THRESHOLD, threshold])
        {
            gemm::set_rhs_packing_threshold(setting);
            product();
            let start = Instant::now();
            (0..reps).for_each(|_| product());
            *rate = gflop / start.elapsed().as_secs_f64();
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

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

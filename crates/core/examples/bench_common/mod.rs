//! What the GEMM examples share: the exit on a usage error, the operands, one gemm call, and
//! the timing (repetitions calibrated once, medians).
#![allow(dead_code)]

use std::time::Instant;

/// Runs `run`; on an error prints it and `usage`, and exits with status 2.
pub fn exit_on_error(usage: &str, run: impl FnOnce() -> Result<(), String>) {
    if let Err(message) = run() {
        eprintln!("error: {message}");
        eprintln!("usage: {usage}");
        std::process::exit(2);
    }
}

/// Deterministic operands in [−0.5, 0.5): `m·k` values for A and `k·n` for B, whatever their
/// layout.
pub fn operands(m: usize, k: usize, n: usize) -> (Vec<f32>, Vec<f32>) {
    let a = (0..m * k)
        .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let b = (0..k * n)
        .map(|i| ((i * 104_729) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    (a, b)
}

/// `c = a · b` (m×k times k×n) through gemm. gemm's strides are (column, row): A row-major is
/// `(1, k)`, stored transposed `(m, 1)`; B row-major `(1, n)`, stored transposed `(k, 1)`.
///
/// # Safety
/// The strides must address only elements inside `a` and `b`; `c` holds `m·n` row-major.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_f32(
    (m, k, n): (usize, usize, usize),
    c: &mut [f32],
    a: &[f32],
    a_strides: (usize, usize),
    b: &[f32],
    b_strides: (usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert_eq!(c.len(), m * n, "the output holds m·n values");
    // SAFETY: the caller's strides stay inside a and b; c is m x n row-major.
    unsafe {
        gemm_raw(
            (m, k, n),
            c.as_mut_ptr(),
            n,
            a.as_ptr(),
            a_strides,
            b.as_ptr(),
            b_strides,
            parallelism,
        )
    }
}

/// [`gemm_f32`] on raw pointers: `c` is an m×n block of rows `c_rs` apart inside a larger
/// output, which lets threads write disjoint blocks of one matrix.
///
/// # Safety
/// Every element the strides address must lie inside the allocations `a`, `b` and `c` point
/// into, and no other thread may touch the block of `c` meanwhile.
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_raw(
    (m, k, n): (usize, usize, usize),
    c: *mut f32,
    c_rs: usize,
    a: *const f32,
    (a_cs, a_rs): (usize, usize),
    b: *const f32,
    (b_cs, b_rs): (usize, usize),
    parallelism: gemm::Parallelism,
) {
    // SAFETY: as the caller promises.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            c_rs as isize,
            false,
            a,
            a_cs as isize,
            a_rs as isize,
            b,
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
}

/// How many calls of `f` take more than `seconds` (a power of two).
pub fn repetitions(seconds: f64, mut f: impl FnMut()) -> usize {
    let mut reps = 1;
    loop {
        let start = Instant::now();
        (0..reps).for_each(|_| f());
        if start.elapsed().as_secs_f64() > seconds {
            return reps;
        }
        reps *= 2;
    }
}

/// GFLOP/s of `reps` calls of `f`, each an m×k·k×n product.
pub fn gflops((m, k, n): (usize, usize, usize), reps: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    (0..reps).for_each(|_| f());
    2.0 * (m * n * k) as f64 * reps as f64 / 1e9 / start.elapsed().as_secs_f64()
}

/// The median (the upper one of an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

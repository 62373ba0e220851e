//! Ways to run one f32 product on several threads, alternated inside one process: gemm's own
//! threading, the output's rows cut into one block per thread, its columns cut so, faer's
//! threading, the columns cut into one-thread faer products, and faer on the calling thread
//! alone (on one thread every way is a one-thread product). This is the measurement behind the
//! multi-thread dispatch in `crates/core/src/cpu/matmul.rs` (`SPLIT_MIN_ROWS`,
//! `SPLIT_MAX_B_BYTES`, `FAER_MIN_PARALLEL_PRODUCT` and `faer_matmul`'s column blocks) and
//! behind `FAER_MIN_DEPTH_TRANSPOSED_B`. Run it again on a new kind of CPU before trusting those
//! thresholds there.
//!
//! Usage: `cargo run --release -p nabla-core --example gemm_threads -- THREADS M,K,N,FORM ...`
//! with FORM one of `nn`, `nt` (B stored transposed) or `tn` (A stored transposed); by default
//! the shapes of `nabla bench core`. Prints per shape the median GFLOP/s of each way over 7
//! alternated rounds, and each one's median per-round ratio to gemm's own threading.

mod bench_common;
use bench_common::{exit_on_error, gemm_raw, gflops, median, operands, repetitions};
use rayon::prelude::*;

fn main() {
    exit_on_error("gemm_threads THREADS [M,K,N,FORM ...]", run);
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads = match args.first().map(|t| t.parse::<usize>()) {
        Some(Ok(t)) if t >= 1 => t,
        _ => return Err("THREADS must be a positive integer".into()),
    };
    let shapes: Vec<(usize, usize, usize, String)> = if args.len() > 1 {
        args[1..]
            .iter()
            .map(|s| shape(s))
            .collect::<Result<_, _>>()?
    } else {
        let mut v: Vec<_> = [256, 512, 1024, 2048]
            .map(|n| (n, n, n, "nn".to_string()))
            .into();
        for batch in [32, 128, 512] {
            v.push((batch, 784, 256, "nn".into()));
            v.push((784, batch, 256, "tn".into()));
            v.push((batch, 256, 784, "nt".into()));
        }
        v
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|e| e.to_string())?;
    // From one of the pool's threads, as nabla's commands run (`nabla::on_pool_thread`): the
    // caller takes part in the product, and the others must wake to help.
    let (tx, rx) = std::sync::mpsc::channel();
    println!(
        "# f32 C = A·B on {threads} threads, 7 alternated rounds: GFLOP/s (ratio to gemm's own threading)"
    );
    rayon::spawn(move || {
        for (m, k, n, form) in shapes {
            compare(threads, m, k, n, &form);
        }
        let _ = tx.send(());
    });
    rx.recv().map_err(|e| e.to_string())
}

fn shape(text: &str) -> Result<(usize, usize, usize, String), String> {
    let parts: Vec<&str> = text.split(',').collect();
    let bad = || format!("a shape is M,K,N,FORM (FORM nn, nt or tn), got '{text}'");
    if parts.len() != 4 || !matches!(parts[3], "nn" | "nt" | "tn") {
        return Err(bad());
    }
    let number = |s: &str| s.parse::<usize>().ok().filter(|v| *v > 0).ok_or_else(bad);
    Ok((
        number(parts[0])?,
        number(parts[1])?,
        number(parts[2])?,
        parts[3].to_string(),
    ))
}

/// `0..len` cut into one range per thread, each of whole `group`s but the last.
fn cut(len: usize, threads: usize, group: usize) -> Vec<(usize, usize)> {
    let step = len.div_ceil(threads).next_multiple_of(group);
    (0..len)
        .step_by(step)
        .map(|i| (i, (i + step).min(len)))
        .collect()
}

/// One way to compute the product into the output.
type Way<'a> = dyn Fn(&mut [f32]) + 'a;

/// A pointer shared by the threads that write disjoint parts of one output.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: each thread writes its own block of rows or columns, never another's.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

fn compare(threads: usize, m: usize, k: usize, n: usize, form: &str) {
    let (a, b) = operands(m, k, n);
    // gemm's strides are (column, row): A is m x k row-major, or stored k x m for "tn"; B is
    // k x n row-major, or stored n x k for "nt".
    let (a_cs, a_rs) = if form == "tn" { (m, 1) } else { (1, k) };
    let (b_cs, b_rs) = if form == "nt" { (k, 1) } else { (1, n) };
    let mut c = vec![0f32; m * n];
    // One call of gemm for the block of rows `r0..r1` and columns `j0..j1` of C.
    // SAFETY: the blocks lie inside the m x n output and the strides inside a and b.
    let block = |out: Out, (r0, r1): (usize, usize), (j0, j1): (usize, usize), par| unsafe {
        gemm_raw(
            (r1 - r0, k, j1 - j0),
            out.0.add(r0 * n + j0),
            n,
            a.as_ptr().add(r0 * a_rs),
            (a_cs, a_rs),
            b.as_ptr().add(j0 * b_cs),
            (b_cs, b_rs),
            par,
        )
    };
    let own = |c: &mut [f32]| {
        let par = if threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        block(Out(c.as_mut_ptr()), (0, m), (0, n), par)
    };
    // Row blocks of whole 8-row groups, as `cpu/matmul.rs` cuts them; column blocks of whole
    // 16-column groups (a microkernel's width on AVX-512), as `faer_matmul` does.
    let (row_blocks, column_blocks) = (cut(m, threads, 8), cut(n, threads, 16));
    let rows = |c: &mut [f32]| {
        let out = Out(c.as_mut_ptr());
        row_blocks
            .par_iter()
            .for_each(|&r| block(out, r, (0, n), gemm::Parallelism::None));
    };
    let columns = |c: &mut [f32]| {
        let out = Out(c.as_mut_ptr());
        column_blocks
            .par_iter()
            .for_each(|&j| block(out, (0, m), j, gemm::Parallelism::None));
    };
    // One call of faer for the block of rows `r0..r1` and columns `j0..j1` of C.
    // SAFETY: as for `block`.
    let faer_block = |out: Out, (r0, r1): (usize, usize), (j0, j1): (usize, usize), par| unsafe {
        let lhs = faer::MatRef::<f32>::from_raw_parts(
            a.as_ptr().add(r0 * a_rs),
            r1 - r0,
            k,
            a_rs as isize,
            a_cs as isize,
        );
        let rhs = faer::MatRef::<f32>::from_raw_parts(
            b.as_ptr().add(j0 * b_cs),
            k,
            j1 - j0,
            b_rs as isize,
            b_cs as isize,
        );
        let dst = faer::MatMut::<f32>::from_raw_parts_mut(
            out.0.add(r0 * n + j0),
            r1 - r0,
            j1 - j0,
            n as isize,
            1,
        );
        faer::linalg::matmul::matmul(dst, faer::Accum::Replace, lhs, rhs, 1.0f32, par);
    };
    let with_faer = |c: &mut [f32]| {
        let par = if threads > 1 {
            faer::Par::rayon(threads)
        } else {
            faer::Par::Seq
        };
        faer_block(Out(c.as_mut_ptr()), (0, m), (0, n), par)
    };
    let faer_columns = |c: &mut [f32]| {
        let out = Out(c.as_mut_ptr());
        column_blocks
            .par_iter()
            .for_each(|&j| faer_block(out, (0, m), j, faer::Par::Seq));
    };
    let faer_one = |c: &mut [f32]| faer_block(Out(c.as_mut_ptr()), (0, m), (0, n), faer::Par::Seq);
    let ways: [(&str, &Way); 6] = [
        ("gemm", &own),
        ("rows", &rows),
        ("columns", &columns),
        ("faer", &with_faer),
        ("faer-columns", &faer_columns),
        ("faer-1", &faer_one),
    ];
    // Every way computes the same product.
    own(&mut c);
    let want = c.clone();
    let scale = want.iter().fold(0f32, |s, v| s.max(v.abs()));
    for (name, way) in &ways[1..] {
        c.fill(f32::NAN);
        way(&mut c);
        let differ = c
            .iter()
            .zip(&want)
            .fold(0f32, |d, (x, y)| d.max((x - y).abs()));
        assert!(
            differ <= 1e-4 * scale,
            "{name} differs from gemm by {differ}"
        );
    }
    let reps = repetitions(0.05, || own(&mut c));
    let mut rates = vec![Vec::new(); ways.len()];
    for _ in 0..7 {
        for (i, (_, way)) in ways.iter().enumerate() {
            rates[i].push(gflops((m, k, n), reps, || way(&mut c)));
        }
    }
    let mut line = format!("{m}x{k}x{n} {form}:");
    for (i, (name, _)) in ways.iter().enumerate() {
        let mut ratios: Vec<f64> = rates[i].iter().zip(&rates[0]).map(|(x, g)| x / g).collect();
        let rate = median(&mut rates[i].clone());
        line += &format!(" {name} {rate:.0} ({:.2})", median(&mut ratios));
    }
    println!("{line}");
}

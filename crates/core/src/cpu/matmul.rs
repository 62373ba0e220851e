//! Matrix products. Large ones go to the `gemm` crate (runtime-selected AVX-512/AVX2 kernels);
//! tiny ones, where gemm's packing and dispatch cost more than the arithmetic, to a plain loop.
//! Operands are read through their strides, so transposed views are never copied.

use crate::dtype::Float;

/// One strided matrix operand: element `(r, c)` is at `data[offset + r * rs + c * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    pub data: &'a [T],
    pub offset: usize,
    pub rs: usize,
    pub cs: usize,
}

/// Products with at most this many multiply-adds use the plain loop (measured: gemm's fixed cost
/// is about that of a 16x16x16 product).
const SMALL_PRODUCT: usize = 16 * 16 * 16;

/// `c = a · b` for an `m x k` and a `k x n` operand, into a contiguous row-major `m x n` buffer.
/// `threads` is the parallelism handed to gemm (1 = the calling thread only).
pub(crate) fn matmul_into<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    threads: usize,
) {
    debug_assert_eq!(c.len(), m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(T::zero());
        return;
    }
    check_bounds(m, k, &a);
    check_bounds(k, n, &b);
    if m * n * k <= SMALL_PRODUCT {
        small_matmul(m, n, k, a, b, c);
        return;
    }
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `check_bounds` proved every element the product reads lies inside `a.data` and
    // `b.data`; `c` holds exactly m*n elements written at row stride n, column stride 1.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr().add(a.offset),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr().add(b.offset),
            b.cs as isize,
            b.rs as isize,
            T::zero(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Panics (an internal bug, never user input: shapes are validated by the op) if a strided
/// operand would read past its buffer.
fn check_bounds<T>(rows: usize, cols: usize, x: &MatRef<'_, T>) {
    let last = x.offset + (rows - 1) * x.rs + (cols - 1) * x.cs;
    assert!(
        last < x.data.len(),
        "matmul kernel: operand out of bounds ({last} >= {})",
        x.data.len()
    );
}

/// The i-p-j loop: the innermost loop runs along a row of `b` and of `c`, which vectorizes when
/// `b` is row-contiguous.
fn small_matmul<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
) {
    c.fill(T::zero());
    for i in 0..m {
        let row = &mut c[i * n..(i + 1) * n];
        for p in 0..k {
            let av = a.data[a.offset + i * a.rs + p * a.cs];
            let base = b.offset + p * b.rs;
            if b.cs == 1 {
                let brow = &b.data[base..base + n];
                for (o, &bv) in row.iter_mut().zip(brow) {
                    *o += av * bv;
                }
            } else {
                for (j, o) in row.iter_mut().enumerate() {
                    *o += av * b.data[base + j * b.cs];
                }
            }
        }
    }
}

//! Matrix products, each sent to the kernel measured fastest for its shape (f32; on the AVX2, Zen 4
//! and Zen 5 hosts, as each constant below says):
//! - tiny products, where any library's packing and dispatch cost more than the arithmetic, to a
//!   plain loop;
//! - products with few output rows and not too few columns (a batch of 16–64 against a weight
//!   matrix: MLP and recurrent steps and their backward passes; a convolution's per-sample
//!   products) to `faer`, whose small-m kernels run them 10–30% faster than `gemm`'s
//!   (32x256·256x784 with B transposed: 75 against 62 GFLOP/s; the LSTM step 32x128·128x512:
//!   81 against 69);
//! - products whose B is stored transposed and not shallow, at any size, to `faer` too: gemm
//!   reads such a B slowly (Zen 4: 128x1024·1024x784 at 50 GFLOP/s against faer's 95);
//! - everything else to `gemm` (runtime-selected AVX-512/AVX2 kernels), level with or ahead of
//!   faer there (2048³: 87 against 82).
//!
//! On several threads a faer product is cut into one column block per thread, each a one-thread
//! product, and a gemm product with a small B into row blocks ([`split_rows`]); the others use
//! gemm's own threading.
//!
//! Operands are read through their strides, so transposed views are never copied.

use std::any::TypeId;
use std::mem::MaybeUninit;

use rayon::prelude::*;

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

/// Products with at most this many output rows go to faer (measured: level at 128 rows, faer
/// ahead from 64 rows down)...
const FAER_MAX_ROWS: usize = 64;
/// ...if they have at least this many output columns. Over m ∈ {8..64}, k ∈ {9..196} and
/// n ∈ {32, 72, 196, 784} (`bench-results/gemm-small-m-faer-vs-gemm-2026-11-24.txt`), gemm won
/// 15 of the 16 shapes with n = 32 (faer at 0.65–0.96 of it) and faer most with n ≥ 72,
/// by up to 1.8x (the CNN's per-sample 16x196·196x72: 78 against 45 GFLOP/s). On an AVX-512
/// host (`examples/gemm_vs_faer.rs`, `bench-results/gemm-small-m-faer-vs-gemm-avx512-2026-11-24.txt`)
/// the rule picked the faster library in 62 of 80 shapes. faer still won with n = 72 and 196
/// (1.1–2.9x). gemm won with 16–32 rows and n = 784, where faer ran at 0.82–0.97 of it, and
/// faer won some 8-row shapes with n = 32.
const FAER_MIN_COLS: usize = 64;
/// Products whose B is stored transposed (each of its columns contiguous: `X·Wᵀ`, `∂Y·Wᵀ`)
/// and at least this deep go to faer at any size. gemm's kernels read such a B slowly, the more
/// so the deeper it is: on a Zen 4 host (AVX-512, `examples/gemm_threads.rs`,
/// `bench-results/gemm-transposed-b-2026-12-07.md`) over m ∈ {32, 128, 512, 2048},
/// k ∈ {64, 256, 1024} and n ∈ {64, 256, 784, 2048}, faer ran those with k ≥ 256 at 0.98–4.8x
/// gemm's rate on one thread (128x1024x784: 95 against 50 GFLOP/s) and 1.0–4.8x on two,
/// while with k = 64 two threads were a toss-up (0.66–2.2x).
const FAER_MIN_DEPTH_TRANSPOSED_B: usize = 128;
/// Products sent to faer run on several threads (column blocks, see [`faer_matmul`]) from this
/// many multiply-adds; smaller ones on the calling thread. On two threads (Zen 4, two runs)
/// 32x128·128x256 ran at 157–193 GFLOP/s in two blocks against 108 on one thread, while half its
/// size, 32x64·64x256, was level (97–166 against 105).
const FAER_MIN_PARALLEL_PRODUCT: usize = 32 * 128 * 256;
/// On several threads, products that give each thread at least this many output rows...
const SPLIT_MIN_ROWS: usize = 64;
/// ...and whose right operand B (which every thread then reads whole) is at most this large
/// are split by rows ([`split_rows`]) rather than handed to gemm's own threading.
const SPLIT_MAX_B_BYTES: usize = 256 << 10;

/// gemm computes a row-major `C = A·B` as `Cᵀ = Bᵀ·Aᵀ`, and copies ("packs") `A` into
/// cache-sized panels only when `C` has more than this many times its microkernel's rows (16 for
/// f32 on AVX2) columns; below that it reads `A`'s rows in place. Its default, 128, leaves `A`
/// unpacked up to 2048 columns, where rows a power of two apart fall into the same cache sets:
/// 2048³ then runs at 52–89 GFLOP/s from one process to the next, as the pages land. Packing
/// from 896 columns up was measured, alternated in one process with gemm's default
/// (`bench-results/gemm-rhs-packing-2026-11-24.md`): 0.99–1.10x on the shapes with more than
/// 896 columns, never below the 0.98–1.01 of shapes the setting does not touch (2048³: 1.09x on
/// one thread, 1.10x on two), while packing from 256 columns cost 2–4% on 512³ and on
/// 512x256·256x784. On an AVX-512 host (Zen 5) the setting is level with the default:
/// 0.99–1.00 on seven shapes up to 2048³ and 1024x1024·1024x4096.
const GEMM_RHS_PACKING_THRESHOLD: usize = 56;

/// `c = a · b` for an `m x k` and a `k x n` operand, into a contiguous row-major `m x n` buffer.
/// `threads` is the parallelism handed to the library kernel (1 = the calling thread only).
pub(crate) fn matmul_into<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [T],
    threads: usize,
) {
    // SAFETY: an initialized `T` is a valid `MaybeUninit<T>`, and `matmul_uninit` stores only
    // initialized values, so `c` stays initialized.
    let c = unsafe { &mut *(c as *mut [T] as *mut [MaybeUninit<T>]) };
    matmul_uninit(m, n, k, a, b, c, threads);
}

/// [`matmul_into`] into a buffer that need not be initialized: every element of `c` is written
/// and none is read, so a fresh product skips zeroing its output (a tenth of a 784x32x256
/// product's time).
pub(crate) fn matmul_uninit<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    threads: usize,
) {
    assert_eq!(c.len(), m * n, "matmul kernel: output of the wrong length");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        c.fill(MaybeUninit::new(T::zero()));
        return;
    }
    check_bounds(m, k, &a);
    check_bounds(k, n, &b);
    let product = m * n * k;
    if product <= SMALL_PRODUCT {
        small_matmul((m, n, k), a, b, c);
        return;
    }
    let transposed_b = b.rs == 1 && b.cs != 1;
    if (m <= FAER_MAX_ROWS && n >= FAER_MIN_COLS)
        || (transposed_b && k >= FAER_MIN_DEPTH_TRANSPOSED_B)
    {
        let threads = if product >= FAER_MIN_PARALLEL_PRODUCT {
            threads
        } else {
            1
        };
        if faer_matmul((m, n, k), a, b, c, threads) {
            return;
        }
    }
    if threads > 1 && m >= threads * SPLIT_MIN_ROWS && k * n * size_of::<T>() <= SPLIT_MAX_B_BYTES {
        split_rows((m, n, k), a, b, c, threads);
        return;
    }
    static PACKING: std::sync::Once = std::sync::Once::new();
    PACKING.call_once(|| gemm::set_rhs_packing_threshold(GEMM_RHS_PACKING_THRESHOLD));
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `check_bounds` proved every element the product reads lies inside `a.data` and
    // `b.data`; `c` holds exactly m*n elements written at row stride n, column stride 1, and
    // with `read_dst` false gemm writes them without reading them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr().cast::<T>(),
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

/// `c = a · b` with the output's rows cut into one block per thread, each block a product of
/// its own on one thread. Measured on two threads against gemm's own threading (4 alternated
/// runs): an MLP's weight gradient Xᵀ·∂Y with batch 32, 784x32·32x256, ran 17–20% faster
/// (142–144 GFLOP/s against 118–122), with batch 128 6–8% faster; products whose B holds
/// 512 KB or more were level (784x512·512x256, 1024³) or 5–10% slower (128x256·256x784 with B
/// transposed): each thread reads all of B, which then no longer fits its core's L2.
fn split_rows<T: Float>(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    threads: usize,
) {
    // Blocks of whole 8-row groups, so that no block ends in a ragged microkernel tile.
    let block = m.div_ceil(threads).next_multiple_of(8);
    c.par_chunks_mut(block * n)
        .enumerate()
        .for_each(|(i, c_block)| {
            let a_block = MatRef {
                offset: a.offset + i * block * a.rs,
                ..a
            };
            matmul_uninit(c_block.len() / n, n, k, a_block, b, c_block, 1);
        });
}

/// `c = a · b` for `(m, n, k)` through faer, for `f32` and `f64`; false (nothing written) for
/// other types. On several threads the output's columns are cut into one block per thread
/// (whole 16-column groups), each a one-thread faer product: faer's own threading, called from
/// a pool thread as nabla's work is, ran these products at 0.4–0.9x of the one-thread blocks
/// (Zen 4, `examples/gemm_threads.rs`: 32x784·784x256 133 against 209 GFLOP/s, the
/// transposed-B 128x256·256x784 191 against 212).
fn faer_matmul<T: Float>(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
    threads: usize,
) -> bool {
    let supported = [TypeId::of::<f32>(), TypeId::of::<f64>()];
    if !supported.contains(&TypeId::of::<T>()) {
        return false;
    }
    assert_eq!(c.len(), m * n, "matmul kernel: output of the wrong length");
    /// The output, shared by the threads that write its disjoint column blocks.
    #[derive(Clone, Copy)]
    struct Output<T>(*mut MaybeUninit<T>);
    // SAFETY: each thread writes only its own columns of the output (below).
    unsafe impl<T> Send for Output<T> {}
    unsafe impl<T> Sync for Output<T> {}
    impl<T> Output<T> {
        /// Column `j` of the first row (a method, so that closures capture the whole wrapper).
        fn column(self, j: usize) -> *mut MaybeUninit<T> {
            self.0.wrapping_add(j)
        }
    }
    let out = Output(c.as_mut_ptr());
    let step = n.div_ceil(threads.max(1)).next_multiple_of(16);
    let block = |j: usize| {
        let (j0, j1) = (j * step, ((j + 1) * step).min(n));
        let b = MatRef {
            offset: b.offset + j0 * b.cs,
            ..b
        };
        // SAFETY: the block is rows 0..m, columns j0..j1 of the m x n output `c` (row stride n),
        // which no other block touches, and `c` outlives the call.
        unsafe { faer_block((m, j1 - j0, k), a, b, out.column(j0), n) };
    };
    if step >= n {
        block(0);
    } else {
        (0..n.div_ceil(step)).into_par_iter().for_each(block);
    }
    true
}

/// `c = a · b` for `(m, n, k)` on the calling thread through faer, into the `m x n` block at `c`
/// whose rows lie `row_stride` elements apart, for `f32` and `f64` (nothing for other types).
///
/// # Safety
/// `c` must point to such a block inside one allocation that nothing else reads or writes
/// during the call.
unsafe fn faer_block<T: Float>(
    shape: (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: *mut MaybeUninit<T>,
    row_stride: usize,
) {
    // SAFETY: as the caller promises; `cast` only renames T as the same type.
    unsafe {
        if let (Some(a), Some(b)) = (cast::<T, f32>(a), cast(b)) {
            faer_product(shape, a, b, c.cast(), row_stride);
        } else if let (Some(a), Some(b)) = (cast::<T, f64>(a), cast(b)) {
            faer_product(shape, a, b, c.cast(), row_stride);
        }
    }
}

/// `c = a · b` for `(m, n, k)` through faer on the calling thread, with every element either
/// operand addresses inside its buffer (`check_bounds`).
///
/// # Safety
/// As [`faer_block`].
unsafe fn faer_product<E: faer::traits::ComplexField + Copy>(
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_, E>,
    b: MatRef<'_, E>,
    c: *mut E,
    row_stride: usize,
) {
    check_bounds(m, k, &a);
    check_bounds(k, n, &b);
    // SAFETY: the bounds checks above prove that every element the views address lies inside
    // the borrowed buffers, which outlive this call; the caller gives `c` to this call alone,
    // and `Accum::Replace` writes it without reading it.
    unsafe {
        let view = |x: MatRef<'_, E>, rows, cols| {
            faer::MatRef::<E>::from_raw_parts(
                x.data.as_ptr().add(x.offset),
                rows,
                cols,
                x.rs as isize,
                x.cs as isize,
            )
        };
        let dst = faer::MatMut::<E>::from_raw_parts_mut(c, m, n, row_stride as isize, 1);
        faer::linalg::matmul::matmul(
            dst,
            faer::Accum::Replace,
            view(a, m, k),
            view(b, k, n),
            E::one_impl(),
            faer::Par::Seq,
        );
    }
}

/// The operand as one of element type `E`, if `T` is `E`.
fn cast<T: 'static, E: 'static>(x: MatRef<'_, T>) -> Option<MatRef<'_, E>> {
    (TypeId::of::<T>() == TypeId::of::<E>()).then(|| MatRef {
        // SAFETY: T and E are the same type.
        data: unsafe { std::slice::from_raw_parts(x.data.as_ptr().cast(), x.data.len()) },
        offset: x.offset,
        rs: x.rs,
        cs: x.cs,
    })
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
    (m, n, k): (usize, usize, usize),
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
    c: &mut [MaybeUninit<T>],
) {
    c.fill(MaybeUninit::new(T::zero()));
    // SAFETY: every element was initialized just above.
    let c = unsafe { &mut *(c as *mut [MaybeUninit<T>] as *mut [T]) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An operand of `rows x cols` in one of the layouts a tensor view can have, filled with
    /// distinct values, returned with its reference values in row-major order.
    fn operand(
        rows: usize,
        cols: usize,
        layout: usize,
        seed: usize,
    ) -> (MatRef<'static, f64>, Vec<f64>) {
        let value = |r: usize, c: usize| (((r * 31 + c * 17 + seed * 7) % 23) as f64 - 11.0) / 8.0;
        let (len, offset, rs, cs) = match layout {
            0 => (rows * cols, 0, cols, 1),               // contiguous
            1 => (rows * cols, 0, 1, rows),               // transposed view
            2 => (cols + 3, 3, 0, 1),                     // one row broadcast to all rows
            _ => (5 + rows * (cols + 2), 5, cols + 2, 1), // a narrowed view: offset, padded rows
        };
        let mut data = vec![f64::NAN; len];
        for r in 0..rows {
            for c in 0..cols {
                data[offset + r * rs + c * cs] = value(if rs == 0 { 0 } else { r }, c);
            }
        }
        let dense = (0..rows * cols)
            .map(|i| data[offset + (i / cols) * rs + (i % cols) * cs])
            .collect();
        let data: &'static [f64] = Box::leak(data.into_boxed_slice());
        (
            MatRef {
                data,
                offset,
                rs,
                cs,
            },
            dense,
        )
    }

    fn to_f32(x: MatRef<'static, f64>) -> MatRef<'static, f32> {
        let data: Vec<f32> = x.data.iter().map(|&v| v as f32).collect();
        MatRef {
            data: Box::leak(data.into_boxed_slice()),
            offset: x.offset,
            rs: x.rs,
            cs: x.cs,
        }
    }

    /// Every kernel path (plain loop, faer's few-row shapes, gemm; one and two threads) gives the
    /// textbook product for every operand layout, in f64 and f32.
    #[test]
    fn every_kernel_path_matches_the_textbook_product() {
        // (m, k, n): plain loop, faer sequential (twice), faer parallel, gemm (m > 64), gemm
        // (n < 64); on two threads, just under the row split, and split into two 64-row
        // blocks, into 72 + 59 rows (the last block to faer), and into 104 + 96 rows.
        let mut shapes = vec![
            (5, 7, 3),
            (8, 9, 100),
            (32, 64, 128),
            (64, 256, 256),
            (96, 80, 70),
            (40, 20, 20),
            (127, 9, 20),
            (128, 9, 20),
            (131, 17, 70),
            (200, 33, 3),
            // Both sides of gemm's packing of A (`GEMM_RHS_PACKING_THRESHOLD` times the
            // microkernel's rows: 896 columns in f32, 448 in f64 on AVX2).
            (70, 33, 448),
            (70, 33, 449),
            (70, 9, 896),
            (70, 9, 897),
            // Both sides of the depth from which a transposed B goes to faer at any size.
            (96, 127, 70),
            (96, 128, 70),
            (200, 130, 90),
            // faer on two threads: column blocks of 64 and 36, and (B transposed) of 16 and 4.
            (40, 300, 100),
            (300, 200, 20),
        ];
        // Both sides of every dispatch boundary (rows 64, columns 64, the plain loop's size),
        // with a depth of 1 and an odd one.
        for m in [1, 63, 64, 65] {
            for n in [63, 64, 65, 130] {
                for k in [1, 17] {
                    shapes.push((m, k, n));
                }
            }
        }
        for &(m, k, n) in &shapes {
            for la in 0..4 {
                for lb in 0..4 {
                    let (a, ad) = operand(m, k, la, 1);
                    let (b, bd) = operand(k, n, lb, 2);
                    let mut expected = vec![0.0; m * n];
                    for i in 0..m {
                        for j in 0..n {
                            expected[i * n + j] =
                                (0..k).map(|p| ad[i * k + p] * bd[p * n + j]).sum();
                        }
                    }
                    for threads in [1, 2] {
                        let mut c = vec![f64::NAN; m * n];
                        matmul_into(m, n, k, a, b, &mut c, threads);
                        for (got, want) in c.iter().zip(&expected) {
                            assert!(
                                (got - want).abs() <= 1e-12 * (1.0 + want.abs()),
                                "f64 {m}x{k}x{n} layouts {la}/{lb}: {got} != {want}"
                            );
                        }
                        let mut c32 = vec![f32::NAN; m * n];
                        matmul_into(m, n, k, to_f32(a), to_f32(b), &mut c32, threads);
                        for (got, want) in c32.iter().zip(&expected) {
                            assert!(
                                (*got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                                "f32 {m}x{k}x{n} layouts {la}/{lb}: {got} != {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}

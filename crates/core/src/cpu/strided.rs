//! Walking strided layouts: adjacent dims that are laid out contiguously for every operand are
//! merged first, so that the innermost loop is as long as possible (usually the whole tensor).

use super::PARALLEL_THRESHOLD;
use crate::layout::Layout;
use rayon::prelude::*;
use smallvec::SmallVec;

type Merged<const N: usize> = SmallVec<[(usize, [usize; N]); 6]>;

/// Merges dims of `shape` (outermost first) that are contiguous in all operands, dropping
/// extent-1 dims. Returns (extent, strides per operand) pairs, outermost first.
fn merge_dims<const N: usize>(shape: &[usize], strides: [&[usize]; N]) -> Merged<N> {
    let mut merged: Merged<N> = SmallVec::new();
    for i in (0..shape.len()).rev() {
        let extent = shape[i];
        if extent == 1 {
            continue;
        }
        let s: [usize; N] = std::array::from_fn(|k| strides[k][i]);
        if let Some((inner_extent, inner_strides)) = merged.last_mut()
            && (0..N).all(|k| s[k] == inner_strides[k] * *inner_extent)
        {
            *inner_extent *= extent;
            continue;
        }
        merged.push((extent, s));
    }
    merged.reverse();
    merged
}

/// Calls `f(offsets, len, strides)` for every run along the innermost merged dim, in row-major
/// order of the (common) shape. `offsets` are the starting positions in each operand.
pub(crate) fn for_each_run<const N: usize>(
    shape: &[usize],
    strides: [&[usize]; N],
    starts: [usize; N],
    mut f: impl FnMut([usize; N], usize, [usize; N]),
) {
    if shape.contains(&0) {
        return;
    }
    let merged = merge_dims(shape, strides);
    let Some(&(inner_len, inner_strides)) = merged.last() else {
        f(starts, 1, [0; N]);
        return;
    };
    let outer = &merged[..merged.len() - 1];
    let mut index: SmallVec<[usize; 6]> = SmallVec::from_elem(0, outer.len());
    let mut offsets = starts;
    loop {
        f(offsets, inner_len, inner_strides);
        // Odometer increment over the outer dims.
        let mut d = outer.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            let (extent, strides) = outer[d];
            offsets.iter_mut().zip(strides).for_each(|(o, s)| *o += s);
            if index[d] < extent {
                break;
            }
            offsets
                .iter_mut()
                .zip(strides)
                .for_each(|(o, s)| *o -= s * extent);
            index[d] = 0;
        }
    }
}

/// The elements of a strided view, copied out in row-major order.
pub(crate) fn gather<T: Copy>(src: &[T], layout: &Layout) -> Vec<T> {
    let mut out = Vec::with_capacity(layout.shape.elem_count());
    for_each_run(
        layout.shape.dims(),
        [layout.strides()],
        [layout.offset],
        |[o], len, [s]| extend_with_run(&mut out, src, o, len, s),
    );
    out
}

/// Appends the `len` elements of `src` from `at`, `step` apart, to `out`. A contiguous run is
/// one copy; a broadcast run (`step` 0: one value repeated) a fill, where an indexed loop would
/// read the value `len` times with a bounds check each.
#[inline(always)]
fn extend_with_run<T: Copy>(out: &mut Vec<T>, src: &[T], at: usize, len: usize, step: usize) {
    match step {
        1 => out.extend_from_slice(&src[at..at + len]),
        0 => out.resize(out.len() + len, src[at]),
        _ => out.extend((0..len).map(|i| src[at + i * step])),
    }
}

/// Element `i` of each of `N` slices. A plain loop the compiler unrolls (`array::from_fn`'s
/// drop guard kept elementwise loops from vectorizing).
#[inline(always)]
pub(crate) fn at<T: Copy, const N: usize>(slices: &[&[T]; N], i: usize) -> [T; N] {
    let mut out = [slices[0][i]; N];
    for k in 1..N {
        out[k] = slices[k][i];
    }
    out
}

/// `f` applied elementwise to N operands that all have the layout's shape (broadcast views
/// included), giving a contiguous result. Contiguous operands take a flat (and, when large,
/// parallel) loop.
pub(crate) fn map_n<T, U, const N: usize>(
    srcs: [(&[T], &Layout); N],
    f: impl Fn([T; N]) -> U + Sync + Send,
) -> Vec<U>
where
    T: Copy + Send + Sync,
    U: Copy + Send + Sync + Default,
{
    let shape = srcs[0].1.shape.dims();
    let n: usize = shape.iter().product();
    let contiguous: Option<[&[T]; N]> = srcs
        .iter()
        .all(|(_, l)| l.is_contiguous())
        .then(|| std::array::from_fn(|k| &srcs[k].0[srcs[k].1.offset..srcs[k].1.offset + n]));
    if let Some(flat) = contiguous {
        if n >= PARALLEL_THRESHOLD {
            let mut out: Vec<U> = Vec::with_capacity(n);
            const CHUNK: usize = 1 << 14;
            out.spare_capacity_mut()[..n]
                .par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(c, chunk)| {
                    let base = c * CHUNK;
                    let parts: [&[T]; N] = std::array::from_fn(|k| &flat[k][base..][..chunk.len()]);
                    for (i, slot) in chunk.iter_mut().enumerate() {
                        slot.write(f(at(&parts, i)));
                    }
                });
            // SAFETY: the chunks cover all n elements, each written above.
            unsafe { out.set_len(n) };
            return out;
        }
        let mut out = Vec::with_capacity(n);
        for (i, slot) in out.spare_capacity_mut()[..n].iter_mut().enumerate() {
            slot.write(f(at(&flat, i)));
        }
        // SAFETY: the loop above initialized all n elements.
        unsafe { out.set_len(n) };
        return out;
    }
    let mut out: Vec<U> = Vec::with_capacity(n);
    let slots = &mut out.spare_capacity_mut()[..n];
    let mut written = 0;
    let strides: [&[usize]; N] = std::array::from_fn(|k| srcs[k].1.strides());
    let starts: [usize; N] = std::array::from_fn(|k| srcs[k].1.offset);
    // Runs of an operand that is not contiguous along them (a broadcast one, stride 0, as
    // LayerNorm's statistics along a row; a transposed one) are copied here first, so that
    // the loop below always reads slices and vectorizes (element by element, with an index
    // computed per operand, `(a * b).sum()` forward + backward took 3x as long).
    let mut copies: [Vec<T>; N] = std::array::from_fn(|_| Vec::new());
    for_each_run(shape, strides, starts, |offsets, len, inner| {
        let dst = &mut slots[written..][..len];
        written += len;
        for k in 0..N {
            if inner[k] != 1 {
                copies[k].clear();
                extend_with_run(&mut copies[k], srcs[k].0, offsets[k], len, inner[k]);
            }
        }
        // Slices of exactly `len`, so the loop has no bounds checks and vectorizes.
        let runs: [&[T]; N] = std::array::from_fn(|k| {
            if inner[k] == 1 {
                &srcs[k].0[offsets[k]..][..len]
            } else {
                &copies[k][..]
            }
        });
        for (i, slot) in dst.iter_mut().enumerate() {
            slot.write(f(at(&runs, i)));
        }
    });
    assert_eq!(written, n, "strided walk covered {written} of {n} elements");
    // SAFETY: the runs cover the shape exactly once, so all n elements were written (checked).
    unsafe { out.set_len(n) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;

    #[test]
    fn merge_collapses_contiguous_dims() {
        let l = Layout::contiguous(Shape::from([2, 3, 4]));
        let m = merge_dims(l.shape.dims(), [l.strides()]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].0, 24);
    }

    #[test]
    fn gather_reads_a_transposed_view() {
        let src: Vec<i32> = (0..6).collect();
        let l = Layout::contiguous(Shape::from([2, 3])).permuted(&[1, 0]);
        assert_eq!(gather(&src, &l), vec![0, 3, 1, 4, 2, 5]);
    }
}

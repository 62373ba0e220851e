//! The recurrence of an RNN, LSTM or GRU layer over a whole sequence, as one op, and its
//! backward: backpropagation through time.
//!
//! The input projection `W_ih x_t + b_ih` has no dependence between steps, so the layer computes
//! it for all steps at once (one large GEMM, an ordinary `matmul`) and hands it in. This op runs
//! the part that is sequential: per step one `[batch, hidden] x [hidden, gates·hidden]` GEMM
//! and a fused pass over the gates. On several threads the batch's sequences, which are
//! independent, run as one group per thread ([`Sizes::groups`]). Backward walks the steps in reverse carrying `∂L/∂h` (and
//! `∂L/∂c`), and forms `∂L/∂W_hh = Σ_t ∂L/∂hh_tᵀ h_{t−1}` as a single GEMM over all steps.

use crate::autograd::{Backward, InputGrads};
use crate::cpu::matmul::{MatRef, matmul_into};
pub use crate::cpu::recurrent::RecurrentCell;
use crate::cpu::recurrent::{StepBackward, StepForward};
use crate::dtype::{Element, Float};
use crate::tensor::float_dispatch;
use crate::{Error, Result, Shape, Tensor};
use rayon::prelude::*;
use smallvec::smallvec;
use std::ops::Range;

/// The sizes of one recurrence: batch, steps, hidden units, gates.
#[derive(Clone, Copy)]
struct Sizes {
    b: usize,
    t: usize,
    h: usize,
    g: usize,
}

/// When the batch runs as one group (fewer than 16 sequences), a step's `[batch, hidden] x
/// [hidden, gates·hidden]` product with at least this many multiply-adds is split over the
/// threads; below it the split costs more than it saves
/// (the peers' LSTM, 32 x 128 x 512 = 2.1 M, was fastest on one thread; measured on the
/// character model's 64 x 256 x 1024 = 16.8 M: an epoch 9% faster on two threads).
const STEP_PARALLEL_WORK: usize = 1 << 23;

/// A recurrence of at least this many multiply-adds over all its steps (batch · time ·
/// gates·hidden · hidden) runs as groups of sequences on several threads ([`Sizes::groups`]):
/// there is one fork-join per pass, so little work pays for it. Measured on two threads
/// against the product split below: the peers' LSTM (32 x 50 steps, hidden 128: 105 M)
/// 2,000 → 3,500 samples/s, GRU +70%, tanh RNN +75%; the character model (64 x 100 steps,
/// hidden 256: 1.7 G) +33%; japanese_vowels' LSTM (16 x 29 x 64: 7.6 M) trains in 1.9–2.1 s
/// instead of 2.7 s.
const GROUPS_MIN_WORK: usize = 1 << 20;
/// A group of sequences run on a thread of its own has at least this many; a smaller batch
/// runs as one group, splitting each step's product instead when that is large.
const MIN_GROUP_SEQUENCES: usize = 8;

impl Sizes {
    /// Threads for one step's product (see [`STEP_PARALLEL_WORK`]).
    fn step_threads(self) -> usize {
        if self.b * self.gh() * self.h >= STEP_PARALLEL_WORK {
            rayon::current_num_threads()
        } else {
            1
        }
    }

    /// How the batch is run on several threads: the sequences are independent, so a large
    /// recurrence is cut into one group of whole sequences per thread, each group stepping
    /// through time on its own with one-thread products. This needs no synchronization
    /// between steps (one per step when each step's product is split instead) and runs the
    /// gate loops in parallel too. One group when the work is small or the batch is.
    /// Returns the groups' sequences and the threads for each step's product.
    fn groups(self) -> (Vec<Range<usize>>, usize) {
        let threads = if self.b * self.t * self.gh() * self.h >= GROUPS_MIN_WORK {
            rayon::current_num_threads()
        } else {
            1
        };
        let groups = threads.min(self.b / MIN_GROUP_SEQUENCES).max(1);
        let rows = self.b.div_ceil(groups);
        let ranges: Vec<_> = (0..self.b)
            .step_by(rows)
            .map(|n| n..(n + rows).min(self.b))
            .collect();
        let product_threads = if ranges.len() == 1 {
            self.step_threads()
        } else {
            1
        };
        (ranges, product_threads)
    }

    /// Values per sequence of the forward pass's `extra` (none for the plain RNN).
    fn extra_per_sequence(self) -> usize {
        if self.g == 1 { 0 } else { self.t * self.h }
    }

    /// The same sizes for `rows` of the sequences.
    fn with_batch(self, rows: usize) -> Sizes {
        Sizes { b: rows, ..self }
    }

    fn gh(self) -> usize {
        self.g * self.h
    }
}

/// The sequences `rows` of a buffer that holds `per_sequence` values for each.
fn sequences<'a, T>(x: &'a [T], per_sequence: usize, rows: &Range<usize>) -> &'a [T] {
    &x[rows.start * per_sequence..rows.end * per_sequence]
}

/// A buffer of `per_sequence` values per sequence cut into the groups' parts (all empty when
/// `per_sequence` is 0: a buffer the cell does not use).
fn split_sequences<'a, T>(
    mut x: &'a mut [T],
    per_sequence: usize,
    groups: &[Range<usize>],
) -> Vec<&'a mut [T]> {
    groups
        .iter()
        .map(|rows| {
            let (part, rest) = std::mem::take(&mut x).split_at_mut(rows.len() * per_sequence);
            x = rest;
            part
        })
        .collect()
}

/// Runs each group's `work`: on the calling thread for one group, else one rayon task each.
fn run_groups<W: Send>(work: Vec<W>, run: impl Fn(W) + Sync + Send) {
    if work.len() == 1 {
        work.into_iter().for_each(run);
    } else {
        work.into_par_iter().for_each(run);
    }
}

fn row<T>(x: &[T], at: usize, len: usize) -> &[T] {
    &x[at * len..(at + 1) * len]
}

impl Tensor {
    /// Runs a recurrent layer over a batch-first sequence and returns every step's hidden state
    /// `[batch, time, hidden]`, and for the LSTM its cell state after the last step `[batch,
    /// hidden]` (`None` for the other cells), so that a later call can continue from it. The
    /// cell state is a plain tensor outside the graph: a continuation carries it as truncated
    /// backpropagation through time does (no gradient flows back through it into this call).
    /// The last hidden state is the output's last step.
    ///
    /// - `self`: the input projections `x_t W_ihᵀ + b_ih` of all steps, `[batch, time,
    ///   gates·hidden]` (gate order as PyTorch: LSTM `i, f, g, o`; GRU `r, z, n`).
    /// - `w_hh`: the recurrent weight `[gates·hidden, hidden]`; `b_hh`: its bias `[gates·hidden]`.
    /// - `h0`, `c0`: the initial hidden and cell state `[batch, hidden]` (zeros when `None`;
    ///   `c0` only for the LSTM).
    /// - `step_mask`: `batch·time` flags, row-major; a `false` step is padding: the state passes
    ///   through it unchanged (so the last step's state is the state after the last real step),
    ///   and no gradient flows into its inputs.
    pub fn recurrence(
        &self,
        cell: RecurrentCell,
        w_hh: &Tensor,
        b_hh: Option<&Tensor>,
        h0: Option<&Tensor>,
        c0: Option<&Tensor>,
        step_mask: Option<&[bool]>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let op = cell.name();
        let dtype = self.expect_float(op)?;
        let mismatch = |other: &Tensor, reason: String| Error::ShapeMismatch {
            op,
            lhs: self.shape().clone().into(),
            rhs: other.shape().clone().into(),
            reason,
        };
        let g = cell.gates();
        let (b, t, width) = match *self.dims() {
            [b, t, width] => (b, t, width),
            _ => {
                return Err(Error::bad_shape(
                    op,
                    self.shape(),
                    "the input projections must be 3-D [batch, time, gates * hidden]",
                ));
            }
        };
        let h = match *w_hh.dims() {
            [rows, h] if rows == g * h && h > 0 => h,
            _ => {
                return Err(mismatch(
                    w_hh,
                    format!("the recurrent weight must be [{g} * hidden, hidden]"),
                ));
            }
        };
        if width != g * h {
            return Err(mismatch(
                w_hh,
                format!(
                    "the input projections must be {g} * hidden = {} wide",
                    g * h
                ),
            ));
        }
        self.same_dtype(op, w_hh)?;
        let sizes = Sizes { b, t, h, g };
        let check = |x: Option<&Tensor>, want: &[usize], what: &str| -> Result<Tensor> {
            match x {
                None => Ok(Tensor::zeros(want.to_vec(), dtype)),
                Some(x) => {
                    self.same_dtype(op, x)?;
                    if x.dims() != want {
                        return Err(mismatch(x, format!("{what} must have shape {want:?}")));
                    }
                    Ok(x.clone())
                }
            }
        };
        let b_hh = check(b_hh, &[g * h], "the recurrent bias")?;
        let h0 = check(h0, &[b, h], "the initial hidden state")?;
        if c0.is_some() && !cell.has_cell_state() {
            return Err(Error::invalid(
                op,
                "only the LSTM has an initial cell state",
            ));
        }
        let c0 = check(c0, &[b, h], "the initial cell state")?;
        if let Some(m) = step_mask
            && m.len() != b * t
        {
            return Err(Error::bad_shape(
                op,
                self.shape(),
                format!(
                    "the step mask has {} flags, expected batch * time = {}",
                    m.len(),
                    b * t
                ),
            ));
        }
        let mask = step_mask.map(<[bool]>::to_vec);
        float_dispatch!(dtype, op, |T| {
            let saved = forward::<T>(cell, sizes, self, w_hh, &b_hh, &h0, &c0, mask.as_deref());
            let last_cell = cell.has_cell_state().then(|| {
                // Masked steps passed the state through, so step t − 1 holds the final state.
                let seq = t * h;
                let rows: Vec<T> = (0..b)
                    .flat_map(|n| row(&saved.extra[n * seq..], t - 1, h).iter().copied())
                    .collect();
                Tensor::from_parts(rows, Shape::from([b, h].as_slice()))
            });
            let hs = Tensor::record_vec(
                saved.hs,
                [b, t, h].into(),
                &[self, w_hh, &b_hh, &h0, &c0],
                RecurrenceBackward {
                    cell,
                    sizes,
                    mask,
                    acts: Tensor::from_parts(saved.acts, Shape::from([b, t, g * h].as_slice())),
                    extra: {
                        let len = saved.extra.len();
                        Tensor::from_parts(saved.extra, Shape::from([len].as_slice()))
                    },
                },
            );
            Ok((hs, last_cell))
        })
    }
}

/// The forward pass's results: the hidden states, and what backward needs besides them (the
/// post-activation gates; the LSTM's cell states or the GRU's `W_hn h + b_hn`). `B` is the
/// buffer: owned for the whole batch, borrowed for a group of its sequences.
struct Saved<B> {
    hs: B,
    acts: B,
    extra: B,
}

/// `W_hhᵀ` as a strided operand (`W_hh` is `[gates·hidden, hidden]`, row-major).
fn w_transposed<T>(w: &[T], h: usize) -> MatRef<'_, T> {
    MatRef {
        data: w,
        offset: 0,
        rs: 1,
        cs: h,
    }
}

#[allow(clippy::too_many_arguments)]
fn forward<T: Float + Element>(
    cell: RecurrentCell,
    s: Sizes,
    gx: &Tensor,
    w_hh: &Tensor,
    b_hh: &Tensor,
    h0: &Tensor,
    c0: &Tensor,
    mask: Option<&[bool]>,
) -> Saved<Vec<T>> {
    let (gx, w, bias) = (
        gx.float_data::<T>(),
        w_hh.float_data::<T>(),
        b_hh.float_data::<T>(),
    );
    let (h0, c0) = (h0.float_data::<T>(), c0.float_data::<T>());
    let (gh, seq) = (s.gh(), s.t * s.h);
    let extra_seq = s.extra_per_sequence();
    let mut saved = Saved {
        hs: vec![T::zero(); s.b * seq],
        acts: vec![T::zero(); s.b * s.t * gh],
        extra: vec![T::zero(); s.b * extra_seq],
    };
    let (groups, threads) = s.groups();
    let work: Vec<_> = groups
        .iter()
        .zip(split_sequences(&mut saved.hs, seq, &groups))
        .zip(split_sequences(&mut saved.acts, s.t * gh, &groups))
        .zip(split_sequences(&mut saved.extra, extra_seq, &groups))
        .map(|(((rows, hs), acts), extra)| (rows, Saved { hs, acts, extra }))
        .collect();
    run_groups(work, |(rows, out)| {
        let state = State {
            w: &w,
            h0: sequences(&h0, s.h, rows),
            c0: sequences(&c0, s.h, rows),
            mask: mask.map(|m| sequences(m, s.t, rows)),
        };
        let gx = sequences(&gx, s.t * gh, rows);
        let s = s.with_batch(rows.len());
        forward_sequences(cell, s, state, gx, &bias, out, threads);
    });
    saved
}

/// The recurrent weight `W_hh`, and for some of the sequences their initial states and step
/// mask.
struct State<'a, T> {
    w: &'a [T],
    h0: &'a [T],
    c0: &'a [T],
    mask: Option<&'a [bool]>,
}

/// The forward recurrence over `s.b` sequences, step by step, from their input projections
/// `gx` into `out`; each step's product on `threads` threads.
fn forward_sequences<T: Float + Element>(
    cell: RecurrentCell,
    s: Sizes,
    state: State<'_, T>,
    gx: &[T],
    bias: &[T],
    out: Saved<&mut [T]>,
    threads: usize,
) {
    let State { w, h0, c0, mask } = state;
    let Saved { hs, acts, extra } = out;
    let (gh, seq) = (s.gh(), s.t * s.h);
    let mut hh = vec![T::zero(); s.b * gh];
    for step in 0..s.t {
        // hh = h_{t−1} W_hhᵀ for these sequences (h_{t−1} read in place, strided).
        let h_prev = if step == 0 {
            MatRef {
                data: h0,
                offset: 0,
                rs: s.h,
                cs: 1,
            }
        } else {
            MatRef {
                data: &hs[..],
                offset: (step - 1) * s.h,
                rs: seq,
                cs: 1,
            }
        };
        matmul_into(s.b, gh, s.h, h_prev, w_transposed(w, s.h), &mut hh, threads);
        for (n, hh_row) in hh.chunks_mut(gh).enumerate() {
            hh_row
                .iter_mut()
                .zip(bias.iter())
                .for_each(|(v, &b)| *v += b);
            let at = n * s.t + step;
            let (before, after) = hs[n * seq..(n + 1) * seq].split_at_mut(step * s.h);
            let h_prev = if step == 0 {
                row(h0, n, s.h)
            } else {
                &before[(step - 1) * s.h..]
            };
            let h_out = &mut after[..s.h];
            let (c_before, c_after) = if s.g == 1 {
                (&mut [][..], &mut [][..])
            } else {
                extra[n * seq..(n + 1) * seq].split_at_mut(step * s.h)
            };
            let c_prev: &[T] = match (cell.has_cell_state(), step) {
                (false, _) => &[],
                (true, 0) => row(c0, n, s.h),
                (true, _) => &c_before[(step - 1) * s.h..],
            };
            let extra_out: &mut [T] = if s.g == 1 {
                &mut []
            } else {
                &mut c_after[..s.h]
            };
            if mask.is_some_and(|m| !m[at]) {
                // Padding: the state passes through unchanged.
                h_out.copy_from_slice(h_prev);
                if cell.has_cell_state() {
                    extra_out.copy_from_slice(c_prev);
                }
                continue;
            }
            cell.forward_step(StepForward {
                gx: row(gx, at, gh),
                hh: hh_row,
                h_prev,
                c_prev,
                acts: &mut acts[at * gh..(at + 1) * gh],
                extra: extra_out,
                h: h_out,
            });
        }
    }
}

struct RecurrenceBackward {
    cell: RecurrentCell,
    sizes: Sizes,
    mask: Option<Vec<bool>>,
    acts: Tensor,
    extra: Tensor,
}

/// Backward's per-sequence results: `∂L/∂gx` for every step, `∂L/∂hh` (the GRU's; empty
/// for the other cells, where it is `∂L/∂gx`), and the gradients of the initial states.
struct StateGrads<'a, T> {
    dgx: &'a mut [T],
    dhh: &'a mut [T],
    dh: &'a mut [T],
    dc: &'a mut [T],
}

/// Backpropagation through time over `s.b` sequences: steps in reverse, carrying `∂L/∂h_t`
/// and `∂L/∂c_t`, from the gradient `g` of their hidden states `[b, t, h]` and what the
/// forward pass `saved` for them.
fn backward_sequences<T: Float + Element>(
    cell: RecurrentCell,
    s: Sizes,
    state: State<'_, T>,
    g: &[T],
    saved: Saved<&[T]>,
    out: StateGrads<'_, T>,
    threads: usize,
) {
    let State { w, h0, c0, mask } = state;
    let Saved { hs, acts, extra } = saved;
    let StateGrads { dgx, dhh, dh, dc } = out;
    let gru = cell == RecurrentCell::Gru;
    let gh = s.gh();
    let mut direct = vec![T::zero(); s.b * s.h];
    let mut through_w = vec![T::zero(); s.b * s.h];
    for step in (0..s.t).rev() {
        for n in 0..s.b {
            let at = n * s.t + step;
            let dh_n = &mut dh[n * s.h..(n + 1) * s.h];
            dh_n.iter_mut()
                .zip(row(g, at, s.h))
                .for_each(|(d, &v)| *d += v);
            let direct_n = &mut direct[n * s.h..(n + 1) * s.h];
            if mask.is_some_and(|m| !m[at]) {
                // Padding passed the state through: so does its gradient.
                direct_n.copy_from_slice(dh_n);
                continue;
            }
            let h_prev = if step == 0 {
                row(h0, n, s.h)
            } else {
                row(hs, at - 1, s.h)
            };
            let c_prev: &[T] = match (cell.has_cell_state(), step) {
                (false, _) => &[],
                (true, 0) => row(c0, n, s.h),
                (true, _) => row(extra, at - 1, s.h),
            };
            let extra_row: &[T] = if s.g == 1 { &[] } else { row(extra, at, s.h) };
            let dhh_row: &mut [T] = if gru {
                &mut dhh[at * gh..(at + 1) * gh]
            } else {
                &mut []
            };
            cell.backward_step(StepBackward {
                acts: row(acts, at, gh),
                extra: extra_row,
                h_prev,
                c_prev,
                dh: dh_n,
                dc: &mut dc[n * s.h..(n + 1) * s.h],
                dgx: &mut dgx[at * gh..(at + 1) * gh],
                dhh: dhh_row,
                dh_direct: direct_n,
            });
        }
        // ∂L/∂h_{t−1} = ∂L/∂hh_t · W_hh + the direct part.
        let dhh_step = if gru { &dhh[..] } else { &dgx[..] };
        matmul_into(
            s.b,
            s.h,
            gh,
            MatRef {
                data: dhh_step,
                offset: step * gh,
                rs: s.t * gh,
                cs: 1,
            },
            MatRef {
                data: w,
                offset: 0,
                rs: s.h,
                cs: 1,
            },
            &mut through_w,
            threads,
        );
        for ((d, &a), &b) in dh.iter_mut().zip(&through_w).zip(&direct) {
            *d = a + b;
        }
    }
}

impl Backward for RecurrenceBackward {
    fn name(&self) -> &'static str {
        self.cell.name()
    }
    fn backward(&self, inputs: &[Tensor], y: &Tensor, grad: &Tensor) -> Result<InputGrads> {
        float_dispatch!(grad.dtype(), self.cell.name(), |T| self
            .run::<T>(inputs, y, grad))
    }
}

impl RecurrenceBackward {
    /// Backpropagation through time: steps in reverse, carrying `∂L/∂h_t` and `∂L/∂c_t`.
    fn run<T: Float + Element>(
        &self,
        inputs: &[Tensor],
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<InputGrads> {
        let (s, cell) = (self.sizes, self.cell);
        let (gh, seq) = (s.gh(), s.t * s.h);
        let w = inputs[1].float_data::<T>();
        let (h0, c0) = (inputs[3].float_data::<T>(), inputs[4].float_data::<T>());
        let hs = y.float_data::<T>();
        let acts = self.acts.float_data::<T>();
        let extra = self.extra.float_data::<T>();
        let g = grad.float_data::<T>();
        let gru = cell == RecurrentCell::Gru;
        let mut dgx = vec![T::zero(); s.b * s.t * gh];
        // ∂L/∂hh differs from ∂L/∂gx only in the GRU's n gate.
        let dhh_seq = if gru { s.t * gh } else { 0 };
        let mut dhh_all = vec![T::zero(); s.b * dhh_seq];
        let mut dh = vec![T::zero(); s.b * s.h];
        let mut dc = vec![T::zero(); s.b * s.h];
        let extra_seq = s.extra_per_sequence();
        // The sequences' gradients are as independent as their forward: the same groups.
        let (groups, threads) = s.groups();
        let work: Vec<_> = groups
            .iter()
            .zip(split_sequences(&mut dgx, s.t * gh, &groups))
            .zip(split_sequences(&mut dhh_all, dhh_seq, &groups))
            .zip(split_sequences(&mut dh, s.h, &groups))
            .zip(split_sequences(&mut dc, s.h, &groups))
            .map(|((((rows, dgx), dhh), dh), dc)| (rows, StateGrads { dgx, dhh, dh, dc }))
            .collect();
        run_groups(work, |(rows, out)| {
            let saved = Saved {
                hs: sequences(&hs, seq, rows),
                acts: sequences(&acts, s.t * gh, rows),
                extra: sequences(&extra, extra_seq, rows),
            };
            let state = State {
                w: &w,
                h0: sequences(&h0, s.h, rows),
                c0: sequences(&c0, s.h, rows),
                mask: self.mask.as_deref().map(|m| sequences(m, s.t, rows)),
            };
            let g = sequences(&g, seq, rows);
            let s = s.with_batch(rows.len());
            backward_sequences(cell, s, state, g, saved, out, threads);
        });
        let dhh = if gru { &dhh_all } else { &dgx };
        let need = |i: usize| inputs[i].requires_grad();
        let dw = need(1).then(|| {
            // ∂L/∂W_hh = Σ_{n,t} ∂L/∂hh[n,t]ᵀ h[n,t−1]: one GEMM over all steps.
            let mut h_prev = vec![T::zero(); s.b * seq];
            for n in 0..s.b {
                let dst = &mut h_prev[n * seq..(n + 1) * seq];
                dst[..s.h].copy_from_slice(row(&h0, n, s.h));
                dst[s.h..].copy_from_slice(&hs[n * seq..(n + 1) * seq - s.h]);
            }
            let mut dw = vec![T::zero(); gh * s.h];
            matmul_into(
                gh,
                s.h,
                s.b * s.t,
                MatRef {
                    data: &dhh[..],
                    offset: 0,
                    rs: 1,
                    cs: gh,
                },
                MatRef {
                    data: &h_prev,
                    offset: 0,
                    rs: s.h,
                    cs: 1,
                },
                &mut dw,
                rayon::current_num_threads(),
            );
            Tensor::from_parts(dw, inputs[1].shape().clone())
        });
        let db = need(2).then(|| {
            let mut db = vec![T::zero(); gh];
            for r in dhh.chunks(gh) {
                db.iter_mut().zip(r).for_each(|(d, &v)| *d += v);
            }
            Tensor::from_parts(db, inputs[2].shape().clone())
        });
        let state = |v: Vec<T>| Tensor::from_parts(v, Shape::from([s.b, s.h].as_slice()));
        Ok(smallvec![
            need(0).then(|| Tensor::from_parts(dgx, inputs[0].shape().clone())),
            dw,
            db,
            need(3).then(|| state(dh)),
            (need(4) && cell.has_cell_state()).then(|| state(dc)),
        ])
    }
}

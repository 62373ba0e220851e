//! The recurrence of an RNN, LSTM or GRU layer over a whole sequence, as one op, and its
//! backward: backpropagation through time.
//!
//! The input projection `W_ih x_t + b_ih` has no dependence between steps, so the layer computes
//! it for all steps at once (one large GEMM, an ordinary `matmul`) and hands it in. This op runs
//! the part that is sequential: per step one `[batch, hidden] x [hidden, gates·hidden]` GEMM
//! and a fused pass over the gates. Backward walks the steps in reverse carrying `∂L/∂h` (and
//! `∂L/∂c`), and forms `∂L/∂W_hh = Σ_t ∂L/∂hh_tᵀ h_{t−1}` as a single GEMM over all steps.

use crate::autograd::{Backward, InputGrads};
use crate::cpu::matmul::{MatRef, matmul_into};
pub use crate::cpu::recurrent::RecurrentCell;
use crate::cpu::recurrent::{StepBackward, StepForward};
use crate::dtype::{Element, Float};
use crate::tensor::float_dispatch;
use crate::{Error, Result, Shape, Tensor};
use smallvec::smallvec;

/// The sizes of one recurrence: batch, steps, hidden units, gates.
#[derive(Clone, Copy)]
struct Sizes {
    b: usize,
    t: usize,
    h: usize,
    g: usize,
}

/// A step's `[batch, hidden] x [hidden, gates·hidden]` product with at least this many
/// multiply-adds is split over the threads; below it the split costs more than it saves
/// (the peers' LSTM, 32 x 128 x 512 = 2.1 M, was fastest on one thread; measured on the
/// character model's 64 x 256 x 1024 = 16.8 M: an epoch 9% faster on two threads).
const STEP_PARALLEL_WORK: usize = 1 << 23;

impl Sizes {
    /// Threads for one step's product (see [`STEP_PARALLEL_WORK`]).
    fn step_threads(self) -> usize {
        if self.b * self.gh() * self.h >= STEP_PARALLEL_WORK {
            rayon::current_num_threads()
        } else {
            1
        }
    }

    fn gh(self) -> usize {
        self.g * self.h
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

/// The forward pass's results: the hidden states, and what backward needs besides them.
struct Saved<T> {
    hs: Vec<T>,
    acts: Vec<T>,
    extra: Vec<T>,
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
) -> Saved<T> {
    let (gx, w, bias) = (
        gx.float_data::<T>(),
        w_hh.float_data::<T>(),
        b_hh.float_data::<T>(),
    );
    let (h0, c0) = (h0.float_data::<T>(), c0.float_data::<T>());
    let (gh, seq) = (s.gh(), s.t * s.h);
    let mut hs = vec![T::zero(); s.b * seq];
    let mut acts = vec![T::zero(); s.b * s.t * gh];
    let mut extra = vec![T::zero(); if s.g == 1 { 0 } else { s.b * seq }];
    let mut hh = vec![T::zero(); s.b * gh];
    for step in 0..s.t {
        // hh = h_{t−1} W_hhᵀ for the whole batch (h_{t−1} read in place, strided).
        let h_prev = if step == 0 {
            MatRef {
                data: &h0[..],
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
        matmul_into(
            s.b,
            gh,
            s.h,
            h_prev,
            w_transposed(&w, s.h),
            &mut hh,
            s.step_threads(),
        );
        for (n, hh_row) in hh.chunks_mut(gh).enumerate() {
            hh_row
                .iter_mut()
                .zip(bias.iter())
                .for_each(|(v, &b)| *v += b);
            let at = n * s.t + step;
            let (before, after) = hs[n * seq..(n + 1) * seq].split_at_mut(step * s.h);
            let h_prev = if step == 0 {
                row(&h0, n, s.h)
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
                (true, 0) => row(&c0, n, s.h),
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
                gx: row(&gx, at, gh),
                hh: hh_row,
                h_prev,
                c_prev,
                acts: &mut acts[at * gh..(at + 1) * gh],
                extra: extra_out,
                h: h_out,
            });
        }
    }
    Saved { hs, acts, extra }
}

struct RecurrenceBackward {
    cell: RecurrentCell,
    sizes: Sizes,
    mask: Option<Vec<bool>>,
    acts: Tensor,
    extra: Tensor,
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
        let mut dhh_all = vec![T::zero(); if gru { s.b * s.t * gh } else { 0 }];
        let mut dh = vec![T::zero(); s.b * s.h];
        let mut dc = vec![T::zero(); s.b * s.h];
        let mut direct = vec![T::zero(); s.b * s.h];
        let mut through_w = vec![T::zero(); s.b * s.h];
        for step in (0..s.t).rev() {
            for n in 0..s.b {
                let at = n * s.t + step;
                let dh_n = &mut dh[n * s.h..(n + 1) * s.h];
                dh_n.iter_mut()
                    .zip(row(&g, at, s.h))
                    .for_each(|(d, &v)| *d += v);
                let direct_n = &mut direct[n * s.h..(n + 1) * s.h];
                if self.mask.as_ref().is_some_and(|m| !m[at]) {
                    // Padding passed the state through: so does its gradient.
                    direct_n.copy_from_slice(dh_n);
                    continue;
                }
                let h_prev = if step == 0 {
                    row(&h0, n, s.h)
                } else {
                    row(&hs, at - 1, s.h)
                };
                let c_prev: &[T] = match (cell.has_cell_state(), step) {
                    (false, _) => &[],
                    (true, 0) => row(&c0, n, s.h),
                    (true, _) => row(&extra, at - 1, s.h),
                };
                let extra_row: &[T] = if s.g == 1 { &[] } else { row(&extra, at, s.h) };
                let dhh_row: &mut [T] = if gru {
                    &mut dhh_all[at * gh..(at + 1) * gh]
                } else {
                    &mut []
                };
                cell.backward_step(StepBackward {
                    acts: row(&acts, at, gh),
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
            let dhh = if gru { &dhh_all } else { &dgx };
            matmul_into(
                s.b,
                s.h,
                gh,
                MatRef {
                    data: &dhh[..],
                    offset: step * gh,
                    rs: s.t * gh,
                    cs: 1,
                },
                MatRef {
                    data: &w[..],
                    offset: 0,
                    rs: s.h,
                    cs: 1,
                },
                &mut through_w,
                s.step_threads(),
            );
            for ((d, &a), &b) in dh.iter_mut().zip(&through_w).zip(&direct) {
                *d = a + b;
            }
        }
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

//! One time step of a recurrent cell for one sequence of the batch: the forward update from the
//! step's pre-activations, and its backward (the local part of backpropagation through time).
//! Gate layouts follow PyTorch: LSTM `[i, f, g, o]`, GRU `[r, z, n]`, each `hidden` wide.

use crate::cpu::fast_math::with_simd;
use crate::dtype::Float;

/// The recurrence of a recurrent layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecurrentCell {
    /// Elman RNN, `h = tanh(W_ih x + b_ih + W_hh h' + b_hh)`.
    RnnTanh,
    /// Elman RNN with ReLU instead of tanh.
    RnnRelu,
    /// Long short-term memory (Hochreiter & Schmidhuber 1997, with a forget gate).
    Lstm,
    /// Gated recurrent unit (Cho et al. 2014), PyTorch's variant (`r` multiplies `W_hn h + b_hn`).
    Gru,
}

impl RecurrentCell {
    /// How many `hidden`-wide gate blocks the weights hold (RNN 1, LSTM 4, GRU 3).
    pub fn gates(self) -> usize {
        match self {
            RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => 1,
            RecurrentCell::Lstm => 4,
            RecurrentCell::Gru => 3,
        }
    }

    /// Whether a gate decides how much of the state is kept per step, in the second gate
    /// block: the LSTM's forget gate, the GRU's update gate (not the plain RNN's).
    pub fn keeps_state_by_gate(self) -> bool {
        matches!(self, RecurrentCell::Lstm | RecurrentCell::Gru)
    }

    /// The name used in messages (`"lstm"`).
    pub fn name(self) -> &'static str {
        match self {
            RecurrentCell::RnnTanh => "rnn_tanh",
            RecurrentCell::RnnRelu => "rnn_relu",
            RecurrentCell::Lstm => "lstm",
            RecurrentCell::Gru => "gru",
        }
    }

    /// Whether the cell carries a cell state `c` beside `h` (LSTM).
    pub fn has_cell_state(self) -> bool {
        self == RecurrentCell::Lstm
    }
}

/// One step's rows: `gx` = the input projection `W_ih x_t + b_ih`, `hh` = `W_hh h_{t-1} + b_hh`
/// (both `gates · hidden` wide), the previous state, and where the results go.
pub(crate) struct StepForward<'a, T> {
    pub gx: &'a [T],
    pub hh: &'a [T],
    pub h_prev: &'a [T],
    pub c_prev: &'a [T],
    /// Post-activation gates (saved for backward); for the plain RNN, `h_t` itself.
    pub acts: &'a mut [T],
    /// LSTM: the new cell state; GRU: `W_hn h_{t-1} + b_hn` (saved for backward).
    pub extra: &'a mut [T],
    pub h: &'a mut [T],
}

/// One step's rows for backward: the saved forward values, the incoming gradients, and where
/// the outgoing ones go (see [`RecurrentCell::backward_step`]).
pub(crate) struct StepBackward<'a, T> {
    pub acts: &'a [T],
    pub extra: &'a [T],
    pub h_prev: &'a [T],
    pub c_prev: &'a [T],
    pub dh: &'a [T],
    pub dc: &'a mut [T],
    pub dgx: &'a mut [T],
    pub dhh: &'a mut [T],
    pub dh_direct: &'a mut [T],
}

/// The `k`-th `n`-wide gate block of `x`.
#[inline(always)]
fn block<T>(x: &[T], k: usize, n: usize) -> &[T] {
    &x[k * n..][..n]
}

/// `x` cut into its `n`-wide gate blocks (as many as fit).
#[inline(always)]
fn blocks_mut<T>(x: &mut [T], n: usize) -> [&mut [T]; 4] {
    let (a, rest) = x.split_at_mut(n.min(x.len()));
    let (b, rest) = rest.split_at_mut(n.min(rest.len()));
    let (c, d) = rest.split_at_mut(n.min(rest.len()));
    [a, b, c, d]
}

impl RecurrentCell {
    /// Forward of one step.
    ///
    /// - RNN: `h = φ(a)`, `a = gx + hh`.
    /// - LSTM: `i, f, o = σ(a_i, a_f, a_o)`, `g = tanh(a_g)`, `c = f c' + i g`, `h = o tanh(c)`.
    /// - GRU: `r, z = σ(gx_r + hh_r, gx_z + hh_z)`, `n = tanh(gx_n + r hh_n)`,
    ///   `h = (1 − z) n + z h'`.
    pub(crate) fn forward_step<T: Float>(self, s: StepForward<'_, T>) {
        let cell = self;
        with_simd!((cell: RecurrentCell, s: StepForward<'_, T>), {
            let n = s.h.len();
            let h = &mut s.h[..n];
            match cell {
                RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => {
                    let (gx, hh, acts) = (block(s.gx, 0, n), block(s.hh, 0, n), &mut s.acts[..n]);
                    let relu = cell == RecurrentCell::RnnRelu;
                    for j in 0..n {
                        let a = gx[j] + hh[j];
                        let y = if relu { a.max(T::zero()) } else { a.tanh_fma::<FMA>() };
                        acts[j] = y;
                        h[j] = y;
                    }
                }
                RecurrentCell::Lstm => {
                    let [ai, af, ag, ao] = blocks_mut(s.acts, n);
                    let (ai, af, ag, ao) = (&mut ai[..n], &mut af[..n], &mut ag[..n], &mut ao[..n]);
                    let (c, c_prev) = (&mut s.extra[..n], &s.c_prev[..n]);
                    let x = |k| block(s.gx, k, n);
                    let r = |k| block(s.hh, k, n);
                    let (xi, xf, xg, xo) = (x(0), x(1), x(2), x(3));
                    let (ri, rf, rg, ro) = (r(0), r(1), r(2), r(3));
                    for j in 0..n {
                        let i = (xi[j] + ri[j]).sigmoid_fma::<FMA>();
                        let f = (xf[j] + rf[j]).sigmoid_fma::<FMA>();
                        let g = (xg[j] + rg[j]).tanh_fma::<FMA>();
                        let o = (xo[j] + ro[j]).sigmoid_fma::<FMA>();
                        let cj = f * c_prev[j] + i * g;
                        ai[j] = i;
                        af[j] = f;
                        ag[j] = g;
                        ao[j] = o;
                        c[j] = cj;
                        h[j] = o * cj.tanh_fma::<FMA>();
                    }
                }
                RecurrentCell::Gru => {
                    let [ar, az, an, _] = blocks_mut(s.acts, n);
                    let (ar, az, an) = (&mut ar[..n], &mut az[..n], &mut an[..n]);
                    let (hn_out, h_prev) = (&mut s.extra[..n], &s.h_prev[..n]);
                    let (xr, xz, xn) = (block(s.gx, 0, n), block(s.gx, 1, n), block(s.gx, 2, n));
                    let (rr, rz, rn) = (block(s.hh, 0, n), block(s.hh, 1, n), block(s.hh, 2, n));
                    for j in 0..n {
                        let r = (xr[j] + rr[j]).sigmoid_fma::<FMA>();
                        let z = (xz[j] + rz[j]).sigmoid_fma::<FMA>();
                        let nn = (xn[j] + r * rn[j]).tanh_fma::<FMA>();
                        ar[j] = r;
                        az[j] = z;
                        an[j] = nn;
                        hn_out[j] = rn[j];
                        h[j] = (T::one() - z) * nn + z * h_prev[j];
                    }
                }
            }
        })
    }

    /// Backward of one step. In: `dh` = ∂L/∂h_t (from the output and from step t+1), `dc` =
    /// ∂L/∂c_t (LSTM; updated in place to ∂L/∂c_{t−1}). Out: `dgx` = ∂L/∂gx_t, `dhh` = ∂L/∂hh_t
    /// (GRU only, empty otherwise: elsewhere it equals `dgx`; the GRU's differs in the `n` gate,
    /// `dhh_n = dgx_n · r`) and `dh_direct` = the part of ∂L/∂h_{t−1} that does not go through
    /// `W_hh` (the GRU's `z h'` term).
    pub(crate) fn backward_step<T: Float>(self, s: StepBackward<'_, T>) {
        let cell = self;
        with_simd!((cell: RecurrentCell, s: StepBackward<'_, T>), {
            let n = s.dh.len();
            let (dh, direct) = (&s.dh[..n], &mut s.dh_direct[..n]);
            match cell {
                RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => {
                    let (acts, dgx) = (&s.acts[..n], &mut s.dgx[..n]);
                    let relu = cell == RecurrentCell::RnnRelu;
                    for j in 0..n {
                        let y = acts[j];
                        let slope = if relu {
                            if y > T::zero() { T::one() } else { T::zero() }
                        } else {
                            T::one() - y * y
                        };
                        dgx[j] = dh[j] * slope;
                        direct[j] = T::zero();
                    }
                }
                RecurrentCell::Lstm => {
                    let a = |k| block(s.acts, k, n);
                    let (ai, af, ag, ao) = (a(0), a(1), a(2), a(3));
                    let (c, c_prev, dc) = (&s.extra[..n], &s.c_prev[..n], &mut s.dc[..n]);
                    let [di_out, df_out, dg_out, do_out] = blocks_mut(s.dgx, n);
                    let (di_out, df_out) = (&mut di_out[..n], &mut df_out[..n]);
                    let (dg_out, do_out) = (&mut dg_out[..n], &mut do_out[..n]);
                    for j in 0..n {
                        let (i, f, g, o) = (ai[j], af[j], ag[j], ao[j]);
                        let tc = c[j].tanh_fma::<FMA>();
                        let d_o = dh[j] * tc;
                        let dct = dc[j] + dh[j] * o * (T::one() - tc * tc);
                        dc[j] = dct * f;
                        di_out[j] = dct * g * i * (T::one() - i);
                        df_out[j] = dct * c_prev[j] * f * (T::one() - f);
                        dg_out[j] = dct * i * (T::one() - g * g);
                        do_out[j] = d_o * o * (T::one() - o);
                        direct[j] = T::zero();
                    }
                }
                RecurrentCell::Gru => {
                    let (ar, az, an) = (block(s.acts, 0, n), block(s.acts, 1, n), block(s.acts, 2, n));
                    let (hn, h_prev) = (&s.extra[..n], &s.h_prev[..n]);
                    let [gr, gz, gn, _] = blocks_mut(s.dgx, n);
                    let (gr, gz, gn) = (&mut gr[..n], &mut gz[..n], &mut gn[..n]);
                    let [hr, hz, hnn, _] = blocks_mut(s.dhh, n);
                    let (hr, hz, hnn) = (&mut hr[..n], &mut hz[..n], &mut hnn[..n]);
                    for j in 0..n {
                        let (r, z, nn) = (ar[j], az[j], an[j]);
                        let dn = dh[j] * (T::one() - z);
                        let dz = dh[j] * (h_prev[j] - nn);
                        let dan = dn * (T::one() - nn * nn);
                        let dar = dan * hn[j] * r * (T::one() - r);
                        let daz = dz * z * (T::one() - z);
                        gr[j] = dar;
                        gz[j] = daz;
                        gn[j] = dan;
                        hr[j] = dar;
                        hz[j] = daz;
                        hnn[j] = dan * r;
                        direct[j] = dh[j] * z;
                    }
                }
            }
        })
    }
}

//! One time step of a recurrent cell for one sequence of the batch: the forward update from the
//! step's pre-activations, and its backward (the local part of backpropagation through time).
//! Gate layouts follow PyTorch: LSTM `[i, f, g, o]`, GRU `[r, z, n]`, each `hidden` wide.

use crate::dtype::Float;

/// σ(x) without overflow: exp of a non-positive number only.
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

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

impl RecurrentCell {
    /// Forward of one step.
    ///
    /// - RNN: `h = φ(a)`, `a = gx + hh`.
    /// - LSTM: `i, f, o = σ(a_i, a_f, a_o)`, `g = tanh(a_g)`, `c = f c' + i g`, `h = o tanh(c)`.
    /// - GRU: `r, z = σ(gx_r + hh_r, gx_z + hh_z)`, `n = tanh(gx_n + r hh_n)`,
    ///   `h = (1 − z) n + z h'`.
    pub(crate) fn forward_step<T: Float>(self, s: StepForward<'_, T>) {
        let n = s.h.len();
        match self {
            RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => {
                for j in 0..n {
                    let a = s.gx[j] + s.hh[j];
                    let h = if self == RecurrentCell::RnnTanh {
                        a.tanh()
                    } else {
                        a.max(T::zero())
                    };
                    s.acts[j] = h;
                    s.h[j] = h;
                }
            }
            RecurrentCell::Lstm => {
                for j in 0..n {
                    let i = sigmoid(s.gx[j] + s.hh[j]);
                    let f = sigmoid(s.gx[n + j] + s.hh[n + j]);
                    let g = (s.gx[2 * n + j] + s.hh[2 * n + j]).tanh();
                    let o = sigmoid(s.gx[3 * n + j] + s.hh[3 * n + j]);
                    let c = f * s.c_prev[j] + i * g;
                    s.acts[j] = i;
                    s.acts[n + j] = f;
                    s.acts[2 * n + j] = g;
                    s.acts[3 * n + j] = o;
                    s.extra[j] = c;
                    s.h[j] = o * c.tanh();
                }
            }
            RecurrentCell::Gru => {
                for j in 0..n {
                    let r = sigmoid(s.gx[j] + s.hh[j]);
                    let z = sigmoid(s.gx[n + j] + s.hh[n + j]);
                    let hn = s.hh[2 * n + j];
                    let nn = (s.gx[2 * n + j] + r * hn).tanh();
                    s.acts[j] = r;
                    s.acts[n + j] = z;
                    s.acts[2 * n + j] = nn;
                    s.extra[j] = hn;
                    s.h[j] = (T::one() - z) * nn + z * s.h_prev[j];
                }
            }
        }
    }

    /// Backward of one step. In: `dh` = ∂L/∂h_t (from the output and from step t+1), `dc` =
    /// ∂L/∂c_t (LSTM; updated in place to ∂L/∂c_{t−1}). Out: `dgx` = ∂L/∂gx_t, `dhh` = ∂L/∂hh_t
    /// (GRU only, empty otherwise: elsewhere it equals `dgx`; the GRU's differs in the `n` gate,
    /// `dhh_n = dgx_n · r`) and `dh_direct`
    /// = the part of ∂L/∂h_{t−1} that does not go through `W_hh` (the GRU's `z h'` term).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward_step<T: Float>(
        self,
        acts: &[T],
        extra: &[T],
        h_prev: &[T],
        c_prev: &[T],
        dh: &[T],
        dc: &mut [T],
        dgx: &mut [T],
        dhh: &mut [T],
        dh_direct: &mut [T],
    ) {
        let n = dh.len();
        match self {
            RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => {
                for j in 0..n {
                    let h = acts[j];
                    let da = if self == RecurrentCell::RnnTanh {
                        dh[j] * (T::one() - h * h)
                    } else if h > T::zero() {
                        dh[j]
                    } else {
                        T::zero()
                    };
                    dgx[j] = da;
                    dh_direct[j] = T::zero();
                }
            }
            RecurrentCell::Lstm => {
                for j in 0..n {
                    let (i, f, g, o) = (acts[j], acts[n + j], acts[2 * n + j], acts[3 * n + j]);
                    let tc = extra[j].tanh();
                    let d_o = dh[j] * tc;
                    let dct = dc[j] + dh[j] * o * (T::one() - tc * tc);
                    let di = dct * g;
                    let dg = dct * i;
                    let df = dct * c_prev[j];
                    dc[j] = dct * f;
                    dgx[j] = di * i * (T::one() - i);
                    dgx[n + j] = df * f * (T::one() - f);
                    dgx[2 * n + j] = dg * (T::one() - g * g);
                    dgx[3 * n + j] = d_o * o * (T::one() - o);
                    dh_direct[j] = T::zero();
                }
            }
            RecurrentCell::Gru => {
                for j in 0..n {
                    let (r, z, nn) = (acts[j], acts[n + j], acts[2 * n + j]);
                    let dn = dh[j] * (T::one() - z);
                    let dz = dh[j] * (h_prev[j] - nn);
                    let dan = dn * (T::one() - nn * nn);
                    let dr = dan * extra[j];
                    let dar = dr * r * (T::one() - r);
                    let daz = dz * z * (T::one() - z);
                    dgx[j] = dar;
                    dgx[n + j] = daz;
                    dgx[2 * n + j] = dan;
                    dhh[j] = dar;
                    dhh[n + j] = daz;
                    dhh[2 * n + j] = dan * r;
                    dh_direct[j] = dh[j] * z;
                }
            }
        }
    }
}

//! Recurrent layers: RNN, LSTM and GRU over batch-first sequences `[batch, time, features]`,
//! stacked, returning every step's hidden state or the last one, with padding masks for
//! variable-length sequences. Backpropagation through time is the backward of
//! [`Tensor::recurrence`].

use crate::init::Init;
use crate::module::{Ctx, Module, VarKind};
use nabla_core::{DType, Error, RecurrentCell, Result, Rng, Tensor, Var};

/// What a recurrent layer returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceOutput {
    /// Every step's hidden state of the top layer, `[batch, time, hidden]` (for a loss at every
    /// step, or another recurrent layer on top).
    All,
    /// The top layer's state after the last step, `[batch, hidden]` (sequence classification,
    /// forecasting). With a mask this is the state after each sequence's last real step.
    Last,
}

/// The weights of one layer of the stack, named as PyTorch names them (`weight_ih_l0`, ...).
struct StackLayer {
    w_ih: Var,
    w_hh: Var,
    b_ih: Option<Var>,
    b_hh: Option<Var>,
}

/// A stack of recurrent layers (Elman RNN, LSTM or GRU) over `[batch, time, input]`.
///
/// The equations and the parameter layout are PyTorch's (`torch.nn.LSTM(batch_first=True)`):
/// `weight_ih_l{k}: [gates·hidden, in]`, `weight_hh_l{k}: [gates·hidden, hidden]`,
/// `bias_ih_l{k}`, `bias_hh_l{k}: [gates·hidden]`, gate order LSTM `i, f, g, o`, GRU `r, z, n`.
/// Default initialization is PyTorch's too: every weight and bias uniform in `±1/√hidden`.
/// The initial state is zeros.
pub struct Recurrent {
    cell: RecurrentCell,
    input_size: usize,
    hidden_size: usize,
    stack: Vec<StackLayer>,
    output: SequenceOutput,
    mask_value: Option<f64>,
    dropout: f64,
}

/// Options of a [`Recurrent`] layer; finish with [`RecurrentBuilder::build`].
#[derive(Debug, Clone)]
pub struct RecurrentBuilder {
    cell: RecurrentCell,
    input_size: usize,
    hidden_size: usize,
    num_layers: usize,
    output: SequenceOutput,
    mask_value: Option<f64>,
    dropout: f64,
    bias: bool,
    init: Option<Init>,
    recurrent_init: Option<Init>,
    forget_bias: f64,
    dtype: DType,
}

impl RecurrentBuilder {
    /// Stacked layers, each reading the hidden states of the one below (default 1).
    pub fn layers(mut self, n: usize) -> Self {
        self.num_layers = n;
        self
    }
    /// All steps or the last one (default [`SequenceOutput::All`], as PyTorch).
    pub fn output(mut self, output: SequenceOutput) -> Self {
        self.output = output;
        self
    }
    /// Treat a step whose features all equal `value` as padding (Keras' `Masking`): the state
    /// passes through it unchanged and it gets no gradient. Variable-length sequences padded
    /// with `value` then give the same results as each sequence on its own.
    pub fn mask_value(mut self, value: f64) -> Self {
        self.mask_value = Some(value);
        self
    }
    /// Dropout on the outputs of every layer but the last, in training (default 0).
    pub fn dropout(mut self, p: f64) -> Self {
        self.dropout = p;
        self
    }
    /// With or without the biases `b_ih`, `b_hh` (default: with).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }
    /// The input weights' initializer (default PyTorch's uniform `±1/√hidden`).
    pub fn init(mut self, init: Init) -> Self {
        self.init = Some(init);
        self
    }
    /// The recurrent weights' initializer (default PyTorch's uniform `±1/√hidden`; orthogonal
    /// is a common choice against vanishing and exploding gradients through time).
    pub fn recurrent_init(mut self, init: Init) -> Self {
        self.recurrent_init = Some(init);
        self
    }
    /// Start the input bias of the gate that keeps the state at this value: the LSTM's forget
    /// gate, the GRU's update gate `z` (`h = (1 − z) n + z h₋₁`). `σ(b)` of the state is kept
    /// per step, so a positive bias makes the cell remember early in training (Jozefowicz et
    /// al. 2015 recommend 1 for the LSTM). Not for the plain RNN. Default: as initialized.
    pub fn forget_bias(mut self, value: f64) -> Self {
        self.forget_bias = value;
        self
    }
    /// The parameters' dtype (default f32).
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Draws the initial parameters from `rng`.
    pub fn build(self, rng: &mut Rng) -> Result<Recurrent> {
        let name = cell_title(self.cell);
        if self.input_size == 0 || self.hidden_size == 0 || self.num_layers == 0 {
            return Err(Error::invalid(
                name,
                format!(
                    "input size, hidden size and layers must be positive, got {}, {} and {}",
                    self.input_size, self.hidden_size, self.num_layers
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(Error::invalid(
                name,
                format!("dropout must be in [0, 1), got {}", self.dropout),
            ));
        }
        if let Some(v) = self.mask_value {
            Error::check_finite(name, "mask_value", v)?;
        }
        Error::check_finite(name, "forget_bias", self.forget_bias)?;
        if self.forget_bias != 0.0 && !self.cell.keeps_state_by_gate() {
            return Err(Error::invalid(
                name,
                "forget_bias applies to the LSTM's forget gate and the GRU's update gate only",
            ));
        }
        let (h, gh) = (self.hidden_size, self.cell.gates() * self.hidden_size);
        let bound = 1.0 / (h as f64).sqrt();
        let default = Init::Uniform {
            low: -bound,
            high: bound,
        };
        let var = |init: &Init, shape: Vec<usize>, rng: &mut Rng| -> Result<Var> {
            Var::new(&init.tensor(shape, self.dtype, rng)?)
        };
        let mut stack = Vec::with_capacity(self.num_layers);
        for l in 0..self.num_layers {
            let inputs = if l == 0 { self.input_size } else { h };
            let w_ih = var(
                self.init.as_ref().unwrap_or(&default),
                vec![gh, inputs],
                rng,
            )?;
            let w_hh = var(
                self.recurrent_init.as_ref().unwrap_or(&default),
                vec![gh, h],
                rng,
            )?;
            let (b_ih, b_hh) = if self.bias {
                let b_ih = default.tensor([gh], self.dtype, rng)?;
                let b_ih = if self.forget_bias != 0.0 {
                    // The second block of the LSTM's [i, f, g, o] (forget) and of the GRU's
                    // [r, z, n] (update).
                    let mut v = b_ih.to_vec_f64();
                    v[h..2 * h].iter_mut().for_each(|b| *b = self.forget_bias);
                    Tensor::from_vec(v, [gh])?.to_dtype(self.dtype)?
                } else {
                    b_ih
                };
                (Some(Var::new(&b_ih)?), Some(var(&default, vec![gh], rng)?))
            } else {
                (None, None)
            };
            stack.push(StackLayer {
                w_ih,
                w_hh,
                b_ih,
                b_hh,
            });
        }
        Ok(Recurrent {
            cell: self.cell,
            input_size: self.input_size,
            hidden_size: h,
            stack,
            output: self.output,
            mask_value: self.mask_value,
            dropout: self.dropout,
        })
    }
}

fn cell_title(cell: RecurrentCell) -> &'static str {
    match cell {
        RecurrentCell::RnnTanh | RecurrentCell::RnnRelu => "RNN",
        RecurrentCell::Lstm => "LSTM",
        RecurrentCell::Gru => "GRU",
    }
}

impl Recurrent {
    /// Options for a layer of `cell` from `input_size` features to `hidden_size` units.
    pub fn builder(cell: RecurrentCell, input_size: usize, hidden_size: usize) -> RecurrentBuilder {
        RecurrentBuilder {
            cell,
            input_size,
            hidden_size,
            num_layers: 1,
            output: SequenceOutput::All,
            mask_value: None,
            dropout: 0.0,
            bias: true,
            init: None,
            recurrent_init: None,
            forget_bias: 0.0,
            dtype: DType::F32,
        }
    }

    /// Options for an LSTM.
    pub fn lstm(input_size: usize, hidden_size: usize) -> RecurrentBuilder {
        Self::builder(RecurrentCell::Lstm, input_size, hidden_size)
    }

    /// Options for a GRU.
    pub fn gru(input_size: usize, hidden_size: usize) -> RecurrentBuilder {
        Self::builder(RecurrentCell::Gru, input_size, hidden_size)
    }

    /// Options for a plain (Elman) RNN with tanh.
    pub fn rnn(input_size: usize, hidden_size: usize) -> RecurrentBuilder {
        Self::builder(RecurrentCell::RnnTanh, input_size, hidden_size)
    }

    /// The cell.
    pub fn cell(&self) -> RecurrentCell {
        self.cell
    }

    /// Hidden units per layer.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Features per input step.
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// What the layer returns.
    pub fn output(&self) -> SequenceOutput {
        self.output
    }

    /// The state a previous pass left, as `(h, c)` per stacked layer (`h` then, for the LSTM,
    /// `c`, each `[batch, hidden]`), checked against this layer and the input's batch.
    fn check_carried(
        &self,
        state: &[Tensor],
        batch: usize,
    ) -> Result<Vec<(Tensor, Option<Tensor>)>> {
        let per_layer = if self.cell.has_cell_state() { 2 } else { 1 };
        let fits_layer = state.len() == per_layer * self.stack.len()
            && state
                .iter()
                .all(|s| s.rank() == 2 && s.dims()[1] == self.hidden_size);
        if !fits_layer {
            return Err(Error::invalid(
                cell_title(self.cell),
                format!(
                    "the carried state ({} tensors) does not fit this layer ({} tensors of \
                     [batch, {}]): was it carried from another model?",
                    state.len(),
                    per_layer * self.stack.len(),
                    self.hidden_size
                ),
            ));
        }
        if let Some(other) = state.iter().find(|s| s.dims()[0] != batch) {
            return Err(Error::bad_shape(
                cell_title(self.cell),
                other.shape(),
                format!(
                    "the carried state is for a batch of {}, this input has {batch} sequences: \
                     call Ctx::reset_state before feeding other sequences",
                    other.dims()[0]
                ),
            ));
        }
        Ok(state
            .chunks(per_layer)
            .map(|layer| (layer[0].clone(), layer.get(1).cloned()))
            .collect())
    }

    /// The step mask of `x: [batch, time, features]`: false where every feature equals the mask
    /// value.
    fn step_mask(&self, x: &Tensor) -> Option<Vec<bool>> {
        let value = self.mask_value?;
        let features = self.input_size;
        let data = x.to_vec_f64();
        Some(
            data.chunks(features)
                .map(|step| step.iter().any(|&v| v != value))
                .collect(),
        )
    }
}

impl Module for Recurrent {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let name = cell_title(self.cell);
        let (b, t) = match *x.dims() {
            [b, t, f] if f == self.input_size => (b, t),
            _ => {
                return Err(Error::bad_shape(
                    name,
                    x.shape(),
                    format!(
                        "expects [batch, time, {}] (batch-first sequences of {} features); \
                         reshape flat rows with a reshape layer [time, {}]",
                        self.input_size, self.input_size, self.input_size
                    ),
                ));
            }
        };
        if t == 0 {
            return Err(Error::bad_shape(name, x.shape(), "the sequences are empty"));
        }
        let mask = self.step_mask(x);
        let gh = self.cell.gates() * self.hidden_size;
        // A state-carrying pass starts each stacked layer where the previous pass left it.
        let carried = match ctx.state() {
            Some(state) => Some(self.check_carried(state, b)?),
            None => None,
        };
        let carrying = ctx.is_carrying_state();
        let mut last_states = Vec::new();
        let mut h = x.clone();
        for (l, layer) in self.stack.iter().enumerate() {
            if l > 0 && ctx.is_training() && self.dropout > 0.0 {
                h = h.dropout(self.dropout, ctx.rng())?;
            }
            // The input projections of all steps at once: one [batch·time, in] GEMM.
            let inputs = h.dims()[2];
            let mut gx = h
                .reshape([b * t, inputs])?
                .matmul(&layer.w_ih.as_tensor().t()?)?;
            if let Some(b_ih) = &layer.b_ih {
                gx = gx.add(&b_ih.as_tensor())?;
            }
            let b_hh = layer.b_hh.as_ref().map(Var::as_tensor);
            let (h0, c0) = match &carried {
                Some(state) => (Some(&state[l].0), state[l].1.as_ref()),
                None => (None, None),
            };
            let (hs, last_cell) = gx.reshape([b, t, gh])?.recurrence(
                self.cell,
                &layer.w_hh.as_tensor(),
                b_hh.as_ref(),
                h0,
                c0,
                mask.as_deref(),
            )?;
            if carrying {
                let last = hs.narrow(1, t - 1, 1)?.reshape([b, self.hidden_size])?;
                last_states.push(last.detach());
                last_states.extend(last_cell);
            }
            h = hs;
        }
        if carrying {
            ctx.put_state(last_states);
        }
        match self.output {
            SequenceOutput::All => Ok(h),
            SequenceOutput::Last => h.narrow(1, t - 1, 1)?.squeeze(1),
        }
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        for (l, layer) in self.stack.iter().enumerate() {
            f(&format!("weight_ih_l{l}"), &layer.w_ih, VarKind::Parameter);
            f(&format!("weight_hh_l{l}"), &layer.w_hh, VarKind::Parameter);
            if let Some(b) = &layer.b_ih {
                f(&format!("bias_ih_l{l}"), b, VarKind::Parameter);
            }
            if let Some(b) = &layer.b_hh {
                f(&format!("bias_hh_l{l}"), b, VarKind::Parameter);
            }
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{}({} -> {}",
            cell_title(self.cell),
            self.input_size,
            self.hidden_size
        );
        if self.cell == RecurrentCell::RnnRelu {
            s.push_str(", relu");
        }
        if self.stack.len() > 1 {
            s.push_str(&format!(", {} layers", self.stack.len()));
        }
        if self.output == SequenceOutput::Last {
            s.push_str(", last step");
        }
        if let Some(v) = self.mask_value {
            s.push_str(&format!(", mask {v}"));
        }
        s.push(')');
        s
    }
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

//! The `Module` trait: a forward pass plus a visitor over named parameters and buffers, which
//! optimizers, checkpoints and diagnostics all walk the same way.

use nabla_core::{Result, Rng, Tensor, Var};
use std::collections::HashMap;

/// Training or evaluation behaviour (dropout active, batch statistics vs running statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// What a visited variable is: a trainable parameter (optimized) or a buffer (saved with the
/// model, not optimized: BatchNorm's running statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Parameter,
    Buffer,
}

/// The context of one forward pass: the mode, the random numbers dropout draws from, and
/// optionally a record ("taps") of every layer's output by name, so that a loss can sit on a
/// hidden node (sparse autoencoders) and diagnostics can see activations, and the state
/// recurrent layers carry from one pass to the next ([`Ctx::carrying_state`]).
pub struct Ctx {
    mode: Mode,
    rng: Rng,
    taps: Option<Vec<(String, Tensor)>>,
    scope: Vec<String>,
    carried: Option<HashMap<String, Vec<Tensor>>>,
}

/// The recurrent state one context carried, by layer path, to hand to the next
/// ([`Ctx::take_state`], [`Ctx::carrying`]). The default is empty: a pass starts from zero.
#[derive(Debug, Clone, Default)]
pub struct CarriedState(HashMap<String, Vec<Tensor>>);

impl Ctx {
    /// A training-mode context drawing its randomness from `rng`.
    pub fn train(rng: Rng) -> Ctx {
        Ctx {
            mode: Mode::Train,
            rng,
            taps: None,
            scope: Vec::new(),
            carried: None,
        }
    }

    /// An evaluation-mode context (no randomness is used in eval mode).
    pub fn eval() -> Ctx {
        Ctx {
            mode: Mode::Eval,
            rng: Rng::seed(0),
            taps: None,
            scope: Vec::new(),
            carried: None,
        }
    }

    /// Also record every named layer's output (see [`Ctx::taps`]).
    pub fn with_taps(mut self) -> Ctx {
        self.taps = Some(Vec::new());
        self
    }

    /// Also carry the recurrent layers' state from one forward pass to the next: each pass
    /// starts where the previous one ended, so a sequence can be fed a few steps at a time
    /// (generation one step per pass, O(1) per step instead of re-reading a window; truncated
    /// backpropagation through time). The first pass starts from zero. The state is kept per
    /// layer path (`"1"`, `"0.block.2"`) outside the graph: no gradient flows back through it
    /// into an earlier pass. The whole model must run step by step for the outputs to equal
    /// one pass over the whole sequence: see [`Module::runs_step_by_step`].
    pub fn carrying_state(mut self) -> Ctx {
        self.carried = Some(HashMap::new());
        self
    }

    /// Carries on from `state`, the state another context left ([`Ctx::take_state`]): truncated
    /// backpropagation through time makes a fresh training context per batch (its own
    /// randomness) and hands it the state the previous batch's pass ended in.
    pub fn carrying(mut self, state: CarriedState) -> Ctx {
        self.carried = Some(state.0);
        self
    }

    /// The state carried so far, leaving this context carrying an empty one (the next pass would
    /// start from zero). Empty when the context carries no state.
    pub fn take_state(&mut self) -> CarriedState {
        CarriedState(
            self.carried
                .as_mut()
                .map(std::mem::take)
                .unwrap_or_default(),
        )
    }

    /// Forgets the carried state: the next pass starts from zero again.
    pub fn reset_state(&mut self) {
        if let Some(carried) = &mut self.carried {
            carried.clear();
        }
    }

    /// Whether this context carries recurrent state between passes.
    pub fn is_carrying_state(&self) -> bool {
        self.carried.is_some()
    }

    /// For a stateful layer: the state the previous pass left at this layer's path (`None` on
    /// the first pass, or when the context carries no state). It stays until
    /// [`Ctx::put_state`] replaces it, so a pass that fails leaves it as it was.
    pub fn state(&self) -> Option<&[Tensor]> {
        let path = self.scope.join(".");
        self.carried.as_ref()?.get(&path).map(Vec::as_slice)
    }

    /// For a stateful layer: the state the next pass starts from at this layer's path (ignored
    /// unless the context carries state).
    pub fn put_state(&mut self, state: Vec<Tensor>) {
        let path = self.scope.join(".");
        if let Some(carried) = &mut self.carried {
            carried.insert(path, state);
        }
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether this is a training pass.
    pub fn is_training(&self) -> bool {
        self.mode == Mode::Train
    }

    /// The random-number source (dropout masks).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The recorded layer outputs, in forward order, named by their path (`"2"`, `"1.block.0"`);
    /// empty unless the context was made [`Ctx::with_taps`].
    pub fn taps(&self) -> &[(String, Tensor)] {
        self.taps.as_deref().unwrap_or(&[])
    }

    /// The output recorded under `path`, if any.
    pub fn tap(&self, path: &str) -> Option<&Tensor> {
        self.taps().iter().find(|(p, _)| p == path).map(|(_, t)| t)
    }

    /// Runs a child's forward pass under the name `name` and records its output when taps are on.
    /// Containers call this for each child so that every layer's output gets its path, and an
    /// error names the layer (`layer 2 (Linear(128 -> 10)): ...`; nested containers nest).
    pub fn child(
        &mut self,
        name: &dyn std::fmt::Display,
        module: &dyn Module,
        x: &Tensor,
    ) -> Result<Tensor> {
        // The path is only built when taps are on or state is carried (keyed by path): a plain
        // forward pass allocates nothing here.
        let tapping = self.taps.is_some();
        let scoped = tapping || self.carried.is_some();
        if scoped {
            self.scope.push(name.to_string());
        }
        let result = module.forward(x, self);
        let path = tapping.then(|| self.scope.join("."));
        if scoped {
            self.scope.pop();
        }
        let y = nabla_core::ResultExt::context(result, || {
            format!("layer {name} ({})", module.describe())
        })?;
        if let (Some(taps), Some(path)) = (&mut self.taps, path) {
            taps.push((path, y.clone()));
        }
        Ok(y)
    }
}

/// A named trainable parameter or buffer, as a visitor sees it.
pub type NamedVar = (String, Var);

/// A layer or a composition of layers.
pub trait Module: Send + Sync {
    /// The forward pass.
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor>;

    /// Calls `f(name, var, kind)` for each parameter and buffer this module owns directly or
    /// through its children, with PyTorch's names (`weight`, `0.bias`, `running_mean`).
    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        let _ = f;
    }

    /// A one-line description for messages and summaries (`Linear(784 -> 256)`).
    fn describe(&self) -> String;

    /// Children as `(name, module)`, for summaries and diagnostics; empty for leaf layers.
    fn children(&self) -> Vec<(String, &dyn Module)> {
        Vec::new()
    }

    /// Whether a sequence `[batch, time, ...]` can go through this module a few steps at a
    /// time in a [`Ctx::carrying_state`] context and give the same outputs as in one pass:
    /// each output step depends on earlier input steps only through the state recurrent layers
    /// carry. True for recurrent layers, for layers that act on each step alone (linear,
    /// embedding, elementwise activations, softmax over the last dim, layer norm over the last
    /// dim), and for containers of such. False (the default) for anything that mixes steps or
    /// depends on the sequence's length: convolutions, pooling, reshape, flatten, batch norm.
    fn runs_step_by_step(&self) -> bool {
        false
    }
}

/// Convenience queries every module gets.
pub trait ModuleExt: Module {
    /// Trainable parameters with their names, in visiting order.
    fn named_parameters(&self) -> Vec<NamedVar> {
        self.named_vars(Some(VarKind::Parameter))
    }

    /// Buffers (non-trainable state) with their names.
    fn named_buffers(&self) -> Vec<NamedVar> {
        self.named_vars(Some(VarKind::Buffer))
    }

    /// Parameters and buffers: everything a checkpoint saves (PyTorch's `state_dict`).
    fn state_vars(&self) -> Vec<NamedVar> {
        self.named_vars(None)
    }

    /// The trainable parameters without names.
    fn parameters(&self) -> Vec<Var> {
        self.named_parameters()
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    }

    /// Number of trainable scalars.
    fn parameter_count(&self) -> usize {
        self.parameters().iter().map(Var::elem_count).sum()
    }

    /// A forward pass in evaluation mode without recording a graph.
    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        nabla_core::with_no_grad(|| self.forward(x, &mut Ctx::eval()))
    }

    #[doc(hidden)]
    fn named_vars(&self, kind: Option<VarKind>) -> Vec<NamedVar> {
        let mut out = Vec::new();
        self.visit(&mut |name, var, k| {
            if kind.is_none_or(|want| want == k) {
                out.push((name.to_string(), var.clone()));
            }
        });
        out
    }
}

impl<M: Module + ?Sized> ModuleExt for M {}

/// Visits a child's variables with `prefix.` in front of their names.
pub fn visit_child(prefix: &str, child: &dyn Module, f: &mut dyn FnMut(&str, &Var, VarKind)) {
    child.visit(&mut |name, var, kind| f(&format!("{prefix}.{name}"), var, kind));
}

impl<M: Module + ?Sized> Module for Box<M> {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        (**self).forward(x, ctx)
    }
    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        (**self).visit(f)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
    fn children(&self) -> Vec<(String, &dyn Module)> {
        (**self).children()
    }
    fn runs_step_by_step(&self) -> bool {
        (**self).runs_step_by_step()
    }
}

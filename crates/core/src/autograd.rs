//! Reverse-mode automatic differentiation.
//!
//! Every op that computes from a tensor that requires a gradient records a [`Node`]: its inputs
//! and a [`Backward`] rule, the op's vector-Jacobian product. [`Tensor::backward`] sorts the graph
//! topologically once and walks it in reverse, the dynamic programming of the chain rule: each
//! node's gradient is complete (the sum over all its consumers, the multivariate chain rule)
//! before it is pulled back through the node to its inputs.

use crate::shape::Dims;
use crate::tensor::{Tensor, TensorId};
use crate::{Error, Result, Var};
use smallvec::SmallVec;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError};

/// Gradients of an op's inputs, in input order; `None` where no gradient flows.
pub(crate) type InputGrads = SmallVec<[Option<Tensor>; 3]>;

/// The vector-Jacobian product of one op: given the op's inputs, its output and the gradient of
/// the loss with respect to that output, the gradients with respect to the inputs.
pub(crate) trait Backward: Send + Sync {
    /// The op's name, for error messages and diagnostics.
    fn name(&self) -> &'static str;
    /// `dL/d inputs[i]` for every input (callers skip inputs that do not require a gradient;
    /// implementations may too, via `inputs[i].requires_grad()`).
    fn backward(&self, inputs: &[Tensor], output: &Tensor, grad: &Tensor) -> Result<InputGrads>;
}

/// One recorded op: how to pull a gradient back, and to which tensors.
#[derive(Clone)]
pub(crate) struct Node {
    pub(crate) op: Arc<dyn Backward>,
    pub(crate) inputs: SmallVec<[Tensor; 2]>,
}

impl Node {
    pub(crate) fn new(op: impl Backward + 'static, inputs: &[&Tensor]) -> Node {
        Node {
            op: Arc::new(op),
            inputs: inputs.iter().map(|&t| t.clone()).collect(),
        }
    }
}

/// Drops a recorded node and every node upstream of it that nothing else holds, with a work
/// list instead of recursion (see `Drop for Inner`). A node's op goes before its inputs are
/// looked at: an op that saved an input for its backward holds a second reference to it.
pub(crate) fn release_graph(node: Node) {
    // Inline capacity: dropping a result allocates nothing unless its graph is deep.
    let mut nodes: SmallVec<[Node; 4]> = smallvec::smallvec![node];
    let mut inputs: SmallVec<[Tensor; 4]> = SmallVec::new();
    while let Some(Node {
        op,
        inputs: node_inputs,
    }) = nodes.pop()
    {
        inputs.extend(node_inputs);
        drop(op);
        for tensor in inputs.drain(..) {
            // Only the last reference frees the tensor and, with it, its node.
            if let Some(mut inner) = Arc::into_inner(tensor.0) {
                let slot = inner.node.get_mut().unwrap_or_else(PoisonError::into_inner);
                if let NodeSlot::Recorded(upstream) = std::mem::replace(slot, NodeSlot::None) {
                    nodes.push(upstream);
                }
            }
        }
    }
}

/// What a tensor knows about its origin.
pub(crate) enum NodeSlot {
    /// A leaf (a `Var`, data) or a result computed without recording.
    None,
    /// A recorded op, alive until a `backward()` releases it.
    Recorded(Node),
    /// Released by a `backward()`: the name of the op that was here.
    Released(&'static str),
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops record the graph on this thread (true unless inside [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns recording off on this thread until the guard is dropped (evaluation, optimizer steps).
#[must_use = "recording resumes as soon as the guard is dropped"]
pub fn no_grad() -> NoGradGuard {
    let previous = GRAD_ENABLED.with(|g| g.replace(false));
    NoGradGuard { previous }
}

/// Runs `f` without recording the graph.
pub fn with_no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = no_grad();
    f()
}

/// Restores the previous recording state when dropped.
pub struct NoGradGuard {
    previous: bool,
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Anything gradients can be looked up by: a tensor, a `Var`, or an id.
pub trait GradKey {
    fn grad_key(&self) -> TensorId;
}
impl GradKey for Tensor {
    fn grad_key(&self) -> TensorId {
        self.id()
    }
}
impl GradKey for Var {
    fn grad_key(&self) -> TensorId {
        self.id()
    }
}
impl GradKey for TensorId {
    fn grad_key(&self) -> TensorId {
        *self
    }
}
impl<K: GradKey + ?Sized> GradKey for &K {
    fn grad_key(&self) -> TensorId {
        (**self).grad_key()
    }
}

/// The gradients computed by one backward pass, for every tensor of the graph that requires one:
/// parameters and hidden nodes alike.
#[derive(Default, Clone)]
pub struct Grads {
    map: HashMap<TensorId, Tensor>,
}

impl std::fmt::Debug for Grads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.map.iter()).finish()
    }
}

impl Grads {
    /// The gradient of the loss with respect to `key`, if it took part in the graph.
    pub fn get(&self, key: impl GradKey) -> Option<&Tensor> {
        self.map.get(&key.grad_key())
    }

    /// Removes and returns a gradient.
    pub fn remove(&mut self, key: impl GradKey) -> Option<Tensor> {
        self.map.remove(&key.grad_key())
    }

    /// Sets a gradient (e.g. after clipping).
    pub fn insert(&mut self, key: impl GradKey, grad: Tensor) {
        self.map.insert(key.grad_key(), grad);
    }

    /// Number of stored gradients.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no gradient is stored.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All (id, gradient) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&TensorId, &Tensor)> {
        self.map.iter()
    }
}

impl Tensor {
    /// Backpropagates from this scalar (e.g. a loss): returns the gradient of every tensor of the
    /// graph that requires one, and releases the graph's buffers (a second `backward` through the
    /// same graph is an error; use [`Tensor::backward_retain`] to keep it).
    pub fn backward(&self) -> Result<Grads> {
        self.backward_impl(None, false, None)
    }

    /// Like [`Tensor::backward`] but keeps the graph, so that it can be walked again.
    pub fn backward_retain(&self) -> Result<Grads> {
        self.backward_impl(None, true, None)
    }

    /// Backpropagates like [`Tensor::backward`], checking every op's gradients (PyTorch's
    /// `detect_anomaly`, for one pass): stops at the first op whose backward turns a finite
    /// output gradient into a NaN or infinite input gradient, and says which. The gradients
    /// are those computed up to there.
    pub fn backward_detect_anomaly(&self) -> Result<(Grads, Option<crate::anomaly::Anomaly>)> {
        let mut found = None;
        let grads = self.backward_impl(None, false, Some(&mut found))?;
        Ok((grads, found))
    }

    /// Backpropagates the cotangent `grad` (same shape as `self`): the vector-Jacobian product
    /// for a non-scalar output.
    pub fn backward_with(&self, grad: &Tensor, retain_graph: bool) -> Result<Grads> {
        self.backward_impl(Some(grad), retain_graph, None)
    }

    fn backward_impl(
        &self,
        seed: Option<&Tensor>,
        retain: bool,
        mut anomaly: Option<&mut Option<crate::anomaly::Anomaly>>,
    ) -> Result<Grads> {
        if !self.requires_grad() {
            return Err(Error::Backward(format!(
                "this tensor (shape {}) does not depend on any Var: there is nothing to \
                 differentiate (was it computed under no_grad, or from detached tensors?)",
                self.shape()
            )));
        }
        let seed = match seed {
            Some(g) => {
                if g.shape() != self.shape() {
                    return Err(Error::ShapeMismatch {
                        op: "backward",
                        lhs: self.shape().clone().into(),
                        rhs: g.shape().clone().into(),
                        reason: "the cotangent must have the output's shape".into(),
                    });
                }
                self.same_dtype("backward", g)?;
                g.detach()
            }
            None => {
                if self.elem_count() != 1 {
                    return Err(Error::Backward(format!(
                        "backward() needs a scalar output, got shape {}; reduce it first (sum, \
                         mean) or pass a cotangent with backward_with()",
                        self.shape()
                    )));
                }
                Tensor::ones(self.shape().clone(), self.dtype())
            }
        };
        let _no_grad = no_grad();
        let order = topological_order(self)?;
        let mut grads: HashMap<TensorId, Tensor> = HashMap::with_capacity(order.len());
        grads.insert(self.id(), seed);
        for tensor in order.iter().rev() {
            let node = {
                let mut slot = tensor.0.node.lock().unwrap_or_else(|p| p.into_inner());
                match &*slot {
                    NodeSlot::Recorded(node) if retain => Some(node.clone()),
                    NodeSlot::Recorded(node) => {
                        let name = node.op.name();
                        match std::mem::replace(&mut *slot, NodeSlot::Released(name)) {
                            NodeSlot::Recorded(node) => Some(node),
                            _ => unreachable!(),
                        }
                    }
                    _ => None,
                }
            };
            let Some(node) = node else { continue };
            let Some(grad) = grads.get(&tensor.id()).cloned() else {
                continue;
            };
            let input_grads = node.op.backward(&node.inputs, tensor, &grad)?;
            if let Some(found) = anomaly.as_deref_mut()
                && crate::anomaly::is_finite(&grad)
                && input_grads
                    .iter()
                    .flatten()
                    .any(|g| !crate::anomaly::is_finite(g))
            {
                *found = Some(crate::anomaly::Anomaly::backward(
                    &node,
                    &grad,
                    &input_grads,
                ));
                return Ok(Grads { map: grads });
            }
            for (input, g) in node.inputs.iter().zip(input_grads) {
                let Some(g) = g else { continue };
                if !input.requires_grad() {
                    continue;
                }
                if g.shape() != input.shape() {
                    return Err(Error::Backward(format!(
                        "internal error: the backward of `{}` gave a gradient of shape {} for an \
                         input of shape {}",
                        node.op.name(),
                        g.shape(),
                        input.shape()
                    )));
                }
                match grads.remove(&input.id()) {
                    Some(acc) => grads.insert(input.id(), acc.add(&g)?),
                    None => grads.insert(input.id(), g),
                };
            }
        }
        Ok(Grads { map: grads })
    }
}

/// The tensors reachable from `root` through recorded nodes, each after all of its inputs.
pub(crate) fn topological_order(root: &Tensor) -> Result<Vec<Tensor>> {
    let mut order = Vec::new();
    let mut visited: HashSet<TensorId> = HashSet::new();
    // Iterative DFS: (tensor, inputs already pushed?)
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((tensor, expanded)) = stack.pop() {
        if expanded {
            order.push(tensor);
            continue;
        }
        if !visited.insert(tensor.id()) {
            continue;
        }
        let inputs: SmallVec<[Tensor; 2]> = {
            let slot = tensor.0.node.lock().unwrap_or_else(|p| p.into_inner());
            match &*slot {
                NodeSlot::Recorded(node) => node.inputs.clone(),
                NodeSlot::Released(name) => {
                    return Err(Error::Backward(format!(
                        "the graph through `{name}` (output shape {}) was already released by an \
                         earlier backward(); call backward_retain() the first time to walk it twice",
                        tensor.shape()
                    )));
                }
                NodeSlot::None => SmallVec::new(),
            }
        };
        stack.push((tensor, true));
        for input in inputs {
            if input.requires_grad() && !visited.contains(&input.id()) {
                stack.push((input, false));
            }
        }
    }
    Ok(order)
}

/// Dims helper shared by backward rules: which dims of `from` collapse when summing to `to`.
pub(crate) fn reduced_dims_for_broadcast(from: &[usize], to: &[usize]) -> Dims {
    let extra = from.len() - to.len();
    let mut dims: Dims = (0..extra).collect();
    for i in 0..to.len() {
        if to[i] == 1 && from[i + extra] != 1 {
            dims.push(i + extra);
        }
    }
    dims
}

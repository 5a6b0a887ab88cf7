//! The backward pass: one reverse sweep over the tape.
//!
//! Recording order is a topological order, so the sweep walks the nodes from the output
//! back to the first node once, with no recursion (a chain of a million ops does not touch
//! the stack) and no sorting. A node's gradient is taken out of the accumulator as soon as
//! it has been passed on to its inputs, so memory for intermediate gradients is released
//! as the sweep goes. Nodes that lead to no leaf wanting a gradient were marked when they
//! were recorded and are skipped, as are inputs that do not need one.
//!
//! Two sweeps share the same rules (see [`crate::Algebra`]): [`Var::backward`] runs them on
//! tensors, [`Var::backward_create_graph`] records them on the tape.

use std::mem::ManuallyDrop;

use smallvec::SmallVec;

use crate::error::{ok, shape_error, Result};
use crate::graph::Graph;
use crate::ops::reduce::ReduceOp;
use crate::ops::unary::{Unary, S};
use crate::ops::{BackwardArgs, Op};
use crate::params::{ParamKey, ParamMap};
use crate::tensor::{unravel, Tensor};
use crate::var::Var;
use crate::Float;

/// Gradients of one backward pass, by leaf [`Var`] and by parameter key.
///
/// They outlive the graph: an optimizer reads them by [`ParamKey`] after the tape is gone.
/// Gradients of several backward passes (micro-batches) add up with
/// [`Gradients::accumulate`].
#[derive(Clone, Debug)]
pub struct Gradients<T: Float> {
    graph_id: u64,
    /// `(node id, gradient)` of leaves, ascending by id.
    leaves: Vec<(u32, Tensor<T>)>,
    /// Taken out (not dropped) by `Drop`, to be reused: an empty map allocates.
    params: ManuallyDrop<ParamMap<Tensor<T>>>,
}

/// The emptied containers of dropped [`Gradients`], per element type and thread, so the
/// next backward pass fills them instead of allocating new ones.
struct Spare<T: Float> {
    leaves: Vec<Vec<(u32, Tensor<T>)>>,
    params: Vec<ParamMap<Tensor<T>>>,
}

thread_local! {
    static SPARE: std::cell::RefCell<[Option<Box<dyn std::any::Any>>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

/// Runs `f` on this thread's spare containers for `T` (`None` while the thread is being
/// torn down).
fn with_spare<T: Float, R>(f: impl FnOnce(&mut Spare<T>) -> R) -> Option<R> {
    let slot = usize::from(T::DTYPE != "f32");
    SPARE
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let any = s[slot].get_or_insert_with(|| {
                Box::new(Spare::<T> {
                    leaves: Vec::new(),
                    params: Vec::new(),
                })
            });
            any.downcast_mut::<Spare<T>>().map(f)
        })
        .ok()
        .flatten()
}

impl<T: Float> Drop for Gradients<T> {
    fn drop(&mut self) {
        let mut leaves = std::mem::take(&mut self.leaves);
        // SAFETY: `params` is not used again: this is the destructor.
        let mut params = unsafe { ManuallyDrop::take(&mut self.params) };
        leaves.clear();
        params.clear();
        with_spare::<T, _>(|s| {
            // Bounded: a few containers cover every pattern of live gradients.
            if s.leaves.len() < 8 {
                s.leaves.push(leaves);
                s.params.push(params);
            }
        });
    }
}

impl<T: Float> Gradients<T> {
    fn new(graph_id: u64) -> Self {
        let (leaves, params) =
            with_spare::<T, _>(|s| (s.leaves.pop(), s.params.pop())).unwrap_or((None, None));
        Gradients {
            graph_id,
            leaves: leaves.unwrap_or_default(),
            params: ManuallyDrop::new(params.unwrap_or_default()),
        }
    }

    /// Parameter gradients computed some other way — per-example gradients clipped and
    /// summed, a gradient averaged across processes — for an optimizer step. They hold no
    /// leaf gradients ([`Gradients::get`] of any `Var` panics: they belong to no graph).
    /// A key given twice keeps the sum.
    ///
    /// # Panics
    /// If a key given twice has gradients of different shapes.
    #[track_caller]
    pub fn from_params(params: impl IntoIterator<Item = (ParamKey, Tensor<T>)>) -> Self {
        let mut out = Gradients::new(0);
        for (k, g) in params {
            match out.params.get_mut(k) {
                Some(acc) => add_into(acc, &g),
                None => {
                    out.params.insert(k, g);
                }
            }
        }
        out
    }

    /// The gradient with respect to a leaf of the graph that was differentiated (or an
    /// intermediate marked with [`Var::retain_grad`] before the pass), or `None` if no
    /// gradient reached it.
    ///
    /// # Panics
    /// If `v` belongs to another graph, or is an intermediate value not retained.
    #[track_caller]
    pub fn get(&self, v: Var<'_, T>) -> Option<&Tensor<T>> {
        assert!(
            v.graph.id() == self.graph_id,
            "Gradients::get: the Var belongs to graph {}, these gradients to graph {}",
            v.graph.id(),
            self.graph_id
        );
        check_kept("Gradients::get", v);
        self.leaves
            .binary_search_by_key(&v.id, |e| e.0)
            .ok()
            .map(|i| &self.leaves[i].1)
    }

    /// The gradient with respect to a leaf (or a retained intermediate); zeros of its shape
    /// if no gradient reached it (it does not influence the output).
    ///
    /// # Panics
    /// If `v` belongs to another graph, or is an intermediate value not marked with
    /// [`Var::retain_grad`] (its gradient was released during the pass).
    #[track_caller]
    pub fn wrt(&self, v: Var<'_, T>) -> Tensor<T> {
        match self.get(v) {
            Some(g) => g.clone(),
            None => Tensor::zeros(v.shape()),
        }
    }

    /// The gradient of a parameter (summed over every time it was put on the tape), or
    /// `None` if it got none (frozen, unused, or not on this tape).
    pub fn param(&self, key: ParamKey) -> Option<&Tensor<T>> {
        self.params.get(key)
    }

    /// `(key, gradient)` for every parameter that got a gradient.
    pub fn params(&self) -> impl Iterator<Item = (ParamKey, &Tensor<T>)> + '_ {
        self.params.iter()
    }

    /// Every parameter gradient, writable (for clipping in place).
    pub fn params_mut(&mut self) -> impl Iterator<Item = (ParamKey, &mut Tensor<T>)> + '_ {
        self.params.iter_mut()
    }

    /// The gradient of a parameter, writable (e.g. for clipping in place).
    pub fn param_mut(&mut self, key: ParamKey) -> Option<&mut Tensor<T>> {
        self.params.get_mut(key)
    }

    /// Adds another pass's gradients into these: parameter gradients by key, leaf
    /// gradients by node when both passes ran on the same graph. Use it to accumulate
    /// micro-batches before one optimizer step.
    ///
    /// # Panics
    /// If a gradient's shape differs from the one it is added to.
    #[track_caller]
    pub fn accumulate(&mut self, mut other: Gradients<T>) {
        for (k, g) in other.params.drain() {
            match self.params.get_mut(k) {
                Some(mine) => add_into(mine, &g),
                None => {
                    self.params.insert(k, g);
                }
            }
        }
        if other.graph_id == self.graph_id {
            for (id, g) in other.leaves.drain(..) {
                match self.leaves.binary_search_by_key(&id, |e| e.0) {
                    Ok(i) => add_into(&mut self.leaves[i].1, &g),
                    Err(i) => self.leaves.insert(i, (id, g)),
                }
            }
        }
    }

    /// Multiplies every gradient by `c` (e.g. `1/n` after accumulating `n` micro-batches).
    pub fn scale(&mut self, c: T) {
        for (_, g) in self.leaves.iter_mut() {
            *g *= c;
        }
        for (_, g) in self.params.iter_mut() {
            *g *= c;
        }
    }
}

/// Panics unless `v`'s gradient is kept by backward passes (a leaf, or retained).
#[track_caller]
fn check_kept<T: Float>(what: &str, v: Var<'_, T>) {
    let nodes = v.graph.nodes();
    let n = &nodes[v.id as usize];
    if !n.op.is_leaf() && !n.retain {
        panic!(
            "{what}: %{} is an intermediate value (op `{}`); its gradient is released during the backward pass. Call `.retain_grad()` on it before `backward()` to keep it",
            v.id,
            n.op.name()
        );
    }
}

#[track_caller]
fn add_into<T: Float>(acc: &mut Tensor<T>, g: &Tensor<T>) {
    assert!(
        acc.shape() == g.shape(),
        "gradient accumulation: shapes {:?} and {:?} differ",
        acc.shape(),
        g.shape()
    );
    *acc += g;
}

/// Gradients recorded on the tape by [`Var::backward_create_graph`]: each is a `Var`, so it
/// can be differentiated again.
pub struct VarGradients<'g, T: Float> {
    graph: &'g Graph<T>,
    /// `(leaf id, gradient node id)`, ascending by leaf id.
    leaves: Vec<(u32, u32)>,
}

impl<'g, T: Float> VarGradients<'g, T> {
    /// The gradient with respect to a leaf (or a retained intermediate), as a `Var` on the
    /// same tape (a zero constant if no gradient reached it).
    ///
    /// # Panics
    /// If `v` belongs to another graph or is an intermediate value not retained.
    #[track_caller]
    pub fn wrt_var(&self, v: Var<'g, T>) -> Var<'g, T> {
        assert!(
            std::ptr::eq(v.graph, self.graph),
            "wrt_var: the Var belongs to another graph"
        );
        check_kept("VarGradients::wrt_var", v);
        match self.leaves.binary_search_by_key(&v.id, |e| e.0) {
            Ok(i) => Var::new(self.graph, self.leaves[i].1),
            Err(_) => self.graph.constant(Tensor::zeros(v.shape())),
        }
    }

    /// The gradient's value with respect to a leaf.
    ///
    /// # Panics
    /// If `v` belongs to another graph.
    #[track_caller]
    pub fn wrt(&self, v: Var<'g, T>) -> Tensor<T> {
        self.wrt_var(v).value()
    }

    /// The gradient of a parameter as a `Var`, summed over its leaves on this tape, or
    /// `None` if it got none.
    #[track_caller]
    pub fn param_var(&self, key: ParamKey) -> Option<Var<'g, T>> {
        let mut acc: Option<Var<'g, T>> = None;
        for &(leaf, grad) in &self.leaves {
            let is_key = matches!(self.graph.nodes()[leaf as usize].op, Op::Param(k) if k == key);
            if is_key {
                let g = Var::new(self.graph, grad);
                acc = Some(match acc {
                    Some(a) => a + g,
                    None => g,
                });
            }
        }
        acc
    }
}

impl<'g, T: Float> Var<'g, T> {
    /// Differentiates this one-element value (a loss) with respect to every leaf and
    /// parameter that leads to it.
    ///
    /// # Panics
    /// If the value has more than one element (use [`Var::backward_with`]), or does not
    /// depend on anything that requires a gradient.
    #[track_caller]
    pub fn backward(self) -> Gradients<T> {
        ok(self.try_backward())
    }

    /// Differentiates this one-element value (see [`Var::backward`]).
    ///
    /// # Errors
    /// If the value has more than one element, or does not depend on anything that
    /// requires a gradient.
    #[track_caller]
    pub fn try_backward(self) -> Result<Gradients<T>> {
        self.try_backward_with(&self.unit_seed()?)
    }

    /// The seed of a one-element output's backward pass: a one of its shape.
    #[track_caller]
    fn unit_seed(self) -> Result<Tensor<T>> {
        let shape = self.shape();
        if self.numel() != 1 {
            return Err(shape_error(
                "backward",
                &[&shape],
                "backward() needs a one-element output; pass a seed gradient with backward_with()",
            ));
        }
        Ok(Tensor::ones(shape))
    }

    /// Differentiates with an explicit seed gradient of this value's shape (a
    /// vector-Jacobian product).
    ///
    /// # Panics
    /// If the seed's shape differs or nothing requires a gradient.
    #[track_caller]
    pub fn backward_with(self, seed: &Tensor<T>) -> Gradients<T> {
        ok(self.try_backward_with(seed))
    }

    /// Differentiates with an explicit seed gradient (see [`Var::backward_with`]).
    ///
    /// # Errors
    /// If the seed's shape differs or nothing requires a gradient.
    #[track_caller]
    pub fn try_backward_with(self, seed: &Tensor<T>) -> Result<Gradients<T>> {
        self.check_seed(seed.shape())?;
        Ok(sweep_tensors(self.graph, self.id, seed.clone(), None))
    }

    /// [`Var::try_backward`], calling `ready(key, gradient)` during the sweep as soon as a
    /// parameter's gradient is complete — once the sweep has passed every op that uses the
    /// parameter — so, for a network, last layer first. Data-parallel training starts
    /// reducing those gradients while the sweep goes on (PyTorch DDP's overlap). A parameter
    /// is reported at most once; one whose earliest use on the tape gets no gradient is not
    /// reported (its gradient, if any, is in the result as always).
    ///
    /// ```
    /// use tapegrad_core::{Graph, ParamStore, Tensor};
    /// let mut store = ParamStore::<f64>::new();
    /// let a = store.insert("a", Tensor::from_vec(vec![2.0], [1]));
    /// let b = store.insert("b", Tensor::from_vec(vec![3.0], [1]));
    /// let g = Graph::new();
    /// let y = (g.param(&store, a) * g.param(&store, b)).sum();
    /// let mut order = Vec::new();
    /// let grads = y.try_backward_with_ready(&mut |k, grad| order.push((store.name(k).to_string(), grad.to_vec()))).unwrap();
    /// assert_eq!(order, vec![("b".to_string(), vec![2.0]), ("a".to_string(), vec![3.0])]);
    /// assert_eq!(grads.param(a).unwrap().to_vec(), vec![3.0]);
    /// ```
    ///
    /// # Errors
    /// As [`Var::try_backward`].
    #[track_caller]
    pub fn try_backward_with_ready(
        self,
        ready: &mut dyn FnMut(ParamKey, &Tensor<T>),
    ) -> Result<Gradients<T>> {
        let seed = self.unit_seed()?;
        self.check_seed(seed.shape())?;
        Ok(sweep_tensors(self.graph, self.id, seed, Some(ready)))
    }

    /// Differentiates this one-element value and records the backward pass on the tape:
    /// the gradients are `Var`s that can be differentiated again (Hessian-vector
    /// products, gradient penalties).
    ///
    /// ```
    /// use tapegrad_core::{Graph, Tensor};
    /// let g = Graph::<f64>::new();
    /// let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0], [2]));
    /// let y = (x * x * x).sum();                       // Σ x³
    /// let gx = y.backward_create_graph().wrt_var(x);   // 3x²
    /// let v = g.constant(Tensor::from_vec(vec![1.0, 0.5], [2]));
    /// let hv = (gx * v).sum().backward().wrt(x);       // H·v = 6x ⊙ v
    /// assert_eq!(hv.to_vec(), vec![6.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// If the value has more than one element or nothing requires a gradient.
    #[track_caller]
    pub fn backward_create_graph(self) -> VarGradients<'g, T> {
        ok(self.try_backward_create_graph())
    }

    /// Records the backward pass on the tape (see [`Var::backward_create_graph`]).
    ///
    /// # Errors
    /// If the value has more than one element or nothing requires a gradient.
    #[track_caller]
    pub fn try_backward_create_graph(self) -> Result<VarGradients<'g, T>> {
        let shape = self.shape();
        if self.numel() != 1 {
            return Err(shape_error(
                "backward_create_graph",
                &[&shape],
                "needs a one-element output; pass a seed with backward_create_graph_with()",
            ));
        }
        self.try_backward_create_graph_with(self.graph.constant(Tensor::ones(shape)))
    }

    /// Records the backward pass with an explicit seed gradient (itself a `Var`, so the
    /// result is differentiable with respect to the seed too).
    ///
    /// # Panics
    /// If the seed's shape differs or nothing requires a gradient.
    #[track_caller]
    pub fn backward_create_graph_with(self, seed: Var<'g, T>) -> VarGradients<'g, T> {
        ok(self.try_backward_create_graph_with(seed))
    }

    /// Records the backward pass with an explicit seed (see
    /// [`Var::backward_create_graph_with`]).
    ///
    /// # Errors
    /// If the seed's shape differs or nothing requires a gradient.
    ///
    /// # Panics
    /// If the seed is recorded on another graph.
    #[track_caller]
    pub fn try_backward_create_graph_with(self, seed: Var<'g, T>) -> Result<VarGradients<'g, T>> {
        self.same_graph("backward_create_graph", &seed);
        self.check_seed(&seed.shape())?;
        Ok(sweep_vars(self.graph, self.id, seed.id))
    }

    #[track_caller]
    fn check_seed(&self, seed: &[usize]) -> Result<()> {
        let shape = self.shape();
        if seed != shape.as_slice() {
            return Err(shape_error(
                "backward",
                &[&shape, seed],
                "the seed gradient must have the output's shape",
            ));
        }
        if !self.requires_grad() {
            return Err(crate::error::arg_error(
                "backward",
                "the output does not depend on any leaf or parameter that requires a gradient",
            ));
        }
        Ok(())
    }
}

/// Reports a non-finite gradient in anomaly mode.
#[track_caller]
fn anomaly_in_backward<T: Float>(graph: &Graph<T>, node: usize, input: usize, g: &Tensor<T>) {
    if let Some((at, v)) = g.first_non_finite() {
        let nodes = graph.nodes();
        let n = &nodes[node];
        panic!(
            "anomaly detected in backward: the gradient that op `{}` (recorded at {}) passes to its input {input} holds {v} at element {:?}",
            n.op.name(),
            n.location,
            unravel(at, g.shape()).as_slice()
        );
    }
}

/// The callback told that a parameter's gradient is complete.
type ReadyFn<'a, T> = dyn FnMut(ParamKey, &Tensor<T>) + 'a;

/// The first-order sweep on tensors.
#[track_caller]
fn sweep_tensors<T: Float>(
    graph: &Graph<T>,
    root: u32,
    seed: Tensor<T>,
    mut ready: Option<&mut ReadyFn<'_, T>>,
) -> Gradients<T> {
    graph.backward_ran();
    let nodes = graph.nodes();
    let anomaly = graph.anomaly_detection();
    let n = root as usize + 1;
    // With a `ready` callback: each parameter's earliest node, where its gradient is done.
    // (Built only then: an empty map allocates.)
    let first_use: Option<ParamMap<u32>> = ready.is_some().then(|| {
        let mut m = ParamMap::new();
        for (i, node) in nodes[..n].iter().enumerate() {
            if let Op::Param(key) = node.op {
                m.get_or_insert_with(key, || i as u32);
            }
        }
        m
    });
    let mut grads = graph.take_grad_slots();
    grads.resize_with(n, || None);
    grads[root as usize] = Some(seed);
    let mut out = Gradients::new(graph.id());
    // The gradient of the node just before the current one, when a unary node produced it
    // and nothing else had: a chain passes it along here instead of through the slots
    // (a write and an immediate read back of the same 64-byte slot stall the pipeline).
    // A one-element gradient travels as a bare number: its shape is its node's.
    let mut carry = Carry::Empty;
    for i in (0..n).rev() {
        let node = &nodes[i];
        let g = match std::mem::replace(&mut carry, Carry::Empty) {
            Carry::One(v) => {
                if !node.retain {
                    if let Op::Unary(u) = node.op {
                        let j = node.inputs[0] as usize;
                        let x = &nodes[j];
                        if let (Some(xv), Some(yv)) = (x.value.single(), node.value.single()) {
                            if x.requires_grad {
                                let gx = u.grad(S(xv), S(yv), S(v)).0;
                                carry = pass_one(&mut grads, &x.value, j, i, gx, |gj| {
                                    if anomaly {
                                        anomaly_in_backward(graph, i, 0, gj);
                                    }
                                });
                            }
                            continue;
                        }
                    }
                }
                Tensor::one_like(&node.value, v)
            }
            Carry::Tensor(g) => g,
            Carry::Full(v) => {
                if let (Op::Unary(u), false) = (&node.op, node.retain) {
                    let u = *u;
                    let j = node.inputs[0] as usize;
                    let x = &nodes[j];
                    if x.requires_grad {
                        let gj = if let Unary::AddScalar(_) = u {
                            Tensor::full(x.value.shape(), v)
                        } else {
                            u.backward_tensor_const(&x.value, &node.value, v)
                        };
                        if anomaly {
                            anomaly_in_backward(graph, i, 0, &gj);
                        }
                        carry = pass_tensor(&mut grads, j, i, gj);
                    }
                    continue;
                }
                Tensor::full(node.value.shape(), v)
            }
            Carry::Empty => match grads[i].take() {
                Some(g) => g,
                None => continue,
            },
        };
        if !node.requires_grad {
            continue;
        }
        if node.retain && !node.op.is_leaf() {
            out.leaves.push((i as u32, g.clone()));
        }
        if let Op::Unary(u) = node.op {
            // One input, element-wise: the fused rule accumulates straight into the
            // input's slot (no temporaries, no per-node vectors).
            let j = node.inputs[0] as usize;
            let x = &nodes[j];
            if x.requires_grad {
                if let (Some(xv), Some(yv), Some(gv)) =
                    (x.value.single(), node.value.single(), g.single())
                {
                    let gx = u.grad(S(xv), S(yv), S(gv)).0;
                    carry = pass_one(&mut grads, &x.value, j, i, gx, |gj| {
                        if anomaly {
                            anomaly_in_backward(graph, i, 0, gj);
                        }
                    });
                    continue;
                }
                let gj = if let Unary::AddScalar(_) = u {
                    // The gradient passes through unchanged: hand it on, no pass over it.
                    g
                } else {
                    u.backward_tensor(&x.value, &node.value, &g)
                };
                if anomaly {
                    anomaly_in_backward(graph, i, 0, &gj);
                }
                carry = pass_tensor(&mut grads, j, i, gj);
            }
            continue;
        }
        if node.op.is_leaf() {
            if let Op::Param(key) = node.op {
                match out.params.get_mut(key) {
                    Some(acc) => add_into(acc, &g),
                    None => {
                        out.params.insert(key, g.clone());
                    }
                }
                if let (Some(ready), Some(first)) = (ready.as_mut(), &first_use) {
                    if first.get(key) == Some(&(i as u32)) {
                        if let Some(done) = out.params.get(key) {
                            ready(key, done);
                        }
                    }
                }
            }
            out.leaves.push((i as u32, g));
            continue;
        }
        if let Op::Reduce(r) = &node.op {
            // A full sum (a loss): its gradient is one number everywhere. Handed to the
            // node just before, it never becomes a tensor if that node is element-wise.
            let j = node.inputs[0] as usize;
            if let (ReduceOp::Sum { .. }, Some(v)) = (&**r, g.single()) {
                if j + 1 == i && nodes[j].requires_grad && grads[j].is_none() && v.is_finite() {
                    carry = Carry::Full(v);
                    continue;
                }
            }
        }
        let inputs: SmallVec<[&Tensor<T>; 3]> = node
            .inputs
            .iter()
            .map(|&j| &nodes[j as usize].value)
            .collect();
        let needs: SmallVec<[bool; 3]> = node
            .inputs
            .iter()
            .map(|&j| nodes[j as usize].requires_grad)
            .collect();
        let gin = node.op.backward(BackwardArgs {
            inputs: &inputs,
            output: &node.value,
            grad: &g,
            needs: &needs,
        });
        for (k, (&j, gj)) in node.inputs.iter().zip(gin).enumerate() {
            let (Some(gj), true) = (gj, needs[k]) else {
                continue;
            };
            if anomaly {
                anomaly_in_backward(graph, i, k, &gj);
            }
            match &mut grads[j as usize] {
                Some(acc) => add_into(acc, &gj),
                slot @ None => *slot = Some(gj),
            }
        }
    }
    graph.return_grad_slots(grads);
    out.leaves.reverse();
    out
}

/// What the sweep hands from one node straight to the one before it.
enum Carry<T: Float> {
    Empty,
    Tensor(Tensor<T>),
    /// A one-element gradient, shaped like its node's value.
    One(T),
    /// A gradient whose every element is this number, shaped like its node's value.
    Full(T),
}

/// Passes the one-element gradient `gx` of node `j` (whose value is `like`) on from node
/// `i`: added to its slot if one is there, carried if `j` comes right before `i`, else put
/// in the slot. `check` sees it whenever it becomes a tensor (anomaly mode checks it then;
/// a carried number is checked when the next node makes it a tensor or passes it on).
#[inline(always)]
fn pass_one<T: Float>(
    grads: &mut [Option<Tensor<T>>],
    like: &Tensor<T>,
    j: usize,
    i: usize,
    gx: T,
    check: impl FnOnce(&Tensor<T>),
) -> Carry<T> {
    match &mut grads[j] {
        Some(acc) => {
            let g = Tensor::one_like(like, gx);
            check(&g);
            add_into(acc, &g);
            Carry::Empty
        }
        None if j + 1 == i && gx.is_finite() => Carry::One(gx),
        slot @ None => {
            let g = Tensor::one_like(like, gx);
            check(&g);
            *slot = Some(g);
            Carry::Empty
        }
    }
}

/// Passes the gradient `g` of node `j` on from node `i`: added to its slot if one is there,
/// carried if `j` comes right before `i`, else put in the slot.
#[inline(always)]
fn pass_tensor<T: Float>(
    grads: &mut [Option<Tensor<T>>],
    j: usize,
    i: usize,
    g: Tensor<T>,
) -> Carry<T> {
    match &mut grads[j] {
        Some(acc) => {
            add_into(acc, &g);
            Carry::Empty
        }
        None if j + 1 == i => Carry::Tensor(g),
        slot @ None => {
            *slot = Some(g);
            Carry::Empty
        }
    }
}

/// The recorded sweep: every rule runs on `Var`s, so the gradients are on the tape.
#[track_caller]
fn sweep_vars<'g, T: Float>(graph: &'g Graph<T>, root: u32, seed: u32) -> VarGradients<'g, T> {
    let (leaves, _) = sweep_vars_above(graph, root, seed, 0);
    VarGradients { graph, leaves }
}

/// The recorded sweep over the nodes from `root` down to `lo` only: the leaves it reached
/// (ids ≥ `lo`, with their gradients' ids), and the gradient ids that arrived at each node
/// below `lo` (indexed by node id). A rule that re-records a block of ops at the end of the
/// tape (gradient checkpointing) differentiates just that block this way, inside the sweep
/// that runs it.
#[track_caller]
pub(crate) fn sweep_vars_above<'g, T: Float>(
    graph: &'g Graph<T>,
    root: u32,
    seed: u32,
    lo: u32,
) -> (Vec<(u32, u32)>, Vec<Option<u32>>) {
    let n = root as usize + 1;
    let mut grads: Vec<Option<u32>> = vec![None; n];
    grads[root as usize] = Some(seed);
    let mut leaves = Vec::new();
    for i in (lo as usize..n).rev() {
        let Some(gid) = grads[i].take() else { continue };
        // Copy what the rule needs and release the borrow: the rule records new nodes.
        let (op, inputs, needs) = {
            let nodes = graph.nodes();
            let node = &nodes[i];
            if !node.requires_grad {
                continue;
            }
            if node.op.is_leaf() {
                leaves.push((i as u32, gid));
                continue;
            }
            if node.retain {
                leaves.push((i as u32, gid));
            }
            let needs: SmallVec<[bool; 3]> = node
                .inputs
                .iter()
                .map(|&j| nodes[j as usize].requires_grad)
                .collect();
            (node.op.clone(), node.inputs.clone(), needs)
        };
        let xs: SmallVec<[Var<'g, T>; 3]> = inputs.iter().map(|&j| Var::new(graph, j)).collect();
        let refs: SmallVec<[&Var<'g, T>; 3]> = xs.iter().collect();
        let (y, g) = (Var::new(graph, i as u32), Var::new(graph, gid));
        let gin = graph.in_backward_of(i as u32, || {
            op.backward(BackwardArgs {
                inputs: &refs,
                output: &y,
                grad: &g,
                needs: &needs,
            })
        });
        for (k, (&j, gj)) in inputs.iter().zip(gin).enumerate() {
            let (Some(gj), true) = (gj, needs[k]) else {
                continue;
            };
            if graph.anomaly_detection() {
                anomaly_in_backward(graph, i, k, &gj.value());
            }
            grads[j as usize] = Some(match grads[j as usize] {
                Some(prev) => (Var::new(graph, prev) + gj).id,
                None => gj.id,
            });
        }
    }
    leaves.reverse();
    grads.truncate(lo as usize);
    (leaves, grads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Graph, ParamStore};

    #[test]
    fn a_hundred_thousand_op_chain_does_not_overflow_the_stack() {
        let g = Graph::<f64>::with_capacity(100_001);
        let x = g.leaf(Tensor::scalar(0.5));
        let mut y = x;
        for _ in 0..100_000 {
            y = y * 0.99999 + 0.000001;
        }
        let dx = y.backward().wrt(x).item();
        assert!((dx - 0.99999f64.powi(100_000)).abs() < 1e-9, "{dx}");
        // The recorded (second-order) sweep walks the same chain without recursion too.
        let gx = y.backward_create_graph().wrt_var(x);
        assert!((gx.item() - dx).abs() < 1e-12);
    }

    /// A chain of unary ops on one element, recorded and swept by the one-element fast
    /// paths, against the same chain on two equal elements (the general paths): same bits,
    /// same shapes, also with branches (accumulation), retained intermediates, a parameter
    /// leaf, a non-differentiable op, no_grad, anomaly mode and a shape of five dimensions.
    #[test]
    fn a_parameter_used_twice_is_ready_once_with_its_whole_gradient() {
        let mut store = crate::ParamStore::<f64>::new();
        let w = store.insert("w", Tensor::from_vec(vec![2.0], [1]));
        let v = store.insert("v", Tensor::from_vec(vec![5.0], [1]));
        let g = Graph::new();
        // y = w·(w·v): ∂y/∂w = 2wv = 20, ∂y/∂v = w² = 4.
        let (w1, vv) = (g.param(&store, w), g.param(&store, v));
        let y = (g.param(&store, w) * (w1 * vv)).sum();
        let mut seen = Vec::new();
        let grads = y
            .try_backward_with_ready(&mut |k, gk| seen.push((k, gk.to_vec())))
            .unwrap();
        seen.sort_by_key(|(k, _)| store.name(*k).to_string());
        assert_eq!(seen, vec![(v, vec![4.0]), (w, vec![20.0])]);
        assert_eq!(grads.param(w).unwrap().to_vec(), vec![20.0]);
    }

    #[test]
    fn one_element_fast_paths_match_the_general_paths() {
        fn chain<'g>(x: Var<'g, f32>) -> (Var<'g, f32>, Var<'g, f32>) {
            let mut y = x;
            for i in 0..40 {
                y = match i % 5 {
                    0 => y * 0.9,
                    1 => y.tanh() + 0.1,
                    2 => y.exp() * 0.5,
                    3 => y.sigmoid().sub_scalar(0.2),
                    _ => y.square().rsub_scalar(1.0),
                };
            }
            let mid = y.retain_grad();
            let branch = mid.tanh() + mid.mul_scalar(3.0) + mid.sign(); // the slot accumulates
            (branch.log1p(), mid)
        }
        for shape in [vec![], vec![1], vec![1, 1, 1, 1, 1]] {
            for anomaly in [false, true] {
                let one = Graph::<f32>::new();
                one.set_anomaly_detection(anomaly);
                let mut store = ParamStore::new();
                let key = store.insert("p", Tensor::full(shape.clone(), 0.3f32));
                let x = one.param(&store, key);
                let (y, mid) = chain(x);
                assert_eq!(y.shape().as_slice(), shape.as_slice());
                let grads = y.sum().backward();
                let two = Graph::<f32>::new();
                let x2 = two.leaf(Tensor::full([2], 0.3f32));
                let (y2, mid2) = chain(x2);
                let grads2 = y2.sum().backward();
                assert_eq!(y.value().as_slice()[0], y2.value().as_slice()[0]);
                let dx = grads.param(key).unwrap();
                assert_eq!(dx.shape(), shape.as_slice());
                assert_eq!(dx.as_slice()[0], grads2.wrt(x2).as_slice()[0]);
                assert_eq!(grads.wrt(mid).shape(), shape.as_slice());
                assert_eq!(grads.wrt(mid).as_slice()[0], grads2.wrt(mid2).as_slice()[0]);
                // Recording off: the fast path records constants.
                let z = one.no_grad(|| x.tanh() * 2.0);
                assert!(!z.requires_grad());
            }
        }
    }

    /// The gradient of a full sum handed on as one number: against the same chain seeded
    /// with a tensor of ones (the general path), bit for bit; with the sum straight on a
    /// leaf, on a retained node, on a node used twice, and on a non-unary node.
    #[test]
    fn a_full_sum_passes_its_gradient_as_one_number() {
        let x0 = crate::testing::rand_tensor(&[3, 5], -1.0, 1.0, 31).cast::<f32>();
        type Build = fn(Var<'_, f32>) -> Var<'_, f32>;
        let chains: [Build; 5] = [
            |x| (x * 0.5 + 0.1).tanh(),
            |x| x,
            |x| x.exp().retain_grad(),
            |x| {
                let y = x.sigmoid();
                y * 2.0 + y.tanh() // y is used twice
            },
            |x| (x * x).tanh(), // a binary op before the unary one
        ];
        for (k, chain) in chains.iter().enumerate() {
            let g = Graph::<f32>::new();
            let x = g.leaf(x0.clone());
            let y = chain(x);
            let fast = y.sum().backward();
            let g2 = Graph::<f32>::new();
            let x2 = g2.leaf(x0.clone());
            let y2 = chain(x2);
            let general = y2.backward_with(&Tensor::ones(y2.shape())).wrt(x2);
            assert_eq!(fast.wrt(x).as_slice(), general.as_slice(), "chain {k}");
            assert_eq!(fast.wrt(x).shape(), &[3, 5]);
        }
    }

    #[test]
    fn a_non_finite_gradient_in_a_scalar_chain_is_caught_in_anomaly_mode() {
        let g = Graph::<f64>::new();
        g.set_anomaly_detection(true);
        let x = g.leaf(Tensor::scalar(0.0));
        let y = (x.sqrt() * 2.0 + 1.0).sum(); // d sqrt at 0 is +inf
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward()))
            .expect_err("the infinite gradient of sqrt must be reported");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("sqrt"), "{msg}");
    }

    #[test]
    fn branches_that_reach_no_leaf_are_skipped() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::scalar(2.0));
        let c = g.constant(Tensor::scalar(3.0));
        let unused = (c * c).exp(); // no leaf behind it
        assert!(!unused.requires_grad());
        let y = x * unused + x;
        assert_eq!(y.backward().wrt(x).item(), 3f64.powi(2).exp() + 1.0);
        // and a leaf outside the output's history gets zeros
        let z = g.leaf(Tensor::zeros([2]));
        let grads = (x * 2.0).backward();
        assert!(grads.get(z).is_none());
        assert_eq!(grads.wrt(z).to_vec(), vec![0.0, 0.0]);
    }

    #[test]
    fn errors_of_backward() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::zeros([2]));
        assert!(x
            .try_backward()
            .unwrap_err()
            .to_string()
            .contains("one-element"));
        let c = g.constant(Tensor::scalar(1.0));
        assert!(c
            .try_backward()
            .unwrap_err()
            .to_string()
            .contains("does not depend"));
        assert!(x.try_backward_with(&Tensor::zeros([3])).is_err());
        assert_eq!(
            x.backward_with(&Tensor::from_vec(vec![2.0, 3.0], [2]))
                .wrt(x)
                .to_vec(),
            vec![2.0, 3.0]
        );
    }

    #[test]
    fn no_grad_and_detach() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::scalar(2.0));
        let frozen = g.no_grad(|| x * x);
        assert!(!frozen.requires_grad());
        assert!(g.is_grad_enabled());
        let y = x * frozen + x.detach() * x;
        // d/dx [x·4 + 2·x] = 6
        assert_eq!(y.backward().wrt(x).item(), 6.0);
    }

    #[test]
    fn params_accumulate_across_uses_and_micro_batches() {
        let mut store = ParamStore::<f64>::new();
        let w = store.insert("w", Tensor::from_vec(vec![1.0, 2.0], [2]));
        let b = store.insert("b", Tensor::scalar(0.0));
        store.freeze(b);
        let mut total: Option<Gradients<f64>> = None;
        for batch in [1.0, 3.0] {
            let g = Graph::new();
            let (w1, w2) = (g.param(&store, w), g.param(&store, w));
            let bb = g.param(&store, b);
            assert!(!bb.requires_grad());
            let loss = ((w1 + w2) * batch + bb).sum();
            let grads = loss.backward();
            assert!(grads.param(b).is_none());
            match &mut total {
                Some(t) => t.accumulate(grads),
                None => total = Some(grads),
            }
        }
        let mut total = total.unwrap();
        assert_eq!(total.param(w).unwrap().to_vec(), vec![8.0, 8.0]);
        total.scale(0.5);
        assert_eq!(total.param(w).unwrap().to_vec(), vec![4.0, 4.0]);
    }

    #[test]
    fn reset_keeps_capacity_and_starts_over() {
        let mut g = Graph::<f32>::new();
        for _ in 0..3 {
            let x = g.leaf(Tensor::scalar(1.0));
            let y = (x * 2.0).sum();
            assert_eq!(y.backward().wrt(x).item(), 2.0);
            g.reset();
            assert!(g.is_empty());
        }
    }

    #[test]
    fn anomaly_mode_names_the_op_and_the_line() {
        let g = Graph::<f64>::new();
        g.set_anomaly_detection(true);
        let x = g.leaf(Tensor::from_vec(vec![1.0, -1.0], [2]));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| x.log()));
        let msg = r
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(
            msg.contains("op `log` produced NaN at element [1]") && msg.contains("backward.rs"),
            "{msg}"
        );
        // In backward: sqrt at 0 has an infinite gradient.
        let y = g.leaf(Tensor::from_vec(vec![0.0, 4.0], [2]));
        let s = y.sqrt().sum();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.backward()));
        let msg = r
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(
            msg.contains("op `sqrt` (recorded at") && msg.contains("backward.rs"),
            "{msg}"
        );
        // In a recorded backward: the ops sqrt's rule records are attributed to sqrt and to
        // the line where sqrt was called, not to the rule's own code.
        let g = Graph::<f64>::new();
        g.set_anomaly_detection(true);
        let y = g.leaf(Tensor::from_vec(vec![0.0, 4.0], [2]));
        let s = y.sqrt().sum();
        let line = line!() - 1;
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.backward_create_graph()));
        let msg = r
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(
            msg.starts_with("anomaly detected in the recorded backward of `sqrt` (recorded at crates/core/src/backward.rs:")
                && msg.contains(&format!("backward.rs:{line}:")),
            "{msg}"
        );
        // The attribution ends with the rule, even when it panicked.
        g.set_anomaly_detection(false);
        let z = y.exp();
        let exp_line = line!() - 1;
        let printed = g.to_string();
        let last = printed.lines().last().unwrap();
        assert!(last.contains(&format!("backward.rs:{exp_line}:")), "{last}");
        let _ = z;
    }

    #[test]
    fn a_training_loop_without_reset_is_reported_in_debug_builds() {
        let mut store = ParamStore::<f64>::new();
        let w = store.insert("w", Tensor::ones([3]));
        let g = Graph::<f64>::new();
        for _ in 0..3 {
            // The loop that forgot `g.reset()`.
            let loss = (g.param(&store, w) * 2.0).sum();
            let _ = loss.backward();
        }
        assert_eq!(g.warned_no_reset(), cfg!(debug_assertions));
        // Reusing a tape properly, and recording after a backward without re-adding a
        // parameter (a Hessian-vector product), say nothing.
        let mut g = Graph::<f64>::new();
        for _ in 0..3 {
            g.reset();
            let loss = (g.param(&store, w).square() * 2.0).sum();
            let _ = loss.backward();
            let _ = loss.backward_create_graph();
        }
        assert!(!g.warned_no_reset());
    }

    #[test]
    fn the_tape_prints() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::zeros([2, 3]));
        let _ = x.tanh().sum();
        let s = g.to_string();
        assert!(s.contains("%1 = tanh(%0) -> [2, 3]  grad  at"), "{s}");
        assert!(s.contains("%2 = sum(%1) -> []"), "{s}");
    }

    #[test]
    fn retained_intermediates_keep_their_gradient() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0], [2]));
        let h = (x * 3.0).retain_grad();
        let k = h.exp();
        let y = h.square().sum();
        let grads = y.backward();
        assert_eq!(grads.wrt(h).to_vec(), vec![6.0, 12.0]);
        assert_eq!(grads.wrt(x).to_vec(), vec![18.0, 36.0]);
        // An intermediate that was not retained is refused, with advice.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| grads.wrt(k)));
        let msg = r
            .err()
            .and_then(|p| p.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(msg.contains("retain_grad"), "{msg}");
        // The recorded pass keeps it too.
        let gv = y.backward_create_graph();
        assert_eq!(gv.wrt(h).to_vec(), vec![6.0, 12.0]);
    }
}

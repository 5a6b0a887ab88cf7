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
//! tensors (`sweep_tensors`), [`Var::backward_create_graph`] records them on the tape
//! (`sweep_vars_above`). The first-order sweep keeps its gradients in `chain::Slots`,
//! which also holds its fast path for chains of one-element and element-wise ops.

mod chain;
#[cfg(test)]
mod tests;

use smallvec::SmallVec;

pub use crate::gradients::{Gradients, VarGradients};

use crate::error::{ok, shape_error, Result};
use crate::graph::{Graph, Node};
use crate::ops::{BackwardArgs, Op};
use crate::params::{ParamKey, ParamMap};
use crate::tensor::{unravel, Tensor};
use crate::var::Var;
use crate::Float;

use chain::Slots;

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
        let rule =
            "backward() needs a one-element output; pass a seed gradient with backward_with()";
        self.one_element_seed("backward", rule)
    }

    /// A one of this value's shape if it has one element; else an error naming `op`, with
    /// `rule` saying what to do instead.
    #[track_caller]
    fn one_element_seed(self, op: &'static str, rule: &str) -> Result<Tensor<T>> {
        let shape = self.shape();
        if self.numel() != 1 {
            return Err(shape_error(op, &[&shape], rule));
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
        self.check_seed(seed.dims())?;
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
        self.check_seed(seed.dims())?;
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
        let rule = "needs a one-element output; pass a seed with backward_create_graph_with()";
        let seed = self.one_element_seed("backward_create_graph", rule)?;
        self.try_backward_create_graph_with(self.graph.constant(seed))
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
            unravel(at, g.dims()).as_slice()
        );
    }
}

/// The callback told that a parameter's gradient is complete.
type ReadyFn<'a, T> = dyn FnMut(ParamKey, &Tensor<T>) + 'a;

/// The first-order sweep on tensors: reverse mode on one screen.
#[track_caller]
fn sweep_tensors<T: Float>(
    graph: &Graph<T>,
    root: u32,
    seed: Tensor<T>,
    mut ready: Option<&mut ReadyFn<'_, T>>,
) -> Gradients<T> {
    graph.backward_ran();
    let nodes = graph.nodes();
    let nodes = &nodes[..root as usize + 1];
    // With a `ready` callback: each parameter's earliest node, where its gradient is done.
    // (Built only then: an empty map allocates.)
    let first_use: Option<ParamMap<u32>> = ready.is_some().then(|| {
        let mut m = ParamMap::new();
        for (i, node) in nodes.iter().enumerate() {
            if let Op::Param(key) = node.op {
                m.get_or_insert_with(key, || i as u32);
            }
        }
        m
    });
    let mut slots = Slots::new(graph, nodes, seed);
    let mut out = Gradients::new(graph.id());
    for (i, node) in nodes.iter().enumerate().rev() {
        let Some(g) = slots.take(i) else { continue };
        if !node.requires_grad {
            continue;
        }
        if node.retain && !node.op.is_leaf() {
            out.leaves.push((i as u32, g.clone()));
        }
        match &node.op {
            Op::Unary(u) => {
                slots.unary(i, *u, g);
                continue;
            }
            Op::Reduce(r) if slots.carry_full_sum(i, r, &g) => continue,
            op if op.is_leaf() => {
                if let Op::Param(key) = *op {
                    out.add_param(key, g.clone());
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
            _ => {}
        }
        let inputs: SmallVec<[&Tensor<T>; 3]> = node
            .inputs
            .iter()
            .map(|&j| &nodes[j as usize].value)
            .collect();
        let needs = needs_grad(nodes, node);
        let gin = node.op.backward(BackwardArgs {
            inputs: &inputs,
            output: &node.value,
            grad: &g,
            needs: &needs,
        });
        for (k, (&j, gj)) in node.inputs.iter().zip(gin).enumerate() {
            if let (Some(gj), true) = (gj, needs[k]) {
                slots.pass(i, k, j as usize, gj);
            }
        }
    }
    slots.finish();
    out.leaves.reverse();
    out
}

/// Which of `node`'s inputs want a gradient.
#[inline(always)]
fn needs_grad<T: Float>(nodes: &[Node<T>], node: &Node<T>) -> SmallVec<[bool; 3]> {
    node.inputs
        .iter()
        .map(|&j| nodes[j as usize].requires_grad)
        .collect()
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
            (
                node.op.clone(),
                node.inputs.clone(),
                needs_grad(&nodes, node),
            )
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

//! The gradient slots of the first-order sweep, and its scalar-chain fast path.
//!
//! A gradient waits in its node's slot until the sweep reaches the node. Most of a scalar
//! program's tape — a loss and its chain of one-element ops, the element-wise ops before a
//! full sum — is unary nodes each recorded right after its input. Through the slots, every
//! such node would build a gradient tensor, write it to its input's slot and read it back at
//! once (a write and an immediate read back of the same 64-byte slot stall the pipeline).
//! Here a gradient for the node just before is carried instead ([`Carry`]), as a bare number
//! when it is one element or the same number everywhere (the gradient of a full sum), and a
//! unary node that is not retained runs its fused rule on that number without building a
//! tensor. The bits are those of the general path (the tests
//! `one_element_fast_paths_match_the_general_paths` and
//! `a_full_sum_passes_its_gradient_as_one_number`).

use crate::gradients::add_into;
use crate::graph::{Graph, Node};
use crate::ops::reduce::ReduceOp;
use crate::ops::unary::{Unary, S};
use crate::ops::Op;
use crate::tensor::Tensor;
use crate::Float;

use super::anomaly_in_backward;

/// What the sweep hands from one node straight to the one before it.
enum Carry<T: Float> {
    Empty,
    Tensor(Tensor<T>),
    /// A one-element gradient, shaped like its node's value.
    One(T),
    /// A gradient whose every element is this number, shaped like its node's value.
    Full(T),
}

/// The gradients waiting for their nodes during one first-order sweep: a slot per node,
/// and the gradient carried to the node just before the one swept last.
pub(super) struct Slots<'a, T: Float> {
    graph: &'a Graph<T>,
    nodes: &'a [Node<T>],
    grads: Vec<Option<Tensor<T>>>,
    carry: Carry<T>,
    anomaly: bool,
}

impl<'a, T: Float> Slots<'a, T> {
    /// Slots for `nodes` (the tape up to the root, which holds `seed`), reusing the graph's.
    pub(super) fn new(graph: &'a Graph<T>, nodes: &'a [Node<T>], seed: Tensor<T>) -> Self {
        let mut grads = graph.take_grad_slots();
        grads.resize_with(nodes.len(), || None);
        grads[nodes.len() - 1] = Some(seed);
        Slots {
            graph,
            nodes,
            grads,
            carry: Carry::Empty,
            anomaly: graph.anomaly_detection(),
        }
    }

    /// Gives the slots back to the graph for the next sweep.
    pub(super) fn finish(self) {
        self.graph.return_grad_slots(self.grads);
    }

    /// The gradient arriving at node `i`: carried from the node after it, or waiting in its
    /// slot. `None` when none arrives — or when a carried number reached a unary node that
    /// is not retained, which passes it straight on to its input.
    #[inline(always)]
    pub(super) fn take(&mut self, i: usize) -> Option<Tensor<T>> {
        let nodes = self.nodes;
        let node = &nodes[i];
        match std::mem::replace(&mut self.carry, Carry::Empty) {
            Carry::Empty => self.grads[i].take(),
            Carry::Tensor(g) => Some(g),
            Carry::One(v) => {
                if let (Op::Unary(u), false) = (&node.op, node.retain) {
                    let j = node.inputs[0] as usize;
                    let x = &nodes[j];
                    if let (Some(xv), Some(yv)) = (x.value.single(), node.value.single()) {
                        if x.requires_grad {
                            self.pass_one(i, j, u.grad(S(xv), S(yv), S(v)).0);
                        }
                        return None;
                    }
                }
                Some(Tensor::one_like(&node.value, v))
            }
            Carry::Full(v) => {
                if let (Op::Unary(u), false) = (&node.op, node.retain) {
                    let j = node.inputs[0] as usize;
                    let x = &nodes[j];
                    if x.requires_grad {
                        let gj = if let Unary::AddScalar(_) = u {
                            Tensor::full(x.value.dims(), v)
                        } else {
                            u.backward_tensor_const(&x.value, &node.value, v)
                        };
                        self.pass_tensor(i, j, gj);
                    }
                    return None;
                }
                Some(Tensor::full(node.value.dims(), v))
            }
        }
    }

    /// The unary node `i` passes `g · u'(x)` to its input: the fused rule, on bare numbers
    /// for one element, straight into the input's slot or carried (no per-node vectors).
    #[inline(always)]
    pub(super) fn unary(&mut self, i: usize, u: Unary<T>, g: Tensor<T>) {
        let nodes = self.nodes;
        let node = &nodes[i];
        let j = node.inputs[0] as usize;
        let x = &nodes[j];
        if !x.requires_grad {
            return;
        }
        if let (Some(xv), Some(yv), Some(gv)) = (x.value.single(), node.value.single(), g.single())
        {
            self.pass_one(i, j, u.grad(S(xv), S(yv), S(gv)).0);
            return;
        }
        let gj = if let Unary::AddScalar(_) = u {
            // The gradient passes through unchanged: hand it on, no pass over it.
            g
        } else {
            u.backward_tensor(&x.value, &node.value, &g)
        };
        self.pass_tensor(i, j, gj);
    }

    /// The reduction node `i` with gradient `g`: if it is a full sum (a loss) right after
    /// its input, its gradient — one number everywhere — is carried to the input as that
    /// number, so it never becomes a tensor if the input is element-wise. `false` when the
    /// node is not handled here.
    #[inline(always)]
    pub(super) fn carry_full_sum(&mut self, i: usize, r: &ReduceOp, g: &Tensor<T>) -> bool {
        let j = self.nodes[i].inputs[0] as usize;
        if let (ReduceOp::Sum { .. }, Some(v)) = (r, g.single()) {
            if j + 1 == i && self.nodes[j].requires_grad && self.grads[j].is_none() && v.is_finite()
            {
                self.carry = Carry::Full(v);
                return true;
            }
        }
        false
    }

    /// Node `i` passes `gj` to its input `k`, node `j`: added to the slot.
    #[inline(always)]
    pub(super) fn pass(&mut self, i: usize, k: usize, j: usize, gj: Tensor<T>) {
        if self.anomaly {
            anomaly_in_backward(self.graph, i, k, &gj);
        }
        match &mut self.grads[j] {
            Some(acc) => add_into(acc, &gj),
            slot @ None => *slot = Some(gj),
        }
    }

    /// Node `i` passes the one-element gradient `gx` to node `j`: added to its slot if one
    /// is there, carried if `j` comes right before `i`, else put in the slot. Anomaly mode
    /// checks it when it becomes a tensor (a carried number is checked when the next node
    /// makes it a tensor or passes it on).
    #[inline(always)]
    fn pass_one(&mut self, i: usize, j: usize, gx: T) {
        let like = &self.nodes[j].value;
        match &mut self.grads[j] {
            Some(acc) => {
                let g = Tensor::one_like(like, gx);
                if self.anomaly {
                    anomaly_in_backward(self.graph, i, 0, &g);
                }
                add_into(acc, &g);
            }
            None if j + 1 == i && gx.is_finite() => self.carry = Carry::One(gx),
            slot @ None => {
                let g = Tensor::one_like(like, gx);
                if self.anomaly {
                    anomaly_in_backward(self.graph, i, 0, &g);
                }
                *slot = Some(g);
            }
        }
    }

    /// Node `i` passes `g` to its one input, node `j`: added to its slot if one is there,
    /// carried if `j` comes right before `i`, else put in the slot.
    #[inline(always)]
    fn pass_tensor(&mut self, i: usize, j: usize, g: Tensor<T>) {
        if self.anomaly {
            anomaly_in_backward(self.graph, i, 0, &g);
        }
        match &mut self.grads[j] {
            Some(acc) => add_into(acc, &g),
            None if j + 1 == i => self.carry = Carry::Tensor(g),
            slot @ None => *slot = Some(g),
        }
    }
}

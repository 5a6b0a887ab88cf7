//! Gradient checkpointing: run a block of ops without keeping its intermediates on the tape,
//! and recompute them during the backward pass (`torch.utils.checkpoint`, `jax.checkpoint`).
//!
//! [`checkpoint`] runs `block` on a scratch tape of its own, with the inputs' values as
//! constants, and records a single node on the caller's tape: the block's output, with the
//! inputs as its inputs. The scratch tape — every intermediate of the block — is dropped
//! before `checkpoint` returns. When a backward pass reaches the node, its rule runs the
//! block again on a fresh tape whose inputs are leaves, differentiates it with the upstream
//! gradient, and hands each input its gradient; that tape is dropped when the rule returns.
//! So a model cut into checkpointed segments keeps on its tape only the segments' inputs,
//! and at most one segment's intermediates at a time during backward — at the price of a
//! second forward pass of every segment.
//!
//! The gradients are those of the plain run, bit for bit: the recomputation runs the same
//! kernels on the same values, and the block's backward sweep the same rules in the same
//! order. A block that draws random numbers (dropout) must draw the same ones when it runs
//! again: it owns its generator's state and replays it (the nn crate's `Checkpointed`
//! module does, for the pass's generator and the store's batch-norm statistics).
//!
//! In a recorded backward pass (`backward_create_graph`: gradients of gradients) the rule
//! records the block again on the caller's tape, with the inputs' `Var`s, and differentiates
//! just those new nodes: second order through a checkpointed block is exact, and that pass
//! keeps the block's intermediates (it needs them).
//!
//! Everything the block differentiates must come in through `inputs`: the block is a
//! `'static` closure, so it cannot capture the caller's `Var`s, and a trainable parameter it
//! puts on the tape itself is refused (it would get no gradient).
//!
//! ```
//! use tapegrad_core::recompute::checkpoint;
//! use tapegrad_core::{Graph, Tensor};
//! let g = Graph::<f64>::new();
//! let x = g.leaf(Tensor::from_vec(vec![0.5, -1.0, 2.0], [3]));
//! let w = g.leaf(Tensor::from_vec(vec![1.5, 0.5, -2.0], [3]));
//! // Two intermediates (x·w and its tanh) stay off the tape: one node is recorded.
//! let before = g.len();
//! let y = checkpoint(&g, &[x, w], |_, v| (v[0] * v[1]).tanh().exp());
//! assert_eq!(g.len(), before + 1);
//! let grads = y.sum().backward();
//! let plain = {
//!     let g = Graph::<f64>::new();
//!     let (x, w) = (g.leaf(x.value()), g.leaf(w.value()));
//!     let gr = (x * w).tanh().exp().sum().backward();
//!     (gr.wrt(x), gr.wrt(w))
//! };
//! assert_eq!(grads.wrt(x).to_vec(), plain.0.to_vec());
//! assert_eq!(grads.wrt(w).to_vec(), plain.1.to_vec());
//! ```

use std::sync::Arc;

use smallvec::SmallVec;

use crate::backward::sweep_vars_above;
use crate::error::{arg_error, ok, Result};
use crate::graph::Graph;
use crate::ops::custom::{CustomNode, DynCustomOp};
use crate::ops::Op;
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// A block of ops: given a tape and the inputs on it, builds the output on the same tape.
///
/// Any closure `|g, xs| …` of that signature, owning what it captures (`'static`).
pub trait Block<T: Float>: for<'a> Fn(&'a Graph<T>, &[Var<'a, T>]) -> Var<'a, T> + 'static {}

impl<T: Float, F> Block<T> for F where
    F: for<'a> Fn(&'a Graph<T>, &[Var<'a, T>]) -> Var<'a, T> + 'static
{
}

/// Runs `block` on `inputs` without keeping its intermediates on the tape; the backward
/// pass recomputes them (see the [module docs](self)).
///
/// When recording is off, or no input requires a gradient, nothing would be kept anyway:
/// the block runs on the caller's tape as written.
///
/// # Panics
/// If [`try_checkpoint`] returns an error.
#[track_caller]
pub fn checkpoint<'g, T: Float>(
    graph: &'g Graph<T>,
    inputs: &[Var<'g, T>],
    block: impl Block<T>,
) -> Var<'g, T> {
    ok(try_checkpoint(graph, inputs, block))
}

/// Runs `block` on `inputs` without keeping its intermediates (see [`checkpoint`]).
///
/// # Errors
/// As [`try_checkpoint_with`].
#[track_caller]
pub fn try_checkpoint<'g, T: Float>(
    graph: &'g Graph<T>,
    inputs: &[Var<'g, T>],
    block: impl Block<T>,
) -> Result<Var<'g, T>> {
    try_checkpoint_with(graph, inputs, |g, xs| (block(g, xs), block))
}

/// The general form of [`checkpoint`]: `first` runs the block now — it may borrow anything
/// (the pass's generator, its store) — and returns its output together with the [`Block`]
/// that recomputes it during backward, which owns what it needs to give the same output
/// (the random numbers `first` drew, a snapshot of the state it read).
///
/// # Errors
/// [`crate::Error::Argument`] if an input belongs to another graph, if the block returns a
/// value of another graph, or if it puts a trainable parameter on the tape itself instead
/// of taking it as an input (that parameter would get no gradient).
#[track_caller]
pub fn try_checkpoint_with<'g, T: Float, B: Block<T>>(
    graph: &'g Graph<T>,
    inputs: &[Var<'g, T>],
    first: impl for<'a> FnOnce(&'a Graph<T>, &[Var<'a, T>]) -> (Var<'a, T>, B),
) -> Result<Var<'g, T>> {
    if inputs.iter().any(|v| !std::ptr::eq(v.graph, graph)) {
        return Err(arg_error(
            "checkpoint",
            "an input is recorded on another graph",
        ));
    }
    let wants: SmallVec<[bool; 4]> = inputs
        .iter()
        .map(|v| graph.is_grad_enabled() && v.requires_grad())
        .collect();
    if !wants.contains(&true) {
        return Ok(first(graph, inputs).0);
    }
    let (value, block) = {
        let scratch = Graph::new();
        scratch.set_anomaly_detection(graph.anomaly_detection());
        let xs: SmallVec<[Var<'_, T>; 4]> =
            inputs.iter().map(|v| scratch.constant(v.value())).collect();
        let (y, block) = first(&scratch, &xs);
        if !std::ptr::eq(y.graph, &scratch) {
            return Err(arg_error(
                "checkpoint",
                "the block returned a value recorded on another graph",
            ));
        }
        if let Some(at) = scratch
            .nodes()
            .iter()
            .find(|n| n.requires_grad && matches!(n.op, Op::Param(_)))
            .map(|n| n.location)
        {
            return Err(arg_error(
                "checkpoint",
                format!(
                    "the block put a trainable parameter on the tape itself (at {at}); pass it to \
                     the block as an input, or it gets no gradient"
                ),
            ));
        }
        (y.value(), block)
    };
    let ids: SmallVec<[u32; 4]> = inputs.iter().map(|v| v.id).collect();
    let op = Recompute {
        block: Box::new(block),
        wants,
    };
    Ok(graph.push(value, Op::Custom(CustomNode(Arc::new(op))), &ids))
}

/// The recorded node of a checkpointed block: the block, and which inputs want gradients.
struct Recompute<T: Float> {
    block: Box<dyn Block<T>>,
    wants: SmallVec<[bool; 4]>,
}

impl<T: Float> DynCustomOp<T> for Recompute<T> {
    fn name(&self) -> &str {
        "checkpoint"
    }

    fn backward_tensor(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Vec<Option<Tensor<T>>> {
        let g = Graph::new();
        let xs: SmallVec<[Var<'_, T>; 4]> = inputs
            .iter()
            .zip(&self.wants)
            .map(|(x, &w)| {
                if w {
                    g.leaf((*x).clone())
                } else {
                    g.constant((*x).clone())
                }
            })
            .collect();
        let y = (self.block)(&g, &xs);
        check_replay(y.value_ref().dims(), output.dims());
        if !y.requires_grad() {
            return self.wants.iter().map(|_| None).collect();
        }
        let grads = y.backward_with(grad);
        xs.iter()
            .zip(&self.wants)
            .map(|(x, &w)| w.then(|| grads.wrt(*x)))
            .collect()
    }

    fn backward_var<'g>(
        &self,
        inputs: &[&Var<'g, T>],
        output: &Var<'g, T>,
        grad: &Var<'g, T>,
    ) -> Vec<Option<Var<'g, T>>> {
        let graph = grad.graph;
        let lo = graph.len() as u32;
        let xs: SmallVec<[Var<'g, T>; 4]> = inputs.iter().map(|v| **v).collect();
        let y = (self.block)(graph, &xs);
        check_replay(&y.shape(), &output.shape());
        if !y.requires_grad() {
            return self.wants.iter().map(|_| None).collect();
        }
        let (_, below) = sweep_vars_above(graph, y.id, grad.id, lo);
        // An input passed twice gets the whole gradient at its first place: the sweep that
        // runs this rule adds the places up.
        xs.iter()
            .enumerate()
            .map(|(k, x)| {
                let first = xs[..k].iter().all(|p| p.id != x.id);
                (self.wants[k] && first).then(|| match below[x.id as usize] {
                    Some(id) => Var::new(graph, id),
                    None => graph.constant(Tensor::zeros(x.shape())),
                })
            })
            .collect()
    }
}

/// A block that gives an output of another shape when it runs again is not a function of
/// its inputs (it draws random numbers it does not replay): its gradients would be wrong.
fn check_replay(again: &[usize], first: &[usize]) {
    assert!(
        again == first,
        "checkpoint: the block's output had shape {first:?} and has {again:?} when recomputed; \
         a block must give the same output for the same inputs (replay its random numbers)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};

    fn block<'a>(_: &'a Graph<f64>, v: &[Var<'a, f64>]) -> Var<'a, f64> {
        (v[0].matmul(v[1]).tanh() * v[0].sum()).sigmoid()
    }

    #[test]
    fn gradients_equal_the_plain_run_bit_for_bit() {
        let x = rand_tensor(&[3, 4], -1.0, 1.0, 1);
        let w = rand_tensor(&[4, 5], -1.0, 1.0, 2);
        let plain = {
            let g = Graph::new();
            let (xv, wv) = (g.leaf(x.clone()), g.leaf(w.clone()));
            let gr = (block(&g, &[xv, wv]).exp().sum()).backward();
            (gr.wrt(xv), gr.wrt(wv))
        };
        let g = Graph::new();
        let (xv, wv) = (g.leaf(x), g.leaf(w));
        let n = g.len();
        let y = checkpoint(&g, &[xv, wv], block);
        assert_eq!(g.len(), n + 1, "one node for the whole block");
        let gr = y.exp().sum().backward();
        assert_eq!(gr.wrt(xv).as_slice(), plain.0.as_slice());
        assert_eq!(gr.wrt(wv).as_slice(), plain.1.as_slice());
    }

    #[test]
    fn first_and_second_order_against_finite_differences() {
        let xs = [
            rand_tensor(&[2, 3], -1.0, 1.0, 3),
            rand_tensor(&[3, 2], -1.0, 1.0, 4),
        ];
        check_op("checkpoint", &xs, |g, v| checkpoint(g, v, block));
        // The same input twice, and a constant input.
        check_op(
            "checkpoint (an input twice)",
            &[rand_tensor(&[4], -1.0, 1.0, 5)],
            |g, v| checkpoint(g, &[v[0], v[0]], |_, u| (u[0] * u[1]).sin()),
        );
        check_op(
            "checkpoint (a constant input)",
            &[rand_tensor(&[4], -1.0, 1.0, 6)],
            |g, v| {
                let c = g.constant(Tensor::full([4], 0.5));
                checkpoint(g, &[c, v[0]], |_, u| (u[0] * u[1]).cos())
            },
        );
    }

    #[test]
    fn nested_checkpoints() {
        check_op(
            "nested checkpoints",
            &[rand_tensor(&[3], -1.0, 1.0, 7)],
            |g, v| {
                checkpoint(g, v, |g, u| {
                    let inner = checkpoint(g, u, |_, w| w[0].tanh() * w[0]);
                    inner.exp()
                })
            },
        );
    }

    #[test]
    fn without_gradients_the_block_runs_on_the_tape() {
        let g = Graph::<f64>::new();
        let x = g.constant(Tensor::ones([2]));
        let n = g.len();
        let y = checkpoint(&g, &[x], |_, v| v[0].exp().sin());
        assert_eq!(g.len(), n + 2);
        assert!(!y.requires_grad());
    }

    #[test]
    fn a_parameter_read_inside_the_block_is_refused() {
        let mut store = crate::ParamStore::<f64>::new();
        let k = store.insert("w", Tensor::ones([2]));
        let g = Graph::new();
        let x = g.leaf(Tensor::ones([2]));
        let e = try_checkpoint(&g, &[x], move |g, v| {
            let s = store.clone();
            v[0] * g.param(&s, k)
        })
        .err()
        .unwrap()
        .to_string();
        assert!(
            e.starts_with("checkpoint: the block put a trainable parameter"),
            "{e}"
        );
        assert!(e.contains("recompute.rs"), "{e}");
    }

    #[test]
    fn a_block_that_changes_shape_when_recomputed_panics_with_the_reason() {
        let calls = std::cell::Cell::new(0);
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::ones([4]));
        let y = checkpoint(&g, &[x], move |_, v| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                v[0].exp()
            } else {
                v[0].narrow(0, 0, 2)
            }
        });
        let msg = crate::testing::panic_message(|| y.sum().backward());
        assert!(msg.contains("when recomputed"), "{msg}");
    }
}

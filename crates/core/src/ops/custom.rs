//! Custom ops: a user's own forward and backward, recorded like any built-in op.
//!
//! Implement [`CustomOp`] (like `torch.autograd.Function`): a forward on tensors and one
//! backward rule written generically over [`Algebra`]. The rule runs on tensors for an
//! ordinary backward pass and on [`Var`]s for `backward_create_graph`, so a custom op
//! whose rule is written with differentiable operations has second-order gradients too.
//!
//! ```
//! use tapegrad_core::{Algebra, CustomOp, Float, Graph, Result, Tensor};
//!
//! /// `y = x³`, with its hand-written gradient `3x²`.
//! struct Cube;
//!
//! impl<T: Float> CustomOp<T> for Cube {
//!     fn name(&self) -> &str {
//!         "cube"
//!     }
//!     fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
//!         Ok(inputs[0].powf(T::from_f64(3.0)))
//!     }
//!     fn backward<V: Algebra<T>>(&self, inputs: &[&V], _output: &V, grad: &V) -> Vec<Option<V>> {
//!         let x = inputs[0];
//!         // Operators take an owned value on the left: `x.square()` is one, `grad` a `&V`.
//!         vec![Some(x.square() * grad * T::from_f64(3.0))]
//!     }
//! }
//!
//! let g = Graph::<f64>::new();
//! let x = g.leaf(Tensor::from_vec(vec![2.0], [1]));
//! let y = g.apply(Cube, &[x]).sum();
//! assert_eq!(y.backward().wrt(x).to_vec(), vec![12.0]);
//! ```

use std::sync::Arc;

use smallvec::SmallVec;

use crate::algebra::Algebra;
use crate::error::{ok, Result};
use crate::graph::Graph;
use crate::ops::{BackwardArgs, Grads, Op, Rule};
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// A user-defined differentiable op.
pub trait CustomOp<T: Float>: 'static {
    /// The name printed on the tape and in errors.
    fn name(&self) -> &str;

    /// The output for the given inputs.
    ///
    /// # Errors
    /// Whatever the op refuses (shapes, domains); the error reaches the caller of
    /// [`Graph::try_apply`].
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>>;

    /// The gradient for each input (`None`: no gradient), given the inputs, the output and
    /// the upstream gradient. Each gradient must have its input's shape.
    ///
    /// Written once over [`Algebra`]: it runs on tensors for a first-order backward pass
    /// and on `Var`s (recorded on the tape) for `backward_create_graph`.
    fn backward<V: Algebra<T>>(&self, inputs: &[&V], output: &V, grad: &V) -> Vec<Option<V>>;
}

/// The object-safe form the tape stores: the generic backward instantiated twice.
/// Implemented for every [`CustomOp`] (through a private wrapper) and by the core's own
/// open-ended nodes (gradient checkpointing); not meant to be implemented by hand.
#[doc(hidden)]
pub trait DynCustomOp<T: Float> {
    /// The op's name.
    fn name(&self) -> &str;
    /// The rule on tensors.
    fn backward_tensor(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Vec<Option<Tensor<T>>>;
    /// The rule on `Var`s.
    fn backward_var<'g>(
        &self,
        inputs: &[&Var<'g, T>],
        output: &Var<'g, T>,
        grad: &Var<'g, T>,
    ) -> Vec<Option<Var<'g, T>>>;
}

/// A user's [`CustomOp`] as the tape stores it.
struct UserOp<C>(C);

impl<T: Float, C: CustomOp<T>> DynCustomOp<T> for UserOp<C> {
    fn name(&self) -> &str {
        CustomOp::name(&self.0)
    }
    fn backward_tensor(
        &self,
        inputs: &[&Tensor<T>],
        output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Vec<Option<Tensor<T>>> {
        self.0.backward(inputs, output, grad)
    }
    fn backward_var<'g>(
        &self,
        inputs: &[&Var<'g, T>],
        output: &Var<'g, T>,
        grad: &Var<'g, T>,
    ) -> Vec<Option<Var<'g, T>>> {
        self.0.backward(inputs, output, grad)
    }
}

/// A custom op as stored on the tape.
#[derive(Clone)]
pub struct CustomNode<T: Float>(pub(crate) Arc<dyn DynCustomOp<T>>);

impl<T: Float> std::fmt::Debug for CustomNode<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomOp({})", self.0.name())
    }
}

impl<T: Float> CustomNode<T> {
    /// The op's name as printed on the tape (the user's [`CustomOp::name`]).
    pub fn name(&self) -> &str {
        self.0.name()
    }
}

impl<T: Float> Rule<T> for CustomNode<T> {
    /// Runs the user's rule and checks what it returns: one entry per input, each of its
    /// input's shape. A wrong rule panics with the op's name, here rather than later.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (xs, y, g) = (args.inputs, args.output, args.grad);
        let grads = <V as crate::algebra::sealed::Sealed<T>>::custom_backward(&*self.0, xs, y, g);
        assert!(
            grads.len() == xs.len(),
            "custom op `{}`: backward returned {} gradients for {} inputs",
            self.0.name(),
            grads.len(),
            xs.len()
        );
        grads
            .into_iter()
            .zip(xs)
            .enumerate()
            .map(|(i, (gi, x))| {
                gi.inspect(|gi| {
                    let (gs, xs) = (gi.shape(), x.shape());
                    assert!(
                        gs == xs,
                        "custom op `{}`: the gradient of input {i} has shape {:?}, the input {:?}",
                        self.0.name(),
                        gs.as_slice(),
                        xs.as_slice()
                    );
                })
            })
            .collect::<SmallVec<_>>()
    }
}

impl<T: Float> Graph<T> {
    /// Applies a custom op to `inputs` and records it.
    ///
    /// # Errors
    /// Whatever the op's forward refuses.
    #[track_caller]
    pub fn try_apply<'g>(
        &'g self,
        op: impl CustomOp<T>,
        inputs: &[Var<'g, T>],
    ) -> Result<Var<'g, T>> {
        for v in inputs {
            if !std::ptr::eq(v.graph, self) {
                panic!(
                    "custom op `{}`: an input is recorded on another graph",
                    op.name()
                );
            }
        }
        let value = {
            let nodes = self.nodes();
            let tensors: Vec<&Tensor<T>> =
                inputs.iter().map(|v| &nodes[v.id as usize].value).collect();
            op.forward(&tensors)?
        };
        let ids: SmallVec<[u32; 4]> = inputs.iter().map(|v| v.id).collect();
        Ok(self.push(value, Op::Custom(CustomNode(Arc::new(UserOp(op)))), &ids))
    }

    /// Applies a custom op (see [`Graph::try_apply`]).
    ///
    /// # Panics
    /// If the op's forward returns an error.
    #[track_caller]
    pub fn apply<'g>(&'g self, op: impl CustomOp<T>, inputs: &[Var<'g, T>]) -> Var<'g, T> {
        ok(self.try_apply(op, inputs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};

    /// `x·y + sin(x)`, with its rule written by hand.
    struct MulSin;
    impl<T: Float> CustomOp<T> for MulSin {
        fn name(&self) -> &str {
            "mul_sin"
        }
        fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
            Ok(inputs[0].try_mul(inputs[1])?.add(&inputs[0].sin()))
        }
        fn backward<V: Algebra<T>>(&self, inputs: &[&V], _y: &V, g: &V) -> Vec<Option<V>> {
            let (x, y) = (inputs[0], inputs[1]);
            vec![Some((x.cos() + y) * g), Some(g.mul(x))]
        }
    }

    #[test]
    fn custom_op_first_and_second_order() {
        let a = rand_tensor(&[2, 3], -1.0, 1.0, 120);
        let b = rand_tensor(&[2, 3], -1.0, 1.0, 121);
        check_op("custom", &[a, b], |g, v| g.apply(MulSin, &[v[0], v[1]]));
    }

    #[test]
    fn forward_errors_reach_the_caller() {
        let g = Graph::<f64>::new();
        let a = g.leaf(Tensor::zeros([2]));
        let b = g.leaf(Tensor::zeros([3]));
        assert!(g.try_apply(MulSin, &[a, b]).is_err());
    }
}

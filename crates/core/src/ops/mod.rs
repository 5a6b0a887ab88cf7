//! The op set, one family per module, each holding its forwards (on `Tensor` and on `Var`),
//! its backward rules and its tests:
//!
//! | module | ops |
//! |---|---|
//! | [`unary`] | neg, abs, sign, exp, log, log1p, expm1, sqrt, rsqrt, square, recip, sin, cos, tanh, sigmoid, relu, leaky_relu, elu, selu, gelu (both forms), silu, softplus, clamp, erf, scalar arithmetic, powf |
//! | [`binary`] | add, sub, mul, div, pow, maximum, minimum (broadcasting); comparisons |
//! | [`reduce`] | sum, mean, var, std, max/min (amax/amin, max_dim/min_dim), prod, logsumexp, norms, sum_to; argmax/argmin |
//! | [`matmul`] | matmul (`torch.matmul` semantics), matmul with transpose flags |
//! | [`movement`] | reshape, permute, transpose, broadcast_to, slice/narrow/select, pad, concat, stack, split, chunk, squeeze, unsqueeze, flatten |
//! | [`index`] | index_select, index_add, gather, scatter_add, where, masked_fill, one_hot |
//! | [`fused`] | softmax, log_softmax, normalize (batch and layer norm's core) |
//! | [`conv`] | unfold2d/fold2d (im2col/col2im); conv2d (one op; its kernels, direct and Winograd, are `tapegrad_kernels::conv`), max_pool2d, avg_pool2d as composites |
//! | [`custom`] | the user's own ops |
//!
//! The tape records a closed `Op` enum (custom ops are its one open variant), so a tape
//! can be printed and every op's backward is found by one `match`.

pub mod binary;
pub mod conv;
pub mod custom;
pub mod fused;
pub mod index;
pub mod matmul;
pub mod movement;
pub mod reduce;
pub mod unary;

use smallvec::SmallVec;

use crate::algebra::Algebra;
use crate::params::ParamKey;
use crate::Float;

/// An op family's `name()`, the name printed on the tape, from a table of its variants:
/// `op_names! { ReduceOp { Sum => "sum", Mean => "mean", … } }`.
macro_rules! op_names {
    ($ty:ident { $($variant:ident => $name:literal),* $(,)? }) => {
        impl $ty {
            /// The op's name as printed on the tape.
            pub fn name(&self) -> &'static str {
                match self {
                    $($ty::$variant { .. } => $name,)*
                }
            }
        }
    };
}
pub(crate) use op_names;

/// The gradients an op's backward returns: one per input, `None` where not needed.
pub(crate) type Grads<V> = SmallVec<[Option<V>; 3]>;

/// A recorded operation.
///
/// `repr(C, u8)`: the tag, then every payload at offset 8, so recording one copies it in
/// the same aligned words it was written in (the default layout packs a unary op's payload
/// at odd offsets, and the copy into the node stalls store forwarding).
#[derive(Clone, Debug)]
#[repr(C, u8)]
pub(crate) enum Op<T: Float> {
    /// An input that requires a gradient.
    Leaf,
    /// A value without gradient.
    Constant,
    /// A parameter of a `ParamStore`.
    Param(ParamKey),
    Unary(unary::Unary<T>),
    Binary(binary::BinaryOp),
    // Boxed: their payloads (axes, shapes, windows, index tensors) would more than double
    // the size of every node. The graph recycles the boxes across resets.
    Reduce(Box<reduce::ReduceOp>),
    Matmul(matmul::MatmulOp),
    Movement(Box<movement::MovementOp>),
    Index(Box<index::IndexOp>),
    Fused(fused::FusedOp),
    Conv(Box<conv::ConvOp>),
    Custom(custom::CustomNode<T>),
}

/// An op family's rule: its backward, one shape for every family (the op's name is its
/// payload's own `name()`). The backward is written once, generic over [`Algebra`], so the
/// same rule runs on tensors (first order) and on `Var`s (`create_graph`).
pub(crate) trait Rule<T: Float> {
    /// Gradients for the inputs (`None` where `args.needs` says none is wanted, or where
    /// an input has none).
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V>;
}

/// What a backward rule sees: the inputs, the output, the upstream gradient, and which
/// inputs need a gradient.
pub(crate) struct BackwardArgs<'a, V> {
    pub(crate) inputs: &'a [&'a V],
    pub(crate) output: &'a V,
    pub(crate) grad: &'a V,
    pub(crate) needs: &'a [bool],
}

impl<T: Float> Op<T> {
    /// The op's name, as printed on the tape and in anomaly reports.
    pub(crate) fn name(&self) -> &str {
        match self {
            Op::Leaf => "leaf",
            Op::Constant => "constant",
            Op::Param(_) => "param",
            Op::Unary(r) => r.name(),
            Op::Binary(r) => r.name(),
            Op::Reduce(r) => r.name(),
            Op::Matmul(r) => r.name(),
            Op::Movement(r) => r.name(),
            Op::Index(r) => r.name(),
            Op::Fused(r) => r.name(),
            Op::Conv(r) => r.name(),
            Op::Custom(r) => r.name(),
        }
    }

    /// Whether the node is a leaf (its gradient is a result, not passed on).
    pub(crate) fn is_leaf(&self) -> bool {
        matches!(self, Op::Leaf | Op::Param(_) | Op::Constant)
    }

    /// The backward rule: gradients for the inputs. Generic over [`Algebra`], so the same
    /// rule runs on tensors (first order) and on `Var`s (`create_graph`).
    pub(crate) fn backward<V: Algebra<T>>(&self, a: BackwardArgs<'_, V>) -> Grads<V> {
        match self {
            Op::Leaf | Op::Constant | Op::Param(_) => SmallVec::new(),
            Op::Unary(r) => r.backward(&a),
            Op::Binary(r) => r.backward(&a),
            Op::Reduce(r) => r.backward(&a),
            Op::Matmul(r) => r.backward(&a),
            Op::Movement(r) => r.backward(&a),
            Op::Index(r) => r.backward(&a),
            Op::Fused(r) => r.backward(&a),
            Op::Conv(r) => r.backward(&a),
            Op::Custom(r) => r.backward(&a),
        }
    }
}

//! tapegrad-core: tensors, the tape, and the differentiable op set.
//!
//! - [`Tensor`]: an owned n-d array (row-major, contiguous, copy-on-write storage), f32 and
//!   f64, with the whole op set as eager methods.
//! - [`Graph`]: the tape. [`Var`]: a `Copy` handle to a value on it, with the same op set,
//!   recorded. [`Var::backward`] differentiates in one reverse sweep;
//!   [`Var::backward_create_graph`] records the backward pass so gradients can be
//!   differentiated again.
//! - [`ParamStore`]: named parameters that live outside any graph.
//! - [`Algebra`]: what backward rules are written against — once, for both speeds.
//! - [`CustomOp`]: a user's own op with its own backward rule.
//! - [`gradcheck`]: finite-difference checks for first and second order.
//!
//! ```
//! use tapegrad_core::{Graph, Tensor};
//! let g = Graph::<f64>::new();
//! let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0], [2]));
//! let w = g.leaf(Tensor::from_vec(vec![0.5, -0.5, 1.0, 2.0], [2, 2]));
//! let y = x.matmul(w).tanh().sum();
//! let grads = y.backward();
//! assert_eq!(grads.wrt(w).dims(), &[2, 2]);
//! ```
#![warn(missing_docs)]

pub mod algebra;
pub mod backward;
pub mod checkpoint;
mod close;
pub mod collective;
pub mod error;
pub mod functional;
pub mod gradcheck;
mod gradients;
pub mod graph;
pub mod memory;
pub mod ops;
pub mod params;
pub mod recompute;
mod setters;
pub mod shape;
pub mod tensor;
#[cfg(test)]
mod testing;
pub mod var;

pub use algebra::Algebra;
pub use close::{assert_close, check_close, CloseError};
pub use collective::Collective;
pub use error::{Error, Result};
pub use gradients::{Gradients, VarGradients};
pub use graph::Graph;
pub use ops::binary::{BinaryOp, Cmp};
pub use ops::conv::{Conv2dSpec, Window2d};
pub use ops::custom::CustomOp;
pub use ops::matmul::Transpose;
pub use ops::movement::SliceSpec;
pub use ops::unary::Unary;
pub use params::{Param, ParamKey, ParamMap, ParamRole, ParamStore};
pub use shape::{Dims, IntoShape, Shape};
pub use tensor::display::ElementFormat;
pub use tensor::{Element, Tensor};
pub use var::Var;

/// A floating-point element type of tensors: `f32` or `f64`.
///
/// It extends the kernels' [`tapegrad_kernels::Float`] (arithmetic, `erf`, gemm) with what a
/// tensor element needs (printing, `Element`). Everything generic in tapegrad is generic over
/// this one trait.
pub trait Float: tapegrad_kernels::Float + Element + ElementFormat {}
impl Float for f32 {}
impl Float for f64 {}

/// The random number generator tapegrad's seeded streams use (dropout, initialisation,
/// shuffling): `rand`'s `StdRng`, re-exported so that programs name it without depending
/// on `rand` themselves.
pub use rand::rngs::StdRng;

/// A seeded random number generator (`StdRng`), for reproducible initialisation, data and
/// tests.
pub fn seeded_rng(seed: u64) -> StdRng {
    rand::SeedableRng::seed_from_u64(seed)
}

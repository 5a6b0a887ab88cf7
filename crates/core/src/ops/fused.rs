//! Fused, numerically stable ops: softmax and log-softmax along any axis.
//!
//! Forward values come from the stable kernels (each row shifted by its maximum); the
//! backward rules use only the output `y`:
//!
//! ```text
//! softmax:      dx = y ⊙ (g − Σ g⊙y)
//! log_softmax:  dx = g − eʸ ⊙ Σ g
//! ```
//! Entries masked with `-inf` get probability 0 and gradient 0 (never NaN) as long as one
//! entry of the row is finite.

use tapegrad_kernels::softmax;

use crate::algebra::Algebra;
use crate::error::{ok, Result};
use crate::ops::{Grads, Op};
use crate::shape::{normalize_axis, split_at_axis};
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// A fused op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FusedOp {
    /// `softmax(x)` along `axis`.
    Softmax {
        /// The axis.
        axis: usize,
    },
    /// `log_softmax(x)` along `axis`.
    LogSoftmax {
        /// The axis.
        axis: usize,
    },
}

impl FusedOp {
    /// The op's name as printed on the tape.
    pub fn name(&self) -> &'static str {
        match self {
            FusedOp::Softmax { .. } => "softmax",
            FusedOp::LogSoftmax { .. } => "log_softmax",
        }
    }

    pub(crate) fn forward<T: Float>(&self, x: &Tensor<T>) -> Tensor<T> {
        let (FusedOp::Softmax { axis } | FusedOp::LogSoftmax { axis }) = *self;
        let (outer, n, inner) = split_at_axis(x.shape(), axis);
        Tensor::from_writer(x.shape(), |out| match self {
            FusedOp::Softmax { .. } => softmax::softmax(x.as_slice(), out, outer, n, inner),
            FusedOp::LogSoftmax { .. } => softmax::log_softmax(x.as_slice(), out, outer, n, inner),
        })
    }

    pub(crate) fn backward<T: Float, V: Algebra<T>>(&self, y: &V, g: &V) -> Grads<V> {
        let gx = match *self {
            FusedOp::Softmax { axis } => {
                let axes = axes_of(&y.shape(), axis);
                y.mul(&g.sub(&g.mul(y).sum_dims(&axes, true)))
            }
            FusedOp::LogSoftmax { axis } => {
                let axes = axes_of(&y.shape(), axis);
                g.sub(&y.exp().mul(&g.sum_dims(&axes, true)))
            }
        };
        smallvec::smallvec![Some(gx)]
    }
}

/// The reduced axes for `axis` (none on a 0-d value).
fn axes_of(shape: &[usize], axis: usize) -> crate::Shape {
    if shape.is_empty() {
        crate::Shape::new()
    } else {
        smallvec::smallvec![axis]
    }
}

impl<T: Float> Tensor<T> {
    /// `softmax` along `dim`: `e^{x_i} / Σ_j e^{x_j}`, shifted by the row maximum.
    ///
    /// # Errors
    /// [`crate::Error::Axis`] if `dim` is out of range.
    #[track_caller]
    pub fn try_softmax(&self, dim: isize) -> Result<Tensor<T>> {
        let axis = normalize_axis("softmax", dim, self.ndim(), std::panic::Location::caller())?;
        Ok(FusedOp::Softmax { axis }.forward(self))
    }

    /// `softmax` along `dim` (see [`Tensor::try_softmax`]).
    ///
    /// # Panics
    /// If `dim` is out of range.
    #[track_caller]
    pub fn softmax(&self, dim: isize) -> Tensor<T> {
        ok(self.try_softmax(dim))
    }

    /// `log_softmax` along `dim`: `x_i − logsumexp(x)`, computed without overflow.
    ///
    /// # Errors
    /// [`crate::Error::Axis`] if `dim` is out of range.
    #[track_caller]
    pub fn try_log_softmax(&self, dim: isize) -> Result<Tensor<T>> {
        let axis = normalize_axis(
            "log_softmax",
            dim,
            self.ndim(),
            std::panic::Location::caller(),
        )?;
        Ok(FusedOp::LogSoftmax { axis }.forward(self))
    }

    /// `log_softmax` along `dim` (see [`Tensor::try_log_softmax`]).
    ///
    /// # Panics
    /// If `dim` is out of range.
    #[track_caller]
    pub fn log_softmax(&self, dim: isize) -> Tensor<T> {
        ok(self.try_log_softmax(dim))
    }
}

impl<'g, T: Float> Var<'g, T> {
    #[track_caller]
    fn fused(self, op: FusedOp) -> Var<'g, T> {
        let v = self.with_value(|x| op.forward(x));
        self.graph.push(v, Op::Fused(op), &[self.id])
    }

    /// `softmax` along `dim`, numerically stable.
    ///
    /// # Errors
    /// [`crate::Error::Axis`] if `dim` is out of range.
    #[track_caller]
    pub fn try_softmax(self, dim: isize) -> Result<Var<'g, T>> {
        let axis = normalize_axis("softmax", dim, self.ndim(), std::panic::Location::caller())?;
        Ok(self.fused(FusedOp::Softmax { axis }))
    }

    /// `softmax` along `dim`: range (0, 1), each row sums to 1.
    ///
    /// # Panics
    /// If `dim` is out of range.
    #[track_caller]
    pub fn softmax(self, dim: isize) -> Var<'g, T> {
        ok(self.try_softmax(dim))
    }

    /// `log_softmax` along `dim`, numerically stable.
    ///
    /// # Errors
    /// [`crate::Error::Axis`] if `dim` is out of range.
    #[track_caller]
    pub fn try_log_softmax(self, dim: isize) -> Result<Var<'g, T>> {
        let axis = normalize_axis(
            "log_softmax",
            dim,
            self.ndim(),
            std::panic::Location::caller(),
        )?;
        Ok(self.fused(FusedOp::LogSoftmax { axis }))
    }

    /// `log_softmax` along `dim`: range (−∞, 0].
    ///
    /// # Panics
    /// If `dim` is out of range.
    #[track_caller]
    pub fn log_softmax(self, dim: isize) -> Var<'g, T> {
        ok(self.try_log_softmax(dim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};
    use crate::Graph;

    #[test]
    fn gradients_along_every_axis() {
        for (i, s) in [&[5][..], &[2, 3, 4][..], &[3, 1][..], &[][..]]
            .iter()
            .enumerate()
        {
            let x = rand_tensor(s, -3.0, 3.0, 110 + i as u64);
            for d in -(s.len().max(1) as isize)..s.len().max(1) as isize {
                check_op("softmax", std::slice::from_ref(&x), move |_, v| {
                    v[0].softmax(d)
                });
                check_op("log_softmax", std::slice::from_ref(&x), move |_, v| {
                    v[0].log_softmax(d)
                });
            }
        }
    }

    #[test]
    fn masked_entries_have_zero_probability_and_gradient() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::from_vec(
            vec![0.5, f64::NEG_INFINITY, 1.0, -0.2],
            [4],
        ));
        let w = g.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [4]));
        let p = x.softmax(0);
        assert_eq!(p.to_vec()[1], 0.0);
        let gx = (p * w).sum().backward().wrt(x);
        assert!(gx.all_finite(), "{gx}");
        assert_eq!(gx.to_vec()[1], 0.0);
    }

    #[test]
    fn large_logits_are_stable() {
        let x = Tensor::<f32>::from_vec(vec![1e4, -1e4, 0.0], [3]);
        let p = x.softmax(0);
        assert_eq!(p.to_vec(), vec![1.0, 0.0, 0.0]);
        let l = x.log_softmax(0);
        assert_eq!(l.to_vec()[0], 0.0);
        assert!(l.all_finite());
    }

    #[test]
    fn node_reuse_in_fused_ops() {
        let x = rand_tensor(&[2, 3], -2.0, 2.0, 140);
        check_op("reuse", &[x], |_, v| {
            let p = v[0].softmax(-1);
            p * v[0].log_softmax(-1) + p.softmax(0) * p
        });
    }
}

//! Fused ops: softmax and log-softmax along any axis, and the normalisation at the heart
//! of batch and layer norm.
//!
//! Softmax values come from the stable kernels (each row shifted by its maximum); their
//! backward rules use only the output `y`:
//!
//! ```text
//! softmax:      dx = y ⊙ (g − Σ g⊙y)
//! log_softmax:  dx = g − eʸ ⊙ Σ g
//! ```
//! Entries masked with `-inf` get probability 0 and gradient 0 (never NaN) as long as one
//! entry of the row is finite.
//!
//! `normalize(dims, ε)` is `(x − mean)/√(var + ε)` over `dims` (variance biased, as batch
//! and layer norm use it), one node instead of six, computed by
//! `tapegrad_kernels::normalize` in three passes. Its backward rule,
//! `dx = r ⊙ (g − mean(g) − y ⊙ mean(g ⊙ y))` with `r = 1/√(var + ε)`, is one fused kernel
//! on tensors and a composite of differentiable ops on `Var`s (gradients of gradients).
//! The fused form needs the axes kept (not normalised) to be consecutive, as they are for
//! batch norm (the channel axis) and layer norm (the leading axes); other sets of axes are
//! computed as the composite.

use std::panic::Location;
use tapegrad_kernels::{normalize, softmax};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{ok, Result};
use crate::ops::unary::Unary;
use crate::ops::{op_names, BackwardArgs, Grads, Op, Rule};
use crate::shape::{normalize_axes, normalize_axis, split_at_axis, Dims};
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
    /// `(x − mean)/√(var + ε)` over every axis outside `kept_start..kept_end`.
    Normalize {
        /// First kept axis.
        kept_start: u8,
        /// One past the last kept axis.
        kept_end: u8,
        /// ε, as the bits of an `f64`.
        eps_bits: u64,
    },
}

op_names! { FusedOp {
    Softmax => "softmax", LogSoftmax => "log_softmax", Normalize => "normalize",
}}

impl FusedOp {
    pub(crate) fn forward<T: Float>(&self, x: &Tensor<T>) -> Tensor<T> {
        match *self {
            FusedOp::Softmax { axis } | FusedOp::LogSoftmax { axis } => {
                let (outer, n, inner) = split_at_axis(x.dims(), axis);
                Tensor::from_writer(x.dims(), |out| match self {
                    FusedOp::Softmax { .. } => softmax::softmax(x.as_slice(), out, outer, n, inner),
                    _ => softmax::log_softmax(x.as_slice(), out, outer, n, inner),
                })
            }
            FusedOp::Normalize { .. } => self.normalize_forward(x, None),
        }
    }

    /// The `(outer, kept, inner)` view of a `Normalize` input, and ε.
    fn normalize_view<T: Float>(&self, shape: &[usize]) -> (usize, usize, usize, T) {
        let FusedOp::Normalize {
            kept_start,
            kept_end,
            eps_bits,
        } = *self
        else {
            unreachable!("normalize_view on {}", self.name())
        };
        let (ks, ke) = (kept_start as usize, kept_end as usize);
        let p = |r: &[usize]| r.iter().product::<usize>();
        (
            p(&shape[..ks]),
            p(&shape[ks..ke]),
            p(&shape[ke..]),
            T::from_f64(f64::from_bits(eps_bits)),
        )
    }

    /// The normalised tensor; with `stats`, also writes each group's mean and biased
    /// variance (`kept` values each).
    fn normalize_forward<T: Float>(
        &self,
        x: &Tensor<T>,
        stats: Option<(&mut [T], &mut [T])>,
    ) -> Tensor<T> {
        let (outer, kept, inner, eps) = self.normalize_view::<T>(x.dims());
        let (mean, var) = match stats {
            Some((m, v)) => (Some(m), Some(v)),
            None => (None, None),
        };
        Tensor::from_writer(x.dims(), |out| {
            normalize::normalize(x.as_slice(), out, outer, kept, inner, eps, mean, var)
        })
    }
}

impl<T: Float> Rule<T> for FusedOp {
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (x, y, g) = (args.inputs[0], args.output, args.grad);
        let gx = match *self {
            FusedOp::Softmax { axis } => {
                let axes = axes_of(&y.shape(), axis);
                y.mul(&g.sub(&g.mul(y).sum_dims(&axes, true)))
            }
            FusedOp::LogSoftmax { axis } => {
                let axes = axes_of(&y.shape(), axis);
                g.sub(&y.exp().mul(&g.sum_dims(&axes, true)))
            }
            FusedOp::Normalize {
                kept_start,
                kept_end,
                eps_bits,
            } => {
                let ndim = y.shape().len();
                let axes: crate::Shape = (0..ndim)
                    .filter(|&a| a < kept_start as usize || a >= kept_end as usize)
                    .collect();
                let eps = T::from_f64(f64::from_bits(eps_bits));
                match (x.as_tensor(), y.as_tensor(), g.as_tensor()) {
                    (Some(xt), Some(yt), Some(gt)) => {
                        g.constant(normalize_grad_tensor(xt, yt, gt, &axes, eps))
                    }
                    _ => normalize_grad_composite(x, y, g, &axes, eps),
                }
            }
        };
        smallvec::smallvec![Some(gx)]
    }
}

/// The gradient of `normalize` over `axes` as a composite of differentiable ops:
/// `r ⊙ (g − mean(g) − y ⊙ mean(g ⊙ y))`, `r = 1/√(var(x) + ε)`.
pub(crate) fn normalize_grad_composite<T: Float, V: Algebra<T>>(
    x: &V,
    y: &V,
    g: &V,
    axes: &[usize],
    eps: T,
) -> V {
    let shape = x.shape();
    let n: usize = axes.iter().map(|&a| shape[a]).product();
    let inv_n = T::one() / T::from_f64(n as f64);
    let mean = x.sum_dims(axes, true).scale(inv_n);
    let d = x.sub(&mean);
    let var = Algebra::mul(&d, &d).sum_dims(axes, true).scale(inv_n);
    let r = var.add_scalar(eps).unary(Unary::Rsqrt);
    let mg = g.sum_dims(axes, true).scale(inv_n);
    let mgy = g.mul(y).sum_dims(axes, true).scale(inv_n);
    r.mul(&g.sub(&mg).sub(&y.mul(&mgy)))
}

/// The gradient of `normalize` on tensors: one fused kernel when the kept axes are
/// consecutive (they always are for a recorded `Normalize` node).
pub(crate) fn normalize_grad_tensor<T: Float>(
    x: &Tensor<T>,
    y: &Tensor<T>,
    g: &Tensor<T>,
    axes: &[usize],
    eps: T,
) -> Tensor<T> {
    let Some((ks, ke)) = kept_block(x.ndim(), axes) else {
        return normalize_grad_composite(x, y, g, axes, eps);
    };
    let op = normalize_op(ks, ke, eps.as_f64());
    let (outer, kept, inner, eps) = op.normalize_view::<T>(x.dims());
    Tensor::from_writer(x.dims(), |dx| {
        normalize::normalize_backward(
            x.as_slice(),
            y.as_slice(),
            g.as_slice(),
            dx,
            outer,
            kept,
            inner,
            eps,
        )
    })
}

/// The axes not in `axes` (sorted) when they form one consecutive block
/// `kept_start..kept_end` (possibly empty).
fn kept_block(ndim: usize, axes: &[usize]) -> Option<(usize, usize)> {
    let mut kept = (0..ndim).filter(|a| !axes.contains(a));
    let Some(start) = kept.next() else {
        return Some((0, 0));
    };
    let end = kept.try_fold(start + 1, |end, a| (a == end).then_some(end + 1))?;
    Some((start, end))
}

fn normalize_op(kept_start: usize, kept_end: usize, eps: f64) -> FusedOp {
    FusedOp::Normalize {
        kept_start: kept_start as u8,
        kept_end: kept_end as u8,
        eps_bits: eps.to_bits(),
    }
}

/// The validated axes of a `normalize` call and ε.
#[track_caller]
fn normalize_args(dims: &dyn Dims, ndim: usize, eps: f64) -> Result<crate::Shape> {
    let location = Location::caller();
    let axes = normalize_axes("normalize", &dims.to_dims(), ndim, location)?;
    if eps.is_nan() || eps < 0.0 || eps.is_infinite() {
        return Err(crate::Error::Argument {
            op: "normalize",
            message: format!("eps must be finite and at least 0, got {eps}"),
            location,
        });
    }
    Ok(axes.into_iter().collect())
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
    fallible! {
        /// `softmax` along `dim`: `e^{x_i} / Σ_j e^{x_j}`, shifted by the row maximum.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range.
        pub fn softmax / try_softmax(&self, dim: isize) -> Tensor<T> {
            let axis = normalize_axis("softmax", dim, self.ndim(), Location::caller())?;
            Ok(FusedOp::Softmax { axis }.forward(self))
        }
    }

    fallible! {
        /// `log_softmax` along `dim`: `x_i − logsumexp(x)`, computed without overflow.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range.
        pub fn log_softmax / try_log_softmax(&self, dim: isize) -> Tensor<T> {
            let axis = normalize_axis("log_softmax", dim, self.ndim(), Location::caller())?;
            Ok(FusedOp::LogSoftmax { axis }.forward(self))
        }
    }

    /// `(x − mean)/√(var + ε)` over the axes `dims`, with the biased variance (dividing by
    /// the number of elements), as batch norm and layer norm compute it. A group of one
    /// element gives 0.
    ///
    /// ```
    /// use tapegrad_core::Tensor;
    /// let x = Tensor::<f64>::from_vec(vec![1.0, 3.0, 10.0, 30.0], [2, 2]);
    /// let y = x.normalize(-1, 0.0); // each row to mean 0, variance 1
    /// assert_eq!(y.to_vec(), vec![-1.0, 1.0, -1.0, 1.0]);
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Axis`] for an axis out of range, [`crate::Error::Argument`] for an
    /// axis given twice or a negative or non-finite `eps`.
    #[track_caller]
    pub fn try_normalize(&self, dims: impl Dims, eps: f64) -> Result<Tensor<T>> {
        let axes = normalize_args(&dims, self.ndim(), eps)?;
        Ok(match kept_block(self.ndim(), &axes) {
            Some((ks, ke)) => normalize_op(ks, ke, eps).forward(self),
            None => {
                let mean = self.mean_dim(axes.as_slice(), true);
                let var = self.var_dim(axes.as_slice(), false, true);
                (self - &mean) * var.add_scalar(T::from_f64(eps)).rsqrt()
            }
        })
    }

    /// `(x − mean)/√(var + ε)` over `dims` (see [`Tensor::try_normalize`]).
    ///
    /// # Panics
    /// On an invalid axis or `eps`.
    #[track_caller]
    pub fn normalize(&self, dims: impl Dims, eps: f64) -> Tensor<T> {
        ok(self.try_normalize(dims, eps))
    }
}

impl<'g, T: Float> Var<'g, T> {
    #[track_caller]
    fn fused(self, op: FusedOp) -> Var<'g, T> {
        let v = self.with_value(|x| op.forward(x));
        self.graph.push(v, Op::Fused(op), &[self.id])
    }

    fallible! {
        /// `softmax` along `dim`, numerically stable.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range.
        pub fn softmax / try_softmax(self, dim: isize) -> Var<'g, T> {
            let axis = normalize_axis("softmax", dim, self.ndim(), Location::caller())?;
            Ok(self.fused(FusedOp::Softmax { axis }))
        }
    }

    fallible! {
        /// `log_softmax` along `dim`, numerically stable.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range.
        pub fn log_softmax / try_log_softmax(self, dim: isize) -> Var<'g, T> {
            let axis = normalize_axis("log_softmax", dim, self.ndim(), Location::caller())?;
            Ok(self.fused(FusedOp::LogSoftmax { axis }))
        }
    }

    fallible! {
        /// `(x − mean)/√(var + ε)` over the axes `dims`, with the biased variance: the core of
        /// batch and layer norm as one node (see [`Tensor::try_normalize`]). Twice
        /// differentiable.
        ///
        /// # Errors
        /// As [`Tensor::try_normalize`].
        pub fn normalize / try_normalize(self, dims: impl Dims, eps: f64) -> Var<'g, T> {
            Ok(self.try_normalize_with_stats(dims, eps)?.0)
        }
    }

    fallible! {
        /// [`Var::try_normalize`], also returning the mean and the biased variance over `dims`
        /// (as tensors without gradient, shaped with `dims` kept as size 1): what batch norm
        /// needs for its running statistics, without computing them twice.
        ///
        /// # Errors
        /// As [`Tensor::try_normalize`].
        pub fn normalize_with_stats / try_normalize_with_stats(
            self,
            dims: impl Dims,
            eps: f64,
        ) -> (Var<'g, T>, Tensor<T>, Tensor<T>) {
            let shape = self.shape();
            let axes = normalize_args(&dims, shape.len(), eps)?;
            let stat_shape: crate::Shape = shape
                .iter()
                .enumerate()
                .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
                .collect();
            let Some((ks, ke)) = kept_block(shape.len(), &axes) else {
                let mean = self.mean_dim(axes.as_slice(), true);
                let var = self.var_dim(axes.as_slice(), false, true);
                let (m, v) = (mean.value(), var.value());
                return Ok(((self - mean) * (var + T::from_f64(eps)).rsqrt(), m, v));
            };
            let op = normalize_op(ks, ke, eps);
            let (mut m, mut v) = (
                Tensor::zeros(stat_shape.as_slice()),
                Tensor::zeros(stat_shape.as_slice()),
            );
            let y = self
                .with_value(|x| op.normalize_forward(x, Some((m.as_mut_slice(), v.as_mut_slice()))));
            Ok((self.graph.push(y, Op::Fused(op), &[self.id]), m, v))
        }
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

    /// The composite the fused op replaces.
    fn composite<'g>(x: Var<'g, f64>, axes: &[isize], eps: f64) -> Var<'g, f64> {
        let mean = x.mean_dim(axes, true);
        let var = x.var_dim(axes, false, true);
        (x - mean) * (var + eps).rsqrt()
    }

    #[test]
    fn normalize_gradients_over_every_kind_of_axis_set() {
        let cases: [(&[usize], &[isize]); 8] = [
            (&[2, 3, 4], &[-1]),         // layer norm
            (&[2, 3, 4], &[1, 2]),       // layer norm over two axes
            (&[3, 2, 2, 2], &[0, 2, 3]), // batch norm 2d
            (&[4, 3], &[0]),             // batch norm 1d
            (&[2, 3, 2], &[0, 2]),       // batch norm 1d on sequences
            (&[2, 3, 2], &[1]),          // a middle axis
            (&[3, 2, 2], &[0, 1, 2]),    // everything
            (&[2, 3, 2], &[0]),          // kept axes consecutive at the end
        ];
        for (i, (shape, axes)) in cases.iter().enumerate() {
            let x = rand_tensor(shape, -2.0, 2.0, 300 + i as u64);
            let axes = axes.to_vec();
            check_op("normalize", std::slice::from_ref(&x), {
                let axes = axes.clone();
                move |_, v| v[0].normalize(axes.as_slice(), 1e-3)
            });
            // Same values and gradients as the composite.
            let g = Graph::<f64>::new();
            let xv = g.leaf(x.clone());
            let w = g.constant(rand_tensor(shape, -1.0, 1.0, 400 + i as u64));
            let fused = xv.normalize(axes.as_slice(), 1e-3);
            let comp = composite(xv, &axes, 1e-3);
            assert!(
                fused.value().allclose(&comp.value(), 1e-12, 1e-12),
                "{shape:?} {axes:?}"
            );
            let gf = (fused * w).sum().backward().wrt(xv);
            let gc = (comp * w).sum().backward().wrt(xv);
            assert!(
                gf.allclose(&gc, 1e-10, 1e-10),
                "{shape:?} {axes:?}: {gf} vs {gc}"
            );
        }
    }

    #[test]
    fn normalize_keeps_non_consecutive_axes_through_the_composite() {
        // Kept axes 0 and 2 are not consecutive: the composite path, same results.
        let x = rand_tensor(&[2, 3, 2], -2.0, 2.0, 320);
        check_op("normalize_split", std::slice::from_ref(&x), |_, v| {
            v[0].normalize(1, 1e-3)
        });
        let g = Graph::<f64>::new();
        let xv = g.leaf(x.clone());
        assert!(xv
            .normalize(1, 1e-3)
            .value()
            .allclose(&x.normalize(1, 1e-3), 1e-12, 1e-12));
    }

    #[test]
    fn normalize_statistics_and_edge_cases() {
        let g = Graph::<f64>::new();
        let x = rand_tensor(&[4, 3, 5], -2.0, 2.0, 330);
        let (y, m, v) = g
            .leaf(x.clone())
            .try_normalize_with_stats([0, 2], 1e-5)
            .unwrap();
        assert_eq!(m.dims(), &[1, 3, 1]);
        assert!(m.allclose(&x.mean_dim([0, 2], true), 1e-12, 1e-12));
        assert!(v.allclose(&x.var_dim([0, 2], false, true), 1e-12, 1e-12));
        assert!(y.value().mean_dim([0, 2], false).abs().max().item() < 1e-12);
        // One element per group: zero, with a finite gradient.
        let one = g.leaf(Tensor::from_vec(vec![3.0, -1.0], [2, 1]));
        let z = one.normalize(-1, 1e-5);
        assert_eq!(z.to_vec(), vec![0.0, 0.0]);
        assert!(z.sum().backward().wrt(one).all_finite());
        // Empty input, 0-d input.
        let e = Tensor::<f64>::zeros([0, 3]).normalize(0, 1e-5);
        assert_eq!(e.dims(), &[0, 3]);
        assert_eq!(
            Tensor::<f64>::scalar(2.0)
                .normalize([0usize; 0], 1e-5)
                .item(),
            0.0
        );
        // Bad arguments are errors naming the op.
        let err = x.try_normalize([0, 0], 1e-5).unwrap_err().to_string();
        assert!(err.contains("normalize"), "{err}");
        assert!(x.try_normalize(5, 1e-5).is_err());
        assert!(x.try_normalize(0, -1.0).is_err());
        assert!(x.try_normalize(0, f64::NAN).is_err());
    }

    #[test]
    fn normalize_f32_matches_f64() {
        let x = rand_tensor(&[8, 4, 50], -3.0, 3.0, 340);
        let want = x.normalize([0, 2], 1e-5);
        let got = x.cast::<f32>().normalize([0, 2], 1e-5);
        assert!(got.cast::<f64>().allclose(&want, 1e-5, 1e-5));
    }
}

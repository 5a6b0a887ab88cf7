//! Reductions over all elements or a set of axes, with `keepdim`, and `sum_to`, the one
//! un-broadcast helper every broadcasting op's backward goes through.
//!
//! Forward values come from one strided fold (`tapegrad_kernels::strided::fold_into`).
//! Backward rules expand the upstream gradient to the input's shape through the
//! `keepdim` shape. `max`/`min` over axes (`amax`/`amin`) split the gradient evenly between
//! tied maxima; `max_dim`/`min_dim` (with indices) send it to the one returned index.

use smallvec::SmallVec;
use tapegrad_kernels::strided::{broadcast_strides, fold_into};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{arg_error, ok, shape_error, Result};
use crate::ops::binary::broadcast_zip;
use crate::ops::{op_names, BackwardArgs, Grads, Op, Rule};
use crate::shape::{
    keepdim_shape, normalize_axes, normalize_axis, numel, reduced_shape, split_at_axis, Dims, Shape,
};
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// Normalised, sorted reduction axes.
pub type Axes = SmallVec<[usize; 4]>;

/// A reduction.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ReduceOp {
    /// Σ over `axes`.
    Sum {
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Σ over the dimensions that broadcasting added or stretched, back to `shape`.
    SumTo {
        /// The target shape (which broadcasts to the input's shape).
        shape: Shape,
    },
    /// Arithmetic mean over `axes`.
    Mean {
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Variance over `axes`, dividing by `n - correction` (1: unbiased, 0: biased).
    Var {
        /// Reduced axes.
        axes: Axes,
        /// Bessel's correction: 1 for the unbiased estimate, 0 for the biased one.
        correction: usize,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Maximum over `axes` (`amax`); ties share the gradient evenly.
    Max {
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Minimum over `axes` (`amin`); ties share the gradient evenly.
    Min {
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// Product over `axes` (gradient correct with zeros in the input).
    Prod {
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// `ln Σ eˣ` over `axes`, computed as `m + ln Σ e^{x-m}` (no overflow).
    LogSumExp {
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
    /// The p-norm `(Σ|x|ᵖ)^{1/p}` over `axes` (`p = ∞`: max |x|). The gradient at a zero
    /// norm is 0 (as PyTorch).
    Norm {
        /// The order p > 0 (or +∞).
        p: f64,
        /// Reduced axes.
        axes: Axes,
        /// Keep reduced axes as size 1.
        keepdim: bool,
    },
}

op_names! { ReduceOp {
    Sum => "sum", SumTo => "sum_to", Mean => "mean", Var => "var", Max => "amax", Min => "amin",
    Prod => "prod", LogSumExp => "logsumexp", Norm => "norm",
}}

impl ReduceOp {
    /// Reduced axes and keepdim (for `SumTo`: the axes that are summed, kept).
    fn axes_of(&self, in_shape: &[usize]) -> (Axes, bool) {
        match self {
            ReduceOp::Sum { axes, keepdim }
            | ReduceOp::Mean { axes, keepdim }
            | ReduceOp::Var { axes, keepdim, .. }
            | ReduceOp::Max { axes, keepdim }
            | ReduceOp::Min { axes, keepdim }
            | ReduceOp::Prod { axes, keepdim }
            | ReduceOp::LogSumExp { axes, keepdim }
            | ReduceOp::Norm { axes, keepdim, .. } => (axes.clone(), *keepdim),
            ReduceOp::SumTo { shape } => (sum_to_axes(shape, in_shape), true),
        }
    }

    /// Computes the reduction.
    pub(crate) fn forward<T: Float>(&self, x: &Tensor<T>) -> Tensor<T> {
        let (axes, keepdim) = self.axes_of(x.dims());
        let n = T::from_f64(count(x.dims(), &axes) as f64);
        let kept = match self {
            ReduceOp::Sum { .. } => sum_keep(x, &axes),
            ReduceOp::SumTo { shape } => {
                let s = sum_keep(x, &axes);
                return s.reshaped(shape.clone());
            }
            ReduceOp::Mean { .. } => sum_keep(x, &axes).div_scalar(n),
            ReduceOp::Var { correction, .. } => {
                let mean = sum_keep(x, &axes).div_scalar(n);
                let dev = ok(broadcast_zip("var", x, &mean, |a, m| (a - m) * (a - m)));
                sum_keep(&dev, &axes).div_scalar(n - T::from_f64(*correction as f64))
            }
            ReduceOp::Max { .. } => fold_keep(x, &axes, T::neg_infinity(), nan_max),
            ReduceOp::Min { .. } => fold_keep(x, &axes, T::infinity(), nan_min),
            ReduceOp::Prod { .. } => fold_keep(x, &axes, T::one(), |a, v| a * v),
            ReduceOp::LogSumExp { .. } => {
                let m = fold_keep(x, &axes, T::neg_infinity(), nan_max);
                // Shift by a finite max only: all -inf rows give -inf, +inf rows give +inf.
                let shift = m.map(|v| if v.is_finite() { v } else { T::zero() });
                let e = ok(broadcast_zip("logsumexp", x, &shift, |a, s| (a - s).exp()));
                let s = sum_keep(&e, &axes);
                ok(broadcast_zip("logsumexp", &s.log(), &shift, |l, s| l + s))
            }
            ReduceOp::Norm { p, .. } => {
                let p = *p;
                if p == f64::INFINITY {
                    fold_keep(x, &axes, T::zero(), |a, v| nan_max(a, v.abs()))
                } else if p == 1.0 {
                    sum_keep(&x.abs(), &axes)
                } else if p == 2.0 {
                    sum_keep(&x.square(), &axes).sqrt()
                } else {
                    let pt = T::from_f64(p);
                    sum_keep(&x.abs().powf(pt), &axes).powf(T::one() / pt)
                }
            }
        };
        if keepdim {
            kept
        } else {
            kept.reshaped(reduced_shape(x.dims(), &axes, false))
        }
    }
}

impl<T: Float> Rule<T> for ReduceOp {
    /// The backward rule, for tensors and `Var`s alike.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (x, y, g) = (args.inputs[0], args.output, args.grad);
        let xs = x.shape();
        let (axes, _) = self.axes_of(&xs);
        let kshape = keepdim_shape(&xs, &axes);
        // The upstream gradient and the output, viewed with the reduced axes kept.
        let gk = g.reshape(&kshape);
        let yk = || y.reshape(&kshape);
        let n = count(&xs, &axes) as f64;
        let gx = match self {
            ReduceOp::Sum { .. } | ReduceOp::SumTo { .. } => gk.broadcast_to(&xs),
            ReduceOp::Mean { .. } => gk.broadcast_to(&xs).scale(T::from_f64(1.0 / n)),
            ReduceOp::Var { correction, .. } => {
                let mean = x.sum_dims(&axes, true).scale(T::from_f64(1.0 / n));
                x.sub(&mean)
                    .mul(&gk)
                    .scale(T::from_f64(2.0 / (n - *correction as f64)))
            }
            ReduceOp::Max { .. } | ReduceOp::Min { .. } => {
                let w = tie_weights(&x.value(), &yk().value(), &axes, |v| v);
                gk.mul(&g.constant(w))
            }
            ReduceOp::Prod { .. } => gk.mul(&prod_others(x, y, &axes, &kshape)),
            ReduceOp::LogSumExp { .. } => x.sub(&yk()).exp().mul(&gk),
            ReduceOp::Norm { p, .. } => {
                let p = *p;
                let yv = yk().value();
                let at_zero = yv.map(|v| v == T::zero());
                let d = if p == 1.0 {
                    x.sign()
                } else if p == f64::INFINITY {
                    let w = tie_weights(&x.value(), &yv, &axes, |v| v.abs());
                    x.sign().mul(&g.constant(w))
                } else if p == 2.0 {
                    x.div(&yk())
                } else {
                    let pm1 = T::from_f64(p - 1.0);
                    x.sign()
                        .mul(&x.abs().unary(crate::Unary::Powf(pm1)))
                        .div(&yk().unary(crate::Unary::Powf(pm1)))
                };
                let d = if p != 1.0 && at_zero.as_slice().iter().any(|&z| z) {
                    // The norm's gradient at a zero norm is 0 (0/0 otherwise).
                    V::select(&at_zero, &g.zeros(&[]), &d)
                } else {
                    d
                };
                d.mul(&gk)
            }
        };
        smallvec::smallvec![Some(gx)]
    }
}

/// The product of the other reduced elements, for each element: `∂ prod / ∂ x_i`.
/// Without zeros it is `y / x_i`; with zeros it is computed without dividing.
fn prod_others<T: Float, V: Algebra<T>>(x: &V, y: &V, axes: &[usize], kshape: &[usize]) -> V {
    let xv = x.value();
    if !xv.as_slice().contains(&T::zero()) {
        return y.reshape(kshape).div(x);
    }
    // Move the reduced axes last, flatten to [K, R], and for each i take the product of
    // the row with x_i replaced by 1: an [K, R, R] product, differentiable as a whole.
    let xs = xv.dims();
    let kept: Vec<usize> = (0..xs.len()).filter(|d| !axes.contains(d)).collect();
    let perm: Vec<usize> = kept.iter().copied().chain(axes.iter().copied()).collect();
    let k = numel(&kept.iter().map(|&d| xs[d]).collect::<Vec<_>>());
    let r = count(xs, axes);
    let flat = x
        .permute(&perm)
        .reshape(&[k, 1, r])
        .broadcast_to(&[k, r, r]);
    let eye = Tensor::<bool>::from_fn([r, r], |i| i / r == i % r);
    let others = V::select(&eye, &x.constant(Tensor::ones([])), &flat).reduce(ReduceOp::Prod {
        axes: smallvec::smallvec![2],
        keepdim: false,
    });
    let permuted_shape: Vec<usize> = perm.iter().map(|&d| xs[d]).collect();
    let mut inverse = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    others.reshape(&permuted_shape).permute(&inverse)
}

/// Even shares of the gradient between the elements equal to the reduced value
/// (`key(x) == y`), as PyTorch's `amax`/`amin`.
fn tie_weights<T: Float>(
    x: &Tensor<T>,
    yk: &Tensor<T>,
    axes: &[usize],
    key: impl Fn(T) -> T,
) -> Tensor<T> {
    let hit = ok(broadcast_zip("max", x, yk, |a, m| {
        if key(a) == m {
            T::one()
        } else {
            T::zero()
        }
    }));
    let counts = sum_keep(&hit, axes);
    ok(broadcast_zip("max", &hit, &counts, |h, c| h / c))
}

/// The axes summed by `sum_to(shape)` from `in_shape` (leading added axes and stretched
/// size-1 axes), in the input's numbering.
fn sum_to_axes(target: &[usize], in_shape: &[usize]) -> Axes {
    let lead = in_shape.len() - target.len();
    (0..in_shape.len())
        .filter(|&d| d < lead || (target[d - lead] == 1 && in_shape[d] != 1))
        .collect()
}

/// The number of elements reduced into each output element.
fn count(shape: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&a| shape[a]).product()
}

/// Folds over `axes` into the `keepdim` shape.
/// The larger of a running maximum and a value, NaN winning (PyTorch's `amax` propagates NaN).
fn nan_max<T: Float>(a: T, v: T) -> T {
    if v > a || v.is_nan() {
        v
    } else {
        a
    }
}

/// The smaller of a running minimum and a value, NaN winning.
fn nan_min<T: Float>(a: T, v: T) -> T {
    if v < a || v.is_nan() {
        v
    } else {
        a
    }
}

fn fold_keep<T: Float>(x: &Tensor<T>, axes: &[usize], init: T, f: impl Fn(T, T) -> T) -> Tensor<T> {
    let kshape = keepdim_shape(x.dims(), axes);
    let mut out = Tensor::full(kshape.clone(), init);
    let strides = broadcast_strides(&kshape, x.dims());
    fold_into(x.dims(), x.as_slice(), out.as_mut_slice(), &strides, f);
    out
}

/// Σ over `axes` into the `keepdim` shape; a whole-tensor sum uses the lane-parallel kernel.
fn sum_keep<T: Float>(x: &Tensor<T>, axes: &[usize]) -> Tensor<T> {
    if axes.len() == x.ndim() {
        let s = tapegrad_kernels::reduce::sum(x.as_slice());
        return Tensor::full(keepdim_shape(x.dims(), axes), s);
    }
    let kshape = keepdim_shape(x.dims(), axes);
    let strides = broadcast_strides(&kshape, x.dims());
    let mut out = Tensor::zeros(kshape);
    tapegrad_kernels::strided::sum_into(x.dims(), x.as_slice(), out.as_mut_slice(), &strides);
    out
}

/// Validates reduction axes for `op` against a shape; `nonempty` refuses empty reduced
/// axes (max, min and arg-reductions have no value there).
#[track_caller]
fn axes_for(op: &'static str, dims: &[isize], shape: &[usize], nonempty: bool) -> Result<Axes> {
    // An empty list reduces every axis, as in PyTorch (`x.sum(dim=[])` is `x.sum()`).
    let all;
    let dims = if dims.is_empty() {
        all = all_axes(shape.len());
        all.as_slice()
    } else {
        dims
    };
    let axes = normalize_axes(op, dims, shape.len(), std::panic::Location::caller())?;
    if nonempty && axes.iter().any(|&a| shape[a] == 0) {
        return Err(shape_error(
            op,
            &[shape],
            "cannot reduce over an empty dimension",
        ));
    }
    Ok(axes)
}

fn all_axes(ndim: usize) -> SmallVec<[isize; 4]> {
    (0..ndim as isize).collect()
}

impl<T: Float> Tensor<T> {
    /// Applies a reduction (axes already validated).
    pub(crate) fn reduce(&self, op: &ReduceOp) -> Tensor<T> {
        op.forward(self)
    }

    fallible! {
        /// Σ over `shape`'s broadcast axes: the inverse of broadcasting `shape` to `self`'s
        /// shape.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if `shape` does not broadcast to `self`'s shape.
        pub fn sum_to / try_sum_to(&self, shape: &[usize]) -> Tensor<T> {
            check_sum_to(self.dims(), shape)?;
            Ok(self.reduce(&ReduceOp::SumTo {
                shape: Shape::from_slice(shape),
            }))
        }
    }

    fallible! {
        /// Index of the maximum along `dim` (the first one at ties; NaN counts as the maximum).
        ///
        /// # Errors
        /// If `dim` is out of range or the dimension is empty.
        pub fn argmax / try_argmax(&self, dim: isize, keepdim: bool) -> Tensor<usize> {
            self.arg_reduce("argmax", dim, keepdim, |a, b| a > b)
        }
    }

    fallible! {
        /// Index of the minimum along `dim` (the first one at ties).
        ///
        /// # Errors
        /// If `dim` is out of range or the dimension is empty.
        pub fn argmin / try_argmin(&self, dim: isize, keepdim: bool) -> Tensor<usize> {
            self.arg_reduce("argmin", dim, keepdim, |a, b| a < b)
        }
    }

    #[track_caller]
    fn arg_reduce(
        &self,
        op: &'static str,
        dim: isize,
        keepdim: bool,
        better: impl Fn(T, T) -> bool,
    ) -> Result<Tensor<usize>> {
        let axis = normalize_axis(op, dim, self.ndim(), std::panic::Location::caller())?;
        let (outer, n, inner) = split_at_axis(self.dims(), axis);
        if n == 0 {
            return Err(shape_error(
                op,
                &[self.dims()],
                "cannot reduce over an empty dimension",
            ));
        }
        let axes: Axes = if self.ndim() == 0 {
            Axes::new()
        } else {
            smallvec::smallvec![axis]
        };
        Ok(Tensor::from_writer(
            reduced_shape(self.dims(), &axes, keepdim),
            |idx| {
                tapegrad_kernels::reduce::arg_reduce(
                    self.as_slice(),
                    outer,
                    n,
                    inner,
                    better,
                    None,
                    idx,
                )
            },
        ))
    }
}

#[track_caller]
fn check_sum_to(from: &[usize], to: &[usize]) -> Result<()> {
    if !crate::shape::broadcasts_to(to, from) {
        return Err(shape_error(
            "sum_to",
            &[from, to],
            "the target shape must broadcast to the input's shape",
        ));
    }
    Ok(())
}

impl<'g, T: Float> Var<'g, T> {
    /// Records a reduction (axes already validated).
    #[track_caller]
    pub(crate) fn reduce(self, op: ReduceOp) -> Var<'g, T> {
        let value = self.with_value(|x| op.forward(x));
        self.graph
            .push(value, Op::Reduce(self.graph.boxed(op)), &[self.id])
    }

    fallible! {
        /// Σ over `shape`'s broadcast axes: the inverse of broadcasting (see
        /// [`Tensor::try_sum_to`]).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if `shape` does not broadcast to this value's shape.
        pub fn sum_to / try_sum_to(self, shape: &[usize]) -> Var<'g, T> {
            check_sum_to(&self.shape(), shape)?;
            if self.shape().as_slice() == shape {
                return Ok(self);
            }
            Ok(self.reduce(ReduceOp::SumTo {
                shape: Shape::from_slice(shape),
            }))
        }
    }

    fallible! {
        /// The maximum along `dim` and its index (the gradient goes to that index only, as
        /// PyTorch's `max(dim)`).
        ///
        /// # Errors
        /// If `dim` is out of range or the dimension is empty.
        pub fn max_dim / try_max_dim(self, dim: isize, keepdim: bool) -> (Var<'g, T>, Tensor<usize>) {
            let idx = self.value_ref().try_argmax(dim, true)?;
            self.take_at(dim, idx, keepdim)
        }
    }

    fallible! {
        /// The minimum along `dim` and its index (the gradient goes to that index only).
        ///
        /// # Errors
        /// If `dim` is out of range or the dimension is empty.
        pub fn min_dim / try_min_dim(self, dim: isize, keepdim: bool) -> (Var<'g, T>, Tensor<usize>) {
            let idx = self.value_ref().try_argmin(dim, true)?;
            self.take_at(dim, idx, keepdim)
        }
    }

    /// `gather` at keepdim indices along `dim`, then squeeze unless `keepdim`.
    #[track_caller]
    fn take_at(
        self,
        dim: isize,
        idx_keep: Tensor<usize>,
        keepdim: bool,
    ) -> Result<(Var<'g, T>, Tensor<usize>)> {
        if self.ndim() == 0 {
            return Ok((self, Tensor::scalar(0)));
        }
        let values = self.try_gather(dim, &idx_keep)?;
        if keepdim {
            return Ok((values, idx_keep));
        }
        let out_shape = values.with_value(|v| {
            let axis = normalize_axis("max_dim", dim, v.ndim(), std::panic::Location::caller())
                .unwrap_or(0);
            let mut s = Shape::from_slice(v.dims());
            s.remove(axis);
            s
        });
        Ok((values.reshape(&out_shape), idx_keep.with_shape(out_shape)))
    }

    fallible! {
        /// Index of the maximum along `dim` (no gradient; first index at ties).
        ///
        /// # Errors
        /// If `dim` is out of range or the dimension is empty.
        pub fn argmax / try_argmax(self, dim: isize, keepdim: bool) -> Tensor<usize> {
            self.value_ref().try_argmax(dim, keepdim)
        }
    }

    fallible! {
        /// Index of the minimum along `dim` (no gradient; first index at ties).
        ///
        /// # Errors
        /// If `dim` is out of range or the dimension is empty.
        pub fn argmin / try_argmin(self, dim: isize, keepdim: bool) -> Tensor<usize> {
            self.value_ref().try_argmin(dim, keepdim)
        }
    }
}

/// Declares a reduction on `Tensor` and `Var`: `name()` over everything, `name_dim(dims,
/// keepdim)` and `try_name_dim`. `$extra` are the op's own parameters.
macro_rules! reduction {
    ($(#[$doc:meta])* $all:ident, $dim:ident, $try_dim:ident, $opname:literal, nonempty = $ne:expr,
     ($($p:ident : $pt:ty),*) => |$axes:ident, $keep:ident| $make:expr) => {
        impl<T: Float> Tensor<T> {
            $(#[$doc])*
            /// Over all elements, giving a 0-d tensor.
            ///
            /// # Panics
            /// If the tensor is empty and the reduction has no value there.
            #[track_caller]
            pub fn $all(&self $(, $p: $pt)*) -> Tensor<T> {
                ok(self.$try_dim(all_axes(self.ndim()).as_slice() $(, $p)*, false))
            }
            $(#[$doc])*
            /// Over the axes `dims` (negative axes count from the end).
            ///
            /// # Panics
            /// On an invalid axis (see the `try_` form).
            #[track_caller]
            pub fn $dim(&self, dims: impl Dims $(, $p: $pt)*, keepdim: bool) -> Tensor<T> {
                ok(self.$try_dim(dims $(, $p)*, keepdim))
            }
            $(#[$doc])*
            ///
            /// # Errors
            /// [`crate::Error::Axis`] for an axis out of range, [`crate::Error::Argument`]
            /// for an axis given twice.
            #[track_caller]
            pub fn $try_dim(&self, dims: impl Dims $(, $p: $pt)*, keepdim: bool) -> Result<Tensor<T>> {
                let $axes = axes_for($opname, &dims.to_dims(), self.dims(), $ne)?;
                let $keep = keepdim;
                Ok(self.reduce(&$make))
            }
        }
        impl<'g, T: Float> Var<'g, T> {
            $(#[$doc])*
            /// Over all elements, giving a 0-d value.
            ///
            /// # Panics
            /// If the value is empty and the reduction has no value there.
            #[track_caller]
            pub fn $all(self $(, $p: $pt)*) -> Var<'g, T> {
                let dims = all_axes(self.ndim());
                ok(self.$try_dim(dims.as_slice() $(, $p)*, false))
            }
            $(#[$doc])*
            /// Over the axes `dims` (negative axes count from the end).
            ///
            /// # Panics
            /// On an invalid axis (see the `try_` form).
            #[track_caller]
            pub fn $dim(self, dims: impl Dims $(, $p: $pt)*, keepdim: bool) -> Var<'g, T> {
                ok(self.$try_dim(dims $(, $p)*, keepdim))
            }
            $(#[$doc])*
            ///
            /// # Errors
            /// [`crate::Error::Axis`] for an axis out of range, [`crate::Error::Argument`]
            /// for an axis given twice.
            #[track_caller]
            pub fn $try_dim(self, dims: impl Dims $(, $p: $pt)*, keepdim: bool) -> Result<Var<'g, T>> {
                let $axes = axes_for($opname, &dims.to_dims(), self.value_ref().dims(), $ne)?;
                let $keep = keepdim;
                Ok(self.reduce($make))
            }
        }
    };
}

reduction!(
    /// Sum.
    sum, sum_dim, try_sum_dim, "sum", nonempty = false, () => |axes, keepdim| ReduceOp::Sum { axes, keepdim }
);
reduction!(
    /// Arithmetic mean (NaN over zero elements, as PyTorch).
    mean, mean_dim, try_mean_dim, "mean", nonempty = false, () => |axes, keepdim| ReduceOp::Mean { axes, keepdim }
);
reduction!(
    /// Variance; `unbiased` divides by `n - 1` (PyTorch's default), otherwise by `n`.
    var, var_dim, try_var_dim, "var", nonempty = false, (unbiased: bool) =>
        |axes, keepdim| ReduceOp::Var { axes, correction: usize::from(unbiased), keepdim }
);
reduction!(
    /// Maximum (`amax`: tied maxima share the gradient evenly). NaN wins.
    max, amax, try_amax, "amax", nonempty = true, () => |axes, keepdim| ReduceOp::Max { axes, keepdim }
);
reduction!(
    /// Minimum (`amin`: tied minima share the gradient evenly). NaN wins.
    min, amin, try_amin, "amin", nonempty = true, () => |axes, keepdim| ReduceOp::Min { axes, keepdim }
);
reduction!(
    /// Product (the gradient is exact with zeros in the input).
    prod, prod_dim, try_prod_dim, "prod", nonempty = false, () => |axes, keepdim| ReduceOp::Prod { axes, keepdim }
);
reduction!(
    /// `ln Σ eˣ`, stable for large entries (computed as `m + ln Σ e^{x-m}`).
    logsumexp, logsumexp_dim, try_logsumexp_dim, "logsumexp", nonempty = false, () =>
        |axes, keepdim| ReduceOp::LogSumExp { axes, keepdim }
);

/// The standard deviation, written once for `Tensor` and `Var`: checked under std's own
/// name, then computed as √var.
#[track_caller]
fn std_dim<T: Float, A: Algebra<T>>(
    x: &A,
    dims: &[isize],
    unbiased: bool,
    keepdim: bool,
) -> Result<A> {
    let axes = axes_for("std", dims, &x.shape(), false)?;
    let correction = usize::from(unbiased);
    Ok(x.reduce(ReduceOp::Var {
        axes,
        correction,
        keepdim,
    })
    .sqrt())
}

/// The p-norm, written once for `Tensor` and `Var`.
#[track_caller]
fn norm_dim<T: Float, A: Algebra<T>>(x: &A, p: f64, dims: &[isize], keepdim: bool) -> Result<A> {
    if p.is_nan() || p <= 0.0 {
        return Err(arg_error(
            "norm",
            format!("the order p must be > 0 (or +inf), got {p}"),
        ));
    }
    let axes = axes_for("norm", dims, &x.shape(), false)?;
    Ok(x.reduce(ReduceOp::Norm { p, axes, keepdim }))
}

impl<T: Float> Tensor<T> {
    /// Standard deviation over all elements (`unbiased`: divide by `n - 1`).
    pub fn std(&self, unbiased: bool) -> Tensor<T> {
        self.var(unbiased).sqrt()
    }

    fallible! {
        /// Standard deviation over `dims`.
        ///
        /// # Errors
        /// On an invalid axis.
        pub fn std_dim / try_std_dim(&self, dims: impl Dims, unbiased: bool, keepdim: bool) -> Tensor<T> {
            std_dim(self, &dims.to_dims(), unbiased, keepdim)
        }
    }

    fallible! {
        /// The p-norm over all elements.
        ///
        /// # Errors
        /// [`crate::Error::Argument`] if `p` is not > 0.
        pub fn norm / try_norm(&self, p: f64) -> Tensor<T> {
            self.try_norm_dim(p, all_axes(self.ndim()).as_slice(), false)
        }
    }

    fallible! {
        /// The p-norm over `dims`.
        ///
        /// # Errors
        /// On an invalid axis or `p` not > 0.
        pub fn norm_dim / try_norm_dim(&self, p: f64, dims: impl Dims, keepdim: bool) -> Tensor<T> {
            norm_dim(self, p, &dims.to_dims(), keepdim)
        }
    }
}

impl<'g, T: Float> Var<'g, T> {
    /// Standard deviation over all elements (`unbiased`: divide by `n - 1`).
    #[track_caller]
    pub fn std(self, unbiased: bool) -> Var<'g, T> {
        self.var(unbiased).sqrt()
    }

    fallible! {
        /// Standard deviation over `dims` (the square root of [`Var::var_dim`]; its gradient
        /// is infinite where the deviation is 0, as PyTorch).
        ///
        /// # Errors
        /// On an invalid axis.
        pub fn std_dim / try_std_dim(self, dims: impl Dims, unbiased: bool, keepdim: bool) -> Var<'g, T> {
            std_dim(&self, &dims.to_dims(), unbiased, keepdim)
        }
    }

    fallible! {
        /// The p-norm over all elements.
        ///
        /// # Errors
        /// [`crate::Error::Argument`] if `p` is not > 0.
        pub fn norm / try_norm(self, p: f64) -> Var<'g, T> {
            let dims = all_axes(self.ndim());
            self.try_norm_dim(p, dims.as_slice(), false)
        }
    }

    fallible! {
        /// The p-norm over `dims`.
        ///
        /// # Errors
        /// On an invalid axis or `p` not > 0.
        pub fn norm_dim / try_norm_dim(self, p: f64, dims: impl Dims, keepdim: bool) -> Var<'g, T> {
            norm_dim(&self, p, &dims.to_dims(), keepdim)
        }
    }
}

#[cfg(test)]
mod tests;

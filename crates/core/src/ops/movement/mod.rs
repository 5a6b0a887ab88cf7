//! Movement ops: reshape, permute, broadcast, slice, pad, concat, and the composites built
//! from them (flatten, squeeze, unsqueeze, transpose, narrow, select, stack, split, chunk).
//!
//! Two ops carry the whole family's gradients: [`SliceSpec`] describes a strided window
//! (start, step, length per dimension); `slice` reads that window and `pad` writes a tensor
//! into that window of a larger constant tensor. Each is the other's backward rule: the
//! gradient of a slice is the gradient padded back with zeros, the gradient of a pad is the
//! gradient sliced. Concat, narrow, select and split are slices too.

use smallvec::SmallVec;
use tapegrad_kernels::strided::{broadcast_strides, contiguous_strides, copy_strided};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{arg_error, shape_error};
use crate::ops::{op_names, BackwardArgs, Grads, Op, Rule};
use crate::shape::{broadcasts_to, Dims, Shape};
use crate::tensor::{check_output, Tensor};
use crate::var::Var;
use crate::Float;

mod composite;
mod plan;

pub use plan::SliceSpec;

/// A movement op.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MovementOp {
    /// Same data, another shape.
    Reshape,
    /// Axes reordered: output axis `i` is input axis `perm[i]`.
    Permute {
        /// The permutation.
        perm: SmallVec<[usize; 4]>,
    },
    /// Repeated along broadcast dimensions.
    BroadcastTo,
    /// The window `spec` of the input.
    Slice {
        /// The window.
        spec: SliceSpec,
    },
    /// The input written into the window `spec` of a tensor of `shape` filled with `value`.
    Pad {
        /// The window the input fills.
        spec: SliceSpec,
        /// The output shape.
        shape: Shape,
        /// The fill value elsewhere.
        value: f64,
    },
    /// Inputs joined along `dim`.
    Concat {
        /// The axis.
        dim: usize,
    },
}

op_names! { MovementOp {
    Reshape => "reshape", Permute => "permute", BroadcastTo => "broadcast_to", Slice => "slice",
    Pad => "pad", Concat => "concat",
}}

impl<T: Float> Rule<T> for MovementOp {
    /// The backward rule.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (xs, g, needs) = (args.inputs, args.grad, args.needs);
        match self {
            MovementOp::Reshape => smallvec::smallvec![Some(g.reshape(&xs[0].shape()))],
            MovementOp::Permute { perm } => {
                let mut inv = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inv[p] = i;
                }
                smallvec::smallvec![Some(g.permute(&inv))]
            }
            MovementOp::BroadcastTo => smallvec::smallvec![Some(g.sum_to(&xs[0].shape()))],
            MovementOp::Slice { spec } => {
                smallvec::smallvec![Some(g.pad(spec, &xs[0].shape(), T::zero()))]
            }
            MovementOp::Pad { spec, .. } => smallvec::smallvec![Some(g.slice(spec))],
            MovementOp::Concat { dim } => {
                let full = g.shape();
                let mut offset = 0;
                xs.iter()
                    .zip(needs)
                    .map(|(x, &need)| {
                        let len = x.shape()[*dim];
                        let mut spec = SliceSpec::full(&full);
                        spec.dims[*dim] = (offset, 1, len);
                        offset += len;
                        need.then(|| g.slice(&spec))
                    })
                    .collect()
            }
        }
    }
}

/// Reads the window `spec` of `x`.
pub(crate) fn slice_tensor<T: Float>(x: &Tensor<T>, spec: &SliceSpec) -> Tensor<T> {
    let shape = spec.shape();
    let mut out = Tensor::zeros(shape.clone());
    let (strides, base) = spec.addressing(x.dims());
    copy_strided(
        &shape,
        x.as_slice(),
        &strides,
        base,
        out.as_mut_slice(),
        &contiguous_strides(&shape),
        0,
    );
    out
}

/// Writes `x` into the window `spec` of a new tensor of `shape` filled with `value`.
pub(crate) fn pad_tensor<T: Float>(
    x: &Tensor<T>,
    spec: &SliceSpec,
    shape: &[usize],
    value: T,
) -> Tensor<T> {
    let mut out = Tensor::full(shape, value);
    let (strides, base) = spec.addressing(shape);
    copy_strided(
        x.dims(),
        x.as_slice(),
        &contiguous_strides(x.dims()),
        0,
        out.as_mut_slice(),
        &strides,
        base,
    );
    out
}

/// `x` with its axes reordered.
pub(crate) fn permute_tensor<T: Float>(x: &Tensor<T>, perm: &[usize]) -> Tensor<T> {
    let shape: Shape = perm.iter().map(|&p| x.dims()[p]).collect();
    let src = contiguous_strides(x.dims());
    let strides: SmallVec<[usize; 6]> = perm.iter().map(|&p| src[p]).collect();
    let mut out = Tensor::zeros(shape.clone());
    copy_strided(
        &shape,
        x.as_slice(),
        &strides,
        0,
        out.as_mut_slice(),
        &contiguous_strides(&shape),
        0,
    );
    out
}

/// `x` repeated to `shape` (which `x`'s shape broadcasts to).
pub(crate) fn broadcast_tensor<T: Float>(x: &Tensor<T>, shape: &[usize]) -> Tensor<T> {
    if x.dims() == shape {
        return x.clone();
    }
    if let [v] = x.as_slice() {
        return Tensor::full(shape, *v);
    }
    Tensor::from_writer(shape, |out| {
        copy_strided(
            shape,
            x.as_slice(),
            &broadcast_strides(x.dims(), shape),
            0,
            out,
            &contiguous_strides(shape),
            0,
        )
    })
}

impl<T: Float> Tensor<T> {
    fallible! {
        /// The same data in another shape; one size may be `-1` (inferred). No copy.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the element counts differ.
        pub fn reshape / try_reshape(&self, shape: impl Dims) -> Tensor<T> {
            Ok(self.reshaped(plan::reshape_target(self.dims(), &shape.to_dims())?))
        }
    }

    fallible! {
        /// The axes reordered: output axis `i` is input axis `perm[i]`.
        ///
        /// # Errors
        /// If `perm` is not a permutation of the axes.
        pub fn permute / try_permute(&self, perm: impl Dims) -> Tensor<T> {
            Ok(permute_tensor(
                self,
                &plan::check_perm(self.dims(), &perm.to_dims())?,
            ))
        }
    }

    fallible! {
        /// Two axes swapped.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if an axis is out of range.
        pub fn transpose / try_transpose(&self, d0: isize, d1: isize) -> Tensor<T> {
            composite::transpose(self, d0, d1)
        }
    }

    fallible! {
        /// The transpose of a matrix (a 0-d or 1-d tensor is returned as is, as PyTorch's
        /// `t()`).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the rank is above 2.
        pub fn t / try_t(&self) -> Tensor<T> {
            composite::t(self)
        }
    }

    fallible! {
        /// Repeated along size-1 and missing leading dimensions to `shape`.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the shape does not broadcast to `shape`.
        pub fn broadcast_to / try_broadcast_to(&self, shape: &[usize]) -> Tensor<T> {
            if !broadcasts_to(self.dims(), shape) {
                return Err(shape_error(
                    "broadcast_to",
                    &[self.dims(), shape],
                    "the shape does not broadcast to the target",
                ));
            }
            check_output::<T>("broadcast_to", shape, std::panic::Location::caller())?;
            Ok(broadcast_tensor(self, shape))
        }
    }

    fallible! {
        /// The elements `start..start + len` along `dim`.
        ///
        /// # Errors
        /// If `dim` is out of range or the range exceeds the dimension.
        pub fn narrow / try_narrow(&self, dim: isize, start: usize, len: usize) -> Tensor<T> {
            composite::narrow(self, dim, start, len)
        }
    }

    fallible! {
        /// Python slicing `x[start:end:step]` along `dim` (negative indices count from the end,
        /// out-of-range bounds are clamped).
        ///
        /// # Errors
        /// If `step` is 0 or `dim` is out of range.
        pub fn slice / try_slice(
            &self,
            dim: isize,
            start: isize,
            end: isize,
            step: usize,
        ) -> Tensor<T> {
            composite::slice(self, dim, start, end, step)
        }
    }

    fallible! {
        /// The window `spec` (see [`SliceSpec`]).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the window does not fit in the tensor.
        pub fn slice_spec / try_slice_spec(&self, spec: &SliceSpec) -> Tensor<T> {
            if !spec.fits(self.dims()) {
                return Err(shape_error(
                    "slice",
                    &[self.dims(), &spec.shape()],
                    "the window does not fit",
                ));
            }
            Ok(slice_tensor(self, spec))
        }
    }

    fallible! {
        /// Index `index` along `dim`, dropping that dimension (`x[:, 2]` is `select(1, 2)`).
        ///
        /// # Errors
        /// If `dim` or the index is out of range.
        pub fn select / try_select(&self, dim: isize, index: usize) -> Tensor<T> {
            composite::select(self, dim, index)
        }
    }

    fallible! {
        /// Pads the trailing `pads.len()` dimensions with `value`: `pads[i] = (before, after)`
        /// for the i-th of those dimensions, in order (PyTorch's `F.pad` lists the last
        /// dimension first; this takes them in natural order).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if more pairs than dimensions are given.
        pub fn pad / try_pad(&self, pads: &[(usize, usize)], value: T) -> Tensor<T> {
            let (spec, shape) = plan::pad::<T>(self.dims(), pads)?;
            Ok(pad_tensor(self, &spec, &shape, value))
        }
    }

    fallible! {
        /// Joins tensors along `dim`.
        ///
        /// # Errors
        /// If the list is empty or the shapes differ outside `dim`.
        pub fn cat / try_cat(parts: &[&Tensor<T>], dim: isize) -> Tensor<T> {
            let shapes: Vec<&[usize]> = parts.iter().map(|p| p.dims()).collect();
            let (d, shape) = plan::concat::<T>(&shapes, dim)?;
            Ok(concat_tensors(parts, d, shape))
        }
    }

    fallible! {
        /// Stacks equal-shaped tensors along a new dimension `dim`.
        ///
        /// # Errors
        /// If the list is empty or the shapes differ.
        pub fn stack / try_stack(parts: &[&Tensor<T>], dim: isize) -> Tensor<T> {
            let Some(first) = parts.first() else {
                return Err(arg_error("stack", "needs at least one tensor"));
            };
            let s = plan::unsqueeze(first.dims(), dim)?;
            let mut un = Vec::with_capacity(parts.len());
            for p in parts {
                if p.dims() != first.dims() {
                    return Err(shape_error(
                        "stack",
                        &[first.dims(), p.dims()],
                        "all shapes must be equal",
                    ));
                }
                un.push(p.reshaped(s.clone()));
            }
            let refs: Vec<&Tensor<T>> = un.iter().collect();
            Self::try_cat(&refs, dim)
        }
    }

    fallible! {
        /// Splits along `dim` into pieces of the given sizes.
        ///
        /// # Errors
        /// If the sizes do not add up to the dimension.
        pub fn split / try_split(&self, sizes: &[usize], dim: isize) -> Vec<Tensor<T>> {
            composite::split(self, sizes, dim)
        }
    }

    fallible! {
        /// Splits along `dim` into `chunks` pieces as `torch.chunk` does.
        ///
        /// # Errors
        /// If `chunks` is 0 or `dim` is out of range.
        pub fn chunk / try_chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor<T>> {
            composite::chunk(self, chunks, dim)
        }
    }

    /// Removes every size-1 dimension.
    pub fn squeeze(&self) -> Tensor<T> {
        composite::squeeze(self)
    }

    fallible! {
        /// Removes dimension `dim` if its size is 1.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range.
        pub fn squeeze_dim / try_squeeze_dim(&self, dim: isize) -> Tensor<T> {
            composite::squeeze_dim(self, dim)
        }
    }

    fallible! {
        /// Inserts a size-1 dimension at `dim` (`-1` appends).
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range for rank + 1.
        pub fn unsqueeze / try_unsqueeze(&self, dim: isize) -> Tensor<T> {
            composite::unsqueeze(self, dim)
        }
    }

    fallible! {
        /// Merges dimensions `start..=end` into one.
        ///
        /// # Errors
        /// If an axis is out of range or `start > end`.
        pub fn flatten / try_flatten(&self, start: isize, end: isize) -> Tensor<T> {
            composite::flatten(self, start, end)
        }
    }
}

/// `parts` joined along `d` into a tensor of `shape` (checked by `plan::concat`).
fn concat_tensors<T: Float>(parts: &[&Tensor<T>], d: usize, shape: Shape) -> Tensor<T> {
    let mut out = Tensor::zeros(shape.clone());
    let mut offset = 0;
    for p in parts {
        let mut spec = SliceSpec::full(&shape);
        spec.dims[d] = (offset, 1, p.dims()[d]);
        offset += p.dims()[d];
        let (strides, base) = spec.addressing(&shape);
        copy_strided(
            p.dims(),
            p.as_slice(),
            &contiguous_strides(p.dims()),
            0,
            out.as_mut_slice(),
            &strides,
            base,
        );
    }
    out
}

impl<'g, T: Float> Var<'g, T> {
    #[track_caller]
    fn movement(self, value: Tensor<T>, op: MovementOp) -> Var<'g, T> {
        self.graph
            .push(value, Op::Movement(self.graph.boxed(op)), &[self.id])
    }

    fallible! {
        /// The same data in another shape; one size may be `-1`. No copy.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the element counts differ.
        pub fn reshape / try_reshape(self, shape: impl Dims) -> Var<'g, T> {
            let value = self.value_ref().try_reshape(shape)?;
            Ok(self.movement(value, MovementOp::Reshape))
        }
    }

    fallible! {
        /// The axes reordered: output axis `i` is input axis `perm[i]`.
        ///
        /// # Errors
        /// If `perm` is not a permutation of the axes.
        pub fn permute / try_permute(self, perm: impl Dims) -> Var<'g, T> {
            let perm = plan::check_perm(self.value_ref().dims(), &perm.to_dims())?;
            let value = self.with_value(|x| permute_tensor(x, &perm));
            Ok(self.movement(value, MovementOp::Permute { perm }))
        }
    }

    fallible! {
        /// Two axes swapped.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if an axis is out of range.
        pub fn transpose / try_transpose(self, d0: isize, d1: isize) -> Var<'g, T> {
            composite::transpose(&self, d0, d1)
        }
    }

    fallible! {
        /// The transpose of a matrix (0-d and 1-d values are returned as they are).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the rank is above 2.
        pub fn t / try_t(self) -> Var<'g, T> {
            composite::t(&self)
        }
    }

    fallible! {
        /// Repeated along size-1 and missing leading dimensions to `shape` (PyTorch's
        /// `expand`); the gradient is summed back.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the shape does not broadcast to `shape`.
        pub fn broadcast_to / try_broadcast_to(self, shape: &[usize]) -> Var<'g, T> {
            let value = self.value_ref().try_broadcast_to(shape)?;
            if self.shape().as_slice() == shape {
                return Ok(self);
            }
            Ok(self.movement(value, MovementOp::BroadcastTo))
        }
    }

    /// Alias of [`Var::broadcast_to`], PyTorch's name.
    #[track_caller]
    pub fn expand(self, shape: &[usize]) -> Var<'g, T> {
        self.broadcast_to(shape)
    }

    fallible! {
        /// The window `spec` (see [`SliceSpec`]).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the window does not fit.
        pub fn slice_spec / try_slice_spec(self, spec: &SliceSpec) -> Var<'g, T> {
            let shape = self.shape();
            if !spec.fits(&shape) {
                return Err(shape_error(
                    "slice",
                    &[&shape, &spec.shape()],
                    "the window does not fit",
                ));
            }
            let value = self.with_value(|x| slice_tensor(x, spec));
            Ok(self.movement(value, MovementOp::Slice { spec: spec.clone() }))
        }
    }

    fallible! {
        /// The elements `start..start + len` along `dim`.
        ///
        /// # Errors
        /// If the range exceeds the dimension.
        pub fn narrow / try_narrow(self, dim: isize, start: usize, len: usize) -> Var<'g, T> {
            composite::narrow(&self, dim, start, len)
        }
    }

    fallible! {
        /// Python slicing `x[start:end:step]` along `dim` (negative indices count from the end,
        /// bounds are clamped).
        ///
        /// # Errors
        /// If `step` is 0 or `dim` is out of range.
        pub fn slice / try_slice(
            self,
            dim: isize,
            start: isize,
            end: isize,
            step: usize,
        ) -> Var<'g, T> {
            composite::slice(&self, dim, start, end, step)
        }
    }

    fallible! {
        /// Index `index` along `dim`, dropping that dimension (`x[:, 2]` is `select(1, 2)`).
        ///
        /// # Errors
        /// If `dim` or the index is out of range.
        pub fn select / try_select(self, dim: isize, index: usize) -> Var<'g, T> {
            composite::select(&self, dim, index)
        }
    }

    fallible! {
        /// Pads the trailing `pads.len()` dimensions with `value` (see [`Tensor::pad`]).
        ///
        /// # Errors
        /// If more pairs than dimensions are given.
        pub fn pad / try_pad(self, pads: &[(usize, usize)], value: T) -> Var<'g, T> {
            let (spec, shape) = plan::pad::<T>(&self.shape(), pads)?;
            let v = self.with_value(|x| pad_tensor(x, &spec, &shape, value));
            Ok(self.movement(
                v,
                MovementOp::Pad {
                    spec,
                    shape,
                    value: value.as_f64(),
                },
            ))
        }
    }

    /// Internal: writes `self` into window `spec` of a `shape` tensor of `value`s.
    #[track_caller]
    pub(crate) fn pad_spec(self, spec: &SliceSpec, shape: &[usize], value: T) -> Var<'g, T> {
        let v = self.with_value(|x| pad_tensor(x, spec, shape, value));
        self.movement(
            v,
            MovementOp::Pad {
                spec: spec.clone(),
                shape: Shape::from_slice(shape),
                value: value.as_f64(),
            },
        )
    }

    fallible! {
        /// Joins values along `dim`.
        ///
        /// # Errors
        /// If the list is empty or the shapes differ outside `dim`.
        pub fn cat / try_cat(parts: &[Var<'g, T>], dim: isize) -> Var<'g, T> {
            let Some(first) = parts.first() else {
                return Err(arg_error("concat", "needs at least one tensor"));
            };
            for p in parts {
                first.same_graph("concat", p);
            }
            let graph = first.graph;
            let value = {
                let nodes = graph.nodes();
                let tensors: Vec<&Tensor<T>> =
                    parts.iter().map(|p| &nodes[p.id as usize].value).collect();
                let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.dims()).collect();
                let (d, shape) = plan::concat::<T>(&shapes, dim)?;
                (concat_tensors(&tensors, d, shape), d)
            };
            let ids: SmallVec<[u32; 4]> = parts.iter().map(|p| p.id).collect();
            Ok(graph.push(
                value.0,
                Op::Movement(graph.boxed(MovementOp::Concat { dim: value.1 })),
                &ids,
            ))
        }
    }

    fallible! {
        /// Stacks equal-shaped values along a new dimension `dim`.
        ///
        /// # Errors
        /// If the list is empty or the shapes differ.
        pub fn stack / try_stack(parts: &[Var<'g, T>], dim: isize) -> Var<'g, T> {
            let Some(first) = parts.first() else {
                return Err(arg_error("stack", "needs at least one tensor"));
            };
            let shape = first.shape();
            let s = plan::unsqueeze(&shape, dim)?;
            let mut un = Vec::with_capacity(parts.len());
            for p in parts {
                if p.shape() != shape {
                    return Err(shape_error(
                        "stack",
                        &[&shape, &p.shape()],
                        "all shapes must be equal",
                    ));
                }
                un.push(p.reshape(&s));
            }
            Self::try_cat(&un, dim)
        }
    }

    fallible! {
        /// Splits along `dim` into pieces of the given sizes.
        ///
        /// # Errors
        /// If the sizes do not add up to the dimension.
        pub fn split / try_split(self, sizes: &[usize], dim: isize) -> Vec<Var<'g, T>> {
            composite::split(&self, sizes, dim)
        }
    }

    fallible! {
        /// Splits along `dim` into `chunks` pieces as `torch.chunk` does.
        ///
        /// # Errors
        /// If `chunks` is 0 or `dim` is out of range.
        pub fn chunk / try_chunk(self, chunks: usize, dim: isize) -> Vec<Var<'g, T>> {
            composite::chunk(&self, chunks, dim)
        }
    }

    /// Removes every size-1 dimension.
    #[track_caller]
    pub fn squeeze(self) -> Var<'g, T> {
        composite::squeeze(&self)
    }

    fallible! {
        /// Removes dimension `dim` if its size is 1.
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range.
        pub fn squeeze_dim / try_squeeze_dim(self, dim: isize) -> Var<'g, T> {
            composite::squeeze_dim(&self, dim)
        }
    }

    fallible! {
        /// Inserts a size-1 dimension at `dim` (`-1` appends).
        ///
        /// # Errors
        /// [`crate::Error::Axis`] if `dim` is out of range for rank + 1.
        pub fn unsqueeze / try_unsqueeze(self, dim: isize) -> Var<'g, T> {
            composite::unsqueeze(&self, dim)
        }
    }

    fallible! {
        /// Merges dimensions `start..=end` into one (`flatten(0, -1)` makes a vector).
        ///
        /// # Errors
        /// If an axis is out of range or `start > end`.
        pub fn flatten / try_flatten(self, start: isize, end: isize) -> Var<'g, T> {
            composite::flatten(&self, start, end)
        }
    }
}

#[cfg(test)]
mod tests;

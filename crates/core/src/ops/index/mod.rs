//! Indexing ops: `index_select` / `index_add`, `gather` / `scatter_add`, `where`,
//! `masked_fill`, `one_hot`.
//!
//! The ops come in dual pairs, each the other's backward rule: the gradient of
//! `index_select` is an `index_add` into zeros, the gradient of `gather` a `scatter_add` into
//! zeros, and back. Repeated indices accumulate (index `[3, 0, 3]` sends twice the gradient
//! to row 3). Indices are `Tensor<usize>` and masks `Tensor<bool>`: neither is
//! differentiated. Every index is checked when the op is recorded.

use tapegrad_kernels::strided::{broadcast_strides, contiguous_strides, for_each_row};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{ok, shape_error, Result};
use crate::ops::{op_names, BackwardArgs, Grads, Op, Rule};
use crate::shape::{broadcast_shapes, split_at_axis, Shape};
use crate::tensor::{check_output, Tensor};
use crate::var::Var;
use crate::{Element, Float};

mod check;

/// An indexing op.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum IndexOp {
    /// Slices `index[j]` along `dim`.
    IndexSelect {
        /// The axis.
        dim: usize,
        /// A 1-d list of positions along `dim`.
        index: Tensor<usize>,
    },
    /// Zeros of `shape` with slice `j` of the input added at position `index[j]` along
    /// `dim`.
    IndexAdd {
        /// The axis.
        dim: usize,
        /// A 1-d list of positions along `dim`.
        index: Tensor<usize>,
        /// The output shape.
        shape: Shape,
    },
    /// `out[p] = x[p with coordinate dim replaced by index[p]]`.
    Gather {
        /// The axis.
        dim: usize,
        /// Positions, of the output's shape.
        index: Tensor<usize>,
    },
    /// Zeros of `shape` with `out[p with dim replaced by index[p]] += src[p]`.
    ScatterAdd {
        /// The axis.
        dim: usize,
        /// Positions, of the input's shape.
        index: Tensor<usize>,
        /// The output shape.
        shape: Shape,
    },
    /// `cond ? a : b` with broadcasting.
    Where {
        /// The condition.
        cond: Tensor<bool>,
    },
}

op_names! { IndexOp {
    IndexSelect => "index_select", IndexAdd => "index_add", Gather => "gather",
    ScatterAdd => "scatter_add", Where => "where",
}}

impl<T: Float> Rule<T> for IndexOp {
    /// The backward rule.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (xs, g, needs) = (args.inputs, args.grad, args.needs);
        match self {
            IndexOp::IndexSelect { dim, index } => {
                smallvec::smallvec![Some(g.index_add_zeros(&xs[0].shape(), *dim, index))]
            }
            IndexOp::IndexAdd { dim, index, .. } => {
                smallvec::smallvec![Some(g.index_select(*dim, index))]
            }
            IndexOp::Gather { dim, index } => {
                smallvec::smallvec![Some(g.scatter_add_zeros(&xs[0].shape(), *dim, index))]
            }
            IndexOp::ScatterAdd { dim, index, .. } => {
                smallvec::smallvec![Some(g.gather(*dim, index))]
            }
            IndexOp::Where { cond } => {
                let zero = g.zeros(&[]);
                smallvec::smallvec![
                    needs[0].then(|| V::select(cond, g, &zero).sum_to(&xs[0].shape())),
                    needs[1].then(|| V::select(cond, &zero, g).sum_to(&xs[1].shape())),
                ]
            }
        }
    }
}

/// `x` sliced at `index[j]` along `dim`.
pub(crate) fn index_select_tensor<E: Element>(
    x: &Tensor<E>,
    dim: usize,
    index: &Tensor<usize>,
) -> Tensor<E> {
    let (outer, n, inner) = split_at_axis(x.dims(), dim);
    let m = index.numel();
    let mut shape = Shape::from_slice(x.dims());
    shape[dim] = m;
    let (src, idx) = (x.as_slice(), index.as_slice());
    // Every element of the output is one copied slice's: written exactly once.
    Tensor::from_writer(shape, |dst| {
        for o in 0..outer {
            for (j, &i) in idx.iter().enumerate() {
                let s = (o * n + i) * inner;
                let d = (o * m + j) * inner;
                dst[d..d + inner].copy_from_slice(&src[s..s + inner]);
            }
        }
    })
}

/// Zeros of `shape` with slice `j` of `src` added at `index[j]` along `dim`.
pub(crate) fn index_add_tensor<T: Float>(
    src: &Tensor<T>,
    shape: &[usize],
    dim: usize,
    index: &Tensor<usize>,
) -> Tensor<T> {
    let (outer, n, inner) = split_at_axis(shape, dim);
    let m = index.numel();
    let mut out = Tensor::zeros(shape);
    let (s, d, idx) = (src.as_slice(), out.as_mut_slice(), index.as_slice());
    for o in 0..outer {
        for (j, &i) in idx.iter().enumerate() {
            let so = (o * m + j) * inner;
            let dof = (o * n + i) * inner;
            for k in 0..inner {
                d[dof + k] += s[so + k];
            }
        }
    }
    out
}

/// Walks the positions of `index` (contiguous) with the matching offset in a tensor of
/// `full` shape whose coordinate `dim` is left out: `f(p, offset_without_dim)`.
fn walk_index(index: &Tensor<usize>, full: &[usize], dim: usize, mut f: impl FnMut(usize, usize)) {
    let fs = contiguous_strides(full);
    let mut st = fs.clone();
    st[dim] = 0;
    let is = contiguous_strides(index.dims());
    for_each_row(
        index.dims(),
        [&is, &st],
        [0, 0],
        |len, [io, fo], [si, sf]| {
            for j in 0..len {
                f(io + j * si, fo + j * sf);
            }
        },
    );
}

pub(crate) fn gather_tensor<T: Float>(
    x: &Tensor<T>,
    dim: usize,
    index: &Tensor<usize>,
) -> Tensor<T> {
    let stride = contiguous_strides(x.dims())[dim];
    let mut out = Tensor::zeros(index.dims());
    let (src, dst, idx) = (x.as_slice(), out.as_mut_slice(), index.as_slice());
    walk_index(index, x.dims(), dim, |p, off| {
        dst[p] = src[off + idx[p] * stride]
    });
    out
}

pub(crate) fn scatter_add_tensor<T: Float>(
    src: &Tensor<T>,
    shape: &[usize],
    dim: usize,
    index: &Tensor<usize>,
) -> Tensor<T> {
    let stride = contiguous_strides(shape)[dim];
    let mut out = Tensor::zeros(shape);
    let (s, dst, idx) = (src.as_slice(), out.as_mut_slice(), index.as_slice());
    walk_index(index, shape, dim, |p, off| {
        dst[off + idx[p] * stride] += s[p]
    });
    out
}

/// `cond ? a : b` with the three shapes broadcast together.
#[track_caller]
pub(crate) fn where_tensor<T: Float>(
    cond: &Tensor<bool>,
    a: &Tensor<T>,
    b: &Tensor<T>,
) -> Result<Tensor<T>> {
    let shape =
        broadcast_shapes(a.dims(), b.dims()).and_then(|s| broadcast_shapes(&s, cond.dims()));
    let Some(shape) = shape else {
        return Err(shape_error(
            "where",
            &[cond.dims(), a.dims(), b.dims()],
            "the condition and both branches must broadcast together",
        ));
    };
    check_output::<T>("where", &shape, std::panic::Location::caller())?;
    let mut out = Tensor::zeros(shape.clone());
    let (sc, sa, sb) = (
        broadcast_strides(cond.dims(), &shape),
        broadcast_strides(a.dims(), &shape),
        broadcast_strides(b.dims(), &shape),
    );
    let so = contiguous_strides(&shape);
    let (c, av, bv, o) = (
        cond.as_slice(),
        a.as_slice(),
        b.as_slice(),
        out.as_mut_slice(),
    );
    for_each_row(
        &shape,
        [&sc, &sa, &sb, &so],
        [0; 4],
        |len, [co, ao, bo, oo], [dc, da, db, d_o]| {
            for j in 0..len {
                o[oo + j * d_o] = if c[co + j * dc] {
                    av[ao + j * da]
                } else {
                    bv[bo + j * db]
                };
            }
        },
    );
    Ok(out)
}

/// Selection works on tensors of every element type: labels (`Tensor<usize>`) and masks are
/// gathered like features.
///
/// ```
/// use tapegrad_core::Tensor;
/// let labels = Tensor::from_vec(vec![3usize, 1, 4, 1, 5], [5]);
/// let batch = labels.index_select(0, &Tensor::from_vec(vec![4usize, 0], [2]));
/// assert_eq!(batch.to_vec(), vec![5, 3]);
/// ```
impl<E: Element> Tensor<E> {
    fallible! {
        /// The slices at `index` along `dim` (a 1-d index; repeats allowed).
        ///
        /// # Errors
        /// On an out-of-range axis or index.
        pub fn index_select / try_index_select(&self, dim: isize, index: &Tensor<usize>) -> Tensor<E> {
            let d = check::index_select::<E>("index_select", self.dims(), dim, index)?;
            Ok(index_select_tensor(self, d, index))
        }
    }
}

impl<T: Float> Tensor<T> {
    fallible! {
        /// `out[i][j][k] = self[i][index[i][j][k]][k]` for `dim = 1` (and likewise for others).
        ///
        /// # Errors
        /// On mismatched shapes or out-of-range indices.
        pub fn gather / try_gather(&self, dim: isize, index: &Tensor<usize>) -> Tensor<T> {
            let d = check::gather(self.dims(), dim, index)?;
            Ok(gather_tensor(self, d, index))
        }
    }

    fallible! {
        /// `self` with `src[p]` added at `p` with coordinate `dim` replaced by `index[p]`.
        ///
        /// # Errors
        /// On mismatched shapes or out-of-range indices.
        pub fn scatter_add / try_scatter_add(
            &self,
            dim: isize,
            index: &Tensor<usize>,
            src: &Tensor<T>,
        ) -> Tensor<T> {
            let d = check::scatter(self.dims(), dim, index, src.dims())?;
            self.try_add(&scatter_add_tensor(src, self.dims(), d, index))
        }
    }

    fallible! {
        /// `self` with slice `j` of `src` added at `index[j]` along `dim`.
        ///
        /// # Errors
        /// On mismatched shapes or out-of-range indices.
        pub fn index_add / try_index_add(
            &self,
            dim: isize,
            index: &Tensor<usize>,
            src: &Tensor<T>,
        ) -> Tensor<T> {
            let d = check::index_add::<T>(self.dims(), dim, index, src.dims())?;
            self.try_add(&index_add_tensor(src, self.dims(), d, index))
        }
    }

    fallible! {
        /// `value` where `mask` holds, `self` elsewhere (the mask broadcasts to the tensor's
        /// shape).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the mask does not broadcast to the tensor's shape.
        pub fn masked_fill / try_masked_fill(&self, mask: &Tensor<bool>, value: T) -> Tensor<T> {
            masked_fill(self, mask, value)
        }
    }

    /// `cond ? a : b` element-wise, the three shapes broadcast together.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the shapes do not broadcast.
    #[track_caller]
    pub fn try_where_cond(cond: &Tensor<bool>, a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
        where_tensor(cond, a, b)
    }

    /// `cond ? a : b` (see [`Tensor::try_where_cond`]).
    ///
    /// # Panics
    /// If the shapes do not broadcast.
    #[track_caller]
    pub fn where_cond(cond: &Tensor<bool>, a: &Tensor<T>, b: &Tensor<T>) -> Tensor<T> {
        ok(where_tensor(cond, a, b))
    }

    fallible! {
        /// One-hot rows: shape `indices.shape() + [num_classes]`, 1 at each index.
        ///
        /// # Errors
        /// [`crate::Error::Index`] if an index is `≥ num_classes`.
        pub fn one_hot / try_one_hot(indices: &Tensor<usize>, num_classes: usize) -> Tensor<T> {
            check::indices("one_hot", indices, indices.ndim(), num_classes)?;
            let mut shape = Shape::from_slice(indices.dims());
            shape.push(num_classes);
            check_output::<T>("one_hot", &shape, std::panic::Location::caller())?;
            let mut out = Tensor::zeros(shape);
            let o = out.as_mut_slice();
            for (p, &i) in indices.as_slice().iter().enumerate() {
                o[p * num_classes + i] = T::one();
            }
            Ok(out)
        }
    }
}

impl<'g, T: Float> Var<'g, T> {
    #[track_caller]
    fn index_op(self, value: Tensor<T>, op: IndexOp) -> Var<'g, T> {
        self.graph
            .push(value, Op::Index(self.graph.boxed(op)), &[self.id])
    }

    fallible! {
        /// The slices at `index` along `dim` (a 1-d index; repeats accumulate in the gradient).
        ///
        /// # Errors
        /// On an out-of-range axis or index.
        pub fn index_select / try_index_select(self, dim: isize, index: &Tensor<usize>) -> Var<'g, T> {
            let d = check::index_select::<T>("index_select", self.value_ref().dims(), dim, index)?;
            let v = self.with_value(|x| index_select_tensor(x, d, index));
            Ok(self.index_op(
                v,
                IndexOp::IndexSelect {
                    dim: d,
                    index: index.clone(),
                },
            ))
        }
    }

    fallible! {
        /// `self` with slice `j` of `src` added at `index[j]` along `dim`.
        ///
        /// # Errors
        /// On mismatched shapes or out-of-range indices.
        pub fn index_add / try_index_add(
            self,
            dim: isize,
            index: &Tensor<usize>,
            src: Var<'g, T>,
        ) -> Var<'g, T> {
            self.same_graph("index_add", &src);
            let shape = self.shape();
            let d = check::index_add::<T>(&shape, dim, index, &src.shape())?;
            Ok(self.add(src.index_add_into(&shape, d, index)))
        }
    }

    /// Internal: zeros of `shape` with `self`'s slices added at `index` (validated).
    #[track_caller]
    pub(crate) fn index_add_into(
        self,
        shape: &[usize],
        dim: usize,
        index: &Tensor<usize>,
    ) -> Var<'g, T> {
        let v = self.with_value(|s| index_add_tensor(s, shape, dim, index));
        self.index_op(
            v,
            IndexOp::IndexAdd {
                dim,
                index: index.clone(),
                shape: Shape::from_slice(shape),
            },
        )
    }

    fallible! {
        /// `out[i][j][k] = self[i][index[i][j][k]][k]` for `dim = 1` (and likewise).
        ///
        /// # Errors
        /// On mismatched shapes or out-of-range indices.
        pub fn gather / try_gather(self, dim: isize, index: &Tensor<usize>) -> Var<'g, T> {
            let d = check::gather(self.value_ref().dims(), dim, index)?;
            let v = self.with_value(|x| gather_tensor(x, d, index));
            Ok(self.index_op(
                v,
                IndexOp::Gather {
                    dim: d,
                    index: index.clone(),
                },
            ))
        }
    }

    fallible! {
        /// `self` with `src[p]` added at `p` with coordinate `dim` replaced by `index[p]`
        /// (`src` and `index` share one shape; repeats accumulate).
        ///
        /// # Errors
        /// On mismatched shapes or out-of-range indices.
        pub fn scatter_add / try_scatter_add(
            self,
            dim: isize,
            index: &Tensor<usize>,
            src: Var<'g, T>,
        ) -> Var<'g, T> {
            self.same_graph("scatter_add", &src);
            let shape = self.shape();
            let d = check::scatter(&shape, dim, index, &src.shape())?;
            Ok(self.add(src.scatter_add_into(&shape, d, index)))
        }
    }

    /// Internal: zeros of `shape` with `self` scatter-added (validated).
    #[track_caller]
    pub(crate) fn scatter_add_into(
        self,
        shape: &[usize],
        dim: usize,
        index: &Tensor<usize>,
    ) -> Var<'g, T> {
        let v = self.with_value(|s| scatter_add_tensor(s, shape, dim, index));
        self.index_op(
            v,
            IndexOp::ScatterAdd {
                dim,
                index: index.clone(),
                shape: Shape::from_slice(shape),
            },
        )
    }

    fallible! {
        /// `cond ? a : b` element-wise, the three shapes broadcast together; the gradient goes
        /// to the branch taken.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the shapes do not broadcast.
        pub fn where_cond / try_where_cond(cond: &Tensor<bool>, a: Var<'g, T>, b: Var<'g, T>) -> Var<'g, T> {
            a.same_graph("where", &b);
            let value = {
                let nodes = a.graph.nodes();
                where_tensor(
                    cond,
                    &nodes[a.id as usize].value,
                    &nodes[b.id as usize].value,
                )?
            };
            Ok(a.graph.push(
                value,
                Op::Index(a.graph.boxed(IndexOp::Where { cond: cond.clone() })),
                &[a.id, b.id],
            ))
        }
    }

    fallible! {
        /// `value` where `mask` holds, `self` elsewhere; no gradient flows to the filled
        /// positions.
        ///
        /// # Errors
        /// If the mask does not broadcast to this value's shape.
        pub fn masked_fill / try_masked_fill(self, mask: &Tensor<bool>, value: T) -> Var<'g, T> {
            masked_fill(&self, mask, value)
        }
    }
}

/// `masked_fill`, written once for `Tensor` and `Var`: `where(mask, value, x)`.
#[track_caller]
fn masked_fill<T: Float, A: Algebra<T>>(x: &A, mask: &Tensor<bool>, value: T) -> Result<A> {
    let shape = x.shape();
    if !crate::shape::broadcasts_to(mask.dims(), &shape) {
        return Err(shape_error(
            "masked_fill",
            &[&shape, mask.dims()],
            "the mask must broadcast to the input's shape",
        ));
    }
    Ok(A::select(mask, &x.constant(Tensor::scalar(value)), x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};
    use crate::Graph;

    fn idx(v: &[usize], shape: &[usize]) -> Tensor<usize> {
        Tensor::from_vec(v.to_vec(), shape)
    }

    #[test]
    fn values() {
        let x = Tensor::<f64>::from_fn([3, 2], |i| i as f64);
        assert_eq!(
            x.index_select(0, &idx(&[2, 0, 2], &[3])).to_vec(),
            vec![4.0, 5.0, 0.0, 1.0, 4.0, 5.0]
        );
        assert_eq!(
            x.gather(1, &idx(&[1, 0, 0], &[3, 1])).to_vec(),
            vec![1.0, 2.0, 4.0]
        );
        let z = Tensor::<f64>::zeros([3, 2]);
        assert_eq!(
            z.scatter_add(0, &idx(&[2, 2], &[1, 2]), &Tensor::ones([1, 2]))
                .to_vec(),
            vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0]
        );
        assert_eq!(
            z.index_add(0, &idx(&[1, 1], &[2]), &Tensor::ones([2, 2]))
                .to_vec(),
            vec![0.0, 0.0, 2.0, 2.0, 0.0, 0.0]
        );
        let m = Tensor::from_vec(vec![true, false], [2]);
        assert_eq!(
            x.masked_fill(&m, -1.0).to_vec(),
            vec![-1.0, 1.0, -1.0, 3.0, -1.0, 5.0]
        );
        let oh = Tensor::<f32>::one_hot(&idx(&[2, 0], &[2]), 3);
        assert_eq!(oh.to_vec(), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        assert!(Tensor::<f32>::try_one_hot(&idx(&[3], &[1]), 3).is_err());
        let w = Tensor::where_cond(&x.gt_scalar(2.0), &x, &Tensor::scalar(9.0));
        assert_eq!(w.to_vec(), vec![9.0, 9.0, 9.0, 3.0, 4.0, 5.0]);
    }

    #[test]
    fn index_errors_name_the_index() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::zeros([3, 2]));
        let e = x
            .try_index_select(0, &idx(&[0, 3], &[2]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("index_select: index 3 is out of range for dimension 0 of size 3"),
            "{e}"
        );
        assert!(x.try_gather(1, &idx(&[0, 1], &[2])).is_err());
        assert!(x
            .try_masked_fill(&Tensor::from_vec(vec![true; 3], [3]), 0.0)
            .is_err());
    }

    #[test]
    fn gradients_with_repeated_indices() {
        let x = rand_tensor(&[4, 3], -1.0, 1.0, 100);
        let i1 = idx(&[3, 0, 3, 1], &[4]);
        check_op("index_select", std::slice::from_ref(&x), move |_, v| {
            v[0].index_select(0, &i1)
        });
        let i2 = idx(&[2, 2, 0, 1, 1, 1, 0, 0], &[4, 2]);
        check_op("gather", std::slice::from_ref(&x), move |_, v| {
            v[0].gather(1, &i2)
        });
        let i3 = idx(&[0, 0, 2, 1, 2, 2], &[2, 3]);
        let src = rand_tensor(&[2, 3], -1.0, 1.0, 101);
        check_op("scatter_add", &[x.clone(), src], move |_, v| {
            v[0].scatter_add(0, &i3, v[1])
        });
        let i4 = idx(&[1, 1], &[2]);
        let src2 = rand_tensor(&[4, 2], -1.0, 1.0, 102);
        check_op("index_add", &[x.clone(), src2], move |_, v| {
            v[0].index_add(1, &i4, v[1])
        });
        let cond = rand_tensor(&[4, 3], -1.0, 1.0, 103).gt_scalar(0.0);
        let b = rand_tensor(&[3], -1.0, 1.0, 104);
        let c2 = cond.clone();
        check_op("where", &[x.clone(), b], move |_, v| {
            Var::where_cond(&c2, v[0], v[1])
        });
        check_op("masked_fill", std::slice::from_ref(&x), move |_, v| {
            v[0].masked_fill(&cond, 0.5)
        });
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::ones([4]));
        let grad = x
            .index_select(0, &idx(&[3, 0, 3, 1], &[4]))
            .sum()
            .backward()
            .wrt(x);
        assert_eq!(grad.to_vec(), vec![1.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn node_reuse_in_indexing() {
        let x = rand_tensor(&[3, 2], -1.0, 1.0, 130);
        check_op("reuse", &[x], |_, v| {
            let i = idx(&[0, 2, 0], &[3]);
            let a = v[0].index_select(0, &i);
            let b = v[0].gather(1, &idx(&[1, 0, 1], &[3, 1]));
            let c = v[0].scatter_add(0, &idx(&[2, 2], &[1, 2]), v[0].narrow(0, 0, 1));
            a.sum_dim(1, true) * b
                + Var::where_cond(&v[0].gt_scalar(0.0), v[0], c)
                    .narrow(0, 0, 3)
                    .sum_dim(1, true)
        });
    }
}

//! The movement composites, written once over [`Algebra`]: each checks its arguments (the
//! `plan` module's rules, under its own name) and builds its result from the primitives
//! `slice`, `reshape` and `permute`. `Tensor` and `Var` expose each as a method of the same
//! name; on a `Var` the primitives record on the tape, so the gradient comes for free.
//!
//! Every function is `#[track_caller]`, as are the `Var` primitives, so an error and a
//! recorded node both name the user's line.

use crate::algebra::Algebra;
use crate::error::{shape_error, Result};
use crate::shape::Shape;
use crate::Float;

use super::plan;

/// Two axes swapped.
#[track_caller]
pub(crate) fn transpose<T: Float, A: Algebra<T>>(x: &A, d0: isize, d1: isize) -> Result<A> {
    Ok(x.permute(&plan::transpose(&x.shape(), d0, d1)?))
}

/// The transpose of a matrix; 0-d and 1-d values as they are (PyTorch's `t()`).
#[track_caller]
pub(crate) fn t<T: Float, A: Algebra<T>>(x: &A) -> Result<A> {
    let shape = x.shape();
    match shape.len() {
        0 | 1 => Ok(x.clone()),
        2 => transpose(x, 0, 1),
        _ => Err(shape_error(
            "t",
            &[&shape],
            "t() expects at most 2 dimensions",
        )),
    }
}

/// The elements `start..start + len` along `dim`.
#[track_caller]
pub(crate) fn narrow<T: Float, A: Algebra<T>>(
    x: &A,
    dim: isize,
    start: usize,
    len: usize,
) -> Result<A> {
    Ok(x.slice(&plan::narrow("narrow", &x.shape(), dim, start, len)?))
}

/// Python slicing `x[start:end:step]` along `dim`.
#[track_caller]
pub(crate) fn slice<T: Float, A: Algebra<T>>(
    x: &A,
    dim: isize,
    start: isize,
    end: isize,
    step: usize,
) -> Result<A> {
    Ok(x.slice(&plan::slice(&x.shape(), dim, start, end, step)?))
}

/// Index `index` along `dim`, dropping that dimension.
#[track_caller]
pub(crate) fn select<T: Float, A: Algebra<T>>(x: &A, dim: isize, index: usize) -> Result<A> {
    let spec = plan::narrow("select", &x.shape(), dim, index, 1)?;
    let s = plan::squeeze_dim("select", &spec.shape(), dim)?;
    Ok(x.slice(&spec).reshape(&s))
}

/// Pieces of the given sizes along `dim`.
#[track_caller]
pub(crate) fn split<T: Float, A: Algebra<T>>(x: &A, sizes: &[usize], dim: isize) -> Result<Vec<A>> {
    let (_, specs) = plan::split(&x.shape(), sizes, dim)?;
    Ok(specs.iter().map(|s| x.slice(s)).collect())
}

/// `chunks` pieces along `dim`, as `torch.chunk` cuts them.
#[track_caller]
pub(crate) fn chunk<T: Float, A: Algebra<T>>(x: &A, chunks: usize, dim: isize) -> Result<Vec<A>> {
    let sizes = plan::chunk_sizes(&x.shape(), chunks, dim)?;
    split(x, &sizes, dim)
}

/// Every size-1 dimension removed.
#[track_caller]
pub(crate) fn squeeze<T: Float, A: Algebra<T>>(x: &A) -> A {
    let s: Shape = x.shape().iter().copied().filter(|&d| d != 1).collect();
    x.reshape(&s)
}

/// Dimension `dim` removed if its size is 1.
#[track_caller]
pub(crate) fn squeeze_dim<T: Float, A: Algebra<T>>(x: &A, dim: isize) -> Result<A> {
    Ok(x.reshape(&plan::squeeze_dim("squeeze_dim", &x.shape(), dim)?))
}

/// A size-1 dimension inserted at `dim`.
#[track_caller]
pub(crate) fn unsqueeze<T: Float, A: Algebra<T>>(x: &A, dim: isize) -> Result<A> {
    Ok(x.reshape(&plan::unsqueeze(&x.shape(), dim)?))
}

/// Dimensions `start..=end` merged into one.
#[track_caller]
pub(crate) fn flatten<T: Float, A: Algebra<T>>(x: &A, start: isize, end: isize) -> Result<A> {
    Ok(x.reshape(&plan::flatten(&x.shape(), start, end)?))
}

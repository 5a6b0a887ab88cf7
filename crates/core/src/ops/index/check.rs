//! The argument checks of the indexing ops, shared by their `Tensor` and `Var` forms:
//! each validates shapes and indices (naming the op, the shapes and the caller's line) and
//! returns the normalised axis.

use crate::error::{shape_error, Error, Result};
use crate::shape::{normalize_axis, Shape};
use crate::tensor::{check_output, Tensor};
use crate::{Element, Float};
use std::panic::Location;

/// `op` is the caller's op (`index_select`, `index_add`), named in errors.
#[track_caller]
pub(super) fn index_select<E: Element>(
    op: &'static str,
    shape: &[usize],
    dim: isize,
    index: &Tensor<usize>,
) -> Result<usize> {
    let d = normalize_axis(op, dim, shape.len(), Location::caller())?;
    if index.ndim() > 1 || shape.is_empty() {
        return Err(shape_error(
            op,
            &[shape, index.dims()],
            "the index must be 0-d or 1-d and the input at least 1-d",
        ));
    }
    indices(op, index, d, shape[d])?;
    let mut out = Shape::from_slice(shape);
    out[d] = index.numel();
    check_output::<E>(op, &out, Location::caller())?;
    Ok(d)
}

/// Whether `index` has the rank of a non-empty `shape` and fits inside it outside `d`.
fn fits_outside(index: &Tensor<usize>, shape: &[usize], d: usize) -> bool {
    !shape.is_empty()
        && index.ndim() == shape.len()
        && (index.dims().iter().zip(shape).enumerate()).all(|(i, (a, b))| i == d || a <= b)
}

#[track_caller]
pub(super) fn gather(shape: &[usize], dim: isize, index: &Tensor<usize>) -> Result<usize> {
    let d = normalize_axis("gather", dim, shape.len(), Location::caller())?;
    if !fits_outside(index, shape, d) {
        return Err(shape_error(
            "gather",
            &[shape, index.dims()],
            format!("the index must have the input's rank and fit inside it outside dimension {d}"),
        ));
    }
    indices("gather", index, d, shape[d])?;
    Ok(d)
}

#[track_caller]
pub(super) fn scatter(
    shape: &[usize],
    dim: isize,
    index: &Tensor<usize>,
    src: &[usize],
) -> Result<usize> {
    let d = normalize_axis("scatter_add", dim, shape.len(), Location::caller())?;
    if index.dims() != src || !fits_outside(index, shape, d) {
        return Err(shape_error(
            "scatter_add",
            &[shape, index.dims(), src],
            format!("the index must have the source's shape, the input's rank, and fit inside the input outside dimension {d}"),
        ));
    }
    indices("scatter_add", index, d, shape[d])?;
    Ok(d)
}

#[track_caller]
pub(super) fn index_add<T: Float>(
    shape: &[usize],
    dim: isize,
    index: &Tensor<usize>,
    src: &[usize],
) -> Result<usize> {
    let d = index_select::<T>("index_add", shape, dim, index)?;
    let mut want = Shape::from_slice(shape);
    want[d] = index.numel();
    if want.as_slice() != src {
        return Err(shape_error(
            "index_add",
            &[shape, index.dims(), src],
            format!("the source must have shape {:?}", want.as_slice()),
        ));
    }
    Ok(d)
}

/// Every index below `size` (the extent of `dim`), or an error naming the first that is not.
#[track_caller]
pub(super) fn indices(
    op: &'static str,
    index: &Tensor<usize>,
    dim: usize,
    size: usize,
) -> Result<()> {
    if let Some(&bad) = index.as_slice().iter().find(|&&i| i >= size) {
        return Err(Error::Index {
            op,
            index: bad,
            dim,
            size,
            location: Location::caller(),
        });
    }
    Ok(())
}

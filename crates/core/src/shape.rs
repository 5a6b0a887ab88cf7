//! Shapes, axis arguments and broadcasting rules.

use smallvec::SmallVec;

use crate::error::{Error, Location, Result};

/// The shape of a tensor: one size per dimension, row-major. `[]` is a 0-d (scalar) shape.
pub type Shape = SmallVec<[usize; 4]>;

/// Anything that can be read as a shape: `[2, 3]`, `&[2, 3][..]`, `vec![2, 3]`, a [`Shape`],
/// or `()` for a 0-d shape.
pub trait IntoShape {
    /// Converts to a [`Shape`].
    fn into_shape(self) -> Shape;
}

impl<const N: usize> IntoShape for [usize; N] {
    fn into_shape(self) -> Shape {
        Shape::from_slice(&self)
    }
}
impl<const N: usize> IntoShape for &[usize; N] {
    fn into_shape(self) -> Shape {
        Shape::from_slice(self)
    }
}
impl IntoShape for &[usize] {
    fn into_shape(self) -> Shape {
        Shape::from_slice(self)
    }
}
impl IntoShape for Vec<usize> {
    fn into_shape(self) -> Shape {
        Shape::from_vec(self)
    }
}
impl IntoShape for &Vec<usize> {
    fn into_shape(self) -> Shape {
        Shape::from_slice(self)
    }
}
impl IntoShape for Shape {
    fn into_shape(self) -> Shape {
        self
    }
}
impl IntoShape for &Shape {
    fn into_shape(self) -> Shape {
        self.clone()
    }
}
impl IntoShape for () {
    fn into_shape(self) -> Shape {
        Shape::new()
    }
}

/// Axis arguments, as in PyTorch's `dim=`: one axis (`1`, `-1`) or several (`[0, 2]`,
/// `&[0, -1][..]`). Negative axes count from the end.
pub trait Dims {
    /// The axes as signed integers, before normalisation.
    fn to_dims(&self) -> SmallVec<[isize; 4]>;
}

macro_rules! impl_dims_int {
    ($($t:ty),*) => {$(
        impl Dims for $t {
            fn to_dims(&self) -> SmallVec<[isize; 4]> {
                smallvec::smallvec![*self as isize]
            }
        }
        impl<const N: usize> Dims for [$t; N] {
            fn to_dims(&self) -> SmallVec<[isize; 4]> {
                self.iter().map(|&d| d as isize).collect()
            }
        }
        impl Dims for &[$t] {
            fn to_dims(&self) -> SmallVec<[isize; 4]> {
                self.iter().map(|&d| d as isize).collect()
            }
        }
        impl Dims for Vec<$t> {
            fn to_dims(&self) -> SmallVec<[isize; 4]> {
                self.iter().map(|&d| d as isize).collect()
            }
        }
    )*};
}
impl_dims_int!(i32, i64, isize, usize);

impl Dims for Shape {
    fn to_dims(&self) -> SmallVec<[isize; 4]> {
        self.iter().map(|&d| d as isize).collect()
    }
}
impl Dims for &Shape {
    fn to_dims(&self) -> SmallVec<[isize; 4]> {
        self.iter().map(|&d| d as isize).collect()
    }
}

/// Number of elements of a shape (1 for a 0-d shape).
///
/// For the shape of a tensor that exists (its count was checked when it was made); for a
/// shape built from arguments, use [`checked_numel`].
#[inline]
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// The number of elements of `shape`, or `None` if it is not a shape a tensor can have:
/// the product of its non-zero sizes must fit in `isize`, so that every count computed
/// from a tensor's shape (a stride, the size of leading or trailing axes, a byte offset of
/// one-byte elements) fits too, even when another size is zero.
///
/// ```
/// use tapegrad_core::shape::checked_numel;
/// assert_eq!(checked_numel(&[2, 3]), Some(6));
/// assert_eq!(checked_numel(&[]), Some(1));
/// assert_eq!(checked_numel(&[1 << 32, 0]), Some(0));
/// assert_eq!(checked_numel(&[1 << 32, 1 << 32]), None);
/// assert_eq!(checked_numel(&[1 << 40, 1 << 40, 0]), None);
/// ```
#[inline]
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    let mut nonzero = 1usize;
    let mut zero = false;
    for &d in shape {
        if d == 0 {
            zero = true;
        } else {
            nonzero = nonzero
                .checked_mul(d)
                .filter(|&n| n <= isize::MAX as usize)?;
        }
    }
    Some(if zero { 0 } else { nonzero })
}

/// Checks that a tensor of `shape` with elements of `elem_bytes` bytes can exist: its
/// element count is valid ([`checked_numel`]) and its data fits in one allocation
/// (`isize::MAX` bytes). Returns the element count.
///
/// # Errors
/// [`Error::Shape`] naming `op` and the shape.
pub(crate) fn check_numel(
    op: &'static str,
    shape: &[usize],
    elem_bytes: usize,
    location: Location,
) -> Result<usize> {
    let err = |rule: String| Error::Shape {
        op,
        shapes: crate::error::Shapes(vec![Shape::from_slice(shape)]),
        rule,
        location,
    };
    let n = checked_numel(shape)
        .ok_or_else(|| err("the shape's element count overflows (it must fit in isize)".into()))?;
    if n.checked_mul(elem_bytes)
        .is_none_or(|b| b > isize::MAX as usize - 64)
    {
        return Err(err(format!(
            "{n} elements of {elem_bytes} bytes exceed the largest allocation (isize::MAX bytes)"
        )));
    }
    Ok(n)
}

/// Normalises one axis against a rank, PyTorch style: `-1` is the last axis, and a 0-d
/// tensor accepts `0` and `-1` (it behaves as rank 1 for axis arguments).
pub(crate) fn normalize_axis(
    op: &'static str,
    axis: isize,
    ndim: usize,
    location: Location,
) -> Result<usize> {
    let rank = ndim.max(1) as isize;
    if axis < -rank || axis >= rank {
        return Err(Error::Axis {
            op,
            axis,
            ndim,
            location,
        });
    }
    Ok(if axis < 0 {
        (axis + rank) as usize
    } else {
        axis as usize
    })
}

/// Normalises, sorts and checks a set of axes (each at most once). On a 0-d tensor the
/// normalised set is empty.
pub(crate) fn normalize_axes(
    op: &'static str,
    dims: &[isize],
    ndim: usize,
    location: Location,
) -> Result<SmallVec<[usize; 4]>> {
    let mut axes: SmallVec<[usize; 4]> = SmallVec::new();
    for &d in dims {
        let a = normalize_axis(op, d, ndim, location)?;
        if axes.contains(&a) {
            return Err(Error::Argument {
                op,
                message: format!("axis {d} is given twice in {dims:?}"),
                location,
            });
        }
        axes.push(a);
    }
    axes.sort_unstable();
    if ndim == 0 {
        axes.clear();
    }
    Ok(axes)
}

/// The NumPy broadcast of two shapes, or `None` when they are incompatible.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Shape> {
    let n = a.len().max(b.len());
    let mut out: Shape = SmallVec::from_elem(0, n);
    for i in 0..n {
        let da = if i < n - a.len() {
            1
        } else {
            a[i - (n - a.len())]
        };
        let db = if i < n - b.len() {
            1
        } else {
            b[i - (n - b.len())]
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return None,
        };
    }
    Some(out)
}

/// Whether `from` broadcasts to exactly `to`.
pub fn broadcasts_to(from: &[usize], to: &[usize]) -> bool {
    from.len() <= to.len() && broadcast_shapes(from, to).is_some_and(|s| s.as_slice() == to)
}

/// `shape` with the reduced `axes` set to 1 (the `keepdim=True` shape).
pub(crate) fn keepdim_shape(shape: &[usize], axes: &[usize]) -> Shape {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

/// `shape` with the reduced `axes` removed (or set to 1 with `keepdim`).
pub(crate) fn reduced_shape(shape: &[usize], axes: &[usize], keepdim: bool) -> Shape {
    if keepdim {
        return keepdim_shape(shape, axes);
    }
    shape
        .iter()
        .enumerate()
        .filter(|(i, _)| !axes.contains(i))
        .map(|(_, &d)| d)
        .collect()
}

/// The `(outer, n, inner)` view of `shape` around `axis`.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    if shape.is_empty() {
        return (1, 1, 1);
    }
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]).unwrap().as_slice(), &[2, 3]);
        assert_eq!(
            broadcast_shapes(&[2, 1, 4], &[3, 1]).unwrap().as_slice(),
            &[2, 3, 4]
        );
        assert_eq!(broadcast_shapes(&[], &[5]).unwrap().as_slice(), &[5]);
        assert_eq!(broadcast_shapes(&[0], &[1]).unwrap().as_slice(), &[0]);
        assert!(broadcast_shapes(&[2, 3], &[2]).is_none());
        assert!(broadcasts_to(&[3, 1], &[2, 3, 4]));
        assert!(!broadcasts_to(&[2, 3, 4], &[3, 4]));
    }

    #[test]
    fn axes_normalise_like_pytorch() {
        let here = std::panic::Location::caller();
        assert_eq!(normalize_axis("t", -1, 3, here).unwrap(), 2);
        assert_eq!(normalize_axis("t", 0, 0, here).unwrap(), 0);
        assert!(normalize_axis("t", 3, 3, here).is_err());
        assert!(normalize_axis("t", -4, 3, here).is_err());
        assert_eq!(
            normalize_axes("t", &[-1, 0], 3, here).unwrap().as_slice(),
            &[0, 2]
        );
        assert!(normalize_axes("t", &[1, -2], 3, here).is_err());
        assert_eq!(reduced_shape(&[2, 3, 4], &[1], false).as_slice(), &[2, 4]);
        assert_eq!(
            reduced_shape(&[2, 3, 4], &[0, 2], true).as_slice(),
            &[1, 3, 1]
        );
    }
}

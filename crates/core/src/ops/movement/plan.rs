//! The shape arithmetic of the movement ops: the strided window [`SliceSpec`], and the
//! checks shared by the ops' `Tensor` and `Var` forms, each of which validates the arguments
//! (naming the op, the shapes and the caller's line) and returns what the op records. It
//! needs nothing of the tape.

use smallvec::SmallVec;
use std::panic::Location;
use tapegrad_kernels::strided::contiguous_strides;

use crate::error::{arg_error, shape_error, shape_error_at, Result};
use crate::shape::{checked_numel, normalize_axis, numel, Shape};
use crate::tensor::check_output;
use crate::Float;

/// A strided window of a tensor: for each dimension, the indices
/// `start, start + step, …` (`len` of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceSpec {
    /// `(start, step, len)` for each dimension of the full tensor.
    pub dims: SmallVec<[(usize, usize, usize); 4]>,
}

impl SliceSpec {
    /// The whole of `shape`.
    pub fn full(shape: &[usize]) -> Self {
        SliceSpec {
            dims: shape.iter().map(|&d| (0, 1, d)).collect(),
        }
    }

    /// The window's shape.
    pub fn shape(&self) -> Shape {
        self.dims.iter().map(|d| d.2).collect()
    }

    /// Strides and base offset that address the window inside a contiguous tensor of
    /// `full` shape.
    pub(super) fn addressing(&self, full: &[usize]) -> (SmallVec<[usize; 6]>, usize) {
        let st = contiguous_strides(full);
        let strides = self.dims.iter().zip(&st).map(|(d, s)| d.1 * s).collect();
        let base = self.dims.iter().zip(&st).map(|(d, s)| d.0 * s).sum();
        (strides, base)
    }

    /// Whether the window lies inside `full` (its last index along each dimension, computed
    /// without overflow, is in range).
    pub(super) fn fits(&self, full: &[usize]) -> bool {
        self.dims.len() == full.len()
            && self.dims.iter().zip(full).all(|(&(start, step, len), &n)| {
                len == 0
                    || (step > 0
                        && (len - 1)
                            .checked_mul(step)
                            .and_then(|s| s.checked_add(start))
                            .is_some_and(|last| last < n))
            })
    }
}

/// Resolves a reshape target with at most one `-1` against `numel` elements.
#[track_caller]
pub(super) fn reshape_target(from: &[usize], dims: &[isize]) -> Result<Shape> {
    let n = numel(from);
    let mut infer = None;
    for (i, &d) in dims.iter().enumerate() {
        if d == -1 {
            if infer.replace(i).is_some() {
                return Err(arg_error(
                    "reshape",
                    format!("at most one dimension can be -1, got {dims:?}"),
                ));
            }
        } else if d < 0 {
            return Err(arg_error(
                "reshape",
                format!("invalid size {d} in {dims:?}"),
            ));
        }
    }
    let mut shape: Shape = dims.iter().map(|&d| d.max(0) as usize).collect();
    let here = Location::caller();
    let too_many = |shape: &[usize]| {
        shape_error_at(
            "reshape",
            &[from, shape],
            "the target's element count overflows (it must fit in isize)",
            here,
        )
    };
    if let Some(i) = infer {
        shape[i] = 1;
        let known = checked_numel(&shape).ok_or_else(|| too_many(&shape))?;
        if known == 0 || n % known != 0 {
            return Err(shape_error(
                "reshape",
                &[from],
                format!("cannot infer the -1 in {dims:?}"),
            ));
        }
        shape[i] = n / known;
    }
    match checked_numel(&shape) {
        Some(m) if m == n => Ok(shape),
        Some(m) => Err(shape_error(
            "reshape",
            &[from, &shape],
            format!("{n} elements cannot take a shape of {m}"),
        )),
        None => Err(too_many(&shape)),
    }
}

#[track_caller]
pub(super) fn check_perm(shape: &[usize], dims: &[isize]) -> Result<SmallVec<[usize; 4]>> {
    let here = Location::caller();
    if dims.len() != shape.len() {
        return Err(shape_error(
            "permute",
            &[shape],
            format!("the permutation {dims:?} must name every axis once"),
        ));
    }
    let mut perm = SmallVec::new();
    for &d in dims {
        perm.push(normalize_axis("permute", d, shape.len(), here)?);
    }
    let mut seen = perm.clone();
    seen.sort_unstable();
    seen.dedup();
    if seen.len() != perm.len() {
        return Err(shape_error(
            "permute",
            &[shape],
            format!("the permutation {dims:?} repeats an axis"),
        ));
    }
    Ok(perm)
}

/// Python slice semantics for `start..end` by `step` over a dimension of size `n`.
#[track_caller]
pub(super) fn python_slice(
    n: usize,
    start: isize,
    end: isize,
    step: usize,
) -> Result<(usize, usize, usize)> {
    if step == 0 {
        return Err(arg_error("slice", "the step must be positive"));
    }
    let clamp = |i: isize| -> usize {
        let i = if i < 0 { i + n as isize } else { i };
        i.clamp(0, n as isize) as usize
    };
    let (s, e) = (clamp(start), clamp(end));
    let len = if e > s { (e - s).div_ceil(step) } else { 0 };
    Ok((s, step, len))
}

/// A window of `len` along `dim` from `start`; `op` is the caller's op (`narrow`,
/// `select`), named in errors.
#[track_caller]
pub(super) fn narrow(
    op: &'static str,
    shape: &[usize],
    dim: isize,
    start: usize,
    len: usize,
) -> Result<SliceSpec> {
    let d = normalize_axis(op, dim, shape.len(), Location::caller())?;
    if shape.is_empty() {
        return Err(shape_error(
            op,
            &[shape],
            "a 0-d tensor has no dimension to index",
        ));
    }
    if start.checked_add(len).is_none_or(|end| end > shape[d]) {
        return Err(shape_error(
            op,
            &[shape],
            format!("{len} elements from index {start} exceed dimension {d}"),
        ));
    }
    let mut spec = SliceSpec::full(shape);
    spec.dims[d] = (start, 1, len);
    Ok(spec)
}

#[track_caller]
pub(super) fn slice(
    shape: &[usize],
    dim: isize,
    start: isize,
    end: isize,
    step: usize,
) -> Result<SliceSpec> {
    let d = normalize_axis("slice", dim, shape.len(), Location::caller())?;
    if shape.is_empty() {
        return Err(shape_error(
            "slice",
            &[shape],
            "a 0-d tensor has no dimension to slice",
        ));
    }
    let mut spec = SliceSpec::full(shape);
    spec.dims[d] = python_slice(shape[d], start, end, step)?;
    Ok(spec)
}

#[track_caller]
pub(super) fn pad<T: Float>(
    shape: &[usize],
    pads: &[(usize, usize)],
) -> Result<(SliceSpec, Shape)> {
    if pads.len() > shape.len() {
        return Err(shape_error(
            "pad",
            &[shape],
            format!(
                "{} (before, after) pairs for a tensor of rank {}",
                pads.len(),
                shape.len()
            ),
        ));
    }
    let lead = shape.len() - pads.len();
    let mut spec = SliceSpec::full(shape);
    let mut out: Shape = Shape::from_slice(shape);
    for (i, &(before, after)) in pads.iter().enumerate() {
        spec.dims[lead + i].0 = before;
        let Some(n) = before
            .checked_add(after)
            .and_then(|p| p.checked_add(shape[lead + i]))
        else {
            return Err(shape_error(
                "pad",
                &[shape],
                format!(
                    "padding ({before}, {after}) overflows dimension {}",
                    lead + i
                ),
            ));
        };
        out[lead + i] = n;
    }
    check_output::<T>("pad", &out, Location::caller())?;
    Ok((spec, out))
}

/// The axis and the output shape of a concatenation.
#[track_caller]
pub(super) fn concat<T: Float>(shapes: &[&[usize]], dim: isize) -> Result<(usize, Shape)> {
    let Some(first) = shapes.first() else {
        return Err(arg_error("cat", "needs at least one tensor"));
    };
    let d = normalize_axis("cat", dim, first.len(), Location::caller())?;
    for s in shapes {
        let ok = s.len() == first.len()
            && !s.is_empty()
            && s.iter()
                .zip(first.iter())
                .enumerate()
                .all(|(i, (a, b))| i == d || a == b);
        if !ok {
            return Err(shape_error(
                "cat",
                shapes,
                format!("all shapes must match except along dimension {d} (and be at least 1-d)"),
            ));
        }
    }
    let mut out = Shape::from_slice(first);
    let Some(n) = shapes.iter().try_fold(0usize, |n, s| n.checked_add(s[d])) else {
        return Err(shape_error(
            "cat",
            shapes,
            format!("dimension {d} overflows"),
        ));
    };
    out[d] = n;
    check_output::<T>("cat", &out, Location::caller())?;
    Ok((d, out))
}

#[track_caller]
pub(super) fn squeeze_dim(op: &'static str, shape: &[usize], dim: isize) -> Result<Shape> {
    let d = normalize_axis(op, dim, shape.len(), Location::caller())?;
    let mut s = Shape::from_slice(shape);
    if !s.is_empty() && s[d] == 1 {
        s.remove(d);
    }
    Ok(s)
}

#[track_caller]
pub(super) fn unsqueeze(shape: &[usize], dim: isize) -> Result<Shape> {
    let d = normalize_axis("unsqueeze", dim, shape.len() + 1, Location::caller())?;
    let mut s = Shape::from_slice(shape);
    s.insert(d, 1);
    Ok(s)
}

#[track_caller]
pub(super) fn flatten(shape: &[usize], start: isize, end: isize) -> Result<Shape> {
    if shape.is_empty() {
        return Ok(Shape::from_slice(&[1]));
    }
    let here = Location::caller();
    let (s, e) = (
        normalize_axis("flatten", start, shape.len(), here)?,
        normalize_axis("flatten", end, shape.len(), here)?,
    );
    if s > e {
        return Err(arg_error(
            "flatten",
            format!("start axis {start} comes after end axis {end}"),
        ));
    }
    let mut out: Shape = shape[..s].iter().copied().collect();
    out.push(numel(&shape[s..=e]));
    out.extend(shape[e + 1..].iter().copied());
    Ok(out)
}

/// The permutation swapping `d0` and `d1` (a 0-d tensor accepts the axes 0 and -1, as
/// PyTorch's, and stays as it is).
#[track_caller]
pub(super) fn transpose(shape: &[usize], d0: isize, d1: isize) -> Result<Shape> {
    let here = Location::caller();
    let (a, b) = (
        normalize_axis("transpose", d0, shape.len(), here)?,
        normalize_axis("transpose", d1, shape.len(), here)?,
    );
    let mut perm: Shape = (0..shape.len()).collect();
    if !shape.is_empty() {
        perm.swap(a, b);
    }
    Ok(perm)
}

#[track_caller]
pub(super) fn split(
    shape: &[usize],
    sizes: &[usize],
    dim: isize,
) -> Result<(usize, Vec<SliceSpec>)> {
    let d = normalize_axis("split", dim, shape.len(), Location::caller())?;
    let total = sizes.iter().try_fold(0usize, |n, &s| n.checked_add(s));
    if shape.is_empty() || total != Some(shape[d]) {
        return Err(shape_error(
            "split",
            &[shape],
            format!("the sizes {sizes:?} must add up to dimension {d}"),
        ));
    }
    let mut off = 0;
    let specs = sizes
        .iter()
        .map(|&n| {
            let mut spec = SliceSpec::full(shape);
            spec.dims[d] = (off, 1, n);
            off += n;
            spec
        })
        .collect();
    Ok((d, specs))
}

/// torch.chunk sizes: chunks of ⌈n/chunks⌉, the last one smaller, possibly fewer chunks.
#[track_caller]
pub(super) fn chunk_sizes(shape: &[usize], chunks: usize, dim: isize) -> Result<Vec<usize>> {
    let d = normalize_axis("chunk", dim, shape.len(), Location::caller())?;
    if chunks == 0 || shape.is_empty() {
        return Err(arg_error(
            "chunk",
            "needs at least one chunk of an at least 1-d tensor",
        ));
    }
    let n = shape[d];
    let size = n.div_ceil(chunks).max(1);
    let mut sizes = vec![];
    let mut left = n;
    while left > 0 {
        sizes.push(size.min(left));
        left -= size.min(left);
    }
    if sizes.is_empty() {
        sizes.push(0);
    }
    Ok(sizes)
}

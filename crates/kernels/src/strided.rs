//! The n-d strided walk behind every broadcast, reduction, permute, slice and pad.
//!
//! An operand is described by a base offset and one stride per dimension of the index space
//! (a stride of 0 repeats the operand along that dimension, which is how broadcasting and
//! reduction targets are expressed). [`for_each_row`] first drops size-1 dimensions and merges
//! neighbouring dimensions that are contiguous for every operand, then calls its closure once
//! per innermost row, so a contiguous walk of any rank becomes one long row.

use smallvec::SmallVec;

/// Strides (in elements) of a row-major contiguous array of this shape.
pub fn contiguous_strides(shape: &[usize]) -> SmallVec<[usize; 6]> {
    let mut strides: SmallVec<[usize; 6]> = SmallVec::from_elem(0, shape.len());
    let mut acc = 1usize;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// Strides that read a contiguous array of shape `from` as if it had shape `to`
/// (NumPy broadcasting: shapes aligned on the right, size-1 and missing dimensions repeat).
///
/// The caller guarantees that `from` broadcasts to `to`.
pub fn broadcast_strides(from: &[usize], to: &[usize]) -> SmallVec<[usize; 6]> {
    debug_assert!(from.len() <= to.len());
    let src = contiguous_strides(from);
    let lead = to.len() - from.len();
    let mut out: SmallVec<[usize; 6]> = SmallVec::from_elem(0, to.len());
    for i in 0..from.len() {
        out[lead + i] = if from[i] == 1 { 0 } else { src[i] };
    }
    out
}

/// Calls `f(len, offsets, strides)` once per innermost row of the index space `shape`.
///
/// Operand `k` lives at `base[k] + Σ_d index[d] · strides[k][d]`; within the call, element
/// `j` of the row is at `offsets[k] + j · strides[k]`. Rows are visited in row-major order of
/// the (coalesced) index space. An empty index space calls nothing; a 0-d one calls
/// `f(1, base, [0; N])` once.
#[inline]
pub fn for_each_row<const N: usize>(
    shape: &[usize],
    strides: [&[usize]; N],
    base: [usize; N],
    mut f: impl FnMut(usize, [usize; N], [usize; N]),
) {
    if shape.contains(&0) {
        return;
    }
    // Collect the non-trivial dimensions, innermost first, merging where contiguous.
    let mut dims: SmallVec<[(usize, [usize; N]); 6]> = SmallVec::new();
    for d in (0..shape.len()).rev() {
        let size = shape[d];
        if size == 1 {
            continue;
        }
        let st: [usize; N] = std::array::from_fn(|k| strides[k][d]);
        if let Some(last) = dims.last_mut() {
            let (inner_size, inner_st) = *last;
            if (0..N).all(|k| st[k] == inner_st[k] * inner_size) {
                last.0 = inner_size * size;
                continue;
            }
        }
        dims.push((size, st));
    }
    let Some(&(len, inner)) = dims.first() else {
        f(1, base, [0; N]);
        return;
    };
    let outer = &dims[1..];
    if outer.is_empty() {
        f(len, base, inner);
        return;
    }
    let mut index: SmallVec<[usize; 6]> = SmallVec::from_elem(0, outer.len());
    let mut offs = base;
    loop {
        f(len, offs, inner);
        // Odometer over the outer dimensions (outer[0] is the fastest-moving).
        let mut d = 0;
        loop {
            if d == outer.len() {
                return;
            }
            let (size, st) = outer[d];
            index[d] += 1;
            if index[d] < size {
                for k in 0..N {
                    offs[k] += st[k];
                }
                break;
            }
            index[d] = 0;
            for k in 0..N {
                offs[k] -= st[k] * (size - 1);
            }
            d += 1;
        }
    }
}

/// Copies `src` read through (`src_strides`, `src_base`) into `dst` written through
/// (`dst_strides`, `dst_base`), over the index space `shape`.
///
/// # Panics
/// If an addressed element lies outside `src` or `dst`.
pub fn copy_strided<E: Copy>(
    shape: &[usize],
    src: &[E],
    src_strides: &[usize],
    src_base: usize,
    dst: &mut [E],
    dst_strides: &[usize],
    dst_base: usize,
) {
    for_each_row(
        shape,
        [src_strides, dst_strides],
        [src_base, dst_base],
        |len, [so, d_o], [ss, ds]| {
            if ss == 1 && ds == 1 {
                dst[d_o..d_o + len].copy_from_slice(&src[so..so + len]);
            } else if ss == 0 && ds == 1 {
                dst[d_o..d_o + len].fill(src[so]);
            } else if ss == 0 {
                let v = src[so];
                for j in 0..len {
                    dst[d_o + j * ds] = v;
                }
            } else {
                for j in 0..len {
                    dst[d_o + j * ds] = src[so + j * ss];
                }
            }
        },
    );
}

/// `out[i] = f(a[i'], b[i''])` over the index space `shape`, with `a` and `b` read through
/// their (possibly zero, i.e. broadcasting) strides and `out` contiguous.
pub fn zip_strided<A: Copy, B: Copy, O: Copy>(
    shape: &[usize],
    a: &[A],
    a_strides: &[usize],
    b: &[B],
    b_strides: &[usize],
    out: &mut [O],
    f: impl Fn(A, B) -> O,
) {
    let out_strides = contiguous_strides(shape);
    for_each_row(
        shape,
        [a_strides, b_strides, &out_strides],
        [0, 0, 0],
        |len, [ao, bo, oo], [sa, sb, _]| {
            let o = &mut out[oo..oo + len];
            match (sa, sb) {
                (1, 1) => {
                    for ((o, &x), &y) in o.iter_mut().zip(&a[ao..ao + len]).zip(&b[bo..bo + len]) {
                        *o = f(x, y);
                    }
                }
                (1, 0) => {
                    let y = b[bo];
                    for (o, &x) in o.iter_mut().zip(&a[ao..ao + len]) {
                        *o = f(x, y);
                    }
                }
                (0, 1) => {
                    let x = a[ao];
                    for (o, &y) in o.iter_mut().zip(&b[bo..bo + len]) {
                        *o = f(x, y);
                    }
                }
                _ => {
                    for (j, o) in o.iter_mut().enumerate() {
                        *o = f(a[ao + j * sa], b[bo + j * sb]);
                    }
                }
            }
        },
    );
}

/// Folds `x` (contiguous, shape `shape`) into `acc`, read and written through `acc_strides`
/// (0 on the reduced dimensions): `acc[o] = f(acc[o], x[i])` in row-major order of `x`.
///
/// The caller initialises `acc` with the identity of `f`.
pub fn fold_into<E: Copy, A: Copy>(
    shape: &[usize],
    x: &[E],
    acc: &mut [A],
    acc_strides: &[usize],
    f: impl Fn(A, E) -> A,
) {
    let x_strides = contiguous_strides(shape);
    for_each_row(
        shape,
        [&x_strides, acc_strides],
        [0, 0],
        |len, [xo, ao], [_, sa]| {
            let row = &x[xo..xo + len];
            if sa == 0 {
                let mut a = acc[ao];
                for &v in row {
                    a = f(a, v);
                }
                acc[ao] = a;
            } else {
                for (j, &v) in row.iter().enumerate() {
                    let slot = &mut acc[ao + j * sa];
                    *slot = f(*slot, v);
                }
            }
        },
    );
}

/// Sums `x` (contiguous, shape `shape`) into `acc`, read and written through `acc_strides`
/// (0 on the reduced dimensions): [`fold_into`] with `+`, vectorised. A run of the
/// innermost dimension that is reduced is summed in lanes (see [`crate::reduce::sum`])
/// before being added; one that is kept is added element-wise. The order depends only on
/// the shapes.
pub fn sum_into<T: crate::Float>(shape: &[usize], x: &[T], acc: &mut [T], acc_strides: &[usize]) {
    let x_strides = contiguous_strides(shape);
    crate::simd::with_avx2(|| {
        for_each_row(
            shape,
            [&x_strides, acc_strides],
            [0, 0],
            |len, [xo, ao], [_, sa]| {
                let row = &x[xo..xo + len];
                if sa == 0 {
                    acc[ao] += crate::reduce::lane_sum(row);
                } else if sa == 1 {
                    for (a, &v) in acc[ao..ao + len].iter_mut().zip(row) {
                        *a += v;
                    }
                } else {
                    for (j, &v) in row.iter().enumerate() {
                        acc[ao + j * sa] += v;
                    }
                }
            },
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The multi-index of flat position `i` in a row-major `shape`.
    fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
        let mut idx = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            idx[d] = i % shape[d];
            i /= shape[d];
        }
        idx
    }

    #[test]
    fn strides_of_shapes() {
        assert_eq!(contiguous_strides(&[2, 3, 4]).as_slice(), &[12, 4, 1]);
        assert_eq!(contiguous_strides(&[]).as_slice(), &[] as &[usize]);
        assert_eq!(
            broadcast_strides(&[3, 1], &[2, 3, 4]).as_slice(),
            &[0, 1, 0]
        );
        assert_eq!(broadcast_strides(&[], &[2, 2]).as_slice(), &[0, 0]);
    }

    #[test]
    fn walk_matches_naive_index_arithmetic() {
        // A permuted read of a [2,3,4] array: out[i,j,k] = src[k,i,j] with src shape [4,2,3].
        let shape = [2, 3, 4];
        let src: Vec<usize> = (0..24).collect();
        let src_strides = [3, 1, 6];
        let mut out = vec![0; 24];
        copy_strided(
            &shape,
            &src,
            &src_strides,
            0,
            &mut out,
            &contiguous_strides(&shape),
            0,
        );
        for (flat, &v) in out.iter().enumerate() {
            let ix = unravel(flat, &shape);
            assert_eq!(v, ix[2] * 6 + ix[0] * 3 + ix[1]);
        }
    }

    #[test]
    fn zero_d_and_empty_spaces() {
        let mut calls = 0;
        for_each_row::<1>(&[], [&[]], [5], |len, o, s| {
            assert_eq!((len, o, s), (1, [5], [0]));
            calls += 1;
        });
        assert_eq!(calls, 1);
        for_each_row::<1>(&[3, 0], [&[0, 1]], [0], |_, _, _| {
            panic!("called on an empty space")
        });
    }

    #[test]
    fn contiguous_walk_is_one_row() {
        let mut rows = vec![];
        for_each_row(&[2, 3, 4], [&[12, 4, 1]], [0], |len, o, s| {
            rows.push((len, o, s))
        });
        assert_eq!(rows, vec![(24, [0], [1])]);
    }

    #[test]
    fn broadcast_zip_and_fold() {
        let a: Vec<f64> = (0..6).map(|v| v as f64).collect(); // [2,3]
        let b = [10.0, 20.0]; // [2,1]
        let shape = [2, 3];
        let mut out = vec![0.0; 6];
        zip_strided(
            &shape,
            &a,
            &broadcast_strides(&[2, 3], &shape),
            &b,
            &broadcast_strides(&[2, 1], &shape),
            &mut out,
            |x, y| x + y,
        );
        assert_eq!(out, vec![10.0, 11.0, 12.0, 23.0, 24.0, 25.0]);
        // Sum over axis 0 and over axis 1.
        let mut cols = vec![0.0; 3];
        fold_into(&shape, &a, &mut cols, &[0, 1], |s, v| s + v);
        assert_eq!(cols, vec![3.0, 5.0, 7.0]);
        let mut rows = vec![0.0; 2];
        fold_into(&shape, &a, &mut rows, &[1, 0], |s, v| s + v);
        assert_eq!(rows, vec![3.0, 12.0]);
    }
}

//! The numerically stable softmax family along one axis of an `(outer, n, inner)` block.
//!
//! Each row is shifted by its maximum before exponentiation, so no entry overflows; a row
//! whose entries are all `-inf` has no defined softmax and produces NaN, as in PyTorch.

use crate::Float;

/// Applies `row(x_row, out_row)` to every axis-row of `(outer, n, inner)` data, gathering
/// strided rows into a contiguous scratch buffer when `inner > 1`.
fn for_each_axis_row<T: Float>(
    x: &[T],
    out: &mut [T],
    outer: usize,
    n: usize,
    inner: usize,
    mut row: impl FnMut(&[T], &mut [T]),
) {
    // An empty axis has no rows to normalise (and no elements to write).
    if n == 0 {
        return;
    }
    if inner == 1 {
        for (xr, or) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)).take(outer) {
            row(xr, or);
        }
        return;
    }
    let mut xs = vec![T::zero(); n];
    let mut os = vec![T::zero(); n];
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            for j in 0..n {
                xs[j] = x[base + j * inner];
            }
            row(&xs, &mut os);
            for j in 0..n {
                out[base + j * inner] = os[j];
            }
        }
    }
}

fn row_max<T: Float>(x: &[T]) -> T {
    x.iter().fold(
        T::neg_infinity(),
        |m, &v| if v > m || v.is_nan() { v } else { m },
    )
}

/// `out = softmax(x)` along the middle axis of `(outer, n, inner)`.
pub fn softmax<T: Float>(x: &[T], out: &mut [T], outer: usize, n: usize, inner: usize) {
    for_each_axis_row(x, out, outer, n, inner, |xr, or| {
        let m = row_max(xr);
        let mut s = T::zero();
        for (o, &v) in or.iter_mut().zip(xr) {
            *o = (v - m).exp();
            s += *o;
        }
        let inv = T::one() / s;
        for o in or.iter_mut() {
            *o *= inv;
        }
    });
}

/// `out = log_softmax(x) = x - logsumexp(x)` along the middle axis of `(outer, n, inner)`.
pub fn log_softmax<T: Float>(x: &[T], out: &mut [T], outer: usize, n: usize, inner: usize) {
    for_each_axis_row(x, out, outer, n, inner, |xr, or| {
        let m = row_max(xr);
        let s: T = xr.iter().map(|&v| (v - m).exp()).sum();
        let lse = m + s.ln();
        for (o, &v) in or.iter_mut().zip(xr) {
            *o = v - lse;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_rows_sum_to_one_even_for_huge_logits() {
        let x = [1000.0f64, 1001.0, 1002.0, -1e4, 0.0, 1e4];
        let mut out = [0.0; 6];
        softmax(&x, &mut out, 2, 3, 1);
        assert!((out[..3].iter().sum::<f64>() - 1.0).abs() < 1e-15);
        assert!((out[5] - 1.0).abs() < 1e-15 && out[3] == 0.0);
    }

    #[test]
    fn strided_axis_matches_contiguous() {
        // Softmax over axis 0 of a [3,2] array equals softmax over rows of its transpose.
        let x = [0.1f64, 2.0, -0.3, 0.5, 1.2, -1.0];
        let xt = [0.1, -0.3, 1.2, 2.0, 0.5, -1.0];
        let mut a = [0.0; 6];
        let mut b = [0.0; 6];
        log_softmax(&x, &mut a, 1, 3, 2);
        log_softmax(&xt, &mut b, 2, 3, 1);
        for (i, j) in [(0, 0), (2, 1), (4, 2), (1, 3), (3, 4), (5, 5)] {
            assert!((a[i] - b[j]).abs() < 1e-15);
        }
    }

    #[test]
    fn masked_entries_get_zero_probability() {
        let x = [f64::NEG_INFINITY, 0.0, 0.0];
        let mut out = [1.0; 3];
        softmax(&x, &mut out, 1, 3, 1);
        assert_eq!(out, [0.0, 0.5, 0.5]);
    }
}

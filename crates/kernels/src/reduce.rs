//! Reductions over contiguous data.
//!
//! Reductions over arbitrary axes are expressed by the caller with
//! [`crate::strided::fold_into`]; this module holds the ones with a shape of their own:
//! whole-slice sums and arg-reductions along one axis of an `(outer, n, inner)` block.

use crate::Float;

/// Sum of a slice, accumulated in eight independent lanes (so the compiler vectorises it)
/// and combined in a fixed order: the result does not depend on anything but the data.
pub fn sum<T: Float>(x: &[T]) -> T {
    let mut lanes = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let mut s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3]))
        + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    for &v in rest {
        s += v;
    }
    s
}

/// Along the middle axis of `x` viewed as `(outer, n, inner)`, the first index whose value
/// wins against every other under `better(candidate, current)`, and that value.
///
/// NaN wins against everything (as in PyTorch, `max` of a row holding NaN is NaN).
/// Writes `outer · inner` values and indices in row-major order of `(outer, inner)`.
///
/// # Panics
/// If `n` is zero (an arg-reduction over an empty axis has no answer) or the slices are too
/// short.
pub fn arg_reduce<T: Float>(
    x: &[T],
    outer: usize,
    n: usize,
    inner: usize,
    better: impl Fn(T, T) -> bool,
    values: &mut [T],
    indices: &mut [usize],
) {
    assert!(n > 0, "arg_reduce over an empty axis");
    for o in 0..outer {
        for i in 0..inner {
            let base = o * n * inner + i;
            let mut best = x[base];
            let mut arg = 0;
            if !best.is_nan() {
                for j in 1..n {
                    let v = x[base + j * inner];
                    if v.is_nan() {
                        best = v;
                        arg = j;
                        break;
                    }
                    if better(v, best) {
                        best = v;
                        arg = j;
                    }
                }
            }
            values[o * inner + i] = best;
            indices[o * inner + i] = arg;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_matches_sequential_on_exact_values() {
        let x: Vec<f64> = (0..37).map(|v| v as f64).collect();
        assert_eq!(sum(&x), (0..37).sum::<i32>() as f64);
        assert_eq!(sum::<f32>(&[]), 0.0);
    }

    #[test]
    fn argmax_along_middle_axis_takes_first_of_ties() {
        // (outer=1, n=3, inner=2)
        let x = [1.0, 5.0, 3.0, 5.0, 3.0, 0.0];
        let mut v = [0.0; 2];
        let mut ix = [0; 2];
        arg_reduce(&x, 1, 3, 2, |a, b| a > b, &mut v, &mut ix);
        assert_eq!(v, [3.0, 5.0]);
        assert_eq!(ix, [1, 0]);
        let x = [1.0, f64::NAN, 2.0];
        arg_reduce(&x, 1, 3, 1, |a, b| a > b, &mut v[..1], &mut ix[..1]);
        assert!(v[0].is_nan());
        assert_eq!(ix[0], 1);
    }
}

//! Reductions over contiguous data.
//!
//! Reductions over arbitrary axes are expressed by the caller with
//! [`crate::strided::fold_into`]; this module holds the ones with a shape of their own:
//! whole-slice sums and arg-reductions along one axis of an `(outer, n, inner)` block.

use crate::elementwise::{self, CHUNK};
use crate::simd::with_avx2;
use crate::Float;

/// Sum of a slice, in a fixed order that depends only on its length: pieces of
/// [`CHUNK`] elements are each summed in 32 independent lanes (so the loop runs at vector
/// width), the pieces' sums are added in order. Large slices sum their pieces on the
/// thread pool; the result is the same bit for bit whatever the thread count.
pub fn sum<T: Float>(x: &[T]) -> T {
    if x.len() <= CHUNK {
        return with_avx2(|| lane_sum(x));
    }
    // Pieces are summed in groups of `GROUP` (a stack array of partial sums each), the
    // groups' sums added in order.
    const GROUP: usize = 256;
    let mut total = T::zero();
    for group in x.chunks(CHUNK * GROUP) {
        let mut partial = [T::zero(); GROUP];
        let n = group.len().div_ceil(CHUNK);
        elementwise::per_chunk(group.len(), &mut partial[..n], |r| {
            with_avx2(|| lane_sum(&group[r]))
        });
        for p in &partial[..n] {
            total += *p;
        }
    }
    total
}

/// Sum in 32 lanes combined pairwise: the compiler keeps the lanes in vector registers.
#[inline(always)]
pub(crate) fn lane_sum<T: Float>(x: &[T]) -> T {
    lane_sum_of(x, |v| v)
}

/// `Σ f(x_i)` in 32 lanes combined pairwise (as [`lane_sum`]).
#[inline(always)]
pub(crate) fn lane_sum_of<T: Float>(x: &[T], f: impl Fn(T) -> T) -> T {
    const L: usize = 32;
    let mut lanes = [T::zero(); L];
    let chunks = x.chunks_exact(L);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += f(v);
        }
    }
    let mut width = L;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    let mut s = lanes[0];
    for &v in rest {
        s += f(v);
    }
    s
}

/// Along the middle axis of `x` viewed as `(outer, n, inner)`, the first index whose value
/// wins against every other under `better(candidate, current)`, and that value.
///
/// NaN wins against everything (as in PyTorch, `max` of a row holding NaN is NaN).
/// Writes `outer · inner` indices (and, if asked, values) in row-major order of
/// `(outer, inner)`.
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
    mut values: Option<&mut [T]>,
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
            if let Some(v) = values.as_deref_mut() {
                v[o * inner + i] = best;
            }
            indices[o * inner + i] = arg;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sum_matches_sequential_on_exact_values() {
        for n in [
            0,
            1,
            37,
            CHUNK + 5,
            3 * elementwise::PARALLEL_MIN + 1,
            300 * CHUNK + 9,
        ] {
            let x: Vec<f64> = (0..n).map(|v| (v % 1000) as f64).collect();
            let want: u64 = (0..n as u64).map(|v| v % 1000).sum();
            assert_eq!(sum(&x), want as f64, "n={n}");
        }
    }

    #[test]
    fn sum_does_not_depend_on_the_thread_count() {
        let n = 7 * elementwise::PARALLEL_MIN + 3;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.731).sin()).collect();
        let one = crate::threads::with_num_threads(1, || sum(&x));
        let two = crate::threads::with_num_threads(2, || sum(&x));
        assert_eq!(one.to_bits(), two.to_bits());
    }

    #[test]
    fn argmax_along_middle_axis_takes_first_of_ties() {
        // (outer=1, n=3, inner=2)
        let x = [1.0, 5.0, 3.0, 5.0, 3.0, 0.0];
        let mut v = [0.0; 2];
        let mut ix = [0; 2];
        arg_reduce(&x, 1, 3, 2, |a, b| a > b, Some(&mut v), &mut ix);
        assert_eq!(v, [3.0, 5.0]);
        assert_eq!(ix, [1, 0]);
        let x = [1.0, f64::NAN, 2.0];
        arg_reduce(&x, 1, 3, 1, |a, b| a > b, Some(&mut v[..1]), &mut ix[..1]);
        assert!(v[0].is_nan());
        assert_eq!(ix[0], 1);
    }
}

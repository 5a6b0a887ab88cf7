//! General matrix multiply over strided operands: `C ← α·A·B + β·C`.
//!
//! Operands are described by their row stride and column stride in elements, so a transposed
//! operand is the same slice with its two strides swapped: transposes are never copied.
//! The multiplication itself runs on the `matrixmultiply` crate (blocked, packed, with
//! run-time AVX/FMA dispatch); this module adds the bounds checks that make it safe.

use crate::Float;

/// Row and column strides of a matrix operand, in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatLayout {
    /// Distance between `X[i, j]` and `X[i + 1, j]`.
    pub row_stride: usize,
    /// Distance between `X[i, j]` and `X[i, j + 1]`.
    pub col_stride: usize,
}

impl MatLayout {
    /// A row-major matrix with `cols` columns, read as is (`transposed == false`) or as its
    /// transpose (`transposed == true`, i.e. the strides swapped).
    pub fn row_major(cols: usize, transposed: bool) -> Self {
        if transposed {
            MatLayout {
                row_stride: 1,
                col_stride: cols,
            }
        } else {
            MatLayout {
                row_stride: cols,
                col_stride: 1,
            }
        }
    }

    /// One past the largest offset addressed by a `rows × cols` matrix in this layout.
    fn extent(&self, rows: usize, cols: usize) -> usize {
        if rows == 0 || cols == 0 {
            0
        } else {
            (rows - 1) * self.row_stride + (cols - 1) * self.col_stride + 1
        }
    }
}

/// `C ← α·A·B + β·C` where `A` is `m × k`, `B` is `k × n` and `C` is `m × n`, each read
/// through its [`MatLayout`].
///
/// When `beta` is zero, `C` is overwritten without being read (NaN in `C` does not leak).
/// When `k` is zero, `C ← β·C`.
///
/// # Panics
/// If an operand's slice is too short for its shape and strides.
#[allow(clippy::too_many_arguments)]
pub fn gemm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: &[T],
    la: MatLayout,
    b: &[T],
    lb: MatLayout,
    beta: T,
    c: &mut [T],
    lc: MatLayout,
) {
    assert!(
        la.extent(m, k) <= a.len(),
        "gemm: A is too short for {m}x{k}"
    );
    assert!(
        lb.extent(k, n) <= b.len(),
        "gemm: B is too short for {k}x{n}"
    );
    assert!(
        lc.extent(m, n) <= c.len(),
        "gemm: C is too short for {m}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                let slot = &mut c[i * lc.row_stride + j * lc.col_stride];
                *slot = if beta == T::zero() {
                    T::zero()
                } else {
                    beta * *slot
                };
            }
        }
        return;
    }
    // SAFETY: the three extents were checked above against the slice lengths, and `c` is a
    // unique borrow, so it cannot alias `a` or `b`.
    unsafe {
        T::gemm_raw(
            m,
            k,
            n,
            alpha,
            a.as_ptr(),
            la.row_stride as isize,
            la.col_stride as isize,
            b.as_ptr(),
            lb.row_stride as isize,
            lb.col_stride as isize,
            beta,
            c.as_mut_ptr(),
            lc.row_stride as isize,
            lc.col_stride as isize,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(
        m: usize,
        k: usize,
        n: usize,
        a: &[f64],
        la: MatLayout,
        b: &[f64],
        lb: MatLayout,
    ) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for p in 0..k {
                    s += a[i * la.row_stride + p * la.col_stride]
                        * b[p * lb.row_stride + j * lb.col_stride];
                }
                c[i * n + j] = s;
            }
        }
        c
    }

    #[test]
    fn all_small_sizes_and_transposes_match_naive() {
        for m in 0..6 {
            for k in 0..6 {
                for n in 0..6 {
                    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                        let a: Vec<f64> = (0..m * k).map(|v| (v as f64 * 0.37).sin()).collect();
                        let b: Vec<f64> = (0..k * n).map(|v| (v as f64 * 0.11).cos()).collect();
                        // A stored as k×m when transposed, B as n×k.
                        let la = MatLayout::row_major(if ta { m } else { k }, ta);
                        let lb = MatLayout::row_major(if tb { k } else { n }, tb);
                        let mut c = vec![f64::NAN; m * n];
                        gemm(
                            m,
                            k,
                            n,
                            1.0,
                            &a,
                            la,
                            &b,
                            lb,
                            0.0,
                            &mut c,
                            MatLayout::row_major(n, false),
                        );
                        let want = naive(m, k, n, &a, la, &b, lb);
                        for (x, y) in c.iter().zip(&want) {
                            assert!((x - y).abs() < 1e-12, "m={m} k={k} n={n} ta={ta} tb={tb}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn beta_accumulates() {
        let a = [1.0f32, 2.0, 3.0, 4.0];
        let b = [1.0f32, 0.0, 0.0, 1.0];
        let mut c = [1.0f32; 4];
        let l = MatLayout::row_major(2, false);
        gemm(2, 2, 2, 2.0, &a, l, &b, l, 1.0, &mut c, l);
        assert_eq!(c, [3.0, 5.0, 7.0, 9.0]);
    }

    #[test]
    #[should_panic(expected = "A is too short")]
    fn short_operand_is_refused() {
        let mut c = [0.0f64; 4];
        let l = MatLayout::row_major(2, false);
        gemm(2, 2, 2, 1.0, &[1.0; 3], l, &[1.0; 4], l, 0.0, &mut c, l);
    }
}

//! Direct loops for tiny products and matrix-vector products: no packing, no threads.

use crate::Float;

/// Direct loops for tiny products and matrix-vector products (no packing).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn small<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    alpha: T,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    beta: T,
    c: *mut T,
    rsc: isize,
    csc: isize,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = T::zero();
            for p in 0..k {
                // SAFETY: in bounds (caller's contract).
                s += unsafe {
                    *a.offset(i as isize * rsa + p as isize * csa)
                        * *b.offset(p as isize * rsb + j as isize * csb)
                };
            }
            // SAFETY: `i < m`, `j < n`: inside C (caller's contract), which nothing else
            // refers to while this reference lives.
            let out = unsafe { &mut *c.offset(i as isize * rsc + j as isize * csc) };
            *out = if beta == T::zero() {
                alpha * s
            } else {
                alpha * s + beta * *out
            };
        }
    }
}

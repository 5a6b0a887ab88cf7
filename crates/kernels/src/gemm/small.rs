//! Direct loops for tiny products and matrix-vector products: no packing, no threads.

use super::Operands;
use crate::Float;

/// Direct loops for tiny products and matrix-vector products (no packing).
///
/// # Safety
/// The operands are in bounds and C aliases neither A nor B (see [`Operands`]).
pub(super) unsafe fn small<T: Float>(op: Operands<T>) {
    let Operands {
        a,
        b,
        c,
        alpha,
        beta,
        ..
    } = op;
    for i in 0..op.m {
        for j in 0..op.n {
            let mut s = T::zero();
            for p in 0..op.k {
                // SAFETY: in bounds (caller's contract).
                s += unsafe {
                    *a.offset(i as isize * op.rsa + p as isize * op.csa)
                        * *b.offset(p as isize * op.rsb + j as isize * op.csb)
                };
            }
            // SAFETY: `i < m`, `j < n`: inside C (caller's contract), which nothing else
            // refers to while this reference lives.
            let out = unsafe { &mut *c.offset(i as isize * op.rsc + j as isize * op.csc) };
            *out = if beta == T::zero() {
                alpha * s
            } else {
                alpha * s + beta * *out
            };
        }
    }
}

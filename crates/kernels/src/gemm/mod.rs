//! General matrix multiply over strided operands: `C ← α·A·B + β·C`.
//!
//! Operands are described by their row and column strides in elements, so a transposed
//! operand is the same slice with its strides swapped: transposes are never copied.
//!
//! The multiplication is the five-loop blocked algorithm of GotoBLAS/BLIS:
//!
//! ```text
//! for jc in 0..n step NC          — a KC × NC panel of B lives in L3
//!   for pc in 0..k step KC        — pack B[pc.., jc..] into NR-column panels (B̃)
//!     for ic in 0..m step MC      — in parallel: each thread packs its MC × KC block of A (Ã, in L2)
//!       for jr in 0..NC step NR   — one B̃ panel (L1)
//!         for ir in 0..MC step MR — the microkernel: an MR × NR tile of C in registers
//! ```
//!
//! The microkernel is chosen at run time (AVX2+FMA when present, portable loops otherwise;
//! see `micro.rs`), the blocking is sized to this class of machine (32 KiB L1d, 1 MiB L2 per
//! core), and the row blocks of A are split between the threads of [`crate::threads`]. Each output
//! element is computed by one thread with the same summation order whatever the thread
//! count, so results do not depend on it. Packing buffers are thread-local and reused: a
//! steady-state call allocates nothing. Tiny products skip the packing.

mod blocked;
mod micro;
mod pack;
mod small;
#[cfg(test)]
mod tests;

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

    /// One past the largest offset addressed by a `rows × cols` matrix in this layout, or
    /// `None` if it, or a stride, does not fit in `isize` (the kernels address with signed
    /// offsets).
    fn extent(&self, rows: usize, cols: usize) -> Option<usize> {
        if rows == 0 || cols == 0 {
            return Some(0);
        }
        let fits = |v: usize| (v <= isize::MAX as usize).then_some(v);
        fits(self.row_stride)?;
        fits(self.col_stride)?;
        (rows - 1)
            .checked_mul(self.row_stride)?
            .checked_add((cols - 1).checked_mul(self.col_stride)?)?
            .checked_add(1)
            .and_then(fits)
    }
}

/// A microkernel: `C[..mr, ..nr] ← α·Ã·B̃ + β·C` for packed panels of `kc` steps.
pub type MicroKernel<T> =
    unsafe fn(usize, T, *const T, *const T, T, *mut T, isize, isize, usize, usize);

/// What gemm needs of an element type: tile and block sizes, its microkernels, and its
/// thread-local packing buffers. Implemented for `f32` and `f64`.
pub trait GemmElem: Copy + Send + Sync + 'static {
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Depth of a packed panel.
    const KC: usize;
    /// Rows of a packed block of A (a multiple of `MR`).
    const MC: usize;
    /// Columns of a packed panel of B (a multiple of `NR`).
    const NC: usize;
    /// The fastest microkernel this CPU runs (detected once).
    fn micro_kernel() -> MicroKernel<Self>;
    /// The portable microkernel (for tests and CPUs without AVX2/FMA).
    fn portable_kernel() -> MicroKernel<Self>;
    /// Packs a full `MR`-row panel of a row-major block of A (see `pack::pack_a_rows_portable`).
    ///
    /// # Safety
    /// The `MR` rows of `kc` elements at `a` (row stride `rsa`) are in bounds; `panel`
    /// holds `MR·kc` elements.
    unsafe fn pack_a_rows(kc: usize, a: *const Self, rsa: isize, panel: &mut [Self]) {
        // SAFETY: this function's contract is the portable loop's.
        unsafe { pack::pack_a_rows_portable(Self::MR, kc, a, rsa, panel) }
    }
    /// Packs a full `NR`-column panel of a column-major block of B (see
    /// `pack::pack_b_cols_portable`).
    ///
    /// # Safety
    /// The `NR` columns of `kc` elements at `b` (column stride `csb`) are in bounds;
    /// `panel` holds `NR·kc` elements.
    unsafe fn pack_b_cols(kc: usize, b: *const Self, csb: isize, panel: &mut [Self]) {
        // SAFETY: this function's contract is the portable loop's.
        unsafe { pack::pack_b_cols_portable(Self::NR, kc, b, csb, panel) }
    }
    /// Runs `f` on a thread-local buffer for packed A.
    fn with_a_buf<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
    /// Runs `f` on a thread-local buffer for packed B.
    fn with_b_buf<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
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
    gemm_with(T::micro_kernel(), m, k, n, alpha, a, la, b, lb, beta, c, lc)
}

/// [`gemm`] with an explicit microkernel (tests run every kernel on its own).
#[allow(clippy::too_many_arguments)]
pub fn gemm_with<T: Float>(
    kernel: MicroKernel<T>,
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
        la.extent(m, k).is_some_and(|e| e <= a.len()),
        "gemm: A is too short for {m}x{k}"
    );
    assert!(
        lb.extent(k, n).is_some_and(|e| e <= b.len()),
        "gemm: B is too short for {k}x{n}"
    );
    assert!(
        lc.extent(m, n).is_some_and(|e| e <= c.len()),
        "gemm: C is too short for {m}x{n}"
    );
    if m == 0 || n == 0 {
        return;
    }
    let (rsc, csc) = (lc.row_stride as isize, lc.col_stride as isize);
    let cp = c.as_mut_ptr();
    if k == 0 || alpha == T::zero() {
        for i in 0..m {
            for j in 0..n {
                // SAFETY: `i < m`, `j < n`: inside C's extent, checked against `c` above;
                // `c` is borrowed mutably, so nothing else reads or writes it.
                unsafe {
                    let p = cp.offset(i as isize * rsc + j as isize * csc);
                    *p = if beta == T::zero() {
                        T::zero()
                    } else {
                        beta * *p
                    }
                };
            }
        }
        return;
    }
    let (ap, rsa, csa) = (a.as_ptr(), la.row_stride as isize, la.col_stride as isize);
    let (bp, rsb, csb) = (b.as_ptr(), lb.row_stride as isize, lb.col_stride as isize);
    let op = Operands {
        m,
        k,
        n,
        alpha,
        a: ap,
        rsa,
        csa,
        b: bp,
        rsb,
        csb,
        beta,
        c: cp,
        rsc,
        csc,
    };
    // SAFETY: every operand's extent was checked against its slice, and `c` is a unique
    // borrow, so it aliases neither `a` nor `b`.
    unsafe {
        if m * n * k <= 16 * 16 * 16 || n == 1 || m == 1 {
            small::small(op);
        } else {
            blocked::blocked(kernel, op);
        }
    }
}

/// A checked product's raw parts: `C ← α·A·B + β·C` with A `m × k` at `a`, B `k × n` at
/// `b` and C `m × n` at `c`, each addressed through its row and column strides. The code
/// that takes one relies on every operand being in bounds for its shape and strides and on
/// C aliasing neither A nor B (what [`gemm_with`] checked).
#[derive(Clone, Copy)]
pub(super) struct Operands<T> {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub alpha: T,
    pub a: *const T,
    pub rsa: isize,
    pub csa: isize,
    pub b: *const T,
    pub rsb: isize,
    pub csb: isize,
    pub beta: T,
    pub c: *mut T,
    pub rsc: isize,
    pub csc: isize,
}

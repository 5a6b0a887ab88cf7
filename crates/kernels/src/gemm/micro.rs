//! Microkernels: `C[0..mr, 0..nr] ← α·Ã·B̃ + β·C` for one packed `MR × kc` panel of A and one
//! packed `kc × NR` panel of B, keeping the `MR × NR` tile of C in registers.
//!
//! The AVX2+FMA kernels hold the tile in 12 ymm registers (6 rows × 2 vectors), load two
//! vectors of B and broadcast six values of A per step of k: 12 FMAs per 8 loads, which keeps
//! both FMA pipes busy. They are chosen at run time when the CPU has AVX2 and FMA; the
//! portable kernels (plain loops over the same tile) serve everywhere else, so the packing
//! and blocking are the same for both.

use std::cell::Cell;

use super::{GemmElem, MicroKernel};

#[cfg(target_arch = "x86_64")]
use crate::simd::avx2_fma as has_avx2_fma;

/// Writes the tile `acc` (row-major `MR × NR`, already multiplied by α) into C:
/// `C ← acc + β·C` on the `mr × nr` corner; C is not read when β = 0.
///
/// # Safety
/// Every `c + i·rsc + j·csc` for `i < mr`, `j < nr` is in bounds of one allocation and
/// writable, and nothing else reads or writes those elements meanwhile.
#[inline(always)]
unsafe fn store_tile<T: GemmElem + num_traits::Float, const MR: usize, const NR: usize>(
    acc: &[[T; NR]; MR],
    beta: T,
    c: *mut T,
    rsc: isize,
    csc: isize,
    mr: usize,
    nr: usize,
) {
    for (i, row) in acc.iter().enumerate().take(mr) {
        for (j, &v) in row.iter().enumerate().take(nr) {
            // SAFETY: `i < mr` and `j < nr`, so the offset names an element of the corner
            // the caller guarantees in bounds and exclusively ours; it is read (when β ≠ 0)
            // and written through that one pointer.
            unsafe {
                let p = c.offset(i as isize * rsc + j as isize * csc);
                *p = if beta == T::zero() { v } else { v + beta * *p };
            }
        }
    }
}

/// The portable kernel: the same tile, plain loops.
///
/// # Safety
/// `a` holds `kc·MR` and `b` `kc·NR` elements; the `mr × nr` corner of C (strides `rsc`,
/// `csc`) is in bounds.
#[allow(clippy::too_many_arguments)]
unsafe fn generic<T: GemmElem + num_traits::Float, const MR: usize, const NR: usize>(
    kc: usize,
    alpha: T,
    a: *const T,
    b: *const T,
    beta: T,
    c: *mut T,
    rsc: isize,
    csc: isize,
    mr: usize,
    nr: usize,
) {
    let mut acc = [[T::zero(); NR]; MR];
    for p in 0..kc {
        // SAFETY: `p < kc`, and the panels hold `kc·MR` and `kc·NR` elements (the
        // contract): rows `p` of each lie inside them.
        let (ap, bp) = unsafe {
            (
                std::slice::from_raw_parts(a.add(p * MR), MR),
                std::slice::from_raw_parts(b.add(p * NR), NR),
            )
        };
        for (row, &ai) in acc.iter_mut().zip(ap) {
            for (x, &bj) in row.iter_mut().zip(bp) {
                *x = *x + ai * bj;
            }
        }
    }
    for row in acc.iter_mut() {
        for x in row.iter_mut() {
            *x = *x * alpha;
        }
    }
    // SAFETY: the C corner is in bounds and ours (the contract).
    unsafe { store_tile(&acc, beta, c, rsc, csc, mr, nr) }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    /// Asks for the C tile's rows (`bytes` wide, row stride `row_bytes`) to be brought into
    /// L1 while the k-loop runs, so the epilogue's read of C does not stall. A prefetch is
    /// a hint that never faults, so any address is sound (they are computed with wrapping
    /// arithmetic for the same reason).
    #[inline(always)]
    fn prefetch_tile(c: *const u8, row_bytes: isize, rows: usize, bytes: isize) {
        for i in 0..rows as isize {
            let p = c.wrapping_offset(i * row_bytes);
            // SAFETY: SSE is part of every x86_64 CPU, and a prefetch reads nothing and
            // never faults, whatever the address.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_offset(bytes - 1) as *const i8);
            }
        }
    }

    /// A 6-row AVX2 microkernel: each row of the tile is two 256-bit registers of
    /// `$lanes` elements (`NR = 2·$lanes` columns), written once for f32 and f64 with the
    /// type's intrinsics.
    macro_rules! kernel_6xnr {
        ($(#[$doc:meta])* $name:ident: $t:ty, lanes $lanes:literal, $setzero:ident, $loadu:ident,
         $broadcast:ident, $fmadd:ident, $set1:ident, $mul:ident, $storeu:ident) => {
            $(#[$doc])*
            ///
            /// # Safety
            /// AVX2 and FMA are available; the packed panels and the C corner are in bounds.
            #[target_feature(enable = "avx2,fma")]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn $name(
                kc: usize,
                alpha: $t,
                a: *const $t,
                b: *const $t,
                beta: $t,
                c: *mut $t,
                rsc: isize,
                csc: isize,
                mr: usize,
                nr: usize,
            ) {
                const NR: usize = 2 * $lanes;
                prefetch_tile(c as *const u8, rsc * std::mem::size_of::<$t>() as isize, mr, 64);
                let mut acc = [[$setzero(); 2]; 6];
                for p in 0..kc {
                    // SAFETY: `p < kc`; B̃ holds `kc·NR` elements and Ã `kc·6` (the
                    // contract), so row `p` of each — NR elements from `NR·p`, 6 from `6p` —
                    // lies inside its panel.
                    let (b0, b1, ap) = unsafe {
                        let bp = b.add(NR * p);
                        ($loadu(bp), $loadu(bp.add($lanes)), &*a.add(6 * p).cast::<[$t; 6]>())
                    };
                    macro_rules! row {
                        ($i:literal) => {
                            let ai = $broadcast(&ap[$i]);
                            acc[$i][0] = $fmadd(ai, b0, acc[$i][0]);
                            acc[$i][1] = $fmadd(ai, b1, acc[$i][1]);
                        };
                    }
                    row!(0);
                    row!(1);
                    row!(2);
                    row!(3);
                    row!(4);
                    row!(5);
                }
                let va = $set1(alpha);
                if mr == 6 && nr == NR && csc == 1 {
                    let vb = $set1(beta);
                    for (i, r) in acc.iter().enumerate() {
                        let (mut x0, mut x1) = ($mul(r[0], va), $mul(r[1], va));
                        // SAFETY: a whole 6 × NR tile with unit column stride: row `i < 6` is
                        // NR contiguous elements of the corner the caller guarantees in
                        // bounds and ours.
                        unsafe {
                            let p = c.offset(i as isize * rsc);
                            if beta != 0.0 {
                                x0 = $fmadd($loadu(p), vb, x0);
                                x1 = $fmadd($loadu(p.add($lanes)), vb, x1);
                            }
                            $storeu(p, x0);
                            $storeu(p.add($lanes), x1);
                        }
                    }
                } else {
                    let mut tile = [[0.0 as $t; NR]; 6];
                    for (t, r) in tile.iter_mut().zip(&acc) {
                        let (lo, hi) = t.split_at_mut($lanes);
                        // SAFETY: each half of a row of `tile` holds exactly `$lanes` elements.
                        unsafe {
                            $storeu(lo.as_mut_ptr(), $mul(r[0], va));
                            $storeu(hi.as_mut_ptr(), $mul(r[1], va));
                        }
                    }
                    // SAFETY: the C corner is in bounds and ours (the contract).
                    unsafe { super::store_tile(&tile, beta, c, rsc, csc, mr, nr) };
                }
            }
        };
    }

    kernel_6xnr!(
        /// f32, 6 × 16.
        f32_6x16: f32, lanes 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_broadcast_ss,
        _mm256_fmadd_ps, _mm256_set1_ps, _mm256_mul_ps, _mm256_storeu_ps
    );
    kernel_6xnr!(
        /// f64, 6 × 8.
        f64_6x8: f64, lanes 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_broadcast_sd,
        _mm256_fmadd_pd, _mm256_set1_pd, _mm256_mul_pd, _mm256_storeu_pd
    );
}

thread_local! {
    static F32_A: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static F32_B: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static F64_A: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
    static F64_B: Cell<Vec<f64>> = const { Cell::new(Vec::new()) };
}

/// Runs `f` on a thread-local buffer of at least `len` elements, taken out of its slot for
/// the duration (a nested call, e.g. from a stolen task, gets a fresh buffer instead of a
/// conflicting borrow) and put back after, so steady-state calls allocate nothing.
fn with_buf<T: Copy + Default, R>(
    slot: &'static std::thread::LocalKey<Cell<Vec<T>>>,
    len: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buf = slot.with(|s| s.take());
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    let r = f(&mut buf[..len]);
    slot.with(|s| s.set(buf));
    r
}

impl GemmElem for f32 {
    const MR: usize = 6;
    const NR: usize = 16;
    // Ã (6 × 256) and B̃ (256 × 16) panels stay in the 32 KiB L1; an MC × KC block of A
    // (≤ 252 × 256 × 4 B = 252 KiB) in the 1 MiB L2; a KC × NC panel of B in L3.
    const KC: usize = 256;
    const MC: usize = 252;
    const NC: usize = 4096;

    fn micro_kernel() -> MicroKernel<f32> {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            return avx2::f32_6x16;
        }
        generic::<f32, 6, 16>
    }

    fn portable_kernel() -> MicroKernel<f32> {
        generic::<f32, 6, 16>
    }

    unsafe fn pack_a_rows(kc: usize, a: *const f32, rsa: isize, panel: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: AVX is part of what was detected; the bounds are the caller's.
            return unsafe { super::pack::avx::pack_a_rows_f32x6(kc, a, rsa, panel) };
        }
        // SAFETY: the bounds are the caller's (this function's contract).
        unsafe { super::pack::pack_a_rows_portable(6, kc, a, rsa, panel) }
    }

    unsafe fn pack_b_cols(kc: usize, b: *const f32, csb: isize, panel: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            // SAFETY: AVX is part of what was detected; the bounds are the caller's.
            return unsafe { super::pack::avx::pack_b_cols_f32x16(kc, b, csb, panel) };
        }
        // SAFETY: the bounds are the caller's (this function's contract).
        unsafe { super::pack::pack_b_cols_portable(16, kc, b, csb, panel) }
    }

    fn with_a_buf<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        with_buf(&F32_A, len, f)
    }

    fn with_b_buf<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
        with_buf(&F32_B, len, f)
    }
}

impl GemmElem for f64 {
    const MR: usize = 6;
    const NR: usize = 8;
    const KC: usize = 256;
    const MC: usize = 126;
    const NC: usize = 4096;

    fn micro_kernel() -> MicroKernel<f64> {
        #[cfg(target_arch = "x86_64")]
        if has_avx2_fma() {
            return avx2::f64_6x8;
        }
        generic::<f64, 6, 8>
    }

    fn portable_kernel() -> MicroKernel<f64> {
        generic::<f64, 6, 8>
    }

    fn with_a_buf<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
        with_buf(&F64_A, len, f)
    }

    fn with_b_buf<R>(len: usize, f: impl FnOnce(&mut [f64]) -> R) -> R {
        with_buf(&F64_B, len, f)
    }
}

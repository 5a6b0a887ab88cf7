//! Packing: copying a block of A into `MR`-row panels and a block of B into `NR`-column
//! panels, each laid out in the order the microkernel reads it (`p`-major), zero-padded at
//! the edges so every panel is full.
//!
//! The tile sizes are the element type's constants, so every inner loop has a fixed trip
//! count the compiler unrolls. Each layout gets the loop order that reads its source
//! sequentially: row-major A is read six rows at a time, column-major A one column of six
//! at a time; row-major B one row of `NR` at a time, column-major B one column at a time.

use super::GemmElem;

/// Packs the `mc × kc` block of A at `a` (strides `rsa`, `csa`) into `out`: panel `r` holds
/// rows `r·MR .. r·MR + MR`, element `(i, p)` at `r·MR·kc + p·MR + i`.
///
/// # Safety
/// Every addressed element of A is in bounds; `out` holds `⌈mc/MR⌉·MR·kc` elements.
pub(super) unsafe fn pack_a<T: GemmElem + num_traits::Zero>(
    mc: usize,
    kc: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    out: &mut [T],
) {
    let mr = T::MR;
    for (r, panel) in out
        .chunks_exact_mut(mr * kc)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        let rows = mr.min(mc - r * mr);
        // SAFETY (all reads below): rows `< rows` and columns `< kc` of this block are in
        // bounds by the caller's contract.
        let base = unsafe { a.offset((r * mr) as isize * rsa) };
        if rows == mr && csa == 1 {
            // Row-major: MR sequential row streams, sequential writes.
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = unsafe { *base.offset(i as isize * rsa + p as isize) };
                }
            }
        } else if rows == mr && rsa == 1 {
            // Column-major (a transposed operand): each column of the panel is contiguous.
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                let col = unsafe { base.offset(p as isize * csa) };
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = unsafe { *col.add(i) };
                }
            }
        } else {
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                let col = unsafe { base.offset(p as isize * csa) };
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = if i < rows {
                        unsafe { *col.offset(i as isize * rsa) }
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

/// Packs the `kc × nc` block of B at `b` (strides `rsb`, `csb`) into `out`: panel `s` holds
/// columns `s·NR .. s·NR + NR`, element `(p, j)` at `s·NR·kc + p·NR + j`.
///
/// # Safety
/// Every addressed element of B is in bounds; `out` holds `⌈nc/NR⌉·NR·kc` elements.
pub(super) unsafe fn pack_b<T: GemmElem + num_traits::Zero>(
    kc: usize,
    nc: usize,
    b: *const T,
    rsb: isize,
    csb: isize,
    out: &mut [T],
) {
    let nr = T::NR;
    for (s, panel) in out
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let cols = nr.min(nc - s * nr);
        // SAFETY (all reads below): rows `< kc` and columns `< cols` of this block are in
        // bounds by the caller's contract.
        let base = unsafe { b.offset((s * nr) as isize * csb) };
        if cols == nr && csb == 1 {
            // Row-major: each row of the panel is a contiguous run of NR.
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                let row = unsafe { base.offset(p as isize * rsb) };
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = unsafe { *row.add(j) };
                }
            }
        } else if cols == nr && rsb == 1 {
            // Column-major (a transposed operand): read each column sequentially.
            for j in 0..nr {
                let col = unsafe { base.offset(j as isize * csb) };
                for p in 0..kc {
                    panel[p * nr + j] = unsafe { *col.add(p) };
                }
            }
        } else {
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                let row = unsafe { base.offset(p as isize * rsb) };
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if j < cols {
                        unsafe { *row.offset(j as isize * csb) }
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

//! Packing: copying a block of A into `MR`-row panels and a block of B into `NR`-column
//! panels, each laid out in the order the microkernel reads it (`p`-major), zero-padded at
//! the edges so every panel is full.

/// Packs the `mc × kc` block of A at `a` (strides `rsa`, `csa`) into `out`: panel `r` holds
/// rows `r·MR .. r·MR + MR`, element `(i, p)` at `r·MR·kc + p·MR + i`.
///
/// # Safety
/// Every addressed element of A is in bounds; `out` holds `⌈mc/MR⌉·MR·kc` elements.
pub(super) unsafe fn pack_a<T: Copy + num_traits::Zero>(
    mc: usize,
    kc: usize,
    a: *const T,
    rsa: isize,
    csa: isize,
    out: &mut [T],
    mr: usize,
) {
    for (r, panel) in out
        .chunks_exact_mut(mr * kc)
        .take(mc.div_ceil(mr))
        .enumerate()
    {
        let rows = mr.min(mc - r * mr);
        let base = unsafe { a.offset((r * mr) as isize * rsa) };
        if csa == 1 && rows == mr {
            // Rows contiguous: read each row once, scatter into the panel.
            for i in 0..mr {
                let row = unsafe { base.offset(i as isize * rsa) };
                for p in 0..kc {
                    panel[p * mr + i] = unsafe { *row.add(p) };
                }
            }
        } else {
            for p in 0..kc {
                let col = unsafe { base.offset(p as isize * csa) };
                let dst = &mut panel[p * mr..p * mr + mr];
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
pub(super) unsafe fn pack_b<T: Copy + num_traits::Zero>(
    kc: usize,
    nc: usize,
    b: *const T,
    rsb: isize,
    csb: isize,
    out: &mut [T],
    nr: usize,
) {
    for (s, panel) in out
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
    {
        let cols = nr.min(nc - s * nr);
        let base = unsafe { b.offset((s * nr) as isize * csb) };
        for p in 0..kc {
            let row = unsafe { base.offset(p as isize * rsb) };
            let dst = &mut panel[p * nr..p * nr + nr];
            if csb == 1 && cols == nr {
                dst.copy_from_slice(unsafe { std::slice::from_raw_parts(row, nr) });
            } else {
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

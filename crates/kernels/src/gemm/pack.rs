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
        // Element (i, p) of the panel is A[r·MR + i, p], at `a + (r·MR + i)·rsa + p·csa`;
        // the caller guarantees it in bounds for `r·MR + i < mc` and `p < kc`, which every
        // read below keeps to (`i < rows`, `p < kc`: `panel` has `kc` chunks of `mr`).
        let at =
            |i: usize, p: usize| a.wrapping_offset((r * mr + i) as isize * rsa + p as isize * csa);
        if rows == mr && csa == 1 {
            // Row-major: MR sequential row streams, sequential writes (8×8 transposes in
            // registers where the element type has them).
            // SAFETY: all `mr` rows of `kc` elements from `at(0, 0)` are in bounds (above),
            // and `panel` holds `mr·kc` elements.
            unsafe { T::pack_a_rows(kc, at(0, 0), rsa, panel) };
        } else if rows == mr && rsa == 1 {
            // Column-major (a transposed operand): each column of the panel is contiguous.
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                // SAFETY: column `p < kc` of the block: `mr` contiguous elements (unit row
                // stride) in bounds (above).
                dst.copy_from_slice(unsafe { std::slice::from_raw_parts(at(0, p), mr) });
            }
        } else {
            for (p, dst) in panel.chunks_exact_mut(mr).enumerate() {
                for (i, d) in dst.iter_mut().enumerate() {
                    *d = if i < rows {
                        // SAFETY: `i < rows` and `p < kc`: an element of the block (above).
                        unsafe { *at(i, p) }
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
    let full = if csb == 1 {
        // SAFETY: a row-major block of `kc × nc` in bounds (the caller's contract) and
        // `out` with room for every panel.
        unsafe { pack_b_rows(kc, nc, b, rsb, out) }
    } else {
        0
    };
    for (s, panel) in out
        .chunks_exact_mut(nr * kc)
        .take(nc.div_ceil(nr))
        .enumerate()
        .skip(full)
    {
        let cols = nr.min(nc - s * nr);
        // Element (p, j) of the panel is B[p, s·NR + j], at `b + p·rsb + (s·NR + j)·csb`;
        // the caller guarantees it in bounds for `p < kc` and `s·NR + j < nc`, which every
        // read below keeps to (`j < cols`, `p < kc`: `panel` has `kc` chunks of `nr`).
        let at =
            |p: usize, j: usize| b.wrapping_offset(p as isize * rsb + (s * nr + j) as isize * csb);
        if cols == nr && rsb == 1 {
            // Column-major (a transposed operand): read each column sequentially.
            // SAFETY: all `nr` columns of `kc` elements from `at(0, 0)` are in bounds
            // (above), and `panel` holds `nr·kc` elements.
            unsafe { T::pack_b_cols(kc, at(0, 0), csb, panel) };
        } else {
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = if j < cols {
                        // SAFETY: `j < cols` and `p < kc`: an element of the block (above).
                        unsafe { *at(p, j) }
                    } else {
                        T::zero()
                    };
                }
            }
        }
    }
}

/// Rows of B packed together: the full panels of a row-major (`csb == 1`) block, in runs of
/// `ROWS` rows across every panel. Returns the number of full panels packed.
///
/// Going panel by panel would read `NR` elements from each of `kc` rows before moving on:
/// at N = 1024 those rows are 4 KiB apart, so every read is a new page and the same L1 set,
/// and packing B took 2.5% of a product's time. A run of rows is read front to back, and
/// each panel receives `ROWS·NR` contiguous elements.
///
/// # Safety
/// Rows `< kc` and columns `< nc` at `b` (row stride `rsb`, unit column stride) are in
/// bounds; `out` holds the full panels.
unsafe fn pack_b_rows<T: GemmElem>(
    kc: usize,
    nc: usize,
    b: *const T,
    rsb: isize,
    out: &mut [T],
) -> usize {
    const ROWS: usize = 8;
    let nr = T::NR;
    let full = nc / nr;
    assert!(out.len() >= full * nr * kc);
    let out = out.as_mut_ptr();
    for p0 in (0..kc).step_by(ROWS) {
        let rows = ROWS.min(kc - p0);
        for s in 0..full {
            for p in p0..p0 + rows {
                // SAFETY: row `p`, columns `s·NR .. s·NR + NR` are in bounds, and panel `s`
                // row `p` is inside the first `full` panels of `out`.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        b.offset(p as isize * rsb).add(s * nr),
                        out.add(s * nr * kc + p * nr),
                        nr,
                    )
                };
            }
        }
    }
    full
}

/// A full panel of a row-major A: `panel[p·mr + i] = A[i, p]` for `i < mr`, `p < kc`,
/// row `i` at `a + i·rsa` (unit column stride). The portable version.
///
/// # Safety
/// The `mr` rows of `kc` elements are in bounds; `panel` holds `mr·kc` elements.
pub(super) unsafe fn pack_a_rows_portable<T: Copy>(
    mr: usize,
    kc: usize,
    a: *const T,
    rsa: isize,
    panel: &mut [T],
) {
    for (p, dst) in panel[..mr * kc].chunks_exact_mut(mr).enumerate() {
        for (i, d) in dst.iter_mut().enumerate() {
            // SAFETY: `i < mr` and `p < kc`: an element of the rows the caller guarantees.
            *d = unsafe { *a.offset(i as isize * rsa + p as isize) };
        }
    }
}

/// A full panel of a column-major B: `panel[p·nr + j] = B[p, j]` for `p < kc`, `j < nr`,
/// column `j` at `b + j·csb` (unit row stride). The portable version.
///
/// # Safety
/// The `nr` columns of `kc` elements are in bounds; `panel` holds `nr·kc` elements.
pub(super) unsafe fn pack_b_cols_portable<T: Copy>(
    nr: usize,
    kc: usize,
    b: *const T,
    csb: isize,
    panel: &mut [T],
) {
    for j in 0..nr {
        for p in 0..kc {
            // SAFETY: `j < nr` and `p < kc`: an element of the columns the caller
            // guarantees.
            panel[p * nr + j] = unsafe { *b.offset(j as isize * csb + p as isize) };
        }
    }
}

/// The f32 panels of the two transposing layouts with AVX: eight elements of each of eight
/// rows loaded at once and transposed in registers (24 shuffles per 64 elements), instead of
/// one scalar load and store per element.
#[cfg(target_arch = "x86_64")]
pub(super) mod avx {
    use std::arch::x86_64::*;

    /// Transposes the 8×8 block held in `r` (row `i` in `r[i]`): column `q` in `r[q]`.
    #[inline]
    #[target_feature(enable = "avx")]
    fn transpose8(r: &mut [__m256; 8]) {
        {
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            r[0] = _mm256_permute2f128_ps::<0x20>(u0, u4);
            r[1] = _mm256_permute2f128_ps::<0x20>(u1, u5);
            r[2] = _mm256_permute2f128_ps::<0x20>(u2, u6);
            r[3] = _mm256_permute2f128_ps::<0x20>(u3, u7);
            r[4] = _mm256_permute2f128_ps::<0x31>(u0, u4);
            r[5] = _mm256_permute2f128_ps::<0x31>(u1, u5);
            r[6] = _mm256_permute2f128_ps::<0x31>(u2, u6);
            r[7] = _mm256_permute2f128_ps::<0x31>(u3, u7);
        }
    }

    /// [`super::pack_a_rows_portable`] for f32 with `mr = 6`.
    ///
    /// # Safety
    /// As the portable version; the CPU has AVX.
    #[target_feature(enable = "avx")]
    pub(crate) unsafe fn pack_a_rows_f32x6(
        kc: usize,
        a: *const f32,
        rsa: isize,
        panel: &mut [f32],
    ) {
        assert!(panel.len() >= 6 * kc);
        let out = panel.as_mut_ptr();
        // The last column of each block is stored with a mask: its 8-wide store would run
        // two elements past the panel.
        let last = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
        let full = kc / 8 * 8;
        for p0 in (0..full).step_by(8) {
            let mut r = [_mm256_setzero_ps(); 8];
            for (i, ri) in r.iter_mut().take(6).enumerate() {
                // SAFETY: row `i < 6`, columns `p0 .. p0 + 8 ≤ full ≤ kc`: inside the rows
                // the caller guarantees.
                *ri = unsafe { _mm256_loadu_ps(a.offset(i as isize * rsa + p0 as isize)) };
            }
            transpose8(&mut r);
            // Column q goes to panel[(p0 + q)·6 ..][..6]; each 8-wide store's two extra
            // lanes are overwritten by the next one.
            // SAFETY: stores of 8 from `(p0 + q)·6` for `q < 7` end at `(p0 + 6)·6 + 8 ≤
            // (p0 + 8)·6 ≤ 6·kc`, and the masked one writes 6 from `(p0 + 7)·6`, ending at
            // `(p0 + 8)·6`: all inside `panel`, which holds `6·kc` (asserted).
            unsafe {
                for (q, rq) in r.iter().enumerate().take(7) {
                    _mm256_storeu_ps(out.add((p0 + q) * 6), *rq);
                }
                _mm256_maskstore_ps(out.add((p0 + 7) * 6), last, r[7]);
            }
        }
        for p in full..kc {
            for i in 0..6 {
                // SAFETY: `p < kc`, `i < 6`: inside the rows and inside `panel`.
                unsafe { *out.add(p * 6 + i) = *a.offset(i as isize * rsa + p as isize) };
            }
        }
    }

    /// [`super::pack_b_cols_portable`] for f32 with `nr = 16`.
    ///
    /// # Safety
    /// As the portable version; the CPU has AVX.
    #[target_feature(enable = "avx")]
    pub(crate) unsafe fn pack_b_cols_f32x16(
        kc: usize,
        b: *const f32,
        csb: isize,
        panel: &mut [f32],
    ) {
        assert!(panel.len() >= 16 * kc);
        let out = panel.as_mut_ptr();
        let full = kc / 8 * 8;
        for p0 in (0..full).step_by(8) {
            for h in 0..2 {
                let mut r = [_mm256_setzero_ps(); 8];
                for (j, rj) in r.iter_mut().enumerate() {
                    // SAFETY: column `8h + j < 16`, rows `p0 .. p0 + 8 ≤ kc`: inside the
                    // columns the caller guarantees.
                    *rj = unsafe {
                        _mm256_loadu_ps(b.offset((8 * h + j) as isize * csb + p0 as isize))
                    };
                }
                transpose8(&mut r);
                for (q, rq) in r.iter().enumerate() {
                    // SAFETY: 8 from `(p0 + q)·16 + 8h` end at most at `(p0 + 8)·16 ≤
                    // 16·kc`, inside `panel` (asserted).
                    unsafe { _mm256_storeu_ps(out.add((p0 + q) * 16 + 8 * h), *rq) };
                }
            }
        }
        for p in full..kc {
            for j in 0..16 {
                // SAFETY: `p < kc`, `j < 16`: inside the columns and inside `panel`.
                unsafe { *out.add(p * 16 + j) = *b.offset(j as isize * csb + p as isize) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX transposing packs write exactly what the portable loops write, for every
    /// depth around the 8-wide blocks, and nothing past the panel.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn transposing_packs_match_the_portable_loops() {
        if !crate::simd::avx2_fma() {
            return;
        }
        let src: Vec<f32> = (0..40 * 40).map(|i| i as f32 * 0.5 - 7.0).collect();
        for kc in 0..34 {
            for stride in [kc.max(1), 37, 40] {
                let mut want = vec![-1.0f32; 6 * kc + 8];
                let mut got = want.clone();
                // SAFETY: 6 rows of `kc` at `stride ≥ kc` fit in the 1,600 of `src`; AVX
                // was detected.
                unsafe {
                    pack_a_rows_portable(6, kc, src.as_ptr(), stride as isize, &mut want);
                    avx::pack_a_rows_f32x6(kc, src.as_ptr(), stride as isize, &mut got[..6 * kc]);
                }
                assert_eq!(want, got, "pack_a kc={kc} stride={stride}");
                let mut want = vec![-1.0f32; 16 * kc + 8];
                let mut got = want.clone();
                let stride = stride.max(kc);
                if 15 * stride + kc > src.len() {
                    continue;
                }
                // SAFETY: 16 columns of `kc` at `stride` fit in `src` (checked just above);
                // AVX was detected.
                unsafe {
                    pack_b_cols_portable(16, kc, src.as_ptr(), stride as isize, &mut want);
                    avx::pack_b_cols_f32x16(kc, src.as_ptr(), stride as isize, &mut got[..16 * kc]);
                }
                assert_eq!(want, got, "pack_b kc={kc} stride={stride}");
            }
        }
    }
}

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

mod micro;
mod pack;

use crate::threads::Claims;
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
    // SAFETY: every operand's extent was checked against its slice, and `c` is a unique
    // borrow, so it aliases neither `a` nor `b`.
    unsafe {
        if m * n * k <= 16 * 16 * 16 || n == 1 || m == 1 {
            small(
                m, k, n, alpha, ap, rsa, csa, bp, rsb, csb, beta, cp, rsc, csc,
            );
        } else {
            blocked(
                kernel, m, k, n, alpha, ap, rsa, csa, bp, rsb, csb, beta, cp, rsc, csc,
            );
        }
    }
}

/// Direct loops for tiny products and matrix-vector products (no packing).
#[allow(clippy::too_many_arguments)]
unsafe fn small<T: Float>(
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

/// The depth of the K blocks for a product of depth `k`, given the preferred depth `kc`:
/// one block up to a quarter over `kc`, else equal blocks of at most `kc`. A fixed step
/// leaves a thin last block (a 3×3×32 convolution has `k = 288 = 256 + 32`), where the
/// microkernel spends more on loading and storing its tile of C than on multiplying.
fn k_block(k: usize, kc: usize) -> usize {
    if k <= kc + kc / 4 {
        k.max(1)
    } else {
        k.div_ceil(k.div_ceil(kc))
    }
}

/// Products up to this many multiply-adds stay on one thread.
///
/// A parallel region costs a few cross-core handoffs: about a microsecond in all when the
/// host keeps the two vCPUs close, and ten times that at times when it does not (measured
/// here: a two-thread process whose 64³ products fall from 95 to 40 GFLOP/s for a while,
/// while single-thread processes on each vCPU keep 101). A 64³ product is 5 µs of work, so it
/// stays on one thread, as MKL keeps it: 89 GFLOP/s every time instead of 95 or 40.
const PARALLEL_WORK: usize = (1 << 18) + 1;

/// The five-loop blocked product.
#[allow(clippy::too_many_arguments)]
unsafe fn blocked<T: Float>(
    kernel: MicroKernel<T>,
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
    let (mr, nr) = (T::MR, T::NR);
    let threads = if m * n * k >= PARALLEL_WORK {
        crate::threads::num_threads()
    } else {
        1
    };
    // Each thread packs the operand every chunk needs into its own buffer and claims chunks
    // of the other one at a time: all of B̃ per thread with row blocks of A claimed, or, when
    // A's block is the smaller one (the 64 output channels of a convolution, a batch of 128
    // against a wide weight), A's block per thread with runs of B̃'s panels claimed. Either
    // way each element of C is computed in one fixed order whatever the thread count or the
    // claiming order.
    let row_panels = m.div_ceil(mr);
    let col_panels = T::NC.min(n).div_ceil(nr);
    let split_cols = threads > 1 && m <= T::MC && m < T::NC.min(n) && col_panels >= 2 * threads;
    // Several chunks per thread, so a thread that runs slower for a while (this host slows
    // one vCPU at times) or starts late takes fewer of them.
    let max_panels = T::MC / mr;
    let blocks = if threads == 1 {
        row_panels.div_ceil(max_panels)
    } else if split_cols {
        1
    } else {
        // A multiple of the thread count, of at least 3 row panels each.
        let wanted = CHUNKS.min(row_panels / (3 * threads)).max(1) * threads;
        row_panels
            .div_ceil(max_panels)
            .next_multiple_of(threads)
            .max(wanted)
    };
    let plan = Plan {
        kernel,
        m,
        alpha,
        a,
        rsa,
        csa,
        b,
        rsb,
        csb,
        c,
        rsc,
        csc,
        blocks,
        threads,
        split_cols,
    };
    let kc_step = k_block(k, T::KC);
    for jc in (0..n).step_by(T::NC) {
        for pc in (0..k).step_by(kc_step) {
            let step = Step {
                jc,
                nc: T::NC.min(n - jc),
                pc,
                kc: kc_step.min(k - pc),
                beta: if pc == 0 { beta } else { T::one() },
            };
            let claims = Claims::new();
            if threads > 1 {
                // SAFETY: the caller's contract; claimed chunks are disjoint parts of C.
                crate::threads::parallel_for(threads, &|t| unsafe { plan.run(step, &claims, t) });
            } else {
                // SAFETY: the caller's contract.
                unsafe { plan.run(step, &claims, 0) };
            }
        }
    }
}

/// Chunks per thread in a parallel product.
const CHUNKS: usize = 3;

/// One blocked product: what every thread needs to take part in it.
///
/// A thread takes the plan by value, so its loops read nothing from the submitting
/// thread's stack, and it packs into its own buffers. Sharing one packed B̃ between the
/// threads would save packing it twice, but then each thread reads the half the other wrote,
/// and at times this host makes cross-vCPU cache transfers slow.
#[derive(Clone, Copy)]
struct Plan<T> {
    kernel: MicroKernel<T>,
    m: usize,
    alpha: T,
    a: *const T,
    rsa: isize,
    csa: isize,
    b: *const T,
    rsb: isize,
    csb: isize,
    c: *mut T,
    rsc: isize,
    csc: isize,
    /// Row blocks of A (of at most `MC` rows, whole row panels spread evenly).
    blocks: usize,
    /// Threads taking part.
    threads: usize,
    /// Whether threads claim runs of B̃'s panels (each packing all of A) rather than row
    /// blocks of A (each packing all of B̃).
    split_cols: bool,
}

/// One `(jc, pc)` step of the blocked loops: a `kc × nc` block of B against all of A.
#[derive(Clone, Copy)]
struct Step<T> {
    jc: usize,
    nc: usize,
    pc: usize,
    kc: usize,
    beta: T,
}

// SAFETY: the pointers are only dereferenced under `blocked`'s contract, and every chunk
// writes its own part of C.
unsafe impl<T> Send for Plan<T> {}
// SAFETY: as above: shared between the threads of one product, which read A and B and
// write disjoint parts of C.
unsafe impl<T> Sync for Plan<T> {}

impl<T: Float> Plan<T> {
    /// Takes part in `step` as task `task`: packs this thread's copy of the shared operand,
    /// then claims chunks until none is left.
    ///
    /// # Safety
    /// The operands are in bounds for their shapes and strides (`blocked`'s contract), and
    /// every thread working on the step claims from the same `claims`.
    unsafe fn run(self, step: Step<T>, claims: &Claims, task: usize) {
        let (mr, nr) = (T::MR, T::NR);
        let Step { jc, nc, pc, kc, .. } = step;
        let panels = nc.div_ceil(nr);
        let pack_b = |s0: usize, s1: usize, bbuf: &mut [T]| {
            let cols = (s1 * nr).min(nc) - s0 * nr;
            let at = pc as isize * self.rsb + (jc + s0 * nr) as isize * self.csb;
            // SAFETY: rows `pc .. pc + kc` and columns `jc + s0·NR ..` (`cols` of them, within
            // the step's `jc .. jc + nc`) of B are in bounds (the contract); `bbuf` is this
            // thread's and sized for `s1 − s0` panels by the caller.
            unsafe { pack::pack_b(kc, cols, self.b.offset(at), self.rsb, self.csb, bbuf) };
        };
        let pack_a = |ic: usize, mcb: usize, abuf: &mut [T]| {
            let at = ic as isize * self.rsa + pc as isize * self.csa;
            // SAFETY: rows `ic .. ic + mcb` (within `0 .. m`) and columns `pc .. pc + kc` of
            // A are in bounds (the contract); `abuf` is this thread's and sized for them.
            unsafe { pack::pack_a(mcb, kc, self.a.offset(at), self.rsa, self.csa, abuf) };
        };
        // A chunk is claimed before anything is packed: a thread that arrives when all are
        // taken (a helper that woke late, or the second pass of a nested call run serially)
        // returns at once instead of packing for nothing while the caller waits for it.
        // Each thread takes its own contiguous group of chunks first (see `Claims`), so it
        // writes the same part of C in every product while the threads keep pace.
        let claim = |count: usize| claims.claim(task, self.threads, count);
        if self.split_cols {
            // Runs of B̃'s panels: a multiple of the thread count, of at least 2 panels each.
            let threads = self.threads;
            let chunks = CHUNKS.min(panels / (2 * threads)).max(1) * threads;
            let Some(first) = claim(chunks) else {
                return;
            };
            let m = self.m;
            T::with_a_buf(m.div_ceil(mr) * mr * kc, |abuf| {
                pack_a(0, m, abuf);
                let mut chunk = Some(first);
                while let Some(c) = chunk {
                    let (s0, s1) = (panels * c / chunks, panels * (c + 1) / chunks);
                    T::with_b_buf((s1 - s0) * nr * kc, |bbuf| {
                        pack_b(s0, s1, bbuf);
                        // SAFETY: panels `s0 .. s1` were claimed by this thread alone, so no
                        // other thread writes their columns of C.
                        unsafe { self.tiles(step, abuf, 0, m, bbuf, s0, s1) };
                    });
                    chunk = claim(chunks);
                }
            });
        } else {
            let (row_panels, blocks) = (self.m.div_ceil(mr), self.blocks);
            let Some(first) = claim(blocks) else {
                return;
            };
            T::with_b_buf(panels * nr * kc, |bbuf| {
                pack_b(0, panels, bbuf);
                let mut block = Some(first);
                while let Some(blk) = block {
                    let p0 = row_panels * blk / blocks;
                    let p1 = row_panels * (blk + 1) / blocks;
                    let (ic, mcb) = (p0 * mr, (p1 * mr).min(self.m) - p0 * mr);
                    T::with_a_buf(mcb.div_ceil(mr) * mr * kc, |abuf| {
                        pack_a(ic, mcb, abuf);
                        // SAFETY: row block `blk` was claimed by this thread alone, so no
                        // other thread writes its rows of C.
                        unsafe { self.tiles(step, abuf, ic, mcb, bbuf, 0, panels) };
                    });
                    block = claim(blocks);
                }
            });
        }
    }

    /// The microkernel over rows `ic .. ic + mcb` (packed in `abuf`) and B̃ panels
    /// `s0 .. s1` of the step (packed in `bbuf`, from its start).
    ///
    /// # Safety
    /// As [`Plan::run`]; no other thread writes these rows and columns of C.
    #[allow(clippy::too_many_arguments)]
    unsafe fn tiles(
        &self,
        step: Step<T>,
        abuf: &[T],
        ic: usize,
        mcb: usize,
        bbuf: &[T],
        s0: usize,
        s1: usize,
    ) {
        let (mr, nr) = (T::MR, T::NR);
        let Step {
            jc, nc, kc, beta, ..
        } = step;
        for (panel, jr) in (s0 * nr..s1 * nr).step_by(nr).enumerate() {
            // SAFETY: the panels are inside the buffers, the tile inside C (contract).
            unsafe {
                let bpanel = bbuf.as_ptr().add(panel * nr * kc);
                for ir in (0..mcb).step_by(mr) {
                    let cij = self
                        .c
                        .offset((ic + ir) as isize * self.rsc + (jc + jr) as isize * self.csc);
                    (self.kernel)(
                        kc,
                        self.alpha,
                        abuf.as_ptr().add(ir / mr * mr * kc),
                        bpanel,
                        beta,
                        cij,
                        self.rsc,
                        self.csc,
                        mr.min(mcb - ir),
                        nr.min(nc - jr),
                    );
                }
            }
        }
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
    fn sizes_whose_extent_overflows_are_refused() {
        // 2^33 rows 2^31 apart: (m − 1)·stride + 1 = 2^64 + 1 wraps to 1 in unchecked
        // arithmetic, small enough to pass a length check; a stride beyond isize turns
        // negative as an offset.
        let a = vec![0f32; 16];
        let mut c = vec![0f32; 16];
        let one = MatLayout::row_major(1, false);
        for (m, la) in [
            (
                (1usize << 33) + 1,
                MatLayout {
                    row_stride: 1 << 31,
                    col_stride: 1,
                },
            ),
            (
                2,
                MatLayout {
                    row_stride: usize::MAX,
                    col_stride: 1,
                },
            ),
        ] {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                gemm(m, 1, 1, 1.0, &a, la, &a, one, 0.0, &mut c, one)
            }));
            assert!(r.is_err(), "{la:?} accepted");
        }
    }

    #[test]
    #[should_panic(expected = "A is too short")]
    fn short_operand_is_refused() {
        let mut c = [0.0f64; 4];
        let l = MatLayout::row_major(2, false);
        gemm(2, 2, 2, 1.0, &[1.0; 3], l, &[1.0; 4], l, 0.0, &mut c, l);
    }

    /// Every operand layout: plain, transposed, and padded (row stride larger than the width).
    #[derive(Clone, Copy, Debug)]
    enum Form {
        Plain,
        Transposed,
        Padded,
    }

    /// A `rows × cols` operand stored in `form`: (data, layout).
    fn operand(rows: usize, cols: usize, form: Form, seed: u64) -> (Vec<f64>, MatLayout) {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f64 / 1000.0 - 1.0
        };
        match form {
            Form::Plain => (
                (0..rows * cols).map(|_| next()).collect(),
                MatLayout::row_major(cols, false),
            ),
            Form::Transposed => (
                (0..rows * cols).map(|_| next()).collect(),
                MatLayout::row_major(rows, true),
            ),
            Form::Padded => (
                (0..rows * (cols + 3)).map(|_| next()).collect(),
                MatLayout {
                    row_stride: cols + 3,
                    col_stride: 1,
                },
            ),
        }
    }

    fn reference(
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

    fn check_sizes<T: Float>(kernel: MicroKernel<T>, sizes: &[usize], tol: f64) {
        let forms = [Form::Plain, Form::Transposed, Form::Padded];
        for &m in sizes {
            for &k in sizes {
                for &n in sizes {
                    for (f, (fa, fb)) in forms
                        .iter()
                        .flat_map(|&x| forms.iter().map(move |&y| (x, y)))
                        .enumerate()
                    {
                        let (a, la) = operand(m, k, fa, (m * 31 + k * 7 + n + f) as u64);
                        let (b, lb) = operand(k, n, fb, (m + k * 13 + n * 5 + f) as u64 + 99);
                        let want = reference(m, k, n, &a, la, &b, lb);
                        let (at, bt): (Vec<T>, Vec<T>) = (
                            a.iter().map(|&v| T::from_f64(v)).collect(),
                            b.iter().map(|&v| T::from_f64(v)).collect(),
                        );
                        // C with a padded row stride, pre-filled with NaN: β = 0 must not read it.
                        let lc = MatLayout {
                            row_stride: n + 2,
                            col_stride: 1,
                        };
                        let mut c = vec![T::nan(); m * (n + 2)];
                        gemm_with(
                            kernel,
                            m,
                            k,
                            n,
                            T::one(),
                            &at,
                            la,
                            &bt,
                            lb,
                            T::zero(),
                            &mut c,
                            lc,
                        );
                        for i in 0..m {
                            for j in 0..n {
                                let got = c[i * (n + 2) + j].as_f64();
                                let w = want[i * n + j];
                                assert!((got - w).abs() <= tol * (1.0 + w.abs()) * (k as f64).sqrt().max(1.0), "{}: m={m} k={k} n={n} {fa:?}×{fb:?} at ({i},{j}): {got} vs {w}", T::DTYPE);
                            }
                        }
                        // β = 1 accumulates into C; α scales.
                        let mut c2: Vec<T> = vec![T::one(); m * (n + 2)];
                        gemm_with(
                            kernel,
                            m,
                            k,
                            n,
                            T::from_f64(2.0),
                            &at,
                            la,
                            &bt,
                            lb,
                            T::one(),
                            &mut c2,
                            lc,
                        );
                        for i in 0..m {
                            for j in 0..n {
                                let got = c2[i * (n + 2) + j].as_f64();
                                let w = 2.0 * want[i * n + j] + 1.0;
                                assert!(
                                    (got - w).abs()
                                        <= 2.0 * tol * (1.0 + w.abs()) * (k as f64).sqrt().max(1.0),
                                    "{}: β=1 m={m} k={k} n={n}",
                                    T::DTYPE
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_size_to_20_in_every_layout_with_each_kernel() {
        let sizes: Vec<usize> = (0..=20).collect();
        check_sizes::<f64>(f64::micro_kernel(), &sizes, 1e-13);
        check_sizes::<f64>(f64::portable_kernel(), &sizes, 1e-13);
        check_sizes::<f32>(f32::micro_kernel(), &sizes, 1e-5);
        check_sizes::<f32>(f32::portable_kernel(), &sizes, 1e-5);
    }

    #[test]
    fn odd_and_block_crossing_sizes() {
        // Across MC, KC and NR boundaries, with the blocked path and both threads.

        for &(m, k, n) in &[
            (300, 257, 33),
            (127, 300, 257),
            (33, 7, 300),
            (257, 127, 1),
            (1, 257, 127),
            (253, 513, 130),
        ] {
            for kernel in [f64::micro_kernel(), f64::portable_kernel()] {
                let (a, la) = operand(m, k, Form::Plain, 5);
                let (b, lb) = operand(k, n, Form::Transposed, 6);
                let want = reference(m, k, n, &a, la, &b, lb);
                let mut c = vec![0.0; m * n];
                gemm_with(
                    kernel,
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
                for (x, y) in c.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-11, "m={m} k={k} n={n}");
                }
            }
        }
    }

    #[test]
    fn agrees_with_matrixmultiply() {
        for &(m, k, n) in &[(64, 64, 64), (128, 200, 96), (255, 513, 129)] {
            let (a, la) = operand(m, k, Form::Plain, 11);
            let (b, lb) = operand(k, n, Form::Plain, 12);
            let (a32, b32): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&v| v as f32).collect(),
                b.iter().map(|&v| v as f32).collect(),
            );
            let mut ours = vec![0f32; m * n];
            let mut theirs = vec![0f32; m * n];
            gemm(
                m,
                k,
                n,
                1.0,
                &a32,
                la,
                &b32,
                lb,
                0.0,
                &mut ours,
                MatLayout::row_major(n, false),
            );
            // SAFETY: the three buffers have exactly the extents of their layouts.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a32.as_ptr(),
                    k as isize,
                    1,
                    b32.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    theirs.as_mut_ptr(),
                    n as isize,
                    1,
                );
            }
            for (x, y) in ours.iter().zip(&theirs) {
                assert!(
                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                    "{m}x{k}x{n}: {x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // Tall (rows split between threads) and short-and-wide (columns split).
        for (m, k, n) in [(301, 700, 259), (64, 288, 784), (10, 300, 900)] {
            let (a, la) = operand(m, k, Form::Plain, 21);
            let (b, lb) = operand(k, n, Form::Plain, 22);
            let (a32, b32): (Vec<f32>, Vec<f32>) = (
                a.iter().map(|&v| v as f32).collect(),
                b.iter().map(|&v| v as f32).collect(),
            );
            let run = |threads: usize| {
                crate::threads::with_num_threads(threads, || {
                    let mut c = vec![0f32; m * n];
                    gemm(
                        m,
                        k,
                        n,
                        1.0,
                        &a32,
                        la,
                        &b32,
                        lb,
                        0.0,
                        &mut c,
                        MatLayout::row_major(n, false),
                    );
                    c
                })
            };
            let one = run(1);
            assert_eq!(one, run(2), "{m}x{k}x{n}");
            assert_eq!(one, run(3), "{m}x{k}x{n}");
            let want = naive(m, k, n, &a, la, &b, lb);
            for (x, y) in one.iter().zip(&want) {
                assert!((*x as f64 - y).abs() < 1e-3, "{m}x{k}x{n}");
            }
        }
    }
}

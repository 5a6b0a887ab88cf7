//! The five-loop blocked product (see the module above for the loop nest): blocking,
//! the split between threads, and each thread's part.

use super::{pack, MicroKernel, Operands};
use crate::threads::Claims;
use crate::Float;

/// The depth of the K blocks for a product of depth `k`, given the preferred depth `kc`:
/// one block up to a quarter over `kc`, else equal blocks of at most `kc`. A fixed step
/// leaves a thin last block (a 3×3×32 convolution has `k = 288 = 256 + 32`), where the
/// microkernel spends more on loading and storing its tile of C than on multiplying.
pub(super) fn k_block(k: usize, kc: usize) -> usize {
    if k <= kc + kc / 4 {
        k.max(1)
    } else {
        k.div_ceil(k.div_ceil(kc))
    }
}

/// Products up to this many multiply-adds stay on one thread.
///
/// A parallel region costs a few cross-core handoffs, which some hosts make ten times
/// slower at times; a 64³ product (a few microseconds of work) stays on one thread, as MKL
/// keeps it. The measurements are in docs/performance.md, "Two threads on this host".
const PARALLEL_WORK: usize = (1 << 18) + 1;

/// The five-loop blocked product.
///
/// # Safety
/// The operands are in bounds and C aliases neither A nor B (see [`Operands`]).
pub(super) unsafe fn blocked<T: Float>(kernel: MicroKernel<T>, op: Operands<T>) {
    let (m, k, n) = (op.m, op.k, op.n);
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
    // Several chunks per thread, so a thread that runs slower for a while or starts late
    // takes fewer of them (docs/performance.md, "Two threads on this host").
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
        op,
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
                beta: if pc == 0 { op.beta } else { T::one() },
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
/// and cross-core cache transfers can be slow (docs/performance.md, "Two threads on this
/// host").
#[derive(Clone, Copy)]
struct Plan<T> {
    kernel: MicroKernel<T>,
    /// The product (its `k`, `n` and `beta` are the steps' business).
    op: Operands<T>,
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
        let op = &self.op;
        let Step { jc, nc, pc, kc, .. } = step;
        let panels = nc.div_ceil(nr);
        let pack_b = |s0: usize, s1: usize, bbuf: &mut [T]| {
            let cols = (s1 * nr).min(nc) - s0 * nr;
            let at = pc as isize * op.rsb + (jc + s0 * nr) as isize * op.csb;
            // SAFETY: rows `pc .. pc + kc` and columns `jc + s0·NR ..` (`cols` of them, within
            // the step's `jc .. jc + nc`) of B are in bounds (the contract); `bbuf` is this
            // thread's and sized for `s1 − s0` panels by the caller.
            unsafe { pack::pack_b(kc, cols, op.b.offset(at), op.rsb, op.csb, bbuf) };
        };
        let pack_a = |ic: usize, mcb: usize, abuf: &mut [T]| {
            let at = ic as isize * op.rsa + pc as isize * op.csa;
            // SAFETY: rows `ic .. ic + mcb` (within `0 .. m`) and columns `pc .. pc + kc` of
            // A are in bounds (the contract); `abuf` is this thread's and sized for them.
            unsafe { pack::pack_a(mcb, kc, op.a.offset(at), op.rsa, op.csa, abuf) };
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
            let m = op.m;
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
            let (row_panels, blocks) = (op.m.div_ceil(mr), self.blocks);
            let Some(first) = claim(blocks) else {
                return;
            };
            T::with_b_buf(panels * nr * kc, |bbuf| {
                pack_b(0, panels, bbuf);
                let mut block = Some(first);
                while let Some(blk) = block {
                    let p0 = row_panels * blk / blocks;
                    let p1 = row_panels * (blk + 1) / blocks;
                    let (ic, mcb) = (p0 * mr, (p1 * mr).min(op.m) - p0 * mr);
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
        let op = &self.op;
        for (panel, jr) in (s0 * nr..s1 * nr).step_by(nr).enumerate() {
            // SAFETY: the panels are inside the buffers, the tile inside C (contract).
            unsafe {
                let bpanel = bbuf.as_ptr().add(panel * nr * kc);
                for ir in (0..mcb).step_by(mr) {
                    let cij =
                        op.c.offset((ic + ir) as isize * op.rsc + (jc + jr) as isize * op.csc);
                    (self.kernel)(
                        kc,
                        op.alpha,
                        abuf.as_ptr().add(ir / mr * mr * kc),
                        bpanel,
                        beta,
                        cij,
                        op.rsc,
                        op.csc,
                        mr.min(mcb - ir),
                        nr.min(nc - jr),
                    );
                }
            }
        }
    }
}

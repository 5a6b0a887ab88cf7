//! Element-wise maps over slices, vectorised and split over threads.
//!
//! Every map here cuts its range into fixed pieces of [`CHUNK`] elements. Large ranges
//! (from [`PARALLEL_MIN`] elements) hand the pieces to the thread pool; small ones run them
//! in order on the calling thread. Each element is computed by the same code whatever
//! thread runs its piece, so results never depend on the thread count. The loops run inside
//! [`crate::simd::with_avx2`], so they are 8 lanes wide on CPUs with AVX2.
//!
//! ```
//! use tapegrad_kernels::elementwise;
//! let x = vec![1.0f32, 2.0, 3.0];
//! let mut y = vec![0.0f32; 3];
//! elementwise::map(&x, &mut y, |v| 2.0 * v + 1.0);
//! assert_eq!(y, [3.0, 5.0, 7.0]);
//! ```

use std::ops::Range;

use crate::simd::with_avx2;
use crate::threads::parallel_for;

/// Elements per piece of work (64 KiB of f32: a piece's inputs and output stay in L2).
pub const CHUNK: usize = 1 << 14;

/// Ranges shorter than this skip the dispatch (no AVX2 copy, no pieces): a plain loop is
/// faster than the machinery for a handful of elements.
const TINY: usize = 32;

/// Ranges shorter than this run on the calling thread alone: below it, waking a second
/// thread costs more than it saves.
pub const PARALLEL_MIN: usize = 1 << 16;

/// Calls `body` on the pieces `[k·CHUNK, min((k+1)·CHUNK, n))` of `0..n`, on the pool's
/// threads when `n ≥ PARALLEL_MIN`. Pieces are disjoint and cover `0..n` exactly once.
pub fn for_chunks(n: usize, body: &(dyn Fn(Range<usize>) + Sync)) {
    if n < PARALLEL_MIN {
        if n > 0 {
            body(0..n);
        }
        return;
    }
    parallel_for(n.div_ceil(CHUNK), &|k| {
        body(k * CHUNK..((k + 1) * CHUNK).min(n))
    });
}

/// A raw output pointer that may cross threads: each piece writes a disjoint range.
#[derive(Clone, Copy)]
pub(crate) struct Out<U>(pub(crate) *mut U);
// SAFETY: used only to write disjoint ranges of one slice, each from one thread.
unsafe impl<U: Send> Send for Out<U> {}
// SAFETY: as above.
unsafe impl<U: Send> Sync for Out<U> {}

impl<U> Out<U> {
    /// The piece `r` of the output.
    ///
    /// # Safety
    /// `r` lies inside the slice this pointer came from, and no other live reference
    /// covers it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn piece(&self, r: Range<usize>) -> &mut [U] {
        // SAFETY: `r` lies inside the slice (so the offset and the length stay in its
        // allocation) and nothing else refers to it (the contract).
        unsafe { std::slice::from_raw_parts_mut(self.0.add(r.start), r.len()) }
    }
}

/// Runs `body(range, output piece)` over `out` in pieces (see [`for_chunks`]).
pub fn chunked<U: Send>(out: &mut [U], body: impl Fn(Range<usize>, &mut [U]) + Sync) {
    let n = out.len();
    let o = Out(out.as_mut_ptr());
    for_chunks(n, &|r| {
        // SAFETY: the pieces are disjoint sub-ranges of `out`, borrowed mutably here.
        let piece = unsafe { o.piece(r.clone()) };
        body(r, piece)
    });
}

/// Runs `body(b, block)` for each consecutive block of `block` elements of `out` (the last
/// may be shorter), on the pool's threads when `out` holds at least `PARALLEL_MIN`
/// elements. Blocks are grouped into tasks of about `CHUNK` elements; each block is
/// processed by one call whatever the thread count.
pub fn for_blocks<U: Send>(out: &mut [U], block: usize, body: impl Fn(usize, &mut [U]) + Sync) {
    let n = out.len();
    if n == 0 {
        return;
    }
    let block = block.max(1);
    let blocks = n.div_ceil(block);
    let per_task = (CHUNK / block).max(1);
    let o = Out(out.as_mut_ptr());
    let task = |t: usize| {
        for b in t * per_task..((t + 1) * per_task).min(blocks) {
            let r = b * block..((b + 1) * block).min(n);
            // SAFETY: blocks are disjoint sub-ranges of `out`, each visited once.
            body(b, unsafe { o.piece(r) });
        }
    };
    let tasks = blocks.div_ceil(per_task);
    if n < PARALLEL_MIN {
        (0..tasks).for_each(task);
    } else {
        parallel_for(tasks, &task);
    }
}

/// Runs `body(b, block)` for each consecutive block of `block` elements of `out`, one task
/// per block, always offered to the pool: for blocks that are each a lot of work whatever
/// their size (an image of a convolution, a run of images' weight gradients).
pub fn for_heavy_blocks<U: Send>(
    out: &mut [U],
    block: usize,
    body: impl Fn(usize, &mut [U]) + Sync,
) {
    let n = out.len();
    let block = block.max(1);
    let o = Out(out.as_mut_ptr());
    parallel_for(n.div_ceil(block), &|b| {
        let r = b * block..((b + 1) * block).min(n);
        // SAFETY: blocks are disjoint sub-ranges of `out`, each visited once.
        body(b, unsafe { o.piece(r) });
    });
}

/// `out[k] = f(piece k)` for the pieces of `0..n` (see [`for_chunks`]): one value per piece,
/// computed on the pool's threads when `n ≥ PARALLEL_MIN`. The building block of
/// reductions whose result must not depend on the thread count.
///
/// # Panics
/// If `out` does not hold exactly `n.div_ceil(CHUNK)` values.
pub fn per_chunk<U: Send>(n: usize, out: &mut [U], f: impl Fn(Range<usize>) -> U + Sync) {
    assert_eq!(
        out.len(),
        n.div_ceil(CHUNK),
        "per_chunk: one output per piece"
    );
    let o = Out(out.as_mut_ptr());
    for_chunks(n, &|r| {
        let k = r.start / CHUNK;
        // SAFETY: piece `k` writes only `out[k]`, and every piece runs once.
        unsafe { o.piece(k..k + 1)[0] = f(r) };
    });
}

/// `out[i] = f(a[i])`.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn map<A: Copy + Sync, U: Send>(a: &[A], out: &mut [U], f: impl Fn(A) -> U + Sync + Copy) {
    assert_eq!(a.len(), out.len(), "map: input and output lengths differ");
    if out.len() < TINY {
        for (o, &x) in out.iter_mut().zip(a) {
            *o = f(x);
        }
        return;
    }
    chunked(out, |r, o| {
        let a = &a[r];
        with_avx2(
            #[inline(always)]
            || {
                // A local copy: its captures sit in registers, not behind a pointer the
                // compiler must assume the output may alias.
                let kernel = f;
                for (o, &x) in o.iter_mut().zip(a) {
                    *o = kernel(x);
                }
            },
        )
    });
}

/// `a[i] = f(a[i])`, in place.
#[inline]
pub fn map_inplace<A: Copy + Send>(a: &mut [A], f: impl Fn(A) -> A + Sync + Copy) {
    if a.len() < TINY {
        for x in a.iter_mut() {
            *x = f(*x);
        }
        return;
    }
    chunked(a, |_, o| {
        with_avx2(
            #[inline(always)]
            || {
                // A local copy: its captures sit in registers, not behind a pointer the
                // compiler must assume the output may alias.
                let kernel = f;
                for x in o.iter_mut() {
                    *x = kernel(*x);
                }
            },
        )
    });
}

/// `a[i] = f(a[i], b[i])`, in place (an update: `p ← p − lr·g`).
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn zip_inplace<A: Copy + Send, B: Copy + Sync>(
    a: &mut [A],
    b: &[B],
    f: impl Fn(A, B) -> A + Sync + Copy,
) {
    assert_eq!(a.len(), b.len(), "zip_inplace: lengths differ");
    if a.len() < TINY {
        for (x, &y) in a.iter_mut().zip(b) {
            *x = f(*x, y);
        }
        return;
    }
    chunked(a, |r, o| {
        let b = &b[r];
        with_avx2(
            #[inline(always)]
            || {
                let kernel = f;
                for (x, &y) in o.iter_mut().zip(b) {
                    *x = kernel(*x, y);
                }
            },
        )
    });
}

/// `out[i] = f(a[i], b[i])`.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn zip<A: Copy + Sync, B: Copy + Sync, U: Send>(
    a: &[A],
    b: &[B],
    out: &mut [U],
    f: impl Fn(A, B) -> U + Sync + Copy,
) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "zip: input and output lengths differ"
    );
    if out.len() < TINY {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = f(x, y);
        }
        return;
    }
    chunked(out, |r, o| {
        let (a, b) = (&a[r.clone()], &b[r]);
        with_avx2(
            #[inline(always)]
            || {
                // A local copy: its captures sit in registers, not behind a pointer the
                // compiler must assume the output may alias.
                let kernel = f;
                for ((o, &x), &y) in o.iter_mut().zip(a).zip(b) {
                    *o = kernel(x, y);
                }
            },
        )
    });
}

/// `out[i] = f(a[i], b[i], c[i])`.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn zip3<A: Copy + Sync, B: Copy + Sync, C: Copy + Sync, U: Send>(
    a: &[A],
    b: &[B],
    c: &[C],
    out: &mut [U],
    f: impl Fn(A, B, C) -> U + Sync + Copy,
) {
    assert!(
        a.len() == out.len() && b.len() == out.len() && c.len() == out.len(),
        "zip3: input and output lengths differ"
    );
    if out.len() < TINY {
        for (((o, &x), &y), &z) in out.iter_mut().zip(a).zip(b).zip(c) {
            *o = f(x, y, z);
        }
        return;
    }
    chunked(out, |r, o| {
        let (a, b, c) = (&a[r.clone()], &b[r.clone()], &c[r]);
        with_avx2(
            #[inline(always)]
            || {
                // A local copy: its captures sit in registers, not behind a pointer the
                // compiler must assume the output may alias.
                let kernel = f;
                for (((o, &x), &y), &z) in o.iter_mut().zip(a).zip(b).zip(c) {
                    *o = kernel(x, y, z);
                }
            },
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads::with_num_threads;

    #[test]
    fn every_element_is_written_once_for_any_length() {
        for n in [
            0,
            1,
            7,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            PARALLEL_MIN + 3,
            3 * PARALLEL_MIN,
        ] {
            let a: Vec<u64> = (0..n as u64).collect();
            let mut out = vec![u64::MAX; n];
            map(&a, &mut out, |v| v * 3);
            assert!(
                out.iter().enumerate().all(|(i, &v)| v == 3 * i as u64),
                "n={n}"
            );
            let mut c = vec![0u64; n];
            zip3(&a, &out, &a, &mut c, |x, y, z| x + y - z);
            assert_eq!(c, out);
            map_inplace(&mut c, |v| v / 3);
            assert_eq!(c, a);
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let n = 5 * PARALLEL_MIN + 17;
        let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
        let run = |threads| {
            with_num_threads(threads, || {
                let mut out = vec![0.0f32; n];
                zip(&a, &b, &mut out, |x, y| x.mul_add(y, x / (1.0 + y * y)));
                out
            })
        };
        let one = run(1);
        let two = run(2);
        assert!(one
            .iter()
            .zip(&two)
            .all(|(x, y)| x.to_bits() == y.to_bits()));
    }
}

//! A global allocator that counts the bytes held and the most held at once, for measuring
//! the peak memory of a training step (`benches/checkpoint_memory.rs`,
//! `examples/functional.rs`). Install it with
//! `#[global_allocator] static A: peak_memory::Counting = peak_memory::Counting;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Forwards to the system allocator and keeps count.
pub struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn add(n: usize) {
    let now = HELD.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn sub(n: usize) {
    HELD.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every call forwards to the system allocator with the caller's arguments; the
// counters are only arithmetic on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        add(l.size());
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        add(l.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        sub(l.size());
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        add(new);
        sub(l.size());
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
}

/// What [`peak_during`] measured: bytes above those held when `f` started.
pub struct Peak {
    /// The most held at once while `f` ran.
    pub peak: usize,
    /// Still held when `f` returned (what its result owns).
    pub kept: usize,
}

/// The peak of the bytes held while `f` runs and what is still held after it (both above
/// what was held when it started), and what `f` returned. Turn tapegrad's buffer pool off
/// first (`tapegrad::core::memory::set_pool_limit(0)`), or freed tensors stay counted.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (Peak, R) {
    let start = HELD.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let r = f();
    let peak = Peak {
        peak: PEAK.load(Ordering::Relaxed) - start,
        kept: HELD.load(Ordering::Relaxed).saturating_sub(start),
    };
    (peak, r)
}

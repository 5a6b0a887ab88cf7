//! Tensor memory: reference-counted buffers recycled through a per-thread pool.
//!
//! Every tensor of more than four elements keeps its data in one `Buffer`: a single
//! allocation holding a reference count, the length and the elements (64-byte aligned, so
//! vector loads never straddle a cache line at the start). When the last tensor reading a
//! buffer goes away, the block is not freed but kept in a pool of the thread that dropped it,
//! binned by size; the next tensor of a similar size takes it back. A training loop, which
//! builds the same shapes at every step, therefore stops calling the allocator after its
//! first step, and its large buffers stay mapped (no page faults, no zeroing by the kernel).
//!
//! The pool holds at most [`pool_limit`] bytes per thread (default 1 GiB, or
//! `TAPEGRAD_POOL_BYTES`); blocks beyond it are freed at once. [`trim_pool`] frees what the
//! calling thread holds, [`pool_stats`] reports it.
//!
//! ```
//! use tapegrad_core::{memory, Tensor};
//! let before = memory::pool_stats();
//! drop(Tensor::<f32>::zeros([1000]));
//! let after = memory::pool_stats();
//! assert!(after.held_bytes > before.held_bytes); // kept for the next tensor
//! let t = Tensor::<f32>::ones([1000]); // takes it back
//! assert_eq!(memory::pool_stats().held_bytes, before.held_bytes);
//! # drop(t);
//! ```

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::RefCell;
use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::OnceLock;

use crate::tensor::{sealed::Sealed, Element};

/// Bytes before the elements: the header, padded so the data starts on a cache line.
const DATA_OFFSET: usize = 64;
/// Alignment of every block (and so of every element slice).
const ALIGN: usize = 64;

#[repr(C)]
struct Header {
    refs: AtomicUsize,
    len: usize,
    /// Size of the whole block in bytes: its size class, which is also its `Layout` size.
    block: usize,
}

/// A shared, immutable-unless-unique run of `len` elements of `E` (the heap storage of a
/// tensor). Cloning increments a count; the last drop returns the block to the pool.
pub(crate) struct Buffer<E: Element> {
    ptr: NonNull<Header>,
    _marker: PhantomData<E>,
}

// SAFETY: a buffer is an `Arc<[E]>` in all but name: the count is atomic and the elements are
// only written through `&mut self` when the count is one.
unsafe impl<E: Element> Send for Buffer<E> {}
// SAFETY: as above; shared access only reads.
unsafe impl<E: Element> Sync for Buffer<E> {}

impl<E: Element> Buffer<E> {
    /// A buffer of `len` elements filled by `fill`, which must write every element.
    ///
    /// The slice handed to `fill` holds valid but unspecified values (a recycled block keeps
    /// what it held; a fresh one is zeroed; types with invalid bit patterns, like `bool`,
    /// are reset to their default first), so nothing unsound can be read from it.
    ///
    /// # Errors
    /// [`AllocError`] (and `fill` is not called) if `len` elements do not fit in one
    /// allocation (more than `isize::MAX` bytes) or the allocator refuses the block.
    #[inline]
    pub(crate) fn try_new_with(
        len: usize,
        fill: impl FnOnce(&mut [E]),
    ) -> Result<Self, AllocError> {
        debug_assert!(std::mem::align_of::<E>() <= ALIGN);
        let bytes = block_bytes::<E>(len).ok_or(AllocError { bytes: None })?;
        let (block, size) = acquire(bytes)?;
        let header = block.cast::<Header>();
        // SAFETY: `block` is a fresh or recycled block of `size >= bytes` bytes, aligned to
        // 64, owned by nobody else; the header fits in the first `DATA_OFFSET` bytes.
        unsafe {
            header.as_ptr().write(Header {
                refs: AtomicUsize::new(1),
                len,
                block: size,
            });
        }
        let buf = Buffer {
            ptr: header,
            _marker: PhantomData,
        };
        if !<E as Sealed>::ANY_BIT_PATTERN {
            let data: *mut E = buf.data_ptr();
            for i in 0..len {
                // SAFETY: `i < len` and the block holds `DATA_OFFSET + len · size_of::<E>()`
                // bytes (checked in `block_bytes`); writes a valid value before any read.
                unsafe { data.add(i).write(E::default()) };
            }
        }
        // SAFETY: the data region holds `len` elements (checked above); every byte of it is
        // initialised (zeroed by the allocator or written by an earlier user) and valid for
        // `E` (any pattern is valid for `E`, or the elements were just reset); the buffer is
        // unique, so nothing else reads or writes it while `fill` runs.
        fill(unsafe { std::slice::from_raw_parts_mut(buf.data_ptr(), len) });
        Ok(buf)
    }

    /// A buffer holding a copy of `src`.
    ///
    /// # Panics
    /// If the allocator refuses the block (the copy of a slice that exists always fits).
    #[track_caller]
    pub(crate) fn from_slice(src: &[E]) -> Self {
        match Self::try_new_with(src.len(), |out| out.copy_from_slice(src)) {
            Ok(b) => b,
            Err(e) => panic!("{e}"),
        }
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the header was written when the block was acquired and lives as long as
        // any handle to the buffer; it is only read through `&` (the count is atomic).
        unsafe { self.ptr.as_ref() }
    }

    #[inline]
    fn data_ptr(&self) -> *mut E {
        // SAFETY: the data region starts `DATA_OFFSET` bytes into the block, which is at
        // least that long, so the offset stays inside the allocation.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(DATA_OFFSET).cast::<E>() }
    }

    /// The elements.
    #[inline]
    pub(crate) fn as_slice(&self) -> &[E] {
        // SAFETY: `len` initialised elements follow the header; shared access only reads.
        unsafe { std::slice::from_raw_parts(self.data_ptr(), self.header().len) }
    }

    /// The elements, writable: copies them into a buffer of its own first if this one is
    /// shared (copy-on-write).
    #[inline]
    pub(crate) fn make_mut(&mut self) -> &mut [E] {
        if self.header().refs.load(Ordering::Acquire) != 1 {
            *self = Self::from_slice(self.as_slice());
        }
        // SAFETY: the count is one, so this handle is the only one; `&mut self` excludes
        // every other use of it.
        unsafe { std::slice::from_raw_parts_mut(self.data_ptr(), self.header().len) }
    }

    /// Whether both handles read the same block.
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}

impl<E: Element> Clone for Buffer<E> {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed is enough to take a new reference from an existing one (as in `Arc`).
        let old = self.header().refs.fetch_add(1, Ordering::Relaxed);
        assert!(old < isize::MAX as usize, "buffer reference count overflow");
        Buffer {
            ptr: self.ptr,
            _marker: PhantomData,
        }
    }
}

impl<E: Element> Drop for Buffer<E> {
    #[inline]
    fn drop(&mut self) {
        if self.header().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other handle's accesses happen before the block is reused (as in `Arc`).
        fence(Ordering::Acquire);
        let size = self.header().block;
        release(self.ptr.cast::<u8>(), size);
    }
}

// ---------------------------------------------------------------- the pool

/// Block size classes: multiples of 64 bytes up to 1 KiB, then four classes per doubling
/// (so a block wastes at most a quarter of its size; the unused tail of a large block is
/// never written, so its pages are never made resident).
fn size_class(bytes: usize) -> (usize, usize) {
    if bytes <= 1024 {
        let units = bytes.div_ceil(64).max(1);
        return (units - 1, units * 64);
    }
    // 2^e < bytes <= 2^(e+1); classes 2^e · {1.25, 1.5, 1.75, 2}.
    let e = (usize::BITS - 1 - (bytes - 1).leading_zeros()) as usize;
    let step = 1usize << (e - 2);
    let k = (bytes - (1usize << e)).div_ceil(step); // 1..=4
    (16 + (e - 10) * 4 + (k - 1), (1usize << e) + k * step)
}

struct Pool {
    bins: Vec<Vec<NonNull<u8>>>,
    held: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for (class, bin) in self.bins.iter_mut().enumerate() {
            let size = class_size(class);
            for block in bin.drain(..) {
                free_block(block, size);
            }
        }
    }
}

fn class_size(class: usize) -> usize {
    if class < 16 {
        (class + 1) * 64
    } else {
        let (e, k) = (10 + (class - 16) / 4, (class - 16) % 4 + 1);
        (1usize << e) + k * (1usize << (e - 2))
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { bins: Vec::new(), held: 0 }) };
}

static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);
static LIMIT_INIT: OnceLock<()> = OnceLock::new();

fn limit() -> usize {
    LIMIT_INIT.get_or_init(|| {
        let from_env = std::env::var("TAPEGRAD_POOL_BYTES")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        // A value set by `set_pool_limit` before the first use wins over the default.
        let _ = LIMIT.compare_exchange(
            usize::MAX,
            from_env.unwrap_or(1 << 30),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    });
    LIMIT.load(Ordering::Relaxed)
}

/// The bytes of a block holding `len` elements of `E` after the header, or `None` when
/// that is more than one allocation can hold (`isize::MAX` bytes).
fn block_bytes<E>(len: usize) -> Option<usize> {
    len.checked_mul(std::mem::size_of::<E>())
        .and_then(|b| b.checked_add(DATA_OFFSET))
        .filter(|&b| b <= isize::MAX as usize)
}

/// Why a buffer could not be had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AllocError {
    /// The bytes asked of the allocator; `None` when the count does not fit in one
    /// allocation at all.
    pub(crate) bytes: Option<usize>,
}

impl std::fmt::Display for AllocError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.bytes {
            Some(b) => write!(f, "the allocator refused a block of {b} bytes"),
            None => f.write_str("the buffer would exceed isize::MAX bytes"),
        }
    }
}

fn free_block(block: NonNull<u8>, size: usize) {
    // The layout was valid when the block was allocated with it, so it is valid now.
    let l = Layout::from_size_align(size, ALIGN).expect("the layout a block was allocated with");
    // SAFETY: every block was allocated by `acquire` with this same layout, and is freed
    // once (it left the pool, or never entered it).
    unsafe { dealloc(block.as_ptr(), l) }
}

/// A block of at least `bytes` bytes: from the pool if one of its class is free, else fresh
/// (zeroed) from the allocator. Returns the block and its size.
#[inline]
fn acquire(bytes: usize) -> Result<(NonNull<u8>, usize), AllocError> {
    let (class, size) = size_class(bytes);
    let recycled = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            let block = p.bins.get_mut(class)?.pop()?;
            p.held -= size;
            Some(block)
        })
        .ok()
        .flatten();
    if let Some(block) = recycled {
        return Ok((block, size));
    }
    fresh_block(size).map(|b| (b, size))
}

/// A zeroed block of `size` bytes (a size class) from the allocator.
#[cold]
fn fresh_block(size: usize) -> Result<NonNull<u8>, AllocError> {
    let refused = AllocError { bytes: Some(size) };
    // A size class above `isize::MAX` (the class of a count just under it) has no layout.
    let l = Layout::from_size_align(size, ALIGN).map_err(|_| refused)?;
    // SAFETY: `l` has a non-zero size (at least 64 bytes).
    let raw = unsafe { alloc_zeroed(l) };
    NonNull::new(raw).ok_or(refused)
}

/// Makes sure that the next buffer of `len` elements of `E` this thread asks for can be
/// had: when the pool holds no block of its size class, one is taken from the allocator
/// now and kept in the pool, where that buffer will find it. An op whose output size comes
/// from its arguments calls this before it computes anything, so that an output too large
/// for the machine is an error of its `try_` form instead of a panic deep in a kernel.
///
/// # Errors
/// [`AllocError`] if no such block can be allocated.
pub(crate) fn try_reserve<E: Element>(len: usize) -> Result<(), AllocError> {
    let bytes = block_bytes::<E>(len).ok_or(AllocError { bytes: None })?;
    let (class, size) = size_class(bytes);
    let held = POOL
        .try_with(|p| p.borrow().bins.get(class).is_some_and(|b| !b.is_empty()))
        .unwrap_or(false);
    if held {
        return Ok(());
    }
    let block = fresh_block(size)?;
    // Kept even beyond the pool's limit: it is taken back by the very next buffer of its
    // class, and the limit applies again when that buffer is released.
    let kept = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            if p.bins.len() <= class {
                p.bins.resize_with(class + 1, Vec::new);
            }
            p.bins[class].push(block);
            p.held += size;
        })
        .is_ok();
    if !kept {
        free_block(block, size);
    }
    Ok(())
}

#[inline]
fn release(block: NonNull<u8>, size: usize) {
    let class = size_class(size).0;
    let limit = limit();
    let kept = POOL
        .try_with(|p| {
            let mut p = p.borrow_mut();
            if p.held + size > limit {
                return false;
            }
            if p.bins.len() <= class {
                p.bins.resize_with(class + 1, Vec::new);
            }
            p.bins[class].push(block);
            p.held += size;
            true
        })
        .unwrap_or(false);
    if !kept {
        free_block(block, size);
    }
}

/// What the calling thread's pool holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Free blocks kept for reuse.
    pub blocks: usize,
    /// Their total size in bytes.
    pub held_bytes: usize,
}

/// What the calling thread's pool holds.
pub fn pool_stats() -> PoolStats {
    POOL.try_with(|p| {
        let p = p.borrow();
        PoolStats {
            blocks: p.bins.iter().map(Vec::len).sum(),
            held_bytes: p.held,
        }
    })
    .unwrap_or_default()
}

/// Frees every block the calling thread's pool holds.
pub fn trim_pool() {
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        for class in 0..p.bins.len() {
            let size = class_size(class);
            for block in std::mem::take(&mut p.bins[class]) {
                free_block(block, size);
            }
        }
        p.held = 0;
    });
}

/// The most bytes a thread's pool keeps (blocks released beyond it are freed).
pub fn pool_limit() -> usize {
    limit()
}

/// Sets the most bytes each thread's pool keeps; `0` turns recycling off. Pools already over
/// the new limit shrink as their blocks are taken, not at once (call [`trim_pool`]).
pub fn set_pool_limit(bytes: usize) {
    limit();
    LIMIT.store(bytes, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_cover_every_size_with_bounded_waste() {
        let mut last = (0, 64);
        for bytes in 1..200_000usize {
            let (class, size) = size_class(bytes);
            assert!(size >= bytes, "{bytes} -> {size}");
            assert_eq!(class_size(class), size, "class {class}");
            assert!(class >= last.0 && (class > last.0 || size == last.1));
            if bytes > 1024 {
                assert!(
                    size as f64 <= bytes as f64 * 1.25 + 1.0,
                    "{bytes} -> {size}"
                );
            }
            last = (class, size);
        }
    }

    #[test]
    fn blocks_are_recycled_and_data_is_aligned() {
        trim_pool();
        let a = Buffer::<f32>::try_new_with(1000, |s| s.fill(1.5)).unwrap();
        assert_eq!(a.as_slice().as_ptr() as usize % 64, 0);
        let p = a.as_slice().as_ptr();
        drop(a);
        assert_eq!(pool_stats().blocks, 1);
        // Same class (f64 of half the count has the same byte size): the same block.
        let b = Buffer::<f64>::try_new_with(500, |s| s.fill(2.0)).unwrap();
        assert_eq!(b.as_slice().as_ptr() as usize, p as usize);
        assert_eq!(pool_stats().blocks, 0);
        assert!(b.as_slice().iter().all(|&v| v == 2.0));
    }

    #[test]
    fn bool_buffers_start_from_valid_values() {
        trim_pool();
        drop(Buffer::<u8>::try_new_with(100, |s| s.fill(7)).unwrap());
        let b = Buffer::<bool>::try_new_with(100, |_| {}).unwrap();
        assert!(b.as_slice().iter().all(|&v| !v));
    }

    #[test]
    fn copy_on_write_and_counting() {
        let a = Buffer::<f64>::try_new_with(10, |s| s.fill(1.0)).unwrap();
        let mut b = a.clone();
        assert!(a.ptr_eq(&b));
        b.make_mut()[0] = 5.0;
        assert!(!a.ptr_eq(&b));
        assert_eq!(a.as_slice()[0], 1.0);
        assert_eq!(b.as_slice()[0], 5.0);
        let mut c = b.clone();
        drop(b);
        let p = c.as_slice().as_ptr();
        c.make_mut()[1] = 3.0; // unique again: written in place
        assert_eq!(c.as_slice().as_ptr(), p);
    }

    #[test]
    fn a_buffer_dropped_on_another_thread_goes_to_that_threads_pool() {
        let a = Buffer::<f32>::try_new_with(64, |s| s.fill(1.0)).unwrap();
        let h = std::thread::spawn(move || {
            let s: f32 = a.as_slice().iter().sum();
            drop(a);
            (s, pool_stats().blocks)
        });
        assert_eq!(h.join().unwrap(), (64.0, 1));
    }
}

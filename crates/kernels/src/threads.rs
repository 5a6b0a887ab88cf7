//! The kernels' thread pool: a parallel `for` over task indices in which the calling thread
//! takes part.
//!
//! Why not rayon: a rayon fork from a thread outside its pool (a user's main thread) costs
//! about 20 µs here (the job is injected, the caller sleeps, a worker wakes — measured with
//! `examples/fork_cost.rs`), as long as a whole 128³ matrix product. This pool hands work to
//! helpers that spin for a short while before parking, as OpenMP runtimes do, so a fork
//! costs well under a microsecond when the helpers are warm, and the caller computes its
//! share instead of waiting.
//!
//! Tasks are fixed chunks chosen by the caller, and results are combined by task index, so
//! nothing depends on how many threads run them. A call made while another is running (from
//! another thread, or from inside a task) runs its tasks serially on its own thread.
//!
//! The thread count is `TAPEGRAD_NUM_THREADS` if set, else the number of CPUs this process
//! may use; [`set_num_threads`] changes it for the process, and [`with_num_threads`] for the
//! work one thread submits while a closure runs (what a test comparing thread counts needs:
//! the count it sets is really the one its own work uses, whatever other tests running at
//! the same time set).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// Groups a job's tasks are cut into (threads beyond this share groups).
const GROUPS: usize = 8;

/// Counters for handing out the items `0..count` cut into one contiguous group per thread,
/// each group with its own counter on a cache line of its own.
///
/// A thread takes the items of its own group in order, then what is left of the following
/// groups. While the threads keep pace, the same thread gets the same items every time, so
/// the data it writes stays in its core's cache (with one shared counter, which thread got
/// which item changed from call to call and the written cache lines moved between the
/// cores, which this host makes slow at times); a thread that falls behind has the rest of
/// its group taken from it.
pub(crate) struct Claims([Counter; GROUPS]);

/// A counter on a cache line of its own.
#[repr(align(64))]
struct Counter(AtomicUsize);

impl Claims {
    pub(crate) fn new() -> Self {
        Claims(std::array::from_fn(|_| Counter(AtomicUsize::new(0))))
    }

    /// The next item of `0..count` for thread `me` (0-based) when `threads` threads take
    /// part, or `None` when all are taken.
    pub(crate) fn claim(&self, me: usize, threads: usize, count: usize) -> Option<usize> {
        let groups = threads.min(count).clamp(1, GROUPS);
        (0..groups).map(|k| (me + k) % groups).find_map(|g| {
            let (start, end) = (count * g / groups, count * (g + 1) / groups);
            let i = start + self.0[g].0.fetch_add(1, Ordering::Relaxed);
            (i < end).then_some(i)
        })
    }
}

/// A job: `f(i)` for `i in 0..n`, shared with the helpers through raw pointers; the caller
/// keeps it alive until every helper has let go of it. Tasks are handed out through
/// [`Claims`]: the caller runs the first group, helper `h` group `h + 1`, then each takes
/// what is left.
struct Job {
    f: *const (dyn Fn(usize) + Sync),
    n: usize,
    threads: usize,
    next: Claims,
    finished: AtomicUsize,
}

struct Pool {
    /// Odd while a job is open; +1 on open and +1 on close.
    state: AtomicU64,
    /// Helpers currently registered on the open job.
    refs: AtomicUsize,
    job: AtomicPtrJob,
    /// Serialises submitters: a busy pool runs new work on the caller's thread.
    submit: Mutex<()>,
    park: Mutex<usize>,
    wake: Condvar,
    /// Helpers spawned so far.
    spawned: Mutex<usize>,
    /// Threads that take part in jobs (caller included), unless the submitter set its own.
    threads: AtomicUsize,
    /// The most helpers there can be (lowered if the system refuses to spawn more).
    helpers_allowed: AtomicUsize,
}

/// An atomic pointer to the current job (a thin wrapper: `AtomicPtr` needs a sized type).
struct AtomicPtrJob(std::sync::atomic::AtomicPtr<Job>);

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::env::var("TAPEGRAD_NUM_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Pool {
            state: AtomicU64::new(0),
            refs: AtomicUsize::new(0),
            job: AtomicPtrJob(std::sync::atomic::AtomicPtr::new(std::ptr::null_mut())),
            submit: Mutex::new(()),
            park: Mutex::new(0),
            wake: Condvar::new(),
            spawned: Mutex::new(0),
            threads: AtomicUsize::new(threads),
            helpers_allowed: AtomicUsize::new(usize::MAX),
        }
    })
}

thread_local! {
    /// The count set by [`with_num_threads`] on this thread, if any.
    static SCOPED: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// The number of threads kernels use for work submitted from the calling thread (the
/// caller included): its [`with_num_threads`] count, else the process's.
pub fn num_threads() -> usize {
    SCOPED
        .try_with(|s| s.get())
        .ok()
        .flatten()
        .unwrap_or_else(|| pool().threads.load(Ordering::Relaxed))
}

/// Runs `f` with the kernels it calls from this thread using `n` threads (at least 1); the
/// count before is restored afterwards, also when `f` panics. Other threads are not
/// affected, and results do not depend on the count.
///
/// ```
/// use tapegrad_kernels::threads::{num_threads, with_num_threads};
/// let outside = num_threads();
/// with_num_threads(1, || assert_eq!(num_threads(), 1));
/// assert_eq!(num_threads(), outside);
/// ```
pub fn with_num_threads<R>(n: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = SCOPED.try_with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(SCOPED.with(|s| s.replace(Some(n.max(1)))));
    f()
}

/// Sets the number of threads kernels use (at least 1), for the whole process (threads
/// inside [`with_num_threads`] keep theirs). Results do not depend on it.
pub fn set_num_threads(n: usize) {
    pool().threads.store(n.max(1), Ordering::Relaxed);
}

/// Runs tasks of the open job as thread `me` (0 for the caller) until none is left.
fn work(job: &Job, me: usize) {
    let mut done = 0;
    while let Some(i) = job.next.claim(me, job.threads, job.n) {
        // SAFETY: the submitter keeps the closure alive until the job is closed and no
        // helper holds a reference (see `parallel_for`).
        unsafe { (*job.f)(i) };
        done += 1;
    }
    if done > 0 {
        job.finished.fetch_add(done, Ordering::AcqRel);
    }
}

fn helper_loop(index: usize) {
    let p = pool();
    let mut seen = 0u64;
    loop {
        // Wait for a job opened after the last one seen: spin, then park.
        let start = Instant::now();
        let s = loop {
            let s = p.state.load(Ordering::Acquire);
            if s != seen && s % 2 == 1 {
                break s;
            }
            if start.elapsed() > SPIN {
                let mut parked = p.park.lock().unwrap_or_else(|e| e.into_inner());
                *parked += 1;
                while {
                    let s = p.state.load(Ordering::Acquire);
                    s == seen || s % 2 == 0
                } {
                    parked = p.wake.wait(parked).unwrap_or_else(|e| e.into_inner());
                }
                *parked -= 1;
                continue;
            }
            std::hint::spin_loop();
        };
        seen = s;
        // Register, then check the job is still the one seen: a closed job is never touched.
        p.refs.fetch_add(1, Ordering::AcqRel);
        if p.state.load(Ordering::Acquire) == s {
            let job = p.job.0.load(Ordering::Acquire);
            // SAFETY: registered on the open job `s`, which is still open, so the submitter
            // has not returned (it waits for `refs` to drop) and `job` points at its `Job`.
            let job = unsafe { &*job };
            // Helpers beyond the job's own thread count stay out of it.
            if index + 1 < job.threads {
                work(job, index + 1);
            }
        }
        p.refs.fetch_sub(1, Ordering::AcqRel);
    }
}

fn ensure_helpers(p: &'static Pool, wanted: usize) {
    let mut spawned = p.spawned.lock().unwrap_or_else(|e| e.into_inner());
    while *spawned < wanted {
        let index = *spawned;
        let ok = std::thread::Builder::new()
            .name(format!("tapegrad-{index}"))
            .spawn(move || helper_loop(index))
            .is_ok();
        if !ok {
            // No more threads: the pool keeps the helpers it has.
            p.helpers_allowed.store(*spawned, Ordering::Relaxed);
            break;
        }
        *spawned += 1;
    }
}

/// Runs `f(i)` for every `i in 0..n`, spread over the pool's threads (the caller takes
/// part), and returns when all have finished. With one thread, one task, or a busy pool, the
/// tasks run in order on the calling thread.
pub fn parallel_for(n: usize, f: &(dyn Fn(usize) + Sync)) {
    let p = pool();
    let helpers = (num_threads() - 1).min(p.helpers_allowed.load(Ordering::Relaxed));
    if n <= 1 || helpers == 0 {
        (0..n).for_each(f);
        return;
    }
    let Ok(_guard) = p.submit.try_lock() else {
        (0..n).for_each(f);
        return;
    };
    ensure_helpers(p, helpers);
    // SAFETY: a lifetime erasure only (same layout): the job and `f` live on this stack
    // frame, and this function does not return before the job is closed and no helper is
    // registered on it, so no helper uses `f` after it ends.
    let f: *const (dyn Fn(usize) + Sync) = unsafe {
        std::mem::transmute::<&(dyn Fn(usize) + Sync), &'static (dyn Fn(usize) + Sync)>(f)
    };
    let job = Job {
        f,
        n,
        threads: helpers + 1,
        next: Claims::new(),
        finished: AtomicUsize::new(0),
    };
    p.job
        .0
        .store(&job as *const Job as *mut Job, Ordering::Release);
    p.state.fetch_add(1, Ordering::AcqRel); // open
    if *p.park.lock().unwrap_or_else(|e| e.into_inner()) > 0 {
        p.wake.notify_all();
    }
    work(&job, 0);
    while job.finished.load(Ordering::Acquire) < n {
        std::hint::spin_loop();
    }
    p.state.fetch_add(1, Ordering::AcqRel); // close
    while p.refs.load(Ordering::Acquire) > 0 {
        std::hint::spin_loop();
    }
}

/// Whether this process has spawned pool threads (for tests).
#[doc(hidden)]
pub fn helpers_spawned() -> usize {
    *pool().spawned.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_whatever_the_thread_count() {
        for threads in [1, 2, 3] {
            with_num_threads(threads, || {
                for n in [0, 1, 2, 7, 100] {
                    let hits: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                    parallel_for(n, &|i| {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    });
                    assert!(
                        hits.iter().all(|h| h.load(Ordering::Relaxed) == 1),
                        "threads {threads}, n {n}"
                    );
                }
            });
        }
    }

    #[test]
    fn a_scoped_count_is_the_callers_alone_and_is_restored() {
        let outside = num_threads();
        let seen = with_num_threads(3, || {
            // Another thread sees the process's count, not this one's.
            let other = std::thread::spawn(num_threads).join().unwrap();
            let inner = with_num_threads(1, num_threads);
            (num_threads(), other, inner)
        });
        assert_eq!(seen, (3, outside, 1));
        assert_eq!(num_threads(), outside);
        let r = std::panic::catch_unwind(|| with_num_threads(5, || panic!("in the scope")));
        assert!(r.is_err());
        assert_eq!(num_threads(), outside);
        // A job with a scoped count of 1 never leaves its thread.
        let me = std::thread::current().id();
        with_num_threads(1, || {
            parallel_for(64, &|_| assert_eq!(std::thread::current().id(), me));
        });
    }

    #[test]
    fn nested_and_concurrent_calls_run() {
        let total = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        parallel_for(4, &|_| {
                            parallel_for(3, &|_| {
                                total.fetch_add(1, Ordering::Relaxed);
                            });
                        });
                    }
                });
            }
        });
        with_num_threads(2, || {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        with_num_threads(2, || {
                            for _ in 0..200 {
                                parallel_for(4, &|_| {
                                    parallel_for(3, &|_| {
                                        total.fetch_add(1, Ordering::Relaxed);
                                    });
                                });
                            }
                        })
                    });
                }
            });
        });
        assert_eq!(total.load(Ordering::Relaxed), 2 * 4 * 200 * 4 * 3);
    }
}

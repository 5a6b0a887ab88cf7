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
//! may use; [`set_num_threads`] changes it.

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
    /// Threads that take part in jobs (caller included).
    threads: AtomicUsize,
    /// Helpers allowed to join jobs (`threads − 1`).
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
            helpers_allowed: AtomicUsize::new(threads - 1),
        }
    })
}

/// The number of threads kernels use (the caller included).
pub fn num_threads() -> usize {
    pool().threads.load(Ordering::Relaxed)
}

/// Sets the number of threads kernels use (at least 1). Results do not depend on it.
pub fn set_num_threads(n: usize) {
    let p = pool();
    let n = n.max(1);
    p.threads.store(n, Ordering::Relaxed);
    p.helpers_allowed.store(n - 1, Ordering::Relaxed);
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
        if index >= p.helpers_allowed.load(Ordering::Relaxed) {
            continue;
        }
        // Register, then check the job is still the one seen: a closed job is never touched.
        p.refs.fetch_add(1, Ordering::AcqRel);
        if p.state.load(Ordering::Acquire) == s {
            let job = p.job.0.load(Ordering::Acquire);
            // SAFETY: registered on the open job `s`; the submitter waits for `refs` to drop.
            work(unsafe { &*job }, index + 1);
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
    let helpers = p.helpers_allowed.load(Ordering::Relaxed);
    if n <= 1 || helpers == 0 {
        (0..n).for_each(f);
        return;
    }
    let Ok(_guard) = p.submit.try_lock() else {
        (0..n).for_each(f);
        return;
    };
    ensure_helpers(p, helpers);
    // SAFETY (lifetime erasure): the job and `f` live on this stack frame, and this function
    // does not return before the job is closed and no helper is registered on it.
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
            set_num_threads(threads);
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
        }
        set_num_threads(2);
    }

    #[test]
    fn nested_and_concurrent_calls_run() {
        set_num_threads(2);
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
        assert_eq!(total.load(Ordering::Relaxed), 4 * 200 * 4 * 3);
    }
}

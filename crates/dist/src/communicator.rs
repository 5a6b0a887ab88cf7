//! [`Communicator`]: the replicas of an `mpirun` job, as the [`Collective`] the `Trainer`
//! uses.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mpi::collective::SystemOperation;
use mpi::datatype::Equivalence;
use mpi::datatype::PartitionMut;
use mpi::environment::Universe;
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator as _, SimpleCommunicator};
use mpi::traits::{CommunicatorCollectives, Root};
use mpi::Threading;
use std::os::raw::c_int;
use tapegrad_core::{Error, Float, Gradients, ParamStore, Result};
use tapegrad_train::{Collective, GradientSync};

/// The most elements one MPI call moves (MPI counts are `i32`); longer buffers go in
/// pieces.
const MAX_COUNT: usize = 1 << 30;

/// The seconds a collective may wait before the watchdog ends the process, unless
/// `TAPEGRAD_DIST_TIMEOUT` or [`Communicator::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The process's place in an `mpirun` job: its rank among the job's processes, and the
/// collectives data-parallel training needs (sums, broadcast, gather, barrier), over MPI's
/// world communicator.
///
/// MPI is initialised when the communicator is made and finalised when it is dropped; a
/// process makes one. The calls are collective: every rank must make the same ones in the
/// same order, and MPI is only called from the thread that made the communicator.
///
/// A rank that dies does not leave the others waiting: `mpirun` ends the job when one of
/// its processes fails, and a watchdog ends this process with a message if a collective
/// waits longer than the timeout (300 s by default; the environment variable
/// `TAPEGRAD_DIST_TIMEOUT`, in seconds, or [`Communicator::with_timeout`] sets it).
///
/// ```no_run
/// use tapegrad_dist::Communicator;
/// let comm = Communicator::init().unwrap();
/// let mut x = [comm.rank() as f64];
/// tapegrad_train::Collective::sum_f64(&comm, &mut x).unwrap();
/// if comm.rank() == 0 {
///     println!("{} ranks, ranks sum to {}", comm.size(), x[0]);
/// }
/// ```
pub struct Communicator {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    scratch32: RefCell<Vec<f32>>,
    scratch64: RefCell<Vec<f64>>,
    /// The sums started ahead, by id (their buffers must stay put until they finish).
    ahead32: RefCell<Vec<Ahead<f32>>>,
    ahead64: RefCell<Vec<Ahead<f64>>>,
    watchdog: Watchdog,
    /// Finalises MPI when dropped, after everything above.
    _universe: Universe,
}

impl Communicator {
    /// Initialises MPI and joins the job's world communicator.
    ///
    /// # Errors
    /// [`Error::Argument`] if MPI is initialised already in this process, or cannot be, or
    /// if `TAPEGRAD_DIST_TIMEOUT` is not a number of seconds.
    pub fn init() -> Result<Communicator> {
        let timeout =
            match std::env::var("TAPEGRAD_DIST_TIMEOUT") {
                Ok(s) => Duration::from_secs_f64(
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|t| *t > 0.0)
                        .ok_or_else(|| {
                            Error::argument(
                        "Communicator::init",
                        format!("TAPEGRAD_DIST_TIMEOUT is `{s}`, not a positive number of seconds"),
                    )
                        })?,
                ),
                Err(_) => DEFAULT_TIMEOUT,
            };
        // Funneled: the compute pool's threads never call MPI; this one does.
        let (universe, _) =
            mpi::initialize_with_threading(Threading::Funneled).ok_or_else(|| {
                Error::argument(
                    "Communicator::init",
                    "MPI is initialised already in this process (make one Communicator)",
                )
            })?;
        let world = universe.world();
        let rank = usize::try_from(world.rank()).unwrap_or(0);
        let size = usize::try_from(world.size()).unwrap_or(1);
        Ok(Communicator {
            world,
            rank,
            size,
            scratch32: RefCell::new(Vec::new()),
            scratch64: RefCell::new(Vec::new()),
            ahead32: RefCell::new(Vec::new()),
            ahead64: RefCell::new(Vec::new()),
            watchdog: Watchdog::start(rank, timeout),
            _universe: universe,
        })
    }

    /// With another watchdog timeout: how long one collective may wait for the other ranks
    /// before this process ends with a message.
    pub fn with_timeout(mut self, timeout: Duration) -> Communicator {
        self.watchdog = Watchdog::start(self.rank, timeout);
        self
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes in the job.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether this is rank 0, the one that prints and writes files.
    pub fn is_root(&self) -> bool {
        self.rank == 0
    }

    /// Averages `grads` across the ranks in buckets (see [`GradientSync`]); the `Trainer`
    /// does this itself, this is for hand-written loops.
    ///
    /// # Errors
    /// As [`GradientSync::average`].
    pub fn average_gradients<T: Float>(
        &self,
        sync: &mut GradientSync<T>,
        store: &ParamStore<T>,
        grads: &mut Gradients<T>,
    ) -> Result<()> {
        sync.average(self, store, grads)
    }

    /// Rank 0's parameter values in `store` on every rank, after checking that every rank
    /// holds the same parameters (names, shapes, roles).
    ///
    /// # Errors
    /// [`Error::Argument`] naming the first rank and parameter that differ.
    pub fn broadcast_store<T: Float>(&self, store: &mut ParamStore<T>) -> Result<()> {
        tapegrad_train::parallel::check_same_model(self, store)?;
        let mut bytes = if self.rank == 0 {
            let mut ck = tapegrad_core::checkpoint::Checkpoint::new();
            ck.add_store(store);
            ck.to_bytes()?
        } else {
            Vec::new()
        };
        self.broadcast(&mut bytes, 0)?;
        if self.rank != 0 {
            let ck = tapegrad_core::checkpoint::Checkpoint::from_bytes(&bytes, "rank 0")?;
            ck.restore_store(store, &tapegrad_core::checkpoint::LoadOptions::strict())?;
        }
        Ok(())
    }

    /// Ends every process of the job at once with `code` (`MPI_Abort`).
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    /// Runs one collective under the watchdog.
    fn guarded<R>(&self, f: impl FnOnce() -> R) -> R {
        self.watchdog.enter();
        let r = f();
        self.watchdog.leave();
        r
    }

    fn sum_in_place<E>(&self, values: &mut [E], scratch: &RefCell<Vec<E>>)
    where
        E: Copy + mpi::datatype::Equivalence,
    {
        let mut scratch = scratch.borrow_mut();
        for chunk in values.chunks_mut(MAX_COUNT) {
            scratch.clear();
            scratch.extend_from_slice(chunk);
            self.guarded(|| {
                self.world
                    .all_reduce_into(&scratch[..], chunk, SystemOperation::sum())
            });
        }
    }
}

/// A sum started ahead (`MPI_Iallreduce`): its buffers and its request.
struct Ahead<E> {
    send: Vec<E>,
    recv: Vec<E>,
    request: ffi::MPI_Request,
    active: bool,
}

impl Communicator {
    /// Starts the non-blocking sum `id` of `values` (see [`Collective::start_sum_f32`]).
    fn start_ahead<E>(
        &self,
        table: &RefCell<Vec<Ahead<E>>>,
        id: usize,
        values: &[E],
    ) -> Result<bool>
    where
        E: Copy + Equivalence,
    {
        let Ok(count) = c_int::try_from(values.len()) else {
            return Ok(false); // too long for one call: summed in pieces, blocking
        };
        let mut table = table.borrow_mut();
        while table.len() <= id {
            table.push(Ahead {
                send: Vec::new(),
                recv: Vec::new(),
                // SAFETY: reading an immutable constant of the MPI library.
                request: unsafe { ffi::RSMPI_REQUEST_NULL },
                active: false,
            });
        }
        let a = &mut table[id];
        if a.active {
            return Err(Error::argument(
                "Communicator::start_sum",
                format!("sum {id} was started and not finished"),
            ));
        }
        a.send.clear();
        a.send.extend_from_slice(values);
        // The sum overwrites the whole receive buffer: it needs the length, not the values
        // (sized once, kept from step to step).
        if a.recv.len() != values.len() {
            a.recv.clear();
            a.recv.extend_from_slice(values);
        }
        // SAFETY: both buffers hold `count` elements of the datatype and stay allocated and
        // untouched until `finish_ahead` has waited for the request: they are written only
        // while `active` is false, and `Drop` waits for active requests before freeing them.
        // The communicator, the datatype and the operation are valid handles.
        unsafe {
            ffi::MPI_Iallreduce(
                a.send.as_ptr().cast(),
                a.recv.as_mut_ptr().cast(),
                count,
                E::equivalent_datatype().as_raw(),
                SystemOperation::sum().as_raw(),
                self.world.as_raw(),
                &mut a.request,
            );
        }
        a.active = true;
        // Let MPI move the sums started before (Open MPI progresses them inside its calls).
        for other in table.iter_mut().filter(|o| o.active) {
            let mut done: c_int = 0;
            // SAFETY: an active request of this communicator; a completed one becomes
            // MPI_REQUEST_NULL, which MPI_Wait accepts later.
            unsafe {
                ffi::MPI_Test(&mut other.request, &mut done, ffi::RSMPI_STATUS_IGNORE);
            }
        }
        Ok(true)
    }

    /// Waits for sum `id` and copies it into `out`.
    fn finish_ahead<E: Copy>(
        &self,
        table: &RefCell<Vec<Ahead<E>>>,
        id: usize,
        out: &mut [E],
    ) -> Result<()> {
        let mut table = table.borrow_mut();
        let a = match table.get_mut(id) {
            Some(a) if a.active => a,
            _ => {
                return Err(Error::argument(
                    "Communicator::finish_sum",
                    format!("no sum was started under {id}"),
                ))
            }
        };
        // SAFETY: the request is this communicator's, active or completed (null).
        self.guarded(|| unsafe {
            ffi::MPI_Wait(&mut a.request, ffi::RSMPI_STATUS_IGNORE);
        });
        a.active = false;
        if out.len() != a.recv.len() {
            return Err(Error::argument(
                "Communicator::finish_sum",
                format!(
                    "sum {id} has {} elements, the output {}",
                    a.recv.len(),
                    out.len()
                ),
            ));
        }
        out.copy_from_slice(&a.recv);
        Ok(())
    }

    /// Waits for every sum still running (before their buffers are freed).
    fn wait_all<E>(table: &RefCell<Vec<Ahead<E>>>) {
        for a in table.borrow_mut().iter_mut().filter(|a| a.active) {
            // SAFETY: an active request of this communicator, whose buffers are alive.
            unsafe {
                ffi::MPI_Wait(&mut a.request, ffi::RSMPI_STATUS_IGNORE);
            }
            a.active = false;
        }
    }
}

impl Drop for Communicator {
    fn drop(&mut self) {
        Self::wait_all(&self.ahead32);
        Self::wait_all(&self.ahead64);
    }
}

impl Collective for Communicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn sum_f32(&self, values: &mut [f32]) -> Result<()> {
        self.sum_in_place(values, &self.scratch32);
        Ok(())
    }

    fn sum_f64(&self, values: &mut [f64]) -> Result<()> {
        self.sum_in_place(values, &self.scratch64);
        Ok(())
    }

    fn start_sum_f32(&self, id: usize, values: &[f32]) -> Result<bool> {
        self.start_ahead(&self.ahead32, id, values)
    }

    fn start_sum_f64(&self, id: usize, values: &[f64]) -> Result<bool> {
        self.start_ahead(&self.ahead64, id, values)
    }

    fn finish_sum_f32(&self, id: usize, out: &mut [f32]) -> Result<()> {
        self.finish_ahead(&self.ahead32, id, out)
    }

    fn finish_sum_f64(&self, id: usize, out: &mut [f64]) -> Result<()> {
        self.finish_ahead(&self.ahead64, id, out)
    }

    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()> {
        let root_rank = i32::try_from(root)
            .ok()
            .filter(|_| root < self.size)
            .ok_or_else(|| {
                Error::argument(
                    "Communicator::broadcast",
                    format!("root {root} is not a rank of {}", self.size),
                )
            })?;
        let process = self.world.process_at_rank(root_rank);
        let mut len = bytes.len() as u64;
        self.guarded(|| process.broadcast_into(&mut len));
        let len = usize::try_from(len).map_err(|_| {
            Error::argument(
                "Communicator::broadcast",
                "the message does not fit in memory",
            )
        })?;
        bytes.resize(len, 0);
        for chunk in bytes.chunks_mut(MAX_COUNT) {
            self.guarded(|| process.broadcast_into(chunk));
        }
        Ok(())
    }

    fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let too_long = || {
            Error::argument(
                "Communicator::all_gather",
                format!("{} bytes: more than one gather of MPI carries", bytes.len()),
            )
        };
        let mine = i32::try_from(bytes.len()).map_err(|_| too_long())?;
        let mut counts = vec![0i32; self.size];
        self.guarded(|| self.world.all_gather_into(&mine, &mut counts[..]));
        let mut displs = Vec::with_capacity(self.size);
        let mut total = 0i64;
        for &c in &counts {
            displs.push(i32::try_from(total).map_err(|_| too_long())?);
            total += i64::from(c);
        }
        i32::try_from(total).map_err(|_| too_long())?;
        let mut all = vec![0u8; total as usize];
        {
            let mut part = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.guarded(|| self.world.all_gather_varcount_into(bytes, &mut part));
        }
        Ok(counts
            .iter()
            .zip(&displs)
            .map(|(&c, &d)| all[d as usize..(d + c) as usize].to_vec())
            .collect())
    }

    fn barrier(&self) -> Result<()> {
        self.guarded(|| self.world.barrier());
        Ok(())
    }
}

/// Ends the process if one collective waits longer than its timeout (a rank died or hung
/// and the launcher did not end the job).
struct Watchdog {
    /// Milliseconds since `epoch` at which the current collective started, or 0.
    since: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    epoch: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    fn start(rank: usize, timeout: Duration) -> Watchdog {
        let since = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let epoch = Instant::now();
        let (s, st) = (since.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("tapegrad-dist watchdog".into())
            .spawn(move || {
                let tick = timeout.min(Duration::from_millis(100));
                while !st.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    let t0 = s.load(Ordering::Relaxed);
                    let now = epoch.elapsed().as_millis() as u64;
                    if t0 != 0 && now.saturating_sub(t0) > timeout.as_millis() as u64 {
                        eprintln!(
                            "tapegrad-dist: rank {rank}: a collective has waited {:.1} s for the other ranks (timeout {:.1} s): a rank has died or stopped; ending this process",
                            (now - t0) as f64 / 1e3,
                            timeout.as_secs_f64()
                        );
                        std::process::abort();
                    }
                }
            })
            .ok();
        Watchdog {
            since,
            stop,
            epoch,
            thread,
        }
    }

    fn enter(&self) {
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.since.store(now, Ordering::Relaxed);
    }

    fn leave(&self) {
        self.since.store(0, Ordering::Relaxed);
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Data parallelism over MPI, on 2 ranks launched with `mpirun` from this test binary.
//!
//! Run by `.ci/run` (`cargo test -p tapegrad-dist --features mpi --test mpi`), which
//! installs Open MPI; the file needs the `mpi` feature, so the README's test command, on a
//! machine without MPI, does not build it. Without a scenario in `TAPEGRAD_DIST_SCENARIO`
//! the binary is the launcher: it runs every check below, each launching `mpirun -np 2` on
//! itself with a timeout. With one, it is a rank of that scenario.
//!
//! Every launch keeps MPI's traffic in shared memory and on the loopback interface.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tapegrad_core::checkpoint::Checkpoint;
use tapegrad_core::{seeded_rng, Float, ParamStore};
use tapegrad_data::read::digits;
use tapegrad_data::{DataLoader, TensorDataset, Uneven};
use tapegrad_dist::Communicator;
use tapegrad_nn::{BatchNorm, Dropout, Flatten, Init, Linear, Relu, Sequential};
use tapegrad_optim::{Adam, AdamConfig, Constant};
use tapegrad_train::{
    Checkpointer, Collective, EarlyStopping, HistoryWriter, Monitor, Progress, TrainConfig, Trainer,
};

const RANKS: usize = 2;

fn main() {
    match std::env::var("TAPEGRAD_DIST_SCENARIO") {
        Ok(s) => rank(&s),
        Err(_) => launcher(),
    }
}

// ------------------------------------------------------------------------------ launcher

/// `mpirun -np 2` on this binary, running `scenario`, its output piped.
fn spawn(scenario: &str, args: &[&str]) -> Child {
    Command::new("mpirun")
        .args(["-np", &RANKS.to_string(), "--oversubscribe"])
        .arg(std::env::current_exe().unwrap())
        .args(args)
        .env("TAPEGRAD_DIST_SCENARIO", scenario)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("OMPI_MCA_btl", "self,vader")
        .env("OMPI_MCA_oob_tcp_if_include", "lo")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("TAPEGRAD_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun (Open MPI) must be installed: apt-get install openmpi-bin libopenmpi-dev")
}

/// Waits for `child` at most `limit`; kills it and fails past that.
fn wait(mut child: Child, limit: Duration, what: &str) -> (bool, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return (status.success(), text);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what}: mpirun did not finish in {limit:?}; output:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `scenario` on 2 ranks; its output, after checking it succeeded.
fn run(scenario: &str, args: &[&str]) -> String {
    let (ok, out) = wait(spawn(scenario, args), Duration::from_secs(240), scenario);
    assert!(ok, "{scenario} failed:\n{out}");
    out
}

/// The value of every line `key value` of `out`.
fn values<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    out.lines()
        .filter_map(|l| l.strip_prefix(key).map(str::trim))
        .collect()
}

fn launcher() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test -- --list`
    }
    let checks: [(&str, fn()); 6] = [
        ("collectives", collectives_agree),
        (
            "equivalence",
            two_ranks_equal_one_process_with_twice_the_batch,
        ),
        ("syncbn", synchronised_batchnorm_sees_the_global_batch),
        ("mismatch", replicas_with_different_models_are_refused),
        ("trainer", the_trainer_reports_once_and_decides_the_same),
        (
            "kill",
            a_killed_rank_ends_the_job_and_the_checkpoint_resumes,
        ),
    ];
    for (name, check) in checks {
        let t = Instant::now();
        check();
        println!(
            "test mpi::{name} ... ok ({:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
}

fn collectives_agree() {
    let out = run("collectives", &[]);
    assert_eq!(values(&out, "collectives ok").len(), RANKS, "{out}");
}

fn two_ranks_equal_one_process_with_twice_the_batch() {
    let first = run("equivalence", &[]);
    let second = run("equivalence", &[]);
    for dtype in ["f64", "f32"] {
        let err: Vec<f64> = values(&first, &format!("equivalence {dtype} max_rel_diff"))
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(err.len(), 1, "{first}");
        let abs = values(&first, &format!("equivalence {dtype} max_abs_over_norm"));
        println!(
            "  {dtype}: 2 ranks × batch 16 against 1 process × batch 32, 30 Adam steps: ‖Δθ‖/‖θ‖ = {:.2e}, max |Δθ|/‖θ‖ = {}",
            err[0], abs[0]
        );
        // f64: rounding of a different summation order only. f32: the same, but Adam
        // divides by √v, so a weight whose gradient is near zero turns a last-bit
        // difference of its gradient into a visible step (it dominates the norm).
        let bound = if dtype == "f64" { 1e-12 } else { 1e-5 };
        assert!(err[0] < bound, "{dtype}: {}", err[0]);
        // The replicas hold the same bits, and a second job repeats them.
        let a = values(&first, &format!("equivalence {dtype} digest"));
        let b = values(&second, &format!("equivalence {dtype} digest"));
        assert_eq!(a.len(), RANKS, "{first}");
        assert!(a.iter().all(|d| *d == a[0]), "replicas differ: {a:?}");
        assert_eq!(a, b, "two runs on 2 ranks differ");
        let o = values(&first, &format!("equivalence {dtype} overlap digest"));
        assert_eq!(o, a, "overlapped sums change the steps");
    }
}

fn synchronised_batchnorm_sees_the_global_batch() {
    let out = run("syncbn", &[]);
    let get = |k: &str| -> f64 {
        let v = values(&out, k);
        assert_eq!(v.len(), 1, "{k}:\n{out}");
        v[0].parse().unwrap()
    };
    let (sync, local) = (get("syncbn synchronised"), get("syncbn per-rank"));
    println!(
        "  BatchNorm, 2 ranks × 16 against 1 process × 32, 30 steps, f64: ‖Δθ‖/‖θ‖ = {sync:.2e} synchronised, {local:.2e} per rank"
    );
    // Not 1e-16 as without it: the synchronised statistics are two passes of graph ops, the
    // single process's one fused kernel (another summation order, amplified by 1/σ and by
    // Adam's 1/√v over 30 steps).
    assert!(sync < 1e-9, "{sync}");
    // Per-rank statistics (the default, as PyTorch's BatchNorm under DDP) are another model.
    assert!(local > 1e-4, "{local}");
}

fn replicas_with_different_models_are_refused() {
    let out = run("mismatch", &[]);
    let msgs = values(&out, "mismatch error");
    assert_eq!(msgs.len(), RANKS, "{out}");
    assert!(msgs.iter().all(|m| *m == msgs[0]), "{msgs:?}");
    assert!(
        msgs[0].contains("replica 1 has `0.weight f32 [16, 64] Weight`"),
        "{}",
        msgs[0]
    );
}

fn the_trainer_reports_once_and_decides_the_same() {
    let dir = scratch("trainer");
    let out = run("trainer", &[dir.to_str().unwrap()]);
    // Early stopping stopped both replicas at the same epoch, with the same history.
    let ends = values(&out, "trainer outcome");
    assert_eq!(ends.len(), RANKS, "{out}");
    assert_eq!(ends[0], ends[1]);
    assert!(ends[0].contains("has not improved"), "{}", ends[0]);
    // Only replica 0 wrote the history and the checkpoints.
    assert!(dir.join("rank0/history.csv").exists());
    assert!(!dir.join("rank1").exists(), "replica 1 wrote files");
    assert!(dir.join("ck/last.ckpt").exists());
    // Progress lines from one replica only.
    let lines = out
        .lines()
        .filter(|l| {
            l.strip_prefix("epoch")
                .is_some_and(|r| r.trim_start().starts_with("1/"))
        })
        .count();
    assert_eq!(lines, 1, "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn a_killed_rank_ends_the_job_and_the_checkpoint_resumes() {
    let dir = scratch("kill");
    // The uninterrupted run.
    let full = run("checkpointed", &[dir.join("full").to_str().unwrap(), "0"]);
    let want = values(&full, "checkpointed digest");
    assert_eq!(want.len(), RANKS, "{full}");

    // The same run, with rank 1 killed once a checkpoint is on disk.
    let killed = dir.join("killed");
    let child = spawn("checkpointed", &[killed.to_str().unwrap(), "0"]);
    let ck = killed.join("ck/last.ckpt");
    let pid_file = killed.join("pid1");
    let start = Instant::now();
    while !(ck.exists() && pid_file.exists()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let status = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    let killed_at = Instant::now();
    let (ok, out) = wait(child, Duration::from_secs(30), "the job with a killed rank");
    let took = killed_at.elapsed();
    println!(
        "  rank 1 killed: the job ended in {:.2} s",
        took.as_secs_f64()
    );
    assert!(!ok, "the job succeeded although a rank was killed:\n{out}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(
        values(&out, "checkpointed digest").is_empty(),
        "rank 0 finished training alone:\n{out}"
    );

    // The last checkpoint is whole (its checksums verify), and resuming from it on 2 ranks
    // ends where the uninterrupted run ended.
    let saved = Checkpoint::load(&ck).expect("the last checkpoint is intact");
    let at: usize = saved.meta("trainer.epoch").unwrap().parse().unwrap();
    assert!(at < EPOCHS, "the checkpoint is at epoch {at}");
    let resumed = run(
        "checkpointed",
        &[killed.to_str().unwrap(), ck.to_str().unwrap()],
    );
    assert_eq!(
        values(&resumed, "checkpointed digest"),
        want,
        "resumed:\n{resumed}"
    );
    // A 2-rank checkpoint does not resume in a single process.
    let e = single_process_resume(&ck).unwrap_err().to_string();
    assert!(e.contains("2 replicas"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad-dist-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

// --------------------------------------------------------------------------------- ranks

fn rank(scenario: &str) {
    let comm = Rc::new(Communicator::init().unwrap());
    let args: Vec<String> = std::env::args().skip(1).collect();
    match scenario {
        "syncbn" => sync_batchnorm(&comm),
        "collectives" => collectives(&comm),
        "equivalence" => {
            equivalence::<f64>(&comm);
            equivalence::<f32>(&comm);
        }
        "mismatch" => mismatch(&comm),
        "trainer" => trainer(&comm, Path::new(&args[0])),
        "checkpointed" => checkpointed(&comm, Path::new(&args[0]), &args[1]),
        _ => panic!("no scenario {scenario}"),
    }
}

fn collectives(c: &Communicator) {
    let r = c.rank() as f64;
    let mut a: Vec<f64> = (0..1000).map(|i| i as f64 + r * 0.5).collect();
    c.sum_f64(&mut a).unwrap();
    assert!(a
        .iter()
        .enumerate()
        .all(|(i, &v)| v == 2.0 * i as f64 + 0.5));
    let mut b = vec![1.5f32 + r as f32; 7];
    c.sum_f32(&mut b).unwrap();
    assert!(b.iter().all(|&v| v == 4.0));
    let mut bytes = if c.rank() == 1 {
        b"from one".to_vec()
    } else {
        Vec::new()
    };
    c.broadcast(&mut bytes, 1).unwrap();
    assert_eq!(bytes, b"from one");
    let all = c.all_gather(&vec![c.rank() as u8; c.rank() * 3]).unwrap();
    assert_eq!(all, vec![vec![], vec![1u8; 3]]);
    assert!(c.broadcast(&mut bytes, 5).is_err());
    c.barrier().unwrap();
    println!("collectives ok {}", c.rank());
}

/// An MLP 64-32-10 on the digits, as every scenario trains it.
fn mlp<T: Float>(
    store: &mut ParamStore<T>,
    hidden: usize,
    seed: u64,
    dropout: f64,
) -> Sequential<T> {
    let mut rng = seeded_rng(seed);
    let mut m = Sequential::new()
        .push(Flatten::default())
        .push(Linear::new(
            store,
            "0",
            64,
            hidden,
            Init::HeNormal,
            &mut rng,
        ))
        .push(Relu);
    if dropout > 0.0 {
        m = m.push(Dropout::new(dropout));
    }
    m.push(Linear::new(
        store,
        "1",
        hidden,
        10,
        Init::HeNormal,
        &mut rng,
    ))
}

fn data<T: Float>(n: usize) -> TensorDataset<T> {
    let d = digits::<T>()
        .unwrap()
        .map_features(|x| x.div_scalar(T::from_f64(16.0)));
    d.subset(&(0..n).collect::<Vec<_>>())
}

fn digest<T: Float>(store: &ParamStore<T>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (_, p) in store.iter() {
        for v in p.value.as_slice() {
            for b in v.as_f64().to_bits().to_le_bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
            }
        }
    }
    format!("{h:016x}")
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        seed: 3,
        progress: Progress::Quiet,
        ..Default::default()
    }
}

/// Batches of 32 shuffled with seed 1; on `ranks`, this rank's shard of them, 16 a rank.
fn loader<'d, T: Float>(
    d: &'d TensorDataset<T>,
    ranks: Option<&Communicator>,
) -> DataLoader<'d, T, TensorDataset<T>> {
    match ranks {
        Some(c) => {
            DataLoader::new(d, 16)
                .with_shuffle(1)
                .with_shard(c.rank(), c.size(), Uneven::Pad)
        }
        None => DataLoader::new(d, 32).with_shuffle(1),
    }
}

/// 30 steps (3 epochs of 320 samples) at batch 16 on each of 2 ranks, beside one process
/// at batch 32, from the same initialisation; rank 0 compares.
fn equivalence<T: Float>(c: &Communicator) {
    let d = data::<T>(320);
    let steps_of =
        |store: &mut ParamStore<T>, model: &Sequential<T>, parallel: bool, overlap: bool| {
            let loader = loader(&d, parallel.then_some(c));
            let mut t = Trainer::new(model, Adam::new(AdamConfig::default()), Constant(1e-2))
                .with_config(config(3));
            if parallel {
                t = t
                    .with_data_parallel(c)
                    .with_overlap(overlap)
                    .with_bucket_bytes(16 << 10);
            }
            let out = t.fit_without_validation(store, &loader).unwrap();
            assert_eq!(out.steps, 30);
        };
    // Rank 1 starts from other weights: the broadcast gives it rank 0's.
    let mut store = ParamStore::<T>::new();
    let model = mlp(&mut store, 32, 7 + c.rank() as u64, 0.0);
    let mut single = store.clone();
    let mut ahead = store.clone();
    steps_of(&mut store, &model, true, false);
    println!("equivalence {} digest {}", T::DTYPE, digest(&store));
    // The same steps with each bucket's sum started during the backward pass.
    steps_of(&mut ahead, &model, true, true);
    println!("equivalence {} overlap digest {}", T::DTYPE, digest(&ahead));
    if c.rank() == 0 {
        steps_of(&mut single, &model, false, false);
        // ‖a − b‖ / ‖b‖ over all parameters, and the largest elementwise difference.
        let (mut diff, mut norm, mut worst) = (0.0f64, 0.0f64, 0.0f64);
        for ((_, a), (_, b)) in store.iter().zip(single.iter()) {
            for (&x, &y) in a.value.as_slice().iter().zip(b.value.as_slice()) {
                let (x, y) = (x.as_f64(), y.as_f64());
                diff += (x - y) * (x - y);
                norm += y * y;
                worst = worst.max((x - y).abs());
            }
        }
        let worst = worst / norm.sqrt();
        let rel = (diff / norm).sqrt();
        println!("equivalence {} max_abs_over_norm {worst:e}", T::DTYPE);
        let worst = rel;
        println!("equivalence {} max_rel_diff {worst:e}", T::DTYPE);
    }
}

/// 30 steps of an MLP with batch normalisation, 2 ranks × 16 against 1 process × 32:
/// synchronised and per-rank statistics.
fn sync_batchnorm(c: &Rc<Communicator>) {
    let d = data::<f64>(320);
    let build = |store: &mut ParamStore<f64>, sync: bool| {
        let mut rng = seeded_rng(4);
        let mut bn = BatchNorm::new_1d(store, "1", 32);
        if sync {
            bn = bn.with_sync(c.clone());
        }
        Sequential::new()
            .push(Flatten::default())
            .push(Linear::new(store, "0", 64, 32, Init::HeNormal, &mut rng))
            .push(bn)
            .push(Relu)
            .push(Linear::new(store, "3", 32, 10, Init::HeNormal, &mut rng))
    };
    let fit = |store: &mut ParamStore<f64>, model: &Sequential<f64>, ranks: bool| {
        let loader = loader(&d, ranks.then_some(&**c));
        let mut t = Trainer::new(model, Adam::new(AdamConfig::default()), Constant(1e-2))
            .with_config(config(3));
        if ranks {
            t = t.with_data_parallel(&**c);
        }
        t.fit_without_validation(store, &loader).unwrap();
    };
    let mut results = Vec::new();
    for sync in [true, false] {
        let mut store = ParamStore::new();
        let model = build(&mut store, sync);
        let mut single = ParamStore::new();
        let plain = build(&mut single, false);
        fit(&mut store, &model, true);
        fit(&mut single, &plain, false);
        // Parameters and running statistics.
        let (mut diff, mut norm) = (0.0, 0.0);
        for ((_, a), (_, b)) in store.iter().zip(single.iter()) {
            for (x, y) in a.value.as_slice().iter().zip(b.value.as_slice()) {
                diff += (x - y) * (x - y);
                norm += y * y;
            }
        }
        results.push((diff / norm).sqrt());
    }
    if c.rank() == 0 {
        println!("syncbn synchronised {:e}", results[0]);
        println!("syncbn per-rank {:e}", results[1]);
    }
}

fn mismatch(c: &Communicator) {
    let mut store = ParamStore::<f32>::new();
    let model = mlp(&mut store, if c.rank() == 0 { 32 } else { 16 }, 0, 0.0);
    let d = data::<f32>(64);
    let loader = DataLoader::new(&d, 16).with_shard(c.rank(), c.size(), Uneven::Pad);
    let mut t = Trainer::new(&model, Adam::new(AdamConfig::default()), Constant(1e-2))
        .with_config(config(1))
        .with_data_parallel(c);
    let e = t.fit_without_validation(&mut store, &loader).unwrap_err();
    println!("mismatch error {e}");
}

fn trainer(c: &Communicator, dir: &Path) {
    let d = data::<f32>(640);
    let (train, val) = (
        d.subset(&(0..512).collect::<Vec<_>>()),
        d.subset(&(512..640).collect::<Vec<_>>()),
    );
    let mut store = ParamStore::<f32>::new();
    let model = mlp(&mut store, 32, 0, 0.2);
    let loader =
        DataLoader::new(&train, 32)
            .with_shuffle(1)
            .with_shard(c.rank(), c.size(), Uneven::Pad);
    let val = DataLoader::new(&val, 64).with_shard(c.rank(), c.size(), Uneven::Pad);
    let mut t = Trainer::new(&model, Adam::new(AdamConfig::default()), Constant(3e-2))
        .with_config(TrainConfig {
            epochs: 200,
            seed: 5,
            progress: Progress::Lines,
            ..Default::default()
        })
        .with_callback(EarlyStopping::new(Monitor::ValLoss, 3))
        .with_callback(Checkpointer::new(dir.join("ck"), Monitor::ValLoss, 1))
        .with_callback(HistoryWriter::new(dir.join(format!("rank{}", c.rank()))))
        .with_data_parallel(c);
    let out = t.fit(&mut store, &loader, &val).unwrap();
    let h = t.history().last().unwrap();
    println!(
        "trainer outcome epochs {} stopped {:?} val_loss {:016x} digest {}",
        out.epochs,
        out.stopped,
        h.val_loss.to_bits(),
        digest(&store)
    );
}

const EPOCHS: usize = 12;

/// Trains `EPOCHS` epochs with a checkpoint after each, from `resume` unless it is "0";
/// writes this rank's pid to `dir/pid{rank}` after each epoch.
fn checkpointed(c: &Communicator, dir: &Path, resume: &str) {
    let d = data::<f64>(1024);
    let mut store = ParamStore::<f64>::new();
    let model = mlp(&mut store, 128, 0, 0.1);
    let loader =
        DataLoader::new(&d, 16)
            .with_shuffle(1)
            .with_shard(c.rank(), c.size(), Uneven::Pad);
    let mut t = Trainer::new(&model, Adam::new(AdamConfig::default()), Constant(1e-3))
        .with_config(config(EPOCHS))
        .with_callback(Checkpointer::new(dir.join("ck"), Monitor::TrainLoss, 1))
        .with_callback(PidFile(dir.join(format!("pid{}", c.rank()))))
        .with_data_parallel(c);
    if resume != "0" {
        t.resume(&mut store, resume).unwrap();
    }
    t.fit_without_validation(&mut store, &loader).unwrap();
    println!("checkpointed digest {}", digest(&store));
}

/// Writes the process id to a file after each epoch (for the test to kill it), and paces
/// the run at 150 ms an epoch, so that the kill lands in the middle of it.
struct PidFile(PathBuf);

impl<T: Float> tapegrad_train::Callback<T> for PidFile {
    fn name(&self) -> &str {
        "pid_file"
    }
    fn on_epoch_end(
        &mut self,
        _: &mut tapegrad_train::EpochEnd<'_, T>,
    ) -> tapegrad_core::Result<tapegrad_train::Control> {
        std::fs::create_dir_all(self.0.parent().unwrap()).unwrap();
        std::fs::write(&self.0, std::process::id().to_string()).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        Ok(tapegrad_train::Control::Continue)
    }
    fn save_state(&self, _: &mut Checkpoint, _: &str) {}
    fn load_state(&mut self, _: &Checkpoint, _: &str) -> tapegrad_core::Result<()> {
        Ok(())
    }
}

fn single_process_resume(ck: &Path) -> tapegrad_core::Result<()> {
    let mut store = ParamStore::<f64>::new();
    let model = mlp(&mut store, 128, 0, 0.1);
    let mut t = Trainer::new(&model, Adam::new(AdamConfig::default()), Constant(1e-3))
        .with_config(config(EPOCHS))
        .with_callback(Checkpointer::new("unused", Monitor::TrainLoss, 1))
        .with_callback(PidFile("unused".into()));
    t.resume(&mut store, ck)
}

//! A steady-state training step allocates nothing.
//!
//! This test binary installs a global allocator that counts every allocation. It trains an
//! MLP (Linear, BatchNorm, ReLU, Dropout) and a small CNN (Conv2d, BatchNorm2d, max
//! pooling) with cross-entropy, Adam with weight decay and gradient clipping for 99 steps
//! each, then counts the allocations of step 100: the tape, its nodes, every tensor buffer,
//! the gradients' containers, the data-parallel gradient buckets and the optimizer's state
//! are reused, so the count is zero.
//! Then the same for a whole epoch driven by a `DataLoader` (shuffled, augmented, the last
//! batch partial, dropout masks from the per-step random streams): the batches are written
//! into pooled buffers and the permutation's vector is reused, so epoch 5 allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rand::rngs::StdRng;
use tapegrad::data::rng::{stream_rng, Stream};
use tapegrad::data::RandomTranslate;
use tapegrad::optim::{clip_grad_norm, Adam, AdamConfig, NormType, Optimizer};
use tapegrad::prelude::*;
use tapegrad::train::{Collective, GradientSync};

struct Counting;

static COUNT: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);
static ON: AtomicBool = AtomicBool::new(false);
/// `TAPEGRAD_ALLOC_TRACE=1`: print where each counted allocation comes from.
static TRACE: AtomicBool = AtomicBool::new(false);

/// Counts one allocation of `size` bytes (and prints its backtrace when tracing).
fn record(size: usize) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    COUNT.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(size, Ordering::Relaxed);
    if TRACE.load(Ordering::Relaxed) {
        ON.store(false, Ordering::SeqCst); // the backtrace allocates
        let bt = std::backtrace::Backtrace::force_capture().to_string();
        let frames: Vec<&str> = bt
            .lines()
            .filter(|l| l.contains("tapegrad") && !l.contains(" at ") && !l.contains("zero_alloc"))
            .take(8)
            .collect();
        eprintln!("allocation of {size} bytes:\n{}", frames.join("\n"));
        ON.store(true, Ordering::SeqCst);
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        record(l.size());
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        record(l.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        record(new);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocations (count, bytes) made while `f` runs.
fn counted(f: impl FnOnce()) -> (usize, usize) {
    TRACE.store(
        std::env::var_os("TAPEGRAD_ALLOC_TRACE").is_some(),
        Ordering::SeqCst,
    );
    COUNT.store(0, Ordering::SeqCst);
    BYTES.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    f();
    ON.store(false, Ordering::SeqCst);
    (COUNT.load(Ordering::SeqCst), BYTES.load(Ordering::SeqCst))
}

/// Trains `model` on `(x, y)` for 100 steps (cross-entropy, Adam with weight decay, gradient
/// clipping) and returns the allocations of step 100 and the losses.
fn allocations_of_step_100(
    model: &Sequential<f32>,
    store: &mut ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
) -> ((usize, usize), Vec<f32>) {
    let mut rng = seeded_rng(1);
    let mut opt = Adam::new(AdamConfig::default().with_weight_decay(1e-4));
    let mut graph = Graph::new();
    // Buckets of 64 KiB: several per step.
    let mut sync = GradientSync::new(64 << 10);
    let mut losses = Vec::with_capacity(100);
    let mut step = |graph: &mut Graph<f32>, store: &mut ParamStore<f32>, rng: &mut StdRng| {
        graph.reset();
        let loss = {
            let mut f = Forward::train(graph, store, rng);
            let out = model.forward(&mut f, graph.constant(x.clone()));
            cross_entropy(out, y, Reduction::Mean)
        };
        let mut grads = loss.backward();
        // Data-parallel averaging, across a replica that holds the same gradients: the
        // mean is the gradient itself (×2 ÷2 is exact), through the reused buckets.
        sync.average(&Mirror, store, &mut grads).expect("averaged");
        clip_grad_norm(&mut grads, 5.0, NormType::L2).expect("finite gradients");
        opt.step(store, &grads, 1e-3);
        loss.item()
    };
    for _ in 0..99 {
        losses.push(step(&mut graph, store, &mut rng));
    }
    let mut last = 0.0;
    let counts = counted(|| last = step(&mut graph, store, &mut rng));
    losses.push(last);
    (counts, losses)
}

/// Two replicas, the other of which holds the same numbers.
struct Mirror;

impl Collective for Mirror {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        2
    }
    fn sum_f32(&self, v: &mut [f32]) -> tapegrad::core::Result<()> {
        v.iter_mut().for_each(|x| *x *= 2.0);
        Ok(())
    }
    fn sum_f64(&self, v: &mut [f64]) -> tapegrad::core::Result<()> {
        v.iter_mut().for_each(|x| *x *= 2.0);
        Ok(())
    }
    fn broadcast(&self, _: &mut Vec<u8>, _: usize) -> tapegrad::core::Result<()> {
        Ok(())
    }
    fn all_gather(&self, b: &[u8]) -> tapegrad::core::Result<Vec<Vec<u8>>> {
        Ok(vec![b.to_vec(), b.to_vec()])
    }
    fn barrier(&self) -> tapegrad::core::Result<()> {
        Ok(())
    }
}

// One test: the counter is global, so nothing else may run beside it.
#[test]
fn step_100_of_a_training_loop_allocates_nothing() {
    let mut rng = seeded_rng(0);

    // An MLP with batch norm and dropout.
    let (batch, classes) = (64usize, 10usize);
    let x = Tensor::<f32>::rand_uniform([batch, 196], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([batch], |i| (i * 7) % classes);
    let mut store = ParamStore::new();
    let mlp = Sequential::new()
        .push(Linear::new(
            &mut store,
            "0",
            196,
            128,
            Init::HeNormal,
            &mut rng,
        ))
        .push(BatchNorm1d::new(&mut store, "1", 128))
        .push(Relu)
        .push(Dropout::new(0.2))
        .push(Linear::new(
            &mut store,
            "4",
            128,
            64,
            Init::HeNormal,
            &mut rng,
        ))
        .push(Relu)
        .push(Linear::new(
            &mut store,
            "6",
            64,
            classes,
            Init::XavierUniform { gain: 1.0 },
            &mut rng,
        ));
    let ((count, bytes), losses) = allocations_of_step_100(&mlp, &mut store, &x, &y);
    assert_eq!(
        (count, bytes),
        (0, 0),
        "MLP: step 100 allocated {count} times ({bytes} bytes)"
    );
    assert!(
        losses[99] < 0.5 * losses[0],
        "MLP loss {} -> {}",
        losses[0],
        losses[99]
    );

    // A small CNN: convolution, batch norm, pooling, flatten, linear.
    let x = Tensor::<f32>::rand_uniform([8, 1, 12, 12], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([8], |i| i % 4);
    let mut store = ParamStore::new();
    let cnn = Sequential::new()
        .push(Conv2d::new(
            &mut store,
            "0",
            1,
            6,
            Conv2dConfig::new(3).with_padding(1),
            &mut rng,
        ))
        .push(BatchNorm2d::new(&mut store, "1", 6))
        .push(Relu)
        .push(MaxPool2d::new(2))
        .push(Flatten::default())
        .push(Linear::new(
            &mut store,
            "5",
            6 * 6 * 6,
            4,
            Init::HeNormal,
            &mut rng,
        ));
    let ((count, bytes), losses) = allocations_of_step_100(&cnn, &mut store, &x, &y);
    assert_eq!(
        (count, bytes),
        (0, 0),
        "CNN: step 100 allocated {count} times ({bytes} bytes)"
    );
    assert!(
        losses[99] < 0.5 * losses[0],
        "CNN loss {} -> {}",
        losses[0],
        losses[99]
    );

    // A loader-driven epoch: shuffled, augmented, 150 samples in batches of 32 (the last
    // one of 22), the tape released before each update.
    let x = Tensor::<f32>::rand_uniform([150, 1, 8, 8], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([150], |i| i % 10);
    let data = TensorDataset::new(x, y).expect("matching lengths");
    let loader = DataLoader::new(&data, 32).with_shuffle(3).with_transform(
        RandomTranslate {
            max_dx: 1,
            max_dy: 1,
        },
        4,
    );
    let mut store = ParamStore::new();
    let mlp = Sequential::new()
        .push(Flatten::default())
        .push(Linear::new(
            &mut store,
            "1",
            64,
            32,
            Init::HeNormal,
            &mut rng,
        ))
        .push(BatchNorm1d::new(&mut store, "2", 32))
        .push(Relu)
        .push(Dropout::new(0.2))
        .push(Linear::new(
            &mut store,
            "5",
            32,
            10,
            Init::HeNormal,
            &mut rng,
        ));
    let mut opt = Adam::new(AdamConfig::default());
    let mut graph = Graph::new();
    let mut run_epoch = |graph: &mut Graph<f32>, store: &mut ParamStore<f32>, epoch: u64| {
        let mut sum = 0.0;
        for batch in loader.epoch(epoch) {
            graph.reset();
            let mut rng = stream_rng(9, Stream::Dropout, epoch, batch.index as u64);
            let loss = {
                let mut f = Forward::train(graph, store, &mut rng);
                let out = mlp.forward(&mut f, graph.constant(batch.x.clone()));
                cross_entropy(out, &batch.y, Reduction::Mean)
            };
            sum += loss.item();
            let grads = loss.backward();
            graph.reset();
            opt.step(store, &grads, 1e-2);
        }
        sum
    };
    let first = run_epoch(&mut graph, &mut store, 0);
    for e in 1..5 {
        run_epoch(&mut graph, &mut store, e);
    }
    let mut last = 0.0;
    let (count, bytes) = counted(|| last = run_epoch(&mut graph, &mut store, 5));
    assert_eq!(
        (count, bytes),
        (0, 0),
        "loader-driven epoch 5 allocated {count} times ({bytes} bytes)"
    );
    assert!(last < first, "loss over an epoch {first} -> {last}");
}

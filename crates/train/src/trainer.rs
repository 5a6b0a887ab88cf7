//! The `Trainer`: epochs over a loader, a validation pass in evaluation mode, callbacks, and
//! the whole state in one checkpoint for an exact resume.
//!
//! It is a thin layer over the loop one writes by hand, and does nothing that loop cannot:
//!
//! ```text
//! for epoch in 0..epochs {
//!     for batch in loader.epoch(epoch) {
//!         graph.reset();                                    // the tape of the last step
//!         let mut rng = stream_rng(seed, Stream::Dropout, epoch, batch.index);
//!         let mut f = Forward::train(&graph, &mut store, &mut rng);
//!         let loss = cross_entropy(model.forward(&mut f, graph.constant(batch.x)), &batch.y, Reduction::Mean);
//!         let grads = loss.backward();
//!         graph.reset();                                    // release the tape first:
//!         optimizer.step(&mut store, &grads, schedule.lr(step)); // the update is in place
//!     }
//!     // validation in evaluation mode, callbacks
//! }
//! ```
//!
//! Every random number of a step comes from a generator seeded by `(seed, stream, epoch,
//! batch)` ([`tapegrad_data::rng`]): the shuffle of each epoch, the dropout masks of each
//! step and the augmentation of each batch. A run therefore has no generator state to save,
//! and a resumed run — from a checkpoint written at an epoch's end or inside an epoch —
//! draws exactly the numbers the uninterrupted run drew.

use std::path::Path;
use std::time::Instant;

use tapegrad_core::{Float, Gradients, Graph, ParamStore, Result, Tensor, Var};
use tapegrad_data::rng::{replica_seed, stream_rng, Stream};
use tapegrad_data::{Batch, DataLoader, Dataset};
use tapegrad_nn::{cross_entropy, Forward, Module, Reduction};
use tapegrad_optim::{clip_grad_norm, NormType, Optimizer, Schedule};

use crate::callbacks::{Callback, Control, EpochEnd, StepEnd};
use crate::evaluate::eval_pass;
use crate::history::{EpochRecord, History};
use crate::metrics::Meter;
use crate::parallel::{check_same_model, sum_stats, Collective, GradientSync};
use crate::progress::{Progress, Reporter};

/// A loss of a model's output against integer labels: [`CrossEntropy`], or any
/// `Fn(Var, &Tensor<usize>) -> Var` function.
pub trait Loss<T: Float> {
    /// The batch's mean loss.
    fn loss<'g>(&self, output: Var<'g, T>, target: &Tensor<usize>) -> Var<'g, T>;
}

impl<T: Float, F> Loss<T> for F
where
    F: for<'g> Fn(Var<'g, T>, &Tensor<usize>) -> Var<'g, T>,
{
    fn loss<'g>(&self, output: Var<'g, T>, target: &Tensor<usize>) -> Var<'g, T> {
        self(output, target)
    }
}

/// The mean cross-entropy of logits against class indices ([`tapegrad_nn::cross_entropy`]
/// with [`Reduction::Mean`]; PyTorch's `nn.CrossEntropyLoss()`): the trainer's default loss.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrossEntropy;

impl<T: Float> Loss<T> for CrossEntropy {
    #[track_caller]
    fn loss<'g>(&self, output: Var<'g, T>, target: &Tensor<usize>) -> Var<'g, T> {
        cross_entropy(output, target, Reduction::Mean)
    }
}

/// A term added to the training loss that depends on the parameters (an L1/L2 penalty);
/// any `Fn(&Forward) -> Var` is one. A closure written in place needs [`penalty`] around it,
/// so that Rust infers its signature for every lifetime of the pass.
pub trait Penalty<T: Float> {
    /// The term, on the pass's graph.
    fn penalty<'g>(&self, f: &Forward<'g, '_, T>) -> Var<'g, T>;
}

impl<T: Float, F> Penalty<T> for F
where
    F: for<'g, 's> Fn(&Forward<'g, 's, T>) -> Var<'g, T>,
{
    fn penalty<'g>(&self, f: &Forward<'g, '_, T>) -> Var<'g, T> {
        self(f)
    }
}

/// The closure `f` as a [`Penalty`]: it returns `f` unchanged, and its bound makes Rust
/// infer the closure's signature for every lifetime of the pass (a closure literal passed
/// straight to [`Trainer::with_penalty`] is inferred for one lifetime and refused).
///
/// ```
/// use tapegrad_core::{seeded_rng, ParamStore};
/// use tapegrad_nn::{l2_penalty, Init, Linear, Module};
/// use tapegrad_optim::{Constant, Sgd, SgdConfig};
/// use tapegrad_train::{penalty, Trainer};
///
/// let mut store = ParamStore::<f32>::new();
/// let model = Linear::new(&mut store, "fc", 4, 2, Init::TorchDefault, &mut seeded_rng(0));
/// let weights = model.weights(&store);
/// let trainer = Trainer::new(&model, Sgd::new(SgdConfig::default()), Constant(0.1))
///     .with_penalty(penalty::<f32, _>(move |f| l2_penalty(f, &weights, 1e-4)));
/// # drop(trainer);
/// ```
pub fn penalty<T, F>(f: F) -> F
where
    T: Float,
    F: for<'g, 's> Fn(&Forward<'g, 's, T>) -> Var<'g, T>,
{
    f
}

/// What a run does besides its model, optimizer and schedule.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Epochs to train (a resumed run continues to this count).
    pub epochs: usize,
    /// The seed of every random stream of the run (the loaders' shuffles and augmentation
    /// should be seeded from it too).
    pub seed: u64,
    /// How progress is shown.
    pub progress: Progress,
    /// Clip the gradients' global L2 norm to this before each update.
    pub clip_grad_norm: Option<f64>,
}

impl Default for TrainConfig {
    /// 10 epochs, seed 0, progress shown as suits the output, no clipping.
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            seed: 0,
            progress: Progress::Auto,
            clip_grad_norm: None,
        }
    }
}

/// Where a run stands: everything besides the store, the optimizer and the callbacks that
/// a checkpoint holds.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RunState {
    /// Epochs completed.
    pub epoch: usize,
    /// Batches done in the current epoch.
    pub batch: usize,
    /// Optimizer steps taken.
    pub step: usize,
    /// The factor on the schedule's rate (plateau reductions).
    pub lr_scale: f64,
    /// The current epoch's training numbers so far.
    pub meter: Meter,
    /// Seconds of training in the current epoch so far.
    pub train_seconds: f64,
    /// The completed epochs.
    pub history: History,
    /// Why the run stopped, once it has.
    pub stopped: Option<String>,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            epoch: 0,
            batch: 0,
            step: 0,
            lr_scale: 1.0,
            meter: Meter::default(),
            train_seconds: 0.0,
            history: History::default(),
            stopped: None,
        }
    }
}

/// How a call to [`Trainer::fit`] ended.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Epochs completed in the whole run (a resumed run counts those before the resume).
    pub epochs: usize,
    /// Optimizer steps taken in the whole run.
    pub steps: usize,
    /// Why the run stopped before its last epoch (early stopping, a non-finite loss), if
    /// it did.
    pub stopped: Option<String>,
    /// Seconds of training passes over the whole run (validation excluded).
    pub train_seconds: f64,
}

/// Trains a model (see the module docs).
///
/// ```
/// use tapegrad_core::{seeded_rng, ParamStore, Tensor};
/// use tapegrad_data::{DataLoader, TensorDataset};
/// use tapegrad_nn::{Init, Linear, Module, Relu, Sequential};
/// use tapegrad_optim::{Adam, AdamConfig, Constant};
/// use tapegrad_train::{Progress, TrainConfig, Trainer};
///
/// // Two classes: is x₀ + x₁ positive?
/// let x = Tensor::<f64>::rand_normal([200, 2], 0.0, 1.0, &mut seeded_rng(0));
/// let y = Tensor::from_fn([200], |i| usize::from(x.as_slice()[2 * i] + x.as_slice()[2 * i + 1] > 0.0));
/// let data = TensorDataset::new(x, y).unwrap();
/// let loader = DataLoader::new(&data, 32).with_shuffle(1);
///
/// let mut store = ParamStore::new();
/// let mut rng = seeded_rng(0);
/// let model = Sequential::new()
///     .push(Linear::new(&mut store, "0", 2, 16, Init::HeNormal, &mut rng))
///     .push(Relu)
///     .push(Linear::new(&mut store, "2", 16, 2, Init::HeNormal, &mut rng));
/// let config = TrainConfig { epochs: 20, seed: 1, progress: Progress::Quiet, ..Default::default() };
/// let mut trainer = Trainer::new(&model, Adam::new(AdamConfig::default()), Constant(1e-2))
///     .with_config(config);
/// let outcome = trainer.fit(&mut store, &loader, &loader).unwrap();
/// assert_eq!(outcome.epochs, 20);
/// assert!(trainer.history().last().unwrap().val_accuracy > 0.95);
/// ```
pub struct Trainer<'a, T: Float> {
    pub(crate) model: &'a dyn Module<T>,
    pub(crate) optimizer: Box<dyn Optimizer<T> + 'a>,
    pub(crate) schedule: Box<dyn Schedule + 'a>,
    pub(crate) loss: Box<dyn Loss<T> + 'a>,
    pub(crate) penalties: Vec<Box<dyn Penalty<T> + 'a>>,
    pub(crate) callbacks: Vec<Box<dyn Callback<T> + 'a>>,
    pub(crate) config: TrainConfig,
    pub(crate) state: RunState,
    pub(crate) collective: Option<&'a dyn Collective>,
    sync: GradientSync<T>,
    overlap: bool,
    graph: Graph<T>,
}

impl<'a, T: Float> Trainer<'a, T> {
    /// Trains `model` with `optimizer` at the rates of `schedule` (per step), minimising
    /// cross-entropy, with the default [`TrainConfig`].
    pub fn new(
        model: &'a dyn Module<T>,
        optimizer: impl Optimizer<T> + 'a,
        schedule: impl Schedule + 'a,
    ) -> Self {
        Trainer {
            model,
            optimizer: Box::new(optimizer),
            schedule: Box::new(schedule),
            loss: Box::new(CrossEntropy),
            penalties: Vec::new(),
            callbacks: Vec::new(),
            config: TrainConfig::default(),
            state: RunState::default(),
            collective: None,
            sync: GradientSync::default(),
            overlap: false,
            graph: Graph::new(),
        }
    }

    /// Trains as one replica of `collective` (data parallelism): before each update the
    /// gradients are averaged across the replicas, so every replica takes the same step.
    ///
    /// Each replica runs the same program with a training loader sharded by its rank
    /// ([`DataLoader::with_shard`](tapegrad_data::DataLoader::with_shard)); `fit` first
    /// checks that every replica holds the same model and copies replica 0's parameters
    /// and optimizer state to the others. The training and validation numbers are summed
    /// over the replicas, so every replica records the same history and every callback
    /// decides the same (early stopping stops every replica at the same epoch). Only
    /// replica 0 shows progress, writes checkpoints and runs the callbacks that write files
    /// ([`Callback::main_only`]); dropout draws from a stream of each replica's own.
    /// `tapegrad-dist`'s `Communicator` is a collective over MPI.
    pub fn with_data_parallel(mut self, collective: &'a dyn Collective) -> Self {
        self.collective = Some(collective);
        self
    }

    /// With gradient buckets of at most `bytes` in data-parallel training (25 MiB by
    /// default, as PyTorch DDP's `bucket_cap_mb`).
    pub fn with_bucket_bytes(mut self, bytes: usize) -> Self {
        self.sync = GradientSync::new(bytes);
        self
    }

    /// In data-parallel training, starts each gradient bucket's sum during the backward
    /// pass, as soon as its gradients are done (PyTorch DDP's overlap), rather than summing
    /// every bucket after it (the default). The steps are the same either way; whether it
    /// is faster depends on the transport having cores to run on while the backward pass
    /// computes (see the guide's page on distributed training for the measurement).
    pub fn with_overlap(mut self, overlap: bool) -> Self {
        self.overlap = overlap;
        self
    }

    /// This replica's rank and the replica count (0 and 1 without data parallelism).
    pub fn replica(&self) -> (usize, usize) {
        self.collective.map_or((0, 1), |c| (c.rank(), c.size()))
    }

    /// Whether this process shows progress and writes files: replica 0, or the only process.
    pub fn is_main(&self) -> bool {
        self.replica().0 == 0
    }

    /// With another loss.
    pub fn with_loss(mut self, loss: impl Loss<T> + 'a) -> Self {
        self.loss = Box::new(loss);
        self
    }

    /// Adds a penalty to the training loss (the reported loss is the data loss alone).
    pub fn with_penalty(mut self, penalty: impl Penalty<T> + 'a) -> Self {
        self.penalties.push(Box::new(penalty));
        self
    }

    /// Adds a callback (run in the order added; names must differ).
    ///
    /// # Panics
    /// At the caller's line if a callback of the same name was added already.
    #[track_caller]
    pub fn with_callback(mut self, callback: impl Callback<T> + 'a) -> Self {
        if self.callbacks.iter().any(|c| c.name() == callback.name()) {
            tapegrad_core::Error::argument(
                "Trainer::with_callback",
                format!("a callback named `{}` was added already", callback.name()),
            )
            .raise();
        }
        self.callbacks.push(Box::new(callback));
        self
    }

    /// With a configuration.
    pub fn with_config(mut self, config: TrainConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// The completed epochs.
    pub fn history(&self) -> &History {
        &self.state.history
    }

    /// Epochs completed.
    pub fn epoch(&self) -> usize {
        self.state.epoch
    }

    /// Optimizer steps taken.
    pub fn step(&self) -> usize {
        self.state.step
    }

    /// Why the run stopped, once it has.
    pub fn stopped(&self) -> Option<&str> {
        self.state.stopped.as_deref()
    }

    /// Trains on `train` until the configured epoch count or a callback stops the run,
    /// validating on `val` after each epoch; then runs each callback's end (early stopping
    /// restores the best weights there). A resumed trainer continues where its checkpoint
    /// stopped; a run that has ended returns at once.
    ///
    /// # Errors
    /// A callback's error (a checkpoint that cannot be written, say), a loader whose
    /// batches do not fit a resumed position, or gradients that cannot be clipped.
    pub fn fit<D, V>(
        &mut self,
        store: &mut ParamStore<T>,
        train: &DataLoader<'_, T, D>,
        val: &DataLoader<'_, T, V>,
    ) -> Result<Outcome>
    where
        D: Dataset<T> + ?Sized,
        V: Dataset<T> + ?Sized,
    {
        self.run(store, train, Some(val))
    }

    /// [`Trainer::fit`] without a validation set (the validation numbers are NaN).
    ///
    /// # Errors
    /// As [`Trainer::fit`].
    pub fn fit_without_validation<D>(
        &mut self,
        store: &mut ParamStore<T>,
        train: &DataLoader<'_, T, D>,
    ) -> Result<Outcome>
    where
        D: Dataset<T> + ?Sized,
    {
        self.run::<D, D>(store, train, None)
    }

    fn run<D, V>(
        &mut self,
        store: &mut ParamStore<T>,
        train: &DataLoader<'_, T, D>,
        val: Option<&DataLoader<'_, T, V>>,
    ) -> Result<Outcome>
    where
        D: Dataset<T> + ?Sized,
        V: Dataset<T> + ?Sized,
    {
        let batches = train.batches_per_epoch();
        if self.state.batch > batches {
            return Err(tapegrad_core::Error::argument(
                "Trainer::fit",
                format!(
                    "the run stands at batch {} of epoch {}, but the loader has {batches} batches per epoch",
                    self.state.batch,
                    self.state.epoch + 1
                ),
            ));
        }
        if let Some(c) = self.collective {
            self.join_replicas(c, store, train)?;
        }
        let progress = if self.is_main() {
            self.config.progress
        } else {
            Progress::Quiet
        };
        let mut reporter = Reporter::new(progress, self.config.epochs);
        let mut saves = Vec::new();
        let mut removes = Vec::new();
        while self.state.epoch < self.config.epochs && self.state.stopped.is_none() {
            let epoch = self.state.epoch;
            reporter.start_epoch(epoch, batches, self.state.batch);
            let mut stop = None;
            for batch in train.epoch_from(epoch as u64, self.state.batch) {
                let started = Instant::now();
                let lr = self.schedule.lr(self.state.step) * self.state.lr_scale;
                let (loss, grads) = self.train_step(store, &batch, lr)?;
                self.state.train_seconds += started.elapsed().as_secs_f64();
                self.state.batch += 1;
                self.state.step += 1;
                reporter.step(self.state.batch, &self.state.meter, lr, batch.len());
                let mut end = StepEnd {
                    epoch,
                    batch: batch.index,
                    step: self.state.step,
                    loss,
                    lr,
                    grads: &grads,
                    store,
                    save: &mut saves,
                };
                let main = self.is_main();
                for cb in &mut self.callbacks {
                    if main || !cb.main_only() {
                        if let Control::Stop(why) = cb.on_step(&mut end) {
                            stop.get_or_insert(why);
                        }
                    }
                }
                self.write_state(store, &mut saves, &mut removes)?;
                if stop.is_some() {
                    break;
                }
            }

            let started = Instant::now();
            let (val_loss, val_accuracy) = match val {
                Some(v) => {
                    let mut m =
                        eval_pass(&mut self.graph, self.model, store, v, &*self.loss, false).meter;
                    sum_meter(self.collective, &mut m)?;
                    (m.loss(), m.accuracy())
                }
                None => (f64::NAN, f64::NAN),
            };
            let state = &mut self.state;
            let record = EpochRecord {
                epoch: epoch + 1,
                train_loss: state.meter.loss(),
                train_accuracy: state.meter.accuracy(),
                val_loss,
                val_accuracy,
                lr: self.schedule.lr(state.step.saturating_sub(1)) * state.lr_scale,
                train_seconds: state.train_seconds,
                eval_seconds: started.elapsed().as_secs_f64(),
            };
            state.history.epochs.push(record.clone());
            (state.epoch, state.batch) = (epoch + 1, 0);
            (state.meter, state.train_seconds) = (Meter::default(), 0.0);
            let mut end = EpochEnd {
                record: &record,
                history: &state.history,
                step: state.step,
                store,
                lr_scale: &mut state.lr_scale,
                save: &mut saves,
                remove: &mut removes,
            };
            let main = self.collective.is_none_or(|c| c.rank() == 0);
            for cb in &mut self.callbacks {
                if main || !cb.main_only() {
                    if let Control::Stop(why) = cb.on_epoch_end(&mut end)? {
                        stop.get_or_insert(why);
                    }
                }
            }
            // Recorded before the state is written: a resumed run knows it has ended.
            state.stopped = stop;
            self.write_state(store, &mut saves, &mut removes)?;
            reporter.end_epoch(&record, self.state.stopped.as_deref());
        }
        let main = self.is_main();
        for cb in &mut self.callbacks {
            if main || !cb.main_only() {
                cb.on_train_end(store)?;
            }
        }
        Ok(Outcome {
            epochs: self.state.epoch,
            steps: self.state.step,
            stopped: self.state.stopped.clone(),
            train_seconds: self
                .state
                .history
                .epochs
                .iter()
                .map(|r| r.train_seconds)
                .sum(),
        })
    }

    /// One step on `batch` at rate `lr`: forward in training mode, loss, backward, the tape
    /// released, the update. Returns the batch's mean loss and the gradients.
    fn train_step(
        &mut self,
        store: &mut ParamStore<T>,
        batch: &Batch<T>,
        lr: f64,
    ) -> Result<(f64, Gradients<T>)> {
        self.graph.reset();
        let mut rng = stream_rng(
            replica_seed(self.config.seed, self.replica().0),
            Stream::Dropout,
            batch.epoch,
            batch.index as u64,
        );
        let (value, mut grads) = {
            let g = &self.graph;
            let mut f = Forward::train(g, store, &mut rng);
            let out = self.model.forward(&mut f, g.constant(batch.x.clone()));
            let data_loss = self.loss.loss(out, &batch.y);
            let mut step = Meter::default();
            step.add(data_loss.item().as_f64(), &out.value(), &batch.y);
            let total = self
                .penalties
                .iter()
                .fold(data_loss, |l, p| l + p.penalty(&f));
            drop(f);
            let grads = match (self.collective, self.overlap) {
                // Each bucket's sum starts as soon as its gradients are done.
                (Some(c), true) => {
                    let sync = &mut self.sync;
                    sync.begin(store);
                    let store = &*store;
                    total.try_backward_with_ready(&mut |k, gk| sync.ready(c, store, k, gk))?
                }
                _ => total.backward(),
            };
            (step, grads)
        };
        // The tape shares the parameters' buffers; releasing it first lets the optimizer
        // update them in place instead of copying each one.
        self.graph.reset();
        let mut step = value;
        if let Some(c) = self.collective {
            if self.overlap {
                self.sync.finish(c, store, &mut grads)?;
            } else {
                self.sync.average(c, store, &mut grads)?;
            }
            sum_meter(Some(c), &mut step)?;
        }
        // The step's loss over every replica's samples (the same on every replica, so that
        // every replica decides the same below).
        let value = step.loss();
        self.state.meter.merge(&step);
        if let (Some(max), true) = (self.config.clip_grad_norm, value.is_finite()) {
            clip_grad_norm(&mut grads, max, NormType::L2)?;
        }
        self.optimizer.step(store, &grads, lr);
        Ok((value, grads))
    }

    /// Writes the training state to every file in `saves` (one snapshot, each file
    /// atomically, directories created), then removes the files in `removes`.
    fn write_state(
        &self,
        store: &ParamStore<T>,
        saves: &mut Vec<std::path::PathBuf>,
        removes: &mut Vec<std::path::PathBuf>,
    ) -> Result<()> {
        if let Some(c) = self.collective {
            // Every replica asks for the same writes (their callbacks see the same numbers);
            // replica 0 makes them and tells the others whether they worked, so that a
            // failed write stops every replica rather than leaving them waiting.
            if saves.is_empty() && removes.is_empty() {
                return Ok(());
            }
            let mut failed = [0.0];
            let result = if c.rank() == 0 {
                self.write_files(store, saves, removes)
            } else {
                saves.clear();
                removes.clear();
                Ok(())
            };
            if result.is_err() {
                failed[0] = 1.0;
            }
            c.sum_f64(&mut failed)?;
            return match result {
                Err(e) => Err(e),
                Ok(()) if failed[0] > 0.0 => Err(tapegrad_core::Error::Io {
                    path: "(the training state)".into(),
                    message: "replica 0 could not write the training state".into(),
                }),
                Ok(()) => Ok(()),
            };
        }
        self.write_files(store, saves, removes)
    }

    /// Writes the files of [`Trainer::write_state`].
    fn write_files(
        &self,
        store: &ParamStore<T>,
        saves: &mut Vec<std::path::PathBuf>,
        removes: &mut Vec<std::path::PathBuf>,
    ) -> Result<()> {
        if !saves.is_empty() {
            let bytes = self.snapshot(store).to_bytes()?;
            saves.dedup();
            for path in saves.drain(..) {
                create_parent(&path)?;
                tapegrad_core::checkpoint::write_atomic(&path, &bytes)?;
            }
        }
        for path in removes.drain(..) {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(tapegrad_core::Error::io(path, e))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Sums a meter over the replicas (nothing without replicas).
fn sum_meter(c: Option<&dyn Collective>, m: &mut Meter) -> Result<()> {
    let mut v = [m.loss_sum, m.correct as f64, m.samples as f64];
    sum_stats(c, &mut v)?;
    // Counts below 2⁵³ are exact in f64.
    (m.loss_sum, m.correct, m.samples) = (v[0], v[1] as u64, v[2] as u64);
    Ok(())
}

impl<T: Float> Trainer<'_, T> {
    /// The start of a data-parallel run: the same model on every replica, replica 0's
    /// parameters and optimizer state everywhere, a training loader sharded for this rank.
    fn join_replicas<D: Dataset<T> + ?Sized>(
        &mut self,
        c: &dyn Collective,
        store: &mut ParamStore<T>,
        train: &DataLoader<'_, T, D>,
    ) -> Result<()> {
        let local = match train.shard() {
            Some(s) if s.rank == c.rank() && s.replicas == c.size() => Ok(()),
            Some(s) => Err(format!(
                "the training loader is sharded as rank {} of {}, but this replica is rank {} of {}",
                s.rank,
                s.replicas,
                c.rank(),
                c.size()
            )),
            None if c.size() == 1 => Ok(()),
            None => Err(format!(
                "the training loader is not sharded: every one of the {} replicas would train on the same batches (use DataLoader::with_shard(rank, replicas, ..))",
                c.size()
            )),
        };
        // Every replica learns whether any replica's loader is wrong, so none waits.
        let mut bad = [f64::from(u8::from(local.is_err()))];
        c.sum_f64(&mut bad)?;
        if let Err(why) = local {
            return Err(tapegrad_core::Error::argument("Trainer::fit", why));
        }
        if bad[0] > 0.0 {
            return Err(tapegrad_core::Error::argument(
                "Trainer::fit",
                "another replica's training loader is not sharded for it",
            ));
        }
        check_same_model(c, store)?;
        let mut bytes = if c.rank() == 0 {
            let mut ck = tapegrad_core::checkpoint::Checkpoint::new();
            ck.add_store(store);
            self.optimizer.save_state(store, &mut ck, "optimizer.");
            ck.to_bytes()?
        } else {
            Vec::new()
        };
        c.broadcast(&mut bytes, 0)?;
        if c.rank() != 0 {
            let ck = tapegrad_core::checkpoint::Checkpoint::from_bytes(&bytes, "replica 0")?;
            let opts = tapegrad_core::checkpoint::LoadOptions {
                allow_unexpected: true,
                ..tapegrad_core::checkpoint::LoadOptions::strict()
            };
            ck.restore_store(store, &opts)?;
            self.optimizer.load_state(store, &ck, "optimizer.")?;
        }
        Ok(())
    }
}

pub(crate) fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => {
            std::fs::create_dir_all(dir).map_err(|e| tapegrad_core::Error::io(dir, e))
        }
        _ => Ok(()),
    }
}

//! Callbacks: what a run does at the end of a step or an epoch besides training — stop
//! early, checkpoint, reduce the learning rate on a plateau. Each saves its state into the
//! training checkpoint, so a resumed run continues exactly where it stopped.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use tapegrad_core::checkpoint::Checkpoint;
use tapegrad_core::{Float, Gradients, ParamStore, Result, Tensor};
use tapegrad_optim::{PlateauMode, ReduceOnPlateau};

use crate::history::{EpochRecord, History};

/// Go on, or stop the run (with the reason, which the outcome reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Keep training.
    Continue,
    /// Stop after this epoch (or step).
    Stop(String),
}

/// A number of an epoch's record that callbacks watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitor {
    /// Validation loss (lower is better).
    ValLoss,
    /// Validation accuracy (higher is better).
    ValAccuracy,
    /// Training loss (lower is better).
    TrainLoss,
    /// Training accuracy (higher is better).
    TrainAccuracy,
}

impl Monitor {
    /// The watched number of `r`.
    pub fn value(self, r: &EpochRecord) -> f64 {
        match self {
            Monitor::ValLoss => r.val_loss,
            Monitor::ValAccuracy => r.val_accuracy,
            Monitor::TrainLoss => r.train_loss,
            Monitor::TrainAccuracy => r.train_accuracy,
        }
    }

    /// Whether lower values are better.
    pub fn lower_is_better(self) -> bool {
        matches!(self, Monitor::ValLoss | Monitor::TrainLoss)
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Monitor::ValLoss => "val_loss",
            Monitor::ValAccuracy => "val_accuracy",
            Monitor::TrainLoss => "train_loss",
            Monitor::TrainAccuracy => "train_accuracy",
        }
    }

    /// Whether `v` improves on `best` by more than `min_delta`.
    fn improves(self, v: f64, best: f64, min_delta: f64) -> bool {
        if self.lower_is_better() {
            v < best - min_delta
        } else {
            v > best + min_delta
        }
    }
}

/// What a callback sees after a training step.
pub struct StepEnd<'a, T: Float> {
    /// The epoch (0-based).
    pub epoch: usize,
    /// The batch in the epoch (0-based).
    pub batch: usize,
    /// Steps taken in the run, this one included.
    pub step: usize,
    /// The batch's mean loss.
    pub loss: f64,
    /// The learning rate of the step.
    pub lr: f64,
    /// The step's gradients (after clipping, as the update used them).
    pub grads: &'a Gradients<T>,
    /// The parameters after the update.
    pub store: &'a ParamStore<T>,
    /// Files the trainer writes the whole training state to once the callbacks have run.
    pub save: &'a mut Vec<PathBuf>,
}

/// What a callback sees, and may change, after an epoch.
pub struct EpochEnd<'a, T: Float> {
    /// The epoch's record (also the last of `history`).
    pub record: &'a EpochRecord,
    /// Every epoch so far, this one included.
    pub history: &'a History,
    /// Optimizer steps taken in the run.
    pub step: usize,
    /// The parameters (to copy the best, or restore them).
    pub store: &'a mut ParamStore<T>,
    /// The factor the schedule's learning rate is multiplied by (plateau reductions).
    pub lr_scale: &'a mut f64,
    /// Files the trainer writes the whole training state to once the callbacks have run.
    pub save: &'a mut Vec<PathBuf>,
    /// Files the trainer removes after writing (checkpoints no longer kept).
    pub remove: &'a mut Vec<PathBuf>,
}

/// Something a run does besides training (see the module docs).
pub trait Callback<T: Float> {
    /// A short name, unique among a run's callbacks (it prefixes the callback's state).
    fn name(&self) -> &str;

    /// Whether the callback only writes files (logs, plots): in data-parallel training it
    /// then runs on replica 0 alone, and a resumed run does not require it (false by
    /// default).
    fn main_only(&self) -> bool {
        false
    }

    /// After each training step.
    fn on_step(&mut self, _step: &mut StepEnd<'_, T>) -> Control {
        Control::Continue
    }

    /// After each epoch's validation.
    ///
    /// # Errors
    /// Whatever the callback cannot do (it stops the run with that error).
    fn on_epoch_end(&mut self, epoch: &mut EpochEnd<'_, T>) -> Result<Control>;

    /// When the run ends, however it ends (restore the best weights, say).
    ///
    /// # Errors
    /// Whatever the callback cannot do.
    fn on_train_end(&mut self, _store: &mut ParamStore<T>) -> Result<()> {
        Ok(())
    }

    /// Writes the callback's state into `ck` under `prefix`.
    fn save_state(&self, ck: &mut Checkpoint, prefix: &str);

    /// Reads what [`Callback::save_state`] wrote.
    ///
    /// # Errors
    /// [`tapegrad_core::Error::Checkpoint`] naming the file for a missing or invalid entry.
    fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()>;
}

impl<T: Float, C: Callback<T> + ?Sized> Callback<T> for Box<C> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn main_only(&self) -> bool {
        (**self).main_only()
    }
    fn on_step(&mut self, step: &mut StepEnd<'_, T>) -> Control {
        (**self).on_step(step)
    }
    fn on_epoch_end(&mut self, epoch: &mut EpochEnd<'_, T>) -> Result<Control> {
        (**self).on_epoch_end(epoch)
    }
    fn on_train_end(&mut self, store: &mut ParamStore<T>) -> Result<()> {
        (**self).on_train_end(store)
    }
    fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        (**self).save_state(ck, prefix)
    }
    fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()> {
        (**self).load_state(ck, prefix)
    }
}

fn meta_f64(ck: &Checkpoint, key: &str) -> Result<f64> {
    let s = ck
        .meta(key)
        .ok_or_else(|| ck.error(format!("`{key}` is missing")))?;
    u64::from_str_radix(s, 16)
        .map(f64::from_bits)
        .map_err(|_| ck.error(format!("`{key}` is not a number (`{s}`)")))
}

fn meta_usize(ck: &Checkpoint, key: &str) -> Result<usize> {
    let s = ck
        .meta(key)
        .ok_or_else(|| ck.error(format!("`{key}` is missing")))?;
    s.parse()
        .map_err(|_| ck.error(format!("`{key}` is not a count (`{s}`)")))
}

/// A float written so it reads back exactly.
pub(crate) fn hex(v: f64) -> String {
    format!("{:016x}", v.to_bits())
}

// ---------------------------------------------------------------------- early stopping

/// Stops when the monitored number has not improved for `patience` epochs; optionally
/// restores the weights of the best epoch (batch-norm statistics included).
///
/// An improvement is a value better than the best so far by more than `min_delta`; with a
/// `baseline`, the first improvement must also beat it. A non-finite training loss stops at
/// once (with `stop_on_non_finite`, the default).
#[derive(Clone, Debug)]
pub struct EarlyStopping<T: Float> {
    /// The watched number.
    pub monitor: Monitor,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// How much better a value must be to count.
    pub min_delta: f64,
    /// A value to beat before anything counts as an improvement.
    pub baseline: Option<f64>,
    /// Restore the best epoch's weights when the run ends.
    pub restore_best: bool,
    /// Stop on a NaN or infinite training loss.
    pub stop_on_non_finite: bool,
    best: f64,
    best_epoch: usize,
    wait: usize,
    best_weights: Vec<(String, Tensor<T>)>,
}

impl<T: Float> EarlyStopping<T> {
    /// Watching `monitor` with `patience`; no `min_delta`, no baseline, best weights
    /// restored, non-finite losses stopping.
    pub fn new(monitor: Monitor, patience: usize) -> Self {
        EarlyStopping {
            monitor,
            patience,
            min_delta: 0.0,
            baseline: None,
            restore_best: true,
            stop_on_non_finite: true,
            best: if monitor.lower_is_better() {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            },
            best_epoch: 0,
            wait: 0,
            best_weights: vec![],
        }
    }

    /// With a minimum improvement.
    pub fn with_min_delta(mut self, d: f64) -> Self {
        self.min_delta = d;
        self
    }

    /// With a baseline to beat.
    pub fn with_baseline(mut self, b: f64) -> Self {
        self.baseline = Some(b);
        self.best = b;
        self
    }

    /// Whether the best weights are restored at the end.
    pub fn with_restore_best(mut self, on: bool) -> Self {
        self.restore_best = on;
        self
    }

    /// The best value so far and its epoch (1-based; 0 before any improvement).
    pub fn best(&self) -> (f64, usize) {
        (self.best, self.best_epoch)
    }
}

impl<T: Float> Callback<T> for EarlyStopping<T> {
    fn name(&self) -> &str {
        "early_stopping"
    }

    fn on_step(&mut self, step: &mut StepEnd<'_, T>) -> Control {
        if self.stop_on_non_finite && !step.loss.is_finite() {
            return Control::Stop(format!(
                "the training loss is {} at step {} (epoch {}, batch {})",
                step.loss,
                step.step,
                step.epoch + 1,
                step.batch
            ));
        }
        Control::Continue
    }

    fn on_epoch_end(&mut self, e: &mut EpochEnd<'_, T>) -> Result<Control> {
        let v = self.monitor.value(e.record);
        if self.stop_on_non_finite && !e.record.train_loss.is_finite() {
            return Ok(Control::Stop(format!(
                "the training loss is {}",
                e.record.train_loss
            )));
        }
        if self.monitor.improves(v, self.best, self.min_delta) {
            self.best = v;
            self.best_epoch = e.record.epoch;
            self.wait = 0;
            if self.restore_best {
                self.best_weights = e
                    .store
                    .iter()
                    .map(|(_, p)| (p.name.clone(), p.value.clone()))
                    .collect();
            }
            return Ok(Control::Continue);
        }
        self.wait += 1;
        if self.wait >= self.patience {
            return Ok(Control::Stop(format!(
                "{} has not improved for {} epochs (best {:.6} at epoch {})",
                self.monitor.name(),
                self.wait,
                self.best,
                self.best_epoch
            )));
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, store: &mut ParamStore<T>) -> Result<()> {
        if !self.restore_best || self.best_weights.is_empty() {
            return Ok(());
        }
        for (name, value) in &self.best_weights {
            if let Some(k) = store.key(name) {
                *store.value_mut(k) = value.clone();
            }
        }
        Ok(())
    }

    fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        ck.set_meta(format!("{prefix}best"), hex(self.best));
        ck.set_meta(format!("{prefix}best_epoch"), self.best_epoch.to_string());
        ck.set_meta(format!("{prefix}wait"), self.wait.to_string());
        ck.set_meta(
            format!("{prefix}weights"),
            self.best_weights.len().to_string(),
        );
        for (name, v) in &self.best_weights {
            ck.insert_float(format!("{prefix}best.{name}"), v);
        }
    }

    fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()> {
        let best = meta_f64(ck, &format!("{prefix}best"))?;
        let best_epoch = meta_usize(ck, &format!("{prefix}best_epoch"))?;
        let wait = meta_usize(ck, &format!("{prefix}wait"))?;
        let n = meta_usize(ck, &format!("{prefix}weights"))?;
        let weights: Vec<(String, Tensor<T>)> = ck
            .entries_with_prefix(&format!("{prefix}best."))
            .map(|(name, _)| {
                let t = ck.float::<T>(name)?;
                Ok((name[prefix.len() + 5..].to_string(), t))
            })
            .collect::<Result<_>>()?;
        if weights.len() != n {
            return Err(ck.error(format!(
                "`{prefix}weights` says {n} saved tensors, the file holds {}",
                weights.len()
            )));
        }
        (self.best, self.best_epoch, self.wait, self.best_weights) =
            (best, best_epoch, wait, weights);
        Ok(())
    }
}

// ---------------------------------------------------------------------- checkpointing

/// Writes the whole training state (a resumable checkpoint) into a folder: `last.ckpt`
/// after every epoch (and every `every_steps` steps inside epochs, if set), and
/// `best.ckpt` for the best epoch by the monitored number, and `best-epoch{N}.ckpt` for
/// each of the `keep_best` best epochs (older ones removed; 0 keeps none besides
/// `best.ckpt`). Every file is written atomically: a crash leaves the previous version,
/// never a half-written one.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    /// The folder.
    pub dir: PathBuf,
    /// The number that ranks epochs.
    pub monitor: Monitor,
    /// How many of the best epochs keep a `best-epoch{N}.ckpt` file.
    pub keep_best: usize,
    /// Also write `last.ckpt` every this many steps (a crash then loses at most that many).
    pub every_steps: Option<usize>,
    /// `(value, epoch)` of the best epoch so far.
    best: Option<(f64, usize)>,
    /// `(value, epoch)` of the kept best epochs, best first.
    kept: VecDeque<(f64, usize)>,
}

impl Checkpointer {
    /// Into `dir`, ranking by `monitor`, keeping the best `keep_best` epochs.
    pub fn new(dir: impl AsRef<Path>, monitor: Monitor, keep_best: usize) -> Self {
        Checkpointer {
            dir: dir.as_ref().to_path_buf(),
            monitor,
            keep_best,
            every_steps: None,
            best: None,
            kept: VecDeque::new(),
        }
    }

    /// Also writes `last.ckpt` every `steps` steps (0: only at epoch ends).
    pub fn with_every_steps(mut self, steps: usize) -> Self {
        self.every_steps = (steps > 0).then_some(steps);
        self
    }

    /// The file of the best epoch's state.
    pub fn best_path(&self) -> PathBuf {
        self.dir.join("best.ckpt")
    }

    /// The file of the last epoch's state.
    pub fn last_path(&self) -> PathBuf {
        self.dir.join("last.ckpt")
    }

    fn epoch_path(&self, epoch: usize) -> PathBuf {
        self.dir.join(format!("best-epoch{epoch}.ckpt"))
    }
}

impl<T: Float> Callback<T> for Checkpointer {
    fn name(&self) -> &str {
        "checkpointer"
    }

    fn on_step(&mut self, step: &mut StepEnd<'_, T>) -> Control {
        if self.every_steps.is_some_and(|n| step.step % n == 0) {
            step.save.push(self.last_path());
        }
        Control::Continue
    }

    fn on_epoch_end(&mut self, e: &mut EpochEnd<'_, T>) -> Result<Control> {
        e.save.push(self.last_path());
        let v = self.monitor.value(e.record);
        if v.is_nan() {
            return Ok(Control::Continue);
        }
        let better = |a: f64, b: f64| {
            if self.monitor.lower_is_better() {
                a < b
            } else {
                a > b
            }
        };
        if self.best.is_none_or(|(b, _)| better(v, b)) {
            self.best = Some((v, e.record.epoch));
            e.save.push(self.best_path());
        }
        let pos = self
            .kept
            .iter()
            .position(|&(b, _)| better(v, b))
            .unwrap_or(self.kept.len());
        if pos < self.keep_best {
            self.kept.insert(pos, (v, e.record.epoch));
            e.save.push(self.epoch_path(e.record.epoch));
            while self.kept.len() > self.keep_best {
                let (_, old) = self.kept.pop_back().expect("longer than keep_best");
                e.remove.push(self.epoch_path(old));
            }
        }
        Ok(Control::Continue)
    }

    fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        let list = |items: &mut dyn Iterator<Item = &(f64, usize)>| -> String {
            items
                .map(|(v, e)| format!("{}:{e}", hex(*v)))
                .collect::<Vec<_>>()
                .join(",")
        };
        ck.set_meta(format!("{prefix}best"), list(&mut self.best.iter()));
        ck.set_meta(format!("{prefix}kept"), list(&mut self.kept.iter()));
    }

    fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()> {
        let read = |name: &str| -> Result<VecDeque<(f64, usize)>> {
            let key = format!("{prefix}{name}");
            let s = ck
                .meta(&key)
                .ok_or_else(|| ck.error(format!("`{key}` is missing")))?;
            s.split(',')
                .filter(|s| !s.is_empty())
                .map(|item| {
                    item.split_once(':')
                        .and_then(|(v, e)| {
                            Some((
                                f64::from_bits(u64::from_str_radix(v, 16).ok()?),
                                e.parse().ok()?,
                            ))
                        })
                        .ok_or_else(|| ck.error(format!("`{key}`: `{item}` is not value:epoch")))
                })
                .collect()
        };
        let best = read("best")?;
        if best.len() > 1 {
            return Err(ck.error(format!("`{prefix}best` holds {} epochs", best.len())));
        }
        self.kept = read("kept")?;
        self.best = best.front().copied();
        Ok(())
    }
}

// ---------------------------------------------------------------------- plateau

/// Multiplies the learning rate by `factor` when the monitored number has not improved for
/// `patience` epochs (PyTorch's `ReduceLROnPlateau`, on top of the per-step schedule).
#[derive(Clone, Debug)]
pub struct ReduceLrOnPlateau {
    /// The watched number.
    pub monitor: Monitor,
    plateau: ReduceOnPlateau,
}

impl ReduceLrOnPlateau {
    /// Watching `monitor`: the factor 0.1 after 10 epochs, PyTorch's defaults.
    pub fn new(monitor: Monitor) -> Self {
        let mode = if monitor.lower_is_better() {
            PlateauMode::Min
        } else {
            PlateauMode::Max
        };
        ReduceLrOnPlateau {
            monitor,
            plateau: ReduceOnPlateau::new(1.0, mode),
        }
    }

    /// With another factor and patience.
    pub fn with(mut self, factor: f64, patience: usize) -> Self {
        self.plateau = self.plateau.with_factor(factor).with_patience(patience);
        self
    }
}

impl<T: Float> Callback<T> for ReduceLrOnPlateau {
    fn name(&self) -> &str {
        "plateau"
    }

    fn on_epoch_end(&mut self, e: &mut EpochEnd<'_, T>) -> Result<Control> {
        // The plateau runs on a rate of 1: what it returns is the scale.
        *e.lr_scale = self.plateau.step(self.monitor.value(e.record));
        Ok(Control::Continue)
    }

    fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        self.plateau.save_state(ck, prefix);
    }

    fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()> {
        self.plateau.load_state(ck, prefix)
    }
}

// ---------------------------------------------------------------------- history files

/// Writes `history.csv` and `history.json` into a folder after every epoch (atomically), so
/// a crashed run's history is on disk up to its last epoch (Keras's `CSVLogger`).
#[derive(Clone, Debug)]
pub struct HistoryWriter {
    /// The folder.
    pub dir: PathBuf,
}

impl HistoryWriter {
    /// Into `dir` (created if needed).
    pub fn new(dir: impl AsRef<Path>) -> Self {
        HistoryWriter {
            dir: dir.as_ref().to_path_buf(),
        }
    }
}

impl<T: Float> Callback<T> for HistoryWriter {
    fn name(&self) -> &str {
        "history_writer"
    }

    fn main_only(&self) -> bool {
        true
    }

    fn on_epoch_end(&mut self, e: &mut EpochEnd<'_, T>) -> Result<Control> {
        e.history.write(&self.dir)?;
        Ok(Control::Continue)
    }

    fn save_state(&self, _ck: &mut Checkpoint, _prefix: &str) {}

    fn load_state(&mut self, _ck: &Checkpoint, _prefix: &str) -> Result<()> {
        Ok(())
    }
}

//! Logging a run to TensorBoard: [`TensorBoardLogger`] for hand-written loops, and the
//! [`TensorBoard`] callback that does the same for the `Trainer`.

use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;

use tapegrad_core::checkpoint::Checkpoint;
use tapegrad_core::{Float, Gradients, ParamStore, Result, Tensor};
use tapegrad_nn::{Forward, LayerStats, Module, Recorder};

use super::event::{Event, Histogram, What};
use super::writer::{HParam, SummaryWriter};
use crate::callbacks::{Callback, Control, EpochEnd, StepEnd};
use crate::history::EpochRecord;
use crate::metrics::ConfusionMatrix;
use crate::plot::{confusion_png, image_grid_png};

/// The layer a parameter belongs to: its name without the last part (`1.weight` → `1`).
fn layer_of(name: &str) -> &str {
    name.rsplit_once('.').map_or(name, |(layer, _)| layer)
}

/// `Σ x²` in `f64`, in 8 lanes (a single running sum is bound by the adds' latency).
fn sum_squares<T: Float>(x: &[T]) -> f64 {
    let mut lanes = [0.0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v.as_f64() * v.as_f64();
        }
    }
    lanes.iter().sum::<f64>() + rest.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>()
}

/// A run's TensorBoard log: a [`SummaryWriter`] and the summaries a training loop writes.
/// Clones share the writer (the callback holds one, the program keeps another for what it
/// logs after training).
///
/// ```
/// use tapegrad_core::{ParamStore, Tensor};
/// use tapegrad_train::tensorboard::{read_logdir, TensorBoardLogger};
/// let dir = std::env::temp_dir().join(format!("tapegrad-tblog-doc-{}", std::process::id()));
/// let log = TensorBoardLogger::new(&dir).unwrap();
/// let mut store = ParamStore::<f32>::new();
/// store.insert("fc.weight", Tensor::from_vec(vec![0.5, -0.5, 1.0, 0.0], [2, 2]));
/// log.scalar("train/loss", 0.7, 1).unwrap();
/// log.weights(&store, 1).unwrap();
/// log.flush().unwrap();
/// let run = &read_logdir(&dir).unwrap()[0];
/// assert_eq!(run.scalars("train/loss").len(), 1);
/// assert_eq!(run.histograms("weights/fc.weight")[0].1.num, 4.0);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone)]
pub struct TensorBoardLogger {
    writer: Rc<RefCell<SummaryWriter>>,
    bins: usize,
}

impl TensorBoardLogger {
    /// A new run in `logdir` (one event file; see [`SummaryWriter::new`]).
    ///
    /// # Errors
    /// As [`SummaryWriter::new`].
    pub fn new(logdir: impl AsRef<Path>) -> Result<Self> {
        Ok(TensorBoardLogger {
            writer: Rc::new(RefCell::new(SummaryWriter::new(logdir)?)),
            bins: 30,
        })
    }

    /// The writer, for any other summary.
    pub fn writer(&self) -> RefMut<'_, SummaryWriter> {
        self.writer.borrow_mut()
    }

    /// Writes what is buffered.
    ///
    /// # Errors
    /// As [`SummaryWriter::flush`].
    pub fn flush(&self) -> Result<()> {
        self.writer().flush()
    }

    /// One scalar.
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn scalar(&self, tag: &str, value: f64, step: usize) -> Result<()> {
        self.writer().add_scalar(tag, value, step)
    }

    /// An epoch's numbers: `epoch/train_loss`, `epoch/train_accuracy`, `epoch/val_loss`,
    /// `epoch/val_accuracy` (when validated), `epoch/lr`, `epoch/seconds`, at `step`.
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn epoch(&self, r: &EpochRecord, step: usize) -> Result<()> {
        let mut v = vec![
            ("epoch/train_loss", r.train_loss),
            ("epoch/train_accuracy", r.train_accuracy),
            ("epoch/lr", r.lr),
            ("epoch/seconds", r.train_seconds + r.eval_seconds),
        ];
        if !r.val_loss.is_nan() {
            v.push(("epoch/val_loss", r.val_loss));
            v.push(("epoch/val_accuracy", r.val_accuracy));
        }
        self.writer().add_scalars(&v, step)
    }

    /// The global L2 norm of the gradients (`grad_norm/global`) and each layer's
    /// (`grad_norm/{layer}`, the parameters named `{layer}.…` together).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn grad_norms<T: Float>(
        &self,
        store: &ParamStore<T>,
        grads: &Gradients<T>,
        step: usize,
    ) -> Result<()> {
        let mut layers: BTreeMap<&str, f64> = BTreeMap::new();
        for (key, g) in grads.params() {
            let Some(p) = store.get(key) else { continue };
            let sq = sum_squares(g.as_slice());
            *layers.entry(layer_of(&p.name)).or_default() += sq;
        }
        let total: f64 = layers.values().sum();
        let tags: Vec<(String, f64)> =
            std::iter::once(("grad_norm/global".to_string(), total.sqrt()))
                .chain(
                    layers
                        .iter()
                        .map(|(l, sq)| (format!("grad_norm/{l}"), sq.sqrt())),
                )
                .collect();
        let refs: Vec<(&str, f64)> = tags.iter().map(|(t, v)| (t.as_str(), *v)).collect();
        self.writer().add_scalars(&refs, step)
    }

    /// A histogram of every trainable parameter (`weights/{name}`).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn weights<T: Float>(&self, store: &ParamStore<T>, step: usize) -> Result<()> {
        let mut w = self.writer();
        for (_, p) in store.iter().filter(|(_, p)| p.requires_grad()) {
            let h = Histogram::of(p.value.as_slice().iter().map(|v| v.as_f64()), self.bins);
            w.add_histogram(&format!("weights/{}", p.name), h, step)?;
        }
        Ok(())
    }

    /// A histogram of every parameter's gradient (`grads/{name}`).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn grads<T: Float>(
        &self,
        store: &ParamStore<T>,
        grads: &Gradients<T>,
        step: usize,
    ) -> Result<()> {
        let mut w = self.writer();
        for (key, g) in grads.params() {
            let Some(p) = store.get(key) else { continue };
            let h = Histogram::of(g.as_slice().iter().map(|v| v.as_f64()), self.bins);
            w.add_histogram(&format!("grads/{}", p.name), h, step)?;
        }
        Ok(())
    }

    /// Per-layer statistics of a [`Recorder`]: histograms of each layer's output
    /// (`activations/{layer}`) and of its gradient when recorded (`activation_grads/{layer}`),
    /// and each layer's fraction of zero outputs (`zero_fraction/{layer}`: for a ReLU, the
    /// units off on the probe).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn layer_stats(&self, stats: &[LayerStats], step: usize) -> Result<()> {
        let mut w = self.writer();
        for s in stats {
            // The statistics are of the finite values, the ones the buckets count.
            let hist = |t: &tapegrad_nn::TensorStats| {
                let n = t.histogram.counts.iter().sum::<usize>() as f64;
                Histogram {
                    min: t.min,
                    max: t.max,
                    num: n,
                    sum: t.mean * n,
                    sum_squares: (t.std * t.std + t.mean * t.mean) * n,
                    bucket_limit: t.histogram.edges.iter().skip(1).copied().collect(),
                    bucket: t.histogram.counts.iter().map(|&c| c as f64).collect(),
                }
            };
            w.add_histogram(
                &format!("activations/{}", s.name),
                hist(&s.activation),
                step,
            )?;
            w.add_scalar(
                &format!("zero_fraction/{}", s.name),
                s.activation.zero_fraction,
                step,
            )?;
            if let Some(g) = &s.gradient {
                w.add_histogram(&format!("activation_grads/{}", s.name), hist(g), step)?;
            }
        }
        Ok(())
    }

    /// The confusion matrix as an image (`tag`).
    ///
    /// # Errors
    /// If it cannot be drawn; as [`SummaryWriter::write_event`].
    pub fn confusion(
        &self,
        tag: &str,
        cm: &ConfusionMatrix,
        names: Option<&[String]>,
        step: usize,
    ) -> Result<()> {
        let title = format!("{:.2}% accurate", 100.0 * cm.accuracy());
        let png = confusion_png(cm, names, &title)?;
        self.writer().add_image_png(tag, &png, step)
    }

    /// A grid of the first `max` images of a batch `[N, C, H, W]` (what the model sees).
    ///
    /// # Errors
    /// As [`image_grid_png`]; as [`SummaryWriter::write_event`].
    pub fn image_grid<T: Float>(
        &self,
        tag: &str,
        images: &Tensor<T>,
        max: usize,
        step: usize,
    ) -> Result<()> {
        let png = image_grid_png(images, max)?;
        self.writer().add_image_png(tag, &png, step)
    }

    /// Text (Markdown).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn text(&self, tag: &str, text: &str, step: usize) -> Result<()> {
        self.writer().add_text(tag, text, step)
    }

    /// Hyperparameters and final metrics (see [`SummaryWriter::add_hparams`]).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn hparams(
        &self,
        hparams: &[(&str, HParam)],
        metrics: &[(&str, f64)],
        step: usize,
    ) -> Result<()> {
        self.writer().add_hparams(hparams, metrics, step)
    }

    /// A `SessionLog.START` at `step`: TensorBoard then drops the events of this run at
    /// `step` and later that an earlier process wrote before it crashed (a resumed run).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn restart_at(&self, step: usize) -> Result<()> {
        self.writer().write_event(&Event {
            wall_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            step: step as i64,
            what: What::SessionStart,
        })
    }
}

/// Logs a `Trainer`'s run to TensorBoard: every `scalars_every` steps the step's loss,
/// learning rate and gradient norms (global and per layer); every `histograms_every` steps
/// (when set) histograms of the weights and gradients, and of each layer's activations on
/// a fixed probe batch (when given); after every epoch its numbers; flushed at each epoch's
/// end, so a running TensorBoard follows the run.
pub struct TensorBoard<'a, T: Float> {
    log: TensorBoardLogger,
    /// Scalars every this many steps (≥ 1).
    pub scalars_every: usize,
    /// Histograms every this many steps (`None`: never).
    pub histograms_every: Option<usize>,
    probe: Option<(&'a dyn Module<T>, Tensor<T>)>,
    resumed_at: Option<usize>,
}

impl<'a, T: Float> TensorBoard<'a, T> {
    /// Logging into `log`: scalars every 10 steps, no histograms.
    pub fn new(log: &TensorBoardLogger) -> Self {
        TensorBoard {
            log: log.clone(),
            scalars_every: 10,
            histograms_every: None,
            probe: None,
            resumed_at: None,
        }
    }

    /// Scalars every `steps` steps.
    pub fn with_scalars_every(mut self, steps: usize) -> Self {
        self.scalars_every = steps.max(1);
        self
    }

    /// Histograms of weights and gradients every `steps` steps.
    pub fn with_histograms_every(mut self, steps: usize) -> Self {
        self.histograms_every = (steps > 0).then_some(steps);
        self
    }

    /// Also histograms of each layer's activations (and their fractions of zeros), from
    /// `model` in evaluation mode on `probe` (a fixed batch), at the histogram steps.
    pub fn with_activations(mut self, model: &'a dyn Module<T>, probe: Tensor<T>) -> Self {
        self.probe = Some((model, probe));
        self
    }

    fn log_step(&mut self, s: &StepEnd<'_, T>) -> Result<()> {
        if let Some(at) = self.resumed_at.take() {
            self.log.restart_at(at + 1)?;
        }
        if s.step % self.scalars_every == 0 {
            self.log
                .writer()
                .add_scalars(&[("step/loss", s.loss), ("step/lr", s.lr)], s.step)?;
            self.log.grad_norms(s.store, s.grads, s.step)?;
        }
        if self.histograms_every.is_some_and(|n| s.step % n == 0) {
            self.log.weights(s.store, s.step)?;
            self.log.grads(s.store, s.grads, s.step)?;
            if let Some((model, x)) = &self.probe {
                let g = tapegrad_core::Graph::new();
                let mut rec = Recorder::new().with_bins(self.log.bins);
                let stats = g.no_grad(|| {
                    let mut f = Forward::eval(&g, s.store).with_recorder(&mut rec);
                    model.forward(&mut f, g.constant(x.clone()));
                    drop(f);
                    rec.report(None)
                });
                self.log.layer_stats(&stats, s.step)?;
            }
        }
        Ok(())
    }
}

impl<T: Float> Callback<T> for TensorBoard<'_, T> {
    fn name(&self) -> &str {
        "tensorboard"
    }

    fn main_only(&self) -> bool {
        true
    }

    fn on_step(&mut self, step: &mut StepEnd<'_, T>) -> Control {
        // A failed write stops the run with its reason rather than losing the log silently.
        match self.log_step(step) {
            Ok(()) => Control::Continue,
            Err(e) => Control::Stop(format!("TensorBoard: {e}")),
        }
    }

    fn on_epoch_end(&mut self, e: &mut EpochEnd<'_, T>) -> Result<Control> {
        self.log.epoch(e.record, e.step)?;
        self.log.flush()?;
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _store: &mut ParamStore<T>) -> Result<()> {
        self.log.flush()
    }

    fn save_state(&self, _ck: &mut Checkpoint, _prefix: &str) {}

    fn load_state(&mut self, ck: &Checkpoint, _prefix: &str) -> Result<()> {
        // Resumed: mark the restart so TensorBoard drops what the crashed process logged
        // after this checkpoint.
        let step = ck
            .meta("trainer.step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        self.resumed_at = Some(step);
        Ok(())
    }
}

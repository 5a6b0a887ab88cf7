//! The training state in one checkpoint, and the exact resume from it.
//!
//! One file (safetensors with the CRC-32C record of [`tapegrad_core::checkpoint`], written
//! atomically) holds:
//!
//! | what | where |
//! |---|---|
//! | parameters and buffers (batch-norm statistics and counters) | their store names |
//! | the optimizer's state (moments, step counts) | `optimizer.…` |
//! | each callback's state (early stopping's best value, patience and weights; the checkpointer's kept files; the plateau's counters) | `callbacks.{name}.…` |
//! | epochs completed, the batch inside the current epoch, steps taken | metadata `trainer.epoch`, `trainer.batch`, `trainer.step` |
//! | the plateau factor on the schedule, the current epoch's running loss and accuracy | `trainer.lr_scale`, `trainer.meter` |
//! | the seed of every random stream | `trainer.seed` |
//! | the number of replicas (data parallelism; 1 for one process) | `trainer.replicas` |
//! | the callbacks, and those of them that only write files | `trainer.callbacks`, `trainer.main_callbacks` |
//! | the history, and why the run stopped | `trainer.history` (JSON), `trainer.stopped` |
//!
//! The schedule is a function of the step, and every random number is drawn from a
//! generator seeded by the seed, the stream, the epoch and the batch, so these are all the
//! state there is: a resumed run takes the same steps with the same numbers as an
//! uninterrupted one, bit for bit (`tests/resume.rs` kills a run and checks).

use std::path::Path;

use tapegrad_core::checkpoint::{Checkpoint, LoadOptions};
use tapegrad_core::{Float, ParamStore, Result};

use crate::callbacks::hex;
use crate::history::History;
use crate::metrics::Meter;
use crate::trainer::{create_parent, RunState, Trainer};

/// The version of the layout above.
const FORMAT: &str = "1";

fn parse_hex(ck: &Checkpoint, key: &str, s: &str) -> Result<f64> {
    u64::from_str_radix(s, 16)
        .map(f64::from_bits)
        .map_err(|_| ck.error(format!("`{key}` is not a number (`{s}`)")))
}

fn get<'c>(ck: &'c Checkpoint, key: &str) -> Result<&'c str> {
    ck.meta(key).ok_or_else(|| {
        ck.error(format!(
            "`{key}` is missing: not a training checkpoint of this trainer"
        ))
    })
}

fn count(ck: &Checkpoint, key: &str) -> Result<usize> {
    let s = get(ck, key)?;
    s.parse()
        .map_err(|_| ck.error(format!("`{key}` is not a count (`{s}`)")))
}

impl<T: Float> Trainer<'_, T> {
    /// The whole training state (see the module docs).
    pub fn snapshot(&self, store: &ParamStore<T>) -> Checkpoint {
        let mut ck = Checkpoint::new();
        ck.add_store(store);
        self.optimizer.save_state(store, &mut ck, "optimizer.");
        for cb in &self.callbacks {
            cb.save_state(&mut ck, &format!("callbacks.{}.", cb.name()));
        }
        let s = &self.state;
        let names: Vec<&str> = self.callbacks.iter().map(|c| c.name()).collect();
        let main_only: Vec<&str> = self
            .callbacks
            .iter()
            .filter(|c| c.main_only())
            .map(|c| c.name())
            .collect();
        let m = &s.meter;
        for (k, v) in [
            ("format", FORMAT.to_string()),
            ("epoch", s.epoch.to_string()),
            ("batch", s.batch.to_string()),
            ("step", s.step.to_string()),
            ("seed", self.config.seed.to_string()),
            ("lr_scale", hex(s.lr_scale)),
            (
                "meter",
                format!("{}:{}:{}", hex(m.loss_sum), m.correct, m.samples),
            ),
            ("train_seconds", hex(s.train_seconds)),
            ("history", s.history.to_json()),
            ("callbacks", names.join(",")),
            ("main_callbacks", main_only.join(",")),
            ("replicas", self.replica().1.to_string()),
        ] {
            ck.set_meta(format!("trainer.{k}"), v);
        }
        if let Some(why) = &s.stopped {
            ck.set_meta("trainer.stopped", why.clone());
        }
        ck
    }

    /// Writes the whole training state to `path` atomically (its folder created if needed).
    ///
    /// # Errors
    /// [`tapegrad_core::Error::Io`] naming the file.
    pub fn save(&self, store: &ParamStore<T>, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        create_parent(path)?;
        self.snapshot(store).save(path)
    }

    /// Continues the run saved in `path`: sets the store's parameters and buffers, the
    /// optimizer's and the callbacks' states and the run's position, so that the next
    /// [`Trainer::fit`] takes exactly the steps the saved run would have taken. The trainer
    /// must be built as the saved one was (same model, optimizer, callbacks and seed).
    ///
    /// # Errors
    /// [`tapegrad_core::Error::Io`] if the file cannot be read;
    /// [`tapegrad_core::Error::Checkpoint`] naming the file if it is damaged, is not a
    /// training checkpoint, or does not fit this trainer (another seed, other callbacks,
    /// parameters missing or unexpected, other shapes). The store and the run's position
    /// then stay as they were; the optimizer and callbacks may be partly set, so build a
    /// fresh trainer before trying another file.
    pub fn resume(&mut self, store: &mut ParamStore<T>, path: impl AsRef<Path>) -> Result<()> {
        let ck = Checkpoint::load(path)?;
        self.resume_from(store, &ck)
    }

    /// [`Trainer::resume`] from a checkpoint in memory.
    ///
    /// # Errors
    /// As [`Trainer::resume`].
    pub fn resume_from(&mut self, store: &mut ParamStore<T>, ck: &Checkpoint) -> Result<()> {
        let format = get(ck, "trainer.format")?;
        if format != FORMAT {
            return Err(ck.error(format!(
                "training checkpoint format {format}; this version reads format {FORMAT}"
            )));
        }
        let seed: u64 = get(ck, "trainer.seed")?
            .parse()
            .map_err(|_| ck.error("`trainer.seed` is not a seed"))?;
        if seed != self.config.seed {
            return Err(ck.error(format!(
                "the run was saved with seed {seed}; this trainer's seed is {} (an exact resume needs the same seed)",
                self.config.seed
            )));
        }
        let replicas = match ck.meta("trainer.replicas") {
            Some(_) => count(ck, "trainer.replicas")?,
            None => 1,
        };
        if replicas != self.replica().1 {
            return Err(ck.error(format!(
                "the run was saved by {replicas} replicas; this trainer is one of {} (resume with as many processes as the run had)",
                self.replica().1
            )));
        }
        // The callbacks that only write files may differ (replicas other than 0 need not
        // have them); the others must be those of the saved run.
        let saved = get(ck, "trainer.callbacks")?;
        let saved_main: Vec<&str> = ck
            .meta("trainer.main_callbacks")
            .map_or(Vec::new(), |s| s.split(',').collect());
        let kept = |n: &&str| !n.is_empty() && !saved_main.contains(n);
        let saved_kept: Vec<&str> = saved.split(',').filter(kept).collect();
        let mine: Vec<&str> = self
            .callbacks
            .iter()
            .filter(|c| !c.main_only())
            .map(|c| c.name())
            .collect();
        if saved_kept != mine {
            let names: Vec<&str> = self.callbacks.iter().map(|c| c.name()).collect();
            return Err(ck.error(format!(
                "the run was saved with the callbacks [{saved}]; this trainer has [{}]",
                names.join(",")
            )));
        }
        let meter = {
            let s = get(ck, "trainer.meter")?;
            let parts: Vec<&str> = s.split(':').collect();
            let bad = || {
                ck.error(format!(
                    "`trainer.meter` is not loss:correct:samples (`{s}`)"
                ))
            };
            if parts.len() != 3 {
                return Err(bad());
            }
            Meter {
                loss_sum: parse_hex(ck, "trainer.meter", parts[0])?,
                correct: parts[1].parse().map_err(|_| bad())?,
                samples: parts[2].parse().map_err(|_| bad())?,
            }
        };
        let state = RunState {
            epoch: count(ck, "trainer.epoch")?,
            batch: count(ck, "trainer.batch")?,
            step: count(ck, "trainer.step")?,
            lr_scale: parse_hex(ck, "trainer.lr_scale", get(ck, "trainer.lr_scale")?)?,
            meter,
            train_seconds: parse_hex(
                ck,
                "trainer.train_seconds",
                get(ck, "trainer.train_seconds")?,
            )?,
            history: History::from_json(get(ck, "trainer.history")?, ck.origin())?,
            stopped: ck.meta("trainer.stopped").map(str::to_string),
        };
        if state.history.epochs.len() != state.epoch {
            return Err(ck.error(format!(
                "`trainer.history` holds {} epochs but `trainer.epoch` says {}",
                state.history.epochs.len(),
                state.epoch
            )));
        }

        // The parameters: every store name must be in the file; what else the file holds
        // must belong to the optimizer or a callback.
        let mut restored = store.clone();
        let opts = LoadOptions {
            allow_unexpected: true,
            ..LoadOptions::strict()
        };
        let report = ck.restore_store(&mut restored, &opts)?;
        if let Some(name) = report
            .unexpected
            .iter()
            .find(|n| !n.starts_with("optimizer.") && !n.starts_with("callbacks."))
        {
            return Err(ck.error(format!(
                "`{name}` is not a parameter or buffer of the model"
            )));
        }
        self.optimizer.load_state(&restored, ck, "optimizer.")?;
        for cb in &mut self.callbacks {
            if cb.main_only() && !saved.split(',').any(|n| n == cb.name()) {
                continue; // a file writer the saved run did not have
            }
            let prefix = format!("callbacks.{}.", cb.name());
            cb.load_state(ck, &prefix)?;
        }
        *store = restored;
        self.state = state;
        Ok(())
    }
}

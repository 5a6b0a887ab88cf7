//! Reduce the learning rate when a validation metric stops improving (PyTorch's
//! `ReduceLROnPlateau`), the one stateful schedule. Its state goes into checkpoints.

use tapegrad_core::checkpoint::Checkpoint;
use tapegrad_core::Result;

/// Whether a lower or a higher metric is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateauMode {
    /// Lower is better (a loss).
    Min,
    /// Higher is better (an accuracy).
    Max,
}

/// Multiplies the rate by `factor` after `patience` epochs without improvement (relative
/// threshold `threshold`), then waits `cooldown` epochs; never below `min_lr`.
#[derive(Clone, Debug, PartialEq)]
pub struct ReduceOnPlateau {
    lr: f64,
    mode: PlateauMode,
    factor: f64,
    patience: usize,
    threshold: f64,
    relative: bool,
    cooldown: usize,
    min_lr: f64,
    eps: f64,
    best: f64,
    bad_epochs: usize,
    cooldown_counter: usize,
    epochs: usize,
}

impl ReduceOnPlateau {
    /// PyTorch's defaults (factor 0.1, patience 10, relative threshold 1e-4, no cooldown,
    /// min_lr 0), starting at `lr`.
    pub fn new(lr: f64, mode: PlateauMode) -> Self {
        ReduceOnPlateau {
            lr,
            mode,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            relative: true,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            best: if mode == PlateauMode::Min {
                f64::INFINITY
            } else {
                f64::NEG_INFINITY
            },
            bad_epochs: 0,
            cooldown_counter: 0,
            epochs: 0,
        }
    }

    /// With a threshold, relative (`best·(1 ∓ threshold)`) or absolute (`best ∓ threshold`).
    pub fn with_threshold(mut self, t: f64, relative: bool) -> Self {
        self.threshold = t;
        self.relative = relative;
        self
    }

    /// The current rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The best metric so far.
    pub fn best(&self) -> f64 {
        self.best
    }

    fn is_better(&self, a: f64) -> bool {
        match (self.mode, self.relative) {
            (PlateauMode::Min, true) => a < self.best * (1.0 - self.threshold),
            (PlateauMode::Min, false) => a < self.best - self.threshold,
            (PlateauMode::Max, true) => a > self.best * (1.0 + self.threshold),
            (PlateauMode::Max, false) => a > self.best + self.threshold,
        }
    }

    /// Records one epoch's metric and returns the rate for the next epoch.
    pub fn step(&mut self, metric: f64) -> f64 {
        self.epochs += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.bad_epochs = 0;
        }
        if self.bad_epochs > self.patience {
            let new = (self.lr * self.factor).max(self.min_lr);
            if self.lr - new > self.eps {
                self.lr = new;
            }
            self.cooldown_counter = self.cooldown;
            self.bad_epochs = 0;
        }
        self.lr
    }

    /// Writes the state into `ck`'s metadata under `prefix`.
    pub fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        ck.set_meta(
            format!("{prefix}plateau"),
            format!(
                "{:e} {:e} {} {} {}",
                self.lr, self.best, self.bad_epochs, self.cooldown_counter, self.epochs
            ),
        );
    }

    /// Restores the state written by [`ReduceOnPlateau::save_state`] (the configuration is
    /// the receiver's).
    ///
    /// # Errors
    /// [`tapegrad_core::Error::Checkpoint`] if the entry is missing or malformed.
    pub fn load_state(&mut self, ck: &Checkpoint, prefix: &str) -> Result<()> {
        let key = format!("{prefix}plateau");
        let err = || ck.error(format!("no valid plateau state under `{key}`"));
        let s = ck.meta(&key).ok_or_else(err)?;
        let f: Vec<&str> = s.split(' ').collect();
        let [lr, best, bad, cooldown, epochs] = f.as_slice() else {
            return Err(err());
        };
        let lr: f64 = lr.parse().map_err(|_| err())?;
        let best: f64 = best.parse().map_err(|_| err())?;
        if !(lr.is_finite() && lr >= 0.0) || best.is_nan() {
            return Err(ck.error(format!(
                "`{key}` holds a learning rate of {lr} and a best value of {best}"
            )));
        }
        let bad_epochs = bad.parse().map_err(|_| err())?;
        let cooldown_counter = cooldown.parse().map_err(|_| err())?;
        let epochs = epochs.parse().map_err(|_| err())?;
        (
            self.lr,
            self.best,
            self.bad_epochs,
            self.cooldown_counter,
            self.epochs,
        ) = (lr, best, bad_epochs, cooldown_counter, epochs);
        Ok(())
    }
}

tapegrad_core::setters! { ReduceOnPlateau {
    /// With a reduction factor (< 1).
    with_factor(f: f64) => factor = f;
    /// With a patience.
    with_patience(p: usize) => patience = p;
    /// With a cooldown.
    with_cooldown(c: usize) => cooldown = c;
    /// With a floor.
    with_min_lr(m: f64) => min_lr = m;
}}

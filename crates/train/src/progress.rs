//! Progress of a run: an indicatif bar on a terminal, one plain line per epoch elsewhere
//! (a log file, CI), or nothing.
//!
//! Everything goes to standard error, so a program's standard output (a results table, a
//! JSON line) stays clean. The bar's message — loss, accuracy, learning rate, throughput —
//! is rebuilt at most every 50 ms, so a fast loop does not pay for formatting.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::history::EpochRecord;
use crate::metrics::Meter;

/// How a run shows its progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Progress {
    /// A bar when standard error is a terminal, plain lines otherwise.
    #[default]
    Auto,
    /// Always the bar (it draws nothing when standard error is not a terminal).
    Bar,
    /// One plain line per epoch.
    Lines,
    /// Nothing.
    Quiet,
}

impl Progress {
    /// `Auto` made definite for this process.
    fn resolve(self) -> Progress {
        match self {
            Progress::Auto if std::io::stderr().is_terminal() => Progress::Bar,
            Progress::Auto => Progress::Lines,
            p => p,
        }
    }
}

const REFRESH: Duration = Duration::from_millis(50);

/// Draws a run's progress (see the module docs).
pub(crate) struct Reporter {
    mode: Progress,
    epochs: usize,
    bar: Option<ProgressBar>,
    last_message: Instant,
    epoch_start: Instant,
    epoch_samples: u64,
}

/// One line of the epoch's numbers, as the bar and the plain lines show them.
fn summary(r: &EpochRecord, samples_per_s: f64) -> String {
    let mut s = format!(
        "loss {:.4}  acc {:.2}%",
        r.train_loss,
        100.0 * r.train_accuracy
    );
    if !r.val_loss.is_nan() {
        s += &format!(
            "  val_loss {:.4}  val_acc {:.2}%",
            r.val_loss,
            100.0 * r.val_accuracy
        );
    }
    s + &format!(
        "  lr {:.2e}  {:.0} samples/s  {:.3} s",
        r.lr,
        samples_per_s,
        r.train_seconds + r.eval_seconds
    )
}

impl Reporter {
    /// For a run of `epochs` epochs.
    pub(crate) fn new(progress: Progress, epochs: usize) -> Self {
        Reporter {
            mode: progress.resolve(),
            epochs,
            bar: None,
            last_message: Instant::now(),
            epoch_start: Instant::now(),
            epoch_samples: 0,
        }
    }

    /// An epoch (0-based) of `batches` batches begins at batch `first`.
    pub(crate) fn start_epoch(&mut self, epoch: usize, batches: usize, first: usize) {
        self.epoch_start = Instant::now();
        self.epoch_samples = 0;
        if self.mode != Progress::Bar {
            return;
        }
        let width = self.epochs.to_string().len();
        let style =
            ProgressStyle::with_template("{prefix} [{bar:25.cyan/blue}] {pos:>3}/{len:3} {msg}")
                .expect("a valid template")
                .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_prefix(format!("epoch {:>width$}/{}", epoch + 1, self.epochs))
            .with_position(first as u64);
        self.bar = Some(bar);
    }

    /// A step ended: `done` batches of the epoch are done, the epoch's meter so far, the
    /// step's learning rate and batch size.
    pub(crate) fn step(&mut self, done: usize, meter: &Meter, lr: f64, batch: usize) {
        self.epoch_samples += batch as u64;
        let Some(bar) = &self.bar else { return };
        bar.set_position(done as u64);
        if self.last_message.elapsed() >= REFRESH {
            self.last_message = Instant::now();
            let rate = self.epoch_samples as f64 / self.epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!(
                "loss {:.4}  acc {:.2}%  lr {:.2e}  {:.0} samples/s",
                meter.loss(),
                100.0 * meter.accuracy(),
                lr,
                rate
            ));
        }
    }

    /// The epoch ended with `record`; `stop` is why the run stops here, if it does.
    pub(crate) fn end_epoch(&mut self, record: &EpochRecord, stop: Option<&str>) {
        let rate = self.epoch_samples as f64 / record.train_seconds.max(1e-9);
        let line = summary(record, rate);
        match self.mode {
            Progress::Bar => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_with_message(line);
                }
            }
            Progress::Lines => {
                let width = self.epochs.to_string().len();
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "epoch {:>width$}/{}  {line}",
                    record.epoch,
                    self.epochs
                );
            }
            _ => {}
        }
        if let (Some(why), true) = (stop, self.mode != Progress::Quiet) {
            let _ = writeln!(std::io::stderr().lock(), "stopping: {why}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_what_was_measured() {
        let r = EpochRecord {
            epoch: 2,
            train_loss: 0.5,
            train_accuracy: 0.75,
            val_loss: f64::NAN,
            val_accuracy: f64::NAN,
            lr: 1e-3,
            train_seconds: 0.5,
            eval_seconds: 0.0,
        };
        let s = summary(&r, 1000.0);
        assert_eq!(
            s,
            "loss 0.5000  acc 75.00%  lr 1.00e-3  1000 samples/s  0.500 s"
        );
        let with_val = EpochRecord {
            val_loss: 0.25,
            val_accuracy: 0.5,
            ..r
        };
        assert!(summary(&with_val, 1.0).contains("val_loss 0.2500  val_acc 50.00%"));
    }
}

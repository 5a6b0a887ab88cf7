//! What the training examples print and write: the final table, one JSON line in the
//! fields of the PyTorch scripts, and the results folder (plots, history, confusion
//! matrix, model).

#![allow(dead_code)] // each example uses part of it

use std::path::{Path, PathBuf};

use serde_json::json;
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;
use tapegrad::train::{plot_confusion, plot_history};

use crate::recipe::{Recipe, Splits, Trained};

/// The epoch (1-based) and value of the best validation loss by early stopping's rule.
pub fn best_epoch(t: &Trained, r: &Recipe) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for e in &t.history.epochs {
        if e.val_loss < best.1 - r.min_delta {
            best = (e.epoch, e.val_loss);
        }
    }
    best
}

/// Writes the plots, the history, the confusion matrix (CSV and PNG) and the restored
/// model's weights into `dir`; returns the files written.
pub fn write_results(
    dir: &Path,
    t: &Trained,
    data: &Splits,
    names: Option<&[String]>,
) -> Result<Vec<PathBuf>> {
    let mut files = plot_history(&t.history, dir)?;
    t.history.write(dir)?;
    files.push(dir.join("history.csv"));
    files.push(dir.join("history.json"));
    let cm = t.test.confusion(data.classes);
    let csv = dir.join("confusion.csv");
    write_atomic(&csv, cm.to_csv().as_bytes())?;
    files.push(csv);
    let png = dir.join("confusion.png");
    let title = format!("Test set: {:.2}% accurate", 100.0 * cm.accuracy());
    plot_confusion(&cm, names, &title, &png)?;
    files.push(png);
    let model = dir.join("model.safetensors");
    tapegrad::nn::save(&t.store, &model)?;
    files.push(model);
    Ok(files)
}

/// The final table: data, test accuracy, per-class scores, epochs, time.
pub fn print_table(
    t: &Trained,
    r: &Recipe,
    data: &Splits,
    names: Option<&[String]>,
    threads: usize,
) {
    let cm = t.test.confusion(data.classes);
    let (best, best_loss) = best_epoch(t, r);
    println!();
    println!("data            {}", data.name);
    println!(
        "split           {} train / {} validation / {} test, {} classes",
        data.train.len(),
        data.val.len(),
        data.test.len(),
        data.classes
    );
    println!("test accuracy   {:.2}%", 100.0 * t.test.accuracy());
    println!("test loss       {:.4}", t.test.loss());
    let why = t.outcome.stopped.as_deref().unwrap_or("the last epoch");
    println!(
        "epochs          {} of {} (stopped: {why})",
        t.outcome.epochs, r.epochs
    );
    println!("best epoch      {best} (validation loss {best_loss:.4}; its weights restored)");
    println!(
        "time per epoch  {:.2} ms training ({} steps), {:.2} ms validation; fit {:.3} s on {threads} thread{}",
        1e3 * t.train_s_per_epoch(),
        t.steps_per_epoch,
        1e3 * t.eval_s_per_epoch(),
        t.wall_s,
        if threads == 1 { "" } else { "s" }
    );
    println!();
    println!(
        "{:>12}  {:>9}  {:>7}  {:>7}  {:>7}",
        "class", "precision", "recall", "f1", "support"
    );
    for (c, s) in cm.scores().iter().enumerate() {
        let name = names
            .and_then(|n| n.get(c))
            .cloned()
            .unwrap_or_else(|| c.to_string());
        println!(
            "{name:>12}  {:>8.2}%  {:>6.2}%  {:>6.2}%  {:>7}",
            100.0 * s.precision,
            100.0 * s.recall,
            100.0 * s.f1,
            s.support
        );
    }
}

/// One JSON line with the fields and meanings of the PyTorch script's.
pub fn json_line(workload: &str, t: &Trained, r: &Recipe, data: &Splits, threads: usize) -> String {
    let (best, best_loss) = best_epoch(t, r);
    let best_val_acc = t
        .history
        .epochs
        .get(best.wrapping_sub(1))
        .map_or(f64::NAN, |e| e.val_accuracy);
    let round = |v: f64, d: i32| (v * 10f64.powi(d)).round() / 10f64.powi(d);
    json!({
        "peer": "tapegrad",
        "workload": workload,
        "test_accuracy": round(t.test.accuracy(), 4),
        "best_val_accuracy": round(best_val_acc, 4),
        "best_val_loss": round(best_loss, 5),
        "best_epoch": best,
        "epochs": t.outcome.epochs,
        "max_epochs": r.epochs,
        "wall_s": round(t.wall_s, 4),
        "train_s_per_epoch": round(t.train_s_per_epoch(), 5),
        "eval_s_per_epoch": round(t.eval_s_per_epoch(), 5),
        "steps_per_epoch": t.steps_per_epoch,
        "threads": threads,
        "seed": r.seed,
        "augment": r.augment,
        "n_train": data.train.len(),
        "n_val": data.val.len(),
        "n_test": data.test.len(),
    })
    .to_string()
}

/// The process's resident memory and its peak, in MB (`/proc/self/status`; NaN elsewhere).
pub fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Records the resident memory after every epoch (memory must stay flat over epochs).
pub struct RssProbe(pub std::rc::Rc<std::cell::RefCell<Vec<f64>>>);

impl tapegrad::train::Callback<f32> for RssProbe {
    fn name(&self) -> &str {
        "rss_probe"
    }
    fn on_epoch_end(
        &mut self,
        _e: &mut tapegrad::train::EpochEnd<'_, f32>,
    ) -> Result<tapegrad::train::Control> {
        self.0.borrow_mut().push(rss_mb().0);
        Ok(tapegrad::train::Control::Continue)
    }
    fn save_state(&self, _ck: &mut Checkpoint, _prefix: &str) {}
    fn load_state(&mut self, _ck: &Checkpoint, _prefix: &str) -> Result<()> {
        Ok(())
    }
}

/// The training examples' TensorBoard options.
#[derive(clap::Args, Debug)]
pub struct TensorBoardArgs {
    /// Log the run to TensorBoard under DIR/{run} (scalars, histograms, images, text,
    /// hyperparameters); the run's folder name is the example's.
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
    /// With --tensorboard: histograms of weights, gradients and activations every N steps
    /// (0: none).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub histograms_every: usize,
}

/// This process's place in an `mpirun` job (`--distributed`), or, in a build without the
/// `mpi` feature, an error that says how to build one.
pub fn communicator() -> Result<std::rc::Rc<dyn tapegrad::train::Collective>> {
    #[cfg(feature = "mpi")]
    {
        Ok(std::rc::Rc::new(tapegrad::dist::Communicator::init()?))
    }
    #[cfg(not(feature = "mpi"))]
    {
        Err(Error::argument(
            "--distributed",
            "this example was built without MPI: build it with `cargo build --release --features mpi --example NAME` (Open MPI and libclang needed), then run `mpirun -np 2 target/release/examples/NAME --distributed`",
        ))
    }
}

impl TensorBoardArgs {
    /// The logger of run `run` (none without --tensorboard).
    pub fn logger(
        &self,
        run: &str,
    ) -> Result<Option<tapegrad::train::tensorboard::TensorBoardLogger>> {
        self.tensorboard
            .as_ref()
            .map(|dir| tapegrad::train::tensorboard::TensorBoardLogger::new(dir.join(run)))
            .transpose()
    }

    /// What `RunOptions::tensorboard` takes: a clone of the logger and the histogram interval.
    pub fn run_option(
        &self,
        log: &Option<tapegrad::train::tensorboard::TensorBoardLogger>,
    ) -> Option<(tapegrad::train::tensorboard::TensorBoardLogger, usize)> {
        log.clone().map(|l| (l, self.histograms_every))
    }
}

/// What a run logs to TensorBoard after training: the test confusion matrix, a grid of
/// training images as the model sees them (augmented, when augmenting), the recipe as text,
/// and the hyperparameters with the final metrics (the HParams dashboard).
pub fn log_run(
    log: &tapegrad::train::tensorboard::TensorBoardLogger,
    t: &Trained,
    r: &Recipe,
    data: &Splits,
    names: Option<&[String]>,
    threads: usize,
) -> Result<()> {
    use tapegrad::train::tensorboard::HParam;
    let step = t.outcome.steps;
    log.confusion(
        "test/confusion_matrix",
        &t.test.confusion(data.classes),
        names,
        step,
    )?;
    let mut loader = DataLoader::new(&data.train, r.batch).with_shuffle(r.seed);
    if r.augment {
        loader = loader.with_transform(
            tapegrad::data::RandomTranslate {
                max_dx: 1,
                max_dy: 1,
            },
            r.seed,
        );
    }
    if let Some(batch) = loader.epoch(0).next() {
        log.image_grid("train/batch_0", &batch.x, 64, 0)?;
    }
    let (best, best_loss) = best_epoch(t, r);
    log.text(
        "recipe",
        &format!(
            "| | |\n|---|---|\n| data | {} |\n| split | {} / {} / {} |\n| hidden | {:?} |\n| dropout | {} |\n\
             | AdamW | lr {}, weight decay {} |\n| schedule | warm-up {} epochs, cosine to epoch {} |\n\
             | batch | {} |\n| early stopping | patience {}, min delta {} |\n| augment | {} |\n| seed | {} |\n| threads | {} |",
            data.name, data.train.len(), data.val.len(), data.test.len(), r.hidden, r.dropout, r.lr,
            r.weight_decay, r.warmup_epochs, r.epochs, r.batch, r.patience, r.min_delta, r.augment, r.seed, threads
        ),
        0,
    )?;
    log.hparams(
        &[
            ("seed", HParam::from(r.seed)),
            ("augment", HParam::from(r.augment)),
            ("lr", HParam::from(r.lr)),
            ("weight_decay", HParam::from(r.weight_decay)),
            ("dropout", HParam::from(r.dropout)),
            ("batch", HParam::from(r.batch)),
            ("epochs", HParam::from(r.epochs)),
        ],
        &[
            ("hparams/test_accuracy", t.test.accuracy()),
            ("hparams/best_val_loss", best_loss),
            ("hparams/best_epoch", best as f64),
            ("hparams/epochs_run", t.outcome.epochs as f64),
        ],
        step,
    )?;
    log.flush()
}

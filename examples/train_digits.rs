//! The main job: train an MLP on the bundled handwritten digits, end to end.
//!
//! Run: `cargo run --release --example train_digits` (`-- --help` for the options)
//!
//! The recipe of `../shared/peers/python/train_digits_torch.py`, step for step: pixels
//! scaled to [0, 1]; a stratified 80/20 train/test split, then 10% of the training part
//! held out (stratified) for validation; Linear(64,128) → BatchNorm1d → ReLU → Dropout(0.2)
//! → Linear(128,64) → BatchNorm1d → ReLU → Dropout(0.2) → Linear(64,10), He initialisation;
//! AdamW (lr 1e-2, weight decay 1e-4) with a per-step schedule (linear warm-up over 3
//! epochs, cosine decay to 0 at epoch 60); batch 64, reshuffled each epoch; early stopping
//! with patience 10 on the validation loss, best weights restored. `--augment` adds a
//! random ±1-pixel translation; `--mnist DIR` trains on any MNIST-format folder instead.
//!
//! It shows progress, prints a final table, and writes the plots (PNG), the history (CSV,
//! JSON), the confusion matrix, the model and a resumable checkpoint (`last.ckpt`, resume
//! with `--resume results/train_digits/last.ckpt --epochs N`) under `--results`. Any
//! failure exits non-zero with the error.
//!
//! `--distributed` trains data-parallel as one rank of an `mpirun` job (the `mpi` feature:
//! `cargo build --release --features mpi --example train_digits`, then
//! `mpirun -np 2 target/release/examples/train_digits --distributed`): each rank takes its
//! half of every batch of 64, and rank 0 prints and writes the results.

#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tapegrad::prelude::*;

/// Train the digits MLP (the recipe of train_digits_torch.py).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Epochs (the cosine schedule reaches 0 at the last).
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Seed of the splits, the initialisation, the shuffles, dropout and augmentation.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// AdamW's peak learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Threads for the kernels.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Random ±1-pixel translation of the training images.
    #[arg(long)]
    augment: bool,
    /// Train on an MNIST-format folder (e.g. /usr/share/datasets/fashion-mnist) instead.
    #[arg(long, value_name = "DIR")]
    mnist: Option<PathBuf>,
    /// Continue the run saved in this training checkpoint.
    #[arg(long, value_name = "PATH")]
    resume: Option<PathBuf>,
    /// Where the plots, history, checkpoints and model go.
    #[arg(long, value_name = "DIR", default_value = "results/train_digits")]
    results: PathBuf,
    /// No progress and no table (errors still go to standard error).
    #[arg(long)]
    quiet: bool,
    // TensorBoard logging (runs under DIR/train_digits-seed{S}[-augment]).
    #[command(flatten)]
    tb: report::TensorBoardArgs,
    /// Print one JSON line at the end (the fields of train_digits_torch.py's).
    #[arg(long)]
    json: bool,
    /// Train data-parallel as one rank of an `mpirun` job (needs the `mpi` feature).
    #[arg(long)]
    distributed: bool,
    /// With --distributed: batch normalisation with the statistics of the whole global
    /// batch (PyTorch's SyncBatchNorm) instead of each rank's own.
    #[arg(long)]
    sync_batchnorm: bool,
    /// With --distributed: start each bucket's gradient allreduce during the backward pass
    /// (PyTorch DDP's overlap) instead of after it; the result is bit-identical.
    #[arg(long)]
    overlap: bool,
}

fn run(a: &Args) -> Result<()> {
    if a.distributed {
        return run_on(a, Some(report::communicator()?));
    }
    if a.sync_batchnorm {
        return Err(Error::argument(
            "--sync-batchnorm",
            "synchronised batch normalisation needs --distributed",
        ));
    }
    if a.overlap {
        return Err(Error::argument(
            "--overlap",
            "overlapping the gradient allreduce with backward needs --distributed",
        ));
    }
    run_on(a, None)
}

fn run_on(a: &Args, comm: Option<std::rc::Rc<dyn tapegrad::train::Collective>>) -> Result<()> {
    // Replicas other than 0 train in silence and write nothing.
    let main = comm.as_ref().is_none_or(|c| c.rank() == 0);
    let quiet = a.quiet || !main;
    tapegrad::kernels::threads::set_num_threads(a.threads);
    let r = recipe::Recipe {
        epochs: a.epochs,
        seed: a.seed,
        lr: a.lr,
        augment: a.augment,
        ..recipe::Recipe::digits()
    };
    let data = match &a.mnist {
        Some(dir) => recipe::mnist_splits(dir, None, a.seed)?,
        None => recipe::digits_splits(a.seed)?,
    };
    let run = format!(
        "train_digits-seed{}{}",
        a.seed,
        if r.augment { "-augment" } else { "" }
    );
    let tensorboard = if main { a.tb.logger(&run)? } else { None };
    let opts = recipe::RunOptions {
        tensorboard: a.tb.run_option(&tensorboard),
        progress: if quiet {
            Progress::Quiet
        } else {
            Progress::Auto
        },
        dir: Some(a.results.clone()),
        resume: a.resume.clone(),
        collective: comm,
        sync_batchnorm: a.sync_batchnorm,
        overlap: a.overlap,
        ..Default::default()
    };
    let trained = recipe::train(&r, &data, opts)?;
    if !main {
        return Ok(());
    }
    let files = report::write_results(&a.results, &trained, &data, None)?;
    if let Some(log) = &tensorboard {
        report::log_run(log, &trained, &r, &data, None, a.threads)?;
    }
    if !a.quiet {
        report::print_table(&trained, &r, &data, None, a.threads);
        let names: Vec<String> = files
            .iter()
            .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        println!(
            "\nwrote {}/ {}, last.ckpt, best.ckpt",
            a.results.display(),
            names.join(", ")
        );
    }
    if a.json {
        println!(
            "{}",
            report::json_line("train_digits", &trained, &r, &data, a.threads)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    recipe::exit_code("train_digits", run(&Args::parse()))
}

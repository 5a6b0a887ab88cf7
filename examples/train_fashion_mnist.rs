//! Real data: an MLP on Fashion-MNIST (60,000 training and 10,000 test images of 28×28).
//!
//! Run: `cargo run --release --example train_fashion_mnist` (`-- --help` for the options)
//!
//! The recipe of `../shared/peers/python/train_fmnist_torch.py` (its docstring is the
//! specification): pixels / 255; the official train/test split, 5,000 training images held
//! out for validation (stratified: 500 per class); Flatten → Linear(784,256) → BatchNorm1d
//! → ReLU → Dropout(0.2) → Linear(256,128) → BatchNorm1d → ReLU → Dropout(0.2) →
//! Linear(128,10), He initialisation, biases zero; AdamW (lr 2e-3, weight decay 1e-4) with
//! a per-step schedule (linear warm-up over 1 epoch, cosine to 0 at epoch 15); batch 128,
//! reshuffled each epoch; early stopping with patience 4 on the validation loss (min delta
//! 1e-4), best weights restored before the test evaluation.
//!
//! The data comes from Debian's package `dataset-fashion-mnist`, which installs the four
//! IDX files (gzip) under `/usr/share/datasets/fashion-mnist/`; `--data DIR` reads another
//! folder of the same files.
//!
//! `--distributed` trains data-parallel as one rank of an `mpirun` job (the `mpi` feature:
//! `cargo build --release --features mpi --example train_fashion_mnist`, then
//! `mpirun -np 2 target/release/examples/train_fashion_mnist --distributed --threads 1`):
//! each rank takes its half of every batch of 128, and rank 0 prints and writes the results.

#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tapegrad::prelude::*;

/// Train the Fashion-MNIST MLP (the recipe of train_fmnist_torch.py).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The folder of the four IDX files (raw or gzip).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/usr/share/datasets/fashion-mnist"
    )]
    data: PathBuf,
    /// Epochs (the cosine schedule reaches 0 at the last).
    #[arg(long, default_value_t = 15)]
    epochs: usize,
    /// Seed of the split, the initialisation, the shuffles and dropout.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the kernels.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where the plots, history, checkpoints and model go.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "results/train_fashion_mnist"
    )]
    results: PathBuf,
    /// Continue the run saved in this training checkpoint.
    #[arg(long, value_name = "PATH")]
    resume: Option<PathBuf>,
    /// No progress and no table (errors still go to standard error).
    #[arg(long)]
    quiet: bool,
    // TensorBoard logging (runs under DIR/train_fmnist-seed{S}).
    #[command(flatten)]
    tb: report::TensorBoardArgs,
    /// Print one JSON line at the end (the fields of train_fmnist_torch.py's).
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

const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

fn run(a: &Args) -> Result<()> {
    if !a.data.is_dir() {
        return Err(Error::Data {
            path: a.data.display().to_string(),
            message: "no such folder: Fashion-MNIST comes with Debian's package \
                      dataset-fashion-mnist (`apt install dataset-fashion-mnist`), or give \
                      the folder of its four IDX files with --data DIR"
                .into(),
        });
    }
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
    tapegrad::kernels::threads::set_num_threads(a.threads);
    let r = recipe::Recipe {
        epochs: a.epochs,
        seed: a.seed,
        ..recipe::Recipe::fashion_mnist()
    };
    let loaded = std::time::Instant::now();
    let data = recipe::mnist_splits(&a.data, Some(5000), a.seed)?;
    let load_s = loaded.elapsed().as_secs_f64();
    let rss = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let tensorboard = if main {
        a.tb.logger(&format!("train_fmnist-seed{}", a.seed))?
    } else {
        None
    };
    let opts = recipe::RunOptions {
        tensorboard: a.tb.run_option(&tensorboard),
        progress: if a.quiet || !main {
            Progress::Quiet
        } else {
            Progress::Auto
        },
        dir: Some(a.results.clone()),
        resume: a.resume.clone(),
        extra: Some(Box::new(report::RssProbe(rss.clone()))),
        collective: comm,
        sync_batchnorm: a.sync_batchnorm,
        overlap: a.overlap,
        ..Default::default()
    };
    let trained = recipe::train(&r, &data, opts)?;
    if !main {
        return Ok(());
    }
    let names: Vec<String> = CLASSES.iter().map(|s| s.to_string()).collect();
    report::write_results(&a.results, &trained, &data, Some(&names))?;
    if let Some(log) = &tensorboard {
        report::log_run(log, &trained, &r, &data, Some(&names), a.threads)?;
    }
    if !a.quiet {
        report::print_table(&trained, &r, &data, Some(&names), a.threads);
        println!(
            "data loaded in {load_s:.2} s; results in {}/",
            a.results.display()
        );
    }
    if a.json {
        let line = report::json_line("train_fmnist", &trained, &r, &data, a.threads);
        let mut v: serde_json::Value = serde_json::from_str(&line).expect("our own JSON");
        v["load_s"] = serde_json::json!((load_s * 1e3).round() / 1e3);
        // Resident memory after each epoch and the peak, in MB.
        let per_epoch: Vec<f64> = rss
            .borrow()
            .iter()
            .map(|m| (m * 10.0).round() / 10.0)
            .collect();
        v["rss_mb_by_epoch"] = serde_json::json!(per_epoch);
        v["peak_rss_mb"] = serde_json::json!((report::rss_mb().1 * 10.0).round() / 10.0);
        println!("{v}");
    }
    Ok(())
}

fn main() -> ExitCode {
    recipe::exit_code("train_fashion_mnist", run(&Args::parse()))
}

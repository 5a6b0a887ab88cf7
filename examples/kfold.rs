//! 5-fold stratified cross-validation of the digits recipe, and the 5 models as an
//! ensemble.
//!
//! Run: `cargo run --release --example kfold` (`-- --help` for the options)
//!
//! The bundled digits are split as in `train_digits` (stratified 80/20 train/test). The
//! training part is cut into 5 stratified folds (`StratifiedKFold`, shuffled with the
//! seed); each fold's model trains on the other four with the `train_digits` recipe, early
//! stopping watching the held-out fold, and is scored on its fold and on the test split.
//! The cross-validation estimate is the mean ± standard deviation of the fold accuracies;
//! the 5 models then vote on the test split by averaging their probabilities.

#[path = "common/folds.rs"]
mod folds;
#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;

/// k-fold cross-validation of the digits MLP, and the k models' ensemble.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Epochs per fold.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Seed of the splits and folds; fold i's model uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the kernels.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Where the per-fold table goes (`folds.csv`).
    #[arg(long, value_name = "DIR", default_value = "results/kfold")]
    results: PathBuf,
    // TensorBoard logging (runs under DIR/kfold-seed{S}-fold{i}).
    #[command(flatten)]
    tb: report::TensorBoardArgs,
    /// Print one JSON line at the end.
    #[arg(long)]
    json: bool,
}

fn run(a: &Args) -> Result<()> {
    tapegrad::kernels::threads::set_num_threads(a.threads);
    let f = folds::digits_folds(a.folds, a.seed)?;
    println!(
        "digits: {} for cross-validation in {} stratified folds, {} for the test",
        f.rest.len(),
        a.folds,
        f.test.len()
    );
    println!(
        "\n{:>5}  {:>7}  {:>7}  {:>6}  {:>9}  {:>8}",
        "fold", "train", "held", "epochs", "fold acc", "test acc"
    );
    let mut trained = Vec::new();
    let mut csv = String::from("fold,train,held_out,epochs,fold_accuracy,test_accuracy\n");
    for i in 0..a.folds {
        let tensorboard = a.tb.logger(&format!("kfold-seed{}-fold{i}", a.seed))?;
        let opts = recipe::RunOptions {
            progress: Progress::Quiet,
            tensorboard: a.tb.run_option(&tensorboard),
            ..Default::default()
        };
        let m = folds::train_fold(&f, i, a.epochs, a.seed, opts)?;
        let t = &m.trained;
        if let Some(log) = &tensorboard {
            report::log_run(log, t, &m.recipe, &m.data, None, a.threads)?;
        }
        println!(
            "{i:>5}  {:>7}  {:>7}  {:>6}  {:>8.2}%  {:>7.2}%",
            m.data.train.len(),
            m.data.val.len(),
            t.outcome.epochs,
            100.0 * m.held_accuracy,
            100.0 * t.test.accuracy()
        );
        csv += &format!(
            "{i},{},{},{},{},{}\n",
            m.data.train.len(),
            m.data.val.len(),
            t.outcome.epochs,
            m.held_accuracy,
            t.test.accuracy()
        );
        trained.push((m.held_accuracy, m.trained));
    }
    let fold_acc: Vec<f64> = trained.iter().map(|(a, _)| *a).collect();
    let (m, s) = folds::mean_std(&fold_acc);
    let mut ensemble = Ensemble::new();
    for (_, t) in &trained {
        ensemble.push(&t.model, &t.store);
    }
    let report = ensemble.evaluate(&DataLoader::new(&f.test, 1024));
    let (mm, ms) = folds::mean_std(&report.member_accuracy);
    println!(
        "\ncross-validation accuracy  {:.2}% ± {:.2}% (mean ± std over {} folds)",
        100.0 * m,
        100.0 * s,
        a.folds
    );
    println!(
        "members on the test split  {:.2}% ± {:.2}%",
        100.0 * mm,
        100.0 * ms
    );
    println!(
        "ensemble on the test split {:.2}% (probabilities averaged over {} models)",
        100.0 * report.accuracy,
        ensemble.len()
    );
    std::fs::create_dir_all(&a.results).map_err(|e| Error::io(&a.results, e))?;
    write_atomic(&a.results.join("folds.csv"), csv.as_bytes())?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "peer": "tapegrad",
                "workload": "kfold_digits",
                "folds": a.folds,
                "seed": a.seed,
                "cv_accuracy_mean": m,
                "cv_accuracy_std": s,
                "member_test_accuracy": report.member_accuracy,
                "ensemble_test_accuracy": report.accuracy,
            })
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    recipe::exit_code("kfold", run(&Args::parse()))
}

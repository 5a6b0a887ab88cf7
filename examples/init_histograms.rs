//! Activations of deep random networks at initialisation, layer by layer: the CS231n
//! experiment and Glorot & Bengio's comparison of two initialisations.
//!
//! Run: `cargo run --release --example init_histograms` (`-- --results DIR`).
//!
//! **CS231n** (Karpathy, CS231n Lecture 6, Winter 2016, "Weight initialization"): 10 layers of
//! 500 units without bias, inputs `randn(1000, 500)`, each of tanh, sigmoid and ReLU with four
//! weight scales — `1.0·randn`, `0.01·randn`, Xavier (`randn/√n`) and He (`randn·√(2/n)`).
//! Claims, asserted here and in `tests/init_histograms.rs`:
//!
//! - tanh, `0.01·randn`: the standard deviation falls by `0.01·√500 ≈ 0.224` per layer,
//!   0.2135, 0.0476, 0.0106, … (each within 5%), and layer 10 is under 1e-5: every
//!   activation is zero, and so is every gradient;
//! - tanh, `1.0·randn`: every layer saturates at ±1, std ≈ 0.98 (within 5%);
//! - tanh, Xavier: .628 .486 .408 .358 .322 .294 .273 .255 .241 .229 (each within 5%);
//! - ReLU, Xavier: the second moment `E[a²]` halves per layer, and with He it holds (the
//!   mean ratio of consecutive layers over 8 networks within 5% of ½ and of 1; measured
//!   0.499 and 0.998), and He's first layer has std `√(1 − 1/π) ≈ 0.826`.
//!
//! What differs from the usual telling: "He holds about .826 at every layer" is true on
//! average, not for one network. Given the previous layer, `E[a²]` is preserved exactly in
//! expectation over the weights, but a network of finite width performs a multiplicative
//! random walk around it (Hanin & Rolnick, *How to start training*, NeurIPS 2018): with
//! seed 0 layer 10's std is 0.915 (11% above), over seeds 0–8 individual layers are up to
//! 20% off. So the claim is on the quantity the theory fixes, the ratio, over 8 networks.
//!
//! The first layer's value is also computed in closed form, `std(f(z))` for
//! `z ~ N(0, σ²·n)`, and printed beside the measurement (column `theory₁`).
//!
//! **Glorot & Bengio** (*Understanding the difficulty of training deep feedforward neural
//! networks*, AISTATS 2010, section 4.2 and Figures 6–7): 5 layers of 1000 tanh units,
//! "standard" `U[±1/√n]` against "normalized" `U[±√6/√(n_in + n_out)]`. Claims: the activation
//! standard deviations .460 .250 .141 .081 .047 against .628 .486 .408 .358 .322 (within 10%),
//! and the back-propagated gradient `∂L/∂zₗ` at least 3× better balanced between layers 1 and
//! 5 with the normalized init (`max(r, 1/r)` for `r = ‖∂L/∂z₁‖/‖∂L/∂z₅‖`; measured 12.0
//! against 2.45).
//!
//! Sources: the paper draws these as histograms (Figures 6 and 7) and prints no table; the
//! per-layer values above, like the CS231n ones, are those our issue quoted, and we could not
//! re-read the slides or the paper's figures here (no network). What backs them is the
//! measurement (every value within 1% of the quoted one, seeds 0–8), the closed-form first
//! layer, and the per-layer factor of the linear regime, `√(n·Var W)` (0.224 for `0.01·randn`,
//! `1/√3 ≈ 0.577` for the standard init: .250/.460 = 0.54, .047/.081 = 0.58).
//!
//! Writes one histogram grid per nonlinearity (`hist_tanh.png`, `hist_sigmoid.png`,
//! `hist_relu.png`: a row per weight scale, a column per layer), `hist_glorot.png`,
//! `std_per_layer.png` and `stats.csv` (case, layer, mean, std, gradient norm) under
//! `results/init_histograms/`.

#[path = "common/claims.rs"]
mod claims;
#[path = "common/init_stats.rs"]
mod init_stats;
#[path = "common/recipe.rs"]
mod recipe;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use init_stats::{Act, Layers, Weights};
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;
use tapegrad::train::{histogram_grid_png, line_plot_png};

#[derive(Parser, Debug)]
#[command(about = "Activation statistics of deep random networks at initialisation")]
struct Args {
    /// Where the plots and the CSV go.
    #[arg(long, value_name = "DIR", default_value = "results/init_histograms")]
    results: PathBuf,
    /// The seed of the inputs and weights (the claims are checked for seed 0; other seeds
    /// vary by a few percent, more in the deepest layers).
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("init_histograms", run(Args::parse()))
}

/// Every kept activation in a histogram: 1 in 10 (50,000 of a layer's 500,000).
const STRIDE: usize = 10;

fn run(args: Args) -> Result<()> {
    recipe::results_dir(&args.results)?;
    let mut csv = String::from("case,layer,mean,std,grad_norm\n");
    let mut grid: BTreeMap<(usize, usize), Layers> = BTreeMap::new();
    println!("10 layers of 500 units, inputs randn(1000, 500): std of each layer's activations");
    print!("{:<8} {:<10} {:>8}", "f", "weights", "theory₁");
    for l in 1..=10 {
        print!(" {:>8}", format!("layer {l}"));
    }
    println!();
    for (ai, &act) in Act::ALL.iter().enumerate() {
        for (wi, &w) in Weights::GRID.iter().enumerate() {
            let layers = init_stats::run(act, w, 10, 500, 1000, args.seed, STRIDE);
            let sigma = match w {
                Weights::Normal(s) => s * 500f64.sqrt(),
                Weights::Xavier => 1.0,
                Weights::He => 2f64.sqrt(),
                _ => unreachable!("not in the grid"),
            };
            print!(
                "{:<8} {:<10} {:>8.4}",
                act.name(),
                w.name(),
                init_stats::std_of_normal(act, sigma)
            );
            for s in &layers.std {
                print!(" {s:>8.2e}");
            }
            println!();
            let case = format!("{} {}", act.name(), w.slug());
            write_rows(&mut csv, &case, &layers);
            grid.insert((ai, wi), layers);
        }
    }
    for (ai, &act) in Act::ALL.iter().enumerate() {
        let mut panels = Vec::new();
        let titles: Vec<String> = Weights::GRID
            .iter()
            .flat_map(|w| (1..=10).map(move |l| format!("{} · layer {l}", w.name())))
            .collect();
        for wi in 0..Weights::GRID.len() {
            for s in &grid[&(ai, wi)].sample {
                panels.push(s.as_slice());
            }
        }
        let named: Vec<(&str, &[f64])> = titles.iter().map(String::as_str).zip(panels).collect();
        let range = match act {
            Act::Tanh => (-1.0, 1.0),
            Act::Sigmoid => (0.0, 1.0),
            Act::Relu => (0.0, 3.0),
        };
        histogram_grid_png(
            args.results.join(format!("hist_{}.png", act.name())),
            &format!(
                "{} activations per layer over [{}, {}] (rows: 1.0·randn, 0.01·randn, Xavier, He)",
                act.name(),
                range.0,
                range.1
            ),
            &named,
            10,
            Some(range),
            40,
        )?;
    }
    let series: Vec<(String, Vec<(f64, f64)>)> = [(0, 2), (0, 1), (2, 2), (2, 3)]
        .iter()
        .map(|&(ai, wi)| {
            let l = &grid[&(ai, wi)];
            let pts = l
                .std
                .iter()
                .enumerate()
                .map(|(i, s)| ((i + 1) as f64, s.max(1e-300).log10()))
                .collect();
            (
                format!("{}, {}", Act::ALL[ai].name(), Weights::GRID[wi].name()),
                pts,
            )
        })
        .collect();
    let named: Vec<(&str, Vec<(f64, f64)>)> = series
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    line_plot_png(
        args.results.join("std_per_layer.png"),
        "Activation std per layer, 10 × 500 units",
        "layer",
        "log10 std",
        &named,
    )?;

    println!();
    println!("Glorot & Bengio: 5 layers of 1000 tanh units, inputs randn(1000, 1000)");
    let glorot: Vec<(Weights, Layers)> = [Weights::GlorotStandard, Weights::GlorotNormalized]
        .into_iter()
        .map(|w| {
            (
                w,
                init_stats::run(Act::Tanh, w, 5, 1000, 1000, args.seed + 1, STRIDE),
            )
        })
        .collect();
    println!(
        "{:<26} {:>32}   {:>15}",
        "init", "std of layers 1..5", "‖∂L/∂z₁‖/‖∂L/∂z₅‖"
    );
    for (w, l) in &glorot {
        let stds: Vec<String> = l.std.iter().map(|s| format!("{s:.3}")).collect();
        println!(
            "{:<26} {:>32}   {:>15.3}",
            w.name(),
            stds.join(" "),
            l.grad[0] / l.grad[4]
        );
        write_rows(&mut csv, &format!("glorot {}", w.slug()), l);
    }
    let titles: Vec<String> = glorot
        .iter()
        .flat_map(|(w, _)| (1..=5).map(move |l| format!("{} · layer {l}", w.slug())))
        .collect();
    let named: Vec<(&str, &[f64])> = titles
        .iter()
        .map(String::as_str)
        .zip(
            glorot
                .iter()
                .flat_map(|(_, l)| l.sample.iter().map(Vec::as_slice)),
        )
        .collect();
    histogram_grid_png(
        args.results.join("hist_glorot.png"),
        "tanh activations, 5 × 1000 (rows: standard, normalized init)",
        &named,
        5,
        Some((-1.0, 1.0)),
        40,
    )?;
    let path = args.results.join("stats.csv");
    write_atomic(&path, csv.as_bytes())?;

    println!();
    println!("claims");
    let mut claims = init_stats::cs231n_claims(1000, args.seed, 8);
    claims.extend(init_stats::glorot_claims(&glorot[0].1, &glorot[1].1));
    init_stats::report(&claims);
    println!(
        "every claim holds; plots and stats.csv under {}",
        args.results.display()
    );
    Ok(())
}

fn write_rows(csv: &mut String, case: &str, l: &Layers) {
    for (i, ((m, s), g)) in l.mean.iter().zip(&l.std).zip(&l.grad).enumerate() {
        let _ = writeln!(csv, "{case},{},{m:e},{s:e},{g:e}", i + 1);
    }
}

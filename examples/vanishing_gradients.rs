//! Vanishing and exploding gradients in a 10-layer MLP of width 64 on the bundled digits.
//!
//! Run: `cargo run --release --example vanishing_gradients` (`-- --results DIR`).
//!
//! Ten Linear layers (64 → 64 × 9 → 10) with sigmoid, tanh, ReLU, LeakyReLU or ELU after
//! each hidden one, PyTorch's default init (`U(±1/√fan_in)` for weights and biases, so
//! `n·Var W = 1/3`). Back-propagation multiplies the gradient at each layer by `Wᵀ` and by
//! `f'(z)`; in the mean-field picture its norm changes per layer by `√(n·Var W·E[f'(z)²])`:
//! about `√(1/3)·0.25 ≈ 0.14` for sigmoid (its slope is at most ¼), `√(1/3) ≈ 0.58` less a
//! little for tanh (0.55), and `√(1/3 · ½) ≈ 0.41` for ReLU. Over nine layers that is 1e-8,
//! 5e-3 and 3e-4. (Glorot & Bengio 2010 for the analysis; He et al. 2015 for ReLU's ½.)
//!
//! Claims, asserted here and in `tests/vanishing_gradients.rs` (at initialisation, the
//! whole training set as one batch):
//!
//! - sigmoid's ‖∂L/∂W₁‖/‖∂L/∂W₁₀‖ is below 1e-4, and below tanh's and ReLU's;
//! - the measured backward factor per layer, `(‖∂L/∂z₁‖/‖∂L/∂z₁₀‖)^(1/9)`, is within 10% of
//!   the mean-field values 0.14 (sigmoid), 0.55 (tanh) and 0.41 (ReLU) (measured: 0.139,
//!   0.556, 0.411);
//! - ReLU with He's init (`N(0, 2/n)`, zero biases) has ‖∂L/∂W₁‖/‖∂L/∂W₁₀‖ within [0.2, 5];
//! - exploding gradients: ReLU with weights `N(0, 8/n)` (activations double per layer) has a
//!   gradient norm above 1e3 at initialisation; plain SGD at lr 0.01 without clipping
//!   diverges (the loss turns non-finite, or ends above where it started), and the same run
//!   with the global gradient norm clipped to 1 (PyTorch's `clip_grad_norm_`) brings the
//!   loss below a quarter of its start.
//!
//! The weight gradient `∂L/∂Wₗ = aₗ₋₁ᵀ·∂L/∂zₗ` also carries the layer's input. With tanh and
//! ReLU the activations shrink going forward about as fast as `∂L/∂zₗ` shrinks going back,
//! so ‖∂L/∂Wₗ‖ is much flatter across layers than ‖∂L/∂zₗ‖ (Glorot & Bengio's observation,
//! their section 4.2.1); sigmoid's activations keep a mean of ½, nothing compensates, and its
//! weight gradients fall by 10⁸ from the last layer to the first. Both are drawn.
//!
//! Then every network trains for 300 Adam steps (lr 1e-3, batch 64) and its gradient norms
//! per layer are drawn again: sigmoid's lower layers stay orders of magnitude behind.
//!
//! Writes `grad_norms_init.png`, `grad_norms_trained.png` (log₁₀ ‖∂L/∂Wₗ‖ per layer),
//! `deltas_init.png` (log₁₀ ‖∂L/∂zₗ‖),
//! `loss_adam.png`, `exploding_clip.png` (loss per step with and without clipping) and
//! `grad_norms.csv`, `losses.csv` under `results/vanishing_gradients/`.

#[path = "common/claims.rs"]
mod claims;
#[path = "common/deep_mlp.rs"]
mod deep_mlp;
#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/vanishing.rs"]
mod vanishing;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use deep_mlp::{train, Update};
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;
use tapegrad::train::line_plot_png;
use vanishing::Case;

#[derive(Parser, Debug)]
#[command(about = "Vanishing and exploding gradients in a 10-layer MLP on digits")]
struct Args {
    /// Where the plots and the CSVs go.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "results/vanishing_gradients"
    )]
    results: PathBuf,
    /// Adam steps of the training part.
    #[arg(long, default_value_t = 300)]
    steps: usize,
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("vanishing_gradients", run(Args::parse()))
}

fn per_layer(values: &[f64]) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| ((i + 1) as f64, v.max(1e-300).log10()))
        .collect()
}

fn run(args: Args) -> Result<()> {
    recipe::results_dir(&args.results)?;
    let data = recipe::digits_splits(0)?;
    let train_set = &data.train;
    let (x, y) = (train_set.features(), train_set.targets());

    let mut cases = vanishing::cases();
    println!(
        "10 Linear layers of width 64 on digits ({} training images), at initialisation",
        train_set.len()
    );
    println!(
        "{:<14} {:>12} {:>12} {:>14} {:>12}",
        "network", "‖∂L/∂W₁‖", "‖∂L/∂W₁₀‖", "W₁/W₁₀ ratio", "factor/layer"
    );
    let mut csv = String::from("network,when,layer,weight_grad_norm\n");
    for c in &mut cases {
        let p = c.at_init(x, y);
        println!(
            "{:<14} {:>12.3e} {:>12.3e} {:>14.3e} {:>12.3}",
            c.name,
            p.weight_grad[0],
            p.weight_grad[9],
            vanishing::ratio(&p),
            vanishing::factor(&p)
        );
        for (l, g) in p.weight_grad.iter().enumerate() {
            let _ = writeln!(csv, "{},init,{},{g:e}", c.name, l + 1);
        }
    }
    let claims = vanishing::init_claims(&cases, x, y);

    let series = |cases: &[Case], f: &dyn Fn(&Case) -> Vec<f64>| {
        cases
            .iter()
            .map(|c| (c.name.to_string(), per_layer(&f(c))))
            .collect::<Vec<(String, Vec<(f64, f64)>)>>()
    };
    let plot = |file: &str, title: &str, y: &str, s: &[(String, Vec<(f64, f64)>)]| {
        let named: Vec<(&str, Vec<(f64, f64)>)> =
            s.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
        line_plot_png(args.results.join(file), title, "layer", y, &named)
    };
    plot(
        "grad_norms_init.png",
        "Weight-gradient norm per layer at initialisation",
        "log10 ‖∂L/∂W‖",
        &series(&cases, &|c| c.at_init(x, y).weight_grad),
    )?;
    plot(
        "deltas_init.png",
        "Back-propagated gradient per layer at initialisation",
        "log10 ‖∂L/∂z‖",
        &series(&cases, &|c| c.at_init(x, y).delta),
    )?;

    println!();
    println!("after {} Adam steps (lr 1e-3, batch 64)", args.steps);
    let mut losses_csv = String::from("run,step,loss\n");
    let mut curves = Vec::new();
    for c in &mut cases {
        let losses = train(
            &c.model,
            &mut c.store,
            train_set,
            Update::Adam(1e-3),
            args.steps,
            64,
            1,
        );
        let (p, _) = c.model.measure(&c.store, x, y);
        println!(
            "{:<14} loss {:.4}   W₁/W₁₀ ratio {:.3e}",
            c.name,
            p.loss,
            vanishing::ratio(&p)
        );
        for (l, g) in p.weight_grad.iter().enumerate() {
            let _ = writeln!(csv, "{},trained,{},{g:e}", c.name, l + 1);
        }
        for (i, l) in losses.iter().enumerate() {
            let _ = writeln!(losses_csv, "adam {},{},{l:e}", c.name, i + 1);
        }
        curves.push((c.name.to_string(), losses));
        c.trained = Some(p.weight_grad);
    }
    plot(
        "grad_norms_trained.png",
        &format!(
            "Weight-gradient norm per layer after {} Adam steps",
            args.steps
        ),
        "log10 ‖∂L/∂W‖",
        &series(&cases, &|c| c.trained.clone().unwrap_or_default()),
    )?;
    let loss_series: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(n, l)| (n.as_str(), smooth(l)))
        .collect();
    line_plot_png(
        args.results.join("loss_adam.png"),
        "Training loss, 10 layers, Adam lr 1e-3 (mean of 20 steps)",
        "step",
        "cross-entropy",
        &loss_series,
    )?;

    println!();
    let ex = vanishing::exploding(train_set, 500);
    println!(
        "exploding: ReLU, weights N(0, 8/n): gradient norm at init {:.3e}",
        ex.grad_norm
    );
    for (name, l) in [("SGD lr 0.01", &ex.plain), ("clipped to 1", &ex.clipped)] {
        println!(
            "  {name:<13} loss {:.4e} → {:.4e} after {} steps",
            l[0],
            l[l.len() - 1],
            l.len()
        );
        for (i, v) in l.iter().enumerate() {
            let _ = writeln!(losses_csv, "exploding {name},{},{v:e}", i + 1);
        }
    }
    let log_curve = |l: &[f64]| -> Vec<(f64, f64)> {
        l.iter()
            .enumerate()
            .map(|(i, v)| ((i + 1) as f64, v.log10()))
            .collect()
    };
    line_plot_png(
        args.results.join("exploding_clip.png"),
        "ReLU, weights N(0, 8/n): SGD lr 0.01 with and without clipping",
        "step",
        "log10 loss",
        &[
            ("no clipping", log_curve(&ex.plain)),
            ("global norm clipped to 1", log_curve(&ex.clipped)),
        ],
    )?;
    write_atomic(&args.results.join("grad_norms.csv"), csv.as_bytes())?;
    write_atomic(&args.results.join("losses.csv"), losses_csv.as_bytes())?;

    println!();
    println!("claims");
    let mut all = claims;
    all.extend(vanishing::exploding_claims(&ex));
    vanishing::report(&all);
    println!(
        "every claim holds; plots and CSVs under {}",
        args.results.display()
    );
    Ok(())
}

/// The running mean of the last 20 values.
fn smooth(l: &[f64]) -> Vec<(f64, f64)> {
    (0..l.len())
        .map(|i| {
            let w = &l[i.saturating_sub(19)..=i];
            ((i + 1) as f64, w.iter().sum::<f64>() / w.len() as f64)
        })
        .collect()
}

//! Second-order optimisation: Newton's method with exact Hessians (double backward, through
//! `tapegrad::functional::hessian`) against gradient descent and L-BFGS, on L2-regularised
//! logistic regression.
//!
//! Run: `cargo run --release --example second_order` (`-- --results DIR`).
//!
//! Two problems, synthetic and seeded (labels drawn from a logistic model):
//!
//! - well conditioned: n = 500 examples, d = 10 features of scale 1, λ = 1e-2;
//! - ill conditioned: n = 1000, d = 50, feature j scaled by 10^(1.5·j/49) (scales spanning
//!   10^1.5), λ = 1e-4.
//!
//! Newton's method is affine invariant: rescaling the features changes nothing in its
//! iterates, and near the optimum each step squares the error (Nocedal & Wright, *Numerical
//! Optimization*, Theorem 3.5). Gradient descent with the step 1/L converges linearly at a
//! rate set by the condition number; L-BFGS (PyTorch's algorithm, strong-Wolfe search,
//! history 100) learns the curvature from gradients and needs many more iterations than
//! Newton on the ill-conditioned problem. Claims, asserted here and in
//! `tests/second_order.rs`:
//!
//! - well conditioned: Newton reaches ‖∇‖ ≤ 1e-10 in at most 10 iterations (measured: 6),
//!   and its last steps are quadratic (‖∇ₖ₊₁‖ ≤ 10·‖∇ₖ‖² once ‖∇ₖ‖ < 1e-2, down to the rounding floor; measured
//!   5.8e-6 → 1.7e-10 → 4.7e-17);
//! - ill conditioned: L-BFGS needs at least 5× Newton's iterations to reach ‖∇‖ ≤ 1e-6
//!   (measured: 139 against 6), and both reach the same loss to 1e-10 (measured: 1e-14).
//!
//! What differs from the wording: it asked for the iteration counts at ‖∇‖ ≤ 1e-10.
//! L-BFGS cannot get there in f64. Its line search compares objective values, and below
//! ‖∇‖ ≈ 1e-8 the decrease a step can make (about ‖∇‖²/h) is under the objective's rounding
//! (ε·|f| ≈ 1e-17). It stalls at 1e-9 on the well-conditioned problem and at 3e-8 on the
//! ill-conditioned one. Newton needs no search near the optimum and reaches 1e-14. So the
//! iteration counts are compared at 1e-6, which both methods reach.
//!
//! Writes `grad_norm_well.png`, `grad_norm_ill.png` (log₁₀ ‖∇‖ per iteration) and
//! `traces.csv` (problem, method, iteration, loss, gradient norm) under
//! `results/second_order/`.

#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/second_order.rs"]
mod second_order;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use second_order::{gradient_descent, lbfgs, newton, Problem, Trace};
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::prelude::*;
use tapegrad::train::line_plot_png;

#[derive(Parser, Debug)]
#[command(about = "Newton's method with exact Hessians against gradient descent and L-BFGS")]
struct Args {
    /// Where the plots and the CSV go.
    #[arg(long, value_name = "DIR", default_value = "results/second_order")]
    results: PathBuf,
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("second_order", run(Args::parse()))
}

use second_order::TOL;

fn run(args: Args) -> Result<()> {
    recipe::results_dir(&args.results)?;
    let mut csv = String::from("problem,method,iteration,loss,grad_norm\n");
    let problems = [
        (
            "well",
            "n = 500, d = 10, λ = 1e-2",
            Problem::synthetic(500, 10, 0.0, 1e-2, 0),
        ),
        (
            "ill",
            "n = 1000, d = 50, scales 10^0..10^1.5, λ = 1e-4",
            Problem::synthetic(1000, 50, 1.5, 1e-4, 1),
        ),
    ];
    println!(
        "{:<6} {:<18} {:>12} {:>13} {:>20} {:>12}",
        "", "method", "its to 1e-6", "its to 1e-10", "final loss", "final ‖∇‖"
    );
    for (tag, what, p) in &problems {
        let runs: [(&str, Trace); 3] = [
            ("Newton", newton(p, TOL, 50)),
            ("L-BFGS", lbfgs(p, TOL, 2000)),
            ("gradient descent", gradient_descent(p, 2000)),
        ];
        for (name, t) in &runs {
            let its = |tol| {
                t.iterations_to(tol)
                    .map_or_else(|| format!("> {}", t.grad_norm.len() - 1), |k| k.to_string())
            };
            let (coarse, fine) = (its(second_order::COMPARE_AT), its(TOL));
            println!(
                "{tag:<6} {name:<18} {coarse:>12} {fine:>13} {:>20.14} {:>12.2e}",
                t.loss.last().expect("a start"),
                t.grad_norm.last().expect("a start")
            );
            for (i, (l, g)) in t.loss.iter().zip(&t.grad_norm).enumerate() {
                let _ = writeln!(csv, "{tag},{name},{i},{l:e},{g:e}");
            }
        }
        let series: Vec<(&str, Vec<(f64, f64)>)> = runs
            .iter()
            .map(|(name, t)| {
                let pts = t
                    .grad_norm
                    .iter()
                    .enumerate()
                    .take(300)
                    .map(|(i, g)| (i as f64, g.max(1e-300).log10()))
                    .collect();
                (*name, pts)
            })
            .collect();
        line_plot_png(
            args.results.join(format!("grad_norm_{tag}.png")),
            &format!("Logistic regression, {what}"),
            "iteration",
            "log10 ‖∇‖",
            &series,
        )?;
        second_order::check_claims(tag, &runs[0].1, &runs[1].1);
    }
    let path = args.results.join("traces.csv");
    write_atomic(&path, csv.as_bytes())?;
    println!("plots and traces under {}", args.results.display());
    Ok(())
}

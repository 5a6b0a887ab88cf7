//! Every optimizer on Rosenbrock and on an ill-conditioned quadratic, then on a digits
//! logistic regression and MLP.
//!
//! Run: `cargo run --release --example optimizers` (`-- --results DIR`).
//!
//! **Two dimensions.** SGD, Momentum, Nesterov, Adagrad, RMSprop, Adam, AdamW, NAdam,
//! Adadelta and L-BFGS (strong-Wolfe line search) on Rosenbrock from (−1.5, 2) and on
//! ½(x² + 100y²) (condition number 100) from (1, 1): the steps each needs to reach
//! f < 1e-6 at the best rate of a small grid, the paths drawn over the contour lines, and
//! the loss per step. Claims, asserted here: L-BFGS needs the fewest steps (after
//! Adagrad's exact first step on the diagonal quadratic), momentum, Nesterov and Adam beat
//! plain SGD.
//!
//! **Digits.** The same optimizers on a logistic regression (64 → 10) and an MLP
//! (64 → 128 → 128 → 10, ReLU), minibatches of 128 for 10 epochs, each at the best of a
//! 4-value learning-rate grid by its mean training loss over 3 seeds (L-BFGS: one
//! full-batch step per epoch): Kingma & Ba's experiment (*Adam*, ICLR 2015, Figures 1 and
//! 2, on MNIST). Claim (their ordering), asserted here and in `tests/optimizers.rs`: Adam's
//! training loss at epoch 10 is at most Adagrad's and plain SGD's, for both models.
//!
//! Writes `paths_rosenbrock.png`, `paths_quadratic.png`, `loss_rosenbrock.png`,
//! `loss_quadratic.png`, `digits_logistic.png`, `digits_mlp.png` (training loss per epoch,
//! one curve per optimizer) and `steps.csv`, `digits.csv` under `results/optimizers/`.

#[path = "common/claims.rs"]
mod claims;
#[path = "common/optim_digits.rs"]
mod optim_digits;
#[path = "common/recipe.rs"]
mod recipe;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Parser;
use optim_digits::Model;
use plotters::coord::Shift;
use plotters::prelude::*;
use tapegrad::core::checkpoint::write_atomic;
use tapegrad::optim::*;
use tapegrad::prelude::*;
use tapegrad::train::line_plot_png;
use tapegrad::train::plot::draw_png;

#[derive(Parser, Debug)]
#[command(about = "Every optimizer in two dimensions and on digits")]
struct Args {
    /// Where the plots and the CSVs go.
    #[arg(long, value_name = "DIR", default_value = "results/optimizers")]
    results: PathBuf,
}

type Problem = (
    &'static str,
    fn(f64, f64) -> f64,
    [f64; 2],
    [f64; 2],
    (std::ops::Range<f64>, std::ops::Range<f64>),
);

fn rosenbrock(x: f64, y: f64) -> f64 {
    (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
}

/// ½(x² + 100y²): condition number 100.
fn quadratic(x: f64, y: f64) -> f64 {
    0.5 * (x * x + 100.0 * y * y)
}

/// The same functions on the tape.
fn loss<'g>(name: &str, p: Var<'g, f64>) -> Var<'g, f64> {
    let (x, y) = (p.select(0, 0), p.select(0, 1));
    if name == "rosenbrock" {
        x.rsub_scalar(1.0).square() + (y - x.square()).square() * 100.0
    } else {
        (x.square() + y.square() * 100.0) * 0.5
    }
}

fn eval(name: &str, store: &ParamStore<f64>, key: ParamKey) -> (f64, Gradients<f64>) {
    let g = Graph::new();
    let l = loss(name, g.param(store, key));
    (l.item(), l.backward())
}

struct Run {
    name: &'static str,
    lr: f64,
    steps: Option<usize>,
    final_loss: f64,
    path: Vec<(f64, f64)>,
    /// f at each step, from the start.
    losses: Vec<f64>,
}

fn first_order(
    problem: &'static str,
    p0: [f64; 2],
    name: &'static str,
    make: &dyn Fn() -> Box<dyn Optimizer<f64>>,
    lrs: &[f64],
    max_steps: usize,
    tol: f64,
) -> Run {
    let mut best: Option<Run> = None;
    for &lr in lrs {
        let mut store = ParamStore::new();
        let key = store.insert("p", Tensor::from_vec(p0.to_vec(), [2]));
        let mut opt = make();
        let mut path = vec![(p0[0], p0[1])];
        let mut steps = None;
        let mut final_loss = f64::NAN;
        let mut losses = Vec::new();
        for step in 0..max_steps {
            let (l, grads) = eval(problem, &store, key);
            final_loss = l;
            losses.push(l);
            if !l.is_finite() {
                break;
            }
            if l < tol {
                steps = Some(step);
                break;
            }
            opt.step(&mut store, &grads, lr);
            let v = store.value(key);
            path.push((v.get(&[0]), v.get(&[1])));
        }
        let run = Run {
            name,
            lr,
            steps,
            final_loss,
            path,
            losses,
        };
        let better = match &best {
            None => true,
            Some(b) => match (run.steps, b.steps) {
                (Some(a), Some(c)) => a < c,
                (Some(_), None) => true,
                (None, None) => run.final_loss < b.final_loss || b.final_loss.is_nan(),
                (None, Some(_)) => false,
            },
        };
        if better {
            best = Some(run);
        }
    }
    best.expect("at least one learning rate")
}

fn lbfgs(problem: &'static str, p0: [f64; 2], tol: f64) -> Run {
    let mut store = ParamStore::new();
    let key = store.insert("p", Tensor::from_vec(p0.to_vec(), [2]));
    let mut opt = Lbfgs::new(
        vec![key],
        LbfgsConfig::default()
            .with_max_iter(1)
            .with_line_search(LineSearch::StrongWolfe),
    );
    let mut path = vec![(p0[0], p0[1])];
    let mut steps = None;
    let mut final_loss = f64::NAN;
    let mut losses = Vec::new();
    for step in 0..500 {
        let (l, _) = eval(problem, &store, key);
        final_loss = l;
        losses.push(l);
        if l < tol {
            steps = Some(step);
            break;
        }
        opt.step(&mut store, |s| eval(problem, s, key));
        let v = store.value(key);
        path.push((v.get(&[0]), v.get(&[1])));
    }
    Run {
        name: "L-BFGS (strong Wolfe)",
        lr: 1.0,
        steps,
        final_loss,
        path,
        losses,
    }
}

/// Level-set segments of `f` on a grid (marching squares).
fn contour(
    f: fn(f64, f64) -> f64,
    xr: &std::ops::Range<f64>,
    yr: &std::ops::Range<f64>,
    level: f64,
) -> Vec<[(f64, f64); 2]> {
    let n = 160;
    let (dx, dy) = (
        (xr.end - xr.start) / n as f64,
        (yr.end - yr.start) / n as f64,
    );
    let at = |i: usize, j: usize| (xr.start + i as f64 * dx, yr.start + j as f64 * dy);
    let mut segs = Vec::new();
    for i in 0..n {
        for j in 0..n {
            let corners = [at(i, j), at(i + 1, j), at(i + 1, j + 1), at(i, j + 1)];
            let v: Vec<f64> = corners.iter().map(|&(x, y)| f(x, y) - level).collect();
            let mut pts = Vec::new();
            for e in 0..4 {
                let (a, b) = (e, (e + 1) % 4);
                if (v[a] < 0.0) != (v[b] < 0.0) {
                    let t = v[a] / (v[a] - v[b]);
                    pts.push((
                        corners[a].0 + t * (corners[b].0 - corners[a].0),
                        corners[a].1 + t * (corners[b].1 - corners[a].1),
                    ));
                }
            }
            if pts.len() >= 2 {
                segs.push([pts[0], pts[1]]);
            }
            if pts.len() == 4 {
                segs.push([pts[2], pts[3]]);
            }
        }
    }
    segs
}

fn draw(problem: &Problem, runs: &[Run], path: &std::path::Path) -> Result<()> {
    draw_png(path, (900, 700), |root| {
        draw_paths(problem, runs, root).map_err(|e| e.to_string())
    })
}

fn draw_paths(
    problem: &Problem,
    runs: &[Run],
    root: &DrawingArea<BitMapBackend<'_>, Shift>,
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let (name, f, _, minimum, (xr, yr)) = problem;
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(root)
        .caption(format!("{name}: optimizer paths"), ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(xr.clone(), yr.clone())?;
    chart.configure_mesh().disable_mesh().draw()?;
    for k in 0..10 {
        let level = 10f64.powf(-2.0 + 0.5 * k as f64);
        for seg in contour(*f, xr, yr, level) {
            chart.draw_series(LineSeries::new(seg, RGBColor(200, 200, 200)))?;
        }
    }
    for (i, run) in runs.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let clipped: Vec<(f64, f64)> = run
            .path
            .iter()
            .copied()
            .filter(|&(x, y)| xr.contains(&x) && yr.contains(&y))
            .collect();
        chart
            .draw_series(LineSeries::new(clipped, color.stroke_width(2)))?
            .label(run.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart.draw_series(std::iter::once(Cross::new(
        (minimum[0], minimum[1]),
        8,
        BLACK.stroke_width(2),
    )))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;
    Ok(())
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("optimizers", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    let problems: [Problem; 2] = [
        (
            "rosenbrock",
            rosenbrock,
            [-1.5, 2.0],
            [1.0, 1.0],
            (-2.0..2.0, -1.0..3.0),
        ),
        (
            "quadratic (κ = 100)",
            quadratic,
            [1.0, 1.0],
            [0.0, 0.0],
            (-1.5..1.5, -1.2..1.2),
        ),
    ];
    let out = args.results.as_path();
    recipe::results_dir(out)?;
    let mut steps_csv = String::from("problem,optimizer,lr,steps,final_loss\n");
    type Make = Box<dyn Fn() -> Box<dyn Optimizer<f64>>>;
    let optimizers: Vec<(&'static str, Make, Vec<f64>)> = vec![
        (
            "SGD",
            Box::new(|| Box::new(Sgd::new(SgdConfig::default()))),
            vec![1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
        ),
        (
            "Momentum 0.9",
            Box::new(|| Box::new(Sgd::new(SgdConfig::default().with_momentum(0.9)))),
            vec![1e-4, 3e-4, 1e-3, 3e-3],
        ),
        (
            "Nesterov 0.9",
            Box::new(|| {
                Box::new(Sgd::new(
                    SgdConfig::default().with_momentum(0.9).with_nesterov(true),
                ))
            }),
            vec![1e-4, 3e-4, 1e-3, 3e-3],
        ),
        (
            "Adagrad",
            Box::new(|| Box::new(Adagrad::new(AdagradConfig::default()))),
            vec![0.1, 0.3, 1.0],
        ),
        (
            "RMSprop",
            Box::new(|| Box::new(RmsProp::new(RmsPropConfig::default()))),
            vec![1e-3, 3e-3, 1e-2],
        ),
        (
            "Adam",
            Box::new(|| Box::new(Adam::new(AdamConfig::default()))),
            vec![1e-2, 3e-2, 0.1],
        ),
        (
            "AdamW",
            Box::new(|| Box::new(AdamW::new(AdamConfig::adamw().with_weight_decay(0.0)))),
            vec![1e-2, 3e-2, 0.1],
        ),
        (
            "NAdam",
            Box::new(|| Box::new(NAdam::new(NAdamConfig::default()))),
            vec![1e-2, 3e-2, 0.1],
        ),
        (
            "Adadelta",
            Box::new(|| Box::new(Adadelta::new(AdadeltaConfig::default()))),
            vec![1.0, 3.0, 10.0],
        ),
    ];
    let tol = 1e-6;
    for problem in &problems {
        let (name, _, p0, _, _) = problem;
        let pname: &'static str = if name.starts_with("rosen") {
            "rosenbrock"
        } else {
            "quadratic"
        };
        println!("\n{name} from {p0:?}: steps to f < {tol:e} (best rate of the grid; at most 20,000 steps)");
        println!(
            "{:<24} {:>8} {:>10} {:>12}",
            "optimizer", "lr", "steps", "final f"
        );
        let mut runs = Vec::new();
        for (oname, make, lrs) in &optimizers {
            runs.push(first_order(
                pname,
                *p0,
                oname,
                make.as_ref(),
                lrs,
                20_000,
                tol,
            ));
        }
        runs.push(lbfgs(pname, *p0, tol));
        for r in &runs {
            let steps = r.steps.map_or("—".to_string(), |s| s.to_string());
            println!(
                "{:<24} {:>8.0e} {:>10} {:>12.3e}",
                r.name, r.lr, steps, r.final_loss
            );
        }
        for r in &runs {
            let steps = r.steps.map_or(String::new(), |s| s.to_string());
            let _ = writeln!(
                steps_csv,
                "{pname},{},{},{steps},{:e}",
                r.name, r.lr, r.final_loss
            );
        }
        draw(problem, &runs, &out.join(format!("paths_{pname}.png")))?;
        let series: Vec<(&str, Vec<(f64, f64)>)> = runs
            .iter()
            .map(|r| {
                let pts = r
                    .losses
                    .iter()
                    .enumerate()
                    .take(2000)
                    .map(|(i, l)| (i as f64, l.max(1e-300).log10()))
                    .collect();
                (r.name, pts)
            })
            .collect();
        line_plot_png(
            out.join(format!("loss_{pname}.png")),
            &format!("{name}: f per step (best rate of each grid)"),
            "step",
            "log10 f",
            &series,
        )?;
        check_table(pname, &runs, tol);
    }
    write_atomic(&out.join("steps.csv"), steps_csv.as_bytes())?;
    println!("\nthe tables hold: every run that reached the tolerance is below it, L-BFGS needs the fewest steps (after Adagrad's exact first step on the quadratic), momentum and Adam beat plain SGD");

    let data = recipe::digits_splits(0)?;
    let mut claims = Vec::new();
    let mut digits_csv = String::from("model,optimizer,lr,epoch,train_loss\n");
    for (model, file) in [
        (Model::Logistic, "digits_logistic.png"),
        (Model::Mlp, "digits_mlp.png"),
    ] {
        let runs = optim_digits::best_of_grid(model, &data.train);
        println!(
            "\ndigits, {}: training loss after {} epochs of batch {} (best of 4 rates, mean of {} seeds)",
            model.name(),
            optim_digits::EPOCHS,
            optim_digits::BATCH,
            optim_digits::SEEDS
        );
        println!(
            "{:<24} {:>8} {:>12} {:>12}",
            "optimizer", "lr", "epoch 1", "epoch 10"
        );
        for r in &runs {
            println!(
                "{:<24} {:>8.0e} {:>12.4} {:>12.4}",
                r.name,
                r.lr,
                r.curve[1],
                r.curve[r.curve.len() - 1]
            );
            for (e, l) in r.curve.iter().enumerate() {
                let _ = writeln!(digits_csv, "{},{},{},{e},{l:e}", model.name(), r.name, r.lr);
            }
        }
        let series: Vec<(&str, Vec<(f64, f64)>)> = runs
            .iter()
            .map(|r| {
                (
                    r.name,
                    r.curve
                        .iter()
                        .enumerate()
                        .map(|(e, l)| (e as f64, l.log10()))
                        .collect(),
                )
            })
            .collect();
        line_plot_png(
            out.join(file),
            &format!(
                "digits, {}: training loss (best rate each, 3 seeds)",
                model.name()
            ),
            "epoch",
            "log10 cross-entropy",
            &series,
        )?;
        claims.extend(optim_digits::claims(model, &runs));
    }
    write_atomic(&out.join("digits.csv"), digits_csv.as_bytes())?;
    println!("\nclaims");
    optim_digits::report(&claims);
    println!("every claim holds; plots and CSVs under {}", out.display());
    Ok(())
}

/// What the tables claim, asserted.
fn check_table(problem: &str, runs: &[Run], tol: f64) {
    let steps = |name: &str| {
        runs.iter()
            .find(|r| r.name.starts_with(name))
            .and_then(|r| r.steps)
            .unwrap_or(usize::MAX)
    };
    for r in runs {
        assert!(
            r.final_loss.is_finite(),
            "{problem}/{}: {}",
            r.name,
            r.final_loss
        );
        if r.steps.is_some() {
            assert!(
                r.final_loss < tol,
                "{problem}/{}: {} ≥ {tol}",
                r.name,
                r.final_loss
            );
        }
        assert!(!r.path.is_empty(), "{problem}/{}: no path", r.name);
    }
    // On Rosenbrock second order beats every first-order method. On the diagonal quadratic
    // from [1, 1] Adagrad at rate 1 lands on the minimum in one step (its first step
    // divides each coordinate's gradient by its own size), and L-BFGS beats the others.
    let lbfgs = steps("L-BFGS");
    let fastest_but = |skip: &str| {
        runs.iter()
            .filter(|r| !r.name.starts_with("L-BFGS") && !r.name.starts_with(skip))
            .all(|r| r.steps.is_none_or(|s| s > lbfgs))
    };
    if problem == "rosenbrock" {
        assert!(fastest_but("-"), "{problem}: L-BFGS is not the fastest");
    } else {
        assert_eq!(steps("Adagrad"), 1, "{problem}: Adagrad's one step");
        assert!(
            fastest_but("Adagrad"),
            "{problem}: L-BFGS is not the fastest after Adagrad"
        );
    }
    assert!(
        steps("Momentum") < steps("SGD") && steps("Nesterov") < steps("SGD"),
        "{problem}: momentum"
    );
    assert!(steps("Adam") < steps("SGD"), "{problem}: Adam");
}

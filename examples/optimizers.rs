//! Every optimizer on Rosenbrock and on an ill-conditioned quadratic: a table of the steps
//! each needs to reach a tolerance, and their paths drawn over the contour lines.
//!
//! Run: `cargo run --release --example optimizers` (SVGs go to `target/examples-out/`).
//!
//! Learning rates are each optimizer's best of a small grid on that problem, so the table
//! compares the methods at their best rather than at one arbitrary rate.

use plotters::prelude::*;
use tapegrad::optim::*;
use tapegrad::prelude::*;

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
        for step in 0..max_steps {
            let (l, grads) = eval(problem, &store, key);
            final_loss = l;
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
    for step in 0..500 {
        let (l, _) = eval(problem, &store, key);
        final_loss = l;
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

fn draw(
    problem: &Problem,
    runs: &[Run],
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let (name, f, _, minimum, (xr, yr)) = problem;
    // plotters measures text with the font bundled in tapegrad-train (no system fonts).
    tapegrad::train::register_font();
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
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
    root.present()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
    let out = std::path::Path::new("target/examples-out");
    std::fs::create_dir_all(out)?;
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
            Box::new(|| Box::new(AdamW::new(AdamWConfig::default().with_weight_decay(0.0)))),
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
        let file = out.join(format!("optimizers_{pname}.svg"));
        draw(problem, &runs, &file)?;
        println!("paths: {}", file.display());
        check_table(pname, &runs, tol);
        assert!(
            std::fs::metadata(&file)?.len() > 10_000,
            "{file:?} is drawn"
        );
    }
    println!("\nthe tables hold: every run that reached the tolerance is below it, L-BFGS needs the fewest steps (after Adagrad's exact first step on the quadratic), momentum and Adam beat plain SGD");
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

//! Every learning-rate schedule, printed and plotted.
//!
//! Run: `cargo run --release --example schedules` (the plot goes to
//! `target/examples-out/schedules.svg`).

use plotters::prelude::*;
use tapegrad::optim::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let steps = 100;
    let one_cycle = OneCycle::new(0.1, steps);
    let schedules: Vec<(&str, Box<dyn Schedule>)> = vec![
        ("Constant 0.1", Box::new(Constant(0.1))),
        ("StepDecay(10, 0.5)", Box::new(StepDecay::new(0.1, 10, 0.5))),
        (
            "MultiStep([20, 50], 0.1)",
            Box::new(MultiStep::new(0.1, vec![20, 50], 0.1)),
        ),
        ("Exponential(0.95)", Box::new(Exponential::new(0.1, 0.95))),
        (
            "Cosine(100, η_min 1e-5)",
            Box::new(Cosine::new(0.1, 100).with_eta_min(1e-5)),
        ),
        (
            "CosineWarmRestarts(20, ×2)",
            Box::new(CosineWarmRestarts::new(0.1, 20, 2)),
        ),
        (
            "LinearLR(0.1 → 1, 30)",
            Box::new(LinearLR::new(0.1, 0.1, 1.0, 30)),
        ),
        (
            "InverseSqrt(1e-3, warm-up 10)",
            Box::new(InverseSqrt::new(1e-3, 10)),
        ),
        (
            "Warmup(10) + Cosine(90)",
            Box::new(Warmup::new(10, Cosine::new(0.1, 90))),
        ),
        ("OneCycle(0.1, 100)", Box::new(one_cycle)),
        (
            "SequentialLR(LinearLR 20, Exp 0.97)",
            Box::new(SequentialLR::new(
                vec![
                    Box::new(LinearLR::new(0.1, 0.01, 1.0, 20)),
                    Box::new(Exponential::new(0.1, 0.97)),
                ],
                vec![20],
            )),
        ),
    ];

    print!("{:>5}", "step");
    for (name, _) in &schedules {
        print!(" {:>12.12}", name);
    }
    println!();
    for t in (0..steps).step_by(10).chain([steps - 1]) {
        print!("{t:>5}");
        for (_, s) in &schedules {
            print!(" {:>12.3e}", s.lr(t));
        }
        println!();
    }

    // ReduceOnPlateau follows a metric instead of the step: a loss that stalls twice.
    let mut plateau = ReduceOnPlateau::new(0.1, PlateauMode::Min)
        .with_patience(5)
        .with_factor(0.5);
    let metric = |t: usize| {
        if t < 30 {
            1.0 / (1.0 + t as f64)
        } else if t < 60 {
            0.033
        } else {
            0.02
        }
    };
    let plateau_lrs: Vec<f64> = (0..steps).map(|t| plateau.step(metric(t))).collect();
    println!("ReduceOnPlateau (patience 5, factor 0.5) on a loss that stalls at steps 30 and 60: lr at 0/40/80 = {:.3e} {:.3e} {:.3e}", plateau_lrs[0], plateau_lrs[40], plateau_lrs[80]);

    let out = std::path::Path::new("target/examples-out");
    std::fs::create_dir_all(out)?;
    let path = out.join("schedules.svg");
    // plotters measures text with the font bundled in tapegrad-train (no system fonts).
    tapegrad::train::register_font();
    let root = SVGBackend::new(&path, (1200, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let cells = root.split_evenly((4, 3));
    let mut all: Vec<(&str, Vec<f64>)> = schedules
        .iter()
        .map(|(n, s)| (*n, (0..steps).map(|t| s.lr(t)).collect()))
        .collect();
    all.push(("ReduceOnPlateau (metric-driven)", plateau_lrs));
    for ((name, lrs), cell) in all.iter().zip(cells.iter()) {
        let top = lrs.iter().cloned().fold(0.0, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(cell)
            .caption(*name, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(50)
            .build_cartesian_2d(0usize..steps, 0.0..top)?;
        chart
            .configure_mesh()
            .x_labels(5)
            .y_labels(4)
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()?;
        chart.draw_series(LineSeries::new(
            lrs.iter().enumerate().map(|(t, &v)| (t, v)),
            BLUE.stroke_width(2),
        ))?;
        if name.starts_with("OneCycle") {
            let m: Vec<(usize, f64)> = (0..steps)
                .map(|t| (t, one_cycle.momentum(t) * top / 1.0))
                .collect();
            chart
                .draw_series(LineSeries::new(m, RED.mix(0.6)))?
                .label("momentum (scaled)")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .border_style(BLACK)
                .draw()?;
        }
    }
    root.present()?;
    println!("plot: {}", path.display());
    assert!(
        std::fs::metadata(&path)?.len() > 10_000,
        "the plot is written"
    );
    check_closed_forms(&schedules, steps, &one_cycle);
    // The plateau run: one halving after the first stall, eight in all by step 80.
    assert_eq!(
        (
            all.last().unwrap().1[0],
            all.last().unwrap().1[40],
            all.last().unwrap().1[80]
        ),
        (0.1, 0.05, 0.1 * 0.5f64.powi(7))
    );
    println!("every printed rate matches its closed form");
    Ok(())
}

/// Each schedule against its formula, written out here independently of the library, at
/// every step of the table.
fn check_closed_forms(schedules: &[(&str, Box<dyn Schedule>)], steps: usize, one_cycle: &OneCycle) {
    use std::f64::consts::PI;
    let cos_anneal = |lo: f64, hi: f64, cur: f64, len: f64| {
        lo + (hi - lo) * (1.0 + (PI * cur / len).cos()) / 2.0
    };
    let forms: [&dyn Fn(usize) -> f64; 11] = [
        &|_| 0.1,
        &|t| 0.1 * 0.5f64.powi((t / 10) as i32),
        &|t| 0.1 * 0.1f64.powi([20, 50].iter().filter(|&&m| m <= t).count() as i32),
        &|t| 0.1 * 0.95f64.powi(t as i32),
        &|t| cos_anneal(1e-5, 0.1, t as f64, 100.0),
        &|t| {
            // Cycles of 20, 40, 80 steps.
            let (start, len) = if t < 20 {
                (0, 20)
            } else if t < 60 {
                (20, 40)
            } else {
                (60, 80)
            };
            cos_anneal(0.0, 0.1, (t - start) as f64, len as f64)
        },
        &|t| 0.1 * (0.1 + 0.9 * t.min(30) as f64 / 30.0),
        &|t| {
            if t < 10 {
                1e-3 * t as f64 / 10.0
            } else {
                1e-3 * (10.0 / t as f64).sqrt()
            }
        },
        &|t| {
            if t < 10 {
                0.1 * (t + 1) as f64 / 10.0
            } else {
                cos_anneal(0.0, 0.1, (t - 10) as f64, 90.0)
            }
        },
        &|t| one_cycle.lr(t),
        &|t| {
            if t < 20 {
                0.1 * (0.01 + 0.99 * t as f64 / 20.0)
            } else {
                0.1 * 0.97f64.powi(t as i32 - 20)
            }
        },
    ];
    for ((name, s), form) in schedules.iter().zip(forms) {
        for t in 0..steps {
            let (got, want) = (s.lr(t), form(t));
            assert!(
                (got - want).abs() <= 1e-15 * want.abs().max(1e-300),
                "{name} at {t}: {got} vs {want}"
            );
        }
    }
    // One-cycle, by its landmarks: from max/25 up to the peak at 30%, down to max/(25·1e4).
    let lr = |t| one_cycle.lr(t);
    assert!((lr(0) - 0.1 / 25.0).abs() < 1e-15 && (lr(29) - 0.1).abs() < 1e-15);
    assert!((lr(steps - 1) - 0.1 / 25.0 / 1e4).abs() < 1e-18);
    assert!((0..29).all(|t| lr(t) < lr(t + 1)) && (29..steps - 1).all(|t| lr(t) > lr(t + 1)));
}

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
            "Linear(0.1 → 1, 30)",
            Box::new(Linear::new(0.1, 0.1, 1.0, 30)),
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
            "Sequential(Linear 20, Exp 0.97)",
            Box::new(Sequential::new(
                vec![
                    Box::new(Linear::new(0.1, 0.01, 1.0, 20)),
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
    Ok(())
}

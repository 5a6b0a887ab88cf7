//! The functional transforms on four small research tasks.
//!
//! Run: `cargo run --release --example functional` (`-- --full` measures the memory of the
//! 32 × 1024 MLP of `benches/checkpoint_memory.rs` instead of a 16 × 512 one).
//!
//! 1. The Jacobian of a small network, reverse and forward, and its singular values.
//! 2. Newton's method on logistic regression (is this digit a 0?) with `hessian`: the
//!    gradient's norm falls quadratically, to rounding in a handful of steps.
//! 3. Per-example gradient norms of the digits MLP (`per_sample_norms.png`), then one epoch
//!    of DP-SGD — each example's gradient clipped to norm 1, Gaussian noise added — against
//!    one epoch of plain SGD from the same start.
//! 4. The peak memory of a training step of a deep MLP, plain and with checkpointed
//!    segments, and the check that both give the same gradients bit for bit.

#[path = "common/peak_memory.rs"]
mod peak_memory;
#[path = "common/recipe.rs"]
mod recipe;
#[path = "common/second_order.rs"]
mod second_order;

use std::ops::Range;
use std::path::PathBuf;

use clap::Parser;
use second_order::cholesky_solve;
use tapegrad::functional::{hessian, jacobian, jacobian_fwd};
use tapegrad::nn::{Method, PerSampleGrads};
use tapegrad::prelude::*;
use tapegrad::train::histogram_png;

#[global_allocator]
static ALLOC: peak_memory::Counting = peak_memory::Counting;

#[derive(Parser, Debug)]
#[command(about = "Jacobians, Newton's method, per-example gradients and DP-SGD, checkpointing")]
struct Args {
    /// Where the histogram goes (`results/functional/` by default).
    #[arg(long, value_name = "DIR", default_value = "results/functional")]
    results: PathBuf,
    /// Measure the 32 × 1024 MLP (batch 256) instead of 16 × 512.
    #[arg(long)]
    full: bool,
}

fn main() -> std::process::ExitCode {
    recipe::exit_code("functional", run(Args::parse()))
}

fn run(args: Args) -> Result<()> {
    recipe::results_dir(&args.results)?;
    jacobian_of_a_network()?;
    newton_on_logistic_regression()?;
    per_example_gradients_and_dp_sgd(&args)?;
    memory_of_checkpointing(args.full);
    Ok(())
}

/// `x ↦ tanh(W₂ tanh(W₁x))`, 6 → 8 → 4.
fn net<'g>(w1: &Tensor<f64>, w2: &Tensor<f64>, x: Var<'g, f64>) -> Var<'g, f64> {
    let g = x.graph();
    let h = g.constant(w1.clone()).matmul(x.reshape([6, 1])).tanh();
    g.constant(w2.clone()).matmul(h).tanh().reshape([4])
}

fn jacobian_of_a_network() -> Result<()> {
    println!("1. The Jacobian of a 6-8-4 tanh network");
    let mut rng = seeded_rng(0);
    let w1 = Tensor::<f64>::rand_normal([8, 6], 0.0, 0.6, &mut rng);
    let w2 = Tensor::<f64>::rand_normal([4, 8], 0.0, 0.6, &mut rng);
    let x = Tensor::<f64>::rand_normal([6], 0.0, 1.0, &mut rng);
    let rev = jacobian(|_, v| net(&w1, &w2, v[0]), std::slice::from_ref(&x))?.remove(0);
    let fwd = jacobian_fwd(|_, v| net(&w1, &w2, v[0]), &[x])?.remove(0);
    let diff = rev
        .as_slice()
        .iter()
        .zip(fwd.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(diff < 1e-12, "the two Jacobians differ by {diff}");
    println!(
        "   J is {:?}; reverse and forward differ by at most {diff:.1e}",
        rev.dims()
    );
    // σ² are the eigenvalues of J·Jᵀ (4 × 4, symmetric).
    let jjt = rev.matmul_t(&rev, Transpose::No, Transpose::Yes);
    let mut sigma: Vec<f64> = symmetric_eigenvalues(&jjt)
        .into_iter()
        .map(|l| l.max(0.0).sqrt())
        .collect();
    sigma.sort_by(|a, b| b.total_cmp(a));
    println!(
        "   singular values {}  (condition number {:.1})",
        sigma
            .iter()
            .map(|s| format!("{s:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        sigma[0] / sigma[3]
    );
    Ok(())
}

/// The eigenvalues of a small symmetric matrix, by cyclic Jacobi rotations.
fn symmetric_eigenvalues(m: &Tensor<f64>) -> Vec<f64> {
    let n = m.dims()[0];
    let mut a: Vec<f64> = m.to_vec();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off < 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let (c, s) = (1.0 / (t * t + 1.0).sqrt(), t / (t * t + 1.0).sqrt());
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..n).map(|i| a[i * n + i]).collect()
}

/// Mean logistic loss of `w` (the last entry the bias) on `x`, `y`, plus `λ/2 ‖w‖²` with
/// λ = 0.01 (the classes are separable: without it the minimum is at infinity).
fn logistic<'g>(x: &Tensor<f64>, y: &Tensor<f64>, w: Var<'g, f64>) -> Var<'g, f64> {
    let d = x.dims()[1];
    let weights = w.narrow(0, 0, d).reshape([d, 1]);
    let bias = w.narrow(0, d, 1);
    let logits = w
        .graph()
        .constant(x.clone())
        .matmul(weights)
        .reshape([x.dims()[0]])
        + bias;
    let y = w.graph().constant(y.clone());
    binary_cross_entropy_with_logits(logits, y, None, Reduction::Mean) + w.square().sum() * 5e-3
}

fn newton_on_logistic_regression() -> Result<()> {
    println!("2. Newton's method on logistic regression (digits: is it a 0?), 65 parameters");
    let data = recipe::digits_splits(0)?;
    let x = data.train.features().cast::<f64>();
    let x = x.reshape([x.dims()[0], 64]);
    let y = Tensor::from_vec(
        data.train
            .labels()
            .as_slice()
            .iter()
            .map(|&c| f64::from(u8::from(c == 0)))
            .collect(),
        [x.dims()[0]],
    );
    let mut w = Tensor::<f64>::zeros([65]);
    for step in 0.. {
        let g = Graph::new();
        let wv = g.leaf(w.clone());
        let loss = logistic(&x, &y, wv);
        let grad = loss.backward().wrt(wv);
        let gnorm = grad.as_slice().iter().map(|v| v * v).sum::<f64>().sqrt();
        println!("   step {step}: loss {:.10}  ‖∇‖ {gnorm:.3e}", loss.item());
        if gnorm < 1e-12 {
            break;
        }
        assert!(step < 12, "Newton's method did not converge in 12 steps");
        let h = hessian(|_, v| logistic(&x, &y, v[0]), &[w.clone()])?
            .remove(0)
            .remove(0);
        let d = cholesky_solve(&h, &grad);
        w = Tensor::from_vec(
            w.as_slice().iter().zip(&d).map(|(a, b)| a - b).collect(),
            [65],
        );
    }
    Ok(())
}

/// The recipe's widths (64-128-64-10) without batch norm and dropout: DP-SGD needs the
/// examples of a batch independent, and Opacus swaps batch norm out too.
fn dp_mlp(store: &mut ParamStore<f32>) -> Sequential<f32> {
    let mut rng = seeded_rng(3);
    Sequential::new()
        .push(Flatten::default())
        .push(Linear::new(store, "1", 64, 128, Init::HeNormal, &mut rng))
        .push(Relu)
        .push(Linear::new(store, "3", 128, 64, Init::HeNormal, &mut rng))
        .push(Relu)
        .push(Linear::new(store, "5", 64, 10, Init::HeNormal, &mut rng))
}

fn per_example_ce<'g>(labels: &Tensor<usize>, y: Var<'g, f32>, rows: Range<usize>) -> Var<'g, f32> {
    let t = Tensor::from_slice(&labels.as_slice()[rows.clone()], [rows.len()]);
    let cfg = CrossEntropyConfig {
        reduction: Reduction::None,
        ..Default::default()
    };
    cross_entropy_with(y, &t, &cfg)
}

/// DP-SGD's batch and the two runs' learning rates.
const BATCH: usize = 32;
const SGD_LR: f64 = 0.2;
const DP_LR: f64 = 0.5;

fn per_example_gradients_and_dp_sgd(args: &Args) -> Result<()> {
    println!("3. Per-example gradients of the digits MLP, and DP-SGD");
    let data = recipe::digits_splits(0)?;
    let train = DataLoader::new(&data.train, BATCH).with_shuffle(0);
    let val = DataLoader::new(&data.val, 1024);
    let mut store = ParamStore::new();
    let model = dp_mlp(&mut store);
    let start = store.clone();

    let mut norms = Vec::new();
    for batch in train.epoch(0) {
        let ps = grads(&model, &mut store, &batch.x, &batch.y)?;
        assert_eq!(ps.method(), Method::Vectorized);
        norms.extend(ps.norms().as_slice().iter().map(|&n| f64::from(n)));
    }
    let mut sorted = norms.clone();
    sorted.sort_by(f64::total_cmp);
    let q = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    println!(
        "   {} examples at initialisation: gradient norm median {:.3}, 90th percentile {:.3}, max {:.3}",
        norms.len(),
        q(0.5),
        q(0.9),
        q(1.0)
    );
    let png = args.results.join("per_sample_norms.png");
    histogram_png(
        &png,
        "Per-example gradient norms, digits MLP at initialisation",
        "‖∇ℓ_b‖",
        &norms,
        40,
    )?;
    println!("   histogram: {}", png.display());

    // Each example's gradient is clipped to norm 1, about an eighth of its size here (the
    // median above), so DP-SGD takes a larger step.
    let (clip, sigma) = (1.0, 1.0);
    let (sgd_lr, dp_lr) = (SGD_LR, DP_LR);
    for private in [false, true] {
        let mut store = start.clone();
        let mut opt = Sgd::new(SgdConfig::default());
        let mut noise = seeded_rng(4);
        for batch in train.epoch(0) {
            let ps = grads(&model, &mut store, &batch.x, &batch.y)?;
            let b = ps.batch() as f32;
            let (g, lr) = if private {
                (ps.dp_sgd(clip, sigma, &mut noise), dp_lr)
            } else {
                let mut g = ps.sum();
                g.scale(1.0 / b);
                (g, sgd_lr)
            };
            opt.step(&mut store, &g, lr);
        }
        let e = evaluate(&model, &store, &val, &CrossEntropy);
        let what = if private {
            format!("DP-SGD (clip {clip}, noise σ = {sigma}, lr {dp_lr}, batch {BATCH}):")
        } else {
            format!("SGD (lr {sgd_lr}, batch {BATCH}):")
        };
        println!(
            "   one epoch of {what:<48} validation accuracy {:.1}%, loss {:.3}",
            100.0 * e.accuracy(),
            e.loss()
        );
    }
    Ok(())
}

fn grads(
    model: &Sequential<f32>,
    store: &mut ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
) -> Result<PerSampleGrads<f32>> {
    per_sample_grads(model, store, Mode::Eval, None, x, |out, rows| {
        per_example_ce(y, out, rows)
    })
}

fn memory_of_checkpointing(full: bool) {
    let (layers, width, batch) = if full {
        (32, 1024, 256)
    } else {
        (16, 512, 256)
    };
    println!(
        "4. Peak memory of a training step: {layers} x (Linear {width}, ReLU), batch {batch}, f32"
    );
    tapegrad::core::memory::set_pool_limit(0);
    tapegrad::core::memory::trim_pool();
    let x = Tensor::<f32>::rand_normal([batch, width], 0.0, 1.0, &mut seeded_rng(5));
    let segments = (layers as f64).sqrt().round() as usize;
    let mut reference: Option<Vec<Vec<f32>>> = None;
    let mut plain_act = 0;
    for checkpointed in [false, true] {
        let mut store = ParamStore::new();
        let mut rng = seeded_rng(6);
        let mut m = Sequential::new();
        for i in 0..layers {
            m = m
                .push(Linear::new(
                    &mut store,
                    &i.to_string(),
                    width,
                    width,
                    Init::HeNormal,
                    &mut rng,
                ))
                .push(Relu);
        }
        let m = if checkpointed {
            checkpoint_segments(m, segments)
        } else {
            m
        };
        let step = || {
            let g = Graph::new();
            let y = m.forward(&mut Forward::eval(&g, &store), g.constant(x.clone()));
            y.square().mean().backward()
        };
        step(); // warm-up: the matrix products' packing buffers are allocated once
        let (mem, grads) = peak_memory::peak_during(step);
        // What the gradients hold (the result, the same in both runs) is not activations.
        let (peak, grad_bytes) = (mem.peak, mem.kept);
        let grads: Vec<Vec<f32>> = store
            .keys()
            .map(|k| grads.param(k).unwrap().to_vec())
            .collect();
        let act = peak - grad_bytes;
        let name = if checkpointed {
            format!("{segments} checkpointed segments")
        } else {
            "plain".into()
        };
        if !checkpointed {
            plain_act = act;
        }
        println!(
            "   {name:<24} peak {:>7.1} MB, of which activations {:>6.1} MB ({:.0}% of plain)",
            peak as f64 / 1e6,
            act as f64 / 1e6,
            100.0 * act as f64 / plain_act as f64
        );
        match &reference {
            None => reference = Some(grads),
            Some(r) => {
                assert!(
                    r == &grads,
                    "checkpointed gradients differ from the plain run's"
                );
                println!("   the gradients of both runs are equal bit for bit");
            }
        }
    }
}

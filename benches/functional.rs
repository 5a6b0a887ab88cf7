//! `jacobian` and `jacobian_fwd` against the loop a user writes without them (one forward
//! and one `backward_with` per output element), on a small network
//! `x ↦ tanh(W₂ tanh(W₁ x + b₁))` (`x` of 64, a hidden layer of 128, 32 outputs, f64), and
//! `hessian` against the loop of `hvp`s; and `per_sample_grads` on the digits recipe's MLP
//! (64-128-64-10 with batch norm, in evaluation mode, f32) against the loop of one forward
//! and backward per example, for batches of 64 and 256.
//!
//! `cargo bench --bench functional`.

use std::hint::black_box;

#[path = "../examples/common/recipe.rs"]
mod recipe;

use std::ops::Range;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tapegrad::functional::{hessian, hvp, jacobian, jacobian_fwd};
use tapegrad::prelude::*;

fn net<'g>(w1: &Tensor<f64>, b1: &Tensor<f64>, w2: &Tensor<f64>, x: Var<'g, f64>) -> Var<'g, f64> {
    let h = (x.reshape([1, 64]).matmul_t(
        x.graph().constant(w1.clone()),
        Transpose::No,
        Transpose::Yes,
    ) + b1)
        .tanh();
    h.matmul_t(
        x.graph().constant(w2.clone()),
        Transpose::No,
        Transpose::Yes,
    )
    .tanh()
    .reshape([32])
}

fn transforms(c: &mut Criterion) {
    let mut rng = seeded_rng(0);
    let w1 = Tensor::<f64>::rand_normal([128, 64], 0.0, 0.125, &mut rng);
    let b1 = Tensor::<f64>::rand_normal([128], 0.0, 0.1, &mut rng);
    let w2 = Tensor::<f64>::rand_normal([32, 128], 0.0, 0.09, &mut rng);
    let x = Tensor::<f64>::rand_normal([64], 0.0, 1.0, &mut rng);
    let xs = [x.clone()];

    let mut g = c.benchmark_group("jacobian_32x64");
    g.bench_function("jacobian", |b| {
        b.iter(|| jacobian(|_, v| net(&w1, &b1, &w2, v[0]), black_box(&xs)).unwrap())
    });
    g.bench_function("jacobian_fwd", |b| {
        b.iter(|| jacobian_fwd(|_, v| net(&w1, &b1, &w2, v[0]), black_box(&xs)).unwrap())
    });
    g.bench_function("loop_of_backward", |b| {
        b.iter(|| {
            let mut j = Tensor::<f64>::zeros([32, 64]);
            for k in 0..32 {
                let graph = Graph::new();
                let xv = graph.leaf(x.clone());
                let mut e = Tensor::zeros([32]);
                e.as_mut_slice()[k] = 1.0;
                let row = net(&w1, &b1, &w2, xv).backward_with(&e).wrt(xv);
                j.as_mut_slice()[k * 64..(k + 1) * 64].copy_from_slice(row.as_slice());
            }
            j
        })
    });
    g.finish();

    // The Hessian of a scalar of the network (64 inputs).
    let mut g = c.benchmark_group("hessian_64");
    g.bench_function("hessian", |b| {
        b.iter(|| {
            hessian(
                |_, v| net(&w1, &b1, &w2, v[0]).square().sum(),
                black_box(&xs),
            )
            .unwrap()
        })
    });
    g.bench_function("loop_of_hvp", |b| {
        b.iter(|| {
            let mut h = Tensor::<f64>::zeros([64, 64]);
            for k in 0..64 {
                let mut e = Tensor::zeros([64]);
                e.as_mut_slice()[k] = 1.0;
                let row = hvp(|_, v| net(&w1, &b1, &w2, v[0]).square().sum(), &xs, &[e]).unwrap();
                h.as_mut_slice()[k * 64..(k + 1) * 64].copy_from_slice(row[0].as_slice());
            }
            h
        })
    });
    g.finish();
}

/// Each digit's cross-entropy (one loss per example).
fn per_example_loss<'g>(
    labels: &Tensor<usize>,
    logits: Var<'g, f32>,
    rows: Range<usize>,
) -> Var<'g, f32> {
    let t = Tensor::from_slice(&labels.as_slice()[rows.clone()], [rows.len()]);
    let cfg = CrossEntropyConfig {
        reduction: Reduction::None,
        ..Default::default()
    };
    cross_entropy_with(logits, &t, &cfg)
}

fn per_sample(c: &mut Criterion) {
    let data = recipe::digits_splits(0).unwrap();
    let mut store = ParamStore::new();
    let model = recipe::mlp(&mut store, 64, &recipe::Recipe::digits(), 10);
    let mut g = c.benchmark_group("per_sample_digits_mlp");
    for b in [64, 256] {
        let rows: Vec<usize> = (0..b).collect();
        let batch = data.train.subset(&rows);
        let (x, labels) = (
            batch.features().clone(),
            Tensor::from_vec(batch.labels().to_vec(), [b]),
        );
        g.bench_with_input(BenchmarkId::new("per_sample_grads", b), &b, |bench, _| {
            bench.iter(|| {
                per_sample_grads(
                    &model,
                    &mut store,
                    Mode::Eval,
                    None,
                    black_box(&x),
                    |y, r| per_example_loss(&labels, y, r),
                )
                .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("loop_of_backward", b), &b, |bench, _| {
            let keys = model.trainable(&store);
            bench.iter(|| {
                let mut rows: Vec<Vec<Tensor<f32>>> = vec![Vec::with_capacity(b); keys.len()];
                let mut graph = Graph::new();
                for i in 0..b {
                    graph.reset();
                    let xi = graph.constant(x.narrow(0, i, 1));
                    let y = model.forward(&mut Forward::eval(&graph, &store), xi);
                    let grads = per_example_loss(&labels, y, i..i + 1).sum().backward();
                    for (k, r) in keys.iter().zip(&mut rows) {
                        r.push(grads.param(*k).unwrap().clone());
                    }
                }
                rows.iter()
                    .map(|r| Tensor::stack(&r.iter().collect::<Vec<_>>(), 0))
                    .collect::<Vec<_>>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, transforms, per_sample);
criterion_main!(benches);

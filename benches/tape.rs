//! Criterion benchmarks of whole steps on the tape: per-op overhead on scalars, an MLP
//! training step, a convolution forward and backward, and a large element-wise chain.
//!
//! `cargo bench --bench tape`. The workloads mirror `examples/peer_bench.rs` (W2–W5) at
//! criterion's statistics; the peer comparison itself is that example's job.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapegrad::optim::{Optimizer, Sgd, SgdConfig};
use tapegrad::prelude::*;

fn op_overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("tape");
    g.throughput(Throughput::Elements(1000));
    let mut graph = Graph::<f32>::with_capacity(1002);
    g.bench_function("scalar_chain_1000_ops_fwd_bwd", |b| {
        b.iter(|| {
            graph.reset();
            let x = graph.leaf(Tensor::from_vec(vec![0.5], [1]));
            let mut y = x;
            for i in 0..1000 {
                y = if i % 10 == 9 {
                    y.tanh()
                } else if i % 2 == 0 {
                    y * 0.999
                } else {
                    y + 0.001
                };
            }
            let s = y.sum();
            black_box(s.backward().wrt(x).item())
        })
    });
    g.finish();
}

fn mlp_step(c: &mut Criterion) {
    let mut rng = seeded_rng(0);
    let x = Tensor::<f32>::rand_uniform([128, 784], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([128], |i| i % 10);
    let mut store = ParamStore::new();
    let model = Sequential::new()
        .push(Linear::new(
            &mut store,
            "0",
            784,
            512,
            Init::TorchDefault,
            &mut rng,
        ))
        .push(Relu)
        .push(Linear::new(
            &mut store,
            "2",
            512,
            256,
            Init::TorchDefault,
            &mut rng,
        ))
        .push(Relu)
        .push(Linear::new(
            &mut store,
            "4",
            256,
            10,
            Init::TorchDefault,
            &mut rng,
        ));
    let mut opt = Sgd::new(SgdConfig::default());
    let mut graph = Graph::new();
    let mut g = c.benchmark_group("tape");
    g.sample_size(30);
    g.bench_function("mlp_784_512_256_10_train_step_b128", |b| {
        b.iter(|| {
            graph.reset();
            let loss = {
                let mut f = Forward::train(&graph, &mut store, &mut rng);
                let out = model.forward(&mut f, graph.constant(x.clone()));
                cross_entropy(out, &y, Reduction::Mean)
            };
            let grads = loss.backward();
            graph.reset();
            opt.step(&mut store, &grads, 0.01);
        })
    });
    g.finish();
}

fn conv_step(c: &mut Criterion) {
    let mut rng = seeded_rng(1);
    let x = Tensor::<f32>::rand_uniform([8, 32, 28, 28], -1.0, 1.0, &mut rng);
    let w = Tensor::<f32>::rand_uniform([64, 32, 3, 3], -0.06, 0.06, &mut rng);
    let bias = Tensor::<f32>::zeros([64]);
    let spec = Conv2dSpec::default().with_padding(1, 1);
    let mut graph = Graph::new();
    let mut g = c.benchmark_group("tape");
    g.sample_size(20);
    g.bench_function("conv3x3_32_64_28x28_b8_fwd_bwd", |b| {
        b.iter(|| {
            graph.reset();
            let (xv, wv, bv) = (
                graph.leaf(x.clone()),
                graph.leaf(w.clone()),
                graph.leaf(bias.clone()),
            );
            let s = xv.conv2d(wv, Some(bv), spec).sum();
            black_box(s.backward().wrt(wv).numel())
        })
    });
    g.finish();
}

fn elementwise_chain(c: &mut Criterion) {
    let n = 1_000_000;
    let x = Tensor::<f32>::rand_uniform([n], -2.0, 2.0, &mut seeded_rng(2));
    let mut graph = Graph::new();
    let mut g = c.benchmark_group("tape");
    g.sample_size(30);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("tanh_affine_1e6_fwd_bwd", |b| {
        b.iter(|| {
            graph.reset();
            let xv = graph.leaf(x.clone());
            let s = (xv * 0.5 + 0.1).tanh().sum();
            black_box(s.backward().wrt(xv).numel())
        })
    });
    g.finish();
}

/// Batch norm's normalisation over `[32, 64, 28, 28]` (statistics per channel), forward and
/// backward: the fused op against the composite of mean, var, subtract, add, rsqrt and
/// multiply it replaces.
fn normalization(c: &mut Criterion) {
    let mut rng = seeded_rng(3);
    let x = Tensor::<f32>::rand_uniform([32, 64, 28, 28], -2.0, 2.0, &mut rng);
    let w = Tensor::<f32>::rand_uniform([32, 64, 28, 28], -1.0, 1.0, &mut rng);
    let mut graph = Graph::new();
    let mut g = c.benchmark_group("tape");
    g.sample_size(20);
    g.throughput(Throughput::Elements(x.numel() as u64));
    for fused in [true, false] {
        let name = if fused {
            "normalize_fused"
        } else {
            "normalize_composite"
        };
        g.bench_function(format!("batchnorm_core_32x64x28x28_fwd_bwd_{name}"), |b| {
            b.iter(|| {
                graph.reset();
                let (xv, wv) = (graph.leaf(x.clone()), graph.constant(w.clone()));
                let y = if fused {
                    xv.normalize([0, 2, 3], 1e-5)
                } else {
                    let mean = xv.mean_dim([0, 2, 3], true);
                    let var = xv.var_dim([0, 2, 3], false, true);
                    (xv - mean) * (var + 1e-5).rsqrt()
                };
                black_box((y * wv).sum().backward().wrt(xv).numel())
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    op_overhead,
    mlp_step,
    conv_step,
    elementwise_chain,
    normalization
);
criterion_main!(benches);

//! What one logged step costs, on the Fashion-MNIST recipe's model (784-256-128-10 with
//! BatchNorm and dropout, 235k parameters): the scalars of a step (loss, rate, global and
//! per-layer gradient norms), the weight and gradient histograms, and the activation
//! histograms of a 256-image probe (its forward pass included).
//!
//! `cargo bench --bench tensorboard`. `scripts/bench_tensorboard.py` measures the same in
//! whole training runs.

#[path = "../examples/common/recipe.rs"]
mod recipe;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tapegrad::prelude::*;
use tapegrad::train::tensorboard::TensorBoardLogger;

fn logging(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("tapegrad-bench-tb-{}", std::process::id()));
    let log = TensorBoardLogger::new(&dir).unwrap();
    let mut store = ParamStore::new();
    let m = recipe::mlp(&mut store, 784, &recipe::Recipe::fashion_mnist(), 10);
    let mut rng = seeded_rng(1);
    let x = Tensor::<f32>::rand_normal([128, 1, 28, 28], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([128], |i| i % 10);
    let probe = Tensor::<f32>::rand_normal([256, 1, 28, 28], 0.0, 1.0, &mut rng);
    let g = Graph::new();
    let grads = {
        let mut f = Forward::train(&g, &mut store, &mut rng);
        let out = m.forward(&mut f, g.constant(x));
        drop(f);
        cross_entropy(out, &y, Reduction::Mean).backward()
    };

    let mut group = c.benchmark_group("tensorboard");
    let mut step = 0;
    group.bench_function("scalars_step", |b| {
        b.iter(|| {
            step += 1;
            log.scalar("step/loss", 0.5, step).unwrap();
            log.scalar("step/lr", 1e-3, step).unwrap();
            log.grad_norms(&store, &grads, step).unwrap();
        })
    });
    group.bench_function("weight_histograms", |b| {
        b.iter(|| log.weights(&store, black_box(1)).unwrap())
    });
    group.bench_function("grad_histograms", |b| {
        b.iter(|| log.grads(&store, &grads, black_box(1)).unwrap())
    });
    group.bench_function("activation_histograms", |b| {
        b.iter(|| {
            let g = Graph::new();
            let mut rec = Recorder::new().with_bins(30);
            let stats = g.no_grad(|| {
                let mut f = Forward::eval(&g, &store).with_recorder(&mut rec);
                m.forward(&mut f, g.constant(probe.clone()));
                drop(f);
                rec.report(None)
            });
            log.layer_stats(&stats, 1).unwrap();
        })
    });
    group.finish();
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, logging);
criterion_main!(benches);

//! Criterion benchmarks of the numeric kernels: gemm at square and training shapes, the
//! vectorised math, element-wise maps and sums.
//!
//! `cargo bench --bench kernels` (add `-- gemm` to run one group). The thread count is the
//! pool's default (`TAPEGRAD_NUM_THREADS` to change it). For the comparison with other
//! frameworks, see `examples/peer_bench.rs` and `docs/performance.md`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tapegrad::kernels::elementwise;
use tapegrad::kernels::gemm::{gemm, MatLayout};
use tapegrad::kernels::math::{apply_f32, MathFn};
use tapegrad::kernels::reduce;

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let mut x = i.wrapping_add(seed.wrapping_mul(0x9E37_79B9));
            x ^= x >> 16;
            x = x.wrapping_mul(0x7feb_352d);
            x ^= x >> 15;
            x = x.wrapping_mul(0x846c_a68b);
            x ^= x >> 16;
            (x >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

fn gemm_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("gemm_f32");
    g.sample_size(20);
    // Square products, and the shapes of a 784-512-256-10 MLP step at batch 128 and of a
    // 3x3 convolution 32 -> 64 on 28x28 (one image).
    let shapes: [(&str, usize, usize, usize, bool, bool); 7] = [
        ("square", 64, 64, 64, false, false),
        ("square", 256, 256, 256, false, false),
        ("square", 1024, 1024, 1024, false, false),
        ("mlp_forward", 128, 784, 512, false, false),
        ("mlp_weight_grad", 784, 128, 512, true, false),
        ("mlp_input_grad", 128, 256, 512, false, true),
        ("conv_forward", 64, 288, 784, false, false),
    ];
    for (name, m, k, n, ta, tb) in shapes {
        let a = data(m * k, 1);
        let b = data(k * n, 2);
        let mut out = vec![0.0f32; m * n];
        let la = MatLayout::row_major(if ta { m } else { k }, ta);
        let lb = MatLayout::row_major(if tb { k } else { n }, tb);
        let lc = MatLayout::row_major(n, false);
        g.throughput(Throughput::Elements((2 * m * k * n) as u64));
        g.bench_function(BenchmarkId::new(name, format!("{m}x{k}x{n}")), |bch| {
            bch.iter(|| gemm(m, k, n, 1.0, black_box(&a), la, &b, lb, 0.0, &mut out, lc))
        });
    }
    g.finish();
}

fn math_bench(c: &mut Criterion) {
    let n = 1 << 20;
    let x = data(n, 3);
    let mut out = vec![0.0f32; n];
    let mut g = c.benchmark_group("math_f32");
    g.sample_size(30);
    g.throughput(Throughput::Elements(n as u64));
    for (name, f) in [
        ("exp", MathFn::Exp),
        ("tanh", MathFn::Tanh),
        ("sigmoid", MathFn::Sigmoid),
    ] {
        g.bench_function(name, |b| b.iter(|| apply_f32(f, black_box(&x), &mut out)));
    }
    let pos: Vec<f32> = x.iter().map(|v| v.abs() + 0.5).collect();
    g.bench_function("log", |b| {
        b.iter(|| apply_f32(MathFn::Log, black_box(&pos), &mut out))
    });
    g.bench_function("std_tanh_scalar", |b| {
        b.iter(|| {
            for (o, &v) in out.iter_mut().zip(black_box(&x)) {
                *o = v.tanh();
            }
        })
    });
    g.finish();
}

fn elementwise_bench(c: &mut Criterion) {
    let n = 1 << 20;
    let x = data(n, 4);
    let y = data(n, 5);
    let mut out = vec![0.0f32; n];
    let mut g = c.benchmark_group("elementwise_f32");
    g.sample_size(30);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("map_affine", |b| {
        b.iter(|| elementwise::map(black_box(&x), &mut out, |v| v * 0.5 + 0.1))
    });
    g.bench_function("zip_mul", |b| {
        b.iter(|| elementwise::zip(black_box(&x), &y, &mut out, |u, v| u * v))
    });
    g.bench_function("sum", |b| b.iter(|| reduce::sum(black_box(&x))));
    g.finish();
}

criterion_group!(benches, gemm_bench, math_bench, elementwise_bench);
criterion_main!(benches);

//! The peak memory of a training step of a deep MLP — 32 × (Linear 1024 → 1024, ReLU), a
//! batch of 256, f32 — plain and cut into checkpointed segments, measured by a counting
//! global allocator (tapegrad's buffer pool off, so freed tensors are not counted). Reported,
//! never asserted: it is a measurement, not a test.
//!
//! The peak is what the step holds above the model and its input: the tape's activations,
//! the backward pass's temporaries and the parameters' gradients (134 MB of numbers, 168 MB
//! as allocated — a 4 MiB tensor takes the pool's 5 MiB size class — the same in every run:
//! they are the result). "Activations" is the peak less what the gradients hold.
//!
//! `cargo bench --bench checkpoint_memory` (`-- 1024` for a batch of 1024).

#[path = "../examples/common/peak_memory.rs"]
mod peak_memory;

use std::time::Instant;

use tapegrad::prelude::*;

#[global_allocator]
static ALLOC: peak_memory::Counting = peak_memory::Counting;

const LAYERS: usize = 32;
const WIDTH: usize = 1024;

fn model(store: &mut ParamStore<f32>) -> Sequential<f32> {
    let mut rng = seeded_rng(0);
    let mut m = Sequential::new();
    for i in 0..LAYERS {
        m = m
            .push(Linear::new(
                store,
                &i.to_string(),
                WIDTH,
                WIDTH,
                Init::HeNormal,
                &mut rng,
            ))
            .push(Relu);
    }
    m
}

/// One step's peak (bytes above the start), its seconds, and the bytes its gradients hold.
fn step(m: &Sequential<f32>, store: &mut ParamStore<f32>, x: &Tensor<f32>) -> (usize, f64, usize) {
    let t = Instant::now();
    let (mem, grads) = peak_memory::peak_during(|| {
        let g = Graph::new();
        let mut rng = seeded_rng(1);
        let y = m.forward(
            &mut Forward::train(&g, store, &mut rng),
            g.constant(x.clone()),
        );
        y.square().mean().backward()
    });
    let secs = t.elapsed().as_secs_f64();
    drop(grads);
    (mem.peak, secs, mem.kept)
}

fn main() {
    let batch: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    tapegrad::core::memory::set_pool_limit(0);
    let x = Tensor::<f32>::rand_normal([batch, WIDTH], 0.0, 1.0, &mut seeded_rng(2));
    println!("{LAYERS} x Linear({WIDTH}, {WIDTH}) + ReLU, batch {batch}, f32: one training step");
    println!(
        "{:<26} {:>10} {:>13} {:>8} {:>8}",
        "model", "peak MB", "activations MB", "ratio", "step s"
    );
    let mut plain = None;
    for segments in [0, 4, 6, 8, 16, 32] {
        let mut store = ParamStore::new();
        let m = model(&mut store);
        let (m, name) = if segments == 0 {
            (m, "plain".to_string())
        } else {
            (
                checkpoint_segments(m, segments),
                format!("{segments} checkpointed segments"),
            )
        };
        step(&m, &mut store, &x); // warm-up: the packing buffers, the pool of threads
        let (peak, secs, grads) = step(&m, &mut store, &x);
        let act = peak.saturating_sub(grads);
        let base = *plain.get_or_insert((peak, act));
        println!(
            "{name:<26} {:>10.1} {:>13.1} {:>8.2} {:>8.2}",
            peak as f64 / 1e6,
            act as f64 / 1e6,
            act as f64 / base.1 as f64,
            secs
        );
    }
}

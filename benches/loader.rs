//! Loader throughput: batches per second over one epoch of the digits (batch 64) and of
//! Fashion-MNIST's 60,000 training images (batch 128, when Debian's
//! `dataset-fashion-mnist` is installed), shuffled, with and without the ±1-pixel random
//! translation.
//!
//! `cargo bench --bench loader`. Criterion reports the time of one epoch and its
//! throughput in batches.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tapegrad::data::read::{digits, mnist, MnistPart};
use tapegrad::data::RandomTranslate;
use tapegrad::prelude::*;

fn epochs(c: &mut Criterion, name: &str, data: &TensorDataset<f32>, batch: usize) {
    let mut g = c.benchmark_group(format!("loader_{name}"));
    let plain = DataLoader::new(data, batch).with_shuffle(0);
    let augmented = DataLoader::new(data, batch).with_shuffle(0).with_transform(
        RandomTranslate {
            max_dx: 1,
            max_dy: 1,
        },
        0,
    );
    g.throughput(Throughput::Elements(plain.batches_per_epoch() as u64));
    for (label, loader) in [("shuffled", &plain), ("shuffled_translated", &augmented)] {
        let mut epoch = 0;
        g.bench_function(format!("epoch_{label}"), |b| {
            b.iter(|| {
                epoch += 1;
                let mut sum = 0.0f32;
                for batch in loader.epoch(epoch) {
                    sum += batch.x.as_slice()[0];
                }
                black_box(sum)
            })
        });
    }
    g.finish();
}

fn loaders(c: &mut Criterion) {
    let d = digits::<f32>().expect("the bundled digits");
    epochs(c, "digits", &d, 64);
    match mnist::<f32>("/usr/share/datasets/fashion-mnist", MnistPart::Train) {
        Ok(f) => epochs(c, "fashion_mnist", &f, 128),
        Err(e) => eprintln!("skipping Fashion-MNIST: {e}"),
    }
}

criterion_group!(benches, loaders);
criterion_main!(benches);

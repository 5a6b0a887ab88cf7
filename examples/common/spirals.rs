//! The classic "spirals" toy problem (CS231n): `classes` arms of `per_class` 2-d points each,
//! with Gaussian noise on the angle. Not linearly separable, easy to see.

use tapegrad::prelude::*;

/// Points `[classes·per_class, 2]` and their arm `[classes·per_class]`.
pub fn spirals(
    classes: usize,
    per_class: usize,
    noise: f64,
    seed: u64,
) -> (Tensor<f32>, Tensor<usize>) {
    let mut rng = seeded_rng(seed);
    let jitter = Tensor::<f64>::rand_normal([classes * per_class], 0.0, noise, &mut rng);
    let mut xs = Vec::with_capacity(classes * per_class * 2);
    let mut ys = Vec::with_capacity(classes * per_class);
    for c in 0..classes {
        for i in 0..per_class {
            let r = i as f64 / per_class as f64;
            let t = c as f64 * 4.0 + 4.0 * r + jitter.as_slice()[c * per_class + i];
            xs.extend([(r * t.sin()) as f32, (r * t.cos()) as f32]);
            ys.push(c);
        }
    }
    (
        Tensor::from_vec(xs, [classes * per_class, 2]),
        Tensor::from_vec(ys, [classes * per_class]),
    )
}

/// The fraction of rows whose largest logit is the label.
pub fn accuracy(logits: &Tensor<f32>, labels: &Tensor<usize>) -> f64 {
    let pred = logits.argmax(1, false);
    pred.as_slice()
        .iter()
        .zip(labels.as_slice())
        .filter(|(p, y)| p == y)
        .count() as f64
        / labels.numel() as f64
}

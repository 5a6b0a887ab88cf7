//! The convolution kernels against each other: Winograd against the direct (im2col) path,
//! in f64 and f32. (The direct path is checked against the definition, and both through
//! the ops' gradient checks, in the core crate.)

use super::winograd::{self, applies};
use super::*;

/// `len` numbers uniform in [−1, 1), from a xorshift stream seeded by `seed`.
fn rand_vec(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

/// The largest difference between `a` and `b`, relative to `b`'s largest magnitude.
fn rel_diff<T: Float>(a: &[T], b: &[T]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-30f64, |m, v| m.max(v.as_f64().abs()));
    a.iter()
        .zip(b)
        .map(|(x, y)| (x.as_f64() - y.as_f64()).abs() / scale)
        .fold(0.0, f64::max)
}

/// Forward, input gradient and weight gradient through Winograd and through the direct
/// path, for one element type: the three relative differences.
fn both_paths<T: Float>((x, w, gy): (&[f64], &[f64], &[f64]), d: &ConvDims) -> [f64; 3] {
    let cast = |v: &[f64]| v.iter().map(|&e| T::from_f64(e)).collect::<Vec<T>>();
    let (x, w, gy) = (cast(x), cast(w), cast(gy));
    let (ny, nx, nw) = (gy.len(), x.len(), w.len());
    let run = |f: &dyn Fn(&mut [T]), len: usize| {
        let mut out = vec![T::nan(); len];
        f(&mut out);
        out
    };
    let y = run(&|o| winograd::forward(&x, &w, None, d, o, &Heap), ny);
    let y0 = run(&|o| direct::forward(&x, &w, d, o, &Heap), ny);
    let dx = run(&|o| winograd::input_grad(&gy, &w, d, o, &Heap), nx);
    let dx0 = run(&|o| direct::input_grad(&gy, &w, d, o, &Heap), nx);
    let dw = run(&|o| winograd::weight_grad(&gy, &x, d, o, &Heap), nw);
    let dw0 = run(&|o| direct::weight_grad(&gy, &x, d, o, &Heap), nw);
    [rel_diff(&y, &y0), rel_diff(&dx, &dx0), rel_diff(&dw, &dw0)]
}

/// Forward, input gradient and weight gradient through the Winograd path against the
/// direct (im2col) path: every padding it takes, odd and even planes (odd ones leave
/// half tiles at the edges), the smallest output it takes (2×2), in f64 and f32.
#[test]
fn winograd_matches_the_direct_convolution() {
    let mut seed = 0;
    let mut cases = 0;
    for (n, c, o) in [(1, 1, 1), (2, 3, 5), (3, 4, 2)] {
        for (h, w) in [(2, 2), (4, 4), (5, 7), (8, 3), (9, 10)] {
            for pad in [(0, 0), (1, 1), (2, 2), (0, 2), (2, 1)] {
                let win = Window2d::new(3, 3).with_padding(pad.0, pad.1);
                let Some((ho, wo)) = win.output_size(h, w) else {
                    continue;
                };
                if !applies(win, 1, ho, wo) {
                    continue;
                }
                seed += 1;
                cases += 1;
                let x = rand_vec(n * c * h * w, seed);
                let wt = rand_vec(o * c * 9, seed + 1000);
                let gy = rand_vec(n * o * ho * wo, seed + 2000);
                let d = ConvDims::new(&[n, c, h, w], &[o, c, 3, 3], win, 1);
                let what = format!("n={n} c={c} o={o} h={h} w={w} pad={pad:?}");
                let [y, dx, dw] = both_paths::<f64>((&x, &wt, &gy), &d);
                assert!(y < 1e-14, "forward, {what}: {y}");
                assert!(dx < 1e-14, "input grad, {what}: {dx}");
                assert!(dw < 1e-14, "weight grad, {what}: {dw}");
                let [y, dx, dw] = both_paths::<f32>((&x, &wt, &gy), &d);
                assert!(y < 1e-5, "f32 forward, {what}: {y}");
                assert!(dx < 1e-5, "f32 input grad, {what}: {dx}");
                assert!(dw < 1e-5, "f32 weight grad, {what}: {dw}");
            }
        }
    }
    assert!(cases >= 60, "{cases} cases");
}

#[test]
fn winograd_takes_only_the_windows_it_computes() {
    let w3 = Window2d::new(3, 3);
    assert!(applies(w3.with_padding(1, 1), 1, 28, 28));
    assert!(!applies(w3.with_padding(1, 1), 2, 28, 28), "groups");
    assert!(!applies(w3.with_stride(2, 2), 1, 28, 28), "stride");
    assert!(!applies(w3.with_dilation(2, 1), 1, 28, 28), "dilation");
    assert!(!applies(w3.with_padding(3, 0), 1, 28, 28), "padding");
    assert!(!applies(Window2d::new(5, 5), 1, 28, 28), "kernel");
    assert!(!applies(w3, 1, 1, 5), "a one-row output");
}

/// Images of more than one weight-gradient run (of both paths), so the runs' sums are
/// combined.
#[test]
fn weight_gradient_over_several_runs() {
    let win = Window2d::new(3, 3).with_padding(1, 1);
    let n = winograd::WEIGHT_GRAD_RUN.max(direct::WEIGHT_GRAD_RUN) * 2 + 3;
    let x = rand_vec(n * 2 * 5 * 6, 7);
    let gy = rand_vec(n * 3 * 5 * 6, 8);
    let d = ConvDims::new(&[n, 2, 5, 6], &[3, 2, 3, 3], win, 1);
    let (mut dw, mut dw0) = (vec![f64::NAN; 54], vec![f64::NAN; 54]);
    winograd::weight_grad(&gy, &x, &d, &mut dw, &Heap);
    direct::weight_grad(&gy, &x, &d, &mut dw0, &Heap);
    assert!(rel_diff(&dw, &dw0) < 1e-14);
}

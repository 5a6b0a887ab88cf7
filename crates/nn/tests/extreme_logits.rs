//! Every loss at logits of ±1e4, ±30 and ±21 (and a few ordinary values) against its formula
//! evaluated in f64 with care: each term computed in the form that is exact for it (no
//! exponential of a large positive number, log1p where the argument is small), written out
//! here independently of the library's code.

use tapegrad_core::{Graph, Tensor};
use tapegrad_nn::{
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy_soft, cross_entropy_with,
    huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss, CrossEntropyConfig, Reduction,
};

const LOGITS: [f64; 11] = [
    1e4, -1e4, 30.0, -30.0, 21.0, -21.0, 20.5, -20.5, 0.5, -0.5, 0.0,
];

/// ln(1 + e^z), exact for every finite z.
fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// ln Σ e^{x_i}, shifted by the maximum.
fn logsumexp(x: &[f64]) -> f64 {
    let m = x.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

#[track_caller]
fn close(got: f64, want: f64, what: &str) {
    let tol = 1e-14 * want.abs().max(1e-300);
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got:e}, want {want:e} (diff {:e})",
        (got - want).abs()
    );
}

#[test]
fn binary_cross_entropy_with_logits_is_exact_for_every_finite_logit() {
    // The case of the issue: x = −21, y = 0 gives ln(1 + e^{−21}) = 7.58e-10, not 0.
    let g = Graph::<f64>::new();
    let l = binary_cross_entropy_with_logits(
        g.leaf(Tensor::scalar(-21.0)),
        g.constant(Tensor::scalar(0.0)),
        None,
        Reduction::Sum,
    );
    // ln(1 + ε) = ε − ε²/2 + … with ε = e^{−21}.
    let e = (-21f64).exp();
    close(l.item(), e - e * e / 2.0, "x = -21, y = 0");
    for pw in [None, Some(2.5)] {
        for y in [0.0, 1.0, 0.3] {
            let n = LOGITS.len();
            let g = Graph::<f64>::new();
            let x = g.leaf(Tensor::from_vec(LOGITS.to_vec(), [n]));
            let yt = g.constant(Tensor::full([n], y));
            let pwt = pw.map(|p| Tensor::full([n], p));
            let l = binary_cross_entropy_with_logits(x, yt, pwt.as_ref(), Reduction::None);
            let dl = l.sum().backward().wrt(x);
            let lw = 1.0 + (pw.unwrap_or(1.0) - 1.0) * y;
            let pwy = pw.unwrap_or(1.0) * y;
            for (i, &xi) in LOGITS.iter().enumerate() {
                // Like-signed terms only: (1 − y)·x + w·ln(1 + e^{−x}) for x > 0, and
                // w·ln(1 + e^{x}) − pos_weight·y·x for x ≤ 0.
                let want = if xi > 0.0 {
                    (1.0 - y) * xi + lw * softplus(-xi)
                } else {
                    lw * softplus(xi) - pwy * xi
                };
                close(
                    l.value().get(&[i]),
                    want,
                    &format!("bce(x={xi}, y={y}, pw={pw:?})"),
                );
                // d/dx = (1 − y) − lw·σ(−x), with σ(−x) = e^{−softplus(x)}.
                let dwant = (1.0 - y) - lw * (-softplus(xi)).exp();
                let err = (dl.get(&[i]) - dwant).abs();
                assert!(
                    err <= 1e-15,
                    "d bce(x={xi}, y={y}): {} vs {dwant}",
                    dl.get(&[i])
                );
            }
        }
    }
}

#[test]
fn cross_entropy_family_at_extreme_logits() {
    // Three rows of three classes: the whole range in each row.
    let rows = [
        [1e4, -1e4, 30.0],
        [-30.0, 21.0, -21.0],
        [-1e4, -1e4 + 21.0, 0.0],
    ];
    let targets = [1usize, 2, 0];
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let logp: Vec<[f64; 3]> = rows
        .iter()
        .map(|r| {
            let lse = logsumexp(r);
            [r[0] - lse, r[1] - lse, r[2] - lse]
        })
        .collect();
    for eps in [0.0, 0.1] {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::from_vec(flat.clone(), [3, 3]));
        let cfg = CrossEntropyConfig::default()
            .with_label_smoothing(eps)
            .with_reduction(Reduction::None);
        let l = cross_entropy_with(x, &Tensor::from_vec(targets.to_vec(), [3]), &cfg);
        for i in 0..3 {
            let smooth: f64 = -logp[i].iter().sum::<f64>() / 3.0;
            let want = (1.0 - eps) * -logp[i][targets[i]] + eps * smooth;
            close(
                l.value().get(&[i]),
                want,
                &format!("cross_entropy row {i}, ε {eps}"),
            );
        }
    }
    // NLL of log-softmax, soft targets and KL over the same rows.
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(flat.clone(), [3, 3]));
    let l = nll_loss(
        x.log_softmax(1),
        &Tensor::from_vec(targets.to_vec(), [3]),
        None,
        Reduction::Sum,
    );
    let want: f64 = (0..3).map(|i| -logp[i][targets[i]]).sum();
    close(l.item(), want, "nll_loss");
    let p = [[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]];
    let pt = g.constant(Tensor::from_vec(
        p.iter().flatten().copied().collect(),
        [3, 3],
    ));
    let l = cross_entropy_soft(x, pt, Reduction::Sum);
    let want: f64 = (0..3)
        .map(|i| (0..3).map(|c| -p[i][c] * logp[i][c]).sum::<f64>())
        .sum();
    close(l.item(), want, "cross_entropy_soft");
    let l = kl_div(x.log_softmax(1), pt, false, Reduction::Sum);
    let want: f64 = (0..3)
        .map(|i| {
            (0..3)
                .filter(|&c| p[i][c] > 0.0)
                .map(|c| p[i][c] * (p[i][c].ln() - logp[i][c]))
                .sum::<f64>()
        })
        .sum();
    close(l.item(), want, "kl_div");
}

#[test]
fn probability_and_regression_losses_at_extreme_values() {
    // binary_cross_entropy of σ(x): each log clamped at −100, as PyTorch.
    let n = LOGITS.len();
    let probs: Vec<f64> = LOGITS.iter().map(|&x| (-softplus(-x)).exp()).collect();
    for y in [0.0, 1.0, 0.3] {
        let g = Graph::<f64>::new();
        let l = binary_cross_entropy(
            g.leaf(Tensor::from_vec(probs.clone(), [n])),
            g.constant(Tensor::full([n], y)),
            Reduction::None,
        );
        for (i, &p) in probs.iter().enumerate() {
            let want = -(y * p.ln().max(-100.0) + (1.0 - y) * (1.0 - p).ln().max(-100.0));
            close(l.value().get(&[i]), want, &format!("bce(p={p:e}, y={y})"));
        }
    }
    // Regression losses at ±1e4 differences: exact arithmetic.
    let a = [1e4, -1e4, 30.0, -21.0, 0.5];
    let b = [-1e4, 1e4, -30.0, 21.0, 0.25];
    let g = Graph::<f64>::new();
    let (x, t) = (
        g.leaf(Tensor::from_vec(a.to_vec(), [5])),
        g.constant(Tensor::from_vec(b.to_vec(), [5])),
    );
    let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
    let sum = |f: &dyn Fn(f64) -> f64| d.iter().map(|&v| f(v)).sum::<f64>();
    close(
        mse_loss(x, t, Reduction::Sum).item(),
        sum(&|v| v * v),
        "mse",
    );
    close(
        l1_loss(x, t, Reduction::Sum).item(),
        sum(&|v: f64| v.abs()),
        "l1",
    );
    let beta = 1.5;
    let sl1 = |v: f64| {
        if v.abs() < beta {
            0.5 * v * v / beta
        } else {
            v.abs() - 0.5 * beta
        }
    };
    close(
        smooth_l1_loss(x, t, beta, Reduction::Sum).item(),
        sum(&sl1),
        "smooth_l1",
    );
    let delta = 2.0;
    let hub = |v: f64| {
        if v.abs() <= delta {
            0.5 * v * v
        } else {
            delta * (v.abs() - 0.5 * delta)
        }
    };
    close(
        huber_loss(x, t, delta, Reduction::Sum).item(),
        sum(&hub),
        "huber",
    );
}

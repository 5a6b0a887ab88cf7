//! Activation statistics of deep random networks at initialisation: the experiment of
//! `examples/init_histograms.rs`, shared with `tests/init_histograms.rs`.
//!
//! A stack of `depth` fully connected layers of `width` units without bias, fed
//! `randn(batch, width)`: `a₀ = x`, `zₗ = aₗ₋₁Wₗ`, `aₗ = f(zₗ)`. For each layer the mean
//! and standard deviation of `aₗ` over every element (NumPy's `std`, no Bessel correction),
//! a sample of its values for the histograms, and the norm of the back-propagated gradient
//! `∂L/∂zₗ` for the loss `L = ⟨a_depth, R⟩` with a fixed `R ~ N(0, 1)` (Glorot & Bengio's
//! "back-propagated gradients", their Figure 7).

#![allow(dead_code)] // the test uses part of it

use tapegrad::prelude::*;

pub use crate::claims::{report, Claim};

/// The nonlinearity after each layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// `tanh`.
    Tanh,
    /// The logistic sigmoid.
    Sigmoid,
    /// `max(0, x)`.
    Relu,
}

impl Act {
    /// Every nonlinearity, in the order of the plots.
    pub const ALL: [Act; 3] = [Act::Tanh, Act::Sigmoid, Act::Relu];

    /// Its lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Tanh => "tanh",
            Act::Sigmoid => "sigmoid",
            Act::Relu => "relu",
        }
    }

    fn apply<'g>(self, z: Var<'g, f32>) -> Var<'g, f32> {
        match self {
            Act::Tanh => z.tanh(),
            Act::Sigmoid => z.sigmoid(),
            Act::Relu => z.relu(),
        }
    }
}

/// How each `width × width` weight matrix is drawn (`n` is the fan-in, equal to the
/// fan-out here).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Weights {
    /// `std · randn`: CS231n's `0.01 * np.random.randn(n, n)` and `1.0 * ...`.
    Normal(f64),
    /// `randn / √n` (CS231n's "Xavier"; the variance `1/n` of Glorot's normalised init).
    Xavier,
    /// `randn · √(2/n)` (He et al.).
    He,
    /// `U[−1/√n, 1/√n]`: the "standard" initialisation of Glorot & Bengio (variance
    /// `1/(3n)`).
    GlorotStandard,
    /// `U[±√6/√(n_in + n_out)]`: Glorot & Bengio's "normalized" initialisation (variance
    /// `2/(n_in + n_out)`).
    GlorotNormalized,
}

impl Weights {
    /// The four schemes of the CS231n grid, in the order of the plots.
    pub const GRID: [Weights; 4] = [
        Weights::Normal(1.0),
        Weights::Normal(0.01),
        Weights::Xavier,
        Weights::He,
    ];

    /// A short name for tables, file names and plots.
    pub fn name(self) -> String {
        match self {
            Weights::Normal(s) => format!("N(0,{s}²)"),
            Weights::Xavier => "Xavier".into(),
            Weights::He => "He".into(),
            Weights::GlorotStandard => "standard U[±1/√n]".into(),
            Weights::GlorotNormalized => "normalized U[±√6/√(2n)]".into(),
        }
    }

    /// A name fit for a file.
    pub fn slug(self) -> String {
        match self {
            Weights::Normal(s) => format!("normal_{s}"),
            Weights::Xavier => "xavier".into(),
            Weights::He => "he".into(),
            Weights::GlorotStandard => "standard".into(),
            Weights::GlorotNormalized => "normalized".into(),
        }
    }

    fn sample(self, n: usize, rng: &mut StdRng) -> Tensor<f32> {
        let nf = n as f64;
        match self {
            Weights::Normal(s) => Tensor::rand_normal([n, n], 0.0, s, rng),
            Weights::Xavier => Tensor::rand_normal([n, n], 0.0, 1.0 / nf.sqrt(), rng),
            Weights::He => Tensor::rand_normal([n, n], 0.0, (2.0 / nf).sqrt(), rng),
            Weights::GlorotStandard => {
                let a = 1.0 / nf.sqrt();
                Tensor::rand_uniform([n, n], -a, a, rng)
            }
            Weights::GlorotNormalized => {
                let a = (6.0 / (2.0 * nf)).sqrt();
                Tensor::rand_uniform([n, n], -a, a, rng)
            }
        }
    }
}

/// What one forward and backward pass measured, layer by layer (index 0 is layer 1).
pub struct Layers {
    /// The mean of each layer's activations.
    pub mean: Vec<f64>,
    /// Their standard deviation.
    pub std: Vec<f64>,
    /// Every `stride`-th activation of each layer, for the histograms.
    pub sample: Vec<Vec<f64>>,
    /// `‖∂L/∂zₗ‖`, the back-propagated gradient's norm at each layer's pre-activation.
    pub grad: Vec<f64>,
}

/// Runs the stack once (seeded) and measures every layer; keeps every `stride`-th
/// activation of each layer (none if `stride` is 0).
pub fn run(
    act: Act,
    weights: Weights,
    depth: usize,
    width: usize,
    batch: usize,
    seed: u64,
    stride: usize,
) -> Layers {
    let mut rng = seeded_rng(seed);
    let x = Tensor::<f32>::rand_normal([batch, width], 0.0, 1.0, &mut rng);
    let g = Graph::new();
    let mut a = g.leaf(x);
    let mut zs = Vec::with_capacity(depth);
    let mut acts = Vec::with_capacity(depth);
    for _ in 0..depth {
        let w = g.constant(weights.sample(width, &mut rng));
        let z = a.matmul(w).retain_grad();
        a = act.apply(z);
        zs.push(z);
        acts.push(a);
    }
    let r = Tensor::<f32>::rand_normal([batch, width], 0.0, 1.0, &mut rng);
    let grads = (a * g.constant(r)).sum().backward();
    let mut out = Layers {
        mean: Vec::new(),
        std: Vec::new(),
        sample: Vec::new(),
        grad: Vec::new(),
    };
    for (z, a) in zs.iter().zip(&acts) {
        let v = a.value();
        out.mean.push(f64::from(v.mean().item()));
        out.std.push(f64::from(v.std(false).item()));
        out.sample.push(if stride == 0 {
            Vec::new()
        } else {
            v.as_slice()
                .iter()
                .step_by(stride)
                .map(|&x| f64::from(x))
                .collect()
        });
        out.grad.push(f64::from(grads.wrt(*z).norm(2.0).item()));
    }
    out
}

/// `std(f(z))` for `z ~ N(0, σ²)`, by the trapezoid rule over ±12σ (the first layer's
/// standard deviation in the limit of a wide layer and a large batch, where `zₗ` is exactly
/// normal given the input's row norms ≈ √n).
pub fn std_of_normal(act: Act, sigma: f64) -> f64 {
    let steps = 20_000;
    let (lo, hi) = (-12.0 * sigma, 12.0 * sigma);
    let h = (hi - lo) / steps as f64;
    let f = |z: f64| match act {
        Act::Tanh => z.tanh(),
        Act::Sigmoid => 1.0 / (1.0 + (-z).exp()),
        Act::Relu => z.max(0.0),
    };
    let (mut m1, mut m2) = (0.0, 0.0);
    for i in 0..=steps {
        let z = lo + i as f64 * h;
        let w = if i == 0 || i == steps { 0.5 } else { 1.0 };
        let p = (-0.5 * (z / sigma).powi(2)).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        m1 += w * h * p * f(z);
        m2 += w * h * p * f(z).powi(2);
    }
    (m2 - m1 * m1).sqrt()
}

/// CS231n's standard deviations per layer for tanh with `0.01·randn` (the first three
/// layers; after them each falls by about `0.01·√500 ≈ 0.224`).
pub const CS231N_SMALL: [f64; 3] = [0.2135, 0.0476, 0.0106];
/// CS231n's standard deviations per layer for tanh with Xavier's `randn/√n`.
pub const CS231N_XAVIER: [f64; 10] = [
    0.628, 0.486, 0.408, 0.358, 0.322, 0.294, 0.273, 0.255, 0.241, 0.229,
];
/// The standard deviation of saturated tanh units with `1.0·randn` (CS231n: "almost all
/// neurons completely saturated, either −1 or 1").
pub const CS231N_SATURATED: f64 = 0.98;
/// Glorot & Bengio's activation standard deviations per layer of the 5 × 1000 tanh network,
/// "standard" init.
pub const GLOROT_STANDARD: [f64; 5] = [0.460, 0.250, 0.141, 0.081, 0.047];
/// The same with the "normalized" init.
pub const GLOROT_NORMALIZED: [f64; 5] = [0.628, 0.486, 0.408, 0.358, 0.322];

/// `|measured/expected − 1|`.
pub fn rel(measured: f64, expected: f64) -> f64 {
    (measured / expected - 1.0).abs()
}

/// How far a gradient is from balanced between the first and last layer: `max(r, 1/r)`
/// for `r = ‖∂L/∂z₁‖ / ‖∂L/∂z_depth‖`.
pub fn imbalance(l: &Layers) -> f64 {
    let r = l.grad[0] / l.grad[l.grad.len() - 1];
    r.max(1.0 / r)
}

/// The largest `|measured/expected − 1|` over the layers, and the layer (1-based).
fn worst(measured: &[f64], expected: &[f64]) -> (f64, usize) {
    measured
        .iter()
        .zip(expected)
        .enumerate()
        .map(|(i, (&m, &e))| (rel(m, e), i + 1))
        .fold((0.0, 0), |a, b| if b.0 > a.0 { b } else { a })
}

fn within(what: &str, measured: &[f64], expected: &[f64], tol: f64, source: &str) -> Claim {
    let (dev, layer) = worst(measured, expected);
    Claim {
        what: what.into(),
        measured: format!(
            "worst layer {layer}: {:.4} ({:.1}% off)",
            measured[layer - 1],
            100.0 * dev
        ),
        expected: format!(
            "{source} {:.4}, within {:.0}%",
            expected[layer - 1],
            100.0 * tol
        ),
        holds: dev < tol,
    }
}

/// The claims of the CS231n grid on 10 layers of 500 units with a batch of `batch` inputs
/// (seeded by `seed`). The ReLU claims are on `relu_seeds` networks and on the quantity
/// mean-field theory predicts exactly, the expected ratio of consecutive layers' second
/// moments: a single ReLU network's variance drifts multiplicatively from layer to layer
/// (by up to 20% at layer 10 of width 500, Hanin & Rolnick 2018), so its std per layer is
/// not a fixed number.
pub fn cs231n_claims(batch: usize, seed: u64, relu_seeds: u64) -> Vec<Claim> {
    let case = |act, w, s| run(act, w, 10, 500, batch, s, 0);
    let mut claims = Vec::new();
    let small = case(Act::Tanh, Weights::Normal(0.01), seed);
    claims.push(within(
        "tanh, 0.01·randn: std of layers 1–3",
        &small.std[..3],
        &CS231N_SMALL,
        0.05,
        "CS231n",
    ));
    claims.push(Claim {
        what: "tanh, 0.01·randn: std of layer 10".into(),
        measured: format!("{:.2e}", small.std[9]),
        expected: "below 1e-5".into(),
        holds: small.std[9] < 1e-5,
    });
    let big = case(Act::Tanh, Weights::Normal(1.0), seed);
    claims.push(within(
        "tanh, 1.0·randn: std of every layer (saturated)",
        &big.std,
        &[CS231N_SATURATED; 10],
        0.05,
        "CS231n",
    ));
    let xavier = case(Act::Tanh, Weights::Xavier, seed);
    claims.push(within(
        "tanh, Xavier: std of every layer",
        &xavier.std,
        &CS231N_XAVIER,
        0.05,
        "CS231n",
    ));
    // The mean, over the seeds and over layers 2–10, of the ratio of a layer's second
    // moment E[a²] to the previous layer's. Given the previous layer, its expectation
    // over the weights is exactly ½ with Xavier and 1 with He; and the first layer's std.
    let ratios = |w| {
        let (mut sum, mut first) = (0.0, 0.0);
        for s in 0..relu_seeds {
            let l = case(Act::Relu, w, seed + s);
            let m2: Vec<f64> = l
                .std
                .iter()
                .zip(&l.mean)
                .map(|(s, m)| s * s + m * m)
                .collect();
            sum += m2.windows(2).map(|p| p[1] / p[0]).sum::<f64>();
            first += l.std[0] / relu_seeds as f64;
        }
        (sum / (9 * relu_seeds) as f64, first)
    };
    for (w, name, expected) in [(Weights::Xavier, "Xavier", 0.5), (Weights::He, "He", 1.0)] {
        let (ratio, first) = ratios(w);
        claims.push(Claim {
            what: format!("relu, {name}: E[a²] ratio per layer ({relu_seeds} nets)"),
            measured: format!("{ratio:.4} (mean over layers 2–10)"),
            expected: format!("mean field {expected}, within 5%"),
            holds: rel(ratio, expected) < 0.05,
        });
        let theory = std_of_normal(Act::Relu, if name == "He" { 2f64.sqrt() } else { 1.0 });
        claims.push(within(
            &format!("relu, {name}: std of layer 1 ({relu_seeds} nets)"),
            &[first],
            &[theory],
            0.05,
            "closed form",
        ));
    }
    claims
}

/// The claims of Glorot & Bengio's comparison on 5 layers of 1000 tanh units, from the two
/// measured networks.
pub fn glorot_claims(standard: &Layers, normalized: &Layers) -> Vec<Claim> {
    let (s, n) = (imbalance(standard), imbalance(normalized));
    vec![
        within(
            "Glorot, standard init: std of every layer",
            &standard.std,
            &GLOROT_STANDARD,
            0.10,
            "Glorot & Bengio",
        ),
        within(
            "Glorot, normalized init: std of every layer",
            &normalized.std,
            &GLOROT_NORMALIZED,
            0.10,
            "Glorot & Bengio",
        ),
        Claim {
            what: "Glorot: gradient imbalance, layers 1 and 5".into(),
            measured: format!("standard {s:.2}, normalized {n:.2}: {:.1}× better", s / n),
            expected: "at least 3× better normalized".into(),
            holds: s >= 3.0 * n,
        },
    ]
}

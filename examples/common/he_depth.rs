//! The experiment of `examples/he_init_depth.rs`, shared with `tests/he_init_depth.rs`: a
//! 30-layer ReLU MLP of width 64 on the digits with Xavier's and He's initialisation (zero
//! biases, as He et al.), the activation std per layer at initialisation, then Adam.

#![allow(dead_code)] // the test uses part of it

use tapegrad::prelude::*;

pub use crate::claims::{report, Claim};
use crate::deep_mlp::{std_of, train, Act, DeepMlp, Update};

/// The depth of the network (Linear layers).
pub const DEPTH: usize = 30;

/// The two optimizers: Adam as the issue asks, SGD with momentum as He et al. trained.
pub const OPTIMIZERS: [(&str, Update); 2] = [
    ("Adam lr 1e-3", Update::Adam(1e-3)),
    (
        "SGD momentum 0.9, lr 2e-3",
        Update::Sgd {
            lr: 2e-3,
            momentum: 0.9,
            clip: None,
        },
    ),
];

/// What one initialisation gave.
pub struct Run {
    /// Its name.
    pub name: &'static str,
    /// The std of each layer's output at initialisation, over the whole training set
    /// (layers 1–29 after ReLU, layer 30 the logits).
    pub std: Vec<f64>,
    /// For each of [`OPTIMIZERS`], the training loss of each step (its batch, before the
    /// step).
    pub losses: Vec<Vec<f64>>,
    /// For each of [`OPTIMIZERS`], the mean cross-entropy over the whole training set after
    /// training.
    pub final_loss: Vec<f64>,
}

impl Run {
    /// `std(a₃₀)/std(a₁)`.
    pub fn ratio(&self) -> f64 {
        self.std[DEPTH - 1] / self.std[0]
    }
}

fn build(init: Init, seed: u64) -> (DeepMlp, ParamStore<f32>) {
    let mut store = ParamStore::new();
    let model = DeepMlp::new(&mut store, DEPTH, 64, Act::Relu, init, Init::Zeros, seed);
    (model, store)
}

/// The std of each layer's output at initialisation (weights from `seed`) over `data`.
pub fn std_per_layer(init: Init, seed: u64, data: &TensorDataset<f32>) -> Vec<f64> {
    let (model, store) = build(init, seed);
    let g = Graph::new();
    let mut f = Forward::eval(&g, &store);
    let (logits, _, acts) = model.forward(&mut f, g.constant(data.features().clone()));
    let mut s: Vec<f64> = acts.iter().map(|a| std_of(&a.value())).collect();
    s.push(std_of(&logits.value()));
    s
}

/// Builds the network with `init` (seed 0), measures it, and trains a copy with each of
/// [`OPTIMIZERS`] for `steps` steps of batch 64.
pub fn run(name: &'static str, init: Init, data: &TensorDataset<f32>, steps: usize) -> Run {
    let std = std_per_layer(init, 0, data);
    let (mut losses, mut final_loss) = (Vec::new(), Vec::new());
    for (_, update) in OPTIMIZERS {
        let (model, mut store) = build(init, 0);
        losses.push(train(&model, &mut store, data, update, steps, 64, 1));
        final_loss.push(model.loss(&store, data.features(), data.targets()));
    }
    Run {
        name,
        std,
        losses,
        final_loss,
    }
}

/// The initialisations of the experiment.
pub const XAVIER: Init = Init::XavierNormal { gain: 1.0 };
/// He's.
pub const HE: Init = Init::HeNormal;

/// For weights from seeds `0..seeds`, the factor by which each layer multiplies the second
/// moment on average, `(std(a₃₀)/std(a₁))^(2/29)`.
pub fn factors(init: Init, seeds: u64, data: &TensorDataset<f32>) -> Vec<f64> {
    (0..seeds)
        .map(|s| {
            let std = std_per_layer(init, s, data);
            (std[DEPTH - 1] / std[0]).powf(2.0 / (DEPTH - 1) as f64)
        })
        .collect()
}

/// The claims on many networks: with Xavier every network's per-layer factor is within
/// 10% of ½, with He within 15% of 1.
pub fn factor_claims(xavier: &[f64], he: &[f64]) -> Vec<Claim> {
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let ((xl, xh), (hl, hh)) = (range(xavier), range(he));
    vec![
        Claim::new(
            format!(
                "Xavier, {} nets: second-moment factor per layer",
                xavier.len()
            ),
            format!("{xl:.3}–{xh:.3}"),
            "mean field ½, each within 10%",
            xl > 0.45 && xh < 0.55,
        ),
        Claim::new(
            format!("He, {} nets: second-moment factor per layer", he.len()),
            format!("{hl:.3}–{hh:.3}"),
            "mean field 1, each within 15%",
            hl > 0.85 && hh < 1.15,
        ),
    ]
}

/// The two runs of the experiment.
pub fn runs(data: &TensorDataset<f32>, steps: usize) -> [Run; 2] {
    [
        run("Xavier", XAVIER, data, steps),
        run("He", HE, data, steps),
    ]
}

/// The claims: at initialisation `std(a₃₀)/std(a₁)` below 1e-3 with Xavier and within
/// [0.5, 2] with He; after training with SGD and momentum He's loss below 1.0 and Xavier's
/// above 2.0; with Adam He's below 1.0 and below Xavier's.
pub fn claims(xavier: &Run, he: &Run, steps: usize) -> Vec<Claim> {
    let (adam, sgd) = (0, 1);
    vec![
        Claim::new(
            "Xavier: std(a₃₀)/std(a₁) at init (seed 0)",
            format!("{:.2e}", xavier.ratio()),
            "below 1e-3 (mean field: 2^(−29/2) ≈ 4e-5)",
            xavier.ratio() < 1e-3,
        ),
        Claim::new(
            "He: std(a₃₀)/std(a₁) at init (seed 0)",
            format!("{:.3}", he.ratio()),
            "within [0.5, 2] (mean field: ≈ 1)",
            (0.5..=2.0).contains(&he.ratio()),
        ),
        Claim::new(
            format!("SGD+momentum, {steps} steps: He's training loss"),
            format!("{:.4}", he.final_loss[sgd]),
            "below 1.0",
            he.final_loss[sgd] < 1.0,
        ),
        Claim::new(
            format!("SGD+momentum, {steps} steps: Xavier's training loss"),
            format!("{:.4}", xavier.final_loss[sgd]),
            "above 2.0 (stalled; ln 10 ≈ 2.303)",
            xavier.final_loss[sgd] > 2.0,
        ),
        Claim::new(
            format!("Adam, {steps} steps: He's training loss"),
            format!("{:.4}", he.final_loss[adam]),
            "below 1.0",
            he.final_loss[adam] < 1.0,
        ),
        Claim::new(
            format!("Adam, {steps} steps: Xavier's loss above He's"),
            format!(
                "{:.4} > {:.4}",
                xavier.final_loss[adam], he.final_loss[adam]
            ),
            "Xavier behind (the issue said above 2.0: Adam rescues it)",
            xavier.final_loss[adam] > he.final_loss[adam],
        ),
    ]
}

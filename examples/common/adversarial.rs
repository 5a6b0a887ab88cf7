//! The experiment of `examples/adversarial.rs`, shared with `tests/adversarial.rs`: FGSM
//! adversarial examples against a digits MLP, and two defences — adversarial training and
//! Gaussian input noise.

#![allow(dead_code)] // the test uses part of it

use rand::RngExt;
use tapegrad::prelude::*;
use tapegrad::train::correct;

pub use crate::claims::{report, Claim};

/// The perturbation sizes of the accuracy curve (pixels are in [0, 1]).
pub const EPSILONS: [f64; 7] = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3];
/// The ε adversarial training uses, and the one the claims compare at.
pub const EPS_TRAIN: f64 = 0.1;
/// The standard deviation of the Gaussian input noise defence.
pub const NOISE_STD: f64 = 0.1;

/// How a model is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Defence {
    /// Clean examples only.
    None,
    /// Goodfellow et al.'s objective: ½·loss(x) + ½·loss(FGSM(x, ε)).
    Adversarial(f64),
    /// Clean examples with N(0, σ²) added to every pixel.
    Noise(f64),
}

impl Defence {
    /// Its name in tables and plots.
    pub fn name(self) -> String {
        match self {
            Defence::None => "standard".into(),
            Defence::Adversarial(e) => format!("adversarial ε={e}"),
            Defence::Noise(s) => format!("noise σ={s}"),
        }
    }
}

/// A 64 → 256 → 256 → 10 ReLU MLP (PyTorch's default init).
pub fn mlp(store: &mut ParamStore<f32>, seed: u64) -> Sequential<f32> {
    crate::recipe::relu_mlp(store, &[64, 256, 256, 10], seed)
}

/// The loss's gradient with respect to the input images (evaluation mode).
pub fn input_gradient(
    model: &Sequential<f32>,
    store: &ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
) -> Tensor<f32> {
    let g = Graph::new();
    let xv = g.leaf(x.clone());
    let loss = cross_entropy(
        model.forward(&mut Forward::eval(&g, store), xv),
        y,
        Reduction::Mean,
    );
    loss.backward().wrt(xv)
}

/// `x + ε·d`, clipped to the pixels' range [0, 1].
fn step(x: &Tensor<f32>, d: &[f32], eps: f64) -> Tensor<f32> {
    let v: Vec<f32> = x
        .as_slice()
        .iter()
        .zip(d)
        .map(|(&p, &s)| (p + eps as f32 * s).clamp(0.0, 1.0))
        .collect();
    Tensor::from_vec(v, x.dims().to_vec())
}

/// The fast gradient sign method (Goodfellow, Shlens & Szegedy, ICLR 2015):
/// `clip(x + ε·sign(∇ₓ L), 0, 1)`.
pub fn fgsm(
    model: &Sequential<f32>,
    store: &ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
    eps: f64,
) -> Tensor<f32> {
    let g = input_gradient(model, store, x, y);
    let sign: Vec<f32> = g
        .as_slice()
        .iter()
        .map(|v| {
            if *v > 0.0 {
                1.0
            } else if *v < 0.0 {
                -1.0
            } else {
                0.0
            }
        })
        .collect();
    step(x, &sign, eps)
}

/// A random sign perturbation of the same size: `clip(x ± ε, 0, 1)`, each sign a coin flip.
pub fn random_sign(x: &Tensor<f32>, eps: f64, seed: u64) -> Tensor<f32> {
    let mut rng = seeded_rng(seed);
    let sign: Vec<f32> = (0..x.numel())
        .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
        .collect();
    step(x, &sign, eps)
}

/// The accuracy of `model` on `(x, y)`.
pub fn accuracy(
    model: &Sequential<f32>,
    store: &ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
) -> f64 {
    let g = Graph::new();
    let logits = model.forward(&mut Forward::eval(&g, store), g.constant(x.clone()));
    correct(&logits.value(), y, 1) as f64 / y.numel() as f64
}

/// Trains the MLP with `defence` for `epochs` epochs (Adam lr 1e-3, batch 64), seeded.
pub fn train(
    data: &TensorDataset<f32>,
    defence: Defence,
    epochs: u64,
    seed: u64,
) -> (Sequential<f32>, ParamStore<f32>) {
    let mut store = ParamStore::new();
    let model = mlp(&mut store, seed);
    let loader = DataLoader::new(data, 64).with_shuffle(seed);
    let mut opt = Adam::new(AdamConfig::default());
    let mut noise = seeded_rng(seed ^ 0x5EED);
    let mut g = Graph::new();
    for epoch in 0..epochs {
        for b in loader.epoch(epoch) {
            let x = match defence {
                Defence::Noise(s) => {
                    let n = Tensor::<f32>::rand_normal(b.x.dims().to_vec(), 0.0, s, &mut noise);
                    let v =
                        b.x.as_slice()
                            .iter()
                            .zip(n.as_slice())
                            .map(|(p, z)| p + z)
                            .collect();
                    Tensor::from_vec(v, b.x.dims().to_vec())
                }
                _ => b.x.clone(),
            };
            let adv = match defence {
                Defence::Adversarial(e) => Some(fgsm(&model, &store, &b.x, &b.y, e)),
                _ => None,
            };
            g.reset();
            let grads = {
                let mut f = Forward::eval(&g, &store);
                let mut loss =
                    cross_entropy(model.forward(&mut f, g.constant(x)), &b.y, Reduction::Mean);
                if let Some(a) = adv {
                    let l_adv =
                        cross_entropy(model.forward(&mut f, g.constant(a)), &b.y, Reduction::Mean);
                    loss = (loss + l_adv) * 0.5;
                }
                loss.backward()
            };
            g.reset();
            opt.step(&mut store, &grads, 1e-3);
        }
    }
    (model, store)
}

/// A trained model's accuracy on the test set, clean and under attack.
pub struct Robustness {
    /// The defence it was trained with.
    pub defence: Defence,
    /// FGSM accuracy at each of [`EPSILONS`] (the first, ε = 0, is the clean accuracy).
    pub fgsm: Vec<f64>,
    /// Accuracy under random ±ε noise at each of [`EPSILONS`].
    pub random: Vec<f64>,
}

/// Trains with `defence` and measures it on `test`.
pub fn measure(
    train_set: &TensorDataset<f32>,
    test: &TensorDataset<f32>,
    defence: Defence,
    epochs: u64,
) -> Robustness {
    let (model, store) = train(train_set, defence, epochs, 0);
    let (x, y) = (test.features(), test.targets());
    let fgsm_acc = EPSILONS
        .iter()
        .map(|&e| accuracy(&model, &store, &fgsm(&model, &store, x, y, e), y))
        .collect();
    let random = EPSILONS
        .iter()
        .enumerate()
        .map(|(i, &e)| accuracy(&model, &store, &random_sign(x, e, i as u64), y))
        .collect();
    Robustness {
        defence,
        fgsm: fgsm_acc,
        random,
    }
}

fn at(r: &Robustness, eps: f64) -> f64 {
    let i = EPSILONS
        .iter()
        .position(|&e| e == eps)
        .expect("an ε of the curve");
    r.fgsm[i]
}

/// The claims, from the standard, adversarially trained and noise-trained models.
pub fn claims(standard: &Robustness, adv: &Robustness, noise: &Robustness) -> Vec<Claim> {
    let pct = |x: f64| format!("{:.1}%", 100.0 * x);
    let (s0, s1, s2) = (at(standard, 0.0), at(standard, 0.1), at(standard, 0.2));
    let rand1 = standard.random[EPSILONS.iter().position(|&e| e == 0.1).expect("0.1")];
    let monotone = standard.fgsm.windows(2).all(|w| w[1] <= w[0] + 1e-12);
    vec![
        Claim::new(
            "standard: clean test accuracy",
            pct(s0),
            "at least 95%",
            s0 >= 0.95,
        ),
        Claim::new(
            "standard: FGSM accuracy falls as ε grows",
            standard
                .fgsm
                .iter()
                .map(|&a| pct(a))
                .collect::<Vec<_>>()
                .join(" "),
            "non-increasing in ε",
            monotone,
        ),
        Claim::new(
            "standard: FGSM at ε = 0.2",
            pct(s2),
            "below half the clean accuracy",
            s2 < 0.5 * s0,
        ),
        Claim::new(
            "the gradient's sign, not the size, does it (ε = 0.1)",
            format!("random signs {} against FGSM {}", pct(rand1), pct(s1)),
            "random ±ε costs under 5 points",
            rand1 >= s0 - 0.05,
        ),
        Claim::new(
            "adversarial training: FGSM at ε = 0.1",
            format!("{} against standard {}", pct(at(adv, 0.1)), pct(s1)),
            "at least 20 points higher",
            at(adv, 0.1) >= s1 + 0.20,
        ),
        Claim::new(
            "adversarial training: clean accuracy",
            format!("{} against standard {}", pct(at(adv, 0.0)), pct(s0)),
            "within 3 points",
            at(adv, 0.0) >= s0 - 0.03,
        ),
        Claim::new(
            "noise training: FGSM at ε = 0.1",
            format!(
                "{} (standard {}, adversarial {})",
                pct(at(noise, 0.1)),
                pct(s1),
                pct(at(adv, 0.1))
            ),
            "between standard and adversarial",
            at(noise, 0.1) >= s1 && at(noise, 0.1) < at(adv, 0.1),
        ),
    ]
}

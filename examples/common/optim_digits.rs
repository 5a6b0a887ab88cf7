//! The digits part of `examples/optimizers.rs`, shared with `tests/optimizers.rs`: every
//! optimizer on a logistic regression and on an MLP, the best of a 4-value learning-rate
//! grid each, 3 seeds, after the setting of Kingma & Ba (*Adam*, ICLR 2015, Figures 1–2:
//! logistic regression and a multilayer network on MNIST, minibatches of 128).

#![allow(dead_code)] // the test uses part of it

use tapegrad::optim::*;
use tapegrad::prelude::*;

pub use crate::claims::{report, Claim};

/// Epochs of each run.
pub const EPOCHS: u64 = 10;
/// Minibatch (Kingma & Ba's 128).
pub const BATCH: usize = 128;
/// Seeds of each (optimizer, rate) pair.
pub const SEEDS: u64 = 3;

/// The model: logistic regression (64 → 10) or an MLP (64 → 128 → 128 → 10, ReLU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Model {
    /// Multinomial logistic regression.
    Logistic,
    /// Two hidden ReLU layers of 128.
    Mlp,
}

impl Model {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Model::Logistic => "logistic regression",
            Model::Mlp => "MLP 64-128-128-10",
        }
    }

    fn build(self, store: &mut ParamStore<f32>, seed: u64) -> Sequential<f32> {
        let widths: &[usize] = match self {
            Model::Logistic => &[64, 10],
            Model::Mlp => &[64, 128, 128, 10],
        };
        crate::recipe::relu_mlp(store, widths, seed)
    }
}

type Make = fn() -> Box<dyn Optimizer<f32>>;

/// The first-order optimizers with their 4-rate grids (PyTorch's defaults otherwise);
/// L-BFGS is run separately (full batch, strong-Wolfe line search, its rate 1).
pub fn first_order() -> Vec<(&'static str, Make, [f64; 4])> {
    vec![
        (
            "SGD",
            || Box::new(Sgd::new(SgdConfig::default())),
            [0.1, 0.3, 1.0, 3.0],
        ),
        (
            "Momentum 0.9",
            || Box::new(Sgd::new(SgdConfig::default().with_momentum(0.9))),
            [0.01, 0.03, 0.1, 0.3],
        ),
        (
            "Nesterov 0.9",
            || {
                Box::new(Sgd::new(
                    SgdConfig::default().with_momentum(0.9).with_nesterov(true),
                ))
            },
            [0.01, 0.03, 0.1, 0.3],
        ),
        (
            "Adagrad",
            || Box::new(Adagrad::new(AdagradConfig::default())),
            [0.01, 0.03, 0.1, 0.3],
        ),
        (
            "RMSprop",
            || Box::new(RmsProp::new(RmsPropConfig::default())),
            [1e-3, 3e-3, 1e-2, 3e-2],
        ),
        (
            "Adam",
            || Box::new(Adam::new(AdamConfig::default())),
            [1e-3, 3e-3, 1e-2, 3e-2],
        ),
        (
            "AdamW",
            || Box::new(AdamW::new(AdamConfig::adamw())),
            [1e-3, 3e-3, 1e-2, 3e-2],
        ),
        (
            "NAdam",
            || Box::new(NAdam::new(NAdamConfig::default())),
            [1e-3, 3e-3, 1e-2, 3e-2],
        ),
        (
            "Adadelta",
            || Box::new(Adadelta::new(AdadeltaConfig::default())),
            [0.1, 0.3, 1.0, 3.0],
        ),
    ]
}

/// The mean training loss (evaluation mode, the whole training set) after each epoch.
fn full_loss(
    m: &Sequential<f32>,
    store: &ParamStore<f32>,
    data: &TensorDataset<f32>,
) -> (f64, Gradients<f32>) {
    let g = Graph::new();
    let loss = cross_entropy(
        m.forward(
            &mut Forward::eval(&g, store),
            g.constant(data.features().clone()),
        ),
        data.targets(),
        Reduction::Mean,
    );
    (f64::from(loss.item()), loss.backward())
}

/// One run: the training loss at epochs 0..=EPOCHS (0 is at initialisation).
pub fn run(model: Model, make: Make, lr: f64, data: &TensorDataset<f32>, seed: u64) -> Vec<f64> {
    let mut store = ParamStore::new();
    let m = model.build(&mut store, seed);
    let loader = DataLoader::new(data, BATCH).with_shuffle(seed);
    let mut opt = make();
    let mut g = Graph::new();
    let mut curve = vec![full_loss(&m, &store, data).0];
    for epoch in 0..EPOCHS {
        for b in loader.epoch(epoch) {
            g.reset();
            let grads = cross_entropy(
                m.forward(&mut Forward::eval(&g, &store), g.constant(b.x)),
                &b.y,
                Reduction::Mean,
            )
            .backward();
            g.reset();
            opt.step(&mut store, &grads, lr);
        }
        curve.push(full_loss(&m, &store, data).0);
    }
    curve
}

/// L-BFGS: one full-batch step (up to 20 evaluations) per epoch.
pub fn run_lbfgs(model: Model, data: &TensorDataset<f32>, seed: u64) -> Vec<f64> {
    let mut store = ParamStore::new();
    let m = model.build(&mut store, seed);
    let keys = store.keys().collect();
    let mut opt = Lbfgs::new(
        keys,
        LbfgsConfig::default().with_line_search(LineSearch::StrongWolfe),
    );
    let mut curve = vec![full_loss(&m, &store, data).0];
    for _ in 0..EPOCHS {
        opt.step(&mut store, |s| full_loss(&m, s, data));
        curve.push(full_loss(&m, &store, data).0);
    }
    curve
}

/// An optimizer's result: its best rate and the mean curve over the seeds at that rate.
pub struct Best {
    /// The optimizer.
    pub name: &'static str,
    /// The rate of the grid with the lowest mean loss at the last epoch.
    pub lr: f64,
    /// The mean training loss over the seeds, epochs 0..=EPOCHS.
    pub curve: Vec<f64>,
}

fn mean_curve(curves: &[Vec<f64>]) -> Vec<f64> {
    let n = curves.len() as f64;
    (0..curves[0].len())
        .map(|e| curves.iter().map(|c| c[e]).sum::<f64>() / n)
        .collect()
}

/// Every optimizer on `model`, each at its best rate.
pub fn best_of_grid(model: Model, data: &TensorDataset<f32>) -> Vec<Best> {
    let mut out: Vec<Best> = first_order()
        .into_iter()
        .map(|(name, make, lrs)| {
            lrs.iter()
                .map(|&lr| {
                    let curves: Vec<Vec<f64>> =
                        (0..SEEDS).map(|s| run(model, make, lr, data, s)).collect();
                    Best {
                        name,
                        lr,
                        curve: mean_curve(&curves),
                    }
                })
                .min_by(|a, b| {
                    let last = |x: &Best| x.curve.last().copied().unwrap_or(f64::INFINITY);
                    let (la, lb) = (last(a), last(b));
                    // A diverged run (NaN) is the worst.
                    la.is_nan().cmp(&lb.is_nan()).then(la.total_cmp(&lb))
                })
                .expect("a 4-rate grid")
        })
        .collect();
    let curves: Vec<Vec<f64>> = (0..SEEDS).map(|s| run_lbfgs(model, data, s)).collect();
    out.push(Best {
        name: "L-BFGS (full batch)",
        lr: 1.0,
        curve: mean_curve(&curves),
    });
    out
}

/// Kingma & Ba's ordering: Adam's training loss at the last epoch at most Adagrad's and
/// plain SGD's.
pub fn claims(model: Model, runs: &[Best]) -> Vec<Claim> {
    let at = |n: &str| {
        runs.iter()
            .find(|r| r.name == n)
            .and_then(|r| r.curve.last().copied())
            .expect("a run")
    };
    let (adam, adagrad, sgd) = (at("Adam"), at("Adagrad"), at("SGD"));
    vec![Claim::new(
        format!("{}: Adam's training loss at epoch {EPOCHS}", model.name()),
        format!("{adam:.4} (Adagrad {adagrad:.4}, SGD {sgd:.4})"),
        "at most Adagrad's and SGD's",
        adam <= adagrad && adam <= sgd,
    )]
}

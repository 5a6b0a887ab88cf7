//! The experiment of `examples/batchnorm.rs`, shared with `tests/batchnorm.rs`: Ioffe &
//! Szegedy's MNIST setting scaled down to the bundled digits — 3 hidden layers of 100
//! sigmoid units, plain SGD, with and without batch normalisation before each sigmoid.

#![allow(dead_code)] // the test uses part of it

use tapegrad::prelude::*;
use tapegrad::train::correct;

pub use crate::claims::{report, Claim};

/// Hidden layers.
pub const HIDDEN: usize = 3;
/// Units per hidden layer.
pub const WIDTH: usize = 100;
/// The minibatch (the paper's 60).
pub const BATCH: usize = 60;
/// Validation every this many steps.
pub const EVAL_EVERY: usize = 10;
/// The unit of the last hidden layer whose input distribution is tracked.
pub const UNIT: usize = 0;

/// The network: Linear (→ BatchNorm) → sigmoid, three times, then Linear to 10 classes.
pub struct Net {
    layers: Vec<(Linear, Option<BatchNorm>)>,
    head: Linear,
}

impl Net {
    /// With or without batch normalisation, weights `N(0, 0.1²)` ("small random Gaussian
    /// values", as the paper) from `seed`, zero biases.
    pub fn new(store: &mut ParamStore<f32>, bn: bool, seed: u64) -> Self {
        let mut rng = seeded_rng(seed);
        let cfg = LinearConfig::default()
            .with_init(Init::Normal {
                mean: 0.0,
                std: 0.1,
            })
            .with_bias_init(Init::Zeros);
        let layers = (0..HIDDEN)
            .map(|l| {
                let fan_in = if l == 0 { 64 } else { WIDTH };
                let name = format!("fc{}", l + 1);
                let lin = Linear::with_config(store, &name, fan_in, WIDTH, cfg, &mut rng);
                let norm = bn.then(|| BatchNorm1d::new(store, &format!("bn{}", l + 1), WIDTH));
                (lin, norm)
            })
            .collect();
        let head = Linear::with_config(store, "head", WIDTH, 10, cfg, &mut rng);
        Net { layers, head }
    }

    /// The logits and the inputs of the last hidden layer's sigmoids (`[B, WIDTH]`).
    pub fn forward<'g>(
        &self,
        f: &mut Forward<'g, '_, f32>,
        x: Var<'g, f32>,
    ) -> (Var<'g, f32>, Var<'g, f32>) {
        let mut h = x.flatten(1, -1);
        let mut last = h;
        for (lin, norm) in &self.layers {
            let mut z = lin.forward(f, h);
            if let Some(n) = norm {
                z = n.forward(f, z);
            }
            last = z;
            h = z.sigmoid();
        }
        (self.head.forward(f, h), last)
    }
}

/// The 15th, 50th and 85th percentiles of `v` (nearest rank on the sorted values).
pub fn percentiles(mut v: Vec<f64>) -> [f64; 3] {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
    [at(0.15), at(0.50), at(0.85)]
}

/// One training run.
pub struct Run {
    /// "BN" or "no BN", and the learning rate.
    pub name: String,
    /// Validation accuracy at each evaluation (every [`EVAL_EVERY`] steps, from step 0).
    pub val_acc: Vec<f64>,
    /// The 15/50/85th percentiles of unit [`UNIT`]'s sigmoid input in the last hidden layer,
    /// over the validation set in evaluation mode, at each evaluation.
    pub pct: Vec<[f64; 3]>,
    /// Training loss per step.
    pub losses: Vec<f64>,
}

impl Run {
    /// The first step at which validation accuracy reached `target`, if it did.
    pub fn steps_to(&self, target: f64) -> Option<usize> {
        self.val_acc
            .iter()
            .position(|&a| a >= target)
            .map(|i| i * EVAL_EVERY)
    }

    /// How far the three percentiles moved over the run: the mean over them of their
    /// range (max − min) across the evaluations after the first `skip`.
    pub fn drift(&self, skip: usize) -> f64 {
        let tail = &self.pct[skip.min(self.pct.len() - 1)..];
        (0..3)
            .map(|k| {
                let (lo, hi) = tail
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
                        (lo.min(p[k]), hi.max(p[k]))
                    });
                hi - lo
            })
            .sum::<f64>()
            / 3.0
    }
}

fn evaluate(net: &Net, store: &ParamStore<f32>, val: &TensorDataset<f32>) -> (f64, [f64; 3]) {
    let g = Graph::new();
    let mut f = Forward::eval(&g, store);
    let (logits, last) = net.forward(&mut f, g.constant(val.features().clone()));
    let acc = correct(&logits.value(), val.targets(), 1) as f64 / val.len() as f64;
    let z = last.value();
    let col: Vec<f64> = z
        .as_slice()
        .chunks(WIDTH)
        .map(|row| f64::from(row[UNIT]))
        .collect();
    (acc, percentiles(col))
}

/// Trains for `steps` SGD steps at `lr` (batch [`BATCH`], reshuffled each epoch), the
/// weights from seed 0 and the batches from seed 1, evaluating every [`EVAL_EVERY`] steps.
pub fn run(
    train: &TensorDataset<f32>,
    val: &TensorDataset<f32>,
    bn: bool,
    lr: f64,
    steps: usize,
) -> Run {
    let mut store = ParamStore::new();
    let net = Net::new(&mut store, bn, 0);
    let loader = DataLoader::new(train, BATCH).with_shuffle(1);
    let mut opt = Sgd::new(SgdConfig::default());
    let mut rng = seeded_rng(2);
    let (mut val_acc, mut pct, mut losses) = (Vec::new(), Vec::new(), Vec::new());
    let mut g = Graph::new();
    let mut step = 0;
    'outer: for epoch in 0.. {
        for b in loader.epoch(epoch) {
            if step % EVAL_EVERY == 0 {
                let (a, p) = evaluate(&net, &store, val);
                val_acc.push(a);
                pct.push(p);
            }
            if step == steps {
                break 'outer;
            }
            g.reset();
            let (loss, grads) = {
                let mut f = Forward::train(&g, &mut store, &mut rng);
                let (logits, _) = net.forward(&mut f, g.constant(b.x));
                let loss = cross_entropy(logits, &b.y, Reduction::Mean);
                (f64::from(loss.item()), loss.backward())
            };
            g.reset();
            losses.push(loss);
            opt.step(&mut store, &grads, lr);
            step += 1;
        }
    }
    Run {
        name: format!("{}, lr {lr}", if bn { "BN" } else { "no BN" }),
        val_acc,
        pct,
        losses,
    }
}

/// The evaluations the drift leaves out (the first 100 steps).
pub const SKIP: usize = 10;

/// The claims, from the runs in the order (no BN, 0.1), (BN, 0.1), (no BN, 0.5), (BN, 0.5).
pub fn claims(runs: &[Run]) -> Vec<Claim> {
    let show = |s: Option<usize>| s.map_or("never".to_string(), |s| s.to_string());
    let (plain, bn, bn5) = (
        runs[0].steps_to(0.90),
        runs[1].steps_to(0.90),
        runs[3].steps_to(0.90),
    );
    let halved = match (plain, bn) {
        (Some(p), Some(b)) => 2 * b <= p,
        (None, Some(_)) => true,
        _ => false,
    };
    let (d0, d1) = (runs[0].drift(SKIP), runs[1].drift(SKIP));
    vec![
        Claim::new(
            "lr 0.1: steps to 90% validation accuracy",
            format!("BN {}, no BN {}", show(bn), show(plain)),
            "BN at most half",
            halved,
        ),
        Claim::new(
            "lr 0.5 (5×): BN reaches 90%",
            format!("after {} steps", show(bn5)),
            "reaches it",
            bn5.is_some(),
        ),
        Claim::new(
            "lr 0.1: drift of the 15/50/85th percentiles",
            format!("BN {d1:.3}, no BN {d0:.3}"),
            "less with BN",
            d1 < d0,
        ),
    ]
}

//! The training part of `examples/lr_schedules.rs`, shared with `tests/lr_schedules.rs`:
//! the same digits MLP trained with SGD and momentum under each schedule, the schedules
//! scaled to the run's length.

#![allow(dead_code)] // the test uses part of it

use tapegrad::optim::*;
use tapegrad::prelude::*;
use tapegrad::train::correct;

pub use crate::claims::{report, Claim};
use crate::recipe::Splits;

/// The peak learning rate of every schedule.
pub const BASE: f64 = 0.1;
/// Epochs of each run.
pub const EPOCHS: u64 = 30;
/// Minibatch.
pub const BATCH: usize = 64;

/// Every step-driven schedule, scaled to a run of `total` steps: steps and milestones at
/// fixed fractions of the run, the exponential rate set to end at 1% of the base, warm-ups
/// over 10% (30% for LinearLR, as PyTorch's example).
pub fn scaled(total: usize) -> Vec<(&'static str, Box<dyn Schedule>)> {
    let at = |f: f64| ((total as f64 * f).round() as usize).max(1);
    vec![
        ("constant", Box::new(Constant(BASE))),
        (
            "step (×0.5 every 10%)",
            Box::new(StepDecay::new(BASE, at(0.1), 0.5)),
        ),
        (
            "multi-step (×0.1 at 50%, 75%)",
            Box::new(MultiStep::new(BASE, vec![at(0.5), at(0.75)], 0.1)),
        ),
        (
            "exponential (to 1%)",
            Box::new(Exponential::new(BASE, 0.01f64.powf(1.0 / total as f64))),
        ),
        ("cosine", Box::new(Cosine::new(BASE, total))),
        (
            "cosine warm restarts (10%, ×2)",
            Box::new(CosineWarmRestarts::new(BASE, at(0.1), 2)),
        ),
        (
            "linear warm-up 30%",
            Box::new(LinearLR::new(BASE, 0.1, 1.0, at(0.3))),
        ),
        (
            "warm-up 10% + cosine",
            Box::new(Warmup::new(at(0.1), Cosine::new(BASE, total - at(0.1)))),
        ),
        (
            "inverse √ (warm-up 10%)",
            Box::new(InverseSqrt::new(BASE, at(0.1))),
        ),
        ("one-cycle", Box::new(OneCycle::new(BASE, total))),
    ]
}

/// How one run ended.
pub struct Ended {
    /// The schedule's name.
    pub name: String,
    /// Mean cross-entropy on the training set after the last step (evaluation mode).
    pub train_loss: f64,
    /// Test accuracy.
    pub test_acc: f64,
    /// The rate of the last step.
    pub last_lr: f64,
    /// The sum of the rates of every step, `Σₜ ηₜ`.
    pub lr_sum: f64,
}

fn measure(m: &Sequential<f32>, store: &ParamStore<f32>, d: &TensorDataset<f32>) -> (f64, f64) {
    let g = Graph::new();
    let logits = m.forward(
        &mut Forward::eval(&g, store),
        g.constant(d.features().clone()),
    );
    let loss = f64::from(cross_entropy(logits, d.targets(), Reduction::Mean).item());
    let acc = correct(&logits.value(), d.targets(), 1) as f64 / d.len() as f64;
    (loss, acc)
}

/// Trains the MLP (SGD, momentum 0.9, [`EPOCHS`] epochs of batch [`BATCH`]) at the rate
/// `lr(step, last epoch's validation loss)`, and measures it.
pub fn train(name: &str, data: &Splits, mut lr: impl FnMut(usize, f64) -> f64) -> Ended {
    let mut store = ParamStore::new();
    let model = crate::recipe::relu_mlp(&mut store, &[64, 128, 128, 10], 0);
    let loader = DataLoader::new(&data.train, BATCH).with_shuffle(1);
    let mut opt = Sgd::new(SgdConfig::default().with_momentum(0.9));
    let mut g = Graph::new();
    let (mut step, mut val_loss, mut last_lr, mut lr_sum) = (0, f64::NAN, BASE, 0.0);
    for epoch in 0..EPOCHS {
        for b in loader.epoch(epoch) {
            g.reset();
            let grads = {
                let mut f = Forward::eval(&g, &store);
                cross_entropy(
                    model.forward(&mut f, g.constant(b.x)),
                    &b.y,
                    Reduction::Mean,
                )
                .backward()
            };
            g.reset();
            last_lr = lr(step, val_loss);
            lr_sum += last_lr;
            opt.step(&mut store, &grads, last_lr);
            step += 1;
        }
        val_loss = measure(&model, &store, &data.val).0;
    }
    let (train_loss, _) = measure(&model, &store, &data.train);
    let (_, test_acc) = measure(&model, &store, &data.test);
    Ended {
        name: name.to_string(),
        train_loss,
        test_acc,
        last_lr,
        lr_sum,
    }
}

/// Every schedule of [`scaled`], then ReduceOnPlateau on the validation loss (patience 3,
/// factor 0.5, stepped once per epoch).
pub fn all_runs(data: &Splits) -> Vec<Ended> {
    let total = EPOCHS as usize * data.train.len().div_ceil(BATCH);
    let mut out: Vec<Ended> = scaled(total)
        .iter()
        .map(|(name, s)| train(name, data, |t, _| s.lr(t)))
        .collect();
    let mut plateau = ReduceOnPlateau::new(BASE, PlateauMode::Min)
        .with_patience(3)
        .with_factor(0.5);
    let (mut seen, mut rate) = (f64::NAN, BASE);
    out.push(train("reduce on plateau", data, |_, v| {
        // A new validation loss arrives once per epoch.
        if v.is_finite() && v.to_bits() != seen.to_bits() {
            seen = v;
            rate = plateau.step(v);
        }
        rate
    }));
    out
}

/// Ranks (1 = smallest; ties share their mean rank).
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0 + 1.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation of `a` and `b`.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The claims on the runs: the final training loss falls with the rate a schedule spends
/// (Spearman's ρ between `Σₜ ηₜ` and the loss at most −0.8), and every schedule reaches
/// 98% test accuracy.
pub fn claims(runs: &[Ended]) -> Vec<Claim> {
    let sums: Vec<f64> = runs.iter().map(|r| r.lr_sum).collect();
    let losses: Vec<f64> = runs.iter().map(|r| r.train_loss).collect();
    let rho = spearman(&sums, &losses);
    let worst = runs
        .iter()
        .min_by(|a, b| a.test_acc.total_cmp(&b.test_acc))
        .expect("runs");
    let best = runs
        .iter()
        .max_by(|a, b| a.test_acc.total_cmp(&b.test_acc))
        .expect("runs");
    vec![
        Claim::new(
            "final training loss against Σₜ ηₜ (Spearman)",
            format!("ρ = {rho:.2} over {} schedules", runs.len()),
            "at most −0.8: the more rate spent, the lower",
            rho <= -0.8,
        ),
        Claim::new(
            "every schedule's test accuracy",
            format!(
                "{:.1}% ({}) to {:.1}% ({})",
                100.0 * worst.test_acc,
                worst.name,
                100.0 * best.test_acc,
                best.name
            ),
            "at least 98%",
            worst.test_acc >= 0.98,
        ),
    ]
}

//! The experiment of `examples/ensembles_kfold.rs`, shared with `tests/ensembles_kfold.rs`:
//! for each seed, the 5 fold models of the digits recipe, their ensemble (probabilities
//! averaged) and the single best model, on the test split.

#![allow(dead_code)] // the test uses part of it

use tapegrad::prelude::*;

pub use crate::claims::{median, report, Claim};
use crate::folds::{self, mean_std};
use crate::recipe::RunOptions;

/// What one seed's 5 folds gave.
pub struct SeedResult {
    /// The seed of the split, the folds and (seed + i) fold i's model.
    pub seed: u64,
    /// Each model's accuracy on its held-out fold.
    pub fold_acc: Vec<f64>,
    /// Each model's test accuracy.
    pub member_acc: Vec<f64>,
    /// Each model's test cross-entropy.
    pub member_nll: Vec<f64>,
    /// The ensemble's test accuracy.
    pub ensemble_acc: f64,
    /// The ensemble's test cross-entropy (of the averaged probabilities).
    pub ensemble_nll: f64,
}

impl SeedResult {
    /// The test accuracy of the model with the best held-out fold accuracy (the first
    /// such): the single model one would pick without looking at the test split.
    pub fn best_by_fold(&self) -> f64 {
        let mut best = 0;
        for (i, &a) in self.fold_acc.iter().enumerate() {
            if a > self.fold_acc[best] {
                best = i;
            }
        }
        self.member_acc[best]
    }

    /// The best member's test accuracy (an oracle: it looks at the test split).
    pub fn best_on_test(&self) -> f64 {
        self.member_acc.iter().copied().fold(0.0, f64::max)
    }

    /// The mean of the members' test accuracies.
    pub fn mean_member(&self) -> f64 {
        mean_std(&self.member_acc).0
    }
}

/// Trains the `k` fold models of `seed` for `epochs` epochs and evaluates them and their
/// ensemble on the test split.
pub fn run_seed(k: usize, epochs: usize, seed: u64) -> Result<SeedResult> {
    let f = folds::digits_folds(k, seed)?;
    let models = (0..k)
        .map(|i| {
            let opts = RunOptions {
                progress: Progress::Quiet,
                ..Default::default()
            };
            folds::train_fold(&f, i, epochs, seed, opts)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut ensemble = Ensemble::new();
    for m in &models {
        ensemble.push(&m.trained.model, &m.trained.store);
    }
    let rep = ensemble.evaluate(&DataLoader::new(&f.test, 1024));
    let c = rep.probabilities.dims()[1];
    let p = rep.probabilities.as_slice();
    let nll = rep
        .labels
        .iter()
        .enumerate()
        .map(|(i, &y)| -f64::from(p[i * c + y]).max(1e-300).ln())
        .sum::<f64>()
        / rep.labels.len() as f64;
    Ok(SeedResult {
        seed,
        fold_acc: models.iter().map(|m| m.held_accuracy).collect(),
        member_acc: models.iter().map(|m| m.trained.test.accuracy()).collect(),
        member_nll: models.iter().map(|m| m.trained.test.loss()).collect(),
        ensemble_acc: rep.accuracy,
        ensemble_nll: nll,
    })
}

/// The claims over the seeds.
pub fn claims(results: &[SeedResult]) -> Vec<Claim> {
    let nll_ok = results
        .iter()
        .all(|r| r.ensemble_nll <= mean_std(&r.member_nll).0 + 1e-9);
    let worst_nll = results
        .iter()
        .map(|r| r.ensemble_nll - mean_std(&r.member_nll).0)
        .fold(f64::NEG_INFINITY, f64::max);
    let gain_mean = median(
        results
            .iter()
            .map(|r| r.ensemble_acc - r.mean_member())
            .collect(),
    );
    let least_cut = results
        .iter()
        .map(|r| 1.0 - r.ensemble_nll / mean_std(&r.member_nll).0)
        .fold(f64::INFINITY, f64::min);
    vec![
        Claim::new(
            "every seed: ensemble cross-entropy ≤ the members' mean",
            format!("largest difference {worst_nll:+.4}"),
            "Jensen: −log of a mean ≤ the mean of −log",
            nll_ok,
        ),
        Claim::new(
            "every seed: ensemble cross-entropy at least 10% lower",
            format!("smallest cut {:.0}%", 100.0 * least_cut),
            "Lakshminarayanan et al.: the likelihood gains most",
            least_cut >= 0.10,
        ),
        Claim::new(
            "median gain over the mean member (accuracy)",
            format!("{:+.2} points", 100.0 * gain_mean),
            "at least 0",
            gain_mean >= 0.0,
        ),
    ]
}

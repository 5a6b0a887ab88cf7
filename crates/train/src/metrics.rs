//! Classification metrics, weighted by samples: loss and accuracy over an epoch are sums
//! over samples divided by the number of samples — not a mean of batch means, which
//! over-weights a short last batch.

use tapegrad_core::{Float, Tensor};

/// Running sums over the batches of an epoch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meter {
    /// Σ over samples of the loss (a batch's mean loss times its size).
    pub loss_sum: f64,
    /// Samples whose top prediction is their label.
    pub correct: u64,
    /// Samples seen.
    pub samples: u64,
}

impl Meter {
    /// Adds another meter's samples.
    pub fn merge(&mut self, other: &Meter) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.samples += other.samples;
    }

    /// Adds a batch: its mean loss, its logits `[B, C]` and labels `[B]`.
    pub fn add<T: Float>(&mut self, mean_loss: f64, logits: &Tensor<T>, labels: &Tensor<usize>) {
        let b = labels.numel() as u64;
        self.loss_sum += mean_loss * b as f64;
        self.correct += correct(logits, labels, 1) as u64;
        self.samples += b;
    }

    /// The loss per sample (NaN before any sample).
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.samples as f64
    }

    /// The fraction of samples predicted right (NaN before any sample).
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.samples as f64
    }
}

/// How many rows of `logits` (`[B, C]`) have their label among their `k` largest entries
/// (ties broken towards the lower class, as `argmax`).
pub fn correct<T: Float>(logits: &Tensor<T>, labels: &Tensor<usize>, k: usize) -> usize {
    let c = logits.dims().last().copied().unwrap_or(1).max(1);
    let l = logits.as_slice();
    labels
        .as_slice()
        .iter()
        .enumerate()
        .filter(|&(i, &y)| {
            let row = &l[i * c..(i + 1) * c];
            let v = row[y];
            // The label's rank: entries above it, and equal ones of a lower class.
            let above = row
                .iter()
                .enumerate()
                .filter(|&(j, &u)| u > v || (u == v && j < y))
                .count();
            above < k
        })
        .count()
}

/// The fraction of rows whose label is among the `k` largest logits.
pub fn top_k_accuracy<T: Float>(logits: &Tensor<T>, labels: &Tensor<usize>, k: usize) -> f64 {
    correct(logits, labels, k) as f64 / labels.numel() as f64
}

/// The predicted class of each row (`argmax`, first on ties).
pub fn predictions<T: Float>(logits: &Tensor<T>) -> Vec<usize> {
    let c = logits.dims().last().copied().unwrap_or(1).max(1);
    logits
        .as_slice()
        .chunks(c)
        .map(|row| {
            let mut best = 0;
            for (j, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = j;
                }
            }
            best
        })
        .collect()
}

/// Counts of (true class, predicted class): `m[t][p]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    counts: Vec<Vec<u64>>,
}

/// Precision, recall and F1 of one class.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClassScores {
    /// Of the samples predicted as the class, the fraction that are (NaN if none is).
    pub precision: f64,
    /// Of the samples of the class, the fraction predicted as it (NaN if it has none).
    pub recall: f64,
    /// Their harmonic mean (0 when both are 0).
    pub f1: f64,
    /// The class's samples.
    pub support: u64,
}

impl ConfusionMatrix {
    /// From predictions and labels over `classes` classes.
    ///
    /// ```
    /// use tapegrad_train::ConfusionMatrix;
    /// let m = ConfusionMatrix::new(&[0, 1, 1, 0], &[0, 1, 0, 0], 2);
    /// assert_eq!(m.counts(), &[vec![2, 1], vec![0, 1]]);
    /// assert_eq!(m.scores()[0].recall, 2.0 / 3.0);
    /// assert_eq!(m.accuracy(), 0.75);
    /// ```
    ///
    /// # Panics
    /// If a label or prediction is not below `classes`, or the lengths differ.
    #[track_caller]
    pub fn new(predicted: &[usize], labels: &[usize], classes: usize) -> Self {
        assert_eq!(
            predicted.len(),
            labels.len(),
            "ConfusionMatrix: lengths differ"
        );
        let mut counts = vec![vec![0u64; classes]; classes];
        for (&p, &t) in predicted.iter().zip(labels) {
            assert!(
                p < classes && t < classes,
                "ConfusionMatrix: class {p} or {t} ≥ {classes}"
            );
            counts[t][p] += 1;
        }
        ConfusionMatrix { counts }
    }

    /// `counts()[true][predicted]`.
    pub fn counts(&self) -> &[Vec<u64>] {
        &self.counts
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.counts.len()
    }

    /// The fraction on the diagonal.
    pub fn accuracy(&self) -> f64 {
        let total: u64 = self.counts.iter().flatten().sum();
        let diag: u64 = (0..self.classes()).map(|i| self.counts[i][i]).sum();
        diag as f64 / total as f64
    }

    /// Precision, recall and F1 of every class.
    pub fn scores(&self) -> Vec<ClassScores> {
        let n = self.classes();
        (0..n)
            .map(|c| {
                let tp = self.counts[c][c] as f64;
                let support: u64 = self.counts[c].iter().sum();
                let predicted: u64 = (0..n).map(|t| self.counts[t][c]).sum();
                let precision = tp / predicted as f64;
                let recall = tp / support as f64;
                let f1 = if precision + recall > 0.0 {
                    2.0 * precision * recall / (precision + recall)
                } else {
                    0.0
                };
                ClassScores {
                    precision,
                    recall,
                    f1,
                    support,
                }
            })
            .collect()
    }

    /// The matrix as CSV: a header `true\predicted,0,1,…`, then one row per true class.
    pub fn to_csv(&self) -> String {
        let n = self.classes();
        let mut s = String::from("true\\predicted");
        for c in 0..n {
            s += &format!(",{c}");
        }
        s.push('\n');
        for (t, row) in self.counts.iter().enumerate() {
            s += &t.to_string();
            for v in row {
                s += &format!(",{v}");
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_metrics_are_weighted_by_samples() {
        // Two batches of 3 and 1 samples: mean losses 1.0 and 5.0. Per sample: (3 + 5)/4 = 2,
        // where a mean of batch means would say 3.
        let mut m = Meter::default();
        let logits = Tensor::<f64>::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 0.0], [3, 2]);
        m.add(1.0, &logits, &Tensor::from_vec(vec![0, 1, 1], [3]));
        m.add(
            5.0,
            &Tensor::from_vec(vec![0.0, 2.0], [1, 2]),
            &Tensor::from_vec(vec![1], [1]),
        );
        assert_eq!(m.loss(), 2.0);
        assert_eq!(m.accuracy(), 0.75);
    }

    #[test]
    fn top_k_and_ties() {
        let logits = Tensor::<f64>::from_vec(vec![0.1, 0.5, 0.4, 0.3, 0.3, 0.0], [2, 3]);
        let y = Tensor::from_vec(vec![2, 1], [2]);
        assert_eq!(correct(&logits, &y, 1), 0);
        // Row 1: class 1 ties class 0, which ranks first (lower class).
        assert_eq!(correct(&logits, &y, 2), 2);
        assert_eq!(predictions(&logits), vec![1, 0]);
        assert_eq!(top_k_accuracy(&logits, &y, 3), 1.0);
    }

    #[test]
    fn per_class_scores() {
        let m = ConfusionMatrix::new(&[0, 0, 1, 2, 2, 2], &[0, 1, 1, 2, 2, 0], 3);
        let s = m.scores();
        assert_eq!((s[0].precision, s[0].recall), (0.5, 0.5));
        assert_eq!((s[2].precision, s[2].recall), (2.0 / 3.0, 1.0));
        assert!((s[2].f1 - 0.8).abs() < 1e-15);
        assert_eq!(m.to_csv().lines().nth(1), Some("0,1,0,1"));
    }
}

//! Splits: train/test (and, split again, train/validation), random or stratified, and
//! k-fold cross-validation, plain or stratified, shuffled or not.
//!
//! Every function returns sorted index lists into the data; the parts are disjoint and
//! cover it.
//!
//! ## The algorithms
//!
//! - **`train_test_split`**: random: the indices are permuted (seeded) and the first
//!   `round(n·f)` go to the test part (rounded half to even, as Python's `round`). Stratified: class by class in ascending label order,
//!   the class's indices are permuted (one seeded generator for the whole split) and the
//!   first `round(n_c·f)` go to the test part, so each class keeps its proportion up to
//!   rounding (the train_digits recipe's split, as its PyTorch script does it).
//! - **`stratified_holdout`**: exactly `m` of `n` samples held out, class by class: class
//!   `c` (ascending) gives `⌊n_c·m/n⌋`, the remainder up to `m` going one each to the
//!   largest fractional parts (ties to the lower class); then as the stratified split
//!   above (the Fashion-MNIST recipe's 5,000 validation images, as its PyTorch script does
//!   it: 500 per class).
//! - **`KFold`** unshuffled: scikit-learn's `KFold`: fold `i` is the `i`-th contiguous run of
//!   the indices, the first `n mod k` folds one longer. Shuffled: the same runs of a seeded
//!   permutation.
//! - **`StratifiedKFold`** unshuffled: scikit-learn's `StratifiedKFold` (since 0.22) step for
//!   step, so the folds are the same and in the same order:
//!   1. classes are numbered in order of first appearance in the labels;
//!   2. the encoded labels are sorted, and fold `i` receives `bincount` of every `k`-th
//!      sorted label from position `i` (a round robin over the sorted labels: fold `i`'s
//!      count of class `c` is within one of `n_c/k`);
//!   3. for each class, its samples, in data order, are assigned to folds in blocks: the
//!      first `count(0, c)` to fold 0, the next `count(1, c)` to fold 1, and so on.
//!
//!   Shuffled: step 3 assigns a seeded permutation of the class's fold labels instead (the
//!   counts, so the proportions, are those of step 2).
//!
//! `tests/kfold.rs` checks the unshuffled folds against scikit-learn's on the digits labels.

use rand::RngExt;
use tapegrad_core::{Error, Result};

use crate::rng::{stream_rng, Stream};

/// Two disjoint, sorted index lists covering the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    /// The part to train on.
    pub train: Vec<usize>,
    /// The part held out (test, validation, or a fold).
    pub test: Vec<usize>,
}

/// A seeded permutation of `v` (Fisher–Yates).
fn shuffle(v: &mut [usize], rng: &mut tapegrad_core::StdRng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// Splits `n` samples into train and test parts, `round(n·test_fraction)` of them held out;
/// with `stratify` (one label per sample), each class is split in that proportion.
///
/// ```
/// use tapegrad_data::train_test_split;
/// let labels: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
/// let s = train_test_split(100, 0.25, Some(&labels), 7).unwrap();
/// assert_eq!(s.test.len(), 25);
/// assert_eq!(s.test.iter().filter(|&&i| labels[i] == 1).count(), 5); // 25% of 20
/// ```
///
/// # Errors
/// [`Error::Argument`] if the fraction is not in `[0, 1]` or the labels do not number `n`.
#[track_caller]
pub fn train_test_split(
    n: usize,
    test_fraction: f64,
    stratify: Option<&[usize]>,
    seed: u64,
) -> Result<Split> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(Error::argument(
            "train_test_split",
            format!("the test fraction must be in [0, 1], got {test_fraction}"),
        ));
    }
    let mut rng = stream_rng(seed, Stream::User(0x5117), 0, 0);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    match stratify {
        None => {
            let mut idx: Vec<usize> = (0..n).collect();
            shuffle(&mut idx, &mut rng);
            let k = (n as f64 * test_fraction).round_ties_even() as usize;
            test.extend_from_slice(&idx[..k]);
            train.extend_from_slice(&idx[k..]);
        }
        Some(labels) => {
            if labels.len() != n {
                return Err(Error::argument(
                    "train_test_split",
                    format!("{} labels for {n} samples", labels.len()),
                ));
            }
            for (_, mut idx) in by_class(labels) {
                shuffle(&mut idx, &mut rng);
                let k = (idx.len() as f64 * test_fraction).round_ties_even() as usize;
                test.extend_from_slice(&idx[..k]);
                train.extend_from_slice(&idx[k..]);
            }
        }
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(Split { train, test })
}

/// Holds out exactly `count` samples, stratified by `labels` with the largest-remainder
/// rule (see the module docs): the test part of the split is the held-out part.
///
/// ```
/// use tapegrad_data::stratified_holdout;
/// let labels: Vec<usize> = (0..90).map(|i| usize::from(i >= 60)).collect(); // 60 and 30
/// let s = stratified_holdout(&labels, 10, 1).unwrap();
/// assert_eq!(s.test.len(), 10);
/// assert_eq!(s.test.iter().filter(|&&i| labels[i] == 0).count(), 7); // 6.67 → 6 + 1
/// ```
///
/// # Errors
/// [`Error::Argument`] if `count` exceeds the number of samples.
#[track_caller]
pub fn stratified_holdout(labels: &[usize], count: usize, seed: u64) -> Result<Split> {
    let n = labels.len();
    if count > n {
        return Err(Error::argument(
            "stratified_holdout",
            format!("cannot hold out {count} of {n} samples"),
        ));
    }
    let classes = by_class(labels);
    let exact: Vec<f64> = classes
        .iter()
        .map(|(_, idx)| idx.len() as f64 * count as f64 / n as f64)
        .collect();
    let mut k: Vec<usize> = exact.iter().map(|e| e.floor() as usize).collect();
    let mut order: Vec<usize> = (0..classes.len()).collect();
    // Largest fractional part first, ties to the lower class (a stable sort keeps them).
    order.sort_by(|&a, &b| {
        let (fa, fb) = (exact[a] - k[a] as f64, exact[b] - k[b] as f64);
        fb.total_cmp(&fa)
    });
    let short = count - k.iter().sum::<usize>();
    for &i in order.iter().take(short) {
        k[i] += 1;
    }
    let mut rng = stream_rng(seed, Stream::User(0x5117), 0, 1);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for ((_, mut idx), kc) in classes.into_iter().zip(k) {
        shuffle(&mut idx, &mut rng);
        test.extend_from_slice(&idx[..kc]);
        train.extend_from_slice(&idx[kc..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    Ok(Split { train, test })
}

/// The indices of each class, classes in ascending order, indices in data order.
fn by_class(labels: &[usize]) -> Vec<(usize, Vec<usize>)> {
    let mut classes: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (i, &c) in labels.iter().enumerate() {
        classes.entry(c).or_default().push(i);
    }
    classes.into_iter().collect()
}

/// The folds of `test_fold[i]` (the fold each sample is held out in) as splits.
fn folds_from(test_fold: &[usize], k: usize) -> Vec<Split> {
    (0..k)
        .map(|f| {
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..test_fold.len()).partition(|&i| test_fold[i] == f);
            Split { train, test }
        })
        .collect()
}

/// k-fold cross-validation: each sample is held out in exactly one of `k` folds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KFold {
    /// The number of folds.
    pub k: usize,
    /// `Some(seed)`: folds of a seeded permutation; `None`: contiguous runs (scikit-learn's
    /// unshuffled `KFold`).
    pub shuffle: Option<u64>,
}

impl KFold {
    /// `k` unshuffled folds.
    pub fn new(k: usize) -> Self {
        KFold { k, shuffle: None }
    }

    /// The `k` splits of `n` samples.
    ///
    /// # Errors
    /// [`Error::Argument`] if `k < 2` or `k > n`.
    #[track_caller]
    pub fn split(&self, n: usize) -> Result<Vec<Split>> {
        if self.k < 2 || self.k > n {
            return Err(Error::argument(
                "KFold",
                format!("{} folds of {n} samples: need 2 ≤ k ≤ n", self.k),
            ));
        }
        let mut idx: Vec<usize> = (0..n).collect();
        if let Some(seed) = self.shuffle {
            shuffle(&mut idx, &mut stream_rng(seed, Stream::User(0xF01D), 0, 0));
        }
        let mut test_fold = vec![0; n];
        let mut start = 0;
        for f in 0..self.k {
            let len = n / self.k + usize::from(f < n % self.k);
            for &i in &idx[start..start + len] {
                test_fold[i] = f;
            }
            start += len;
        }
        Ok(folds_from(&test_fold, self.k))
    }
}

tapegrad_core::setters! { KFold {
    /// With the samples permuted (seeded) first.
    with_shuffle(seed: u64) => shuffle = Some(seed);
}}

/// k-fold cross-validation keeping each class's proportion in every fold (see the module
/// docs for the algorithm, scikit-learn's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StratifiedKFold {
    /// The number of folds.
    pub k: usize,
    /// `Some(seed)`: each class's fold assignment permuted (seeded); `None`: in blocks
    /// (scikit-learn's unshuffled `StratifiedKFold`).
    pub shuffle: Option<u64>,
}

impl StratifiedKFold {
    /// `k` unshuffled folds.
    pub fn new(k: usize) -> Self {
        StratifiedKFold { k, shuffle: None }
    }

    /// The fold each sample is held out in (scikit-learn's `_make_test_folds`).
    ///
    /// # Errors
    /// [`Error::Argument`] if `k < 2` or every class has fewer than `k` samples.
    #[track_caller]
    pub fn test_folds(&self, labels: &[usize]) -> Result<Vec<usize>> {
        let k = self.k;
        // Classes numbered by first appearance.
        let mut code: std::collections::HashMap<usize, usize> = Default::default();
        let encoded: Vec<usize> = labels
            .iter()
            .map(|&c| {
                let next = code.len();
                *code.entry(c).or_insert(next)
            })
            .collect();
        let classes = code.len();
        let mut counts = vec![0usize; classes];
        for &e in &encoded {
            counts[e] += 1;
        }
        if k < 2 || counts.iter().all(|&c| c < k) {
            return Err(Error::argument(
                "StratifiedKFold",
                format!(
                    "{k} folds: need k ≥ 2 and at least one class with k samples (largest class: {})",
                    counts.iter().max().copied().unwrap_or(0)
                ),
            ));
        }
        // Round robin over the sorted encoded labels.
        let mut sorted = encoded.clone();
        sorted.sort_unstable();
        let mut allocation = vec![vec![0usize; classes]; k];
        for (pos, &c) in sorted.iter().enumerate() {
            allocation[pos % k][c] += 1;
        }
        let mut rng = self
            .shuffle
            .map(|seed| stream_rng(seed, Stream::User(0x57F0), 0, 0));
        let mut test_fold = vec![0; labels.len()];
        // Class by class, as scikit-learn (`c` indexes the allocation's columns).
        #[allow(clippy::needless_range_loop)]
        for c in 0..classes {
            let mut folds: Vec<usize> = (0..k)
                .flat_map(|f| std::iter::repeat_n(f, allocation[f][c]))
                .collect();
            if let Some(rng) = rng.as_mut() {
                shuffle(&mut folds, rng);
            }
            let members = encoded
                .iter()
                .enumerate()
                .filter(|(_, &e)| e == c)
                .map(|(i, _)| i);
            for (i, f) in members.zip(folds) {
                test_fold[i] = f;
            }
        }
        Ok(test_fold)
    }

    /// The `k` splits of the samples with these labels.
    ///
    /// # Errors
    /// As [`StratifiedKFold::test_folds`].
    #[track_caller]
    pub fn split(&self, labels: &[usize]) -> Result<Vec<Split>> {
        Ok(folds_from(&self.test_folds(labels)?, self.k))
    }
}

tapegrad_core::setters! { StratifiedKFold {
    /// With each class's assignment to folds permuted (seeded).
    with_shuffle(seed: u64) => shuffle = Some(seed);
}}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<usize> {
        (0..103).map(|i| (i * 7 + i / 10) % 4).collect()
    }

    fn disjoint_and_covering(splits: &[Split], n: usize) {
        let mut seen = vec![0; n];
        for s in splits {
            let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
            for &i in &s.test {
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "each sample held out once");
    }

    #[test]
    fn a_holdout_has_the_exact_count_by_largest_remainder() {
        // Fashion-MNIST's 6,000 per class: exactly 500 each of 5,000.
        let even: Vec<usize> = (0..60_000).map(|i| i % 10).collect();
        let s = stratified_holdout(&even, 5000, 0).unwrap();
        let mut all = [s.train.clone(), s.test.clone()].concat();
        all.sort_unstable();
        assert!(all.iter().copied().eq(0..60_000), "disjoint and covering");
        for c in 0..10 {
            assert_eq!(s.test.iter().filter(|&&i| even[i] == c).count(), 500);
        }
        // 103 labels in 4 classes, 10 held out: floors, then the largest remainders.
        let l = labels();
        let counts: Vec<usize> = (0..4)
            .map(|c| l.iter().filter(|&&x| x == c).count())
            .collect();
        let s = stratified_holdout(&l, 10, 3).unwrap();
        assert_eq!(s.test.len(), 10);
        for (c, &count) in counts.iter().enumerate() {
            let got = s.test.iter().filter(|&&i| l[i] == c).count() as f64;
            let exact = count as f64 * 10.0 / 103.0;
            assert!(
                got == exact.floor() || got == exact.floor() + 1.0,
                "class {c}: {got} vs {exact}"
            );
        }
        assert!(stratified_holdout(&l, 104, 0).is_err());
        assert_eq!(stratified_holdout(&l, 10, 3).unwrap(), s, "seeded");
    }

    #[test]
    fn stratified_splits_keep_the_proportions() {
        let y = labels();
        let s = train_test_split(y.len(), 0.2, Some(&y), 3).unwrap();
        for c in 0..4 {
            let n_c = y.iter().filter(|&&l| l == c).count();
            let t_c = s.test.iter().filter(|&&i| y[i] == c).count();
            assert_eq!(t_c, (n_c as f64 * 0.2).round() as usize);
        }
        assert_eq!(s, train_test_split(y.len(), 0.2, Some(&y), 3).unwrap());
        assert_ne!(s, train_test_split(y.len(), 0.2, Some(&y), 4).unwrap());
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        assert_eq!(
            all,
            (0..y.len()).collect::<Vec<_>>(),
            "disjoint and covering"
        );
        assert!(train_test_split(10, 1.5, None, 0).is_err());
        assert!(train_test_split(10, 0.5, Some(&[0, 1]), 0).is_err());
    }

    #[test]
    fn folds_are_disjoint_cover_the_data_and_keep_classes_within_one() {
        let y = labels();
        for kf in [KFold::new(5), KFold::new(5).with_shuffle(2)] {
            let f = kf.split(y.len()).unwrap();
            disjoint_and_covering(&f, y.len());
            let sizes: Vec<usize> = f.iter().map(|s| s.test.len()).collect();
            assert_eq!(sizes, vec![21, 21, 21, 20, 20]);
        }
        assert_eq!(
            KFold::new(5).split(103).unwrap()[0].test,
            (0..21).collect::<Vec<_>>()
        );
        for skf in [
            StratifiedKFold::new(5),
            StratifiedKFold::new(5).with_shuffle(9),
        ] {
            let f = skf.split(&y).unwrap();
            disjoint_and_covering(&f, y.len());
            for c in 0..4 {
                let n_c = y.iter().filter(|&&l| l == c).count() as f64;
                for s in &f {
                    let t = s.test.iter().filter(|&&i| y[i] == c).count() as f64;
                    assert!((t - n_c / 5.0).abs() < 1.0, "class {c}: {t} of {n_c}");
                }
            }
        }
        assert!(KFold::new(1).split(10).is_err());
        assert!(StratifiedKFold::new(5).split(&[0, 1, 2]).is_err());
    }
}

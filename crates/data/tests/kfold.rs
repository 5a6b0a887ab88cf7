//! Unshuffled folds equal scikit-learn's on the digits labels: the same fold for every
//! sample, so cross-validation results compare across tools.
//!
//! `reference/kfold_digits.json` was written by `scripts/kfold_reference.py` (scikit-learn
//! 1.9.1, see the file's `sklearn` field) from the same bundled `data/digits.csv.gz`.

use serde_json::Value;
use tapegrad_data::{read, Dataset, KFold, StratifiedKFold};

const REFERENCE: &str = include_str!("reference/kfold_digits.json");

fn folds(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap() as usize)
        .collect()
}

/// The fold each sample is held out in, from splits.
fn assignment(splits: &[tapegrad_data::Split], n: usize) -> Vec<usize> {
    let mut out = vec![usize::MAX; n];
    for (f, s) in splits.iter().enumerate() {
        for &i in &s.test {
            out[i] = f;
        }
    }
    out
}

#[test]
fn unshuffled_folds_equal_scikit_learns() {
    let doc: Value = serde_json::from_str(REFERENCE).unwrap();
    let y = read::digits::<f32>().unwrap().labels();
    let kf = KFold::new(5).split(y.len()).unwrap();
    assert_eq!(assignment(&kf, y.len()), folds(&doc["kfold_5"]));
    let skf = StratifiedKFold::new(5);
    assert_eq!(skf.test_folds(&y).unwrap(), folds(&doc["stratified_5"]));
    assert_eq!(
        assignment(&skf.split(&y).unwrap(), y.len()),
        folds(&doc["stratified_5"])
    );
    let y101 = &y[..101];
    assert_eq!(
        StratifiedKFold::new(3).test_folds(y101).unwrap(),
        folds(&doc["stratified_3_first_101"])
    );
    // Train parts are the complements, sorted.
    for s in &kf {
        assert!(s.train.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.train.len() + s.test.len(), y.len());
    }
}

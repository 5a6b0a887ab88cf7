//! k-fold training of the digits recipe, shared by `examples/kfold.rs`,
//! `examples/ensembles_kfold.rs` and `tests/ensembles_kfold.rs`: the bundled digits split
//! 80/20 (stratified), the 80% cut into k stratified folds, one recipe model per fold
//! trained on the other k − 1 with early stopping watching its fold.

#![allow(dead_code)] // each example uses part of it

use tapegrad::data::read::digits;
use tapegrad::prelude::*;

use crate::recipe::{self, RunOptions, Splits, Trained};

/// The data of a k-fold run.
pub struct Folds {
    /// What the folds are cut from.
    pub rest: TensorDataset<f32>,
    /// The test split.
    pub test: TensorDataset<f32>,
    /// Each fold's train and held-out indices into `rest`.
    pub folds: Vec<tapegrad::data::Split>,
    /// The number of classes.
    pub classes: usize,
}

/// The digits (pixels / 16), 80/20 stratified from `seed`, the 80% in `k` shuffled
/// stratified folds.
pub fn digits_folds(k: usize, seed: u64) -> Result<Folds> {
    let all = digits::<f32>()?.map_features(|x| x.mul_scalar(1.0 / 16.0));
    let y = all.targets().to_vec();
    let outer = train_test_split(y.len(), 0.2, Some(&y), seed)?;
    let (rest, test) = (all.subset(&outer.train), all.subset(&outer.test));
    let folds = StratifiedKFold::new(k)
        .with_shuffle(seed)
        .split(&rest.targets().to_vec())?;
    Ok(Folds {
        rest,
        test,
        folds,
        classes: all.num_classes(),
    })
}

/// One fold's model and its accuracy on the fold it did not see.
pub struct FoldModel {
    /// The trained model (the best epoch's weights).
    pub trained: Trained,
    /// Its accuracy on its held-out fold.
    pub held_accuracy: f64,
    /// The recipe it was trained with.
    pub recipe: recipe::Recipe,
    /// Its training part (`train`), its fold (`val`) and the test split.
    pub data: Splits,
}

/// Trains fold `i`'s model: the digits recipe for `epochs` epochs with seed `seed + i`;
/// `opts` says how it reports.
pub fn train_fold(
    f: &Folds,
    i: usize,
    epochs: usize,
    seed: u64,
    opts: RunOptions,
) -> Result<FoldModel> {
    let fold = &f.folds[i];
    let r = recipe::Recipe {
        epochs,
        seed: seed + i as u64,
        ..recipe::Recipe::digits()
    };
    let data = Splits {
        train: f.rest.subset(&fold.train),
        val: f.rest.subset(&fold.test),
        test: f.test.clone(),
        classes: f.classes,
        name: format!("digits fold {i}"),
    };
    let trained = recipe::train(&r, &data, opts)?;
    let held = evaluate(
        &trained.model,
        &trained.store,
        &DataLoader::new(&data.val, 1024),
        &CrossEntropy,
    );
    Ok(FoldModel {
        trained,
        held_accuracy: held.accuracy(),
        recipe: r,
        data,
    })
}

/// Mean and sample standard deviation.
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (m, var.sqrt())
}

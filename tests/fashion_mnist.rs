//! Real data: Fashion-MNIST from Debian's package `dataset-fashion-mnist` (installed by
//! `.ci/run`, which runs these tests explicitly; skipped by a plain `cargo test`).

#[path = "../examples/common/recipe.rs"]
mod recipe;

use std::path::Path;

use tapegrad::data::read::{mnist, MnistPart};
use tapegrad::prelude::*;

const DIR: &str = "/usr/share/datasets/fashion-mnist";

#[test]
#[ignore = "needs the dataset-fashion-mnist package"]
fn the_debian_files_read_as_fashion_mnist() {
    let train = mnist::<f32>(DIR, MnistPart::Train).unwrap();
    let test = mnist::<f32>(DIR, MnistPart::Test).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(train.feature_shape(), &[1, 28, 28]);
    for (d, per_class) in [(&train, 6000), (&test, 1000)] {
        let y = d.targets().to_vec();
        for c in 0..10 {
            assert_eq!(
                y.iter().filter(|&&l| l == c).count(),
                per_class,
                "class {c}"
            );
        }
        let x = d.features().as_slice();
        assert!(x
            .iter()
            .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0));
        assert!(x.contains(&255.0));
    }
    // The first training image is an ankle boot (label 9), as in every copy of the set.
    assert_eq!(train.targets().as_slice()[0], 9);
}

#[test]
#[ignore = "needs the dataset-fashion-mnist package"]
fn two_epochs_of_the_recipe_learn_fashion_mnist() {
    let r = recipe::Recipe {
        epochs: 2,
        ..recipe::Recipe::fashion_mnist()
    };
    let data = recipe::mnist_splits(Path::new(DIR), Some(5000), r.seed).unwrap();
    assert_eq!(
        (data.train.len(), data.val.len(), data.test.len()),
        (55_000, 5_000, 10_000)
    );
    let y = data.val.targets().to_vec();
    assert!((0..10).all(|c| y.iter().filter(|&&l| l == c).count() == 500));
    let opts = recipe::RunOptions {
        progress: Progress::Quiet,
        ..Default::default()
    };
    let t = recipe::train(&r, &data, opts).unwrap();
    assert_eq!(t.steps_per_epoch, 430);
    // PyTorch's script reaches 86.96% after 2 epochs (its docstring's smoke check).
    let acc = t.test.accuracy();
    assert!(acc > 0.85, "test accuracy {acc} after 2 epochs");
}

//! The main job's recipe, shortened to 8 epochs and seeded, trains the digits MLP to at
//! least 93% test accuracy (it reaches about 98%); the run is deterministic, so this is not
//! a flaky threshold: the same seed gives the same numbers on every machine.

#[path = "../examples/common/recipe.rs"]
mod recipe;

use tapegrad::prelude::*;

#[test]
fn the_shortened_recipe_learns_the_digits() {
    let r = recipe::Recipe {
        epochs: 8,
        seed: 1,
        ..recipe::Recipe::digits()
    };
    let data = recipe::digits_splits(r.seed).unwrap();
    // The splits of the recipe: stratified 80/20, then 10% of the training part.
    assert_eq!(
        (data.train.len(), data.val.len(), data.test.len()),
        (1295, 143, 359)
    );
    let run = || {
        recipe::train(
            &r,
            &data,
            recipe::RunOptions {
                progress: Progress::Quiet,
                ..Default::default()
            },
        )
        .unwrap()
    };
    let t = run();
    let acc = t.test.accuracy();
    assert!(acc >= 0.93, "test accuracy {acc}");
    assert_eq!(t.history.epochs.len(), 8);
    assert_eq!(t.steps_per_epoch, 21);
    // Learning happened on every count: loss falls, validation accuracy rises.
    let (first, last) = (&t.history.epochs[0], &t.history.epochs[7]);
    assert!(
        last.train_loss < 0.5 * first.train_loss,
        "{first:?} → {last:?}"
    );
    assert!(last.val_accuracy > 0.9, "{last:?}");
    // Deterministic: a second run gives the same numbers and the same weights.
    let again = run();
    assert!(again.history.same_numbers(&t.history));
    assert_eq!(again.test.predicted, t.test.predicted);
    for (_, p) in t.store.iter() {
        let q = again.store.value(again.store.key(&p.name).unwrap());
        assert_eq!(&p.value, q, "{}", p.name);
    }
}

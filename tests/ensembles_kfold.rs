//! The claims of `examples/ensembles_kfold.rs` on 3 seeds of 30-epoch models instead of 5
//! of 60: the 5 fold models' ensemble has a lower test cross-entropy than its members'
//! mean (always, by Jensen's inequality, and here by at least 10%), and does not lose
//! accuracy against the mean member.

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/ensembles.rs"]
mod ensembles;
#[path = "../examples/common/folds.rs"]
mod folds;
#[path = "../examples/common/recipe.rs"]
mod recipe;

#[test]
fn the_fold_ensemble_beats_its_members_on_likelihood() {
    let results: Vec<ensembles::SeedResult> = (0..3)
        .map(|s| ensembles::run_seed(5, 30, s).unwrap())
        .collect();
    ensembles::report(&ensembles::claims(&results));
}

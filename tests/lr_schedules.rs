//! The claims of `examples/lr_schedules.rs` on the digits MLP, on the same seeded runs (the
//! traces themselves are checked against PyTorch in `crates/optim/tests/conformance.rs`):
//! the final training loss falls with the total rate a schedule spends, and every schedule
//! reaches 98% test accuracy.

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/recipe.rs"]
mod recipe;
#[path = "../examples/common/schedule_runs.rs"]
mod schedule_runs;

#[test]
fn training_loss_follows_the_rate_spent_and_every_schedule_generalises() {
    let data = recipe::digits_splits(0).unwrap();
    let runs = schedule_runs::all_runs(&data);
    schedule_runs::report(&schedule_runs::claims(&runs));
}

#[test]
fn spearman_of_a_monotone_and_a_reversed_sequence() {
    let a = [1.0, 2.0, 3.0, 4.0];
    assert!((schedule_runs::spearman(&a, &[10.0, 20.0, 30.0, 40.0]) - 1.0).abs() < 1e-12);
    assert!((schedule_runs::spearman(&a, &[4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
}

//! The digits claim of `examples/optimizers.rs` (Kingma & Ba's ordering), on the same
//! seeded runs: with each optimizer at the best of its 4-rate grid (mean of 3 seeds),
//! Adam's training loss after 10 epochs is at most Adagrad's and plain SGD's, on the
//! logistic regression and on the MLP.

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/optim_digits.rs"]
mod optim_digits;
#[path = "../examples/common/recipe.rs"]
mod recipe;

use optim_digits::Model;

#[test]
fn adam_trains_at_least_as_fast_as_adagrad_and_sgd_on_digits() {
    let data = recipe::digits_splits(0).unwrap();
    let mut claims = Vec::new();
    for model in [Model::Logistic, Model::Mlp] {
        claims.extend(optim_digits::claims(
            model,
            &optim_digits::best_of_grid(model, &data.train),
        ));
    }
    optim_digits::report(&claims);
}

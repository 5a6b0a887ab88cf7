//! The claims of `examples/vanishing_gradients.rs`: at initialisation (the same networks
//! and data: one batch of the digits' training set), sigmoid's first-layer gradient is
//! under 1e-4 of its last layer's, the backward factor per layer matches mean-field theory,
//! ReLU with He's init stays balanced; and exploding gradients diverge without clipping and
//! train with it (200 steps instead of 500).

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/deep_mlp.rs"]
mod deep_mlp;
#[path = "../examples/common/recipe.rs"]
mod recipe;
#[path = "../examples/common/vanishing.rs"]
mod vanishing;

#[test]
fn gradients_vanish_as_mean_field_theory_says() {
    let data = recipe::digits_splits(0).unwrap();
    let cases = vanishing::cases();
    let claims = vanishing::init_claims(&cases, data.train.features(), data.train.targets());
    vanishing::report(&claims);
}

#[test]
fn clipping_tames_exploding_gradients() {
    let data = recipe::digits_splits(0).unwrap();
    let ex = vanishing::exploding(&data.train, 200);
    vanishing::report(&vanishing::exploding_claims(&ex));
}

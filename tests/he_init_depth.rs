//! The claims of `examples/he_init_depth.rs`, on the same 30-layer networks and data (the
//! run is small): Xavier's signal vanishes by 2^(−29/2) at initialisation and He's holds,
//! SGD with momentum stalls with Xavier's init and trains with He's, Adam trains both but
//! He's faster, and over 8 networks the per-layer factor is mean field's ½ and 1.

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/deep_mlp.rs"]
mod deep_mlp;
#[path = "../examples/common/he_depth.rs"]
mod he_depth;
#[path = "../examples/common/recipe.rs"]
mod recipe;

#[test]
fn he_init_trains_thirty_relu_layers_and_xavier_stalls() {
    let data = recipe::digits_splits(0).unwrap();
    let [xavier, he] = he_depth::runs(&data.train, 300);
    he_depth::report(&he_depth::claims(&xavier, &he, 300));
}

#[test]
fn the_per_layer_factor_is_mean_fields_over_eight_networks() {
    let data = recipe::digits_splits(0).unwrap();
    let x = he_depth::factors(he_depth::XAVIER, 8, &data.train);
    let h = he_depth::factors(he_depth::HE, 8, &data.train);
    he_depth::report(&he_depth::factor_claims(&x, &h));
}

//! The claims of `examples/init_histograms.rs` on a reduced batch (250 inputs instead of
//! 1000, the same widths and depths, fewer ReLU networks): CS231n's activation standard
//! deviations for tanh with `0.01·randn`, `1.0·randn` and Xavier, the mean-field variance
//! ratios of ReLU with Xavier and He, and Glorot & Bengio's standard against normalized
//! initialisation.

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/init_stats.rs"]
mod init_stats;

use init_stats::{cs231n_claims, glorot_claims, report, run, Act, Weights};

#[test]
fn cs231n_activation_statistics_per_layer() {
    report(&cs231n_claims(250, 0, 4));
}

#[test]
fn glorot_normalized_init_keeps_activations_and_gradients_alive() {
    let standard = run(Act::Tanh, Weights::GlorotStandard, 5, 1000, 250, 1, 0);
    let normalized = run(Act::Tanh, Weights::GlorotNormalized, 5, 1000, 250, 1, 0);
    report(&glorot_claims(&standard, &normalized));
}

//! The claims of `examples/adversarial.rs`, on the same seeded models (they are small):
//! FGSM through the input gradient fools the digits MLP where random signs of the same size
//! do not, adversarial training restores most of the accuracy at ε = 0.1 and keeps the
//! clean accuracy, and Gaussian noise training lies between.

#[path = "../examples/common/adversarial.rs"]
mod adversarial;
#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/recipe.rs"]
mod recipe;

use adversarial::Defence;

#[test]
fn fgsm_fools_the_mlp_and_adversarial_training_defends_it() {
    let data = recipe::digits_splits(0).unwrap();
    let run = |d| adversarial::measure(&data.train, &data.test, d, 30);
    let standard = run(Defence::None);
    let adv = run(Defence::Adversarial(adversarial::EPS_TRAIN));
    let noise = run(Defence::Noise(adversarial::NOISE_STD));
    adversarial::report(&adversarial::claims(&standard, &adv, &noise));
}

//! The claims of `examples/regularization.rs` at 50 epochs instead of 100 (3 seeds, the
//! same 30% of the digits): dropout changes neither test accuracy nor the train − test gap
//! by more than a point, L2 lowers ‖W‖₂, L1 leaves more weights near zero than L2, and early
//! stopping's restored model beats the last epoch on validation.

#[path = "../examples/common/claims.rs"]
mod claims;
#[path = "../examples/common/recipe.rs"]
mod recipe;
#[path = "../examples/common/regularization.rs"]
mod regularization;

use regularization::Reg;

#[test]
fn regularisers_do_what_they_claim_on_thirty_percent_of_digits() {
    let all: Vec<Vec<regularization::Outcome>> = (0..3u64)
        .map(|seed| {
            let data = regularization::small_splits(seed).unwrap();
            Reg::ALL
                .iter()
                .map(|&r| regularization::run(r, &data, seed, 50).unwrap())
                .collect()
        })
        .collect();
    regularization::report(&regularization::claims(&all));
}

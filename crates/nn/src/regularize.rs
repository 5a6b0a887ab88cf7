//! Penalties on parameters, as graph ops: added to the loss and differentiated like
//! everything else. By default models penalise their weights, not their biases or
//! normalisation parameters ([`crate::Module::weights`]).
//!
//! Conventions: `l2_penalty(λ) = λ·Σw²` — its gradient `2λw` equals PyTorch's `weight_decay =
//! 2λ` in SGD. Elastic net follows scikit-learn: `α·(ρ·Σ|w| + (1 − ρ)/2·Σw²)`.

use tapegrad_core::{Float, ParamKey, Var};

use crate::module::Forward;

fn sum_over<'g, T: Float>(
    f: &Forward<'g, '_, T>,
    keys: &[ParamKey],
    term: impl Fn(Var<'g, T>) -> Var<'g, T>,
) -> Var<'g, T> {
    let mut total = f.graph().scalar(T::zero());
    for &k in keys {
        total += term(f.param(k)).sum();
    }
    total
}

/// `λ·Σ|w|` over the given parameters (subgradient 0 at w = 0).
pub fn l1_penalty<'g, T: Float>(
    f: &Forward<'g, '_, T>,
    keys: &[ParamKey],
    lambda: f64,
) -> Var<'g, T> {
    sum_over(f, keys, |w| w.abs()) * T::from_f64(lambda)
}

/// `λ·Σw²` over the given parameters.
pub fn l2_penalty<'g, T: Float>(
    f: &Forward<'g, '_, T>,
    keys: &[ParamKey],
    lambda: f64,
) -> Var<'g, T> {
    sum_over(f, keys, |w| w.square()) * T::from_f64(lambda)
}

/// `α·(ρ·Σ|w| + (1 − ρ)/2·Σw²)` over the given parameters (`ρ = l1_ratio ∈ [0, 1]`).
///
/// # Panics
/// If `l1_ratio` is outside `[0, 1]`.
#[track_caller]
pub fn elastic_net_penalty<'g, T: Float>(
    f: &Forward<'g, '_, T>,
    keys: &[ParamKey],
    alpha: f64,
    l1_ratio: f64,
) -> Var<'g, T> {
    if !((0.0..=1.0).contains(&l1_ratio)) {
        crate::fail(
            "elastic_net_penalty",
            format!("l1_ratio must be in [0, 1], got {l1_ratio}"),
        );
    }
    l1_penalty(f, keys, alpha * l1_ratio) + l2_penalty(f, keys, alpha * (1.0 - l1_ratio) / 2.0)
}

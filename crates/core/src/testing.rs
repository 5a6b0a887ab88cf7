//! Helpers for this crate's own tests: random inputs and the first- plus second-order
//! check every op family runs.

use crate::gradcheck::{gradcheck, gradgradcheck, GradcheckConfig};
use crate::{seeded_rng, Graph, Tensor, Unary, Var};

/// The message of the panic `f` raises (panicking itself if `f` returns).
#[track_caller]
pub(crate) fn panic_message<R>(f: impl FnOnce() -> R) -> String {
    let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .err()
        .expect("expected a panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A seeded tensor uniform in `[lo, hi)`.
pub(crate) fn rand_tensor(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, lo, hi, &mut seeded_rng(seed))
}

/// gradcheck and gradgradcheck of `f` at `inputs`, panicking with the op's name.
pub(crate) fn check_op<F>(name: &str, inputs: &[Tensor<f64>], f: F)
where
    F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
{
    let cfg = GradcheckConfig::default();
    if let Err(e) = gradcheck(&f, inputs, &cfg) {
        panic!("{name}: {e}");
    }
    if let Err(e) = gradgradcheck(&f, inputs, &cfg) {
        panic!("{name}: {e}");
    }
}

/// Checks a unary op on 0-d, size-1 and larger shapes within `[lo, hi)`.
pub(crate) fn check_unary_op(op: Unary<f64>, lo: f64, hi: f64) {
    for (i, s) in [&[][..], &[1][..], &[5][..], &[2, 3][..]]
        .iter()
        .enumerate()
    {
        let x = rand_tensor(s, lo, hi, 1000 + i as u64);
        check_op(op.name(), &[x], move |_, v| v[0].unary(op));
    }
}

//! Gradient clipping, as `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use tapegrad_core::{Error, Float, Gradients, Result};

/// Which norm [`clip_grad_norm`] measures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormType {
    /// The Euclidean norm of all gradients concatenated.
    L2,
    /// The largest absolute gradient element.
    Inf,
    /// The p-norm (p > 0) of all gradients concatenated.
    P(f64),
}

/// Scales every parameter gradient so that their joint norm is at most `max_norm`, and
/// returns the joint norm **before** clipping.
///
/// As PyTorch: `coef = min(max_norm / (total + 1e-6), 1)` and every gradient is multiplied
/// by `coef`, also when it is 1.
///
/// # Errors
/// [`Error::NonFinite`] if the norm is NaN or infinite; the gradients are then left as they
/// are (PyTorch's `error_if_nonfinite=True`), so a diverging run is reported rather than
/// silently scaled by NaN.
pub fn clip_grad_norm<T: Float>(
    grads: &mut Gradients<T>,
    max_norm: f64,
    norm: NormType,
) -> Result<f64> {
    let total = match norm {
        NormType::L2 => grads
            .params()
            .flat_map(|(_, g)| g.as_slice().iter())
            .map(|v| v.as_f64().powi(2))
            .sum::<f64>()
            .sqrt(),
        NormType::Inf => grads
            .params()
            .flat_map(|(_, g)| g.as_slice().iter())
            .map(|v| v.as_f64().abs())
            .fold(0.0, |m, v| if v > m || v.is_nan() { v } else { m }),
        NormType::P(p) => grads
            .params()
            .flat_map(|(_, g)| g.as_slice().iter())
            .map(|v| v.as_f64().abs().powf(p))
            .sum::<f64>()
            .powf(1.0 / p),
    };
    if !total.is_finite() {
        return Err(Error::NonFinite {
            op: "clip_grad_norm",
            message: format!("the total gradient norm is {total}"),
        });
    }
    let coef = T::from_f64((max_norm / (total + 1e-6)).min(1.0));
    for (_, g) in grads.params_mut() {
        *g *= coef;
    }
    Ok(total)
}

/// Clamps every parameter gradient element to `[−clip, clip]`.
pub fn clip_grad_value<T: Float>(grads: &mut Gradients<T>, clip: f64) {
    let (lo, hi) = (T::from_f64(-clip), T::from_f64(clip));
    for (_, g) in grads.params_mut() {
        for v in g.as_mut_slice() {
            *v = if *v < lo {
                lo
            } else if *v > hi {
                hi
            } else {
                *v
            };
        }
    }
}

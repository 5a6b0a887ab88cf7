//! Dropout (Srivastava et al. 2014), inverted: in training each element is zeroed with
//! probability `p` and the survivors are scaled by `1/(1 − p)`, so evaluation is the
//! identity and the expected activation is the same in both modes.

use rand::Rng;
use tapegrad_core::{Float, Tensor, Var};

use crate::module::{Forward, Module};

/// Inverted dropout as a function: `training = Some(rng)` drops, `None` is the identity.
///
/// # Panics
/// If `p` is not in `[0, 1]`.
#[track_caller]
pub fn dropout<'g, T: Float, R: Rng + ?Sized>(
    x: Var<'g, T>,
    p: f64,
    training: Option<&mut R>,
) -> Var<'g, T> {
    if !((0.0..=1.0).contains(&p)) {
        crate::fail("dropout", format!("p must be in [0, 1], got {p}"));
    }
    let Some(rng) = training else { return x };
    if p == 0.0 {
        return x;
    }
    if p == 1.0 {
        return x * Tensor::zeros(x.shape());
    }
    let scale = T::from_f64(1.0 / (1.0 - p));
    // Kept when a uniform 32-bit draw falls below (1 − p)·2³²: one 32-bit draw per
    // element (a 64-bit Bernoulli draw costs twice the generator's output, and the mask
    // is most of dropout's time).
    let keep = ((1.0 - p) * 4_294_967_296.0).round() as u64;
    // A select, not a branch: with p = 0.2 a branch would be mispredicted every few
    // elements.
    let values = [T::zero(), scale];
    let mask = Tensor::from_fn(x.shape(), |_| {
        values[usize::from(u64::from(rng.next_u32()) < keep)]
    });
    x * mask
}

/// A dropout layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    p: f64,
}

impl Dropout {
    /// Drops with probability `p`.
    ///
    /// # Panics
    /// If `p` is not in `[0, 1]`.
    #[track_caller]
    pub fn new(p: f64) -> Self {
        if !((0.0..=1.0).contains(&p)) {
            crate::fail("Dropout", format!("p must be in [0, 1], got {p}"));
        }
        Dropout { p }
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl<T: Float> Module<T> for Dropout {
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        if f.is_training() {
            let rng = f.rng();
            match rng.as_std() {
                Some(std) => dropout(x, self.p, Some(std)),
                None => dropout(x, self.p, Some(rng)),
            }
        } else {
            x
        }
    }
}

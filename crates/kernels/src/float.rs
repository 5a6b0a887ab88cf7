//! The element trait shared by every crate of tapegrad.

use std::fmt::{Debug, Display, LowerExp};

use crate::elementwise::{chunked, map};
use crate::math::MathFn;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A floating-point element type: `f32` or `f64`.
///
/// Everything generic in tapegrad is generic over this one trait. It extends
/// [`num_traits::Float`] with the few things the library needs that `num_traits` lacks:
/// lossless conversion from `f64` literals, the error function, and (through
/// [`crate::gemm::GemmElem`]) the matrix-multiply kernels of the element type.
pub trait Float:
    num_traits::Float
    + num_traits::FloatConst
    + Default
    + Debug
    + Display
    + LowerExp
    + Send
    + Sync
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + crate::gemm::GemmElem
    + 'static
{
    /// The name of the type as it is printed (`"f32"` or `"f64"`).
    const DTYPE: &'static str;

    /// Converts from `f64`, rounding to nearest for `f32`.
    fn from_f64(v: f64) -> Self;

    /// Converts to `f64` (exact for both types).
    fn as_f64(self) -> f64;

    /// The error function `erf(x) = 2/√π ∫₀ˣ e^{-t²} dt` (from the `libm` crate, within 1 ulp).
    fn erf(self) -> Self;

    /// `out[i] = f(x[i])` for one of the functions with a vectorised kernel: for `f32` the
    /// kernels of [`crate::math`] (within their stated ulp bounds), for `f64` the standard
    /// library's functions. Large slices are split over threads (see
    /// [`crate::elementwise`]).
    ///
    /// # Panics
    /// If the lengths differ.
    fn apply_math(f: MathFn, x: &[Self], out: &mut [Self]);
}

/// The numerically safe logistic function, `1/(1 + e⁻ˣ)` without overflow.
#[inline(always)]
fn sigmoid64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

impl Float for f32 {
    const DTYPE: &'static str = "f32";
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erff(self)
    }
    fn apply_math(f: MathFn, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), out.len(), "apply_math: lengths differ");
        if x.len() < 8 {
            // Less than a vector: the scalar twins (the same results, bit for bit).
            crate::math::apply_scalar_f32(f, x, out);
            return;
        }
        chunked(out, |r, o| crate::math::apply_f32(f, &x[r], o));
    }
}

impl Float for f64 {
    const DTYPE: &'static str = "f64";
    #[inline(always)]
    fn from_f64(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    #[inline]
    fn erf(self) -> Self {
        libm::erf(self)
    }
    fn apply_math(f: MathFn, x: &[f64], out: &mut [f64]) {
        match f {
            MathFn::Exp => map(x, out, f64::exp),
            MathFn::Log => map(x, out, f64::ln),
            MathFn::Tanh => map(x, out, f64::tanh),
            MathFn::Sigmoid => map(x, out, sigmoid64),
        }
    }
}

//! The element trait shared by every crate of tapegrad.

use std::fmt::{Debug, Display, LowerExp};
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
}

//! [`Elem`]: the scalar algebra a unary op's gradient rule is written over, implemented by
//! plain numbers (the fused loops) and by [`Var`] (recorded), and the scalar helpers the
//! rules share.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::ops::binary::Cmp;
use crate::var::Var;
use crate::Float;

/// The operations a gradient rule of a unary op may use: implemented by scalars (the fused
/// loop) and by [`Var`] (recorded on the tape). Masks (`mask`, `sign`) carry no gradient.
pub trait Elem<T: Float>:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + Add<T, Output = Self>
    + Mul<T, Output = Self>
    + Div<T, Output = Self>
{
    /// `eˣ`.
    fn exp(self) -> Self;
    /// `1/x`.
    fn recip(self) -> Self;
    /// `sin x`.
    fn sin(self) -> Self;
    /// `cos x`.
    fn cos(self) -> Self;
    /// `tanh x`.
    fn tanh(self) -> Self;
    /// `σ(x)`.
    fn sigmoid(self) -> Self;
    /// `erf x`.
    fn erf(self) -> Self;
    /// `xᵖ`.
    fn powf(self, p: T) -> Self;
    /// `sign(x)`, without gradient.
    fn sign(self) -> Self;
    /// `1` where `x cmp c` holds, else `0`; without gradient.
    fn mask(self, cmp: Cmp, c: T) -> Self;
}

/// A scalar seen as an [`Elem`] (a newtype, so that the scalar and `Var` instances of the
/// rules never overlap).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct S<T>(pub(crate) T);

macro_rules! scalar_binop {
    ($Trait:ident, $m:ident, $op:tt) => {
        impl<T: Float> $Trait for S<T> {
            type Output = S<T>;
            #[inline(always)]
            fn $m(self, r: S<T>) -> S<T> {
                S(self.0 $op r.0)
            }
        }
        impl<T: Float> $Trait<T> for S<T> {
            type Output = S<T>;
            #[inline(always)]
            fn $m(self, r: T) -> S<T> {
                S(self.0 $op r)
            }
        }
    };
}
scalar_binop!(Add, add, +);
scalar_binop!(Sub, sub, -);
scalar_binop!(Mul, mul, *);
scalar_binop!(Div, div, /);

impl<T: Float> Neg for S<T> {
    type Output = S<T>;
    #[inline(always)]
    fn neg(self) -> S<T> {
        S(-self.0)
    }
}

/// `Elem` methods that apply one function: `S`'s to its scalar, `Var`'s by recording the op.
macro_rules! elem_fns {
    (S: $($m:ident => $f:expr),*) => {
        $(#[inline(always)]
        fn $m(self) -> Self {
            S($f(self.0))
        })*
    };
    (Var: $($m:ident),*) => {
        $(fn $m(self) -> Self {
            Var::$m(self)
        })*
    };
}

impl<T: Float> Elem<T> for S<T> {
    elem_fns!(S: exp => T::exp, recip => T::recip, sin => T::sin, cos => T::cos,
        tanh => T::tanh, sigmoid => sigmoid, erf => T::erf, sign => sign);
    #[inline(always)]
    fn powf(self, p: T) -> Self {
        S(self.0.powf(p))
    }
    #[inline(always)]
    fn mask(self, cmp: Cmp, c: T) -> Self {
        S(if cmp.holds(self.0, c) {
            T::one()
        } else {
            T::zero()
        })
    }
}

impl<'g, T: Float> Elem<T> for Var<'g, T> {
    elem_fns!(Var: exp, recip, sin, cos, tanh, sigmoid, erf, sign);
    fn powf(self, p: T) -> Self {
        Var::powf(self, p)
    }
    fn mask(self, cmp: Cmp, c: T) -> Self {
        let m = self.with_value(|x| x.map(|v| if cmp.holds(v, c) { T::one() } else { T::zero() }));
        self.graph.constant(m)
    }
}

#[inline(always)]
pub(super) fn sigmoid<T: Float>(x: T) -> T {
    // Both branches avoid overflow: e^{-|x|} ≤ 1.
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

#[inline(always)]
pub(super) fn sign<T: Float>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        x // ±0 stays ±0, NaN stays NaN
    }
}

//! Element-wise unary ops: each is an `f` and its gradient rule, side by side.
//!
//! The gradient rule `grad(x, y, g)` (with `y = f(x)` and `g` the upstream gradient) is
//! written once, generically over [`Elem`], and instantiated twice:
//!
//! - on scalars, inside one fused loop over `(x, y, g)`: the fast first-order path, with no
//!   temporary tensors;
//! - on [`Var`]s, where every operation in the rule is recorded on the tape: the
//!   `create_graph` path, which is what makes second- and higher-order gradients work.
//!
//! Each op's loop is monomorphised (see `dispatch!`), so the `match` on the op happens once
//! per call, not once per element. Subgradients at kinks are stated on each variant.

use std::ops::{Add, Div, Mul, Neg, Sub};

use tapegrad_kernels::elementwise;
use tapegrad_kernels::math::MathFn;

use crate::algebra::Algebra;
use crate::ops::binary::Cmp;
use crate::ops::{BackwardArgs, Grads, Op, Rule};
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// An element-wise unary op, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Unary<T> {
    /// `-x`.
    Neg,
    /// `|x|`. Subgradient at 0: 0 (as PyTorch).
    Abs,
    /// `sign(x)` ∈ {-1, 0, 1}. Not differentiable: recorded as a constant.
    Sign,
    /// `eˣ`.
    Exp,
    /// `ln x`.
    Log,
    /// `ln(1 + x)`, accurate near 0.
    Log1p,
    /// `eˣ - 1`, accurate near 0.
    Expm1,
    /// `√x`.
    Sqrt,
    /// `1/√x`.
    Rsqrt,
    /// `x²`.
    Square,
    /// `1/x`.
    Recip,
    /// `sin x`.
    Sin,
    /// `cos x`.
    Cos,
    /// `tanh x`.
    Tanh,
    /// `σ(x) = 1/(1 + e⁻ˣ)`.
    Sigmoid,
    /// `max(x, 0)`. Subgradient at 0: 0 (as PyTorch; writing ReLU as `maximum(x, 0)` would
    /// give ½ there).
    Relu,
    /// `x` if `x > 0`, else `slope·x`. Gradient at 0: `slope`.
    LeakyRelu(T),
    /// `x` if `x > 0`, else `α(eˣ - 1)`. Gradient at 0: `α` (the left branch, as PyTorch).
    Elu(T),
    /// `scale·elu(x, α)` with PyTorch's constants α ≈ 1.6733, scale ≈ 1.0507.
    /// Gradient at 0: `scale·α` (the left branch).
    Selu,
    /// `x·Φ(x) = ½x(1 + erf(x/√2))`, the exact GELU (PyTorch's default).
    Gelu,
    /// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, the tanh approximation of GELU
    /// (`approximate='tanh'`; JAX's default).
    GeluTanh,
    /// `x·σ(x)` (also called swish).
    Silu,
    /// `ln(1 + e^{βx})/β`, or `x` where `βx > threshold` (PyTorch: β = 1, threshold = 20).
    Softplus {
        /// β.
        beta: T,
        /// Above `βx > threshold` the op is the identity.
        threshold: T,
    },
    /// `min(max(x, min), max)`. The gradient passes where `min ≤ x ≤ max`, bounds included
    /// (as PyTorch). NaN stays NaN.
    Clamp {
        /// Lower bound (`-∞` for none).
        min: T,
        /// Upper bound (`+∞` for none).
        max: T,
    },
    /// The error function.
    Erf,
    /// `x + c`.
    AddScalar(T),
    /// `x·c`.
    MulScalar(T),
    /// `x/c`.
    DivScalar(T),
    /// `c - x`.
    RsubScalar(T),
    /// `c/x`.
    RdivScalar(T),
    /// `xᵖ` for a constant `p`. Negative bases with integral `p` work (`(-2)³ = -8`). For
    /// `p = 0` the gradient is 0 everywhere, also at `x = 0`.
    Powf(T),
}

/// SELU's α (PyTorch's constant).
pub const SELU_ALPHA: f64 = 1.673_263_242_354_377_284_817_042_991_671_7;
/// SELU's scale (PyTorch's constant).
pub const SELU_SCALE: f64 = 1.050_700_987_355_480_493_419_334_985_294_6;
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
const GELU_C: f64 = 0.044_715;
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

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

impl<T: Float> Elem<T> for S<T> {
    #[inline(always)]
    fn exp(self) -> Self {
        S(self.0.exp())
    }
    #[inline(always)]
    fn recip(self) -> Self {
        S(self.0.recip())
    }
    #[inline(always)]
    fn sin(self) -> Self {
        S(self.0.sin())
    }
    #[inline(always)]
    fn cos(self) -> Self {
        S(self.0.cos())
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        S(self.0.tanh())
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        S(sigmoid(self.0))
    }
    #[inline(always)]
    fn erf(self) -> Self {
        S(self.0.erf())
    }
    #[inline(always)]
    fn powf(self, p: T) -> Self {
        S(self.0.powf(p))
    }
    #[inline(always)]
    fn sign(self) -> Self {
        S(sign(self.0))
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
    fn exp(self) -> Self {
        Var::exp(self)
    }
    fn recip(self) -> Self {
        Var::recip(self)
    }
    fn sin(self) -> Self {
        Var::sin(self)
    }
    fn cos(self) -> Self {
        Var::cos(self)
    }
    fn tanh(self) -> Self {
        Var::tanh(self)
    }
    fn sigmoid(self) -> Self {
        Var::sigmoid(self)
    }
    fn erf(self) -> Self {
        Var::erf(self)
    }
    fn powf(self, p: T) -> Self {
        Var::powf(self, p)
    }
    fn sign(self) -> Self {
        Var::sign(self)
    }
    fn mask(self, cmp: Cmp, c: T) -> Self {
        let m = self.with_value(|x| x.map(|v| if cmp.holds(v, c) { T::one() } else { T::zero() }));
        self.graph.constant(m)
    }
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    // Both branches avoid overflow: e^{-|x|} ≤ 1.
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

#[inline(always)]
fn sign<T: Float>(x: T) -> T {
    if x > T::zero() {
        T::one()
    } else if x < T::zero() {
        -T::one()
    } else {
        x // ±0 stays ±0, NaN stays NaN
    }
}

impl<T: Float> Rule<T> for Unary<T> {
    fn name(&self) -> &str {
        Unary::name(self)
    }

    /// `g · f'(x)`: fused in one pass on tensors, recorded op by op on `Var`s.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (x, y, g) = (args.inputs[0], args.output, args.grad);
        smallvec::smallvec![Some(V::unary_grad(*self, x, y, g))]
    }
}

impl<T: Float> Unary<T> {
    /// The op's name as printed on the tape.
    pub fn name(&self) -> &'static str {
        match self {
            Unary::Neg => "neg",
            Unary::Abs => "abs",
            Unary::Sign => "sign",
            Unary::Exp => "exp",
            Unary::Log => "log",
            Unary::Log1p => "log1p",
            Unary::Expm1 => "expm1",
            Unary::Sqrt => "sqrt",
            Unary::Rsqrt => "rsqrt",
            Unary::Square => "square",
            Unary::Recip => "recip",
            Unary::Sin => "sin",
            Unary::Cos => "cos",
            Unary::Tanh => "tanh",
            Unary::Sigmoid => "sigmoid",
            Unary::Relu => "relu",
            Unary::LeakyRelu(_) => "leaky_relu",
            Unary::Elu(_) => "elu",
            Unary::Selu => "selu",
            Unary::Gelu => "gelu",
            Unary::GeluTanh => "gelu_tanh",
            Unary::Silu => "silu",
            Unary::Softplus { .. } => "softplus",
            Unary::Clamp { .. } => "clamp",
            Unary::Erf => "erf",
            Unary::AddScalar(_) => "add_scalar",
            Unary::MulScalar(_) => "mul_scalar",
            Unary::DivScalar(_) => "div_scalar",
            Unary::RsubScalar(_) => "rsub_scalar",
            Unary::RdivScalar(_) => "rdiv_scalar",
            Unary::Powf(_) => "powf",
        }
    }

    /// Whether a gradient flows through the op (everything but `sign`).
    pub fn is_differentiable(&self) -> bool {
        !matches!(self, Unary::Sign)
    }

    /// The op on one scalar.
    #[inline(always)]
    pub fn f(self, x: T) -> T {
        let c = T::from_f64;
        match self {
            Unary::Neg => -x,
            Unary::Abs => x.abs(),
            Unary::Sign => sign(x),
            Unary::Exp => x.exp(),
            Unary::Log => x.ln(),
            Unary::Log1p => x.ln_1p(),
            Unary::Expm1 => x.exp_m1(),
            Unary::Sqrt => x.sqrt(),
            Unary::Rsqrt => x.sqrt().recip(),
            Unary::Square => x * x,
            Unary::Recip => x.recip(),
            Unary::Sin => x.sin(),
            Unary::Cos => x.cos(),
            Unary::Tanh => x.tanh(),
            Unary::Sigmoid => sigmoid(x),
            // NaN stays NaN, as in PyTorch.
            Unary::Relu => {
                if x > T::zero() || x.is_nan() {
                    x
                } else {
                    T::zero()
                }
            }
            Unary::LeakyRelu(s) => {
                if x > T::zero() {
                    x
                } else {
                    x * s
                }
            }
            Unary::Elu(a) => {
                if x > T::zero() {
                    x
                } else {
                    a * x.exp_m1()
                }
            }
            Unary::Selu => {
                let v = if x > T::zero() {
                    x
                } else {
                    c(SELU_ALPHA) * x.exp_m1()
                };
                c(SELU_SCALE) * v
            }
            Unary::Gelu => x * (T::one() + (x * T::FRAC_1_SQRT_2()).erf()) * c(0.5),
            Unary::GeluTanh => {
                let u = c(SQRT_2_OVER_PI) * (x + c(GELU_C) * x * x * x);
                c(0.5) * x * (T::one() + u.tanh())
            }
            Unary::Silu => x * sigmoid(x),
            Unary::Softplus { beta, threshold } => {
                let z = x * beta;
                if z > threshold {
                    x
                } else {
                    // ln(1 + eᶻ) = max(z, 0) + ln(1 + e^{−|z|}): exact for every finite z
                    // (so an infinite threshold gives softplus without the cut-off, and
                    // e^z never overflows).
                    (z.max(T::zero()) + (-z.abs()).exp().ln_1p()) / beta
                }
            }
            Unary::Clamp { min, max } => {
                if x < min {
                    min
                } else if x > max {
                    max
                } else {
                    x
                }
            }
            Unary::Erf => x.erf(),
            Unary::AddScalar(k) => x + k,
            Unary::MulScalar(k) => x * k,
            Unary::DivScalar(k) => x / k,
            Unary::RsubScalar(k) => k - x,
            Unary::RdivScalar(k) => k / x,
            Unary::Powf(p) => x.powf(p),
        }
    }

    /// The gradient rule: the gradient flowing to `x`, given `y = f(x)` and the upstream
    /// gradient `g`. Written once for scalars and `Var`s alike.
    #[inline(always)]
    pub fn grad<E: Elem<T>>(self, x: E, y: E, g: E) -> E {
        let c = T::from_f64;
        let one = T::one();
        match self {
            Unary::Neg => -g,
            Unary::Abs => g * x.sign(),
            Unary::Sign => g * T::zero(),
            Unary::Exp => g * y,
            Unary::Log => g / x,
            Unary::Log1p => g / (x + one),
            Unary::Expm1 => g * (y + one),
            Unary::Sqrt => g / y * c(0.5),
            Unary::Rsqrt => g * (y * y * y) * c(-0.5),
            Unary::Square => g * x * c(2.0),
            Unary::Recip => -(g * y * y),
            Unary::Sin => g * x.cos(),
            Unary::Cos => -(g * x.sin()),
            Unary::Tanh => g * (-(y * y) + one),
            Unary::Sigmoid => g * (y * (-y + one)),
            Unary::Relu => g * x.mask(Cmp::Gt, T::zero()),
            Unary::LeakyRelu(s) => g * (x.mask(Cmp::Gt, T::zero()) * (one - s) + s),
            // Left branch through y: α·eˣ = y + α, which cannot overflow for large x.
            Unary::Elu(a) => {
                let m = x.mask(Cmp::Gt, T::zero());
                g * (m + (-m + one) * (y + a))
            }
            Unary::Selu => {
                let m = x.mask(Cmp::Gt, T::zero());
                g * (m * c(SELU_SCALE) + (-m + one) * (y + c(SELU_SCALE * SELU_ALPHA)))
            }
            Unary::Gelu => {
                let cdf = ((x * T::FRAC_1_SQRT_2()).erf() + one) * c(0.5);
                let pdf = (x * x * c(-0.5)).exp() * c(INV_SQRT_2PI);
                g * (cdf + x * pdf)
            }
            Unary::GeluTanh => {
                let x2 = x * x;
                let t = ((x + x2 * x * c(GELU_C)) * c(SQRT_2_OVER_PI)).tanh();
                let dt = (-(t * t) + one) * (x2 * c(3.0 * GELU_C) + one) * c(SQRT_2_OVER_PI);
                g * ((t + one) * c(0.5) + x * dt * c(0.5))
            }
            Unary::Silu => {
                let s = x.sigmoid();
                g * (s * (x * (-s + one) + one))
            }
            Unary::Softplus { beta, threshold } => {
                let bx = x * beta;
                let m = bx.mask(Cmp::Gt, threshold);
                g * (m + (-m + one) * bx.sigmoid())
            }
            Unary::Clamp { min, max } => g * (x.mask(Cmp::Ge, min) * x.mask(Cmp::Le, max)),
            Unary::Erf => g * (x * x * -one).exp() * c(std::f64::consts::FRAC_2_SQRT_PI),
            Unary::AddScalar(_) => g,
            Unary::MulScalar(k) => g * k,
            Unary::DivScalar(k) => g / k,
            Unary::RsubScalar(_) => -g,
            Unary::RdivScalar(_) => -(g * y / x),
            Unary::Powf(p) => {
                if p == T::zero() {
                    g * T::zero()
                } else {
                    g * x.powf(p - one) * p
                }
            }
        }
    }
}

/// Runs `$body` with `$u` bound to a closure returning `$op`, whose variant is written in
/// the closure's body: wherever the loop calling `$u().f(..)` or `$u().grad(..)` is compiled
/// (even behind the thread pool's `dyn Fn` or in the AVX2 copy), the variant is a
/// compile-time constant, so the `match` inside `f` and `grad` disappears and the loop is
/// straight-line code the compiler vectorises.
macro_rules! dispatch {
    ($op:expr, $u:ident => $body:expr) => {
        match $op {
            Unary::Neg => {
                let $u = move || Unary::Neg;
                $body
            }
            Unary::Abs => {
                let $u = move || Unary::Abs;
                $body
            }
            Unary::Sign => {
                let $u = move || Unary::Sign;
                $body
            }
            Unary::Exp => {
                let $u = move || Unary::Exp;
                $body
            }
            Unary::Log => {
                let $u = move || Unary::Log;
                $body
            }
            Unary::Log1p => {
                let $u = move || Unary::Log1p;
                $body
            }
            Unary::Expm1 => {
                let $u = move || Unary::Expm1;
                $body
            }
            Unary::Sqrt => {
                let $u = move || Unary::Sqrt;
                $body
            }
            Unary::Rsqrt => {
                let $u = move || Unary::Rsqrt;
                $body
            }
            Unary::Square => {
                let $u = move || Unary::Square;
                $body
            }
            Unary::Recip => {
                let $u = move || Unary::Recip;
                $body
            }
            Unary::Sin => {
                let $u = move || Unary::Sin;
                $body
            }
            Unary::Cos => {
                let $u = move || Unary::Cos;
                $body
            }
            Unary::Tanh => {
                let $u = move || Unary::Tanh;
                $body
            }
            Unary::Sigmoid => {
                let $u = move || Unary::Sigmoid;
                $body
            }
            Unary::Relu => {
                let $u = move || Unary::Relu;
                $body
            }
            Unary::LeakyRelu(a) => {
                let $u = move || Unary::LeakyRelu(a);
                $body
            }
            Unary::Elu(a) => {
                let $u = move || Unary::Elu(a);
                $body
            }
            Unary::Selu => {
                let $u = move || Unary::Selu;
                $body
            }
            Unary::Gelu => {
                let $u = move || Unary::Gelu;
                $body
            }
            Unary::GeluTanh => {
                let $u = move || Unary::GeluTanh;
                $body
            }
            Unary::Silu => {
                let $u = move || Unary::Silu;
                $body
            }
            Unary::Softplus { beta, threshold } => {
                let $u = move || Unary::Softplus { beta, threshold };
                $body
            }
            Unary::Clamp { min, max } => {
                let $u = move || Unary::Clamp { min, max };
                $body
            }
            Unary::Erf => {
                let $u = move || Unary::Erf;
                $body
            }
            Unary::AddScalar(a) => {
                let $u = move || Unary::AddScalar(a);
                $body
            }
            Unary::MulScalar(a) => {
                let $u = move || Unary::MulScalar(a);
                $body
            }
            Unary::DivScalar(a) => {
                let $u = move || Unary::DivScalar(a);
                $body
            }
            Unary::RsubScalar(a) => {
                let $u = move || Unary::RsubScalar(a);
                $body
            }
            Unary::RdivScalar(a) => {
                let $u = move || Unary::RdivScalar(a);
                $body
            }
            Unary::Powf(a) => {
                let $u = move || Unary::Powf(a);
                $body
            }
        }
    };
}

impl<T: Float> Unary<T> {
    /// The op on one element, computed as the tensor kernels compute it (the vectorised
    /// functions for `exp`, `log`, `tanh` and `sigmoid`), so a one-element tensor gets the
    /// same bits as the same element in a large one.
    #[inline]
    pub(crate) fn f_as_kernel(self, v: T) -> T {
        let mut o = [T::zero()];
        match self {
            Unary::Exp => T::apply_math(MathFn::Exp, &[v], &mut o),
            Unary::Log => T::apply_math(MathFn::Log, &[v], &mut o),
            Unary::Tanh => T::apply_math(MathFn::Tanh, &[v], &mut o),
            Unary::Sigmoid => T::apply_math(MathFn::Sigmoid, &[v], &mut o),
            _ => return self.f(v),
        }
        o[0]
    }

    /// `f` applied to every element of `x`.
    ///
    /// `exp`, `log`, `tanh` and `sigmoid` of f32 tensors use the vectorised kernels of
    /// [`tapegrad_kernels::math`] (within 1–2.5 ulp, stated there); everything else
    /// computes [`Unary::f`] element by element. Large tensors are split over threads.
    pub fn forward(self, x: &Tensor<T>) -> Tensor<T> {
        let xs = x.as_slice();
        if let [v] = xs {
            // One element (losses, scalars): no dispatch machinery.
            return Tensor::one_like(x, self.f_as_kernel(*v));
        }
        Tensor::from_writer(x.shape_owned(), |out| match self {
            Unary::Exp => T::apply_math(MathFn::Exp, xs, out),
            Unary::Log => T::apply_math(MathFn::Log, xs, out),
            Unary::Tanh => T::apply_math(MathFn::Tanh, xs, out),
            Unary::Sigmoid => T::apply_math(MathFn::Sigmoid, xs, out),
            _ => dispatch!(self, u => elementwise::map(xs, out, move |v| u().f(v))),
        })
    }

    /// The fused first-order backward: `grad(x, y, g)` element by element, one pass.
    pub fn backward_tensor(self, x: &Tensor<T>, y: &Tensor<T>, g: &Tensor<T>) -> Tensor<T> {
        let (xs, ys, gs) = (x.as_slice(), y.as_slice(), g.as_slice());
        if let ([xv], [yv], [gv]) = (xs, ys, gs) {
            return Tensor::one_like(x, self.grad(S(*xv), S(*yv), S(*gv)).0);
        }
        Tensor::from_writer(x.shape_owned(), |out| {
            dispatch!(self, u => elementwise::zip3(xs, ys, gs, out, move |xv, yv, gv| {
                u().grad(S(xv), S(yv), S(gv)).0
            }))
        })
    }
}

impl<T: Float> Unary<T> {
    /// [`Unary::backward_tensor`] for an upstream gradient whose elements are all `g` (the
    /// gradient of a full sum): the same arithmetic per element, without the tensor of `g`s.
    pub(crate) fn backward_tensor_const(self, x: &Tensor<T>, y: &Tensor<T>, g: T) -> Tensor<T> {
        let (xs, ys) = (x.as_slice(), y.as_slice());
        Tensor::from_writer(x.shape_owned(), |out| {
            dispatch!(self, u => elementwise::zip(xs, ys, out, move |xv, yv| {
                u().grad(S(xv), S(yv), S(g)).0
            }))
        })
    }
}

impl<'g, T: Float> Var<'g, T> {
    /// Applies a unary op and records it.
    #[track_caller]
    #[inline]
    pub fn unary(self, op: Unary<T>) -> Var<'g, T> {
        if let Some(y) = self.graph.push_one_element_unary(self.id, op) {
            return y;
        }
        let value = self.with_value(|x| op.forward(x));
        let inputs: &[u32] = if op.is_differentiable() {
            &[self.id]
        } else {
            &[]
        };
        self.graph.push(value, Op::Unary(op), inputs)
    }

    /// `x + c`.
    #[track_caller]
    pub fn add_scalar(self, c: T) -> Var<'g, T> {
        self.unary(Unary::AddScalar(c))
    }
    /// `x - c` (computed as `x + (-c)`, which is exact).
    #[track_caller]
    pub fn sub_scalar(self, c: T) -> Var<'g, T> {
        self.unary(Unary::AddScalar(-c))
    }
    /// `x · c`.
    #[track_caller]
    pub fn mul_scalar(self, c: T) -> Var<'g, T> {
        self.unary(Unary::MulScalar(c))
    }
    /// `x / c`.
    #[track_caller]
    pub fn div_scalar(self, c: T) -> Var<'g, T> {
        self.unary(Unary::DivScalar(c))
    }
    /// `c - x`.
    #[track_caller]
    pub fn rsub_scalar(self, c: T) -> Var<'g, T> {
        self.unary(Unary::RsubScalar(c))
    }
    /// `c / x`.
    #[track_caller]
    pub fn rdiv_scalar(self, c: T) -> Var<'g, T> {
        self.unary(Unary::RdivScalar(c))
    }
    /// `xᵖ` for a constant exponent (see [`Unary::Powf`]).
    #[track_caller]
    pub fn powf(self, p: T) -> Var<'g, T> {
        self.unary(Unary::Powf(p))
    }
    /// Leaky ReLU: `x` if `x > 0`, else `slope·x` (PyTorch's default slope is 0.01).
    #[track_caller]
    pub fn leaky_relu(self, slope: T) -> Var<'g, T> {
        self.unary(Unary::LeakyRelu(slope))
    }
    /// ELU: `x` if `x > 0`, else `α(eˣ - 1)`.
    #[track_caller]
    pub fn elu(self, alpha: T) -> Var<'g, T> {
        self.unary(Unary::Elu(alpha))
    }
    /// Softplus with PyTorch's defaults (β = 1, threshold = 20).
    #[track_caller]
    pub fn softplus(self) -> Var<'g, T> {
        self.softplus_with(T::one(), T::from_f64(20.0))
    }
    /// Softplus `ln(1 + e^{βx})/β`, the identity where `βx > threshold`.
    #[track_caller]
    pub fn softplus_with(self, beta: T, threshold: T) -> Var<'g, T> {
        self.unary(Unary::Softplus { beta, threshold })
    }
    /// Clamps to `[min, max]`; pass `T::neg_infinity()` / `T::infinity()` for one bound only.
    #[track_caller]
    pub fn clamp(self, min: T, max: T) -> Var<'g, T> {
        self.unary(Unary::Clamp { min, max })
    }
}

impl<T: Float> Tensor<T> {
    /// Applies a unary op to every element.
    pub fn unary(&self, op: Unary<T>) -> Tensor<T> {
        op.forward(self)
    }
    /// `x + c`.
    pub fn add_scalar(&self, c: T) -> Tensor<T> {
        self.unary(Unary::AddScalar(c))
    }
    /// `x - c`.
    pub fn sub_scalar(&self, c: T) -> Tensor<T> {
        self.unary(Unary::AddScalar(-c))
    }
    /// `x · c`.
    pub fn mul_scalar(&self, c: T) -> Tensor<T> {
        self.unary(Unary::MulScalar(c))
    }
    /// `x / c`.
    pub fn div_scalar(&self, c: T) -> Tensor<T> {
        self.unary(Unary::DivScalar(c))
    }
    /// `c - x`.
    pub fn rsub_scalar(&self, c: T) -> Tensor<T> {
        self.unary(Unary::RsubScalar(c))
    }
    /// `c / x`.
    pub fn rdiv_scalar(&self, c: T) -> Tensor<T> {
        self.unary(Unary::RdivScalar(c))
    }
    /// `xᵖ` for a constant exponent.
    pub fn powf(&self, p: T) -> Tensor<T> {
        self.unary(Unary::Powf(p))
    }
    /// Leaky ReLU with the given negative slope.
    pub fn leaky_relu(&self, slope: T) -> Tensor<T> {
        self.unary(Unary::LeakyRelu(slope))
    }
    /// ELU with the given α.
    pub fn elu(&self, alpha: T) -> Tensor<T> {
        self.unary(Unary::Elu(alpha))
    }
    /// Softplus with β = 1, threshold = 20.
    pub fn softplus(&self) -> Tensor<T> {
        self.softplus_with(T::one(), T::from_f64(20.0))
    }
    /// Softplus with the given β and threshold.
    pub fn softplus_with(&self, beta: T, threshold: T) -> Tensor<T> {
        self.unary(Unary::Softplus { beta, threshold })
    }
    /// Clamps to `[min, max]`.
    pub fn clamp(&self, min: T, max: T) -> Tensor<T> {
        self.unary(Unary::Clamp { min, max })
    }
}

/// Declares the parameterless unary ops as methods of both `Tensor` and `Var`.
macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $variant:ident;)*) => {
        #[allow(clippy::should_implement_trait)] // `neg` is also `-x`
        impl<T: Float> Tensor<T> {
            $($(#[$doc])* pub fn $name(&self) -> Tensor<T> {
                self.unary(Unary::$variant)
            })*
        }
        #[allow(clippy::should_implement_trait)] // `neg` is also `-x`
        impl<'g, T: Float> Var<'g, T> {
            $($(#[$doc])* #[track_caller] pub fn $name(self) -> Var<'g, T> {
                self.unary(Unary::$variant)
            })*
        }
    };
}

unary_methods! {
    /// `-x`.
    neg => Neg;
    /// `|x|` (subgradient 0 at 0).
    abs => Abs;
    /// `sign(x)` ∈ {-1, 0, 1}; no gradient flows through it.
    sign => Sign;
    /// `eˣ`.
    exp => Exp;
    /// Natural logarithm.
    log => Log;
    /// `ln(1 + x)`.
    log1p => Log1p;
    /// `eˣ - 1`.
    expm1 => Expm1;
    /// `√x`.
    sqrt => Sqrt;
    /// `1/√x`.
    rsqrt => Rsqrt;
    /// `x²`.
    square => Square;
    /// `1/x`.
    recip => Recip;
    /// `sin x`.
    sin => Sin;
    /// `cos x`.
    cos => Cos;
    /// `tanh x`: range (-1, 1), zero-centred, saturates for |x| ≫ 1.
    tanh => Tanh;
    /// Logistic sigmoid: range (0, 1), not zero-centred, saturates for |x| ≫ 1.
    sigmoid => Sigmoid;
    /// ReLU `max(x, 0)`: range [0, ∞), gradient 0 for x ≤ 0 (0 at the kink).
    relu => Relu;
    /// SELU with PyTorch's α and scale.
    selu => Selu;
    /// Exact GELU `x·Φ(x)` (PyTorch's default form).
    gelu => Gelu;
    /// GELU, tanh approximation.
    gelu_tanh => GeluTanh;
    /// SiLU / swish `x·σ(x)`.
    silu => Silu;
    /// The error function.
    erf => Erf;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::check_unary_op;
    use crate::{Graph, Tensor};

    fn all_ops() -> Vec<(Unary<f64>, f64, f64)> {
        // (op, low, high) of a domain that avoids kinks by at least 0.05.
        vec![
            (Unary::Neg, -2.0, 2.0),
            (Unary::Abs, 0.05, 2.0),
            (Unary::Exp, -2.0, 2.0),
            (Unary::Log, 0.1, 3.0),
            (Unary::Log1p, -0.5, 3.0),
            (Unary::Expm1, -2.0, 2.0),
            (Unary::Sqrt, 0.1, 3.0),
            (Unary::Rsqrt, 0.2, 3.0),
            (Unary::Square, -2.0, 2.0),
            (Unary::Recip, 0.2, 3.0),
            (Unary::Sin, -3.0, 3.0),
            (Unary::Cos, -3.0, 3.0),
            (Unary::Tanh, -2.5, 2.5),
            (Unary::Sigmoid, -4.0, 4.0),
            (Unary::Relu, 0.05, 2.0),
            (Unary::LeakyRelu(0.01), 0.05, 2.0),
            (Unary::Elu(1.3), 0.05, 2.0),
            (Unary::Selu, 0.05, 2.0),
            (Unary::Gelu, -3.0, 3.0),
            (Unary::GeluTanh, -3.0, 3.0),
            (Unary::Silu, -3.0, 3.0),
            (
                Unary::Softplus {
                    beta: 2.0,
                    threshold: 20.0,
                },
                -3.0,
                3.0,
            ),
            (
                Unary::Clamp {
                    min: -0.5,
                    max: 0.8,
                },
                -0.45,
                0.75,
            ),
            (Unary::Erf, -2.0, 2.0),
            (Unary::AddScalar(0.3), -2.0, 2.0),
            (Unary::MulScalar(-1.7), -2.0, 2.0),
            (Unary::DivScalar(3.0), -2.0, 2.0),
            (Unary::RsubScalar(0.3), -2.0, 2.0),
            (Unary::RdivScalar(1.5), 0.2, 2.0),
            (Unary::Powf(3.0), -2.0, 2.0),
            (Unary::Powf(0.5), 0.2, 2.0),
            (Unary::Powf(-1.5), 0.2, 2.0),
        ]
    }

    #[test]
    fn every_unary_op_first_and_second_order() {
        for (op, lo, hi) in all_ops() {
            // Both signs of the kinked ops' domains.
            check_unary_op(op, lo, hi);
            if lo > 0.0
                && matches!(
                    op,
                    Unary::Abs | Unary::Relu | Unary::LeakyRelu(_) | Unary::Elu(_) | Unary::Selu
                )
            {
                check_unary_op(op, -hi, -lo);
            }
        }
    }

    #[test]
    fn values_match_closed_forms() {
        let x = [-1.3f64, -0.2, 0.0, 0.7, 2.5];
        let t = Tensor::from_vec(x.to_vec(), [5]);
        let close = |a: &Tensor<f64>, f: &dyn Fn(f64) -> f64| {
            for (v, &xi) in a.as_slice().iter().zip(&x) {
                let want = f(xi);
                assert!(
                    (v - want).abs() <= 1e-14 * want.abs().max(1.0),
                    "{v} vs {want} at {xi}"
                );
            }
        };
        close(&t.relu(), &|v| v.max(0.0));
        close(&t.sigmoid(), &|v| 1.0 / (1.0 + (-v).exp()));
        close(&t.silu(), &|v| v / (1.0 + (-v).exp()));
        close(&t.selu(), &|v| {
            SELU_SCALE
                * if v > 0.0 {
                    v
                } else {
                    SELU_ALPHA * (v.exp() - 1.0)
                }
        });
        close(&t.softplus(), &|v| (1.0 + v.exp()).ln());
        close(&t.clamp(-0.5, 0.8), &|v| v.clamp(-0.5, 0.8));
        close(&t.leaky_relu(0.01), &|v| if v > 0.0 { v } else { 0.01 * v });
        close(&t.powf(3.0), &|v| v * v * v);
        // Softplus above the threshold is the identity; sigmoid does not overflow.
        assert_eq!(Tensor::from_vec(vec![30.0f64], [1]).softplus().item(), 30.0);
        assert_eq!(
            Tensor::from_vec(vec![-1000.0f64], [1]).sigmoid().item(),
            0.0
        );
    }

    #[test]
    fn kink_conventions() {
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::from_vec(vec![0.0, 0.0, 0.0, -0.5, 0.8], [5]));
        let d = |y: Var<f64>| y.sum().backward().wrt(x).to_vec();
        assert_eq!(d(x.relu())[0], 0.0);
        assert_eq!(d(x.abs())[0], 0.0);
        assert_eq!(d(x.leaky_relu(0.1))[0], 0.1);
        assert_eq!(d(x.elu(2.0))[0], 2.0);
        // clamp passes the gradient at the bounds
        let c = d(x.clamp(-0.5, 0.8));
        assert_eq!((c[3], c[4]), (1.0, 1.0));
        // x^0 has gradient 0 even at 0, where 0·0⁻¹ would be NaN
        assert_eq!(d(x.powf(0.0))[0], 0.0);
        // sign carries no gradient
        assert!(!x.sign().requires_grad());
    }

    #[test]
    fn large_inputs_stay_finite() {
        let g = Graph::<f32>::new();
        let x = g.leaf(Tensor::from_vec(vec![100.0f32, -100.0, 500.0], [3]));
        for y in [
            x.elu(1.0),
            x.selu(),
            x.sigmoid(),
            x.silu(),
            x.softplus(),
            x.tanh(),
            x.gelu(),
        ] {
            let gx = y.sum().backward().wrt(x);
            assert!(gx.all_finite(), "{}", gx);
        }
    }

    #[test]
    fn node_reuse_accumulates() {
        // a + a, c = c + c * 2, and one value feeding ten ops.
        let g = Graph::<f64>::new();
        let a = g.leaf(Tensor::from_vec(vec![0.5, -1.0], [2]));
        assert_eq!(
            (a.exp() + a.exp()).sum().backward().wrt(a).to_vec(),
            vec![2.0 * 0.5f64.exp(), 2.0 * (-1.0f64).exp()]
        );
        let mut c = a.tanh();
        c = c + c * 2.0;
        c += c.mul_scalar(2.0);
        let want: Vec<f64> = [0.5f64, -1.0]
            .iter()
            .map(|v| 9.0 * (1.0 - v.tanh().powi(2)))
            .collect();
        let got = c.sum().backward().wrt(a).to_vec();
        for (x, y) in got.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12);
        }
        let s = a.sin();
        let mut acc = s.mul_scalar(0.0);
        for k in 0..10 {
            acc += s.mul_scalar(k as f64);
        }
        let got = acc.sum().backward().wrt(a).to_vec();
        assert!((got[0] - 45.0 * 0.5f64.cos()).abs() < 1e-12);
    }

    #[test]
    fn f32_matches_f64() {
        for (op, lo, hi) in all_ops() {
            let x64 = Tensor::<f64>::linspace(lo, hi, 7);
            let x32: Tensor<f32> = x64.cast();
            let a = op.forward(&x64);
            let op32 = match op {
                Unary::LeakyRelu(s) => Unary::LeakyRelu(s as f32),
                Unary::Elu(s) => Unary::Elu(s as f32),
                Unary::Softplus { beta, threshold } => Unary::Softplus {
                    beta: beta as f32,
                    threshold: threshold as f32,
                },
                Unary::Clamp { min, max } => Unary::Clamp {
                    min: min as f32,
                    max: max as f32,
                },
                Unary::AddScalar(s) => Unary::AddScalar(s as f32),
                Unary::MulScalar(s) => Unary::MulScalar(s as f32),
                Unary::DivScalar(s) => Unary::DivScalar(s as f32),
                Unary::RsubScalar(s) => Unary::RsubScalar(s as f32),
                Unary::RdivScalar(s) => Unary::RdivScalar(s as f32),
                Unary::Powf(s) => Unary::Powf(s as f32),
                Unary::Neg => Unary::Neg,
                Unary::Abs => Unary::Abs,
                Unary::Sign => Unary::Sign,
                Unary::Exp => Unary::Exp,
                Unary::Log => Unary::Log,
                Unary::Log1p => Unary::Log1p,
                Unary::Expm1 => Unary::Expm1,
                Unary::Sqrt => Unary::Sqrt,
                Unary::Rsqrt => Unary::Rsqrt,
                Unary::Square => Unary::Square,
                Unary::Recip => Unary::Recip,
                Unary::Sin => Unary::Sin,
                Unary::Cos => Unary::Cos,
                Unary::Tanh => Unary::Tanh,
                Unary::Sigmoid => Unary::Sigmoid,
                Unary::Relu => Unary::Relu,
                Unary::Selu => Unary::Selu,
                Unary::Gelu => Unary::Gelu,
                Unary::GeluTanh => Unary::GeluTanh,
                Unary::Silu => Unary::Silu,
                Unary::Erf => Unary::Erf,
            };
            let b = op32.forward(&x32);
            for (p, q) in a.as_slice().iter().zip(b.as_slice()) {
                assert!(
                    (p - *q as f64).abs() <= 1e-5 * p.abs().max(1.0),
                    "{} {p} {q}",
                    op.name()
                );
            }
        }
    }
}

//! Element-wise unary ops: each is one row of the `unary_ops!` table, its name, `f` and
//! its gradient rule side by side.
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

use tapegrad_kernels::elementwise;
use tapegrad_kernels::math::MathFn;

mod elem;

pub use elem::Elem;
pub(crate) use elem::S;
use elem::{sigmoid, sign};

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

impl<T: Float> Rule<T> for Unary<T> {
    /// `g · f'(x)`: fused in one pass on tensors, recorded op by op on `Var`s.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (x, y, g) = (args.inputs[0], args.output, args.grad);
        smallvec::smallvec![Some(V::unary_grad(*self, x, y, g))]
    }
}

/// The table of unary ops, one row each: the variant (with its parameters bound), its name
/// on the tape, `f` on one scalar of `x`, and the gradient rule flowing to `x` given
/// `y = f(x)` and the upstream gradient `g`, written over [`Elem`] so that the same rule
/// runs on scalars (the fused loops) and on `Var`s (recorded). In both, `c` is
/// `T::from_f64` and `one` is `T::one()`. The macro writes `name`, `f`, `grad` and the
/// `dispatch!` macro from it.
macro_rules! unary_ops {
    (
        $d:tt ($x:ident, $y:ident, $g:ident, $c:ident, $one:ident);
        $(
            $V:ident $( ( $($a:ident),* ) )? $( { $($fa:ident),* } )? => $name:literal,
                f: $f:expr,
                grad: $grad:expr;
        )*
    ) => {
        impl<T: Float> Unary<T> {
            /// The op's name as printed on the tape.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Unary::$V { .. } => $name, )*
                }
            }

            /// The op on one scalar.
            #[inline(always)]
            #[allow(unused_variables)] // a row's parameters serve its `f` or its `grad`
            pub fn f(self, $x: T) -> T {
                let $c = T::from_f64;
                match self {
                    $( Unary::$V $( ( $($a),* ) )? $( { $($fa),* } )? => $f, )*
                }
            }

            /// The gradient rule: the gradient flowing to `x`, given `y = f(x)` and the
            /// upstream gradient `g`. Written once for scalars and `Var`s alike.
            #[inline(always)]
            #[allow(unused_variables)]
            pub fn grad<E: Elem<T>>(self, $x: E, $y: E, $g: E) -> E {
                let $c = T::from_f64;
                let $one = T::one();
                match self {
                    $( Unary::$V $( ( $($a),* ) )? $( { $($fa),* } )? => $grad, )*
                }
            }
        }

        /// Runs `$body` with `$u` bound to a closure returning `$op`, whose variant is
        /// written in the closure's body: wherever the loop calling `$u().f(..)` or
        /// `$u().grad(..)` is compiled (even behind the thread pool's `dyn Fn` or in the
        /// AVX2 copy), the variant is a compile-time constant, so the `match` inside `f`
        /// and `grad` disappears and the loop is straight-line code the compiler
        /// vectorises.
        macro_rules! dispatch {
            ($d op:expr, $d u:ident => $d body:expr) => {
                match $d op {
                    $(
                        Unary::$V $( ( $($a),* ) )? $( { $($fa),* } )? => {
                            let $d u = move || Unary::$V $( ( $($a),* ) )? $( { $($fa),* } )?;
                            $d body
                        }
                    )*
                }
            };
        }
    };
}

unary_ops! {
    $ (x, y, g, c, one);
    Neg => "neg",
        f: -x,
        grad: -g;
    Abs => "abs",
        f: x.abs(),
        grad: g * x.sign();
    Sign => "sign",
        f: sign(x),
        grad: g * T::zero();
    Exp => "exp",
        f: x.exp(),
        grad: g * y;
    Log => "log",
        f: x.ln(),
        grad: g / x;
    Log1p => "log1p",
        f: x.ln_1p(),
        grad: g / (x + one);
    Expm1 => "expm1",
        f: x.exp_m1(),
        grad: g * (y + one);
    Sqrt => "sqrt",
        f: x.sqrt(),
        grad: g / y * c(0.5);
    Rsqrt => "rsqrt",
        f: x.sqrt().recip(),
        grad: g * (y * y * y) * c(-0.5);
    Square => "square",
        f: x * x,
        grad: g * x * c(2.0);
    Recip => "recip",
        f: x.recip(),
        grad: -(g * y * y);
    Sin => "sin",
        f: x.sin(),
        grad: g * x.cos();
    Cos => "cos",
        f: x.cos(),
        grad: -(g * x.sin());
    Tanh => "tanh",
        f: x.tanh(),
        grad: g * (-(y * y) + one);
    Sigmoid => "sigmoid",
        f: sigmoid(x),
        grad: g * (y * (-y + one));
    // NaN stays NaN, as in PyTorch.
    Relu => "relu",
        f: {
            if x > T::zero() || x.is_nan() {
                x
            } else {
                T::zero()
            }
        },
        grad: g * x.mask(Cmp::Gt, T::zero());
    LeakyRelu(s) => "leaky_relu",
        f: {
            if x > T::zero() {
                x
            } else {
                x * s
            }
        },
        grad: g * (x.mask(Cmp::Gt, T::zero()) * (one - s) + s);
    // Left branch through y: α·eˣ = y + α, which cannot overflow for large x.
    Elu(a) => "elu",
        f: {
            if x > T::zero() {
                x
            } else {
                a * x.exp_m1()
            }
        },
        grad: {
            let m = x.mask(Cmp::Gt, T::zero());
            g * (m + (-m + one) * (y + a))
        };
    Selu => "selu",
        f: {
            let v = if x > T::zero() {
                x
            } else {
                c(SELU_ALPHA) * x.exp_m1()
            };
            c(SELU_SCALE) * v
        },
        grad: {
            let m = x.mask(Cmp::Gt, T::zero());
            g * (m * c(SELU_SCALE) + (-m + one) * (y + c(SELU_SCALE * SELU_ALPHA)))
        };
    Gelu => "gelu",
        f: x * (T::one() + (x * T::FRAC_1_SQRT_2()).erf()) * c(0.5),
        grad: {
            let cdf = ((x * T::FRAC_1_SQRT_2()).erf() + one) * c(0.5);
            let pdf = (x * x * c(-0.5)).exp() * c(INV_SQRT_2PI);
            g * (cdf + x * pdf)
        };
    GeluTanh => "gelu_tanh",
        f: {
            let u = c(SQRT_2_OVER_PI) * (x + c(GELU_C) * x * x * x);
            c(0.5) * x * (T::one() + u.tanh())
        },
        grad: {
            let x2 = x * x;
            let t = ((x + x2 * x * c(GELU_C)) * c(SQRT_2_OVER_PI)).tanh();
            let dt = (-(t * t) + one) * (x2 * c(3.0 * GELU_C) + one) * c(SQRT_2_OVER_PI);
            g * ((t + one) * c(0.5) + x * dt * c(0.5))
        };
    Silu => "silu",
        f: x * sigmoid(x),
        grad: {
            let s = x.sigmoid();
            g * (s * (x * (-s + one) + one))
        };
    Softplus { beta, threshold } => "softplus",
        f: {
            let z = x * beta;
            if z > threshold {
                x
            } else {
                // ln(1 + eᶻ) = max(z, 0) + ln(1 + e^{−|z|}): exact for every finite z
                // (so an infinite threshold gives softplus without the cut-off, and
                // e^z never overflows).
                (z.max(T::zero()) + (-z.abs()).exp().ln_1p()) / beta
            }
        },
        grad: {
            let bx = x * beta;
            let m = bx.mask(Cmp::Gt, threshold);
            g * (m + (-m + one) * bx.sigmoid())
        };
    Clamp { min, max } => "clamp",
        f: {
            if x < min {
                min
            } else if x > max {
                max
            } else {
                x
            }
        },
        grad: g * (x.mask(Cmp::Ge, min) * x.mask(Cmp::Le, max));
    Erf => "erf",
        f: x.erf(),
        grad: g * (x * x * -one).exp() * c(std::f64::consts::FRAC_2_SQRT_PI);
    AddScalar(k) => "add_scalar",
        f: x + k,
        grad: g;
    MulScalar(k) => "mul_scalar",
        f: x * k,
        grad: g * k;
    DivScalar(k) => "div_scalar",
        f: x / k,
        grad: g / k;
    RsubScalar(k) => "rsub_scalar",
        f: k - x,
        grad: -g;
    RdivScalar(k) => "rdiv_scalar",
        f: k / x,
        grad: -(g * y / x);
    Powf(p) => "powf",
        f: x.powf(p),
        grad: {
            if p == T::zero() {
                g * T::zero()
            } else {
                g * x.powf(p - one) * p
            }
        };
}

impl<T: Float> Unary<T> {
    /// Whether a gradient flows through the op (everything but `sign`).
    pub fn is_differentiable(&self) -> bool {
        !matches!(self, Unary::Sign)
    }
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
}

impl<T: Float> Tensor<T> {
    /// Applies a unary op to every element.
    pub fn unary(&self, op: Unary<T>) -> Tensor<T> {
        op.forward(self)
    }
}

/// Declares unary ops as methods of both `Tensor` and `Var`: `name => Variant;` for a
/// parameterless op, `@with name(params) => op;` for ops with scalar parameters (of type `T`).
macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $variant:ident;)*) => {
        unary_methods!(@with $($(#[$doc])* $name() => Unary::$variant;)*);
    };
    (@with $($(#[$doc:meta])* $name:ident($($p:ident),*) => $op:expr;)*) => {
        #[allow(clippy::should_implement_trait)] // `neg` is also `-x`
        impl<T: Float> Tensor<T> {
            $($(#[$doc])* pub fn $name(&self $(, $p: T)*) -> Tensor<T> {
                self.unary($op)
            })*
        }
        #[allow(clippy::should_implement_trait)] // `neg` is also `-x`
        impl<'g, T: Float> Var<'g, T> {
            $($(#[$doc])* #[track_caller] pub fn $name(self $(, $p: T)*) -> Var<'g, T> {
                self.unary($op)
            })*
        }
    };
}

unary_methods! { @with
    /// `x + c`.
    add_scalar(c) => Unary::AddScalar(c);
    /// `x - c` (computed as `x + (-c)`, which is exact).
    sub_scalar(c) => Unary::AddScalar(-c);
    /// `x · c`.
    mul_scalar(c) => Unary::MulScalar(c);
    /// `x / c`.
    div_scalar(c) => Unary::DivScalar(c);
    /// `c - x`.
    rsub_scalar(c) => Unary::RsubScalar(c);
    /// `c / x`.
    rdiv_scalar(c) => Unary::RdivScalar(c);
    /// `xᵖ` for a constant exponent (see [`Unary::Powf`]).
    powf(p) => Unary::Powf(p);
    /// Leaky ReLU: `x` if `x > 0`, else `slope·x` (PyTorch's default slope is 0.01).
    leaky_relu(slope) => Unary::LeakyRelu(slope);
    /// ELU: `x` if `x > 0`, else `α(eˣ - 1)`.
    elu(alpha) => Unary::Elu(alpha);
    /// Softplus with PyTorch's defaults (β = 1, threshold = 20).
    softplus() => Unary::Softplus { beta: T::one(), threshold: T::from_f64(20.0) };
    /// Softplus `ln(1 + e^{βx})/β`, the identity where `βx > threshold`.
    softplus_with(beta, threshold) => Unary::Softplus { beta, threshold };
    /// Clamps to `[min, max]`; pass `T::neg_infinity()` / `T::infinity()` for one bound only.
    clamp(min, max) => Unary::Clamp { min, max };
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
mod tests;

//! [`Algebra`]: the operations a backward rule may use.
//!
//! Every backward rule is written once, generically over `V: Algebra<T>`, and runs at two
//! speeds:
//!
//! - `V = Tensor<T>`: the operations compute eagerly, nothing is recorded. This is the
//!   ordinary backward pass.
//! - `V = Var<'g, T>`: the operations are recorded on the tape. This is
//!   `backward_create_graph`, whose gradients are themselves differentiable (Hessian-vector
//!   products, gradient penalties, `gradgradcheck`).
//!
//! No rule has a second implementation. Custom ops write their rule against this trait
//! too (see [`crate::CustomOp`]). The trait is sealed: `Tensor` and `Var` are its only
//! implementations. Shapes passed to its methods are already valid (the op that recorded
//! the node checked them), so the methods do not return `Result`.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::ops::matmul::Transpose;
use crate::ops::movement::{pad_tensor, slice_tensor, SliceSpec};
use crate::ops::reduce::ReduceOp;
use crate::ops::unary::Unary;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

pub(crate) mod sealed {
    use crate::ops::custom::DynCustomOp;
    use crate::ops::unary::Unary;
    use crate::{Float, Tensor};

    /// The crate's half of [`Algebra`](super::Algebra): what rules inside tapegrad may ask
    /// and a user's rule may not. The trait cannot be named outside the crate, which also
    /// seals `Algebra`.
    pub trait Sealed<T: Float>: Sized {
        /// The value itself in the ordinary backward pass (`Some` for a [`Tensor`]), so that
        /// a rule may hand it to its fused tensor kernel; `None` for a `Var`, whose rule
        /// must record differentiable ops. The one way a rule asks for its fast path.
        fn as_tensor(&self) -> Option<&Tensor<T>>;
        /// The gradient of a unary op, `g · f'(x)` given `y = f(x)`: one fused pass over
        /// tensors, the scalar rule recorded op by op on `Var`s (which are its `Elem`s).
        fn unary_grad(op: Unary<T>, x: &Self, y: &Self, g: &Self) -> Self;
        /// Runs a custom op's rule on this type (a `dyn` op has one entry point per type).
        fn custom_backward(
            op: &dyn DynCustomOp<T>,
            inputs: &[&Self],
            output: &Self,
            grad: &Self,
        ) -> Vec<Option<Self>>;
    }

    impl<T: Float> Sealed<T> for Tensor<T> {
        #[inline(always)]
        fn as_tensor(&self) -> Option<&Tensor<T>> {
            Some(self)
        }
        fn unary_grad(op: Unary<T>, x: &Self, y: &Self, g: &Self) -> Self {
            op.backward_tensor(x, y, g)
        }
        fn custom_backward(
            op: &dyn DynCustomOp<T>,
            inputs: &[&Self],
            output: &Self,
            grad: &Self,
        ) -> Vec<Option<Self>> {
            op.backward_tensor(inputs, output, grad)
        }
    }

    impl<T: Float> Sealed<T> for crate::Var<'_, T> {
        #[inline(always)]
        fn as_tensor(&self) -> Option<&Tensor<T>> {
            None
        }
        fn unary_grad(op: Unary<T>, x: &Self, y: &Self, g: &Self) -> Self {
            op.grad(*x, *y, *g)
        }
        fn custom_backward(
            op: &dyn DynCustomOp<T>,
            inputs: &[&Self],
            output: &Self,
            grad: &Self,
        ) -> Vec<Option<Self>> {
            op.backward_var(inputs, output, grad)
        }
    }
}

/// The operations available to backward rules: implemented eagerly by [`Tensor`] and
/// recorded by [`Var`]. Arguments are assumed valid (as they are inside a backward rule);
/// invalid shapes panic.
///
/// The arithmetic operators work on an owned value on the left and an owned value, a
/// reference or a scalar on the right: `x.cos() * g` with `g: &V`, `d + T::one()`, `-y`.
/// (A generic `&V ∘ &V` would need a bound a rule's signature cannot imply; the methods
/// `a.mul(&b)`, taking both sides by reference, do that.)
pub trait Algebra<T: Float>:
    Clone
    + sealed::Sealed<T>
    + Add<Output = Self>
    + for<'a> Add<&'a Self, Output = Self>
    + Add<T, Output = Self>
    + Sub<Output = Self>
    + for<'a> Sub<&'a Self, Output = Self>
    + Sub<T, Output = Self>
    + Mul<Output = Self>
    + for<'a> Mul<&'a Self, Output = Self>
    + Mul<T, Output = Self>
    + Div<Output = Self>
    + for<'a> Div<&'a Self, Output = Self>
    + Div<T, Output = Self>
    + Neg<Output = Self>
{
    /// The shape.
    fn shape(&self) -> Shape;
    /// The current numeric value (for rules that branch on values, e.g. masks).
    fn value(&self) -> Tensor<T>;
    /// A value with no gradient, in the same context as `self` (for a `Var`: a constant on
    /// the same tape).
    fn constant(&self, value: Tensor<T>) -> Self;
    /// `a + b` with broadcasting.
    fn add(&self, other: &Self) -> Self;
    /// `a - b` with broadcasting.
    fn sub(&self, other: &Self) -> Self;
    /// `a · b` with broadcasting.
    fn mul(&self, other: &Self) -> Self;
    /// `a / b` with broadcasting.
    fn div(&self, other: &Self) -> Self;
    /// `aᵇ` with broadcasting.
    fn pow(&self, exponent: &Self) -> Self;
    /// Any element-wise unary op.
    fn unary(&self, op: Unary<T>) -> Self;
    /// `cond ? a : b` with broadcasting.
    fn select(cond: &Tensor<bool>, a: &Self, b: &Self) -> Self;
    /// Any reduction.
    fn reduce(&self, op: ReduceOp) -> Self;
    /// Σ over broadcast dimensions back to `shape` (the un-broadcast of a gradient).
    fn sum_to(&self, shape: &[usize]) -> Self;
    /// Repeated to `shape`.
    fn broadcast_to(&self, shape: &[usize]) -> Self;
    /// Another shape, same elements.
    fn reshape(&self, shape: &[usize]) -> Self;
    /// Axes reordered.
    fn permute(&self, perm: &[usize]) -> Self;
    /// `op(a)·op(b)` for rank ≥ 2 with transpose flags.
    fn matmul_t(&self, other: &Self, ta: Transpose, tb: Transpose) -> Self;
    /// The window `spec`.
    fn slice(&self, spec: &SliceSpec) -> Self;
    /// Written into the window `spec` of a `shape` tensor of `value`s.
    fn pad(&self, spec: &SliceSpec, shape: &[usize], value: T) -> Self;
    /// Slices at `index` along `dim`.
    fn index_select(&self, dim: usize, index: &Tensor<usize>) -> Self;
    /// Zeros of `shape` with slices added at `index` along `dim`.
    fn index_add_zeros(&self, shape: &[usize], dim: usize, index: &Tensor<usize>) -> Self;
    /// Gathers along `dim`.
    fn gather(&self, dim: usize, index: &Tensor<usize>) -> Self;
    /// Zeros of `shape` with `self` scatter-added along `dim`.
    fn scatter_add_zeros(&self, shape: &[usize], dim: usize, index: &Tensor<usize>) -> Self;
    /// A sliding-window op (`unfold`/`fold`).
    fn conv(&self, op: crate::ops::conv::ConvOp) -> Self;
    /// Zeros of `shape` (a constant).
    fn zeros(&self, shape: &[usize]) -> Self {
        self.constant(Tensor::zeros(shape))
    }
    /// `-x`.
    fn neg(&self) -> Self {
        self.unary(Unary::Neg)
    }
    /// `x · c`.
    fn scale(&self, c: T) -> Self {
        self.unary(Unary::MulScalar(c))
    }
    /// `x + c`.
    fn add_scalar(&self, c: T) -> Self {
        self.unary(Unary::AddScalar(c))
    }
    /// `eˣ`.
    fn exp(&self) -> Self {
        self.unary(Unary::Exp)
    }
    /// `ln x`.
    fn log(&self) -> Self {
        self.unary(Unary::Log)
    }
    /// `ln(1 + x)`.
    fn log1p(&self) -> Self {
        self.unary(Unary::Log1p)
    }
    /// `eˣ − 1`.
    fn expm1(&self) -> Self {
        self.unary(Unary::Expm1)
    }
    /// `√x`.
    fn sqrt(&self) -> Self {
        self.unary(Unary::Sqrt)
    }
    /// `1/√x`.
    fn rsqrt(&self) -> Self {
        self.unary(Unary::Rsqrt)
    }
    /// `x²`.
    fn square(&self) -> Self {
        self.unary(Unary::Square)
    }
    /// `1/x`.
    fn recip(&self) -> Self {
        self.unary(Unary::Recip)
    }
    /// `sin x`.
    fn sin(&self) -> Self {
        self.unary(Unary::Sin)
    }
    /// `cos x`.
    fn cos(&self) -> Self {
        self.unary(Unary::Cos)
    }
    /// `tanh x`.
    fn tanh(&self) -> Self {
        self.unary(Unary::Tanh)
    }
    /// `σ(x)`.
    fn sigmoid(&self) -> Self {
        self.unary(Unary::Sigmoid)
    }
    /// `max(x, 0)`.
    fn relu(&self) -> Self {
        self.unary(Unary::Relu)
    }
    /// `x·σ(x)`.
    fn silu(&self) -> Self {
        self.unary(Unary::Silu)
    }
    /// The exact GELU `x·Φ(x)`.
    fn gelu(&self) -> Self {
        self.unary(Unary::Gelu)
    }
    /// The error function.
    fn erf(&self) -> Self {
        self.unary(Unary::Erf)
    }
    /// `|x|`.
    fn abs(&self) -> Self {
        self.unary(Unary::Abs)
    }
    /// `sign(x)`, without gradient.
    fn sign(&self) -> Self {
        self.unary(Unary::Sign)
    }
    /// Σ over `axes`.
    fn sum_dims(&self, axes: &[usize], keepdim: bool) -> Self {
        self.reduce(ReduceOp::Sum {
            axes: axes.iter().copied().collect(),
            keepdim,
        })
    }
}

impl<T: Float> Algebra<T> for Tensor<T> {
    fn shape(&self) -> Shape {
        Tensor::shape(self)
    }
    fn value(&self) -> Tensor<T> {
        self.clone()
    }
    fn constant(&self, value: Tensor<T>) -> Self {
        value
    }
    fn add(&self, other: &Self) -> Self {
        Tensor::add(self, other)
    }
    fn sub(&self, other: &Self) -> Self {
        Tensor::sub(self, other)
    }
    fn mul(&self, other: &Self) -> Self {
        Tensor::mul(self, other)
    }
    fn div(&self, other: &Self) -> Self {
        Tensor::div(self, other)
    }
    fn pow(&self, exponent: &Self) -> Self {
        Tensor::pow(self, exponent)
    }
    fn unary(&self, op: Unary<T>) -> Self {
        op.forward(self)
    }
    fn select(cond: &Tensor<bool>, a: &Self, b: &Self) -> Self {
        Tensor::where_cond(cond, a, b)
    }
    fn reduce(&self, op: ReduceOp) -> Self {
        Tensor::reduce(self, &op)
    }
    fn sum_to(&self, shape: &[usize]) -> Self {
        if Tensor::dims(self) == shape {
            return self.clone();
        }
        Tensor::sum_to(self, shape)
    }
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        Tensor::broadcast_to(self, shape)
    }
    fn reshape(&self, shape: &[usize]) -> Self {
        self.reshaped(Shape::from_slice(shape))
    }
    fn permute(&self, perm: &[usize]) -> Self {
        Tensor::permute(self, perm)
    }
    fn matmul_t(&self, other: &Self, ta: Transpose, tb: Transpose) -> Self {
        Tensor::matmul_t(self, other, ta, tb)
    }
    fn slice(&self, spec: &SliceSpec) -> Self {
        slice_tensor(self, spec)
    }
    fn pad(&self, spec: &SliceSpec, shape: &[usize], value: T) -> Self {
        pad_tensor(self, spec, shape, value)
    }
    fn index_select(&self, dim: usize, index: &Tensor<usize>) -> Self {
        crate::ops::index::index_select_tensor(self, dim, index)
    }
    fn index_add_zeros(&self, shape: &[usize], dim: usize, index: &Tensor<usize>) -> Self {
        crate::ops::index::index_add_tensor(self, shape, dim, index)
    }
    fn gather(&self, dim: usize, index: &Tensor<usize>) -> Self {
        crate::ops::index::gather_tensor(self, dim, index)
    }
    fn scatter_add_zeros(&self, shape: &[usize], dim: usize, index: &Tensor<usize>) -> Self {
        crate::ops::index::scatter_add_tensor(self, shape, dim, index)
    }
    fn conv(&self, op: crate::ops::conv::ConvOp) -> Self {
        op.forward(self)
    }
}

impl<'g, T: Float> Algebra<T> for Var<'g, T> {
    #[track_caller]
    fn shape(&self) -> Shape {
        Var::shape(self)
    }
    #[track_caller]
    fn value(&self) -> Tensor<T> {
        Var::value(self)
    }
    #[track_caller]
    fn constant(&self, value: Tensor<T>) -> Self {
        self.graph.constant(value)
    }
    #[track_caller]
    fn add(&self, other: &Self) -> Self {
        Var::add(*self, *other)
    }
    #[track_caller]
    fn sub(&self, other: &Self) -> Self {
        Var::sub(*self, *other)
    }
    #[track_caller]
    fn mul(&self, other: &Self) -> Self {
        Var::mul(*self, *other)
    }
    #[track_caller]
    fn div(&self, other: &Self) -> Self {
        Var::div(*self, *other)
    }
    #[track_caller]
    fn pow(&self, exponent: &Self) -> Self {
        Var::pow(*self, *exponent)
    }
    #[track_caller]
    fn unary(&self, op: Unary<T>) -> Self {
        Var::unary(*self, op)
    }
    #[track_caller]
    fn select(cond: &Tensor<bool>, a: &Self, b: &Self) -> Self {
        Var::where_cond(cond, *a, *b)
    }
    #[track_caller]
    fn reduce(&self, op: ReduceOp) -> Self {
        Var::reduce(*self, op)
    }
    #[track_caller]
    fn sum_to(&self, shape: &[usize]) -> Self {
        Var::sum_to(*self, shape)
    }
    #[track_caller]
    fn broadcast_to(&self, shape: &[usize]) -> Self {
        Var::broadcast_to(*self, shape)
    }
    #[track_caller]
    fn reshape(&self, shape: &[usize]) -> Self {
        Var::reshape(*self, shape)
    }
    #[track_caller]
    fn permute(&self, perm: &[usize]) -> Self {
        Var::permute(*self, perm)
    }
    #[track_caller]
    fn matmul_t(&self, other: &Self, ta: Transpose, tb: Transpose) -> Self {
        Var::matmul_t(*self, *other, ta, tb)
    }
    #[track_caller]
    fn slice(&self, spec: &SliceSpec) -> Self {
        Var::slice_spec(*self, spec)
    }
    #[track_caller]
    fn pad(&self, spec: &SliceSpec, shape: &[usize], value: T) -> Self {
        self.pad_spec(spec, shape, value)
    }
    #[track_caller]
    fn index_select(&self, dim: usize, index: &Tensor<usize>) -> Self {
        Var::index_select(*self, dim as isize, index)
    }
    #[track_caller]
    fn index_add_zeros(&self, shape: &[usize], dim: usize, index: &Tensor<usize>) -> Self {
        self.index_add_into(shape, dim, index)
    }
    #[track_caller]
    fn gather(&self, dim: usize, index: &Tensor<usize>) -> Self {
        Var::gather(*self, dim as isize, index)
    }
    #[track_caller]
    fn scatter_add_zeros(&self, shape: &[usize], dim: usize, index: &Tensor<usize>) -> Self {
        self.scatter_add_into(shape, dim, index)
    }
    #[track_caller]
    fn conv(&self, op: crate::ops::conv::ConvOp) -> Self {
        self.conv_op(op)
    }
}

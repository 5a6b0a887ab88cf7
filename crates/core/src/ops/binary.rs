//! Element-wise binary ops with NumPy broadcasting, and comparisons.
//!
//! Forward: one broadcasting loop (`tapegrad_kernels::strided::zip_strided`) monomorphised
//! per op. Backward: the gradient of each input is computed at the broadcast (output) shape
//! and summed back to the input's shape by the one un-broadcast helper, [`Algebra::sum_to`].

use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use tapegrad_kernels::strided::{broadcast_strides, zip_strided};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{ok, shape_error, Result};
use crate::ops::{BackwardArgs, Grads, Op, Rule};
use crate::shape::{broadcast_shapes, Shape};
use crate::tensor::check_output;
use crate::tensor::{Element, Tensor};
use crate::var::Var;
use crate::Float;

/// An element-wise binary op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
    /// `aᵇ`. The gradient for `b` is `aᵇ·ln a`, taken as 0 where `a = 0` and `b ≥ 0`
    /// (as PyTorch); for `a < 0` it is NaN.
    Pow,
    /// `max(a, b)`. At ties the gradient is split evenly (½ each), as PyTorch's `maximum`.
    Maximum,
    /// `min(a, b)`. At ties the gradient is split evenly, as PyTorch's `minimum`.
    Minimum,
}

impl BinaryOp {
    /// The op's name as printed on the tape and in errors.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }

    /// The op on two scalars. NaN propagates through `maximum` and `minimum`.
    #[inline(always)]
    pub fn f<T: Float>(self, a: T, b: T) -> T {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            BinaryOp::Maximum => {
                if a.is_nan() || a > b {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Minimum => {
                if a.is_nan() || a < b {
                    a
                } else {
                    b
                }
            }
        }
    }

    /// The op over two broadcastable tensors.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the shapes do not broadcast.
    #[track_caller]
    pub fn forward<T: Float>(self, a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
        macro_rules! go {
            ($variant:ident) => {
                broadcast_zip(self.name(), a, b, |x, y| BinaryOp::$variant.f(x, y))
            };
        }
        match self {
            BinaryOp::Add => go!(Add),
            BinaryOp::Sub => go!(Sub),
            BinaryOp::Mul => go!(Mul),
            BinaryOp::Div => go!(Div),
            BinaryOp::Pow => go!(Pow),
            BinaryOp::Maximum => go!(Maximum),
            BinaryOp::Minimum => go!(Minimum),
        }
    }
}

impl<T: Float> Rule<T> for BinaryOp {
    /// The backward rule: gradients for `a` and `b` given `y = a ∘ b` and the upstream `g`.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (a, b, y, g, needs) = (
            args.inputs[0],
            args.inputs[1],
            args.output,
            args.grad,
            args.needs,
        );
        let (sa, sb) = (a.shape(), b.shape());
        let (ga, gb): (Option<V>, Option<V>) = match self {
            BinaryOp::Add => (needs[0].then(|| g.clone()), needs[1].then(|| g.clone())),
            BinaryOp::Sub => (needs[0].then(|| g.clone()), needs[1].then(|| g.neg())),
            BinaryOp::Mul => (needs[0].then(|| g.mul(b)), needs[1].then(|| g.mul(a))),
            BinaryOp::Div => (
                needs[0].then(|| g.div(b)),
                needs[1].then(|| g.mul(y).div(b).neg()),
            ),
            BinaryOp::Pow => {
                let (av, bv) = (a.value(), b.value());
                let ga = needs[0].then(|| {
                    // b·a^(b-1), and 0 where b = 0 (so 0⁰ does not give 0·0⁻¹ = NaN).
                    let d = g.mul(b).mul(&a.pow(&b.add_scalar(-T::one())));
                    let zero_exp = ok(broadcast_zip("pow", &av, &bv, |_, e| e == T::zero()));
                    V::select(&zero_exp, &g.zeros(&[]), &d)
                });
                let gb = needs[1].then(|| {
                    let d = g.mul(y).mul(&a.log());
                    let at_zero = ok(broadcast_zip("pow", &av, &bv, |x, e| {
                        x == T::zero() && e >= T::zero()
                    }));
                    V::select(&at_zero, &g.zeros(&[]), &d)
                });
                (ga, gb)
            }
            BinaryOp::Maximum | BinaryOp::Minimum => {
                let wins = if *self == BinaryOp::Maximum {
                    Cmp::Gt
                } else {
                    Cmp::Lt
                };
                let half = T::from_f64(0.5);
                let w = ok(broadcast_zip(
                    BinaryOp::name(*self),
                    &a.value(),
                    &b.value(),
                    |x, z| {
                        if wins.holds(x, z) {
                            T::one()
                        } else if x == z {
                            half
                        } else {
                            T::zero()
                        }
                    },
                ));
                let ga = needs[0].then(|| g.mul(&g.constant(w.clone())));
                let gb = needs[1].then(|| g.mul(&g.constant(w.rsub_scalar(T::one()))));
                (ga, gb)
            }
        };
        smallvec::smallvec![ga.map(|v| v.sum_to(&sa)), gb.map(|v| v.sum_to(&sb))]
    }
}

/// `f` over two broadcastable tensors, into a new tensor of the broadcast shape.
#[track_caller]
pub(crate) fn broadcast_zip<A: Element, B: Element, O: Element>(
    op: &'static str,
    a: &Tensor<A>,
    b: &Tensor<B>,
    f: impl Fn(A, B) -> O,
) -> Result<Tensor<O>> {
    let shape: Shape = if a.dims() == b.dims() {
        Shape::from_slice(a.dims())
    } else {
        match broadcast_shapes(a.dims(), b.dims()) {
            Some(s) => {
                check_output::<O>(op, &s, std::panic::Location::caller())?;
                s
            }
            None => {
                return Err(shape_error(
                    op,
                    &[a.dims(), b.dims()],
                    "the shapes do not broadcast (aligned on the right, each pair of sizes must be equal or contain a 1)",
                ))
            }
        }
    };
    let mut out = Tensor::full(shape.clone(), O::default());
    {
        let o = out.as_mut_slice();
        if a.dims() == b.dims() {
            for ((o, &x), &y) in o.iter_mut().zip(a.as_slice()).zip(b.as_slice()) {
                *o = f(x, y);
            }
        } else {
            let sa = broadcast_strides(a.dims(), &shape);
            let sb = broadcast_strides(b.dims(), &shape);
            zip_strided(&shape, a.as_slice(), &sa, b.as_slice(), &sb, o, f);
        }
    }
    Ok(out)
}

/// A comparison, for masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    /// `a == b`.
    Eq,
    /// `a != b`.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl Cmp {
    /// Whether `a cmp b` holds (false for NaN except `Ne`, as IEEE comparisons).
    #[inline(always)]
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Cmp::Eq => a == b,
            Cmp::Ne => a != b,
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

impl<T: Float> Tensor<T> {
    fallible! {
        /// Applies a binary op with broadcasting.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the shapes do not broadcast.
        pub fn binary / try_binary(&self, op: BinaryOp, other: &Tensor<T>) -> Tensor<T> {
            op.forward(self, other)
        }
    }

    fallible! {
        /// Compares element-wise with broadcasting, giving a mask.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the shapes do not broadcast.
        pub fn compare / try_compare(&self, other: &Tensor<T>, cmp: Cmp) -> Tensor<bool> {
            broadcast_zip("compare", self, other, |a, b| cmp.holds(a, b))
        }
    }

    /// Compares every element with a scalar, giving a mask.
    pub fn compare_scalar(&self, c: T, cmp: Cmp) -> Tensor<bool> {
        self.map(|v| cmp.holds(v, c))
    }
}

impl<'g, T: Float> Var<'g, T> {
    /// Applies a binary op with broadcasting and records it.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the shapes do not broadcast.
    #[track_caller]
    pub fn try_binary(self, op: BinaryOp, other: Var<'g, T>) -> Result<Var<'g, T>> {
        self.same_graph(op.name(), &other);
        let value = {
            let nodes = self.graph.nodes();
            op.forward(
                &nodes[self.id as usize].value,
                &nodes[other.id as usize].value,
            )?
        };
        Ok(self.graph.push(value, Op::Binary(op), &[self.id, other.id]))
    }

    fallible! {
        /// Compares element-wise with broadcasting, giving a mask (no gradient).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if the shapes do not broadcast.
        pub fn compare / try_compare(self, other: Var<'g, T>, cmp: Cmp) -> Tensor<bool> {
            self.same_graph("compare", &other);
            let nodes = self.graph.nodes();
            nodes[self.id as usize]
                .value
                .try_compare(&nodes[other.id as usize].value, cmp)
        }
    }

    /// Compares every element with a scalar, giving a mask (no gradient).
    pub fn compare_scalar(self, c: T, cmp: Cmp) -> Tensor<bool> {
        self.with_value(|v| v.compare_scalar(c, cmp))
    }
}

/// Declares `op`/`try_op` for a binary op on `Tensor` and `Var`.
macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident, $try_name:ident => $variant:ident;)*) => {
        #[allow(clippy::should_implement_trait)]
        impl<T: Float> Tensor<T> {
            $(
                $(#[$doc])*
                ///
                /// # Panics
                /// If the shapes do not broadcast (see the `try_` form).
                #[track_caller]
                pub fn $name(&self, other: &Tensor<T>) -> Tensor<T> {
                    ok(BinaryOp::$variant.forward(self, other))
                }
                $(#[$doc])*
                ///
                /// # Errors
                /// [`crate::Error::Shape`] if the shapes do not broadcast.
                #[track_caller]
                pub fn $try_name(&self, other: &Tensor<T>) -> Result<Tensor<T>> {
                    BinaryOp::$variant.forward(self, other)
                }
            )*
        }
        // The operators (`+ - * /`) are implemented too; the named methods pair with their
        // `try_` forms and read well in chains.
        #[allow(clippy::should_implement_trait)]
        impl<'g, T: Float> Var<'g, T> {
            $(
                $(#[$doc])*
                ///
                /// # Panics
                /// If the shapes do not broadcast (see the `try_` form).
                #[track_caller]
                pub fn $name(self, other: Var<'g, T>) -> Var<'g, T> {
                    ok(self.try_binary(BinaryOp::$variant, other))
                }
                $(#[$doc])*
                ///
                /// # Errors
                /// [`crate::Error::Shape`] if the shapes do not broadcast.
                #[track_caller]
                pub fn $try_name(self, other: Var<'g, T>) -> Result<Var<'g, T>> {
                    self.try_binary(BinaryOp::$variant, other)
                }
            )*
        }
    };
}

binary_methods! {
    /// `a + b` with broadcasting.
    add, try_add => Add;
    /// `a - b` with broadcasting.
    sub, try_sub => Sub;
    /// `a · b` with broadcasting.
    mul, try_mul => Mul;
    /// `a / b` with broadcasting.
    div, try_div => Div;
    /// `aᵇ` with broadcasting (see [`BinaryOp::Pow`]).
    pow, try_pow => Pow;
    /// Element-wise maximum with broadcasting (ties split the gradient evenly).
    maximum, try_maximum => Maximum;
    /// Element-wise minimum with broadcasting (ties split the gradient evenly).
    minimum, try_minimum => Minimum;
}

/// Declares the named comparisons on `Tensor` and `Var`.
macro_rules! compare_methods {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => $cmp:ident;)*) => {
        impl<T: Float> Tensor<T> {
            $(
                $(#[$doc])*
                ///
                /// # Panics
                /// If the shapes do not broadcast.
                #[track_caller]
                pub fn $name(&self, other: &Tensor<T>) -> Tensor<bool> {
                    ok(self.try_compare(other, Cmp::$cmp))
                }
                $(#[$doc])*
                #[doc = "Against a scalar."]
                pub fn $scalar(&self, c: T) -> Tensor<bool> {
                    self.compare_scalar(c, Cmp::$cmp)
                }
            )*
        }
        impl<'g, T: Float> Var<'g, T> {
            $(
                $(#[$doc])*
                #[doc = "No gradient flows through a mask."]
                ///
                /// # Panics
                /// If the shapes do not broadcast.
                #[track_caller]
                pub fn $name(self, other: Var<'g, T>) -> Tensor<bool> {
                    ok(self.try_compare(other, Cmp::$cmp))
                }
                $(#[$doc])*
                #[doc = "Against a scalar; no gradient flows through a mask."]
                pub fn $scalar(self, c: T) -> Tensor<bool> {
                    self.compare_scalar(c, Cmp::$cmp)
                }
            )*
        }
    };
}

compare_methods! {
    /// Mask of `a == b`.
    equal, equal_scalar => Eq;
    /// Mask of `a != b`.
    not_equal, not_equal_scalar => Ne;
    /// Mask of `a < b`.
    lt, lt_scalar => Lt;
    /// Mask of `a <= b`.
    le, le_scalar => Le;
    /// Mask of `a > b`.
    gt, gt_scalar => Gt;
    /// Mask of `a >= b`.
    ge, ge_scalar => Ge;
}

/// Operators on tensors: `&a + &b`, `a + b`, `&a * 2.0`, `2.0 - &a`, `-&a`, `a += &b`...
macro_rules! tensor_operator {
    ($Trait:ident, $method:ident, $Assign:ident, $assign:ident, $variant:ident, $scalar_fn:ident, $lhs_scalar_fn:ident) => {
        impl<T: Float> $Trait<&Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                ok(BinaryOp::$variant.forward(self, rhs))
            }
        }
        impl<T: Float> $Trait<Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                ok(BinaryOp::$variant.forward(&self, &rhs))
            }
        }
        impl<T: Float> $Trait<&Tensor<T>> for Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Tensor<T> {
                ok(BinaryOp::$variant.forward(&self, rhs))
            }
        }
        impl<T: Float> $Trait<Tensor<T>> for &Tensor<T> {
            type Output = Tensor<T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Tensor<T> {
                ok(BinaryOp::$variant.forward(self, &rhs))
            }
        }
        impl<T: Float> $Trait<T> for &Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                self.$scalar_fn(rhs)
            }
        }
        impl<T: Float> $Trait<T> for Tensor<T> {
            type Output = Tensor<T>;
            fn $method(self, rhs: T) -> Tensor<T> {
                self.$scalar_fn(rhs)
            }
        }
        impl $Trait<&Tensor<f32>> for f32 {
            type Output = Tensor<f32>;
            fn $method(self, rhs: &Tensor<f32>) -> Tensor<f32> {
                rhs.$lhs_scalar_fn(self)
            }
        }
        impl $Trait<&Tensor<f64>> for f64 {
            type Output = Tensor<f64>;
            fn $method(self, rhs: &Tensor<f64>) -> Tensor<f64> {
                rhs.$lhs_scalar_fn(self)
            }
        }
        impl $Trait<Tensor<f32>> for f32 {
            type Output = Tensor<f32>;
            fn $method(self, rhs: Tensor<f32>) -> Tensor<f32> {
                rhs.$lhs_scalar_fn(self)
            }
        }
        impl $Trait<Tensor<f64>> for f64 {
            type Output = Tensor<f64>;
            fn $method(self, rhs: Tensor<f64>) -> Tensor<f64> {
                rhs.$lhs_scalar_fn(self)
            }
        }
        impl<T: Float> $Assign<&Tensor<T>> for Tensor<T> {
            /// In place when the right side broadcasts to the left side's shape (no
            /// reallocation unless the storage is shared).
            #[track_caller]
            fn $assign(&mut self, rhs: &Tensor<T>) {
                if self.dims() == rhs.dims() {
                    for (a, &b) in self.as_mut_slice().iter_mut().zip(rhs.as_slice()) {
                        *a = BinaryOp::$variant.f(*a, b);
                    }
                } else {
                    *self = ok(BinaryOp::$variant.forward(self, rhs));
                }
            }
        }
        impl<T: Float> $Assign<T> for Tensor<T> {
            fn $assign(&mut self, rhs: T) {
                for a in self.as_mut_slice() {
                    *a = BinaryOp::$variant.f(*a, rhs);
                }
            }
        }
    };
}

tensor_operator!(Add, add, AddAssign, add_assign, Add, add_scalar, add_scalar);
tensor_operator!(
    Sub,
    sub,
    SubAssign,
    sub_assign,
    Sub,
    sub_scalar,
    rsub_scalar
);
tensor_operator!(Mul, mul, MulAssign, mul_assign, Mul, mul_scalar, mul_scalar);
tensor_operator!(
    Div,
    div,
    DivAssign,
    div_assign,
    Div,
    div_scalar,
    rdiv_scalar
);

impl<T: Float> Neg for &Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(self)
    }
}

impl<T: Float> Neg for Tensor<T> {
    type Output = Tensor<T>;
    fn neg(self) -> Tensor<T> {
        Tensor::neg(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};
    use crate::Graph;

    const OPS: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];

    #[test]
    fn every_binary_op_on_broadcast_shapes() {
        let shapes: [(&[usize], &[usize]); 6] = [
            (&[3], &[3]),
            (&[2, 3], &[3]),
            (&[2, 1], &[1, 3]),
            (&[], &[2, 2]),
            (&[2, 3, 2], &[3, 1]),
            (&[1], &[]),
        ];
        for op in OPS {
            for (i, (sa, sb)) in shapes.iter().enumerate() {
                // Positive bases for pow; maximum/minimum pairs apart from ties by construction.
                let a = rand_tensor(sa, 0.5, 2.0, 10 + i as u64);
                let b = if matches!(op, BinaryOp::Maximum | BinaryOp::Minimum) {
                    rand_tensor(sb, 2.1, 3.0, 20 + i as u64).mul_scalar(if i % 2 == 0 {
                        1.0
                    } else {
                        -1.0
                    })
                } else {
                    rand_tensor(sb, 0.5, 2.0, 20 + i as u64)
                };
                check_op(op.name(), &[a, b], move |_, x| {
                    x[0].try_binary(op, x[1]).unwrap()
                });
            }
        }
    }

    #[test]
    fn pow_with_negative_base_and_integral_exponent() {
        let a = Tensor::from_vec(vec![-2.0f64, -0.5, 1.5], [3]);
        let e = Tensor::from_vec(vec![3.0f64], [1]);
        assert_eq!(a.pow(&e).to_vec(), vec![-8.0, -0.125, 3.375]);
        let g = Graph::<f64>::new();
        let x = g.leaf(a);
        let gx = x.pow(g.constant(e)).sum().backward().wrt(x);
        assert_eq!(gx.to_vec(), vec![12.0, 0.75, 6.75]);
    }

    #[test]
    fn ties_split_the_gradient() {
        let g = Graph::<f64>::new();
        let a = g.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]));
        let b = g.leaf(Tensor::from_vec(vec![1.0, 5.0, 0.0], [3]));
        let grads = a.maximum(b).sum().backward();
        assert_eq!(grads.wrt(a).to_vec(), vec![0.5, 0.0, 1.0]);
        assert_eq!(grads.wrt(b).to_vec(), vec![0.5, 1.0, 0.0]);
    }

    #[test]
    fn broadcast_gradient_is_summed_back() {
        let g = Graph::<f64>::new();
        let a = g.leaf(Tensor::ones([2, 3]));
        let b = g.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]));
        let grads = (a * b).sum().backward();
        assert_eq!(grads.wrt(b).to_vec(), vec![2.0, 2.0, 2.0]);
        assert_eq!(grads.wrt(a).dims(), &[2, 3]);
    }

    #[test]
    fn shape_errors_name_op_shapes_and_line() {
        let a = Tensor::<f64>::zeros([2, 3]);
        let b = Tensor::<f64>::zeros([2]);
        let e = a.try_add(&b).unwrap_err().to_string();
        assert!(e.starts_with("add:"), "{e}");
        assert!(e.contains("[2, 3] and [2]"), "{e}");
        assert!(e.contains("binary.rs"), "{e}"); // this file is the caller
        let g = Graph::<f64>::new();
        let (x, y) = (g.leaf(a), g.leaf(b));
        let msg = crate::testing::panic_message(|| x * y);
        assert!(
            msg.contains("mul:") && msg.contains("[2, 3] and [2]"),
            "{msg}"
        );
    }

    #[test]
    fn operators_with_scalars_and_tensors_on_either_side() {
        let g = Graph::<f64>::new();
        let t = Tensor::from_vec(vec![1.0, 2.0], [2]);
        let x = g.leaf(t.clone());
        let y = 2.0 - x + (x / 4.0) * 3.0 - 1.0 / x + &t * x + t.clone() / x;
        let dx = y.sum().backward().wrt(x).to_vec();
        // d/dx [2 - x + 0.75x - 1/x + t·x + t/x] with t = x's value
        let want = |v: f64| -1.0 + 0.75 + 1.0 / (v * v) + v - v / (v * v);
        assert!((dx[0] - want(1.0)).abs() < 1e-12 && (dx[1] - want(2.0)).abs() < 1e-12);
        // Tensor operators
        let u = &t * 2.0 + 1.0;
        assert_eq!(u.to_vec(), vec![3.0, 5.0]);
        assert_eq!((10.0 / &t).to_vec(), vec![10.0, 5.0]);
        let mut w = t.clone();
        w += &Tensor::scalar(1.0);
        assert_eq!(w.to_vec(), vec![2.0, 3.0]);
        assert_eq!((-&t).to_vec(), vec![-1.0, -2.0]);
    }

    #[test]
    fn comparisons_give_masks() {
        let a = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], [3]);
        let b = Tensor::from_vec(vec![2.0f32], [1]);
        assert_eq!(a.gt(&b).to_vec(), vec![false, false, true]);
        assert_eq!(a.le_scalar(2.0).to_vec(), vec![true, true, false]);
        assert_eq!(a.equal(&b).to_vec(), vec![false, true, false]);
    }

    #[test]
    fn node_reuse_in_binary_ops() {
        // a + a, a·a, c = c + c·2, and one value feeding ten ops.
        let g = Graph::<f64>::new();
        let a = g.leaf(Tensor::from_vec(vec![1.5, -2.0], [2]));
        assert_eq!((a + a).sum().backward().wrt(a).to_vec(), vec![2.0, 2.0]);
        assert_eq!((a * a).sum().backward().wrt(a).to_vec(), vec![3.0, -4.0]);
        let mut c = a * a;
        c = c + c * g.scalar(2.0);
        assert_eq!(c.sum().backward().wrt(a).to_vec(), vec![9.0, -12.0]);
        check_op("reuse", &[Tensor::from_vec(vec![1.5, 0.7], [2])], |g, v| {
            let mut acc = v[0] / v[0].maximum(v[0] * 0.5);
            for k in 1..10 {
                acc = acc + v[0].pow(g.scalar(k as f64 / 4.0).broadcast_to(&[2])) - v[0];
            }
            acc
        });
    }
}

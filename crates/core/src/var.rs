//! `Var<'g, T>`: a `Copy` handle to a node of a [`Graph`], with the op set as methods and
//! the arithmetic operators.
//!
//! Operators accept a `Var`, a scalar `T`, or a tensor (`&Tensor<T>` or `Tensor<T>`, which
//! become constants on the tape) on either side: `x * 2.0`, `2.0 - x`, `&mask * x`.
//! Operators panic on incompatible shapes, at the line of the operator, with the op name and
//! the shapes; the `try_` methods return the same error as a `Result`.

use std::fmt;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use crate::graph::Graph;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::Float;

/// A value on a tape: a node id and the graph it belongs to.
///
/// `Var` is `Copy` and as cheap to pass as two words. Its lifetime ties it to its
/// [`Graph`], so it can neither outlive the graph nor survive a [`Graph::reset`].
#[derive(Clone, Copy)]
pub struct Var<'g, T: Float> {
    pub(crate) graph: &'g Graph<T>,
    pub(crate) id: u32,
}

impl<'g, T: Float> Var<'g, T> {
    pub(crate) fn new(graph: &'g Graph<T>, id: u32) -> Self {
        Var { graph, id }
    }

    /// The graph this value is recorded on.
    pub fn graph(&self) -> &'g Graph<T> {
        self.graph
    }

    /// The node's index on its tape (its position in recording order).
    pub fn id(&self) -> usize {
        self.id as usize
    }

    /// The value (shares the data, no copy).
    pub fn value(&self) -> Tensor<T> {
        self.graph.nodes()[self.id as usize].value.clone()
    }

    /// Runs `f` on the value without cloning it. `f` must not record ops on the graph.
    pub(crate) fn with_value<R>(&self, f: impl FnOnce(&Tensor<T>) -> R) -> R {
        f(&self.graph.nodes()[self.id as usize].value)
    }

    /// The value, borrowed from the tape: for checks that must keep `#[track_caller]`'s
    /// location (a closure, as in [`Var::with_value`], loses it). Use it within one
    /// expression and never across an op call, which records onto the tape.
    #[inline]
    pub(crate) fn value_ref(&self) -> std::cell::Ref<'_, Tensor<T>> {
        std::cell::Ref::map(self.graph.nodes(), |n| &n[self.id as usize].value)
    }

    /// The shape of the value (the same type as [`Tensor::shape`]).
    pub fn shape(&self) -> Shape {
        self.with_value(|v| Shape::from_slice(v.dims()))
    }

    /// The rank of the value.
    pub fn ndim(&self) -> usize {
        self.with_value(|v| v.ndim())
    }

    /// The number of elements of the value.
    pub fn numel(&self) -> usize {
        self.with_value(|v| v.numel())
    }

    /// The single element of a one-element value.
    ///
    /// # Panics
    /// If the value does not hold exactly one element.
    #[track_caller]
    pub fn item(&self) -> T {
        self.value_ref().item()
    }

    /// The single element of a one-element value.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the value does not hold exactly one element.
    #[track_caller]
    pub fn try_item(&self) -> crate::Result<T> {
        self.value_ref().try_item()
    }

    /// The values as a `Vec`, row-major.
    pub fn to_vec(&self) -> Vec<T> {
        self.with_value(|v| v.to_vec())
    }

    /// Whether a gradient flows through this value to some leaf.
    pub fn requires_grad(&self) -> bool {
        self.graph.nodes()[self.id as usize].requires_grad
    }

    /// Keeps this intermediate value's gradient in the next backward passes, so that
    /// `grads.wrt(v)` can read it (like PyTorch's `retain_grad()`). Leaves keep theirs
    /// always. Returns `self` for chaining.
    pub fn retain_grad(self) -> Var<'g, T> {
        self.graph.set_retain(self.id);
        self
    }

    /// The same value as a constant: no gradient flows through the result
    /// (like `tensor.detach()`).
    #[track_caller]
    pub fn detach(self) -> Var<'g, T> {
        self.graph.constant(self.value())
    }

    /// Panics (at the caller's line) if `other` is recorded on another graph.
    #[track_caller]
    #[inline]
    pub(crate) fn same_graph(&self, op: &'static str, other: &Var<'g, T>) {
        if !std::ptr::eq(self.graph, other.graph) {
            panic!(
                "{op}: the two values are recorded on different graphs (ids {} and {})",
                self.graph.id(),
                other.graph.id()
            );
        }
    }
}

impl<T: Float> fmt::Debug for Var<'_, T>
where
    Tensor<T>: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Var(%{}, {})", self.id, self.value())
    }
}

impl<T: Float> fmt::Display for Var<'_, T>
where
    Tensor<T>: fmt::Display,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.value(), f)
    }
}

/// Operator impls: `Var ∘ Var` (either side by reference too), `Var ∘ T`, `Var ∘ Tensor`, `Tensor ∘ Var` and `scalar ∘ Var`.
macro_rules! var_operator {
    ($Trait:ident, $method:ident, $Assign:ident, $assign:ident, $var_fn:ident, $scalar_fn:ident, $lhs_scalar_fn:ident) => {
        impl<'g, T: Float> $Trait<Var<'g, T>> for Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'g, T>) -> Var<'g, T> {
                Var::$var_fn(self, rhs)
            }
        }
        impl<'g, T: Float> $Trait<&Var<'g, T>> for Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'g, T>) -> Var<'g, T> {
                Var::$var_fn(self, *rhs)
            }
        }
        impl<'g, T: Float> $Trait<Var<'g, T>> for &Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'g, T>) -> Var<'g, T> {
                Var::$var_fn(*self, rhs)
            }
        }
        impl<'g, T: Float> $Trait<&Var<'g, T>> for &Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: &Var<'g, T>) -> Var<'g, T> {
                Var::$var_fn(*self, *rhs)
            }
        }
        impl<'g, T: Float> $Trait<T> for Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: T) -> Var<'g, T> {
                self.$scalar_fn(rhs)
            }
        }
        impl<'g, T: Float> $Trait<&Tensor<T>> for Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: &Tensor<T>) -> Var<'g, T> {
                Var::$var_fn(self, self.graph.constant(rhs.clone()))
            }
        }
        impl<'g, T: Float> $Trait<Tensor<T>> for Var<'g, T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: Tensor<T>) -> Var<'g, T> {
                Var::$var_fn(self, self.graph.constant(rhs))
            }
        }
        impl<'g, T: Float> $Trait<Var<'g, T>> for &Tensor<T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'g, T>) -> Var<'g, T> {
                Var::$var_fn(rhs.graph.constant(self.clone()), rhs)
            }
        }
        impl<'g, T: Float> $Trait<Var<'g, T>> for Tensor<T> {
            type Output = Var<'g, T>;
            #[track_caller]
            fn $method(self, rhs: Var<'g, T>) -> Var<'g, T> {
                Var::$var_fn(rhs.graph.constant(self), rhs)
            }
        }
        impl<'g> $Trait<Var<'g, f32>> for f32 {
            type Output = Var<'g, f32>;
            #[track_caller]
            fn $method(self, rhs: Var<'g, f32>) -> Var<'g, f32> {
                rhs.$lhs_scalar_fn(self)
            }
        }
        impl<'g> $Trait<Var<'g, f64>> for f64 {
            type Output = Var<'g, f64>;
            #[track_caller]
            fn $method(self, rhs: Var<'g, f64>) -> Var<'g, f64> {
                rhs.$lhs_scalar_fn(self)
            }
        }
        impl<'g, T: Float> $Assign<Var<'g, T>> for Var<'g, T> {
            #[track_caller]
            fn $assign(&mut self, rhs: Var<'g, T>) {
                *self = Var::$var_fn(*self, rhs);
            }
        }
        impl<'g, T: Float> $Assign<T> for Var<'g, T> {
            #[track_caller]
            fn $assign(&mut self, rhs: T) {
                *self = self.$scalar_fn(rhs);
            }
        }
    };
}

var_operator!(Add, add, AddAssign, add_assign, add, add_scalar, add_scalar);
var_operator!(
    Sub,
    sub,
    SubAssign,
    sub_assign,
    sub,
    sub_scalar,
    rsub_scalar
);
var_operator!(Mul, mul, MulAssign, mul_assign, mul, mul_scalar, mul_scalar);
var_operator!(
    Div,
    div,
    DivAssign,
    div_assign,
    div,
    div_scalar,
    rdiv_scalar
);

impl<'g, T: Float> Neg for Var<'g, T> {
    type Output = Var<'g, T>;
    #[track_caller]
    fn neg(self) -> Var<'g, T> {
        Var::neg(self)
    }
}

impl<'g, T: Float> Neg for &Var<'g, T> {
    type Output = Var<'g, T>;
    #[track_caller]
    fn neg(self) -> Var<'g, T> {
        Var::neg(*self)
    }
}

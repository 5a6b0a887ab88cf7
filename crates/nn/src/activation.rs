//! Activations as modules. The functions themselves are methods of `Var` (`x.relu()`,
//! `x.gelu()`...); these wrap them for `Sequential`, plus the two with state: PReLU (a learned
//! slope) and RReLU (a random slope in training).
//!
//! | activation | range | zero-centred | gradient saturates |
//! |---|---|---|---|
//! | sigmoid | (0, 1) | no | for \|x\| ≫ 1 (at most ¼) |
//! | tanh | (−1, 1) | yes | for \|x\| ≫ 1 (at most 1) |
//! | ReLU | [0, ∞) | no | never for x > 0; zero for x < 0 (dead units) |
//! | LeakyReLU(s) | (−∞, ∞) | roughly | never (slope s for x < 0) |
//! | PReLU | (−∞, ∞) | roughly | never (learned slope for x < 0) |
//! | RReLU(l, u) | (−∞, ∞) | roughly | never (random slope in [l, u] for x < 0) |
//! | ELU(α) | (−α, ∞) | roughly (mean activations near 0) | for x ≪ 0 |
//! | SELU | (−1.758, ∞) | self-normalising (mean 0, variance 1) | for x ≪ 0 |
//! | GELU | [−0.17, ∞) | roughly | for x ≪ 0 |
//! | SiLU / swish | [−0.28, ∞) | roughly | for x ≪ 0 |
//! | softplus | (0, ∞) | no | for x ≪ 0 |
//! | softmax | (0, 1), sums to 1 | no | when one entry dominates |
//! | log-softmax | (−∞, 0] | no | for entries far below the maximum |

use rand::Rng;
use tapegrad_core::{Float, ParamKey, ParamRole, ParamStore, Tensor, Var};

use crate::module::{Forward, Module};

/// An activation module from its forward expression: `Name, |x| …` without parameters,
/// `Name(default), |x, a| …` with one `f64` parameter `a` (PyTorch's default given).
macro_rules! simple_activation {
    ($(#[$doc:meta])* $name:ident, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $name;

        impl<T: Float> Module<T> for $name {
            fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, $x: Var<'g, T>) -> Var<'g, T> {
                $body
            }
        }
    };
    // One parameter, an `f64` with PyTorch's default.
    ($(#[$doc:meta])* $name:ident($default:literal), |$x:ident, $a:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $name(pub f64);

        impl Default for $name {
            fn default() -> Self {
                $name($default)
            }
        }

        impl<T: Float> Module<T> for $name {
            fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, $x: Var<'g, T>) -> Var<'g, T> {
                let $a = T::from_f64(self.0);
                $body
            }
        }
    };
}

simple_activation!(
    /// `max(x, 0)`: range [0, ∞), not zero-centred, zero gradient for x < 0 (units can die).
    Relu, |x| x.relu()
);
simple_activation!(
    /// `σ(x) = 1/(1 + e⁻ˣ)`: range (0, 1), not zero-centred, saturates for |x| ≫ 1.
    Sigmoid, |x| x.sigmoid()
);
simple_activation!(
    /// `tanh x`: range (−1, 1), zero-centred, saturates for |x| ≫ 1.
    Tanh, |x| x.tanh()
);
simple_activation!(
    /// SELU (Klambauer et al. 2017): self-normalising with LeCun-normal weights.
    Selu, |x| x.selu()
);
simple_activation!(
    /// SiLU / swish `x·σ(x)`: smooth, non-monotonic, range [−0.28, ∞).
    Silu, |x| x.silu()
);

simple_activation!(
    /// Leaky ReLU: `x` for x > 0, `slope·x` otherwise (PyTorch's default slope is 0.01).
    LeakyRelu(0.01), |x, slope| x.leaky_relu(slope)
);
simple_activation!(
    /// ELU: `x` for x > 0, `α(eˣ − 1)` otherwise; range (−α, ∞).
    Elu(1.0), |x, alpha| x.elu(alpha)
);

/// GELU, exact (`x·Φ(x)`, PyTorch's default) or its tanh approximation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gelu {
    /// Use the tanh approximation (`approximate='tanh'`).
    pub tanh_approximation: bool,
}

impl<T: Float> Module<T> for Gelu {
    fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        if self.tanh_approximation {
            x.gelu_tanh()
        } else {
            x.gelu()
        }
    }
}

/// Softplus `ln(1 + e^{βx})/β`, the identity where `βx > threshold`; range (0, ∞).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Softplus {
    /// β (PyTorch's default 1).
    pub beta: f64,
    /// Threshold (PyTorch's default 20).
    pub threshold: f64,
}

impl Default for Softplus {
    fn default() -> Self {
        Softplus {
            beta: 1.0,
            threshold: 20.0,
        }
    }
}

impl<T: Float> Module<T> for Softplus {
    fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        x.softplus_with(T::from_f64(self.beta), T::from_f64(self.threshold))
    }
}

/// Softmax along a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Softmax(pub isize);

impl<T: Float> Module<T> for Softmax {
    fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        x.softmax(self.0)
    }
}

/// Log-softmax along a dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogSoftmax(pub isize);

impl<T: Float> Module<T> for LogSoftmax {
    fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        x.log_softmax(self.0)
    }
}

/// The slopes `a` shaped to broadcast over axis 1 of an input of rank `ndim`.
fn channel_view<'g, T: Float>(a: Var<'g, T>, ndim: usize) -> Var<'g, T> {
    let c = a.shape()[0];
    if c == 1 || ndim < 2 {
        return a;
    }
    let mut s = vec![c];
    s.extend(std::iter::repeat_n(1, ndim - 2));
    a.reshape(s)
}

/// `x` where `x > 0`, `a·x` elsewhere (the gradient at 0 takes the `a·x` side, as PyTorch).
pub fn prelu<'g, T: Float>(x: Var<'g, T>, a: Var<'g, T>) -> Var<'g, T> {
    let pos = x.gt_scalar(T::zero());
    Var::where_cond(&pos, x, channel_view(a, x.ndim()) * x)
}

/// PReLU (He et al. 2015): a leaky ReLU whose slope is learned, one for all channels or one
/// per channel (axis 1). PyTorch's name: `{name}.weight`, initialised to 0.25.
#[derive(Clone, Debug)]
pub struct PRelu {
    weight: ParamKey,
    channels: usize,
}

impl PRelu {
    /// `num_parameters` slopes (1, or the number of channels), initialised to `init`
    /// (PyTorch: 0.25).
    #[track_caller]
    pub fn new<T: Float>(
        store: &mut ParamStore<T>,
        name: &str,
        num_parameters: usize,
        init: f64,
    ) -> Self {
        let w = Tensor::full([num_parameters], T::from_f64(init));
        PRelu {
            weight: store.insert_with_role(format!("{name}.weight"), w, ParamRole::Scale),
            channels: num_parameters,
        }
    }

    /// The slopes' key.
    pub fn weight(&self) -> ParamKey {
        self.weight
    }
}

impl<T: Float> Module<T> for PRelu {
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let s = x.shape();
        if self.channels > 1 && (s.len() < 2 || s[1] != self.channels) {
            crate::fail(
                "PReLU",
                format!(
                    "{} slopes need inputs with {} channels on axis 1, got shape {:?}",
                    self.channels,
                    self.channels,
                    s.as_slice()
                ),
            );
        }
        prelu(x, f.param(self.weight))
    }

    fn params(&self) -> Vec<ParamKey> {
        vec![self.weight]
    }
}

/// RReLU (Xu et al. 2015): in training, each negative input gets its own slope drawn from
/// U(lower, upper); in evaluation, the mean slope `(lower + upper)/2`. PyTorch's defaults:
/// lower 1/8, upper 1/3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RRelu {
    /// Smallest slope.
    pub lower: f64,
    /// Largest slope.
    pub upper: f64,
}

impl Default for RRelu {
    fn default() -> Self {
        RRelu {
            lower: 1.0 / 8.0,
            upper: 1.0 / 3.0,
        }
    }
}

/// RReLU as a function (see [`RRelu`]).
pub fn rrelu<'g, T: Float, R: Rng + ?Sized>(
    x: Var<'g, T>,
    lower: f64,
    upper: f64,
    training: Option<&mut R>,
) -> Var<'g, T> {
    match training {
        None => x.leaky_relu(T::from_f64((lower + upper) / 2.0)),
        Some(rng) => {
            let slopes = Tensor::rand_uniform(x.shape(), lower, upper, rng);
            let pos = x.gt_scalar(T::zero());
            Var::where_cond(&pos, x, x * slopes)
        }
    }
}

impl<T: Float> Module<T> for RRelu {
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        if f.is_training() {
            let rng = f.rng();
            match rng.as_std() {
                Some(std) => rrelu(x, self.lower, self.upper, Some(std)),
                None => rrelu(x, self.lower, self.upper, Some(rng)),
            }
        } else {
            rrelu::<T, rand::rngs::StdRng>(x, self.lower, self.upper, None)
        }
    }
}

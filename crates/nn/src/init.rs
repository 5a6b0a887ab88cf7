//! Initialisers, seeded, with PyTorch's formulas (`torch.nn.init`).
//!
//! Fans follow PyTorch's weight layout `[out, in, *kernel]`: `fan_in = in · ∏kernel`,
//! `fan_out = out · ∏kernel`.
//!
//! | initialiser | distribution |
//! |---|---|
//! | Xavier/Glorot uniform | U(±a), a = gain·√(6/(fan_in + fan_out)) |
//! | Xavier/Glorot normal | N(0, σ²), σ = gain·√(2/(fan_in + fan_out)) |
//! | Kaiming/He uniform | U(±b), b = gain·√(3/fan) |
//! | Kaiming/He normal | N(0, σ²), σ = gain/√fan |
//! | LeCun uniform / normal | Kaiming with gain 1 and fan_in |
//! | PyTorch's Linear/Conv default | Kaiming uniform with a = √5, i.e. U(±1/√fan_in) |

use rand::Rng;
use tapegrad_core::{Float, Tensor};

/// Which fan scales a Kaiming initialiser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the variance of activations in the forward pass.
    FanIn,
    /// Preserves the variance of gradients in the backward pass.
    FanOut,
}

/// The nonlinearity that follows a layer, for its gain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Nonlinearity {
    /// No nonlinearity (or a convolution): gain 1.
    Linear,
    /// Sigmoid: gain 1.
    Sigmoid,
    /// tanh: gain 5/3.
    Tanh,
    /// ReLU: gain √2.
    Relu,
    /// Leaky ReLU with this negative slope: gain √(2/(1 + slope²)).
    LeakyRelu(f64),
    /// SELU: gain 3/4.
    Selu,
}

/// PyTorch's `calculate_gain`.
pub fn calculate_gain(nl: Nonlinearity) -> f64 {
    match nl {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(a) => (2.0 / (1.0 + a * a)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// How to fill a new tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Init {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// All equal to a constant.
    Constant(f64),
    /// U(low, high).
    Uniform {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
    },
    /// N(mean, std²).
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// Glorot & Bengio (2010), uniform.
    XavierUniform {
        /// Gain (see [`calculate_gain`]).
        gain: f64,
    },
    /// Glorot & Bengio (2010), normal.
    XavierNormal {
        /// Gain (see [`calculate_gain`]).
        gain: f64,
    },
    /// He et al. (2015), uniform.
    KaimingUniform {
        /// Which fan.
        mode: FanMode,
        /// The nonlinearity after the layer.
        nonlinearity: Nonlinearity,
    },
    /// He et al. (2015), normal.
    KaimingNormal {
        /// Which fan.
        mode: FanMode,
        /// The nonlinearity after the layer.
        nonlinearity: Nonlinearity,
    },
    /// Kaiming uniform for ReLU, fan_in.
    HeUniform,
    /// Kaiming normal for ReLU, fan_in: σ = √(2/fan_in).
    HeNormal,
    /// LeCun uniform: U(±√(3/fan_in)).
    LecunUniform,
    /// LeCun normal: σ = 1/√fan_in (pairs with SELU).
    LecunNormal,
    /// PyTorch's default for `Linear` and `Conv2d` weights and biases: U(±1/√fan_in).
    TorchDefault,
}

/// `(fan_in, fan_out)` of a weight of shape `[out, in, *kernel]` (a 1-d shape counts as
/// `[out]` with fan_in 1, as for a bias, whose fan is passed explicitly by the layers).
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape.len() {
        0 => (1, 1),
        1 => (1, shape[0]),
        _ => {
            // Saturating: a shape whose count overflows is refused when its tensor is made;
            // the fans only scale the draw.
            let receptive = shape[2..].iter().fold(1usize, |r, &d| r.saturating_mul(d));
            (
                shape[1].saturating_mul(receptive),
                shape[0].saturating_mul(receptive),
            )
        }
    }
}

impl Init {
    /// A tensor of `shape` from this initialiser, with the fans of `shape`.
    ///
    /// # Panics
    /// As [`Init::tensor_with_fans`].
    #[track_caller]
    pub fn tensor<T: Float, R: Rng + ?Sized>(&self, shape: &[usize], rng: &mut R) -> Tensor<T> {
        self.tensor_with_fans(shape, fans(shape), rng)
    }

    /// A tensor of `shape`, with explicit `(fan_in, fan_out)` (a bias uses its layer's).
    ///
    /// A zero fan, as a layer with no inputs has, gives PyTorch's results: an empty tensor
    /// is returned as it is, and [`Init::TorchDefault`] draws from U(0, 0), so the bias of
    /// `Linear(0, n)` is zeros.
    ///
    /// # Panics
    /// At the caller's line if the shape's element count overflows or the memory cannot be
    /// allocated, or if a scale that divides by a fan (Xavier, Kaiming, He, LeCun) meets a
    /// fan of 0 for a non-empty tensor (PyTorch raises a division by zero there).
    #[track_caller]
    pub fn tensor_with_fans<T: Float, R: Rng + ?Sized>(
        &self,
        shape: &[usize],
        (fan_in, fan_out): (usize, usize),
        rng: &mut R,
    ) -> Tensor<T> {
        let empty = tapegrad_core::shape::checked_numel(shape) == Some(0);
        if empty {
            return Tensor::zeros(shape);
        }
        if *self == Init::TorchDefault && fan_in == 0 {
            return Tensor::zeros(shape);
        }
        let divides_by_fan = !matches!(
            self,
            Init::Zeros
                | Init::Ones
                | Init::Constant(_)
                | Init::Uniform { .. }
                | Init::Normal { .. }
        );
        let fan_used = match *self {
            Init::XavierUniform { .. } | Init::XavierNormal { .. } => {
                fan_in.saturating_add(fan_out)
            }
            Init::KaimingUniform { mode, .. } | Init::KaimingNormal { mode, .. } => match mode {
                FanMode::FanIn => fan_in,
                FanMode::FanOut => fan_out,
            },
            _ => fan_in,
        };
        if divides_by_fan && fan_used == 0 {
            crate::fail(
                "init",
                format!("{self:?}: the fan is 0 for a tensor of shape {shape:?} (its scale divides by it)"),
            );
        }
        let fan = |m: FanMode| match m {
            FanMode::FanIn => fan_in,
            FanMode::FanOut => fan_out,
        } as f64;
        let (fi, sum) = (fan_in as f64, fan_in as f64 + fan_out as f64);
        // The draw as a uniform bound or a normal deviation, then one direct call of the
        // constructor (no closure between it and the caller, so a panic names the caller).
        let (uniform, normal) = match *self {
            Init::Zeros => return Tensor::zeros(shape),
            Init::Ones => return Tensor::ones(shape),
            Init::Constant(c) => return Tensor::full(shape, T::from_f64(c)),
            Init::Uniform { low, high } => return Tensor::rand_uniform(shape, low, high, rng),
            Init::Normal { mean, std } => return Tensor::rand_normal(shape, mean, std, rng),
            Init::XavierUniform { gain } => (Some(gain * (6.0 / sum).sqrt()), None),
            Init::XavierNormal { gain } => (None, Some(gain * (2.0 / sum).sqrt())),
            Init::KaimingUniform { mode, nonlinearity } => (
                Some(calculate_gain(nonlinearity) * (3.0 / fan(mode)).sqrt()),
                None,
            ),
            Init::KaimingNormal { mode, nonlinearity } => {
                (None, Some(calculate_gain(nonlinearity) / fan(mode).sqrt()))
            }
            Init::HeUniform => (Some((6.0 / fi).sqrt()), None),
            Init::HeNormal => (None, Some((2.0 / fi).sqrt())),
            Init::LecunUniform => (Some((3.0 / fi).sqrt()), None),
            Init::LecunNormal => (None, Some(1.0 / fi.sqrt())),
            Init::TorchDefault => (Some(1.0 / fi.sqrt()), None),
        };
        match (uniform, normal) {
            (Some(b), _) => Tensor::rand_uniform(shape, -b, b, rng),
            (_, std) => Tensor::rand_normal(shape, 0.0, std.unwrap_or(0.0), rng),
        }
    }

    /// The variance this initialiser gives to each element (for tests and reports).
    pub fn variance(&self, (fan_in, fan_out): (usize, usize)) -> f64 {
        let (fi, fo) = (fan_in as f64, fan_out as f64);
        let fan = |m: FanMode| if m == FanMode::FanIn { fi } else { fo };
        match *self {
            Init::Zeros | Init::Ones | Init::Constant(_) => 0.0,
            Init::Uniform { low, high } => (high - low).powi(2) / 12.0,
            Init::Normal { std, .. } => std * std,
            Init::XavierUniform { gain } | Init::XavierNormal { gain } => {
                gain * gain * 2.0 / (fi + fo)
            }
            Init::KaimingUniform { mode, nonlinearity }
            | Init::KaimingNormal { mode, nonlinearity } => {
                calculate_gain(nonlinearity).powi(2) / fan(mode)
            }
            Init::HeUniform | Init::HeNormal => 2.0 / fi,
            Init::LecunUniform | Init::LecunNormal => 1.0 / fi,
            Init::TorchDefault => 1.0 / (3.0 * fi),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapegrad_core::seeded_rng;

    #[test]
    fn empirical_variance_matches_each_formula() {
        let shape = [400, 250];
        let inits = [
            Init::Uniform {
                low: -0.3,
                high: 0.5,
            },
            Init::Normal {
                mean: 1.0,
                std: 0.2,
            },
            Init::XavierUniform { gain: 1.0 },
            Init::XavierNormal {
                gain: calculate_gain(Nonlinearity::Tanh),
            },
            Init::KaimingUniform {
                mode: FanMode::FanOut,
                nonlinearity: Nonlinearity::LeakyRelu(0.2),
            },
            Init::KaimingNormal {
                mode: FanMode::FanIn,
                nonlinearity: Nonlinearity::Selu,
            },
            Init::HeUniform,
            Init::HeNormal,
            Init::LecunUniform,
            Init::LecunNormal,
            Init::TorchDefault,
        ];
        let mut rng = seeded_rng(3);
        for init in inits {
            let t: Tensor<f64> = init.tensor(&shape, &mut rng);
            let v = t.as_slice();
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
            let want = init.variance(fans(&shape));
            // 100,000 samples: the relative standard error of a variance is about √(2/n) ≈ 0.45%.
            assert!(
                (var - want).abs() / want < 0.03,
                "{init:?}: variance {var} vs {want}"
            );
        }
        assert_eq!(fans(&[8, 3, 5, 5]), (75, 200));
        assert!(
            (calculate_gain(Nonlinearity::LeakyRelu(0.01)) - (2.0 / 1.0001f64).sqrt()).abs()
                < 1e-15
        );
        let c: Tensor<f32> = Init::Constant(0.25).tensor(&[3], &mut rng);
        assert_eq!(c.to_vec(), vec![0.25; 3]);
    }

    #[test]
    fn seeded_initialisation_is_reproducible() {
        let a: Tensor<f32> = Init::HeNormal.tensor(&[4, 4], &mut seeded_rng(9));
        let b: Tensor<f32> = Init::HeNormal.tensor(&[4, 4], &mut seeded_rng(9));
        assert_eq!(a, b);
    }
}

//! Constructors of float tensors — zeros, ones, ranges, the identity, random draws — and
//! casts and finiteness checks.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal, StandardUniform};

use super::{Storage, Tensor};
use crate::error::{arg_error, ok, Result};
use crate::shape::{IntoShape, Shape};
use crate::Float;

impl<T: Float> Tensor<T> {
    /// A tensor of zeros.
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated (see
    /// [`Tensor::try_zeros`]).
    #[track_caller]
    pub fn zeros(shape: impl IntoShape) -> Self {
        ok(Self::build(
            "zeros",
            shape.into_shape(),
            Storage::fill_with(T::zero()),
        ))
    }

    /// A tensor of zeros.
    ///
    /// ```
    /// use tapegrad_core::Tensor;
    /// assert!(Tensor::<f32>::try_zeros([1 << 62]).is_err()); // 2^64 bytes
    /// assert!(Tensor::<f32>::try_zeros([1 << 32, 1 << 32]).is_err()); // 2^64 elements
    /// assert_eq!(Tensor::<f32>::try_zeros([2, 0]).unwrap().numel(), 0);
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if the shape's element count overflows `isize` or its bytes exceed
    /// one allocation; [`crate::Error::Alloc`] if the allocator refuses the memory.
    #[track_caller]
    pub fn try_zeros(shape: impl IntoShape) -> Result<Self> {
        Self::build("zeros", shape.into_shape(), Storage::fill_with(T::zero()))
    }

    /// A tensor of ones.
    ///
    /// # Panics
    /// As [`Tensor::zeros`].
    #[track_caller]
    pub fn ones(shape: impl IntoShape) -> Self {
        ok(Self::build(
            "ones",
            shape.into_shape(),
            Storage::fill_with(T::one()),
        ))
    }

    /// A tensor of ones.
    ///
    /// # Errors
    /// As [`Tensor::try_zeros`].
    #[track_caller]
    pub fn try_ones(shape: impl IntoShape) -> Result<Self> {
        Self::build("ones", shape.into_shape(), Storage::fill_with(T::one()))
    }

    /// Zeros of the same shape as `self`.
    #[track_caller]
    pub fn zeros_like(&self) -> Self {
        Self::zeros(self.shape_owned())
    }

    /// Ones of the same shape as `self`.
    #[track_caller]
    pub fn ones_like(&self) -> Self {
        Self::ones(self.shape_owned())
    }

    /// `[start, start + step, ...]` up to but excluding `end`, as a 1-d tensor
    /// (like `torch.arange`).
    ///
    /// # Panics
    /// As [`Tensor::try_arange`].
    #[track_caller]
    pub fn arange(start: f64, end: f64, step: f64) -> Self {
        ok(Self::try_arange(start, end, step))
    }

    /// `[start, start + step, ...]` up to but excluding `end` (see [`Tensor::arange`]).
    ///
    /// ```
    /// use tapegrad_core::Tensor;
    /// assert_eq!(Tensor::<f64>::arange(1.0, 0.0, -0.5).to_vec(), vec![1.0, 0.5]);
    /// assert!(Tensor::<f32>::try_arange(0.0, 1e30, 1e-30).is_err()); // 1e60 elements
    /// assert!(Tensor::<f32>::try_arange(0.0, 1.0, -1.0).is_err()); // the step points away
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if `step` is zero or a bound or the step is not finite, if `step`
    /// points away from `end` (as in PyTorch), or if the count of elements does not fit a
    /// tensor; [`crate::Error::Alloc`] if the memory cannot be allocated.
    #[track_caller]
    pub fn try_arange(start: f64, end: f64, step: f64) -> Result<Self> {
        if step == 0.0 || !step.is_finite() || !start.is_finite() || !end.is_finite() {
            return Err(arg_error(
                "arange",
                format!(
                    "the bounds must be finite and the step finite and non-zero, got {start}, {end}, {step}"
                ),
            ));
        }
        if (step > 0.0 && end < start) || (step < 0.0 && end > start) {
            return Err(arg_error(
                "arange",
                format!("the step {step} points away from {end}, starting at {start}"),
            ));
        }
        let count = ((end - start) / step).ceil();
        // Also refuses a count so large that `start + i·step` repeats values.
        if count.is_nan() || count >= (1u64 << 53) as f64 {
            return Err(arg_error(
                "arange",
                format!("{start}..{end} by {step} has {count:e} elements, too many for a tensor"),
            ));
        }
        Self::try_from_fn_as("arange", Shape::from_slice(&[count as usize]), |i| {
            T::from_f64(start + i as f64 * step)
        })
    }

    /// `n` evenly spaced values from `start` to `end` inclusive (like `torch.linspace`).
    ///
    /// # Panics
    /// If `n` elements cannot be allocated.
    #[track_caller]
    pub fn linspace(start: f64, end: f64, n: usize) -> Self {
        let step = if n > 1 {
            (end - start) / (n - 1) as f64
        } else {
            0.0
        };
        ok(Self::try_from_fn_as(
            "linspace",
            Shape::from_slice(&[n]),
            |i| {
                T::from_f64(if i + 1 == n && n > 1 {
                    end
                } else {
                    start + i as f64 * step
                })
            },
        ))
    }

    /// The `n × n` identity matrix.
    ///
    /// # Panics
    /// If `n²` overflows or cannot be allocated.
    #[track_caller]
    pub fn eye(n: usize) -> Self {
        ok(Self::try_from_fn_as(
            "eye",
            Shape::from_slice(&[n, n]),
            |i| {
                if i / n == i % n {
                    T::one()
                } else {
                    T::zero()
                }
            },
        ))
    }

    /// Independent samples from the uniform distribution on `[low, high)`.
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated.
    #[track_caller]
    pub fn rand_uniform<R: Rng + ?Sized>(
        shape: impl IntoShape,
        low: f64,
        high: f64,
        rng: &mut R,
    ) -> Self {
        ok(Self::try_from_fn_as(
            "rand_uniform",
            shape.into_shape(),
            |_| {
                let u: f64 = StandardUniform.sample(rng);
                T::from_f64(low + (high - low) * u)
            },
        ))
    }

    /// Independent samples from the normal distribution with the given mean and standard
    /// deviation.
    ///
    /// # Panics
    /// If the shape's element count overflows or the memory cannot be allocated.
    #[track_caller]
    pub fn rand_normal<R: Rng + ?Sized>(
        shape: impl IntoShape,
        mean: f64,
        std: f64,
        rng: &mut R,
    ) -> Self {
        ok(Self::try_from_fn_as(
            "rand_normal",
            shape.into_shape(),
            |_| {
                let z: f64 = StandardNormal.sample(rng);
                T::from_f64(mean + std * z)
            },
        ))
    }

    /// The same values in another float type (`f32` ↔ `f64`; rounding to nearest).
    pub fn cast<U: Float>(&self) -> Tensor<U> {
        self.map(|v| U::from_f64(v.as_f64()))
    }

    /// Whether every element is finite (no NaN, no ±∞).
    pub fn all_finite(&self) -> bool {
        self.as_slice().iter().all(|v| v.is_finite())
    }

    /// The flat position and value of the first non-finite element, if any.
    pub fn first_non_finite(&self) -> Option<(usize, T)> {
        self.as_slice()
            .iter()
            .position(|v| !v.is_finite())
            .map(|i| (i, self.as_slice()[i]))
    }
}

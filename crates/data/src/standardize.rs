//! Standardisation fitted on the training part only: `(x − mean)/std` per feature, with the
//! mean and the (population) standard deviation of the data it was fitted on.

use tapegrad_core::{Error, Float, Result, Tensor};

/// Per-feature mean and standard deviation, from the data given to [`Standardizer::fit`].
///
/// Fit it on the training part, then transform every part with it: the validation and test
/// parts must not inform the scaling (that leaks their statistics into training).
///
/// ```
/// use tapegrad_core::Tensor;
/// use tapegrad_data::Standardizer;
/// let train = Tensor::<f64>::from_vec(vec![1.0, 10.0, 3.0, 30.0], [2, 2]);
/// let s = Standardizer::fit(&train).unwrap();
/// assert_eq!(s.transform(&train).unwrap().to_vec(), vec![-1.0, -1.0, 1.0, 1.0]);
/// let test = Tensor::from_vec(vec![2.0, 20.0], [1, 2]);
/// assert_eq!(s.transform(&test).unwrap().to_vec(), vec![0.0, 0.0]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer<T: Float> {
    mean: Tensor<T>,
    std: Tensor<T>,
}

impl<T: Float> Standardizer<T> {
    /// Fits on `x` (`[N, ...]`, `N ≥ 1`): statistics over the first axis. A feature that
    /// does not vary gets a deviation of 1 (it is centred, not scaled).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is 0-d or has no rows.
    #[track_caller]
    pub fn fit(x: &Tensor<T>) -> Result<Self> {
        if x.ndim() == 0 || x.dims()[0] == 0 {
            return Err(Error::shape(
                "Standardizer::fit",
                &[x.dims()],
                "needs at least one row",
            ));
        }
        let mean = x.try_mean_dim(0, true)?;
        let std = x.try_var_dim(0, false, true)?.sqrt();
        let std = std.map(|s| if s > T::zero() { s } else { T::one() });
        Ok(Standardizer { mean, std })
    }

    /// `(x − mean)/std`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x`'s rows have another shape than the fitted data's.
    #[track_caller]
    pub fn transform(&self, x: &Tensor<T>) -> Result<Tensor<T>> {
        if x.ndim() != self.mean.ndim() || x.dims()[1..] != self.mean.dims()[1..] {
            return Err(Error::shape(
                "Standardizer::transform",
                &[x.dims(), self.mean.dims()],
                "rows must have the fitted data's shape",
            ));
        }
        x.try_sub(&self.mean)?.try_div(&self.std)
    }

    /// The per-feature means (`[1, ...]`).
    pub fn mean(&self) -> &Tensor<T> {
        &self.mean
    }

    /// The per-feature deviations (`[1, ...]`).
    pub fn std(&self) -> &Tensor<T> {
        &self.std
    }
}

//! Comparing tensors within tolerances, for tests: `|actual − expected| ≤ atol + rtol·|expected|`
//! element by element (NaN never matches), with a report naming the worst element.

use std::fmt;

use crate::tensor::{unravel, Tensor};
use crate::Float;

/// Why two tensors are not close: the shapes, or the worst element.
#[derive(Clone, Debug, PartialEq)]
pub struct CloseError {
    /// The shapes, when they differ.
    pub shapes: Option<(Vec<usize>, Vec<usize>)>,
    /// The multi-index of the worst element.
    pub index: Vec<usize>,
    /// The actual value there.
    pub actual: f64,
    /// The expected value there.
    pub expected: f64,
    /// `|actual − expected|`.
    pub error: f64,
    /// `atol + rtol·|expected|`.
    pub tolerance: f64,
    /// How many elements are out of tolerance.
    pub mismatched: usize,
    /// How many elements were compared.
    pub total: usize,
}

impl fmt::Display for CloseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((a, e)) = &self.shapes {
            return write!(f, "tensors differ in shape: actual {a:?}, expected {e:?}");
        }
        write!(
            f,
            "tensors are not close: {} of {} elements differ; worst at {:?}: actual {:e}, expected {:e}, |diff| {:.3e} > tolerance {:.3e}",
            self.mismatched, self.total, self.index, self.actual, self.expected, self.error, self.tolerance
        )
    }
}

impl std::error::Error for CloseError {}

/// Compares element-wise: `Ok` when `|a − e| ≤ atol + rtol·|e|` everywhere.
///
/// # Errors
/// A [`CloseError`] naming the worst element (the largest error relative to its tolerance)
/// and how many are out of tolerance.
pub fn check_close<T: Float>(
    actual: &Tensor<T>,
    expected: &Tensor<T>,
    atol: f64,
    rtol: f64,
) -> Result<(), CloseError> {
    if actual.dims() != expected.dims() {
        return Err(CloseError {
            shapes: Some((actual.dims().to_vec(), expected.dims().to_vec())),
            index: vec![],
            actual: f64::NAN,
            expected: f64::NAN,
            error: f64::NAN,
            tolerance: f64::NAN,
            mismatched: 0,
            total: 0,
        });
    }
    let mut worst: Option<(usize, f64)> = None;
    let mut mismatched = 0;
    for (i, (&a, &e)) in actual
        .as_slice()
        .iter()
        .zip(expected.as_slice())
        .enumerate()
    {
        let (a, e) = (a.as_f64(), e.as_f64());
        let tol = atol + rtol * e.abs();
        let err = (a - e).abs();
        let ok = err <= tol || (a == e); // a == e covers equal infinities
        if !ok {
            mismatched += 1;
            let ratio = if err.is_nan() {
                f64::INFINITY
            } else {
                err / tol
            };
            if worst.is_none_or(|(_, r)| ratio > r) {
                worst = Some((i, ratio));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, _)) => {
            let (a, e) = (
                actual.as_slice()[i].as_f64(),
                expected.as_slice()[i].as_f64(),
            );
            Err(CloseError {
                shapes: None,
                index: unravel(i, actual.dims()).to_vec(),
                actual: a,
                expected: e,
                error: (a - e).abs(),
                tolerance: atol + rtol * e.abs(),
                mismatched,
                total: actual.numel(),
            })
        }
    }
}

/// Asserts that two tensors are close (see [`check_close`]).
///
/// ```
/// use tapegrad_core::{assert_close, Tensor};
/// let a = Tensor::from_vec(vec![1.0, 2.0], [2]);
/// assert_close(&a, &Tensor::from_vec(vec![1.0, 2.0 + 1e-9], [2]), 1e-8, 0.0);
/// ```
///
/// # Panics
/// With the report of [`CloseError`] when they are not.
#[track_caller]
pub fn assert_close<T: Float>(actual: &Tensor<T>, expected: &Tensor<T>, atol: f64, rtol: f64) {
    if let Err(e) = check_close(actual, expected, atol, rtol) {
        panic!("{e}");
    }
}

impl<T: Float> Tensor<T> {
    /// Whether the shapes are equal and `|self − other| ≤ atol + rtol·|other|` everywhere.
    pub fn allclose(&self, other: &Tensor<T>, atol: f64, rtol: f64) -> bool {
        check_close(self, other, atol, rtol).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_the_worst_element() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], [2, 2]);
        let b = Tensor::from_vec(vec![1.0, 2.1, 3.0, 5.0], [2, 2]);
        let e = check_close(&a, &b, 1e-3, 0.0).unwrap_err();
        assert_eq!(e.index, vec![1, 1]);
        assert_eq!(e.mismatched, 2);
        assert!(
            e.to_string()
                .contains("2 of 4 elements differ; worst at [1, 1]"),
            "{e}"
        );
        assert!(a.allclose(&b, 1.0, 0.0));
        assert!(!a.allclose(&Tensor::zeros([4]), 10.0, 0.0));
        let n = Tensor::from_vec(vec![f64::NAN], [1]);
        assert!(!n.allclose(&n, 1.0, 1.0));
    }
}

//! tapegrad-check: gradient checking for your own test suites.
//!
//! Add it as a dev-dependency and check your composite functions and custom ops the way
//! tapegrad checks its own:
//!
//! - [`gradcheck`] and [`gradgradcheck`]: analytic gradients (first and second order)
//!   against central finite differences in f64, contracted with a random upstream gradient,
//!   with PyTorch's default tolerances; a failure names the input, the element, both values
//!   and the tolerance.
//! - [`gradcheck_directional`] and [`gradgradcheck_directional`]: the same along one
//!   random direction, for inputs too large to check element by element.
//! - [`assert_close`] / [`check_close`]: tensors within `atol + rtol·|expected|`.
//! - `reference` (feature `reference`): tensors stored as JSON, as the conformance tests
//!   read PyTorch's reference values.
//! - [`strategies`]: proptest strategies for shapes (0-d, size-1, broadcastable pairs,
//!   matmul pairs) and for tensors within a domain that keeps away from kinks.
//!
//! ```
//! use proptest::prelude::*;
//! use tapegrad_check::strategies::{shape, tensor_of_shape, Domain};
//! use tapegrad_check::{gradcheck, GradcheckConfig};
//!
//! proptest! {
//!     #![proptest_config(ProptestConfig::with_cases(8))]
//!     // (in a test file, put #[test] on this function)
//!     fn softsign_gradient(x in shape(0..=2, 3).prop_flat_map(|s| tensor_of_shape(s, Domain::new(-3.0, 3.0)))) {
//!         // x / (1 + |x|), with |x| kept away from its kink at 0 by the domain's default margin
//!         let r = gradcheck(|_, v| v[0] / (v[0].abs() + 1.0), &[x], &GradcheckConfig::default());
//!         prop_assert!(r.is_ok(), "{}", r.unwrap_err());
//!     }
//! }
//! # softsign_gradient();
//! ```
#![warn(missing_docs)]

#[cfg(feature = "reference")]
pub mod reference;
pub mod strategies;

pub use tapegrad_core::gradcheck::{
    gradcheck, gradcheck_directional, gradgradcheck, gradgradcheck_directional, GradcheckConfig,
    GradcheckFailure, GradcheckReport,
};
pub use tapegrad_core::{assert_close, check_close, CloseError};

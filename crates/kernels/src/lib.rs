//! Numeric kernels over plain slices for tapegrad.
//!
//! Nothing here knows about tensors, tapes or gradients: every function takes slices, shapes
//! and strides, so each kernel can be tested against a naive loop and optimised on its own.
//!
//! - [`Float`]: the element trait (implemented for `f32` and `f64`).
//! - [`strided`]: the one n-d walk that serves broadcasting, reductions, permutes and slices.
//! - [`gemm`]: `C ← α·op(A)·op(B) + β·C` with arbitrary strides.
//! - [`conv`]: 2-d convolution (im2col, direct, Winograd), forward and backward.
//! - [`math`]: vectorised f32 `exp`, `log`, `tanh`, `sigmoid` with stated ulp bounds.
//! - [`reduce`] and [`softmax`]: reductions and the numerically stable softmax family.
//! - [`normalize`]: the fused normalisation of batch and layer norm, forward and backward.
//! - [`elementwise`]: maps over one, two or three slices, vectorised, split over threads
//!   in fixed pieces.
//! - [`simd`]: run-time AVX2/FMA dispatch.
//! - [`threads`]: the thread pool (the caller takes part; results never depend on the
//!   thread count).
#![warn(missing_docs)]

pub mod conv;
pub mod elementwise;
mod float;
pub mod gemm;
pub mod math;
pub mod normalize;
pub mod reduce;
pub mod simd;
pub mod softmax;
pub mod strided;
pub mod threads;

pub use float::Float;

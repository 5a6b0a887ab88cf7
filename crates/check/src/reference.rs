//! Reference values stored as JSON, the way tapegrad's conformance tests read the values
//! computed with PyTorch: a tensor is `{"shape": [..], "data": [..]}`, its data the
//! row-major flattening (other keys, such as `dtype`, are ignored).
//!
//! Enabled by the `reference` feature.
//!
//! ```
//! use tapegrad_check::reference::tensor_f64;
//! let v = serde_json::json!({"shape": [2, 2], "dtype": "f64", "data": [1.0, 2.0, 3.0, 4.0]});
//! assert_eq!(tensor_f64(&v).get(&[1, 0]), 3.0);
//! ```

use serde_json::Value;
use tapegrad_core::{Element, Tensor};

/// The tensor stored in `v`, each element read by `elem`.
///
/// # Panics
/// If `v` has no array `shape` of sizes and array `data` holding as many elements as the
/// shape, or if `elem` panics on one of them.
#[track_caller]
pub fn tensor<E: Element>(v: &Value, elem: impl Fn(&Value) -> E) -> Tensor<E> {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .expect("a stored tensor has an array `shape`")
        .iter()
        .map(|d| d.as_u64().expect("sizes are non-negative integers") as usize)
        .collect();
    let data = v["data"]
        .as_array()
        .expect("a stored tensor has an array `data`")
        .iter()
        .map(elem)
        .collect();
    Tensor::from_vec(data, shape)
}

/// An f64 tensor stored in `v`.
#[track_caller]
pub fn tensor_f64(v: &Value) -> Tensor<f64> {
    tensor(v, |x| x.as_f64().expect("a number"))
}

/// An f32 tensor stored in `v` (each number rounded from its f64 value).
#[track_caller]
pub fn tensor_f32(v: &Value) -> Tensor<f32> {
    tensor(v, |x| x.as_f64().expect("a number") as f32)
}

/// A tensor of indices stored in `v`.
#[track_caller]
pub fn tensor_usize(v: &Value) -> Tensor<usize> {
    tensor(v, |x| x.as_u64().expect("a non-negative integer") as usize)
}

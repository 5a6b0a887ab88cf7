//! Printing tensors the way PyTorch does.
//!
//! ```text
//! tensor([[ 0.1000, -1.2000],
//!         [ 3.0000,  4.0000]], dtype=f64)
//! ```
//! All elements share one format (integers as `1.`, fixed with four decimals, or scientific
//! when the magnitudes span more than three orders or leave `[1e-4, 1e8]`), padded to one
//! width. Tensors of more than 1000 elements are summarised: three items at each end of
//! every long dimension, with `...` between.

use std::fmt;

use super::{Element, Tensor};

const THRESHOLD: usize = 1000;
const EDGE: usize = 3;

/// How the elements of one tensor are turned into text (one decision per tensor).
pub trait ElementFormat: Element {
    /// The text of each value, all in one format.
    fn format_all(values: &[Self]) -> Vec<String>;
    /// What follows the closing bracket, e.g. `", dtype=f64"`.
    fn dtype_suffix() -> &'static str {
        ""
    }
}

fn float_strings(values: &[f64]) -> Vec<String> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let nonzero: Vec<f64> = finite
        .iter()
        .map(|v| v.abs())
        .filter(|&v| v > 0.0)
        .collect();
    let int_mode = finite.iter().all(|v| v.fract() == 0.0);
    let sci = if int_mode {
        nonzero.iter().any(|&v| v > 1e8)
    } else if nonzero.is_empty() {
        false
    } else {
        let max = nonzero.iter().cloned().fold(0.0, f64::max);
        let min = nonzero.iter().cloned().fold(f64::INFINITY, f64::min);
        max / min > 1000.0 || max > 1e8 || min < 1e-4
    };
    values
        .iter()
        .map(|&v| {
            if v.is_nan() {
                "nan".to_string()
            } else if v.is_infinite() {
                if v > 0.0 { "inf" } else { "-inf" }.to_string()
            } else if sci {
                // Rust prints `1.0000e-5`; PyTorch prints `1.0000e-05`.
                let s = format!("{v:.4e}");
                let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
                let (sign, digits) = match exp.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', exp),
                };
                format!("{mant}e{sign}{digits:0>2}")
            } else if int_mode {
                format!("{v:.0}.")
            } else {
                format!("{v:.4}")
            }
        })
        .collect()
}

impl ElementFormat for f32 {
    fn format_all(values: &[Self]) -> Vec<String> {
        float_strings(&values.iter().map(|&v| v as f64).collect::<Vec<_>>())
    }
}
impl ElementFormat for f64 {
    fn format_all(values: &[Self]) -> Vec<String> {
        float_strings(values)
    }
    fn dtype_suffix() -> &'static str {
        ", dtype=f64"
    }
}
impl ElementFormat for bool {
    fn format_all(values: &[Self]) -> Vec<String> {
        values
            .iter()
            .map(|&b| if b { "True" } else { "False" }.to_string())
            .collect()
    }
    fn dtype_suffix() -> &'static str {
        ", dtype=bool"
    }
}
macro_rules! int_format {
    ($($t:ty => $name:literal),*) => {$(
        impl ElementFormat for $t {
            fn format_all(values: &[Self]) -> Vec<String> {
                values.iter().map(|v| v.to_string()).collect()
            }
            fn dtype_suffix() -> &'static str {
                $name
            }
        }
    )*};
}
int_format!(usize => ", dtype=usize", i64 => "", i32 => ", dtype=i32", u32 => ", dtype=u32", u8 => ", dtype=u8");

/// The indices shown along a dimension of size `n`.
fn shown(n: usize, summarise: bool) -> Vec<Option<usize>> {
    if summarise && n > 2 * EDGE {
        (0..EDGE)
            .map(Some)
            .chain([None])
            .chain((n - EDGE..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    }
}

impl<E: ElementFormat> Tensor<E> {
    fn write_pretty(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape = self.dims();
        let data = self.as_slice();
        if data.is_empty() {
            f.write_str("tensor([]")?;
            if shape.len() != 1 {
                write!(f, ", size={:?}", shape)?;
            }
            return write!(f, "{})", E::dtype_suffix());
        }
        let summarise = data.len() > THRESHOLD;
        // Flat offsets of the shown elements, in print order, to decide one format.
        let mut offsets = Vec::new();
        collect(shape, 0, 0, summarise, &mut offsets);
        let texts = E::format_all(&offsets.iter().map(|&o| data[o]).collect::<Vec<_>>());
        let width = texts.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut it = texts.into_iter();
        f.write_str("tensor(")?;
        if shape.is_empty() {
            f.write_str(&it.next().unwrap_or_default())?;
        } else {
            write_dim(f, shape, 0, summarise, width, &mut it, "tensor(".len())?;
        }
        write!(f, "{})", E::dtype_suffix())
    }
}

fn collect(shape: &[usize], dim: usize, base: usize, summarise: bool, out: &mut Vec<usize>) {
    if dim == shape.len() {
        out.push(base);
        return;
    }
    let stride: usize = shape[dim + 1..].iter().product();
    for i in shown(shape[dim], summarise).into_iter().flatten() {
        collect(shape, dim + 1, base + i * stride, summarise, out);
    }
}

fn write_dim(
    f: &mut fmt::Formatter<'_>,
    shape: &[usize],
    dim: usize,
    summarise: bool,
    width: usize,
    texts: &mut impl Iterator<Item = String>,
    indent: usize,
) -> fmt::Result {
    f.write_str("[")?;
    let items = shown(shape[dim], summarise);
    let last = dim + 1 == shape.len();
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            if last {
                f.write_str(", ")?;
            } else {
                f.write_str(",")?;
                for _ in 0..(shape.len() - dim - 1) {
                    f.write_str("\n")?;
                }
                write!(f, "{:indent$}", "", indent = indent + dim + 1)?;
            }
        }
        match item {
            None => f.write_str(if last { " ..." } else { "..." })?,
            Some(_) if last => write!(f, "{:>width$}", texts.next().unwrap_or_default())?,
            Some(_) => write_dim(f, shape, dim + 1, summarise, width, texts, indent)?,
        }
    }
    f.write_str("]")
}

impl<E: ElementFormat> fmt::Display for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_pretty(f)
    }
}

impl<E: ElementFormat> fmt::Debug for Tensor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_pretty(f)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn prints_like_pytorch() {
        let t = Tensor::<f32>::from_vec(vec![0.1, -1.2, 3.0, 4.0], [2, 2]);
        assert_eq!(
            t.to_string(),
            "tensor([[ 0.1000, -1.2000],\n        [ 3.0000,  4.0000]])"
        );
        let t = Tensor::<f64>::from_vec(vec![1.0, 2.0, 3.0], [3]);
        assert_eq!(t.to_string(), "tensor([1., 2., 3.], dtype=f64)");
        assert_eq!(Tensor::<f32>::scalar(0.5).to_string(), "tensor(0.5000)");
        let t = Tensor::<f32>::from_vec(vec![1e-6, 1.0], [2]);
        assert_eq!(t.to_string(), "tensor([1.0000e-06, 1.0000e+00])");
        let t = Tensor::<bool>::from_vec(vec![true, false], [2]);
        assert_eq!(t.to_string(), "tensor([ True, False], dtype=bool)");
        let t = Tensor::<f32>::from_vec(vec![f32::NAN, f32::NEG_INFINITY, 1.5], [3]);
        assert_eq!(t.to_string(), "tensor([   nan,   -inf, 1.5000])");
    }

    #[test]
    fn three_d_and_summarised() {
        let t = Tensor::<f32>::from_fn([2, 1, 2], |i| i as f32);
        assert_eq!(t.to_string(), "tensor([[[0., 1.]],\n\n        [[2., 3.]]])");
        let big = Tensor::<f32>::from_fn([2000], |i| i as f32);
        assert_eq!(
            big.to_string(),
            "tensor([   0.,    1.,    2.,  ..., 1997., 1998., 1999.])"
        );
        let m = Tensor::<f32>::from_fn([100, 100], |i| (i % 7) as f32);
        let s = m.to_string();
        assert!(s.contains("..."), "{s}");
        assert_eq!(s.lines().count(), 7);
    }
}

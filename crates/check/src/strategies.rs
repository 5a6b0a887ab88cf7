//! proptest strategies for shapes and tensors.
//!
//! Shapes cover the cases that break gradient code: 0-d tensors, size-1 dimensions, and
//! pairs that broadcast in every way NumPy allows (missing leading dimensions, 1s on either
//! side). Tensors are drawn within a [`Domain`] that can keep values away from kinks (ReLU's
//! 0, a clamp's bounds) and apart from each other (so maxima have no ties), which is what a
//! finite-difference check needs.

use proptest::prelude::*;
use tapegrad_core::{Shape, Tensor};

/// Where tensor values are drawn from.
#[derive(Clone, Debug, PartialEq)]
pub struct Domain {
    /// Smallest value.
    pub low: f64,
    /// Largest value.
    pub high: f64,
    /// Points to keep away from (kinks).
    pub avoid: Vec<f64>,
    /// How far to keep away from them.
    pub margin: f64,
    /// Minimum distance between any two values of a tensor (0: no constraint).
    pub min_gap: f64,
}

impl Domain {
    /// Values in `[low, high]`, no constraint.
    pub fn new(low: f64, high: f64) -> Self {
        Domain {
            low,
            high,
            avoid: vec![],
            margin: 0.05,
            min_gap: 0.0,
        }
    }

    /// Keeps values at least `margin` (default 0.05) away from each point of `kinks`.
    pub fn avoiding(mut self, kinks: &[f64]) -> Self {
        self.avoid.extend_from_slice(kinks);
        self
    }

    /// Sets the distance kept from kinks.
    pub fn with_margin(mut self, margin: f64) -> Self {
        self.margin = margin;
        self
    }

    /// Keeps every two values of a tensor at least `gap` apart (no ties for max/min).
    pub fn distinct(mut self, gap: f64) -> Self {
        self.min_gap = gap;
        self
    }

    /// Moves `v` out of every kink's neighbourhood (to the nearer side that stays in range).
    fn repair(&self, mut v: f64) -> f64 {
        for &k in &self.avoid {
            if (v - k).abs() < self.margin {
                let up = k + self.margin;
                let down = k - self.margin;
                v = if (v >= k && up <= self.high) || down < self.low {
                    up
                } else {
                    down
                };
            }
        }
        v
    }

    /// Moves `v` upwards out of every kink's neighbourhood.
    fn repair_up(&self, mut v: f64) -> f64 {
        let mut kinks = self.avoid.clone();
        kinks.sort_by(f64::total_cmp);
        for k in kinks {
            if (v - k).abs() < self.margin {
                v = k + self.margin;
            }
        }
        v
    }

    /// Spreads values so that sorted neighbours are at least `min_gap` apart (moving values
    /// upwards, so the largest may end slightly above `high`).
    fn spread(&self, values: &mut [f64]) {
        if self.min_gap <= 0.0 || values.len() < 2 {
            return;
        }
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
        for w in 1..order.len() {
            let (prev, cur) = (values[order[w - 1]], values[order[w]]);
            if cur - prev < self.min_gap {
                values[order[w]] = self.repair_up(prev + self.min_gap);
            }
        }
    }
}

/// Shapes with a rank in `ranks` and every dimension in `1..=max_dim` (so rank 0 gives 0-d
/// tensors and size-1 dimensions occur often).
pub fn shape(
    ranks: std::ops::RangeInclusive<usize>,
    max_dim: usize,
) -> impl Strategy<Value = Shape> {
    ranks
        .prop_flat_map(move |r| prop::collection::vec(1..=max_dim, r))
        .prop_map(Shape::from_vec)
}

/// Two shapes that broadcast together: a full shape, and a second one that may drop leading
/// dimensions and set dimensions to 1 — on either side of the pair.
pub fn broadcastable_pair(
    ranks: std::ops::RangeInclusive<usize>,
    max_dim: usize,
) -> impl Strategy<Value = (Shape, Shape)> {
    shape(ranks, max_dim)
        .prop_flat_map(|full| {
            let r = full.len();
            (
                Just(full),
                0..=r,
                prop::collection::vec(any::<bool>(), r),
                any::<bool>(),
            )
        })
        .prop_map(|(full, keep, ones, swap)| {
            let lead = full.len() - keep;
            let other: Shape = full[lead..]
                .iter()
                .zip(&ones[lead..])
                .map(|(&d, &one)| if one { 1 } else { d })
                .collect();
            if swap {
                (other, full)
            } else {
                (full, other)
            }
        })
}

/// Operand shapes for `torch.matmul`: 1-d, 2-d and batched with broadcast batch
/// dimensions, always compatible.
pub fn matmul_pair(max_dim: usize) -> impl Strategy<Value = (Shape, Shape)> {
    (
        1..=max_dim,
        1..=max_dim,
        1..=max_dim,
        0usize..6,
        prop::collection::vec(1..=max_dim, 2),
        any::<bool>(),
    )
        .prop_map(|(m, k, n, form, batch, one)| {
            let s = Shape::from_slice;
            match form {
                0 => (s(&[m, k]), s(&[k, n])),
                1 => (s(&[k]), s(&[k, n])),
                2 => (s(&[m, k]), s(&[k])),
                3 => (s(&[k]), s(&[k])),
                4 => (s(&[batch[0], m, k]), s(&[k, n])),
                _ => (
                    s(&[batch[0], if one { 1 } else { batch[1] }, m, k]),
                    s(&[batch[1], k, n]),
                ),
            }
        })
}

/// A tensor of `shape` with values in `domain`.
pub fn tensor_of_shape(shape: Shape, domain: Domain) -> impl Strategy<Value = Tensor<f64>> {
    let n: usize = shape.iter().product();
    prop::collection::vec(domain.low..=domain.high, n).prop_map(move |mut v| {
        for x in v.iter_mut() {
            *x = domain.repair(*x);
        }
        domain.spread(&mut v);
        Tensor::from_vec(v, shape.clone())
    })
}

/// A tensor of any shape from `shapes`, values in `domain`.
pub fn tensor(
    shapes: impl Strategy<Value = Shape>,
    domain: Domain,
) -> impl Strategy<Value = Tensor<f64>> {
    shapes.prop_flat_map(move |s| tensor_of_shape(s, domain.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use tapegrad_core::shape::broadcast_shapes;

    #[test]
    fn pairs_broadcast_and_domains_hold() {
        let mut runner = TestRunner::deterministic();
        for _ in 0..200 {
            let (a, b) = broadcastable_pair(0..=3, 3)
                .new_tree(&mut runner)
                .unwrap()
                .current();
            assert!(broadcast_shapes(&a, &b).is_some(), "{a:?} {b:?}");
            let d = Domain::new(-1.0, 1.0).avoiding(&[0.0]).distinct(0.01);
            let t = tensor_of_shape(Shape::from_slice(&[4, 3]), d)
                .new_tree(&mut runner)
                .unwrap()
                .current();
            let mut v = t.to_vec();
            assert!(v.iter().all(|x| x.abs() >= 0.05 - 1e-12), "{v:?}");
            v.sort_by(f64::total_cmp);
            assert!(v.windows(2).all(|w| w[1] - w[0] >= 0.01 - 1e-12), "{v:?}");
            let (x, y) = matmul_pair(3).new_tree(&mut runner).unwrap().current();
            assert!(Tensor::<f64>::zeros(x)
                .try_matmul(&Tensor::zeros(y))
                .is_ok());
        }
    }
}

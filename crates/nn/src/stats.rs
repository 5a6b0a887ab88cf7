//! Per-layer statistics of activations and gradients, to see vanishing or exploding
//! gradients and saturated or dead units (the experiments of Glorot & Bengio 2010 and He et
//! al. 2015).
//!
//! Attach a [`Recorder`] to a forward pass; `Sequential` records each layer's output (and
//! keeps its gradient through the backward pass). Then [`Recorder::report`] gives mean, std,
//! min, max, the fraction of exact zeros (dead ReLUs) and a histogram for every layer's
//! activations and gradients.
//!
//! ```
//! use tapegrad_core::{seeded_rng, Graph, ParamStore, Tensor};
//! use tapegrad_nn::{Forward, Init, Linear, Module, Recorder, Sequential, Tanh};
//!
//! let mut store = ParamStore::<f32>::new();
//! let mut rng = seeded_rng(0);
//! let model = Sequential::new()
//!     .push(Linear::new(&mut store, "0", 8, 8, Init::XavierUniform { gain: 1.0 }, &mut rng))
//!     .push(Tanh);
//! let g = Graph::new();
//! let mut rec = Recorder::new();
//! let x = g.constant(Tensor::rand_normal([16, 8], 0.0, 1.0, &mut rng));
//! let y = model.forward(&mut Forward::train(&g, &mut store, &mut rng).with_recorder(&mut rec), x);
//! let grads = y.square().mean().backward();
//! for layer in rec.report(Some(&grads)) {
//!     println!("{layer}");
//! }
//! ```

use std::fmt;

use tapegrad_core::{Float, Gradients, Tensor, Var};

/// A histogram over `[min, max]` with equal-width bins.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Bin edges (one more than the counts).
    pub edges: Vec<f64>,
    /// Values per bin.
    pub counts: Vec<usize>,
}

/// Summary statistics of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// Number of elements.
    pub count: usize,
    /// Mean.
    pub mean: f64,
    /// Standard deviation (biased).
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Fraction of elements exactly 0 (dead ReLU units, vanished gradients).
    pub zero_fraction: f64,
    /// Distribution of the values.
    pub histogram: Histogram,
}

impl TensorStats {
    /// Statistics of `t` with a histogram of `bins` bins (non-finite values are counted in
    /// `count` only).
    pub fn of<T: Float>(t: &Tensor<T>, bins: usize) -> Self {
        // Three passes over the finite values, no copy of them: count, sum, extremes and
        // zeros; the spread about the mean; the buckets.
        let finite = || {
            t.as_slice()
                .iter()
                .map(|x| x.as_f64())
                .filter(|x| x.is_finite())
        };
        let (mut count, mut sum, mut zeros) = (0usize, 0.0, 0usize);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for x in finite() {
            count += 1;
            sum += x;
            zeros += usize::from(x == 0.0);
            if x < min {
                min = x;
            }
            if x > max {
                max = x;
            }
        }
        let n = count.max(1) as f64;
        let mean = sum / n;
        let std = (finite().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
        let bins = bins.max(1);
        let (lo, hi) = if count == 0 { (0.0, 0.0) } else { (min, max) };
        let width = if hi > lo {
            (hi - lo) / bins as f64
        } else {
            1.0
        };
        // A multiply, not a divide, per value (the bucket of a value on an edge may differ
        // by the rounding of 1/width: edges are not exact in floating point either way).
        let scale = 1.0 / width;
        let mut counts = vec![0; bins];
        for x in finite() {
            let b = (((x - lo) * scale) as usize).min(bins - 1);
            counts[b] += 1;
        }
        let edges = (0..=bins).map(|i| lo + i as f64 * width).collect();
        TensorStats {
            count: t.numel(),
            mean,
            std,
            min,
            max,
            zero_fraction: zeros as f64 / n,
            histogram: Histogram { edges, counts },
        }
    }
}

impl fmt::Display for TensorStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mean {:+.3e} std {:.3e} min {:+.3e} max {:+.3e} zeros {:5.1}%",
            self.mean,
            self.std,
            self.min,
            self.max,
            100.0 * self.zero_fraction
        )
    }
}

/// The statistics of one layer's output and of its gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    /// The layer (`"{index}:{name}"` from `Sequential`).
    pub name: String,
    /// Of the layer's output.
    pub activation: TensorStats,
    /// Of the gradient of the loss with respect to that output, if a backward pass ran.
    pub gradient: Option<TensorStats>,
}

impl fmt::Display for LayerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<24} act: {}", self.name, self.activation)?;
        if let Some(g) = &self.gradient {
            write!(f, " | grad: {g}")?;
        }
        Ok(())
    }
}

/// Collects layer outputs during a forward pass.
pub struct Recorder<'g, T: Float> {
    entries: Vec<(String, Var<'g, T>)>,
    bins: usize,
}

impl<T: Float> Default for Recorder<'_, T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'g, T: Float> Recorder<'g, T> {
    /// An empty recorder with 20-bin histograms.
    pub fn new() -> Self {
        Recorder {
            entries: Vec::new(),
            bins: 20,
        }
    }

    /// With another number of histogram bins.
    pub fn with_bins(mut self, bins: usize) -> Self {
        self.bins = bins;
        self
    }

    /// Records a value under `name` and keeps its gradient in backward passes.
    pub fn record(&mut self, name: &str, v: Var<'g, T>) {
        self.entries.push((name.to_string(), v.retain_grad()));
    }

    /// The recorded values.
    pub fn entries(&self) -> &[(String, Var<'g, T>)] {
        &self.entries
    }

    /// Statistics of every recorded value, and of its gradient when `grads` is given.
    pub fn report(&self, grads: Option<&Gradients<T>>) -> Vec<LayerStats> {
        self.entries
            .iter()
            .map(|(name, v)| LayerStats {
                name: name.clone(),
                activation: TensorStats::of(&v.value(), self.bins),
                gradient: grads
                    .and_then(|g| g.get(*v))
                    .map(|t| TensorStats::of(t, self.bins)),
            })
            .collect()
    }
}

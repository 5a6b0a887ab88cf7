//! Batch normalisation (Ioffe & Szegedy 2015) and layer normalisation (Ba et al. 2016),
//! with PyTorch's conventions:
//!
//! - training normalises with the batch mean and the **biased** batch variance (÷n);
//! - the running variance is updated with the **unbiased** one (÷(n−1));
//! - `momentum` is the weight of the **new** statistic:
//!   `running = (1 − momentum)·running + momentum·batch` (PyTorch's 0.1; Keras's `momentum =
//!   0.99` is the weight of the old one); `None` is a cumulative average;
//! - running statistics start at mean 0, variance 1; evaluation normalises with them;
//! - `eps` is added inside the square root: `(x − μ)/√(σ² + ε)`;
//! - names: `{name}.weight` (γ), `{name}.bias` (β), `{name}.running_mean`,
//!   `{name}.running_var`, `{name}.num_batches_tracked` (saved as i64).
//!
//! The normalisation is built from graph ops, so its gradients (through the batch
//! statistics in training) are exact and checked like every other op.

use std::rc::Rc;

use tapegrad_core::{Collective, Float, ParamKey, ParamRole, ParamStore, Shape, Tensor, Var};

use crate::module::{Forward, Module};
use crate::per_sample::TapKind;

/// Options of a batch normalisation layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance inside the square root (default 1e-5).
    pub eps: f64,
    /// Weight of the new batch statistic in the running one (default `Some(0.1)`); `None`
    /// averages all batches so far.
    pub momentum: Option<f64>,
    /// Learned scale γ and shift β (default true).
    pub affine: bool,
    /// Keep running statistics for evaluation (default true); without them evaluation
    /// uses batch statistics too.
    pub track_running_stats: bool,
}

impl Default for BatchNormConfig {
    fn default() -> Self {
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

tapegrad_core::setters! { BatchNormConfig {
    /// With another eps.
    with_eps(eps: f64) => eps = eps;
    /// With another momentum (`None`: cumulative average).
    with_momentum(momentum: Option<f64>) => momentum = momentum;
    /// With or without γ and β.
    with_affine(affine: bool) => affine = affine;
    /// With or without running statistics.
    with_running_stats(track: bool) => track_running_stats = track;
}}

/// Batch normalisation over channel axis 1: `BatchNorm1d` for `[N, C]` and `[N, C, L]`,
/// `BatchNorm2d` for `[N, C, H, W]` (statistics per channel over every other axis).
#[derive(Clone, Debug)]
pub struct BatchNorm {
    name: String,
    features: usize,
    ranks: &'static [usize],
    cfg: BatchNormConfig,
    weight: Option<ParamKey>,
    bias: Option<ParamKey>,
    running_mean: Option<ParamKey>,
    running_var: Option<ParamKey>,
    num_batches: Option<ParamKey>,
    sync: Option<Replicas>,
}

/// The replicas a synchronised batch normalisation computes its statistics over.
#[derive(Clone)]
struct Replicas(Rc<dyn Collective>);

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Replicas({} replicas)", self.0.size())
    }
}

impl BatchNorm {
    fn build<T: Float>(
        store: &mut ParamStore<T>,
        name: &str,
        features: usize,
        ranks: &'static [usize],
        cfg: BatchNormConfig,
    ) -> Self {
        let mut add = |suffix: &str, t: Tensor<T>, role| {
            store.insert_with_role(format!("{name}.{suffix}"), t, role)
        };
        let weight = cfg
            .affine
            .then(|| add("weight", Tensor::ones([features]), ParamRole::Scale));
        let bias = cfg
            .affine
            .then(|| add("bias", Tensor::zeros([features]), ParamRole::Shift));
        let track = cfg.track_running_stats;
        let running_mean =
            track.then(|| add("running_mean", Tensor::zeros([features]), ParamRole::Buffer));
        let running_var =
            track.then(|| add("running_var", Tensor::ones([features]), ParamRole::Buffer));
        let num_batches = track.then(|| {
            add(
                "num_batches_tracked",
                Tensor::scalar(T::zero()),
                ParamRole::Count,
            )
        });
        BatchNorm {
            name: name.to_string(),
            features,
            ranks,
            cfg,
            weight,
            bias,
            running_mean,
            running_var,
            num_batches,
            sync: None,
        }
    }

    /// `BatchNorm1d(features)` with PyTorch's defaults, for `[N, C]` or `[N, C, L]` inputs.
    #[track_caller]
    pub fn new_1d<T: Float>(store: &mut ParamStore<T>, name: &str, features: usize) -> Self {
        Self::build(store, name, features, &[2, 3], BatchNormConfig::default())
    }

    /// `BatchNorm1d` with a config.
    #[track_caller]
    pub fn with_config_1d<T: Float>(
        store: &mut ParamStore<T>,
        name: &str,
        features: usize,
        cfg: BatchNormConfig,
    ) -> Self {
        Self::build(store, name, features, &[2, 3], cfg)
    }

    /// `BatchNorm2d(channels)` with PyTorch's defaults, for `[N, C, H, W]` inputs.
    #[track_caller]
    pub fn new_2d<T: Float>(store: &mut ParamStore<T>, name: &str, channels: usize) -> Self {
        Self::build(store, name, channels, &[4], BatchNormConfig::default())
    }

    /// `BatchNorm2d` with a config.
    #[track_caller]
    pub fn with_config_2d<T: Float>(
        store: &mut ParamStore<T>,
        name: &str,
        channels: usize,
        cfg: BatchNormConfig,
    ) -> Self {
        Self::build(store, name, channels, &[4], cfg)
    }

    /// Keys of γ and β, if affine.
    pub fn affine_params(&self) -> Option<(ParamKey, ParamKey)> {
        self.weight.zip(self.bias)
    }

    /// Keys of the running mean and variance, if tracked.
    pub fn running_stats(&self) -> Option<(ParamKey, ParamKey)> {
        self.running_mean.zip(self.running_var)
    }
}

tapegrad_core::setters! { BatchNorm {
    /// Synchronised batch normalisation (PyTorch's `SyncBatchNorm`): in training, the batch
    /// statistics are those of the whole global batch, every replica's samples together,
    /// and their gradients flow back to every replica ([`Var::sum_across`]). Without it,
    /// each replica of data-parallel training normalises with the statistics of its own
    /// samples, as PyTorch's `BatchNorm` does under DDP. Evaluation with running statistics
    /// needs no communication.
    ///
    /// Every replica must run the same forward passes (the `Trainer` does), or they wait
    /// for each other forever.
    with_sync(replicas: Rc<dyn Collective>) => sync = Some(Replicas(replicas));
}}

/// `t` (a `[C]` tensor or value) shaped `[1, C, 1, …]` for an input of rank `ndim`.
fn channel_shape(c: usize, ndim: usize) -> Shape {
    let mut s = Shape::from_slice(&[1, c]);
    s.extend(std::iter::repeat_n(1, ndim - 2));
    s
}

impl<T: Float> Module<T> for BatchNorm {
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let s = x.shape();
        if !self.ranks.contains(&s.len()) || s[1] != self.features {
            crate::fail(
                "BatchNorm",
                format!(
                    "`{}` expects inputs of rank {:?} with {} channels on axis 1, got shape {:?}",
                    self.name,
                    self.ranks,
                    self.features,
                    s.as_slice()
                ),
            );
        }
        let axes: Shape = (0..s.len()).filter(|&a| a != 1).collect();
        let n: usize = axes.iter().map(|&a| s[a]).product();
        let cshape = channel_shape(self.features, s.len());
        let g = f.graph();
        let use_batch = f.is_training() || !self.cfg.track_running_stats;
        if use_batch && f.is_per_sample() {
            crate::fail(
                "BatchNorm",
                format!(
                    "`{}` normalises with the statistics of the batch, which mixes its examples: \
                     per-example gradients are not defined. Compute them in evaluation mode \
                     (with running statistics), or use LayerNorm",
                    self.name
                ),
            );
        }
        // Synchronised: the samples of every replica count.
        let n = match &self.sync {
            Some(Replicas(c)) if use_batch => {
                let mut total = [n as f64];
                if let Err(e) = c.sum_f64(&mut total) {
                    crate::fail("BatchNorm", format!("`{}`: {e}", self.name));
                }
                total[0] as usize
            }
            _ => n,
        };
        let xhat = if use_batch {
            if f.is_training() && n <= 1 {
                crate::fail(
                    "BatchNorm",
                    format!(
                        "`{}` expected more than 1 value per channel when training, got shape {:?}",
                        self.name,
                        s.as_slice()
                    ),
                );
            }
            let (xhat, mean, var) = match &self.sync {
                // Two passes over the global batch, each summed across the replicas: the
                // mean, then the (biased) variance about it.
                Some(Replicas(c)) => {
                    let inv_n = T::from_f64(1.0 / n as f64);
                    let sum = |v: Var<'g, T>| match v
                        .sum_dim(axes.as_slice(), true)
                        .try_sum_across(c.clone())
                    {
                        Ok(v) => v,
                        Err(e) => crate::fail("BatchNorm", format!("`{}`: {e}", self.name)),
                    };
                    let mean = sum(x).mul_scalar(inv_n);
                    let d = x - mean;
                    let var = sum(d * d).mul_scalar(inv_n);
                    let xhat = d * (var + T::from_f64(self.cfg.eps)).rsqrt();
                    (xhat, mean.value(), var.value())
                }
                // One fused node: the normalisation and the batch statistics in one pass.
                None => match x.try_normalize_with_stats(axes.as_slice(), self.cfg.eps) {
                    Ok(r) => r,
                    Err(e) => crate::fail("BatchNorm", format!("`{}`: {e}", self.name)),
                },
            };
            if f.is_training() {
                if let (Some(rm), Some(rv), Some(nb)) =
                    (self.running_mean, self.running_var, self.num_batches)
                {
                    let batches = f.store().value(nb).item() + T::one();
                    let m = T::from_f64(self.cfg.momentum.unwrap_or(1.0 / batches.as_f64()));
                    let bm = mean.reshape([self.features]);
                    let bv =
                        var.reshape([self.features]) * T::from_f64(n as f64 / (n as f64 - 1.0));
                    let store = f.store_mut();
                    let new_m = store.value(rm).mul_scalar(T::one() - m) + bm.mul_scalar(m);
                    let new_v = store.value(rv).mul_scalar(T::one() - m) + bv.mul_scalar(m);
                    *store.value_mut(rm) = new_m;
                    *store.value_mut(rv) = new_v;
                    *store.value_mut(nb) = Tensor::scalar(batches);
                }
            }
            xhat
        } else {
            let (rm, rv) = (
                self.running_mean.expect("tracked"),
                self.running_var.expect("tracked"),
            );
            let store = f.store();
            let mean = g.constant(store.value(rm).reshape(cshape.as_slice()));
            let var = g.constant(store.value(rv).reshape(cshape.as_slice()));
            (x - mean) * (var + T::from_f64(self.cfg.eps)).rsqrt()
        };
        match (self.weight, self.bias) {
            (Some(w), Some(b)) => {
                let y = xhat * f.param(w).reshape(cshape.as_slice())
                    + f.param(b).reshape(cshape.as_slice());
                let tap = || TapKind::Affine {
                    weight: Some(w),
                    bias: Some(b),
                    axes: vec![1],
                };
                f.tap(tap, xhat, y)
            }
            _ => xhat,
        }
    }

    fn params(&self) -> Vec<ParamKey> {
        [self.weight, self.bias].into_iter().flatten().collect()
    }

    fn buffers(&self) -> Vec<ParamKey> {
        [self.running_mean, self.running_var, self.num_batches]
            .into_iter()
            .flatten()
            .collect()
    }

    fn name(&self) -> String {
        format!("BatchNorm({})", self.name)
    }
}

/// PyTorch's names for a [`BatchNorm`] of one input rank: unit structs whose `new` and
/// `with_config` build it.
macro_rules! batch_norm_alias {
    ($(#[$doc:meta])* $name:ident => $new:ident, $with_config:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name;

        impl $name {
            /// PyTorch's defaults (eps 1e-5, momentum 0.1, affine, running statistics).
            #[allow(clippy::new_ret_no_self)]
            #[track_caller]
            pub fn new<T: Float>(
                store: &mut ParamStore<T>,
                name: &str,
                channels: usize,
            ) -> BatchNorm {
                BatchNorm::$new(store, name, channels)
            }

            /// With a config.
            #[track_caller]
            pub fn with_config<T: Float>(
                store: &mut ParamStore<T>,
                name: &str,
                channels: usize,
                cfg: BatchNormConfig,
            ) -> BatchNorm {
                BatchNorm::$with_config(store, name, channels, cfg)
            }
        }
    };
}

batch_norm_alias! {
    /// `BatchNorm1d`, PyTorch's name: `BatchNorm1d::new(&mut store, "bn1", 128)` builds a
    /// [`BatchNorm`] for `[N, C]` or `[N, C, L]` inputs.
    BatchNorm1d => new_1d, with_config_1d
}
batch_norm_alias! {
    /// `BatchNorm2d`, PyTorch's name: `BatchNorm2d::new(&mut store, "bn", 64)` builds a
    /// [`BatchNorm`] for `[N, C, H, W]` inputs.
    BatchNorm2d => new_2d, with_config_2d
}

/// Layer normalisation over the trailing dimensions `normalized_shape`, with the biased
/// variance and eps inside the square root (PyTorch's `nn.LayerNorm`); the same in training
/// and evaluation.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    name: String,
    shape: Vec<usize>,
    eps: f64,
    weight: Option<ParamKey>,
    bias: Option<ParamKey>,
}

impl LayerNorm {
    /// Over the trailing `normalized_shape`, eps 1e-5, with a learned γ and β.
    #[track_caller]
    pub fn new<T: Float>(
        store: &mut ParamStore<T>,
        name: &str,
        normalized_shape: &[usize],
    ) -> Self {
        Self::with_config(store, name, normalized_shape, 1e-5, true)
    }

    /// With an eps and with or without γ and β (`elementwise_affine`).
    #[track_caller]
    pub fn with_config<T: Float>(
        store: &mut ParamStore<T>,
        name: &str,
        normalized_shape: &[usize],
        eps: f64,
        affine: bool,
    ) -> Self {
        let weight = affine.then(|| {
            store.insert_with_role(
                format!("{name}.weight"),
                Tensor::ones(normalized_shape),
                ParamRole::Scale,
            )
        });
        let bias = affine.then(|| {
            store.insert_with_role(
                format!("{name}.bias"),
                Tensor::zeros(normalized_shape),
                ParamRole::Shift,
            )
        });
        LayerNorm {
            name: name.to_string(),
            shape: normalized_shape.to_vec(),
            eps,
            weight,
            bias,
        }
    }
}

impl<T: Float> Module<T> for LayerNorm {
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let s = x.shape();
        let k = self.shape.len();
        if s.len() < k || s[s.len() - k..] != self.shape[..] {
            crate::fail(
                "LayerNorm",
                format!(
                    "`{}` expects inputs ending in {:?}, got shape {:?}",
                    self.name,
                    self.shape,
                    s.as_slice()
                ),
            );
        }
        let axes: Vec<usize> = (s.len() - k..s.len()).collect();
        let xhat = match x.try_normalize(axes.as_slice(), self.eps) {
            Ok(r) => r,
            Err(e) => crate::fail("LayerNorm", format!("`{}`: {e}", self.name)),
        };
        match (self.weight, self.bias) {
            (Some(w), Some(b)) => {
                let y = xhat * f.param(w) + f.param(b);
                let tap = || TapKind::Affine {
                    weight: Some(w),
                    bias: Some(b),
                    axes,
                };
                f.tap(tap, xhat, y)
            }
            _ => xhat,
        }
    }

    fn params(&self) -> Vec<ParamKey> {
        [self.weight, self.bias].into_iter().flatten().collect()
    }

    fn name(&self) -> String {
        format!("LayerNorm({})", self.name)
    }
}

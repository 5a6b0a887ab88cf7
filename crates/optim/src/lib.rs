//! tapegrad-optim: optimizers, gradient clipping and learning-rate schedules.
//!
//! Optimizers see a [`ParamStore`](tapegrad_core::ParamStore) and
//! [`Gradients`](tapegrad_core::Gradients), nothing else: they know nothing of layers. Every
//! update rule is PyTorch's documented algorithm with PyTorch's defaults (checked against
//! `torch.optim` trajectories to 1e-10); where a common textbook or blog formula differs,
//! the optimizer's documentation gives both.
//!
//! The learning rate is an argument of [`Optimizer::step`]: the training loop feeds it the
//! schedule's value, and parameter groups scale it (a smaller rate for pretrained layers) or
//! override the weight decay (none on biases).
//!
//! ```
//! use tapegrad_core::{Graph, ParamStore, Tensor};
//! use tapegrad_optim::{Adam, AdamConfig, Optimizer, Schedule, Cosine};
//!
//! let mut store = ParamStore::<f64>::new();
//! let w = store.insert("w", Tensor::from_vec(vec![3.0, -2.0], [2]));
//! let mut opt = Adam::new(AdamConfig::default());
//! let schedule = Cosine::new(0.1, 200);
//! for step in 0..200 {
//!     let g = Graph::new();
//!     let loss = g.param(&store, w).square().sum();
//!     let grads = loss.backward();
//!     opt.step(&mut store, &grads, schedule.lr(step));
//! }
//! assert!(store.value(w).as_slice().iter().all(|v| v.abs() < 1e-2));
//! ```
#![warn(missing_docs)]

pub mod clip;
pub mod lbfgs;
pub mod optimizer;
pub mod rules;
pub mod schedule;

pub use clip::{clip_grad_norm, clip_grad_value, NormType};
pub use lbfgs::{Lbfgs, LbfgsConfig, LineSearch};
pub use optimizer::{GroupOptions, Optimizer, ParamState, Rule, RuleOptimizer};
pub use rules::{
    Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, NAdam, NAdamConfig,
    RmsProp, RmsPropConfig, Sgd, SgdConfig, WeightDecay,
};
pub use schedule::{
    Constant, Cosine, CosineWarmRestarts, Exponential, FnSchedule, InverseSqrt, LinearLR,
    MultiStep, OneCycle, PlateauMode, ReduceOnPlateau, Schedule, SequentialLR, StepDecay, Warmup,
};

//! tapegrad-nn: modules, activations, initialisers, normalisation, dropout, losses,
//! regularizers, save/load, and per-layer statistics.
//!
//! Everything here is made of the core's graph ops, so every gradient in it is exact and
//! checked by the same `gradcheck` as the core (first and second order).
//!
//! ```
//! use tapegrad_core::{seeded_rng, Graph, ParamStore, Tensor};
//! use tapegrad_nn::{cross_entropy, Dropout, Forward, Init, Linear, Module, Reduction, Relu, Sequential};
//!
//! let mut store = ParamStore::<f32>::new();
//! let mut rng = seeded_rng(0);
//! let model = Sequential::new()
//!     .push(Linear::new(&mut store, "0", 4, 8, Init::HeNormal, &mut rng))
//!     .push(Relu)
//!     .push(Dropout::new(0.1))
//!     .push(Linear::new(&mut store, "3", 8, 3, Init::HeNormal, &mut rng));
//! let g = Graph::new();
//! let x = g.constant(Tensor::ones([2, 4]));
//! let mut f = Forward::train(&g, &mut store, &mut rng);
//! let logits = model.forward(&mut f, x);
//! let loss = cross_entropy(logits, &Tensor::from_vec(vec![0, 2], [2]), Reduction::Mean);
//! let grads = loss.backward();
//! assert_eq!(grads.params().count(), 4);
//! ```
#![warn(missing_docs)]

pub mod activation;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod init;
pub mod linear;
pub mod loss;
pub mod module;
pub mod norm;
pub mod pass_rng;
pub mod per_sample;
pub mod recompute;
pub mod regularize;
pub mod serialize;
pub mod stats;

pub use activation::{
    Elu, Gelu, LeakyRelu, LogSoftmax, PRelu, RRelu, Relu, Selu, Sigmoid, Silu, Softmax, Softplus,
    Tanh,
};
pub use conv::{AvgPool2d, Conv2d, Conv2dConfig, Flatten, MaxPool2d};
pub use dropout::{dropout, Dropout};
pub use embedding::Embedding;
pub use init::{calculate_gain, FanMode, Init, Nonlinearity};
pub use linear::{Linear, LinearConfig};
pub use loss::{
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, cross_entropy_soft,
    cross_entropy_with, huber_loss, kl_div, l1_loss, mse_loss, nll_loss, smooth_l1_loss,
    try_binary_cross_entropy, try_binary_cross_entropy_with_logits, try_cross_entropy,
    try_cross_entropy_soft, try_cross_entropy_with, try_huber_loss, try_kl_div, try_l1_loss,
    try_mse_loss, try_nll_loss, try_smooth_l1_loss, CrossEntropyConfig, Reduction,
};
pub use module::{Forward, Mode, Module, Sequential};
pub use norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, LayerNorm};
pub use pass_rng::PassRng;
pub use per_sample::{per_sample_grads, Method, PerSampleGrads};
pub use recompute::{checkpoint_segments, Checkpointed};
pub use regularize::{elastic_net_penalty, l1_penalty, l2_penalty};
pub use serialize::{load, load_with, save};
pub use stats::{Histogram, LayerStats, Recorder, TensorStats};

/// Panics with an [`tapegrad_core::Error::Argument`] for `op` at the caller's line: how the
/// layers and losses refuse bad arguments, with the core's message form (`op: what is wrong
/// (at file:line:col)`).
#[cold]
#[track_caller]
pub(crate) fn fail(op: &'static str, message: String) -> ! {
    tapegrad_core::Error::argument(op, message).raise()
}

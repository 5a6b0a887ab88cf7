//! # tapegrad
//!
//! Reverse-mode automatic differentiation over n-d tensors, in Rust: a tape-based autograd
//! core with PyTorch semantics, gradients of gradients, custom ops, and public gradient
//! checking.
//!
//! This crate is the facade: it re-exports the workspace's crates and a [`prelude`].
//!
//! | crate | re-exported as | holds |
//! |---|---|---|
//! | `tapegrad-core` | [`core`] | `Tensor`, `Graph`, `Var`, the op set, `ParamStore`, gradcheck |
//! | `tapegrad-kernels` | [`kernels`] | numeric kernels over slices (gemm, reductions, softmax) |
//! | `tapegrad-nn` | [`nn`] | modules, layers, activations, initialisers, norms, dropout, losses, regularizers, save/load |
//! | `tapegrad-optim` | [`optim`] | optimizers, L-BFGS, gradient clipping, learning-rate schedules |
//! | `tapegrad-data` | [`data`] | datasets, loaders, splits, k-fold, augmentation, readers (digits, MNIST, CSV) |
//! | `tapegrad-train` | [`train`] | `Trainer`, callbacks, metrics, history, exact resume, progress, plots, ensembles |
//! | `tapegrad-dist` | [`dist`] | data-parallel training over MPI (`Communicator`, feature `mpi`), the scaling model |
//! | `tapegrad-check` | [`check`] | gradcheck for your own tests, proptest strategies |
//!
//! ```
//! use tapegrad::prelude::*;
//!
//! let g = Graph::<f64>::new();
//! let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]));
//! let y = (x * x).sum() + x.tanh().mean();
//! let grads = y.backward();
//! println!("{}", grads.wrt(x));
//!
//! // Gradients of gradients: a Hessian-vector product.
//! let gx = y.backward_create_graph().wrt_var(x);
//! let v = g.constant(Tensor::from_vec(vec![1.0, 0.0, 0.0], [3]));
//! let hv = (gx * v).sum().backward().wrt(x);
//! assert!((hv.get(&[0]) - (2.0 + (-2.0 * 1f64.tanh() * (1.0 - 1f64.tanh().powi(2))) / 3.0)).abs() < 1e-12);
//! ```
//!
//! The prelude and the optimizers' module compose as glob imports (the schedules are named
//! `LinearLR` and `SequentialLR`, as PyTorch names them, beside nn's `Linear` and
//! `Sequential`), and the prelude names the random number generator:
//!
//! ```
//! use tapegrad::prelude::*;
//! use tapegrad::optim::*;
//!
//! let mut store = ParamStore::<f32>::new();
//! let mut rng: StdRng = seeded_rng(0);
//! let model = Sequential::new().push(Linear::new(&mut store, "fc", 4, 2, Init::HeNormal, &mut rng));
//! let schedule = SequentialLR::new(vec![Box::new(LinearLR::new(0.1, 0.1, 1.0, 5)), Box::new(Constant(0.1))], vec![5]);
//! let mut opt = AdamW::new(AdamConfig::adamw());
//! let g = Graph::new();
//! let loss = model.forward(&mut Forward::eval(&g, &store), g.constant(Tensor::ones([3, 4]))).square().mean();
//! let grads = loss.backward();
//! drop(g); // release the tape before the update (see Optimizer::step)
//! opt.step(&mut store, &grads, schedule.lr(0));
//! ```
#![warn(missing_docs)]

pub use tapegrad_check as check;
pub use tapegrad_core as core;
pub use tapegrad_core::functional;
pub use tapegrad_core::recompute;
pub use tapegrad_data as data;
pub use tapegrad_dist as dist;
pub use tapegrad_kernels as kernels;
pub use tapegrad_nn as nn;
pub use tapegrad_optim as optim;
pub use tapegrad_train as train;

pub use tapegrad_core::{
    assert_close, seeded_rng, Algebra, CustomOp, Error, Float, Gradients, Graph, ParamKey,
    ParamStore, Result, Tensor, Var, VarGradients,
};

/// The names most programs need: `use tapegrad::prelude::*;`.
pub mod prelude {
    pub use tapegrad_core::checkpoint::{Checkpoint, LoadOptions};
    pub use tapegrad_core::gradcheck::{gradcheck, gradgradcheck, GradcheckConfig};
    pub use tapegrad_core::{
        assert_close, seeded_rng, Algebra, BinaryOp, Cmp, Conv2dSpec, CustomOp, Error, Float,
        Gradients, Graph, ParamKey, ParamRole, ParamStore, Result, Shape, SliceSpec, StdRng,
        Tensor, Transpose, Unary, Var, VarGradients, Window2d,
    };
    pub use tapegrad_data::{
        train_test_split, DataLoader, Dataset, KFold, StratifiedKFold, TensorDataset,
    };
    pub use tapegrad_nn::{
        binary_cross_entropy, binary_cross_entropy_with_logits, checkpoint_segments, cross_entropy,
        cross_entropy_soft, cross_entropy_with, dropout, elastic_net_penalty, huber_loss, kl_div,
        l1_loss, l1_penalty, l2_penalty, mse_loss, nll_loss, per_sample_grads, smooth_l1_loss,
        AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig, Checkpointed, Conv2d,
        Conv2dConfig, CrossEntropyConfig, Dropout, Elu, Embedding, Flatten, Forward, Gelu, Init,
        LayerNorm, LeakyRelu, Linear, LinearConfig, LogSoftmax, MaxPool2d, Mode, Module, PRelu,
        RRelu, Recorder, Reduction, Relu, Selu, Sequential, Sigmoid, Silu, Softmax, Softplus, Tanh,
    };
    pub use tapegrad_optim::{
        clip_grad_norm, clip_grad_value, Adadelta, AdadeltaConfig, Adagrad, AdagradConfig, Adam,
        AdamConfig, AdamW, Constant, Cosine, CosineWarmRestarts, Exponential, InverseSqrt, Lbfgs,
        LbfgsConfig, LinearLR, MultiStep, NAdam, NAdamConfig, NormType, OneCycle, Optimizer,
        ReduceOnPlateau, RmsProp, RmsPropConfig, Schedule, SequentialLR, Sgd, SgdConfig, StepDecay,
        Warmup,
    };
    pub use tapegrad_train::{
        evaluate, Checkpointer, CrossEntropy, EarlyStopping, Ensemble, History, Monitor, Progress,
        ReduceLrOnPlateau, TrainConfig, Trainer,
    };
}

/// The README's code blocks, compiled and run as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The guide's page on the functional transforms, per-example gradients and checkpointing:
/// its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/functional.md")]
pub struct GuideFunctionalDoctests;

/// The guide's page on the second-order example (Newton's method, parameter tying,
/// multitask losses): its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/second_order.md")]
pub struct GuideSecondOrderDoctests;

/// The guide's page on vanishing and exploding gradients: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/vanishing_gradients.md")]
pub struct GuideVanishingGradientsDoctests;

/// The guide's page on activations at initialisation: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/init_histograms.md")]
pub struct GuideInitHistogramsDoctests;

/// The guide's page on He initialisation and depth: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/he_init_depth.md")]
pub struct GuideHeInitDepthDoctests;

/// The guide's page on batch normalisation: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/batchnorm.md")]
pub struct GuideBatchnormDoctests;

/// The guide's page on regularisation: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/regularization.md")]
pub struct GuideRegularizationDoctests;

/// The guide's page on adversarial examples: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/adversarial.md")]
pub struct GuideAdversarialDoctests;

/// The guide's page on k-fold ensembles: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/ensembles_kfold.md")]
pub struct GuideEnsemblesKfoldDoctests;

/// The guide's page on learning-rate schedules: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/lr_schedules.md")]
pub struct GuideLrSchedulesDoctests;

/// The guide's page on the optimizers: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/optimizers.md")]
pub struct GuideOptimizersDoctests;

/// The guide's page `installation.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/installation.md")]
pub struct GuideInstallationDoctests;

/// The guide's page `first_model.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/first_model.md")]
pub struct GuideFirstModelDoctests;

/// The guide's page `autograd.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/autograd.md")]
pub struct GuideAutogradDoctests;

/// The guide's page `custom_ops.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/custom_ops.md")]
pub struct GuideCustomOpsDoctests;

/// The guide's page `nn_optim_data.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/nn_optim_data.md")]
pub struct GuideNnOptimDataDoctests;

/// The guide's page `trainer.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/trainer.md")]
pub struct GuideTrainerDoctests;

/// The guide's page `checkpoints.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/checkpoints.md")]
pub struct GuideCheckpointsDoctests;

/// The guide's page `conformance.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/conformance.md")]
pub struct GuideConformanceDoctests;

/// The guide's page `performance.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/performance.md")]
pub struct GuidePerformanceDoctests;

/// The guide's page `distributed.md`: its code blocks are doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide/distributed.md")]
pub struct GuideDistributedDoctests;

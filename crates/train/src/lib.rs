//! The training layer of tapegrad: a [`Trainer`] that runs epochs over a
//! [`DataLoader`](tapegrad_data::DataLoader) with a model, a loss, an optimizer and a
//! per-step schedule; callbacks (early stopping, checkpoints, reduce-on-plateau, history
//! files); metrics weighted by samples; a per-epoch [`History`] as CSV and JSON; exact
//! resume from one checkpoint file; progress on a terminal or as plain lines; PNG plots;
//! ensembles.
//!
//! The hand-written loop stays first-class: the [`trainer`] module shows it, and the
//! `Trainer` does nothing that loop cannot.
//!
//! | module | holds |
//! |---|---|
//! | [`trainer`] | `Trainer`, `TrainConfig`, `Loss`, `Penalty`, `Outcome` |
//! | [`resume`] | the checkpoint layout; `Trainer::save`, `Trainer::resume` |
//! | [`callbacks`] | `Callback`, `EarlyStopping`, `Checkpointer`, `ReduceLrOnPlateau`, `HistoryWriter` |
//! | [`metrics`] | `Meter`, top-k accuracy, `ConfusionMatrix` with precision/recall/F1 |
//! | [`history`] | `EpochRecord`, `History` (CSV, JSON) |
//! | [`evaluate`](mod@evaluate) | `evaluate`, `Evaluation`, `Ensemble` |
//! | [`progress`] | `Progress` (bar, lines, quiet) |
//! | [`parallel`] | `Collective`, `GradientSync`: data-parallel training across replicas |
//! | [`plot`] | loss, accuracy and learning-rate curves, the confusion matrix, as PNG |

pub mod callbacks;
pub mod evaluate;
pub mod history;
pub mod metrics;
pub mod parallel;
pub mod plot;
pub mod progress;
pub mod resume;
pub mod tensorboard;
pub mod trainer;

pub use callbacks::{
    Callback, Checkpointer, Control, EarlyStopping, EpochEnd, HistoryWriter, Monitor,
    ReduceLrOnPlateau, StepEnd,
};
pub use evaluate::{evaluate, evaluate_with_probabilities, Ensemble, EnsembleReport, Evaluation};
pub use history::{EpochRecord, History};
pub use metrics::{correct, predictions, top_k_accuracy, ClassScores, ConfusionMatrix, Meter};
pub use parallel::{Collective, GradientSync};
pub use plot::{
    histogram_grid_png, histogram_png, line_plot_png, plot_confusion, plot_history, register_font,
};
pub use progress::Progress;
pub use trainer::{penalty, CrossEntropy, Loss, Outcome, Penalty, TrainConfig, Trainer};

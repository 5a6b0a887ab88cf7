//! Learning-rate schedules.
//!
//! A [`Schedule`] is a pure function of the step, `lr(step) -> f64`, so each is testable
//! against its closed form and plottable; the training loop feeds its value to
//! [`Optimizer::step`](crate::Optimizer::step). Steps count optimizer steps from 0 (PyTorch
//! schedulers stepped once per optimizer step, `lr(t)` being the rate used by step t).
//! [`ReduceOnPlateau`] is the one stateful schedule: it reacts to a validation metric.
//!
//! | schedule | lr(t) |
//! |---|---|
//! | [`Constant`] | base |
//! | [`StepDecay`] (`StepLR`) | base·γ^⌊t/step⌋ |
//! | [`MultiStep`] (`MultiStepLR`) | base·γ^(#milestones ≤ t) |
//! | [`Exponential`] (`ExponentialLR`) | base·γᵗ |
//! | [`Cosine`] (`CosineAnnealingLR`) | η_min + (base − η_min)(1 + cos(πt/T))/2 |
//! | [`CosineWarmRestarts`] (SGDR) | cosine cycles of T₀, T₀·m, T₀·m², … |
//! | [`LinearLR`] (PyTorch's name, so it composes with nn's `Linear` in one glob import) | base·(s + (e − s)·min(t, n)/n) |
//! | [`InverseSqrt`] | peak·min(t/w, √(w/t)) |
//! | [`Warmup`] | linear warm-up, then any schedule |
//! | [`OneCycle`] (`OneCycleLR`) | warm-up to max_lr, cosine down to max_lr/div/final_div; momentum cycled |
//! | [`SequentialLR`] (PyTorch's name; nn has `Sequential`) | one schedule after another at milestones |
//! | [`FnSchedule`] (`LambdaLR`) | any function |

mod cosine;
mod decay;
mod plateau;

pub use cosine::{Cosine, CosineWarmRestarts, OneCycle};
pub use decay::{Exponential, InverseSqrt, LinearLR, MultiStep, StepDecay};
pub use plateau::{PlateauMode, ReduceOnPlateau};

/// A learning rate as a pure function of the step.
pub trait Schedule {
    /// The learning rate of optimizer step `step` (from 0).
    fn lr(&self, step: usize) -> f64;
}

impl<S: Schedule + ?Sized> Schedule for Box<S> {
    fn lr(&self, step: usize) -> f64 {
        (**self).lr(step)
    }
}

impl<S: Schedule + ?Sized> Schedule for &S {
    fn lr(&self, step: usize) -> f64 {
        (**self).lr(step)
    }
}

/// A constant rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn lr(&self, _step: usize) -> f64 {
        self.0
    }
}

/// Any function of the step (PyTorch's `LambdaLR` returns `base·λ(t)`; this returns
/// `f(t)` itself).
pub struct FnSchedule<F: Fn(usize) -> f64>(pub F);

impl<F: Fn(usize) -> f64> Schedule for FnSchedule<F> {
    fn lr(&self, step: usize) -> f64 {
        (self.0)(step)
    }
}

/// A linear warm-up of `steps` steps, then `inner` (whose own step count starts after the
/// warm-up): `lr(t) = inner.lr(0)·(t + 1)/steps` for `t < steps`, then
/// `inner.lr(t − steps)`. The warm-up reaches the full rate on its last step (the usual
/// `LambdaLR` form); [`Warmup::from_zero`] starts at 0 instead (`t/steps`, as
/// HuggingFace's linear warm-up).
#[derive(Clone, Debug, PartialEq)]
pub struct Warmup<S: Schedule> {
    steps: usize,
    inner: S,
    from_zero: bool,
}

impl<S: Schedule> Warmup<S> {
    /// `steps` warm-up steps before `inner`.
    pub fn new(steps: usize, inner: S) -> Self {
        Warmup {
            steps,
            inner,
            from_zero: false,
        }
    }

    /// Starts the warm-up at 0 (`t/steps`) instead of `1/steps`.
    pub fn from_zero(mut self) -> Self {
        self.from_zero = true;
        self
    }
}

impl<S: Schedule> Schedule for Warmup<S> {
    fn lr(&self, t: usize) -> f64 {
        if t < self.steps {
            let k = if self.from_zero { t } else { t + 1 };
            self.inner.lr(0) * k as f64 / self.steps as f64
        } else {
            self.inner.lr(t - self.steps)
        }
    }
}

/// Schedules one after another (PyTorch's `SequentialLR`): schedule `i` runs from
/// `milestones[i−1]`, counting its own steps from 0 there.
pub struct SequentialLR {
    schedules: Vec<Box<dyn Schedule>>,
    milestones: Vec<usize>,
}

impl SequentialLR {
    /// `schedules` switched at `milestones` (one fewer milestone than schedules,
    /// increasing).
    ///
    /// # Panics
    /// If the counts do not fit or the milestones are not increasing.
    #[track_caller]
    pub fn new(schedules: Vec<Box<dyn Schedule>>, milestones: Vec<usize>) -> Self {
        assert!(
            !schedules.is_empty() && milestones.len() + 1 == schedules.len(),
            "SequentialLR: {} schedules need {} milestones",
            schedules.len(),
            schedules.len().saturating_sub(1)
        );
        assert!(
            milestones.windows(2).all(|w| w[0] < w[1]),
            "SequentialLR: milestones must increase"
        );
        SequentialLR {
            schedules,
            milestones,
        }
    }
}

impl Schedule for SequentialLR {
    fn lr(&self, t: usize) -> f64 {
        let i = self.milestones.iter().take_while(|&&m| m <= t).count();
        let start = if i == 0 { 0 } else { self.milestones[i - 1] };
        self.schedules[i].lr(t - start)
    }
}

//! Step, multi-step, exponential and linear schedules, and inverse square root.

use super::Schedule;

/// `base·γ^⌊t/step_size⌋` (PyTorch's `StepLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepDecay {
    /// Starting rate.
    pub base: f64,
    /// Steps between decays.
    pub step_size: usize,
    /// Factor per decay.
    pub gamma: f64,
}

impl StepDecay {
    /// Decays by `gamma` every `step_size` steps.
    pub fn new(base: f64, step_size: usize, gamma: f64) -> Self {
        StepDecay {
            base,
            step_size,
            gamma,
        }
    }
}

impl Schedule for StepDecay {
    fn lr(&self, t: usize) -> f64 {
        self.base * self.gamma.powi((t / self.step_size.max(1)) as i32)
    }
}

/// `base·γ^(number of milestones ≤ t)` (PyTorch's `MultiStepLR`).
#[derive(Clone, Debug, PartialEq)]
pub struct MultiStep {
    /// Starting rate.
    pub base: f64,
    /// Steps at which the rate drops.
    pub milestones: Vec<usize>,
    /// Factor per milestone.
    pub gamma: f64,
}

impl MultiStep {
    /// Drops by `gamma` at each milestone.
    pub fn new(base: f64, milestones: Vec<usize>, gamma: f64) -> Self {
        MultiStep {
            base,
            milestones,
            gamma,
        }
    }
}

impl Schedule for MultiStep {
    fn lr(&self, t: usize) -> f64 {
        self.base
            * self
                .gamma
                .powi(self.milestones.iter().filter(|&&m| m <= t).count() as i32)
    }
}

/// `base·γᵗ` (PyTorch's `ExponentialLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Exponential {
    /// Starting rate.
    pub base: f64,
    /// Factor per step.
    pub gamma: f64,
}

impl Exponential {
    /// Decays by `gamma` every step.
    pub fn new(base: f64, gamma: f64) -> Self {
        Exponential { base, gamma }
    }
}

impl Schedule for Exponential {
    fn lr(&self, t: usize) -> f64 {
        self.base * self.gamma.powi(t as i32)
    }
}

/// `base·(start + (end − start)·min(t, total)/total)` (PyTorch's `LinearLR`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLR {
    /// The rate the factors multiply.
    pub base: f64,
    /// Factor at step 0.
    pub start_factor: f64,
    /// Factor from step `total_iters` on.
    pub end_factor: f64,
    /// Steps of the ramp.
    pub total_iters: usize,
}

impl LinearLR {
    /// A ramp of the factor from `start_factor` to `end_factor` over `total_iters` steps.
    pub fn new(base: f64, start_factor: f64, end_factor: f64, total_iters: usize) -> Self {
        LinearLR {
            base,
            start_factor,
            end_factor,
            total_iters,
        }
    }
}

impl Schedule for LinearLR {
    fn lr(&self, t: usize) -> f64 {
        let frac = if self.total_iters == 0 {
            1.0
        } else {
            t.min(self.total_iters) as f64 / self.total_iters as f64
        };
        self.base * (self.start_factor + (self.end_factor - self.start_factor) * frac)
    }
}

/// The inverse-square-root schedule with linear warm-up (Vaswani et al. 2017; fairseq's
/// `inverse_sqrt` with a warm-up from 0, HuggingFace's `get_inverse_sqrt_schedule`):
/// `peak·min(t/warmup, √(warmup/t))`, 0 at t = 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InverseSqrt {
    /// The rate at the end of the warm-up.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup: usize,
}

impl InverseSqrt {
    /// Warm up to `peak` over `warmup` steps, then decay as `1/√t`.
    pub fn new(peak: f64, warmup: usize) -> Self {
        InverseSqrt { peak, warmup }
    }
}

impl Schedule for InverseSqrt {
    fn lr(&self, t: usize) -> f64 {
        let (t, w) = (t as f64, self.warmup as f64);
        if self.warmup == 0 {
            return if t == 0.0 {
                self.peak
            } else {
                self.peak / t.sqrt()
            };
        }
        if t < w {
            self.peak * t / w
        } else {
            self.peak / (t / w).sqrt()
        }
    }
}

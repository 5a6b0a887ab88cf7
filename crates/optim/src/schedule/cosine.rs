//! Cosine annealing, with warm restarts, and the one-cycle policy.

use std::f64::consts::PI;

use super::Schedule;

/// `η_min + (base − η_min)(1 + cos(πt/T_max))/2` (PyTorch's `CosineAnnealingLR`, closed
/// form; past `T_max` the cosine continues).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cosine {
    /// Starting rate.
    pub base: f64,
    /// Half period.
    pub t_max: usize,
    /// The lowest rate.
    pub eta_min: f64,
}

impl Cosine {
    /// From `base` down to 0 over `t_max` steps.
    pub fn new(base: f64, t_max: usize) -> Self {
        Cosine {
            base,
            t_max,
            eta_min: 0.0,
        }
    }
}

tapegrad_core::setters! { Cosine {
    /// With a floor.
    with_eta_min(eta_min: f64) => eta_min = eta_min;
}}

impl Schedule for Cosine {
    fn lr(&self, t: usize) -> f64 {
        self.eta_min
            + (self.base - self.eta_min) * (1.0 + (PI * t as f64 / self.t_max.max(1) as f64).cos())
                / 2.0
    }
}

/// SGDR (Loshchilov & Hutter 2017; PyTorch's `CosineAnnealingWarmRestarts`): cosine cycles
/// of `T₀`, `T₀·m`, `T₀·m²`, … steps, each starting again at `base`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineWarmRestarts {
    /// The rate at each restart.
    pub base: f64,
    /// The first cycle's length.
    pub t0: usize,
    /// The growth of each cycle's length (≥ 1).
    pub t_mult: usize,
    /// The lowest rate.
    pub eta_min: f64,
}

impl CosineWarmRestarts {
    /// Cycles of `t0·t_multᵏ` steps.
    pub fn new(base: f64, t0: usize, t_mult: usize) -> Self {
        CosineWarmRestarts {
            base,
            t0,
            t_mult,
            eta_min: 0.0,
        }
    }
}

tapegrad_core::setters! { CosineWarmRestarts {
    /// With a floor.
    with_eta_min(eta_min: f64) => eta_min = eta_min;
}}

impl Schedule for CosineWarmRestarts {
    fn lr(&self, t: usize) -> f64 {
        let (mut start, mut len) = (0usize, self.t0.max(1));
        while t >= start + len {
            start += len;
            len *= self.t_mult.max(1);
        }
        let cur = (t - start) as f64;
        self.eta_min + (self.base - self.eta_min) * (1.0 + (PI * cur / len as f64).cos()) / 2.0
    }
}

/// The one-cycle policy (Smith & Topin 2019; PyTorch's `OneCycleLR` with cosine annealing):
/// from `max_lr/div_factor` up to `max_lr` at step `pct_start·total − 1`, then down to
/// `max_lr/(div_factor·final_div_factor)` at step `total − 1`; the momentum goes the other
/// way, `max_momentum → base_momentum → max_momentum` (see [`OneCycle::momentum`]; feed it
/// to [`Optimizer::set_momentum`](crate::Optimizer::set_momentum)). With `three_phase` the
/// rate comes back to its start before the final annealing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    /// The peak rate.
    pub max_lr: f64,
    /// The cycle's length.
    pub total_steps: usize,
    /// The fraction of the cycle spent increasing the rate (default 0.3).
    pub pct_start: f64,
    /// `initial = max_lr/div_factor` (default 25).
    pub div_factor: f64,
    /// `final = initial/final_div_factor` (default 1e4).
    pub final_div_factor: f64,
    /// Three phases instead of two (default false).
    pub three_phase: bool,
    /// The momentum at the peak rate (default 0.85).
    pub base_momentum: f64,
    /// The momentum at the ends (default 0.95).
    pub max_momentum: f64,
}

impl OneCycle {
    /// PyTorch's defaults for a cycle of `total_steps` peaking at `max_lr`.
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycle {
            max_lr,
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    /// (end step, start value, end value) for the rate or the momentum.
    fn phases(&self, momentum: bool) -> Vec<(f64, f64, f64)> {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let n = self.total_steps as f64;
        let p = self.pct_start * n;
        let (lo_m, hi_m) = (self.base_momentum, self.max_momentum);
        if self.three_phase {
            let lr = [
                (p - 1.0, initial, self.max_lr),
                (2.0 * p - 2.0, self.max_lr, initial),
                (n - 1.0, initial, min),
            ];
            let m = [
                (p - 1.0, hi_m, lo_m),
                (2.0 * p - 2.0, lo_m, hi_m),
                (n - 1.0, hi_m, hi_m),
            ];
            if momentum {
                m.to_vec()
            } else {
                lr.to_vec()
            }
        } else {
            let lr = [(p - 1.0, initial, self.max_lr), (n - 1.0, self.max_lr, min)];
            let m = [(p - 1.0, hi_m, lo_m), (n - 1.0, lo_m, hi_m)];
            if momentum {
                m.to_vec()
            } else {
                lr.to_vec()
            }
        }
    }

    fn at(&self, t: usize, momentum: bool) -> f64 {
        let phases = self.phases(momentum);
        let t = t as f64;
        let mut start = 0.0;
        for (i, &(end, a, b)) in phases.iter().enumerate() {
            if t <= end || i == phases.len() - 1 {
                let pct = (t - start) / (end - start);
                return b + (a - b) / 2.0 * ((PI * pct).cos() + 1.0);
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }

    /// The momentum (or Adam's β₁) of step `t`.
    pub fn momentum(&self, t: usize) -> f64 {
        self.at(t, true)
    }
}

tapegrad_core::setters! { OneCycle {
    /// With the fraction of the cycle spent warming up.
    with_pct_start(p: f64) => pct_start = p;
    /// With three phases.
    with_three_phase(on: bool) => three_phase = on;
}}

impl Schedule for OneCycle {
    fn lr(&self, t: usize) -> f64 {
        self.at(t, false)
    }
}

//! The first-order update rules, exactly as `torch.optim` implements them (single-tensor
//! path), with PyTorch's defaults. `t` is the parameter's step count (1 on the first step);
//! every state buffer starts at 0 unless stated.
//!
//! Weight decay, except in AdamW (Adam with [`WeightDecay::Decoupled`]), is PyTorch's: an
//! L2 term added to the gradient before any momentum or adaptive scaling, `g ← g + wd·p`.

use tapegrad_core::Float;

use tapegrad_kernels::elementwise::zip_inplace;
use tapegrad_kernels::simd::with_avx2;

use crate::optimizer::{ParamState, Rule, RuleOptimizer};

#[inline]
fn c<T: Float>(v: f64) -> T {
    T::from_f64(v)
}

// ------------------------------------------------------------------------------- SGD

/// SGD with momentum, dampening, Nesterov momentum and weight decay (`torch.optim.SGD`).
///
/// ```text
/// d = g + wd·p
/// momentum > 0:  buf = d on the first step (no dampening), else buf = μ·buf + (1 − dampening)·d
///                d = d + μ·buf (Nesterov) or d = buf
/// p = p − lr·d
/// ```
/// The blog form `v = μv − lr·g; p += v` equals this only for a constant learning rate:
/// PyTorch's buffer does not include lr, so a schedule rescales the accumulated velocity at
/// once. PyTorch's Nesterov is Sutskever's reformulation (the gradient at the current point,
/// no look-ahead evaluation). PyTorch's default lr is 1e-3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// μ (default 0: plain SGD).
    pub momentum: f64,
    /// Dampening of the momentum's gradient term (default 0).
    pub dampening: f64,
    /// Nesterov momentum (default false; needs momentum > 0 and dampening 0).
    pub nesterov: bool,
    /// L2 weight decay (default 0).
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        }
    }
}

tapegrad_core::setters! { SgdConfig {
    /// With momentum μ.
    with_momentum(m: f64) => momentum = m;
    /// With dampening.
    with_dampening(d: f64) => dampening = d;
    /// With Nesterov momentum.
    with_nesterov(on: bool) => nesterov = on;
    /// With weight decay.
    with_weight_decay(wd: f64) => weight_decay = wd;
}}

impl<T: Float> Rule<T> for SgdConfig {
    fn name(&self) -> &'static str {
        "SGD"
    }
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];

    fn has_buffer(&self, _i: usize) -> bool {
        self.momentum != 0.0
    }

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    fn update(&self, p: &mut [T], g: &[T], s: &mut ParamState<T>, lr: f64, wd: f64) {
        if self.momentum == 0.0 {
            // Plain SGD: one pass, no working copy.
            let (lr, wd) = (c::<T>(lr), c::<T>(wd));
            if wd == T::zero() {
                zip_inplace(p, g, move |pi, gi| pi - lr * gi);
            } else {
                zip_inplace(p, g, move |pi, gi| pi - lr * (gi + wd * pi));
            }
            return;
        }
        let mut d = s.take_decayed(g, p, wd);
        {
            let mu = c::<T>(self.momentum);
            match &mut s.buffers[0] {
                slot @ None => *slot = Some(d.clone()),
                Some(buf) => {
                    let damp = c::<T>(1.0 - self.dampening);
                    for (b, &di) in buf.iter_mut().zip(&d) {
                        *b = mu * *b + damp * di;
                    }
                }
            }
            let buf = s.buffers[0].as_ref().expect("set above");
            if self.nesterov {
                for (di, &b) in d.iter_mut().zip(buf) {
                    *di += mu * b;
                }
            } else {
                d.copy_from_slice(buf);
            }
        }
        let lr = c::<T>(lr);
        for (pi, &di) in p.iter_mut().zip(&d) {
            *pi -= lr * di;
        }
        s.put_scratch(d);
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.momentum = momentum;
    }
}

/// SGD (see [`SgdConfig`]).
pub type Sgd<T> = RuleOptimizer<T, SgdConfig>;

// --------------------------------------------------------------------------- Adagrad

/// Adagrad (Duchi et al. 2011; `torch.optim.Adagrad`).
///
/// ```text
/// g = g + wd·p;  sum += g²;  clr = lr / (1 + (t − 1)·lr_decay)
/// p = p − clr·g / (√sum + ε)          ε = 1e-10, outside the square root
/// ```
/// The accumulator starts at `initial_accumulator_value` (PyTorch 0; optax 0.1, with ε
/// inside the root). PyTorch's default lr is 1e-2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning-rate decay per step (default 0).
    pub lr_decay: f64,
    /// L2 weight decay (default 0).
    pub weight_decay: f64,
    /// The accumulator's starting value (default 0).
    pub initial_accumulator_value: f64,
    /// ε (default 1e-10).
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
        }
    }
}

tapegrad_core::setters! { AdagradConfig {
    /// With a learning-rate decay.
    with_lr_decay(d: f64) => lr_decay = d;
    /// With weight decay.
    with_weight_decay(wd: f64) => weight_decay = wd;
    /// With a starting accumulator value.
    with_initial_accumulator(v: f64) => initial_accumulator_value = v;
    /// With ε.
    with_eps(eps: f64) => eps = eps;
}}

impl<T: Float> Rule<T> for AdagradConfig {
    fn name(&self) -> &'static str {
        "Adagrad"
    }
    const BUFFERS: &'static [&'static str] = &["sum"];
    const NONNEGATIVE: &'static [&'static str] = &["sum"];

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    fn update(&self, p: &mut [T], g: &[T], s: &mut ParamState<T>, lr: f64, wd: f64) {
        let gd = s.take_decayed(g, p, wd);
        let clr = c::<T>(lr / (1.0 + (s.step - 1) as f64 * self.lr_decay));
        let eps = c::<T>(self.eps);
        let [sum] = s.buffers_mut::<1>(p.len(), c(self.initial_accumulator_value));
        for ((pi, &gi), si) in p.iter_mut().zip(&gd).zip(sum.iter_mut()) {
            *si += gi * gi;
            *pi -= clr * (gi / (si.sqrt() + eps));
        }
        s.put_scratch(gd);
    }
}

/// Adagrad (see [`AdagradConfig`]).
pub type Adagrad<T> = RuleOptimizer<T, AdagradConfig>;

// --------------------------------------------------------------------------- RMSprop

/// RMSprop (Hinton's lecture 6e; `torch.optim.RMSprop`).
///
/// ```text
/// g = g + wd·p;  sq = α·sq + (1 − α)·g²                     (no bias correction)
/// centered: ga = α·ga + (1 − α)·g;  avg = √(sq − ga²) + ε   else avg = √sq + ε
/// momentum > 0: buf = μ·buf + g/avg;  p = p − lr·buf         else p = p − lr·g/avg
/// ```
/// ε is **outside** the root (TF1 and optax's default put it inside), α = 0.99 is the
/// decay. The note form `cache += decay·cache + (1 − decay)·dx²` is a typo for `=`. With no
/// bias correction the first step is about `10·lr·sign(g)` for α = 0.99. PyTorch's default
/// lr is 1e-2.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// α, the decay of the squared average (default 0.99).
    pub alpha: f64,
    /// ε (default 1e-8).
    pub eps: f64,
    /// L2 weight decay (default 0).
    pub weight_decay: f64,
    /// μ (default 0).
    pub momentum: f64,
    /// Normalise by the estimated variance instead of the second moment (default false).
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig {
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        }
    }
}

tapegrad_core::setters! { RmsPropConfig {
    /// With α.
    with_alpha(a: f64) => alpha = a;
    /// With ε.
    with_eps(eps: f64) => eps = eps;
    /// With weight decay.
    with_weight_decay(wd: f64) => weight_decay = wd;
    /// With momentum.
    with_momentum(m: f64) => momentum = m;
    /// Centered.
    with_centered(on: bool) => centered = on;
}}

impl<T: Float> Rule<T> for RmsPropConfig {
    fn name(&self) -> &'static str {
        "RMSprop"
    }
    const BUFFERS: &'static [&'static str] = &["square_avg", "grad_avg", "momentum_buffer"];
    const NONNEGATIVE: &'static [&'static str] = &["square_avg"];

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    fn update(&self, p: &mut [T], g: &[T], s: &mut ParamState<T>, lr: f64, wd: f64) {
        let gd = s.take_decayed(g, p, wd);
        let (alpha, one_m) = (c::<T>(self.alpha), c::<T>(1.0 - self.alpha));
        let eps = c::<T>(self.eps);
        let [sq, ga, buf] = s.buffers_mut::<3>(p.len(), T::zero());
        let lr = c::<T>(lr);
        let mu = c::<T>(self.momentum);
        for i in 0..p.len() {
            let gi = gd[i];
            sq[i] = alpha * sq[i] + one_m * gi * gi;
            let avg = if self.centered {
                // PyTorch: grad_avg.lerp_(grad, 1 − α)
                ga[i] = ga[i] + one_m * (gi - ga[i]);
                (sq[i] - ga[i] * ga[i]).sqrt() + eps
            } else {
                sq[i].sqrt() + eps
            };
            if self.momentum > 0.0 {
                buf[i] = mu * buf[i] + gi / avg;
                p[i] -= lr * buf[i];
            } else {
                p[i] -= lr * (gi / avg);
            }
        }
        s.put_scratch(gd);
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.momentum = momentum;
    }
}

/// RMSprop (see [`RmsPropConfig`]).
pub type RmsProp<T> = RuleOptimizer<T, RmsPropConfig>;

// ---------------------------------------------------------------------- Adam, AdamW

/// The Adam step, with either kind of weight decay.
fn adam_update<T: Float>(
    cfg: &AdamConfig,
    p: &mut [T],
    g: &[T],
    s: &mut ParamState<T>,
    lr: f64,
    wd: f64,
) {
    let ((b1, b2), eps) = (cfg.betas, cfg.eps);
    let decoupled = cfg.decay == WeightDecay::Decoupled;
    // The gradient the moments see: `g` itself, or `g + wd·p` (coupled decay) in the
    // state's working vector.
    let coupled = !decoupled && wd != 0.0;
    if decoupled && wd != 0.0 {
        // AdamW: p ← p·(1 − lr·wd), before the moments.
        let f = c::<T>(1.0 - lr * wd);
        for pi in p.iter_mut() {
            *pi *= f;
        }
    }
    let decayed = coupled.then(|| s.take_decayed(g, p, wd));
    let t = s.step as f64;
    let bc1 = 1.0 - b1.powf(t);
    let bc2 = 1.0 - b2.powf(t);
    let step_size = c::<T>(lr / bc1);
    let bc2_sqrt = c::<T>(bc2.sqrt());
    let (one_m_b1, b2t, one_m_b2, eps) =
        (c::<T>(1.0 - b1), c::<T>(b2), c::<T>(1.0 - b2), c::<T>(eps));
    let n = p.len();
    let gd = &decayed.as_deref().unwrap_or(g)[..n];
    // One element at a time, as PyTorch's formula reads; the loops (all slices of length
    // n, no branch inside) vectorise, and with AVX2 run 8 lanes wide. No fused
    // multiply-adds are formed, so the result is the same on every CPU. The AMSGrad
    // maximum exists only with AMSGrad (as in PyTorch's state).
    if cfg.amsgrad {
        let [m, v, vmax] = s.buffers_mut::<3>(n, T::zero());
        let (m, v, vmax) = (&mut m[..n], &mut v[..n], &mut vmax[..n]);
        with_avx2(|| {
            for i in 0..n {
                let gi = gd[i];
                m[i] = m[i] + one_m_b1 * (gi - m[i]); // exp_avg.lerp_(grad, 1 − β₁)
                v[i] = b2t * v[i] + one_m_b2 * gi * gi;
                // The max of the raw v, divided by the current correction (PyTorch; optax
                // takes the max of the corrected v̂ instead).
                if v[i] > vmax[i] {
                    vmax[i] = v[i];
                }
                let denom = vmax[i].sqrt() / bc2_sqrt + eps;
                p[i] -= step_size * (m[i] / denom);
            }
        });
    } else {
        let [m, v] = s.buffers_mut::<2>(n, T::zero());
        let (m, v) = (&mut m[..n], &mut v[..n]);
        with_avx2(|| {
            for i in 0..n {
                let gi = gd[i];
                m[i] = m[i] + one_m_b1 * (gi - m[i]);
                v[i] = b2t * v[i] + one_m_b2 * gi * gi;
                let denom = v[i].sqrt() / bc2_sqrt + eps;
                p[i] -= step_size * (m[i] / denom);
            }
        });
    }
    if let Some(d) = decayed {
        s.put_scratch(d);
    }
}

/// How Adam applies its weight decay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightDecay {
    /// Coupled: `wd·p` is added to the gradient before the moments (`torch.optim.Adam`).
    L2,
    /// Decoupled: `p ← p·(1 − lr·wd)` before the moments (`torch.optim.AdamW`; Loshchilov &
    /// Hutter 2019). PyTorch scales the decay by lr; the paper scales it by the schedule
    /// multiplier only.
    Decoupled,
}

/// Adam (Kingma & Ba 2015; `torch.optim.Adam`) and AdamW (`torch.optim.AdamW`),
/// bias-corrected, with AMSGrad and either kind of weight decay ([`WeightDecay`]).
///
/// ```text
/// L2:        g = g + wd·p          Decoupled: p = p·(1 − lr·wd)
/// m = β₁m + (1 − β₁)g;  v = β₂v + (1 − β₂)g²
/// p = p − (lr/(1 − β₁ᵗ))·m / (√v/√(1 − β₂ᵗ) + ε)        AMSGrad: v → max(v_max, v)
/// ```
/// The lecture "simplified" Adam `p −= lr·m/(√v + ε)` has no bias correction; PyTorch's
/// first step is about `lr·sign(g)`. ε is added to √v̂ as in Algorithm 1 of the paper (the
/// paper's "efficient" form used by TF/Keras scales ε differently). PyTorch's default lr is
/// 1e-3. [`AdamConfig::default`] is `torch.optim.Adam`'s defaults (L2, no decay);
/// [`AdamConfig::adamw`] is `torch.optim.AdamW`'s (decoupled, 1e-2; optax: 1e-4).
///
/// ```
/// use tapegrad_optim::{AdamConfig, AdamW, WeightDecay};
/// let cfg = AdamConfig::adamw().with_weight_decay(0.05);
/// assert_eq!((cfg.decay, cfg.weight_decay), (WeightDecay::Decoupled, 0.05));
/// let opt = AdamW::<f32>::new(cfg);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// (β₁, β₂) (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// ε (default 1e-8).
    pub eps: f64,
    /// Weight decay (default 0; 1e-2 for [`AdamConfig::adamw`]).
    pub weight_decay: f64,
    /// How the decay is applied (default [`WeightDecay::L2`]).
    pub decay: WeightDecay,
    /// AMSGrad (default false).
    pub amsgrad: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            decay: WeightDecay::L2,
            amsgrad: false,
        }
    }
}

impl AdamConfig {
    /// AdamW: `torch.optim.AdamW`'s defaults (decoupled decay 1e-2).
    pub fn adamw() -> Self {
        AdamConfig {
            weight_decay: 1e-2,
            decay: WeightDecay::Decoupled,
            ..AdamConfig::default()
        }
    }
}

tapegrad_core::setters! { AdamConfig {
    /// With (β₁, β₂).
    with_betas(b1: f64, b2: f64) => betas = (b1, b2);
    /// With ε.
    with_eps(eps: f64) => eps = eps;
    /// With weight decay (of this configuration's kind).
    with_weight_decay(wd: f64) => weight_decay = wd;
    /// With the kind of weight decay.
    with_decay(decay: WeightDecay) => decay = decay;
    /// With AMSGrad.
    with_amsgrad(on: bool) => amsgrad = on;
}}

impl<T: Float> Rule<T> for AdamConfig {
    fn name(&self) -> &'static str {
        match self.decay {
            WeightDecay::L2 => "Adam",
            WeightDecay::Decoupled => "AdamW",
        }
    }
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];
    const NONNEGATIVE: &'static [&'static str] = &["exp_avg_sq", "max_exp_avg_sq"];

    fn has_buffer(&self, i: usize) -> bool {
        // `max_exp_avg_sq` only with AMSGrad.
        i < 2 || self.amsgrad
    }

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    fn update(&self, p: &mut [T], g: &[T], s: &mut ParamState<T>, lr: f64, wd: f64) {
        adam_update(self, p, g, s, lr, wd);
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.betas.0 = momentum;
    }
}

/// Adam or AdamW, as its [`AdamConfig`] says.
pub type Adam<T> = RuleOptimizer<T, AdamConfig>;

/// AdamW: the same optimizer as [`Adam`], built from [`AdamConfig::adamw`] (the
/// configuration, not the name, decides the kind of decay).
pub type AdamW<T> = RuleOptimizer<T, AdamConfig>;

// ----------------------------------------------------------------------------- NAdam

/// NAdam (Dozat 2016; `torch.optim.NAdam`) with Dozat's momentum schedule.
///
/// ```text
/// g = g + wd·p;  μₜ = β₁(1 − ½·0.96^(t·ψ));  μₜ₊₁ likewise;  Π ← Π·μₜ      ψ = 4e-3
/// m, v as Adam;  denom = √(v/(1 − β₂ᵗ)) + ε
/// p = p − lr(1 − μₜ)/(1 − Π)·g/denom − lr·μₜ₊₁/(1 − Π·μₜ₊₁)·m/denom
/// ```
/// optax's `nadam` uses a constant β₁ instead of the schedule, so the two differ. PyTorch's
/// default lr is 2e-3.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NAdamConfig {
    /// (β₁, β₂) (default (0.9, 0.999)).
    pub betas: (f64, f64),
    /// ε (default 1e-8).
    pub eps: f64,
    /// Coupled L2 weight decay (default 0).
    pub weight_decay: f64,
    /// ψ, the momentum decay (default 4e-3).
    pub momentum_decay: f64,
}

impl Default for NAdamConfig {
    fn default() -> Self {
        NAdamConfig {
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
        }
    }
}

tapegrad_core::setters! { NAdamConfig {
    /// With (β₁, β₂).
    with_betas(b1: f64, b2: f64) => betas = (b1, b2);
    /// With weight decay.
    with_weight_decay(wd: f64) => weight_decay = wd;
    /// With ε.
    with_eps(eps: f64) => eps = eps;
    /// With ψ, the momentum decay.
    with_momentum_decay(psi: f64) => momentum_decay = psi;
}}

impl<T: Float> Rule<T> for NAdamConfig {
    fn name(&self) -> &'static str {
        "NAdam"
    }
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
    const NONNEGATIVE: &'static [&'static str] = &["exp_avg_sq"];
    const SCALARS: &'static [(&'static str, f64)] = &[("mu_product", 1.0)];

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    fn update(&self, p: &mut [T], g: &[T], s: &mut ParamState<T>, lr: f64, wd: f64) {
        let gd = s.take_decayed(g, p, wd);
        let (b1, b2) = self.betas;
        let t = s.step as f64;
        let bc2 = 1.0 - b2.powf(t);
        let mu = b1 * (1.0 - 0.5 * 0.96f64.powf(t * self.momentum_decay));
        let mu_next = b1 * (1.0 - 0.5 * 0.96f64.powf((t + 1.0) * self.momentum_decay));
        s.scalars[0] *= mu;
        let prod = s.scalars[0];
        let a = c::<T>(lr * (1.0 - mu) / (1.0 - prod));
        let b = c::<T>(lr * mu_next / (1.0 - prod * mu_next));
        let (one_m_b1, b2t, one_m_b2, bc2, eps) = (
            c::<T>(1.0 - b1),
            c::<T>(b2),
            c::<T>(1.0 - b2),
            c::<T>(bc2),
            c::<T>(self.eps),
        );
        let [m, v] = s.buffers_mut::<2>(p.len(), T::zero());
        for i in 0..p.len() {
            let gi = gd[i];
            m[i] = m[i] + one_m_b1 * (gi - m[i]);
            v[i] = b2t * v[i] + one_m_b2 * gi * gi;
            let denom = (v[i] / bc2).sqrt() + eps;
            p[i] -= a * (gi / denom);
            p[i] -= b * (m[i] / denom);
        }
        s.put_scratch(gd);
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.betas.0 = momentum;
    }
}

/// NAdam (see [`NAdamConfig`]).
pub type NAdam<T> = RuleOptimizer<T, NAdamConfig>;

// -------------------------------------------------------------------------- Adadelta

/// Adadelta (Zeiler 2012; `torch.optim.Adadelta`).
///
/// ```text
/// g = g + wd·p;  sq = ρ·sq + (1 − ρ)g²;  δ = √(acc + ε)/√(sq + ε)·g    (ε inside both roots)
/// acc = ρ·acc + (1 − ρ)δ²;  p = p − lr·δ                               ρ = 0.9, ε = 1e-6
/// ```
/// PyTorch's default lr is 1.0 (the paper has no learning rate); optax matches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdadeltaConfig {
    /// ρ (default 0.9).
    pub rho: f64,
    /// ε (default 1e-6).
    pub eps: f64,
    /// L2 weight decay (default 0).
    pub weight_decay: f64,
}

impl Default for AdadeltaConfig {
    fn default() -> Self {
        AdadeltaConfig {
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
        }
    }
}

tapegrad_core::setters! { AdadeltaConfig {
    /// With ρ.
    with_rho(rho: f64) => rho = rho;
    /// With weight decay.
    with_weight_decay(wd: f64) => weight_decay = wd;
    /// With ε.
    with_eps(eps: f64) => eps = eps;
}}

impl<T: Float> Rule<T> for AdadeltaConfig {
    fn name(&self) -> &'static str {
        "Adadelta"
    }
    const BUFFERS: &'static [&'static str] = &["square_avg", "acc_delta"];
    const NONNEGATIVE: &'static [&'static str] = &["square_avg", "acc_delta"];

    fn weight_decay(&self) -> f64 {
        self.weight_decay
    }

    fn update(&self, p: &mut [T], g: &[T], s: &mut ParamState<T>, lr: f64, wd: f64) {
        let gd = s.take_decayed(g, p, wd);
        let (rho, one_m, eps, lr) = (
            c::<T>(self.rho),
            c::<T>(1.0 - self.rho),
            c::<T>(self.eps),
            c::<T>(lr),
        );
        let [sq, acc] = s.buffers_mut::<2>(p.len(), T::zero());
        for i in 0..p.len() {
            let gi = gd[i];
            sq[i] = rho * sq[i] + one_m * gi * gi;
            let std = (sq[i] + eps).sqrt();
            let delta = (acc[i] + eps).sqrt() / std * gi;
            acc[i] = rho * acc[i] + one_m * delta * delta;
            p[i] -= lr * delta;
        }
        s.put_scratch(gd);
    }
}

/// Adadelta (see [`AdadeltaConfig`]).
pub type Adadelta<T> = RuleOptimizer<T, AdadeltaConfig>;

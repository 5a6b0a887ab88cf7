//! Losses, with PyTorch's definitions and reductions, numerically stable for large logits.
//!
//! One convention: `loss(input, target, options…, reduction)`, the reduction last; class
//! targets are `&Tensor<usize>` (indices are not differentiated), every other target a
//! `Var`. Each loss has a `try_` form that returns the error the panicking form raises.
//! `cross_entropy_with` takes the reduction inside its [`CrossEntropyConfig`] with the
//! other options.
//!
//! - `Mean` averages over **all elements** for the element-wise losses (MSE, L1, smooth-L1,
//!   Huber, binary cross-entropy, KL) and over the **batch** for cross-entropy and NLL (with
//!   class weights: `Σ w[tᵢ]·ℓᵢ / Σ w[tᵢ]`).
//! - `BatchMean` divides the sum by the size of the first dimension (KL's `'batchmean'`, the
//!   true mean KL per sample).
//! - smooth-L1(β) is `huber(δ=β)/β`; they agree only for β = δ = 1.
//! - Cross-entropy works from logits through `log_softmax`; label smoothing ε gives every
//!   class `ε/C` and the true class `1 − ε` more.
//! - Binary cross-entropy with logits is `(1 − y)·x + (1 + (pw − 1)·y)·softplus(−x)`, which
//!   never overflows; on probabilities each log is clamped at −100, as PyTorch.

use tapegrad_core::{Error, Float, Result, Shape, Tensor, Var};

/// How a loss's per-element values are combined.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean (see the module docs for what is averaged over).
    #[default]
    Mean,
    /// The sum.
    Sum,
    /// The sum divided by the size of the first dimension.
    BatchMean,
    /// No reduction: the per-element (or per-sample) losses.
    None,
}

fn reduce<'g, T: Float>(l: Var<'g, T>, r: Reduction) -> Var<'g, T> {
    match r {
        Reduction::Mean => l.mean(),
        Reduction::Sum => l.sum(),
        Reduction::BatchMean => {
            let n = l.shape().first().copied().unwrap_or(1);
            l.sum() / T::from_f64(n as f64)
        }
        Reduction::None => l,
    }
}

#[track_caller]
fn same_shape<T: Float>(op: &'static str, a: Var<'_, T>, b: Var<'_, T>) -> Result<()> {
    let (sa, sb) = (a.shape(), b.shape());
    if sa != sb {
        return Err(Error::shape(
            op,
            &[&sa, &sb],
            "the input and the target must have the same shape",
        ));
    }
    Ok(())
}

/// The panicking form of a loss: raises the `try_` form's error at the caller's line.
#[track_caller]
fn raised<T>(r: Result<T>) -> T {
    r.unwrap_or_else(|e| e.raise())
}

/// A loss and its panicking twin, written once: `pub fn name / try_name(args) { body }`
/// defines `try_name` (the docs given, returning `Result<Var>`, the body unchanged) and
/// `name`, which returns the `Var` and raises `try_name`'s error at the caller's line.
macro_rules! loss {
    (
        $(#[$doc:meta])*
        pub fn $name:ident / $try:ident($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$doc])*
        #[track_caller]
        pub fn $try<'g, T: Float>($($arg: $ty),*) -> Result<Var<'g, T>> $body

        #[doc = concat!(
            "[`", stringify!($try), "`], panicking at the caller's line where that returns an ",
            "error."
        )]
        #[track_caller]
        pub fn $name<'g, T: Float>($($arg: $ty),*) -> Var<'g, T> {
            raised($try($($arg),*))
        }
    };
}

loss! {
    /// Mean squared error `(x − y)²`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes differ.
    pub fn mse_loss / try_mse_loss(input: Var<'g, T>, target: Var<'g, T>, r: Reduction) {
        same_shape("mse_loss", input, target)?;
        Ok(reduce((input - target).square(), r))
    }
}

loss! {
    /// Mean absolute error `|x − y|` (subgradient 0 at equality).
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes differ.
    pub fn l1_loss / try_l1_loss(input: Var<'g, T>, target: Var<'g, T>, r: Reduction) {
        same_shape("l1_loss", input, target)?;
        Ok(reduce((input - target).abs(), r))
    }
}

loss! {
    /// Smooth L1: `½d²/β` where `|d| < β`, `|d| − ½β` elsewhere (`β = 0` is the L1 loss).
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::Argument`] if the shapes differ or `β < 0`.
    pub fn smooth_l1_loss / try_smooth_l1_loss(
        input: Var<'g, T>, target: Var<'g, T>, beta: f64, r: Reduction,
    ) {
        same_shape("smooth_l1_loss", input, target)?;
        if beta.is_nan() || beta < 0.0 {
            return Err(Error::argument(
                "smooth_l1_loss",
                format!("beta must be ≥ 0, got {beta}"),
            ));
        }
        let d = input - target;
        let ad = d.abs();
        if beta == 0.0 {
            return Ok(reduce(ad, r));
        }
        let quad = ad.lt_scalar(T::from_f64(beta));
        let l = Var::where_cond(
            &quad,
            d.square() * T::from_f64(0.5 / beta),
            ad - T::from_f64(0.5 * beta),
        );
        Ok(reduce(l, r))
    }
}

loss! {
    /// Huber: `½d²` where `|d| ≤ δ`, `δ(|d| − ½δ)` elsewhere.
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::Argument`] if the shapes differ or `δ ≤ 0`.
    pub fn huber_loss / try_huber_loss(
        input: Var<'g, T>, target: Var<'g, T>, delta: f64, r: Reduction,
    ) {
        same_shape("huber_loss", input, target)?;
        if delta.is_nan() || delta <= 0.0 {
            return Err(Error::argument(
                "huber_loss",
                format!("delta must be > 0, got {delta}"),
            ));
        }
        let d = input - target;
        let ad = d.abs();
        let quad = ad.le_scalar(T::from_f64(delta));
        let l = Var::where_cond(
            &quad,
            d.square() * T::from_f64(0.5),
            (ad - T::from_f64(0.5 * delta)) * T::from_f64(delta),
        );
        Ok(reduce(l, r))
    }
}

/// Options of [`cross_entropy_with`].
#[derive(Clone, Debug, PartialEq)]
pub struct CrossEntropyConfig<T: Float> {
    /// Reduction (default mean over the batch).
    pub reduction: Reduction,
    /// Label smoothing ε in `[0, 1]` (default 0).
    pub label_smoothing: f64,
    /// A weight per class (default none).
    pub weight: Option<Tensor<T>>,
}

impl<T: Float> Default for CrossEntropyConfig<T> {
    fn default() -> Self {
        CrossEntropyConfig {
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
            weight: None,
        }
    }
}

impl<T: Float> CrossEntropyConfig<T> {
    /// With a reduction.
    pub fn with_reduction(mut self, r: Reduction) -> Self {
        self.reduction = r;
        self
    }
    /// With label smoothing ε.
    pub fn with_label_smoothing(mut self, eps: f64) -> Self {
        self.label_smoothing = eps;
        self
    }
    /// With class weights.
    pub fn with_weight(mut self, w: Tensor<T>) -> Self {
        self.weight = Some(w);
        self
    }
}

/// Checks class-index targets against `[N, C, ...]` scores; returns C.
#[track_caller]
fn check_targets(op: &'static str, scores: &[usize], target: &Tensor<usize>) -> Result<usize> {
    let ok = scores.len() >= 2
        && target.ndim() == scores.len() - 1
        && target.dims()[0] == scores[0]
        && target.dims()[1..] == scores[2..];
    if !ok {
        let want = [
            scores.get(..1).unwrap_or(&[]),
            scores.get(2..).unwrap_or(&[]),
        ]
        .concat();
        return Err(Error::shape(
            op,
            &[scores, target.dims()],
            format!("scores [N, C, ...] need class indices [N, ...] = {want:?}"),
        ));
    }
    let c = scores[1];
    if let Some(&bad) = target.as_slice().iter().find(|&&t| t >= c) {
        return Err(Error::argument(
            op,
            format!("class index {bad} is out of range for {c} classes"),
        ));
    }
    Ok(c)
}

/// The per-sample negative log-likelihood `−logp[i, tᵢ]` (weighted) and the sum of the
/// weights used by the mean.
fn nll_parts<'g, T: Float>(
    logp: Var<'g, T>,
    target: &Tensor<usize>,
    weight: Option<&Tensor<T>>,
) -> (Var<'g, T>, Option<Var<'g, T>>) {
    let mut idx_shape: Shape = target.dims().into();
    idx_shape.insert(1, 1);
    let picked = logp.gather(1, &target.with_shape(idx_shape)).squeeze_dim(1);
    let g = logp.graph();
    match weight {
        None => (-picked, None),
        Some(w) => {
            let wt = target.map(|t| w.as_slice()[t]);
            let total = wt.sum();
            let wt = g.constant(wt);
            (-(picked * wt), Some(g.constant(total)))
        }
    }
}

fn finish<'g, T: Float>(
    per: Var<'g, T>,
    total_weight: Option<Var<'g, T>>,
    r: Reduction,
) -> Var<'g, T> {
    match (r, total_weight) {
        (Reduction::Mean, Some(w)) => per.sum() / w,
        _ => reduce(per, r),
    }
}

loss! {
    /// Negative log-likelihood of class indices given log-probabilities `[N, C, ...]`.
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::Argument`] if the shapes disagree, an index is out of
    /// range, or the weights are not `[C]`.
    pub fn nll_loss / try_nll_loss(
        logp: Var<'g, T>, target: &Tensor<usize>, weight: Option<&Tensor<T>>, r: Reduction,
    ) {
        let c = check_targets("nll_loss", &logp.shape(), target)?;
        if let Some(w) = weight {
            if w.dims() != [c] {
                return Err(Error::argument(
                    "nll_loss",
                    format!("class weights must have shape [{c}], got {:?}", w.dims()),
                ));
            }
        }
        let (per, total) = nll_parts(logp, target, weight);
        Ok(finish(per, total, r))
    }
}

loss! {
    /// Cross-entropy of logits `[N, C, ...]` against class indices `[N, ...]` (`Mean`: over the
    /// batch).
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::Argument`] if the shapes disagree or an index is out of range.
    pub fn cross_entropy / try_cross_entropy(
        logits: Var<'g, T>, target: &Tensor<usize>, r: Reduction,
    ) {
        try_cross_entropy_with(
            logits,
            target,
            &CrossEntropyConfig::default().with_reduction(r),
        )
    }
}

loss! {
    /// Cross-entropy with a reduction, label smoothing and class weights, exactly as
    /// PyTorch's `F.cross_entropy`:
    /// `(1 − ε)·nll + (ε/C)·Σ_c(−w_c·logp_c)`, each term reduced (the weighted mean divides by
    /// `Σ w[tᵢ]`).
    ///
    /// # Errors
    /// [`Error::Shape`] or [`Error::Argument`] if the shapes disagree, an index is out of
    /// range, ε is outside `[0, 1]`, or the weights are not `[C]`.
    pub fn cross_entropy_with / try_cross_entropy_with(
        logits: Var<'g, T>, target: &Tensor<usize>, cfg: &CrossEntropyConfig<T>,
    ) {
        let c = check_targets("cross_entropy", &logits.shape(), target)?;
        let eps = cfg.label_smoothing;
        if !((0.0..=1.0).contains(&eps)) {
            return Err(Error::argument(
                "cross_entropy",
                format!("label smoothing must be in [0, 1], got {eps}"),
            ));
        }
        if let Some(w) = &cfg.weight {
            if w.dims() != [c] {
                return Err(Error::argument(
                    "cross_entropy",
                    format!("class weights must have shape [{c}], got {:?}", w.dims()),
                ));
            }
        }
        let logp = logits.log_softmax(1);
        let (per, total) = nll_parts(logp, target, cfg.weight.as_ref());
        let nll = finish(per, total, cfg.reduction);
        if eps == 0.0 {
            return Ok(nll);
        }
        let weighted = match &cfg.weight {
            Some(w) => {
                let mut s = vec![1; logits.ndim()];
                s[1] = c;
                logp * w.reshape(s)
            }
            None => logp,
        };
        let smooth = -weighted.sum_dim(1, false);
        let smooth = finish(smooth, total, cfg.reduction);
        Ok(nll * T::from_f64(1.0 - eps) + smooth * T::from_f64(eps / c as f64))
    }
}

loss! {
    /// Cross-entropy of logits `[N, C, ...]` against class probabilities of the same shape
    /// (soft targets): `−Σ_c p_c·log softmax(x)_c`, mean over the batch.
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes differ.
    pub fn cross_entropy_soft / try_cross_entropy_soft(
        logits: Var<'g, T>, probs: Var<'g, T>, r: Reduction,
    ) {
        same_shape("cross_entropy_soft", logits, probs)?;
        let per = -(logits.log_softmax(1) * probs).sum_dim(1, false);
        Ok(reduce(per, r))
    }
}

loss! {
    /// Binary cross-entropy of logits, `−[pw·y·log σ(x) + (1 − y)·log(1 − σ(x))]`, computed as
    /// `(1 − y)·x + (1 + (pw − 1)·y)·softplus(−x)` (stable for any x). `pos_weight` broadcasts
    /// over the last dimension (one weight per class).
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes differ.
    pub fn binary_cross_entropy_with_logits / try_binary_cross_entropy_with_logits(
        x: Var<'g, T>, y: Var<'g, T>, pos_weight: Option<&Tensor<T>>, r: Reduction,
    ) {
        same_shape("binary_cross_entropy_with_logits", x, y)?;
        // (1 − y)·x + w·ln(1 + e^{−x}), w = 1 + (pos_weight − 1)·y, is PyTorch's formula; for
        // x < 0 its two terms nearly cancel (x = −21, y = 0: −21 + 21.00000000076), losing
        // digits. With ln(1 + e^{−x}) = ln(1 + e^{x}) − x it is also w·ln(1 + e^{x}) −
        // pos_weight·y·x, whose terms have one sign for x ≤ 0. Each form is taken where it adds
        // like-signed terms, so the loss is exact to rounding for every finite logit; both are
        // smooth and equal, so the gradient (which follows the form taken) is right at 0 too.
        // Softplus without its cut-off (an infinite threshold): the cut-off at 20 would drop
        // the e^{−21} of a logit of −21.
        let (one, inf) = (T::one(), T::infinity());
        let pw_y = match pos_weight {
            Some(pw) => y * pw,
            None => y,
        };
        let w = pw_y - y + one;
        let for_positive = y.rsub_scalar(one) * x + w * (-x).softplus_with(one, inf);
        let for_negative = w * x.softplus_with(one, inf) - pw_y * x;
        let l = Var::where_cond(&x.gt_scalar(T::zero()), for_positive, for_negative);
        Ok(reduce(l, r))
    }
}

loss! {
    /// Binary cross-entropy of probabilities, `−[y·log p + (1 − y)·log(1 − p)]`, each log
    /// clamped at −100 (PyTorch).
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes differ.
    pub fn binary_cross_entropy / try_binary_cross_entropy(
        p: Var<'g, T>, y: Var<'g, T>, r: Reduction,
    ) {
        same_shape("binary_cross_entropy", p, y)?;
        let lo = T::from_f64(-100.0);
        let inf = T::infinity();
        let l = -(y * p.log().clamp(lo, inf)
            + y.rsub_scalar(T::one()) * p.rsub_scalar(T::one()).log().clamp(lo, inf));
        Ok(reduce(l, r))
    }
}

loss! {
    /// KL divergence `KL(target ‖ model) = Σ target·(log target − input)` with `input` the
    /// model's **log**-probabilities and `target` probabilities (or log-probabilities with
    /// `log_target`). Terms with `target = 0` are 0. Use [`Reduction::BatchMean`] for the true
    /// mean KL per sample (`Mean` divides by every element, as PyTorch's `'mean'`).
    ///
    /// # Errors
    /// [`Error::Shape`] if the shapes differ.
    pub fn kl_div / try_kl_div(
        input: Var<'g, T>, target: Var<'g, T>, log_target: bool, r: Reduction,
    ) {
        same_shape("kl_div", input, target)?;
        let l = if log_target {
            target.exp() * (target - input)
        } else {
            let pos = target.gt_scalar(T::zero());
            // log of the positive entries only: the masked ones would be log 0.
            let safe = Var::where_cond(&pos, target, target.graph().scalar(T::one()));
            let terms = target * (safe.log() - input);
            Var::where_cond(&pos, terms, target.graph().scalar(T::zero()))
        };
        Ok(reduce(l, r))
    }
}

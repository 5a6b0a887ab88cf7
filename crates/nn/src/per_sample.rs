//! Per-example gradients: for a batch of B examples, the gradient of each example's loss
//! with respect to every parameter, as tensors with a leading B axis (`torch.func`'s
//! `vmap(grad(f))`, Opacus's `grad_sample`) — and on top of them per-example norms,
//! per-example clipping and the DP-SGD step.
//!
//! [`per_sample_grads`] runs the batch forward and backward once. Layers with a per-example
//! rule record what they saw (their input, and their output's gradient, which for a loss
//! that sums the examples' losses is each example's own gradient row by row), and each
//! parameter's per-example gradient is formed from those:
//!
//! | layer | per-example gradient of the weight (example b) |
//! |---|---|
//! | [`crate::Linear`] | `g_bᵀ x_b` (summed over any middle axes), bias `Σ g_b` |
//! | [`crate::Conv2d`] | `g_b · unfold(x_b)ᵀ` per group, bias `Σ_{h,w} g_b` |
//! | [`crate::Embedding`] | the rows of `g_b` added at example b's indices |
//! | [`crate::LayerNorm`], [`crate::BatchNorm`] in evaluation | `Σ g_b ⊙ x̂_b` over the axes the weight does not span, bias `Σ g_b` |
//!
//! Any other parameter (a [`crate::PRelu`]'s slope, a custom module's) sends the whole
//! computation to the fallback: one forward and backward per example, exact for any model.
//! [`PerSampleGrads::method`] says which ran. Both give the same numbers (tested to 1e-12
//! in f64 against the loop and against the batch gradient, for every layer above).
//!
//! The examples of a batch must not interact in the forward pass: batch normalisation in
//! training mode (which normalises with the batch's statistics) is refused, as Opacus
//! refuses it; in evaluation mode it is an affine map per example and has its rule.
//!
//! ```
//! use tapegrad_core::{seeded_rng, ParamStore, Tensor};
//! use tapegrad_nn::{cross_entropy_with, per_sample_grads, CrossEntropyConfig, Init, Linear,
//!     Method, Mode, Reduction, Relu, Sequential};
//!
//! let mut store = ParamStore::<f64>::new();
//! let mut rng = seeded_rng(0);
//! let model = Sequential::new()
//!     .push(Linear::new(&mut store, "0", 4, 8, Init::HeNormal, &mut rng))
//!     .push(Relu)
//!     .push(Linear::new(&mut store, "2", 8, 3, Init::HeNormal, &mut rng));
//! let x = Tensor::rand_uniform([5, 4], -1.0, 1.0, &mut rng);
//! let labels = Tensor::from_vec(vec![0, 2, 1, 1, 0], [5]);
//! let per_example = CrossEntropyConfig { reduction: Reduction::None, ..Default::default() };
//! let ps = per_sample_grads(&model, &mut store, Mode::Eval, None, &x, |logits, rows| {
//!     let t = Tensor::from_slice(&labels.as_slice()[rows.clone()], [rows.len()]);
//!     cross_entropy_with(logits, &t, &per_example)
//! })
//! .unwrap();
//! assert_eq!(ps.method(), Method::Vectorized);
//! let w = store.key("0.weight").unwrap();
//! assert_eq!(ps.get(w).unwrap().dims(), &[5, 8, 4]);
//! assert_eq!(ps.norms().dims(), &[5]);
//! ```

use std::cell::RefCell;
use std::ops::Range;

use rand::Rng;
use tapegrad_core::{
    Conv2dSpec, Error, Float, Gradients, Graph, ParamKey, ParamStore, Result, StdRng, Tensor,
    Transpose, Var, Window2d,
};

use crate::module::{Forward, Mode, Module};

/// What a layer with a per-example rule is (its parameters and what the rule needs).
#[derive(Clone, Debug)]
pub(crate) enum TapKind {
    /// `y = x·Wᵀ + b` over the last axis.
    Linear {
        weight: ParamKey,
        bias: Option<ParamKey>,
    },
    /// `y = conv2d(x, W) + b`.
    Conv2d {
        weight: ParamKey,
        bias: Option<ParamKey>,
        kernel: (usize, usize),
        spec: Conv2dSpec,
    },
    /// `y[i] = W[indices[i]]`.
    Embedding {
        weight: ParamKey,
        num: usize,
        indices: Tensor<usize>,
    },
    /// `y = x̂·w + b`, with `w` and `b` spanning the input's axes `axes`.
    Affine {
        weight: Option<ParamKey>,
        bias: Option<ParamKey>,
        axes: Vec<usize>,
    },
}

impl TapKind {
    fn keys(&self) -> impl Iterator<Item = ParamKey> {
        let (w, b) = match self {
            TapKind::Linear { weight, bias } | TapKind::Conv2d { weight, bias, .. } => {
                (Some(*weight), *bias)
            }
            TapKind::Embedding { weight, .. } => (Some(*weight), None),
            TapKind::Affine { weight, bias, .. } => (*weight, *bias),
        };
        w.into_iter().chain(b)
    }
}

/// One layer's record: its kind, its input's value and its output (retained).
struct Tap<'g, T: Float> {
    kind: TapKind,
    input: Tensor<T>,
    output: Var<'g, T>,
}

/// What the layers of a per-example pass recorded, and how often each parameter was read.
pub(crate) struct Taps<'g, T: Float> {
    taps: Vec<Tap<'g, T>>,
    reads: Vec<(ParamKey, usize)>,
}

impl<T: Float> Default for Taps<'_, T> {
    fn default() -> Self {
        Taps {
            taps: Vec::new(),
            reads: Vec::new(),
        }
    }
}

impl<'g, T: Float> Taps<'g, T> {
    /// Counts a read of `key` (every `Forward::param`).
    pub(crate) fn read(&mut self, key: ParamKey) {
        match self.reads.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => self.reads.push((key, 1)),
        }
    }

    pub(crate) fn push(
        &mut self,
        kind: TapKind,
        input: Tensor<T>,
        output: Var<'g, T>,
    ) -> Var<'g, T> {
        let output = output.retain_grad();
        self.taps.push(Tap {
            kind,
            input,
            output,
        });
        output
    }

    /// Whether every read of `key` went into a layer with a rule.
    fn covers(&self, key: ParamKey) -> bool {
        let tapped = self
            .taps
            .iter()
            .flat_map(|t| t.kind.keys())
            .filter(|&k| k == key)
            .count();
        let read = self
            .reads
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(0, |r| r.1);
        tapped > 0 && tapped == read
    }
}

/// How [`per_sample_grads`] computed the gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// One batch forward and backward, and each layer's per-example rule.
    Vectorized,
    /// A forward and backward pass per example (a parameter had no per-example rule).
    Loop,
}

/// Per-example gradients: for each parameter that got a gradient, a tensor of shape
/// `[B] ++ parameter.shape`.
#[derive(Clone, Debug)]
pub struct PerSampleGrads<T: Float> {
    batch: usize,
    grads: Vec<(ParamKey, Tensor<T>)>,
    method: Method,
}

/// The per-example gradients of the losses `loss(model(x), 0..B)` with respect to every
/// trainable parameter of `model` (see the [module docs](self)).
///
/// `loss(output, rows)` returns the losses of the examples `rows` of the batch, one per
/// example (shape `[rows.len()]`: a loss with `Reduction::None`); the output it is given
/// holds just those examples. `mode` and `rng` are the pass's (dropout draws its masks from
/// `rng` in training mode; the fallback draws them example by example).
///
/// # Errors
/// [`Error::Argument`] if `x` has no batch axis or an empty one, if `loss` returns another
/// shape, or if a per-example tensor's size overflows; [`Error::Alloc`] if its memory
/// cannot be had.
///
/// # Panics
/// As the model's forward does (shapes), and for batch normalisation in training mode,
/// whose examples are not independent.
#[track_caller]
pub fn per_sample_grads<T, M, L>(
    model: &M,
    store: &mut ParamStore<T>,
    mode: Mode,
    mut rng: Option<&mut StdRng>,
    x: &Tensor<T>,
    loss: L,
) -> Result<PerSampleGrads<T>>
where
    T: Float,
    M: Module<T> + ?Sized,
    L: for<'g> Fn(Var<'g, T>, Range<usize>) -> Var<'g, T>,
{
    let batch = match x.dims().first() {
        Some(&b) if b > 0 => b,
        _ => {
            return Err(Error::argument(
                "per_sample_grads",
                format!(
                    "the input needs a non-empty batch axis, got shape {:?}",
                    x.dims()
                ),
            ))
        }
    };
    let g = Graph::new();
    let taps = RefCell::new(Taps::default());
    let xv = g.constant(x.clone());
    let y = {
        let mut f = Forward::new(&g, store, mode, rng.as_deref_mut()).for_per_sample(Some(&taps));
        model.forward(&mut f, xv)
    };
    let total = checked_losses(loss(y, 0..batch), batch)?;
    if !total.requires_grad() {
        return Ok(PerSampleGrads {
            batch,
            grads: Vec::new(),
            method: Method::Vectorized,
        });
    }
    let grads = total.backward();
    let taps = taps.into_inner();
    if !grads.params().all(|(k, _)| taps.covers(k)) {
        drop(taps);
        drop(grads);
        return loop_over_examples(model, store, mode, rng, x, loss);
    }
    let mut out: Vec<(ParamKey, Tensor<T>)> = Vec::new();
    for tap in &taps.taps {
        let Some(gy) = grads.get(tap.output) else {
            continue;
        };
        for (k, t) in tap_grads(&tap.kind, &tap.input, gy, batch, store)? {
            if grads.param(k).is_none() {
                continue; // frozen
            }
            match out.iter_mut().find(|(key, _)| *key == k) {
                Some((_, acc)) => *acc += &t,
                None => out.push((k, t)),
            }
        }
    }
    Ok(PerSampleGrads {
        batch,
        grads: in_store_order(store, out),
        method: Method::Vectorized,
    })
}

/// The sum of the examples' losses, after checking there is one per example.
#[track_caller]
fn checked_losses<T: Float>(l: Var<'_, T>, rows: usize) -> Result<Var<'_, T>> {
    if l.shape().as_slice() != [rows] {
        return Err(Error::argument(
            "per_sample_grads",
            format!(
                "the loss must return one loss per example, shape [{rows}], got {:?} (use \
                 Reduction::None)",
                l.shape().as_slice()
            ),
        ));
    }
    Ok(l.sum())
}

/// The fallback: one forward and backward pass per example.
#[track_caller]
fn loop_over_examples<T, M, L>(
    model: &M,
    store: &mut ParamStore<T>,
    mode: Mode,
    mut rng: Option<&mut StdRng>,
    x: &Tensor<T>,
    loss: L,
) -> Result<PerSampleGrads<T>>
where
    T: Float,
    M: Module<T> + ?Sized,
    L: for<'g> Fn(Var<'g, T>, Range<usize>) -> Var<'g, T>,
{
    let batch = x.dims()[0];
    let mut per: Vec<(ParamKey, Vec<Tensor<T>>)> = Vec::new();
    let mut g = Graph::new();
    for b in 0..batch {
        g.reset();
        let xb = g.constant(x.narrow(0, b, 1));
        let y = model.forward(
            &mut Forward::new(&g, store, mode, rng.as_deref_mut()).for_per_sample(None),
            xb,
        );
        let l = checked_losses(loss(y, b..b + 1), 1)?;
        if !l.requires_grad() {
            continue;
        }
        for (k, t) in l.backward().params() {
            let slot = match per.iter().position(|(key, _)| *key == k) {
                Some(i) => &mut per[i].1,
                None => {
                    per.push((k, Vec::with_capacity(batch)));
                    &mut per.last_mut().expect("pushed").1
                }
            };
            // An example whose pass did not reach the parameter gets zeros.
            while slot.len() < b {
                slot.push(Tensor::zeros(t.dims()));
            }
            slot.push(t.clone());
        }
    }
    let mut out = Vec::with_capacity(per.len());
    for (k, mut rows) in per {
        let shape = rows[0].dims().to_vec();
        while rows.len() < batch {
            rows.push(Tensor::zeros(shape.as_slice()));
        }
        let refs: Vec<&Tensor<T>> = rows.iter().collect();
        out.push((k, Tensor::try_stack(&refs, 0)?));
    }
    Ok(PerSampleGrads {
        batch,
        grads: in_store_order(store, out),
        method: Method::Loop,
    })
}

fn in_store_order<T: Float>(
    store: &ParamStore<T>,
    mut grads: Vec<(ParamKey, Tensor<T>)>,
) -> Vec<(ParamKey, Tensor<T>)> {
    let order: Vec<ParamKey> = store.keys().collect();
    grads.sort_by_key(|(k, _)| order.iter().position(|o| o == k));
    grads
}

/// `n · m` or an error naming the per-example tensor.
#[track_caller]
fn times(n: usize, m: usize) -> Result<usize> {
    n.checked_mul(m).ok_or_else(|| {
        Error::argument(
            "per_sample_grads",
            format!("a per-example gradient of {n} × {m} elements overflows"),
        )
    })
}

/// One layer's per-example gradients, from its input `x` and its output's gradient `gy`.
#[track_caller]
fn tap_grads<T: Float>(
    kind: &TapKind,
    x: &Tensor<T>,
    gy: &Tensor<T>,
    batch: usize,
    store: &ParamStore<T>,
) -> Result<Vec<(ParamKey, Tensor<T>)>> {
    let mut out = Vec::with_capacity(2);
    match kind {
        TapKind::Linear { weight, bias } => {
            let (din, dout) = (x.dims()[x.ndim() - 1], gy.dims()[gy.ndim() - 1]);
            let rows = x.numel() / batch.max(1) / din.max(1);
            let x3 = x.try_reshape([batch, rows, din])?;
            let g3 = gy.try_reshape([batch, rows, dout])?;
            times(batch, times(din, dout)?)?;
            let gw = if rows == 1 {
                // One row per example: the outer products as one broadcast multiply (a
                // batch of products with an inner size of 1 would be B tiny gemms).
                g3.try_reshape([batch, dout, 1])?.try_mul(&x3)?
            } else {
                g3.try_matmul_t(&x3, Transpose::Yes, Transpose::No)?
            };
            out.push((*weight, gw));
            if let Some(b) = bias {
                out.push((
                    *b,
                    g3.try_sum_to(&[batch, 1, dout])?
                        .try_reshape([batch, dout])?,
                ));
            }
        }
        TapKind::Conv2d {
            weight,
            bias,
            kernel,
            spec,
        } => {
            let wshape = store.value(*weight).dims().to_vec();
            let (cout, cin_g, groups) = (wshape[0], wshape[1], spec.groups);
            let win = Window2d {
                kernel: *kernel,
                stride: spec.stride,
                padding: spec.padding,
                dilation: spec.dilation,
            };
            let cols = x.try_unfold2d(win)?; // [B, C·kh·kw, L]
            let l = cols.dims()[2];
            let kk = kernel.0 * kernel.1;
            times(batch, times(cout, cin_g * kk)?)?;
            let cols = cols.try_reshape([batch, groups, cin_g * kk, l])?;
            let g4 = gy.try_reshape([batch, groups, cout / groups, l])?;
            let gw = g4.try_matmul_t(&cols, Transpose::No, Transpose::Yes)?; // [B, G, Cout/G, Cin/G·kk]
            let mut shape = vec![batch];
            shape.extend_from_slice(&wshape);
            out.push((*weight, gw.try_reshape(shape)?));
            if let Some(b) = bias {
                let gb = gy
                    .try_sum_to(&[batch, cout, 1, 1])?
                    .try_reshape([batch, cout])?;
                out.push((*b, gb));
            }
        }
        TapKind::Embedding {
            weight,
            num,
            indices,
        } => {
            let dim = gy.dims()[gy.ndim() - 1];
            let per = indices.numel() / batch.max(1);
            let rows = times(batch, *num)?;
            times(rows, dim)?;
            let index: Vec<usize> = indices
                .as_slice()
                .iter()
                .enumerate()
                .map(|(i, &j)| (i / per.max(1)) * num + j)
                .collect();
            let index = Tensor::from_vec(index, [indices.numel()]);
            let src = gy.try_reshape([indices.numel(), dim])?;
            let table = Tensor::try_zeros([rows, dim])?.try_index_add(0, &index, &src)?;
            out.push((*weight, table.try_reshape([batch, *num, dim])?));
        }
        TapKind::Affine { weight, bias, axes } => {
            let s = x.dims();
            let keep: Vec<usize> = (0..s.len())
                .map(|a| if a == 0 || axes.contains(&a) { s[a] } else { 1 })
                .collect();
            let mut shape = vec![batch];
            shape.extend(axes.iter().map(|&a| s[a]));
            if let Some(w) = weight {
                let gw = (gy * x).try_sum_to(&keep)?.try_reshape(shape.as_slice())?;
                out.push((*w, gw));
            }
            if let Some(b) = bias {
                out.push((*b, gy.try_sum_to(&keep)?.try_reshape(shape.as_slice())?));
            }
        }
    }
    Ok(out)
}

impl<T: Float> PerSampleGrads<T> {
    /// The batch size B.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// How the gradients were computed.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The per-example gradients of a parameter (`[B] ++ shape`), or `None` if it got none
    /// (frozen, or not used).
    pub fn get(&self, key: ParamKey) -> Option<&Tensor<T>> {
        self.grads.iter().find(|(k, _)| *k == key).map(|(_, t)| t)
    }

    /// `(key, per-example gradients)` for every parameter, in the store's order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamKey, &Tensor<T>)> + '_ {
        self.grads.iter().map(|(k, t)| (*k, t))
    }

    /// Each example's gradient norm over all parameters together: `[B]`, the
    /// `‖∇ℓ_b‖₂` that DP-SGD clips.
    pub fn norms(&self) -> Tensor<T> {
        let mut sq = vec![0.0f64; self.batch];
        for (_, t) in &self.grads {
            let per = t.numel() / self.batch.max(1);
            for (b, row) in t.as_slice().chunks(per.max(1)).enumerate() {
                sq[b] += row.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>();
            }
        }
        Tensor::from_vec(
            sq.into_iter().map(|s| T::from_f64(s.sqrt())).collect(),
            [self.batch],
        )
    }

    /// Scales each example's gradients so that their norm is at most `max_norm` (by
    /// `min(1, max_norm / (‖∇ℓ_b‖ + 1e-6))`, Opacus's factor); returns the norms before.
    ///
    /// # Panics
    /// If `max_norm` is not a positive finite number.
    #[track_caller]
    pub fn clip(&mut self, max_norm: f64) -> Tensor<T> {
        if !(max_norm > 0.0 && max_norm.is_finite()) {
            Error::argument(
                "PerSampleGrads::clip",
                format!("max_norm must be a positive finite number, got {max_norm}"),
            )
            .raise();
        }
        let norms = self.norms();
        let factors: Vec<T> = norms
            .as_slice()
            .iter()
            .map(|n| T::from_f64((max_norm / (n.as_f64() + 1e-6)).min(1.0)))
            .collect();
        for (_, t) in &mut self.grads {
            let per = t.numel() / self.batch.max(1);
            for (row, &c) in t.as_mut_slice().chunks_mut(per.max(1)).zip(&factors) {
                row.iter_mut().for_each(|v| *v *= c);
            }
        }
        norms
    }

    /// The sum over the examples, as gradients an optimizer takes (the batch gradient of
    /// the summed loss, or of the clipped examples after [`PerSampleGrads::clip`]).
    pub fn sum(&self) -> Gradients<T> {
        Gradients::from_params(self.grads.iter().map(|(k, t)| {
            (
                *k,
                t.sum_to(&[&[1], &t.dims()[1..]].concat()).squeeze_dim(0),
            )
        }))
    }

    /// One DP-SGD gradient (Abadi et al. 2016): each example clipped to `max_norm`, the
    /// clipped gradients summed, Gaussian noise of standard deviation
    /// `noise_multiplier · max_norm` added to every element, divided by the batch size.
    /// Consumes the per-example gradients (they are clipped in place).
    ///
    /// # Panics
    /// If `max_norm` is not positive and finite or `noise_multiplier` is negative.
    #[track_caller]
    pub fn dp_sgd<R: Rng + ?Sized>(
        mut self,
        max_norm: f64,
        noise_multiplier: f64,
        rng: &mut R,
    ) -> Gradients<T> {
        if !(noise_multiplier >= 0.0 && noise_multiplier.is_finite()) {
            Error::argument(
                "PerSampleGrads::dp_sgd",
                format!("noise_multiplier must be ≥ 0, got {noise_multiplier}"),
            )
            .raise();
        }
        self.clip(max_norm);
        let mut g = self.sum();
        let inv = T::from_f64(1.0 / self.batch as f64);
        for (_, t) in g.params_mut() {
            let noise = Tensor::rand_normal(t.dims(), 0.0, noise_multiplier * max_norm, rng);
            *t += &noise;
            *t *= inv;
        }
        g
    }
}

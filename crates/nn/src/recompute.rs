//! Gradient checkpointing for modules: [`Checkpointed`] runs a module without keeping its
//! intermediates on the tape, and [`checkpoint_segments`] cuts a [`Sequential`] into
//! checkpointed segments (`torch.utils.checkpoint.checkpoint_sequential`).
//!
//! The wrapped module runs through the core's [`tapegrad_core::recompute::checkpoint`]: its
//! input and every trainable parameter it reads are the checkpointed block's inputs (so
//! parameter gradients arrive by key as usual, and [`Forward::bind`] bindings are honoured),
//! and the block owns what it needs to run again during backward:
//!
//! - the pass's random number generator as it was before the block ran, so that dropout
//!   draws the same masks when the block is recomputed; the pass's own generator advances
//!   exactly as in a plain run, so the layers after the block draw what they would have;
//! - a snapshot of the store (cheap: tensors share their data), so that a recomputed batch
//!   normalisation sees the same inputs and does not update its running statistics twice.
//!   The statistics the first run computed are written back to the pass's store.
//!
//! The gradients are those of the plain run bit for bit (tested with dropout and batch
//! normalisation inside the block, and through the `Trainer`). A [`crate::Recorder`] attached
//! to the pass does not see the layers inside a checkpointed block (their outputs are not on
//! the tape); it sees the block's output.
//!
//! ```
//! use tapegrad_core::{seeded_rng, Graph, ParamStore, Tensor};
//! use tapegrad_nn::{checkpoint_segments, Forward, Init, Linear, Module, Relu, Sequential};
//!
//! let mut store = ParamStore::<f64>::new();
//! let mut rng = seeded_rng(0);
//! let mut model = Sequential::new();
//! for i in 0..8 {
//!     model = model
//!         .push(Linear::new(&mut store, &format!("{i}"), 16, 16, Init::HeNormal, &mut rng))
//!         .push(Relu);
//! }
//! // Four segments: the tape keeps the inputs of the first three, and the last segment's
//! // intermediates (its backward comes first, so recomputing it would gain nothing).
//! let model = checkpoint_segments(model, 4);
//! let g = Graph::new();
//! let x = g.constant(Tensor::ones([4, 16]));
//! let loss = model.forward(&mut Forward::train(&g, &mut store, &mut rng), x).square().mean();
//! assert_eq!(loss.backward().params().count(), 16);
//! ```

use std::sync::Arc;

use tapegrad_core::recompute::{try_checkpoint_with, Block};
use tapegrad_core::{Float, ParamKey, Var};

use crate::module::{Forward, Module, Sequential, StoreRef};
use crate::pass_rng::PassRng;

/// `fw` with the block's parameter inputs `xs[1..]` bound to their keys.
fn bind<'g, 's, T: Float>(
    mut fw: Forward<'g, 's, T>,
    keys: &[ParamKey],
    xs: &[Var<'g, T>],
) -> Forward<'g, 's, T> {
    for (&k, &v) in keys.iter().zip(&xs[1..]) {
        fw = fw.bind(k, v);
    }
    fw
}

/// `f`, typed as a [`Block`] (a closure gets the signature for every tape lifetime only
/// where it is passed to a function that asks for it).
fn as_block<T: Float, F: Block<T>>(f: F) -> F {
    f
}

/// Unwraps, or panics with the error at the caller's line.
#[track_caller]
fn ok_at_caller<V>(r: tapegrad_core::Result<V>) -> V {
    r.unwrap_or_else(|e| e.at_caller().raise())
}

/// A module whose intermediates are recomputed during backward instead of kept on the tape
/// (see the [module docs](self)).
pub struct Checkpointed<M> {
    inner: Arc<M>,
}

impl<M> Checkpointed<M> {
    /// Wraps `module`.
    pub fn new(module: M) -> Self {
        Checkpointed {
            inner: Arc::new(module),
        }
    }

    /// The wrapped module.
    pub fn inner(&self) -> &M {
        &self.inner
    }
}

impl<T: Float, M: Module<T> + 'static> Module<T> for Checkpointed<M> {
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let keys: Vec<ParamKey> = self
            .inner
            .params()
            .into_iter()
            .filter(|&k| f.store().param(k).requires_grad())
            .collect();
        let mut inputs = Vec::with_capacity(keys.len() + 1);
        inputs.push(x);
        inputs.extend(keys.iter().map(|&k| f.param(k)));
        let mode = f.mode();
        // The recomputation's store: as the first run found it.
        let snapshot = f.store().clone();
        let graph = f.graph();
        let (store, rng) = f.store_and_rng();
        let inner = &self.inner;
        let y = try_checkpoint_with(graph, &inputs, move |g, xs| {
            let mut log = Vec::new();
            let y = {
                let rng = rng.map(|r| PassRng::recording(r, &mut log));
                let mut fw = bind(Forward::for_block(g, store, mode, rng), &keys, xs);
                inner.forward(&mut fw, xs[0])
            };
            let inner = inner.clone();
            let again = as_block(move |g, xs| {
                let mut store = snapshot.clone();
                let fw = Forward::for_block(
                    g,
                    StoreRef::Unique(&mut store),
                    mode,
                    Some(PassRng::replay(&log)),
                );
                inner.forward(&mut bind(fw, &keys, xs), xs[0])
            });
            (y, again)
        });
        ok_at_caller(y)
    }

    fn params(&self) -> Vec<ParamKey> {
        self.inner.params()
    }

    fn buffers(&self) -> Vec<ParamKey> {
        self.inner.buffers()
    }

    fn name(&self) -> String {
        format!("Checkpointed({})", self.inner.name())
    }
}

/// Cuts `model` into `segments` runs of consecutive layers (as even as they divide; the
/// first ones get a layer more) and checkpoints every run but the last, like PyTorch's
/// `checkpoint_sequential`: the tape keeps each segment's input and the last segment's
/// intermediates. `√layers` segments keep about `2√layers` layers' activations instead of
/// all of them.
///
/// # Panics
/// If `segments` is 0.
#[track_caller]
pub fn checkpoint_segments<T: Float>(model: Sequential<T>, segments: usize) -> Sequential<T> {
    if segments == 0 {
        crate::fail(
            "checkpoint_segments",
            "the number of segments must be at least 1".into(),
        );
    }
    let mut layers = model.into_layers().into_iter();
    let n = layers.len();
    let segments = segments.min(n.max(1));
    let mut out = Sequential::new();
    for s in 0..segments {
        let len = n / segments + usize::from(s < n % segments);
        let seg = layers.by_ref().take(len);
        out = if s + 1 == segments {
            seg.fold(out, |seq, l| seq.push_boxed(l))
        } else {
            out.push(Checkpointed::new(
                seg.fold(Sequential::new(), |seq, l| seq.push_boxed(l)),
            ))
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchNorm1d, Dropout, Init, Linear, Mode, Relu, Tanh};
    use tapegrad_core::{seeded_rng, Gradients, Graph, ParamStore, Tensor};

    /// (Linear → BatchNorm → ReLU → Dropout) × 3 → Linear → Tanh.
    fn model(store: &mut ParamStore<f64>) -> Sequential<f64> {
        let mut rng = seeded_rng(1);
        let mut m = Sequential::new();
        let mut width = 5;
        for i in 0..3 {
            m = m
                .push(Linear::new(
                    store,
                    &format!("l{i}"),
                    width,
                    6,
                    Init::HeNormal,
                    &mut rng,
                ))
                .push(BatchNorm1d::new(store, &format!("bn{i}"), 6))
                .push(Relu)
                .push(Dropout::new(0.3));
            width = 6;
        }
        m.push(Linear::new(
            store,
            "out",
            width,
            4,
            Init::HeNormal,
            &mut rng,
        ))
        .push(Tanh)
    }

    /// A training step (with a dropout after the model): the loss, the gradients and the
    /// generator's next draw.
    fn step(m: &Sequential<f64>, store: &mut ParamStore<f64>) -> (f64, Gradients<f64>, u64) {
        let g = Graph::new();
        let x = g.constant(Tensor::rand_uniform([8, 5], -1.0, 1.0, &mut seeded_rng(2)));
        let mut rng = seeded_rng(3);
        let y = {
            let mut f = Forward::train(&g, store, &mut rng);
            let y = m.forward(&mut f, x);
            Dropout::new(0.5).forward(&mut f, y)
        };
        let loss = y.square().mean();
        let next = rand::Rng::next_u64(&mut rng);
        (loss.item(), loss.backward(), next)
    }

    /// Gradients by parameter name.
    fn by_name(store: &ParamStore<f64>, g: &Gradients<f64>) -> Vec<(String, Vec<f64>)> {
        let mut out: Vec<_> = g
            .params()
            .map(|(k, t)| (store.name(k).to_string(), t.to_vec()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn values(store: &ParamStore<f64>) -> Vec<(String, Vec<f64>)> {
        store
            .iter()
            .map(|(_, p)| (p.name.clone(), p.value.to_vec()))
            .collect()
    }

    #[test]
    fn checkpointed_and_plain_training_steps_agree_bit_for_bit() {
        let mut plain_store = ParamStore::new();
        let plain = model(&mut plain_store);
        let (l0, g0, r0) = step(&plain, &mut plain_store);
        let want = by_name(&plain_store, &g0);
        assert_eq!(want.len(), 14);
        for segments in [1, 2, 3, 16] {
            let mut store = ParamStore::new();
            let m = checkpoint_segments(model(&mut store), segments);
            let (l, g, r) = step(&m, &mut store);
            assert_eq!(l.to_bits(), l0.to_bits(), "{segments} segments: loss");
            assert_eq!(r, r0, "{segments} segments: the generator after the pass");
            // Bit for bit: `==` on the vectors of f64 (no NaN here).
            assert_eq!(by_name(&store, &g), want, "{segments} segments: gradients");
            // The running statistics were updated once, as in the plain run.
            assert_eq!(
                values(&store),
                values(&plain_store),
                "{segments} segments: store"
            );
        }
    }

    #[test]
    fn the_tape_keeps_only_the_segments() {
        let nodes = |m: &Sequential<f64>, store: &mut ParamStore<f64>| {
            let g = Graph::new();
            let x = g.constant(Tensor::ones([8, 5]));
            let mut rng = seeded_rng(0);
            m.forward(&mut Forward::train(&g, store, &mut rng), x);
            g.len()
        };
        let mut store = ParamStore::new();
        let plain = nodes(&model(&mut store), &mut store);
        let mut store = ParamStore::new();
        let ck = nodes(&checkpoint_segments(model(&mut store), 3), &mut store);
        assert!(ck * 2 < plain, "{ck} nodes checkpointed, {plain} plain");
    }

    #[test]
    fn second_order_through_a_checkpointed_block() {
        // A gradient penalty: the squared norm of d(Σy²)/dx, differentiated again.
        let penalty = |m: &dyn Module<f64>, store: &mut ParamStore<f64>| {
            let g = Graph::new();
            let x = g.leaf(Tensor::rand_uniform([4, 5], -1.0, 1.0, &mut seeded_rng(4)));
            let y = m.forward(&mut Forward::new(&g, store, Mode::Eval, None), x);
            let dx = y.square().sum().backward_create_graph().wrt_var(x);
            by_name(store, &dx.square().sum().backward())
        };
        let mut store = ParamStore::new();
        let mut rng = seeded_rng(5);
        let a = Linear::new(&mut store, "a", 5, 7, Init::HeNormal, &mut rng);
        let b = Linear::new(&mut store, "b", 7, 3, Init::HeNormal, &mut rng);
        let plain = Sequential::new().push(a.clone()).push(Tanh).push(b.clone());
        let ck = Sequential::new()
            .push(Checkpointed::new(Sequential::new().push(a).push(Tanh)))
            .push(b);
        let (p, c) = (penalty(&plain, &mut store), penalty(&ck, &mut store));
        assert_eq!(p.len(), 4);
        for ((n, x), (_, y)) in p.iter().zip(&c) {
            for (u, v) in x.iter().zip(y) {
                assert!((u - v).abs() <= 1e-12 * u.abs().max(1.0), "{n}: {u} vs {v}");
            }
        }
    }

    #[test]
    fn evaluation_passes_and_frozen_parameters() {
        let eval = |m: &Sequential<f64>, store: &ParamStore<f64>| {
            let g = Graph::new();
            let x = g.constant(Tensor::linspace(-1.0, 1.0, 15).reshape([3, 5]));
            m.forward(&mut Forward::eval(&g, store), x).value().to_vec()
        };
        let mut plain_store = ParamStore::new();
        let plain = model(&mut plain_store);
        let mut store = ParamStore::new();
        let ck = checkpoint_segments(model(&mut store), 2);
        assert_eq!(eval(&ck, &store), eval(&plain, &plain_store));
        // A frozen layer inside a segment gets no gradient; the others are unchanged.
        for s in [&mut plain_store, &mut store] {
            let k = s.key("l1.weight").unwrap();
            s.freeze(k);
        }
        let (_, g0, _) = step(&plain, &mut plain_store);
        let (_, g, _) = step(&ck, &mut store);
        let want = by_name(&plain_store, &g0);
        assert_eq!(want.len(), 13);
        assert_eq!(by_name(&store, &g), want);
    }
}

//! The `Module` trait, the forward context, and `Sequential`.
//!
//! A module holds keys into a [`ParamStore`], never tensors: the store owns the values, a
//! forward pass puts them on a fresh tape, an optimizer updates them in place. A forward pass
//! sees a [`Forward`] context: the graph, the store (mutable, because batch normalisation
//! updates its running statistics), the mode (training or evaluation), a random number
//! generator for dropout, and optionally a [`Recorder`] of per-layer statistics.
//!
//! Writing a module by hand is implementing two methods:
//!
//! ```
//! use tapegrad_core::{seeded_rng, Float, Graph, ParamKey, ParamRole, ParamStore, Tensor, Var};
//! use tapegrad_nn::{Forward, Module};
//!
//! /// `y = x·scale`, one learned scale per feature.
//! struct Scale {
//!     scale: ParamKey,
//! }
//! impl Scale {
//!     fn new<T: Float>(store: &mut ParamStore<T>, name: &str, features: usize) -> Self {
//!         Scale { scale: store.insert_with_role(format!("{name}.scale"), Tensor::ones([features]), ParamRole::Scale) }
//!     }
//! }
//! impl<T: Float> Module<T> for Scale {
//!     fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
//!         x * f.param(self.scale)
//!     }
//!     fn params(&self) -> Vec<ParamKey> {
//!         vec![self.scale]
//!     }
//! }
//!
//! let mut store = ParamStore::<f64>::new();
//! let m = Scale::new(&mut store, "s", 3);
//! let g = Graph::new();
//! let y = m.forward(&mut Forward::eval(&g, &store), g.constant(Tensor::ones([2, 3])));
//! assert_eq!(y.shape().as_slice(), &[2, 3]);
//! ```

use rand::rngs::StdRng;
use tapegrad_core::{Float, Graph, ParamKey, ParamRole, ParamStore, Var};

use std::cell::RefCell;

use crate::pass_rng::PassRng;
use crate::per_sample::{TapKind, Taps};
use crate::stats::Recorder;

/// Training or evaluation: dropout, RReLU and batch normalisation behave differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Training: dropout drops, batch norm uses batch statistics and updates its running ones.
    Train,
    /// Evaluation: dropout is the identity, batch norm uses its running statistics.
    Eval,
}

/// The store a pass reads: shared for an evaluation pass, writable when batch
/// normalisation may update its running statistics.
pub(crate) enum StoreRef<'s, T: Float> {
    Shared(&'s ParamStore<T>),
    Unique(&'s mut ParamStore<T>),
}

/// What a forward pass needs besides its input.
pub struct Forward<'g, 's, T: Float> {
    graph: &'g Graph<T>,
    store: StoreRef<'s, T>,
    mode: Mode,
    rng: Option<PassRng<'s>>,
    recorder: Option<&'s mut Recorder<'g, T>>,
    bound: Vec<(ParamKey, Var<'g, T>)>,
    /// Set by [`crate::per_sample_grads`]: the layers with a per-example rule record their
    /// inputs and outputs here (`None` in its fallback loop, which needs no taps).
    taps: Option<&'s RefCell<Taps<'g, T>>>,
    per_sample: bool,
}

impl<'g, 's, T: Float> Forward<'g, 's, T> {
    /// A training pass (dropout draws from `rng`).
    pub fn train(graph: &'g Graph<T>, store: &'s mut ParamStore<T>, rng: &'s mut StdRng) -> Self {
        Forward {
            graph,
            store: StoreRef::Unique(store),
            mode: Mode::Train,
            rng: Some(PassRng::new(rng)),
            recorder: None,
            bound: Vec::new(),
            taps: None,
            per_sample: false,
        }
    }

    /// An evaluation pass: it reads the store and changes nothing in it.
    pub fn eval(graph: &'g Graph<T>, store: &'s ParamStore<T>) -> Self {
        Forward {
            graph,
            store: StoreRef::Shared(store),
            mode: Mode::Eval,
            rng: None,
            recorder: None,
            bound: Vec::new(),
            taps: None,
            per_sample: false,
        }
    }

    /// A pass in the given mode; `rng` is needed in training mode by random layers.
    pub fn new(
        graph: &'g Graph<T>,
        store: &'s mut ParamStore<T>,
        mode: Mode,
        rng: Option<&'s mut StdRng>,
    ) -> Self {
        Forward {
            graph,
            store: StoreRef::Unique(store),
            mode,
            rng: rng.map(PassRng::new),
            recorder: None,
            bound: Vec::new(),
            taps: None,
            per_sample: false,
        }
    }

    /// A pass over the block of a checkpointed module: the outer pass's store (shared or
    /// writable as it was) and a generator of the block's own.
    pub(crate) fn for_block(
        graph: &'g Graph<T>,
        store: StoreRef<'s, T>,
        mode: Mode,
        rng: Option<PassRng<'s>>,
    ) -> Self {
        Forward {
            graph,
            store,
            mode,
            rng,
            recorder: None,
            bound: Vec::new(),
            taps: None,
            per_sample: false,
        }
    }

    /// The store (reborrowed as it is held) and the generator, both at once: what a
    /// checkpointed module's first run borrows from its pass.
    pub(crate) fn store_and_rng(&mut self) -> (StoreRef<'_, T>, Option<&mut PassRng<'s>>) {
        let store = match &mut self.store {
            StoreRef::Shared(s) => StoreRef::Shared(&**s),
            StoreRef::Unique(s) => StoreRef::Unique(&mut **s),
        };
        (store, self.rng.as_mut())
    }

    /// Records every layer's output (and, after backward, its gradient) in `recorder`.
    pub fn with_recorder(mut self, recorder: &'s mut Recorder<'g, T>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Uses `value` wherever the module reads the parameter `key`, instead of the store's
    /// tensor: a functional forward pass (differentiate with respect to `value`, run a
    /// model on updated weights without writing them to the store — as in meta-learning).
    pub fn bind(mut self, key: ParamKey, value: Var<'g, T>) -> Self {
        self.bound.push((key, value));
        self
    }

    /// The tape.
    pub fn graph(&self) -> &'g Graph<T> {
        self.graph
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether this is a training pass.
    pub fn is_training(&self) -> bool {
        self.mode == Mode::Train
    }

    /// Puts a parameter on the tape (a leaf that gets a gradient unless frozen), or returns
    /// the value bound to it with [`Forward::bind`].
    ///
    /// # Panics
    /// If the key is not in the store.
    #[track_caller]
    pub fn param(&self, key: ParamKey) -> Var<'g, T> {
        if let Some(t) = self.taps {
            t.borrow_mut().read(key);
        }
        match self.bound.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => *v,
            None => self.graph.param(self.store(), key),
        }
    }

    /// The store, to read buffers.
    pub fn store(&self) -> &ParamStore<T> {
        match &self.store {
            StoreRef::Shared(s) => s,
            StoreRef::Unique(s) => s,
        }
    }

    /// The store, to update buffers (running statistics).
    ///
    /// # Panics
    /// At the caller's line for a pass built with [`Forward::eval`], whose store is
    /// read-only (layers update buffers only in training).
    #[track_caller]
    pub fn store_mut(&mut self) -> &mut ParamStore<T> {
        match &mut self.store {
            StoreRef::Unique(s) => s,
            StoreRef::Shared(_) => crate::fail(
                "Forward::store_mut",
                "this pass was built with Forward::eval, whose store is read-only".into(),
            ),
        }
    }

    /// The random number generator of a training pass.
    ///
    /// # Panics
    /// If the pass was built without one (`Forward::eval`, or `Forward::new` with `None`)
    /// and a random layer runs in training mode.
    #[track_caller]
    pub fn rng(&mut self) -> &mut PassRng<'s> {
        match self.rng.as_mut() {
            Some(r) => r,
            None => crate::fail(
                "Forward::rng",
                "this layer draws random numbers in training mode: build the pass with Forward::train(graph, store, rng)".into(),
            ),
        }
    }

    /// A pass of [`crate::per_sample_grads`]: `taps` collects what the layers with a
    /// per-example rule saw (`None`: its fallback loop, one example at a time).
    pub(crate) fn for_per_sample(mut self, taps: Option<&'s RefCell<Taps<'g, T>>>) -> Self {
        self.taps = taps;
        self.per_sample = true;
        self
    }

    /// Whether this pass computes per-example gradients (layers that mix the examples of
    /// a batch refuse to run in it).
    pub fn is_per_sample(&self) -> bool {
        self.per_sample
    }

    /// Records what a layer with a per-example rule saw, when per-example gradients are
    /// being computed; returns `output` (retained for its gradient if recorded).
    pub(crate) fn tap(
        &self,
        kind: impl FnOnce() -> TapKind,
        input: Var<'g, T>,
        output: Var<'g, T>,
    ) -> Var<'g, T> {
        match self.taps {
            Some(t) => t.borrow_mut().push(kind(), input.value(), output),
            None => output,
        }
    }

    /// Records a layer's output under `name` if a recorder is attached.
    pub fn record(&mut self, name: &str, v: Var<'g, T>) {
        if let Some(r) = self.recorder.as_deref_mut() {
            r.record(name, v);
        }
    }
}

/// A layer or a model: a forward pass and the keys of its parameters.
pub trait Module<T: Float> {
    /// The forward pass.
    ///
    /// # Panics
    /// Layers panic on inputs of the wrong shape, naming the layer, the expected and the
    /// actual shapes (at the caller's line).
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T>;

    /// Every parameter of the module (and of its sub-modules), in order: PyTorch's
    /// `parameters()`, the tensors that can learn. Buffers are apart ([`Module::buffers`]).
    fn params(&self) -> Vec<ParamKey> {
        Vec::new()
    }

    /// Every buffer of the module (and of its sub-modules), in order: PyTorch's `buffers()`,
    /// state that forward passes update and checkpoints keep but no optimizer touches
    /// (BatchNorm's running mean and variance and its batch counter).
    fn buffers(&self) -> Vec<ParamKey> {
        Vec::new()
    }

    /// A short name for reports (the type by default).
    fn name(&self) -> String {
        let full = std::any::type_name::<Self>();
        let base = full.split('<').next().unwrap_or(full);
        base.rsplit("::").next().unwrap_or(base).to_string()
    }

    /// Freezes every parameter of the module: no gradients, no updates (transfer learning).
    fn freeze(&self, store: &mut ParamStore<T>) {
        for k in self.params() {
            store.freeze(k);
        }
    }

    /// Unfreezes every parameter of the module.
    fn unfreeze(&self, store: &mut ParamStore<T>) {
        for k in self.params() {
            store.unfreeze(k);
        }
    }

    /// The parameters with the role `Weight` (what regularizers penalise by default).
    fn weights(&self, store: &ParamStore<T>) -> Vec<ParamKey> {
        self.params()
            .into_iter()
            .filter(|&k| store.role(k) == ParamRole::Weight)
            .collect()
    }

    /// The trainable parameters (not buffers), frozen or not.
    fn trainable(&self, store: &ParamStore<T>) -> Vec<ParamKey> {
        self.params()
            .into_iter()
            .filter(|&k| store.role(k).is_trainable())
            .collect()
    }
}

impl<T: Float, M: Module<T> + ?Sized> Module<T> for Box<M> {
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        (**self).forward(f, x)
    }
    fn params(&self) -> Vec<ParamKey> {
        (**self).params()
    }
    fn buffers(&self) -> Vec<ParamKey> {
        (**self).buffers()
    }
    fn name(&self) -> String {
        (**self).name()
    }
}

/// Modules applied one after the other.
///
/// With a [`Recorder`] attached to the pass, each layer's output is recorded under
/// `"{index}:{name}"`.
pub struct Sequential<T: Float> {
    layers: Vec<Box<dyn Module<T>>>,
}

impl<T: Float> Default for Sequential<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> Sequential<T> {
    /// An empty sequence (the identity).
    pub fn new() -> Self {
        Sequential { layers: Vec::new() }
    }

    /// Appends a layer.
    #[allow(clippy::should_implement_trait)]
    pub fn push(mut self, layer: impl Module<T> + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends a boxed layer.
    pub fn push_boxed(mut self, layer: Box<dyn Module<T>>) -> Self {
        self.layers.push(layer);
        self
    }

    /// The layers.
    pub fn layers(&self) -> &[Box<dyn Module<T>>] {
        &self.layers
    }

    /// The layers, by value (to regroup them, as [`crate::checkpoint_segments`] does).
    pub fn into_layers(self) -> Vec<Box<dyn Module<T>>> {
        self.layers
    }

    /// The number of layers.
    pub fn len(&self) -> usize {
        self.layers.len()
    }

    /// Whether there are no layers.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl<T: Float> Module<T> for Sequential<T> {
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, mut x: Var<'g, T>) -> Var<'g, T> {
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(f, x);
            if f.recorder.is_some() {
                f.record(&format!("{i}:{}", layer.name()), x);
            }
        }
        x
    }

    fn params(&self) -> Vec<ParamKey> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    fn buffers(&self) -> Vec<ParamKey> {
        self.layers.iter().flat_map(|l| l.buffers()).collect()
    }
}

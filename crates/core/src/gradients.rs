//! What a backward pass returns: [`Gradients`] (tensors, by leaf and by parameter key)
//! and [`VarGradients`] (gradients recorded on the tape, for gradients of gradients), with
//! the per-thread pool that lets a training loop's passes reuse their containers.

use std::mem::ManuallyDrop;

use crate::graph::Graph;
use crate::ops::Op;
use crate::params::{ParamKey, ParamMap};
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// Gradients of one backward pass, by leaf [`Var`] and by parameter key.
///
/// They outlive the graph: an optimizer reads them by [`ParamKey`] after the tape is gone.
/// Gradients of several backward passes (micro-batches) add up with
/// [`Gradients::accumulate`].
#[derive(Clone, Debug)]
pub struct Gradients<T: Float> {
    graph_id: u64,
    /// `(node id, gradient)` of leaves, ascending by id (the sweep pushes them in
    /// descending order and reverses the list at the end).
    pub(crate) leaves: Vec<(u32, Tensor<T>)>,
    /// Taken out (not dropped) by `Drop`, to be reused: an empty map allocates.
    pub(crate) params: ManuallyDrop<ParamMap<Tensor<T>>>,
}

/// The emptied containers of dropped [`Gradients`], per element type and thread, so the
/// next backward pass fills them instead of allocating new ones.
struct Spare<T: Float> {
    leaves: Vec<Vec<(u32, Tensor<T>)>>,
    params: Vec<ParamMap<Tensor<T>>>,
}

thread_local! {
    static SPARE: std::cell::RefCell<[Option<Box<dyn std::any::Any>>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

/// Runs `f` on this thread's spare containers for `T` (`None` while the thread is being
/// torn down).
fn with_spare<T: Float, R>(f: impl FnOnce(&mut Spare<T>) -> R) -> Option<R> {
    let slot = usize::from(T::DTYPE != "f32");
    SPARE
        .try_with(|s| {
            let mut s = s.try_borrow_mut().ok()?;
            let any = s[slot].get_or_insert_with(|| {
                Box::new(Spare::<T> {
                    leaves: Vec::new(),
                    params: Vec::new(),
                })
            });
            any.downcast_mut::<Spare<T>>().map(f)
        })
        .ok()
        .flatten()
}

impl<T: Float> Drop for Gradients<T> {
    fn drop(&mut self) {
        let mut leaves = std::mem::take(&mut self.leaves);
        // SAFETY: `params` is not used again: this is the destructor.
        let mut params = unsafe { ManuallyDrop::take(&mut self.params) };
        leaves.clear();
        params.clear();
        with_spare::<T, _>(|s| {
            // Bounded: a few containers cover every pattern of live gradients.
            if s.leaves.len() < 8 {
                s.leaves.push(leaves);
                s.params.push(params);
            }
        });
    }
}

impl<T: Float> Gradients<T> {
    /// Empty gradients of the graph `graph_id`, in containers left by dropped ones.
    pub(crate) fn new(graph_id: u64) -> Self {
        let (leaves, params) =
            with_spare::<T, _>(|s| (s.leaves.pop(), s.params.pop())).unwrap_or((None, None));
        Gradients {
            graph_id,
            leaves: leaves.unwrap_or_default(),
            params: ManuallyDrop::new(params.unwrap_or_default()),
        }
    }

    /// Parameter gradients computed some other way — per-example gradients clipped and
    /// summed, a gradient averaged across processes — for an optimizer step. They hold no
    /// leaf gradients ([`Gradients::get`] of any `Var` panics: they belong to no graph).
    /// A key given twice keeps the sum.
    ///
    /// # Panics
    /// If a key given twice has gradients of different shapes.
    #[track_caller]
    pub fn from_params(params: impl IntoIterator<Item = (ParamKey, Tensor<T>)>) -> Self {
        let mut out = Gradients::new(0);
        for (k, g) in params {
            out.add_param(k, g);
        }
        out
    }

    /// The gradient with respect to a leaf of the graph that was differentiated (or an
    /// intermediate marked with [`Var::retain_grad`] before the pass), or `None` if no
    /// gradient reached it.
    ///
    /// # Panics
    /// If `v` belongs to another graph, or is an intermediate value not retained.
    #[track_caller]
    pub fn get(&self, v: Var<'_, T>) -> Option<&Tensor<T>> {
        assert!(
            v.graph.id() == self.graph_id,
            "Gradients::get: the Var belongs to graph {}, these gradients to graph {}",
            v.graph.id(),
            self.graph_id
        );
        check_kept("Gradients::get", v);
        self.leaves
            .binary_search_by_key(&v.id, |e| e.0)
            .ok()
            .map(|i| &self.leaves[i].1)
    }

    /// The gradient with respect to a leaf (or a retained intermediate); zeros of its shape
    /// if no gradient reached it (it does not influence the output).
    ///
    /// # Panics
    /// If `v` belongs to another graph, or is an intermediate value not marked with
    /// [`Var::retain_grad`] (its gradient was released during the pass).
    #[track_caller]
    pub fn wrt(&self, v: Var<'_, T>) -> Tensor<T> {
        match self.get(v) {
            Some(g) => g.clone(),
            None => Tensor::zeros(v.shape()),
        }
    }

    /// The gradient of a parameter (summed over every time it was put on the tape), or
    /// `None` if it got none (frozen, unused, or not on this tape).
    pub fn param(&self, key: ParamKey) -> Option<&Tensor<T>> {
        self.params.get(key)
    }

    /// `(key, gradient)` for every parameter that got a gradient.
    pub fn params(&self) -> impl Iterator<Item = (ParamKey, &Tensor<T>)> + '_ {
        self.params.iter()
    }

    /// Every parameter gradient, writable (for clipping in place).
    pub fn params_mut(&mut self) -> impl Iterator<Item = (ParamKey, &mut Tensor<T>)> + '_ {
        self.params.iter_mut()
    }

    /// The gradient of a parameter, writable (e.g. for clipping in place).
    pub fn param_mut(&mut self, key: ParamKey) -> Option<&mut Tensor<T>> {
        self.params.get_mut(key)
    }

    /// Adds another pass's gradients into these: parameter gradients by key, leaf
    /// gradients by node when both passes ran on the same graph. Use it to accumulate
    /// micro-batches before one optimizer step.
    ///
    /// # Panics
    /// If a gradient's shape differs from the one it is added to.
    #[track_caller]
    pub fn accumulate(&mut self, mut other: Gradients<T>) {
        for (k, g) in other.params.drain() {
            self.add_param(k, g);
        }
        if other.graph_id == self.graph_id {
            for (id, g) in other.leaves.drain(..) {
                match self.leaves.binary_search_by_key(&id, |e| e.0) {
                    Ok(i) => add_into(&mut self.leaves[i].1, &g),
                    Err(i) => self.leaves.insert(i, (id, g)),
                }
            }
        }
    }

    /// Adds `g` to the gradient of `key` (the first one is kept as it is).
    #[track_caller]
    pub(crate) fn add_param(&mut self, key: ParamKey, g: Tensor<T>) {
        match self.params.get_mut(key) {
            Some(acc) => add_into(acc, &g),
            None => {
                self.params.insert(key, g);
            }
        }
    }

    /// Multiplies every gradient by `c` (e.g. `1/n` after accumulating `n` micro-batches).
    pub fn scale(&mut self, c: T) {
        for (_, g) in self.leaves.iter_mut() {
            *g *= c;
        }
        for (_, g) in self.params.iter_mut() {
            *g *= c;
        }
    }
}

/// Panics unless `v`'s gradient is kept by backward passes (a leaf, or retained).
#[track_caller]
fn check_kept<T: Float>(what: &str, v: Var<'_, T>) {
    let nodes = v.graph.nodes();
    let n = &nodes[v.id as usize];
    if !n.op.is_leaf() && !n.retain {
        panic!(
            "{what}: %{} is an intermediate value (op `{}`); its gradient is released during the backward pass. Call `.retain_grad()` on it before `backward()` to keep it",
            v.id,
            n.op.name()
        );
    }
}

/// `acc += g`, for gradients of the same shape.
#[track_caller]
pub(crate) fn add_into<T: Float>(acc: &mut Tensor<T>, g: &Tensor<T>) {
    assert!(
        acc.dims() == g.dims(),
        "gradient accumulation: shapes {:?} and {:?} differ",
        acc.dims(),
        g.dims()
    );
    *acc += g;
}

/// Gradients recorded on the tape by [`Var::backward_create_graph`]: each is a `Var`, so it
/// can be differentiated again.
pub struct VarGradients<'g, T: Float> {
    pub(crate) graph: &'g Graph<T>,
    /// `(leaf id, gradient node id)`, ascending by leaf id.
    pub(crate) leaves: Vec<(u32, u32)>,
}

impl<'g, T: Float> VarGradients<'g, T> {
    /// The gradient with respect to a leaf (or a retained intermediate), as a `Var` on the
    /// same tape (a zero constant if no gradient reached it).
    ///
    /// # Panics
    /// If `v` belongs to another graph or is an intermediate value not retained.
    #[track_caller]
    pub fn wrt_var(&self, v: Var<'g, T>) -> Var<'g, T> {
        assert!(
            std::ptr::eq(v.graph, self.graph),
            "wrt_var: the Var belongs to another graph"
        );
        check_kept("VarGradients::wrt_var", v);
        match self.leaves.binary_search_by_key(&v.id, |e| e.0) {
            Ok(i) => Var::new(self.graph, self.leaves[i].1),
            Err(_) => self.graph.constant(Tensor::zeros(v.shape())),
        }
    }

    /// The gradient's value with respect to a leaf.
    ///
    /// # Panics
    /// If `v` belongs to another graph.
    #[track_caller]
    pub fn wrt(&self, v: Var<'g, T>) -> Tensor<T> {
        self.wrt_var(v).value()
    }

    /// The gradient of a parameter as a `Var`, summed over its leaves on this tape, or
    /// `None` if it got none.
    #[track_caller]
    pub fn param_var(&self, key: ParamKey) -> Option<Var<'g, T>> {
        let mut acc: Option<Var<'g, T>> = None;
        for &(leaf, grad) in &self.leaves {
            let is_key = matches!(self.graph.nodes()[leaf as usize].op, Op::Param(k) if k == key);
            if is_key {
                let g = Var::new(self.graph, grad);
                acc = Some(match acc {
                    Some(a) => a + g,
                    None => g,
                });
            }
        }
        acc
    }
}

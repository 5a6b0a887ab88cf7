//! `ParamStore<T>`: parameters live outside any graph.
//!
//! A model's layers hold [`ParamKey`]s; each forward pass puts the parameters it uses on a
//! fresh tape with [`crate::Graph::param`] (sharing the data, not copying it); an optimizer
//! updates them in place through [`ParamStore::value_mut`] once the tape is gone. Names are
//! unique and hierarchical by convention (`layers.0.weight`), and iteration follows
//! insertion order, so saving, loading and printing are deterministic.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

use slotmap::{SecondaryMap, SlotMap};

use crate::error::{arg_error, ok, Result};
use crate::tensor::Tensor;
use crate::Float;

slotmap::new_key_type! {
    /// A parameter's place within its store (a key of the store's arena).
    struct Slot;
}

/// Ids of stores, so that a key knows which store it came from.
static NEXT_STORE: AtomicU32 = AtomicU32::new(1);

/// The key of one parameter in a [`ParamStore`].
///
/// A key is tied to the store that made it (and to that store's clones): using it with
/// another store is an error at the caller's line, never a silent look-up of whatever
/// parameter that store keeps in the same place.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParamKey {
    store: u32,
    slot: Slot,
}

impl fmt::Debug for ParamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = slotmap::Key::data(&self.slot);
        write!(f, "ParamKey(store {}, {d:?})", self.store)
    }
}

impl ParamKey {
    /// The id of the store this key belongs to ([`ParamStore::id`]).
    pub fn store_id(self) -> u32 {
        self.store
    }
}

/// Per-parameter data keyed by [`ParamKey`] (gradients, optimizer state), for parameters of
/// one store or several. Iteration follows the stores in the order they first appear, and
/// within a store the order its parameters were inserted in (where none were removed), so
/// sums over it are reproducible. Clearing keeps the memory.
#[derive(Clone, Debug)]
pub struct ParamMap<V> {
    maps: Vec<(u32, SecondaryMap<Slot, V>)>,
}

impl<V> Default for ParamMap<V> {
    fn default() -> Self {
        ParamMap { maps: Vec::new() }
    }
}

impl<V> ParamMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn store(&self, id: u32) -> Option<&SecondaryMap<Slot, V>> {
        self.maps.iter().find(|m| m.0 == id).map(|m| &m.1)
    }

    /// The value for `key`.
    pub fn get(&self, key: ParamKey) -> Option<&V> {
        self.store(key.store)?.get(key.slot)
    }

    /// The value for `key`, writable.
    pub fn get_mut(&mut self, key: ParamKey) -> Option<&mut V> {
        self.maps
            .iter_mut()
            .find(|m| m.0 == key.store)?
            .1
            .get_mut(key.slot)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: ParamKey) -> bool {
        self.get(key).is_some()
    }

    /// Sets the value for `key`, returning the old one.
    pub fn insert(&mut self, key: ParamKey, value: V) -> Option<V> {
        let i = match self.maps.iter().position(|m| m.0 == key.store) {
            Some(i) => i,
            None => match self.maps.iter().position(|m| m.1.is_empty()) {
                // Reuse an emptied map (and its memory) for the new store.
                Some(i) => {
                    self.maps[i].0 = key.store;
                    i
                }
                None => {
                    self.maps.push((key.store, SecondaryMap::new()));
                    self.maps.len() - 1
                }
            },
        };
        self.maps[i].1.insert(key.slot, value)
    }

    /// The value for `key`, inserted with `f` first if there is none.
    pub fn get_or_insert_with(&mut self, key: ParamKey, f: impl FnOnce() -> V) -> &mut V {
        if !self.contains_key(key) {
            self.insert(key, f());
        }
        self.get_mut(key).expect("inserted above")
    }

    /// Removes the value for `key`.
    pub fn remove(&mut self, key: ParamKey) -> Option<V> {
        self.maps
            .iter_mut()
            .find(|m| m.0 == key.store)?
            .1
            .remove(key.slot)
    }

    /// `(key, value)` pairs (see the type's docs for the order).
    pub fn iter(&self) -> impl Iterator<Item = (ParamKey, &V)> + '_ {
        self.maps.iter().flat_map(|(store, m)| {
            m.iter().map(move |(slot, v)| {
                (
                    ParamKey {
                        store: *store,
                        slot,
                    },
                    v,
                )
            })
        })
    }

    /// `(key, value)` pairs, writable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (ParamKey, &mut V)> + '_ {
        self.maps.iter_mut().flat_map(|(store, m)| {
            let store = *store;
            m.iter_mut()
                .map(move |(slot, v)| (ParamKey { store, slot }, v))
        })
    }

    /// Takes every pair out, leaving the map empty (with its memory).
    pub fn drain(&mut self) -> impl Iterator<Item = (ParamKey, V)> + '_ {
        self.maps.iter_mut().flat_map(|(store, m)| {
            let store = *store;
            m.drain()
                .map(move |(slot, v)| (ParamKey { store, slot }, v))
        })
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.maps.iter().map(|m| m.1.len()).sum()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.maps.iter().all(|m| m.1.is_empty())
    }

    /// Removes every value and keeps the memory.
    pub fn clear(&mut self) {
        for m in &mut self.maps {
            m.1.clear();
        }
    }
}

/// What a stored tensor is for. Regularizers pick weights by role (by default weights, not
/// biases), and buffers are state that forward passes update, never gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamRole {
    /// A weight matrix or kernel (regularized by default).
    Weight,
    /// A bias.
    Bias,
    /// A learned scale (normalisation γ, PReLU slopes).
    Scale,
    /// A learned shift (normalisation β).
    Shift,
    /// A non-trainable float buffer updated by forward passes (running statistics).
    Buffer,
    /// A non-trainable integer counter (saved as i64, e.g. `num_batches_tracked`).
    Count,
    /// Any other trainable tensor.
    Other,
}

impl ParamRole {
    /// Whether tensors of this role can get gradients (everything but buffers and counts).
    pub fn is_trainable(self) -> bool {
        !matches!(self, ParamRole::Buffer | ParamRole::Count)
    }
}

/// One parameter: its name, its value, its role and whether it is frozen.
#[derive(Clone, Debug)]
pub struct Param<T: Float> {
    /// The unique name (e.g. `fc1.weight`).
    pub name: String,
    /// The current value.
    pub value: Tensor<T>,
    /// A frozen parameter is put on the tape as a constant: it gets no gradient, so no
    /// optimizer updates it.
    pub frozen: bool,
    /// What the tensor is for.
    pub role: ParamRole,
}

impl<T: Float> Param<T> {
    /// Whether the parameter gets a gradient when put on a tape (trainable role, not
    /// frozen).
    pub fn requires_grad(&self) -> bool {
        self.role.is_trainable() && !self.frozen
    }
}

/// Named parameters, addressed by [`ParamKey`].
///
/// ```
/// use tapegrad_core::{Graph, ParamStore, Tensor};
/// let mut store = ParamStore::<f64>::new();
/// let w = store.insert("w", Tensor::from_vec(vec![1.0, -2.0], [2]));
/// let g = Graph::new();
/// let loss = (g.param(&store, w) * 3.0).sum();
/// let grads = loss.backward();
/// assert_eq!(grads.param(w).unwrap().to_vec(), vec![3.0, 3.0]);
/// ```
///
/// A key works with the store that made it and with that store's clones; with any other
/// store it is an error at the caller's line.
#[derive(Clone, Debug)]
pub struct ParamStore<T: Float> {
    id: u32,
    params: SlotMap<Slot, Param<T>>,
    by_name: HashMap<String, ParamKey>,
    order: Vec<ParamKey>,
}

impl<T: Float> Default for ParamStore<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> ParamStore<T> {
    /// An empty store.
    pub fn new() -> Self {
        ParamStore {
            id: NEXT_STORE.fetch_add(1, Ordering::Relaxed),
            params: SlotMap::with_key(),
            by_name: HashMap::new(),
            order: Vec::new(),
        }
    }

    /// This store's id (shared by its clones); every key it makes carries it.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The slot of `key` in this store, or an error if it is another store's key.
    #[track_caller]
    fn slot(&self, key: ParamKey) -> Result<Slot> {
        if key.store != self.id {
            return Err(arg_error(
                "ParamStore",
                format!(
                    "{key:?} belongs to another store (this is store {}); keys are tied to the store that made them",
                    self.id
                ),
            ));
        }
        Ok(key.slot)
    }

    /// The parameter behind `key`, if any.
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if `key` belongs to another store, or was removed.
    #[track_caller]
    pub fn try_get(&self, key: ParamKey) -> Result<&Param<T>> {
        match self.params.get(self.slot(key)?) {
            Some(p) => Ok(p),
            None => Err(arg_error(
                "ParamStore",
                format!("no parameter with key {key:?} in this store (it was removed)"),
            )),
        }
    }

    /// Adds a parameter.
    ///
    /// # Panics
    /// If the name is already taken.
    #[track_caller]
    pub fn insert(&mut self, name: impl Into<String>, value: Tensor<T>) -> ParamKey {
        ok(self.try_insert_with_role(name, value, ParamRole::Other))
    }

    /// Adds a tensor with a role (see [`ParamRole`]).
    ///
    /// # Panics
    /// If the name is already taken.
    #[track_caller]
    pub fn insert_with_role(
        &mut self,
        name: impl Into<String>,
        value: Tensor<T>,
        role: ParamRole,
    ) -> ParamKey {
        ok(self.try_insert_with_role(name, value, role))
    }

    /// Adds a parameter.
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if the name is already taken.
    #[track_caller]
    pub fn try_insert(&mut self, name: impl Into<String>, value: Tensor<T>) -> Result<ParamKey> {
        self.try_insert_with_role(name, value, ParamRole::Other)
    }

    /// Adds a tensor with a role.
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if the name is already taken.
    #[track_caller]
    pub fn try_insert_with_role(
        &mut self,
        name: impl Into<String>,
        value: Tensor<T>,
        role: ParamRole,
    ) -> Result<ParamKey> {
        let name = name.into();
        if self.by_name.contains_key(&name) {
            return Err(arg_error(
                "ParamStore::insert",
                format!("a parameter named `{name}` exists already"),
            ));
        }
        let slot = self.params.insert(Param {
            name: name.clone(),
            value,
            frozen: false,
            role,
        });
        let key = ParamKey {
            store: self.id,
            slot,
        };
        self.by_name.insert(name, key);
        self.order.push(key);
        Ok(key)
    }

    /// Removes a parameter and returns it (`None` if it was removed before).
    ///
    /// # Panics
    /// If `key` belongs to another store.
    #[track_caller]
    pub fn remove(&mut self, key: ParamKey) -> Option<Param<T>> {
        let p = self.params.remove(ok(self.slot(key)))?;
        self.by_name.remove(&p.name);
        self.order.retain(|&k| k != key);
        Some(p)
    }

    /// The parameter behind `key`.
    ///
    /// # Panics
    /// At the caller's line if the key is not in the store (removed, or another store's).
    #[track_caller]
    pub fn param(&self, key: ParamKey) -> &Param<T> {
        ok(self.try_get(key))
    }

    /// The parameter behind `key`, or `None` if it was removed.
    ///
    /// # Panics
    /// At the caller's line if `key` belongs to another store.
    #[track_caller]
    pub fn get(&self, key: ParamKey) -> Option<&Param<T>> {
        self.params.get(ok(self.slot(key)))
    }

    /// The parameter behind `key`, writable, if any.
    #[track_caller]
    fn get_mut(&mut self, key: ParamKey) -> &mut Param<T> {
        let slot = ok(self.slot(key));
        match self.params.get_mut(slot) {
            Some(p) => p,
            None => crate::error::raise(arg_error(
                "ParamStore",
                format!("no parameter with key {key:?} in this store (it was removed)"),
            )),
        }
    }

    /// The value behind `key`.
    ///
    /// # Panics
    /// If the key is not in the store.
    #[track_caller]
    pub fn value(&self, key: ParamKey) -> &Tensor<T> {
        &self.param(key).value
    }

    /// The value behind `key`, writable (copy-on-write if a tape still shares it).
    ///
    /// # Panics
    /// If the key is not in the store.
    #[track_caller]
    pub fn value_mut(&mut self, key: ParamKey) -> &mut Tensor<T> {
        &mut self.get_mut(key).value
    }

    /// The name of the parameter behind `key`.
    ///
    /// # Panics
    /// If the key is not in the store.
    #[track_caller]
    pub fn name(&self, key: ParamKey) -> &str {
        &self.param(key).name
    }

    /// The key of the parameter with this name.
    pub fn key(&self, name: &str) -> Option<ParamKey> {
        self.by_name.get(name).copied()
    }

    /// Freezes a parameter: it goes on the tape as a constant and gets no gradient.
    #[track_caller]
    pub fn freeze(&mut self, key: ParamKey) {
        self.set_frozen(key, true);
    }

    /// Unfreezes a parameter.
    #[track_caller]
    pub fn unfreeze(&mut self, key: ParamKey) {
        self.set_frozen(key, false);
    }

    /// Sets the frozen flag of a parameter.
    ///
    /// # Panics
    /// If the key is not in the store.
    #[track_caller]
    pub fn set_frozen(&mut self, key: ParamKey, frozen: bool) {
        self.get_mut(key).frozen = frozen;
    }

    /// Whether the parameter is frozen.
    #[track_caller]
    pub fn is_frozen(&self, key: ParamKey) -> bool {
        self.param(key).frozen
    }

    /// The keys in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = ParamKey> + '_ {
        self.order.iter().copied()
    }

    /// `(key, parameter)` pairs in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (ParamKey, &Param<T>)> + '_ {
        self.order.iter().map(move |&k| (k, &self.params[k.slot]))
    }

    /// The number of parameters.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The role of the tensor behind `key`.
    ///
    /// # Panics
    /// If the key is not in the store.
    #[track_caller]
    pub fn role(&self, key: ParamKey) -> ParamRole {
        self.param(key).role
    }

    /// Keys of the given roles, in insertion order.
    pub fn keys_with_role<'a>(
        &'a self,
        roles: &'a [ParamRole],
    ) -> impl Iterator<Item = ParamKey> + 'a {
        self.iter()
            .filter(move |(_, p)| roles.contains(&p.role))
            .map(|(k, _)| k)
    }

    /// The number of scalar values over the trainable parameters (frozen or not): what
    /// PyTorch users count as `sum(p.numel() for p in model.parameters())`. Buffers
    /// (running statistics, counters) are [`ParamStore::num_buffer_elements`].
    pub fn num_parameters(&self) -> usize {
        self.params
            .values()
            .filter(|p| p.role.is_trainable())
            .map(|p| p.value.numel())
            .sum()
    }

    /// The number of scalar values over the buffers (roles `Buffer` and `Count`).
    pub fn num_buffer_elements(&self) -> usize {
        self.params
            .values()
            .filter(|p| !p.role.is_trainable())
            .map(|p| p.value.numel())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_order_is_kept() {
        let mut s = ParamStore::<f32>::new();
        let a = s.insert("b.weight", Tensor::zeros([2]));
        let b = s.insert("a.bias", Tensor::zeros([3]));
        assert!(s.try_insert("a.bias", Tensor::zeros([1])).is_err());
        assert_eq!(s.keys().collect::<Vec<_>>(), vec![a, b]);
        assert_eq!(s.key("a.bias"), Some(b));
        assert_eq!(s.num_parameters(), 5);
        assert_eq!(s.num_buffer_elements(), 0);
        s.freeze(a);
        assert!(s.is_frozen(a));
        let removed = s.remove(a).unwrap();
        assert_eq!(removed.name, "b.weight");
        assert_eq!(s.len(), 1);
        assert!(s.get(a).is_none());
    }

    #[test]
    fn a_key_of_another_store_is_refused() {
        let mut a = ParamStore::<f32>::new();
        let mut b = ParamStore::<f32>::new();
        let ka = a.insert("w", Tensor::zeros([2]));
        let kb = b.insert("w", Tensor::ones([3]));
        // Both are the first key of their store: the same slot, different stores.
        assert_ne!(ka, kb);
        let e = b.try_get(ka).unwrap_err().to_string();
        assert!(e.contains("belongs to another store"), "{e}");
        assert!(e.contains("crates/core/src/params.rs:"), "{e}");
        let clone = a.clone();
        assert_eq!(clone.value(ka).dims(), &[2]);
        let msg = crate::testing::panic_message(|| b.value(ka).clone());
        assert!(msg.contains("belongs to another store"), "{msg}");
        let mut m = ParamMap::new();
        m.insert(ka, 1);
        m.insert(kb, 2);
        assert_eq!((m.get(ka), m.get(kb), m.len()), (Some(&1), Some(&2), 2));
    }
}

//! `ParamStore<T>`: parameters live outside any graph.
//!
//! A model's layers hold [`ParamKey`]s; each forward pass puts the parameters it uses on a
//! fresh tape with [`crate::Graph::param`] (sharing the data, not copying it); an optimizer
//! updates them in place through [`ParamStore::value_mut`] once the tape is gone. Names are
//! unique and hierarchical by convention (`layers.0.weight`), and iteration follows
//! insertion order, so saving, loading and printing are deterministic.

use std::collections::HashMap;

use slotmap::SlotMap;

use crate::error::{arg_error, ok, Result};
use crate::tensor::Tensor;
use crate::Float;

slotmap::new_key_type! {
    /// The key of one parameter in a [`ParamStore`].
    pub struct ParamKey;
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
#[derive(Clone, Debug, Default)]
pub struct ParamStore<T: Float> {
    params: SlotMap<ParamKey, Param<T>>,
    by_name: HashMap<String, ParamKey>,
    order: Vec<ParamKey>,
}

impl<T: Float> ParamStore<T> {
    /// An empty store.
    pub fn new() -> Self {
        ParamStore {
            params: SlotMap::with_key(),
            by_name: HashMap::new(),
            order: Vec::new(),
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
        let key = self.params.insert(Param {
            name: name.clone(),
            value,
            frozen: false,
            role,
        });
        self.by_name.insert(name, key);
        self.order.push(key);
        Ok(key)
    }

    /// Removes a parameter and returns it.
    pub fn remove(&mut self, key: ParamKey) -> Option<Param<T>> {
        let p = self.params.remove(key)?;
        self.by_name.remove(&p.name);
        self.order.retain(|&k| k != key);
        Some(p)
    }

    /// The parameter behind `key`.
    ///
    /// # Panics
    /// If the key is not in the store (removed, or from another store).
    #[track_caller]
    pub fn param(&self, key: ParamKey) -> &Param<T> {
        match self.params.get(key) {
            Some(p) => p,
            None => panic!("ParamStore: no parameter with key {key:?} in this store"),
        }
    }

    /// The parameter behind `key`, if any.
    pub fn get(&self, key: ParamKey) -> Option<&Param<T>> {
        self.params.get(key)
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
        match self.params.get_mut(key) {
            Some(p) => &mut p.value,
            None => panic!("ParamStore: no parameter with key {key:?} in this store"),
        }
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
        match self.params.get_mut(key) {
            Some(p) => p.frozen = frozen,
            None => panic!("ParamStore: no parameter with key {key:?} in this store"),
        }
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
        self.order.iter().map(move |&k| (k, &self.params[k]))
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

    /// The total number of scalar values over all parameters.
    pub fn num_elements(&self) -> usize {
        self.params.values().map(|p| p.value.numel()).sum()
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
        assert_eq!(s.num_elements(), 5);
        s.freeze(a);
        assert!(s.is_frozen(a));
        let removed = s.remove(a).unwrap();
        assert_eq!(removed.name, "b.weight");
        assert_eq!(s.len(), 1);
        assert!(s.get(a).is_none());
    }
}

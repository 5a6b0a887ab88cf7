//! The `Optimizer` trait, and the machinery every per-parameter optimizer shares.
//!
//! A first-order optimizer is a [`Rule`]: how one parameter's value and state change given
//! its gradient. [`RuleOptimizer`] applies a rule to every parameter that has a gradient
//! (frozen parameters have none and are skipped), keeps the per-parameter state keyed by
//! parameter, resolves parameter groups, and saves and restores the state through a
//! [`Checkpoint`] by parameter *name*, so a run resumed in a new process continues bit for
//! bit.

use tapegrad_core::checkpoint::{Checkpoint, Entry};
use tapegrad_core::{Float, Gradients, ParamKey, ParamMap, ParamStore, Result, Tensor};

/// Updates parameters from their gradients.
pub trait Optimizer<T: Float> {
    /// One update of every parameter that has a gradient in `grads`, with learning rate
    /// `lr` (the schedule's value; parameter groups may scale it).
    ///
    /// Release the tape first (`graph.reset()`, or drop the graph): while a graph still
    /// holds the parameters (they went on it without a copy), the update must copy each one
    /// before writing it (copy-on-write). On the 784-512-256-10 MLP step of the peer
    /// benchmark that copy is 2 MB per step: 3.29 ms per step with the tape alive against
    /// 3.18 ms released (one thread; `peer_bench --workloads w2 --variant
    /// update-with-tape`). The loop, in that order:
    ///
    /// ```
    /// # use tapegrad_core::{seeded_rng, Graph, ParamStore, Tensor};
    /// # use tapegrad_optim::{Optimizer, Sgd, SgdConfig};
    /// let mut store = ParamStore::<f32>::new();
    /// let w = store.insert("w", Tensor::rand_normal([3], 0.0, 1.0, &mut seeded_rng(0)));
    /// let mut opt = Sgd::new(SgdConfig::default());
    /// let w0 = store.value(w).clone();
    /// let mut g = Graph::new();
    /// for _ in 0..10 {
    ///     g.reset(); // a fresh tape each step, its memory kept
    ///     let loss = g.param(&store, w).square().sum();
    ///     let grads = loss.backward();
    ///     g.reset(); // release the parameters before writing them
    ///     opt.step(&mut store, &grads, 0.1);
    /// }
    /// // Each step multiplies w by 1 − 0.1·2.
    /// let want = w0.mul_scalar(0.8f32.powi(10));
    /// tapegrad_core::assert_close(store.value(w), &want, 1e-6, 1e-5);
    /// ```
    fn step(&mut self, store: &mut ParamStore<T>, grads: &Gradients<T>, lr: f64);

    /// Sets the momentum (SGD, RMSprop) or β₁ (Adam family) for the next steps, as
    /// one-cycle schedules do; a no-op for optimizers without one.
    fn set_momentum(&mut self, _momentum: f64) {}

    /// Writes the optimizer's state into `ck` under `prefix` (e.g. `"optimizer."`), by
    /// parameter name.
    fn save_state(&self, store: &ParamStore<T>, ck: &mut Checkpoint, prefix: &str);

    /// Restores the state written by [`Optimizer::save_state`]; parameters are matched by
    /// name in `store`. Strict: every entry under `prefix` must be a known slot of a
    /// parameter of `store`, every parameter with state gets all of it, and values must be
    /// valid (a step count ≥ 1, finite buffers, non-negative averages of squares).
    ///
    /// # Errors
    /// [`tapegrad_core::Error::Checkpoint`] naming the file and the entry if one is unknown
    /// or missing, has the wrong dtype or shape, or holds an invalid value, or the
    /// checkpoint was written by another kind of optimizer. The state is unchanged then.
    fn load_state(&mut self, store: &ParamStore<T>, ck: &Checkpoint, prefix: &str) -> Result<()>;
}

/// Per-group overrides: a learning-rate multiplier and a weight decay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupOptions {
    /// The group's learning rate is `lr · lr_scale` (default 1).
    pub lr_scale: f64,
    /// The group's weight decay, if it differs from the optimizer's (e.g. 0 for biases).
    pub weight_decay: Option<f64>,
}

impl Default for GroupOptions {
    fn default() -> Self {
        GroupOptions {
            lr_scale: 1.0,
            weight_decay: None,
        }
    }
}

tapegrad_core::setters! { GroupOptions {
    /// With a learning-rate multiplier.
    with_lr_scale(s: f64) => lr_scale = s;
    /// With a weight decay.
    with_weight_decay(wd: f64) => weight_decay = Some(wd);
}}

/// The state a rule keeps for one parameter: a step count, named buffers the size of the
/// parameter (created on first use) and named scalars.
#[derive(Clone, Debug)]
pub struct ParamState<T: Float> {
    /// Steps taken for this parameter.
    pub step: u64,
    /// Buffers, by the rule's slot index.
    pub buffers: Vec<Option<Vec<T>>>,
    /// Scalars, by the rule's slot index.
    pub scalars: Vec<f64>,
    /// Working space the size of the parameter, kept between steps so a step allocates
    /// nothing (not part of the state: never saved, never compared).
    scratch: Vec<T>,
}

impl<T: Float> PartialEq for ParamState<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.step, &self.buffers, &self.scalars) == (other.step, &other.buffers, &other.scalars)
    }
}

impl<T: Float> ParamState<T> {
    fn new(buffers: usize, scalars: &[f64]) -> Self {
        ParamState {
            step: 0,
            buffers: vec![None; buffers],
            scalars: scalars.to_vec(),
            scratch: Vec::new(),
        }
    }

    /// The working vector (empty, with the capacity of earlier steps); give it back with
    /// [`ParamState::put_scratch`].
    pub fn take_scratch(&mut self) -> Vec<T> {
        let mut v = std::mem::take(&mut self.scratch);
        v.clear();
        v
    }

    /// Returns the working vector for the next step.
    pub fn put_scratch(&mut self, v: Vec<T>) {
        self.scratch = v;
    }

    /// `g + wd·p` in the working vector (see [`ParamState::take_scratch`]).
    pub fn take_decayed(&mut self, g: &[T], p: &[T], wd: f64) -> Vec<T> {
        let mut d = self.take_scratch();
        if wd == 0.0 {
            d.extend_from_slice(g);
        } else {
            let wd = T::from_f64(wd);
            d.extend(g.iter().zip(p).map(|(&g, &p)| g + wd * p));
        }
        d
    }

    /// The first `K` buffers, created filled with `init` (of length `n`) where missing.
    pub fn buffers_mut<const K: usize>(&mut self, n: usize, init: T) -> [&mut Vec<T>; K] {
        for b in self.buffers.iter_mut().take(K) {
            if b.is_none() {
                *b = Some(vec![init; n]);
            }
        }
        assert!(
            self.buffers.len() >= K,
            "a rule asked for {K} buffers but declares fewer"
        );
        let mut refs = self
            .buffers
            .iter_mut()
            .map(|b| b.as_mut().expect("created above"));
        std::array::from_fn(|_| refs.next().expect("checked above"))
    }
}

/// How one parameter changes: a first-order update rule.
pub trait Rule<T: Float>: Clone {
    /// The rule's name (recorded in checkpoints).
    fn name(&self) -> &'static str;
    /// Names of the per-parameter buffers (PyTorch's state names, e.g. `exp_avg`).
    const BUFFERS: &'static [&'static str];
    /// Names and starting values of the per-parameter scalars.
    const SCALARS: &'static [(&'static str, f64)] = &[];

    /// Buffers whose values are never negative (running averages of squares): a negative
    /// value in a loaded state is damage, refused rather than turned into NaN parameters
    /// one step later.
    const NONNEGATIVE: &'static [&'static str] = &[];

    /// The weight decay of the configuration.
    fn weight_decay(&self) -> f64;

    /// Whether this configuration creates buffer `i` of [`Rule::BUFFERS`] at its first step
    /// (all of them, unless a rule creates one only for some settings, as SGD's momentum
    /// buffer). A loaded state must hold exactly the buffers the rule creates.
    fn has_buffer(&self, _i: usize) -> bool {
        true
    }

    /// Updates `p` from `g`; `state.step` has already been incremented.
    fn update(&self, p: &mut [T], g: &[T], state: &mut ParamState<T>, lr: f64, weight_decay: f64);

    /// Sets the momentum or β₁ (see [`Optimizer::set_momentum`]).
    fn set_momentum(&mut self, _momentum: f64) {}
}

/// A [`Rule`] applied to every parameter with a gradient, with groups and state.
#[derive(Clone, Debug)]
pub struct RuleOptimizer<T: Float, R: Rule<T>> {
    rule: R,
    states: ParamMap<ParamState<T>>,
    groups: ParamMap<GroupOptions>,
}

impl<T: Float, R: Rule<T>> RuleOptimizer<T, R> {
    /// An optimizer with the given rule and no state.
    pub fn new(rule: R) -> Self {
        RuleOptimizer {
            rule,
            states: ParamMap::new(),
            groups: ParamMap::new(),
        }
    }

    /// The rule (its configuration).
    pub fn rule(&self) -> &R {
        &self.rule
    }

    /// Puts `keys` in a group with its own options (later calls override earlier ones).
    pub fn set_group(&mut self, keys: &[ParamKey], options: GroupOptions) {
        for &k in keys {
            self.groups.insert(k, options);
        }
    }

    /// The state of one parameter, if it has taken a step.
    pub fn state(&self, key: ParamKey) -> Option<&ParamState<T>> {
        self.states.get(key)
    }
}

impl<T: Float, R: Rule<T>> Optimizer<T> for RuleOptimizer<T, R> {
    #[track_caller]
    fn step(&mut self, store: &mut ParamStore<T>, grads: &Gradients<T>, lr: f64) {
        for (key, g) in grads.params() {
            if key.store_id() != store.id() {
                // Gradients of another store's parameters (a second model on the tape):
                // they are not this store's to update.
                continue;
            }
            if store.get(key).is_none_or(|p| !p.requires_grad()) {
                continue;
            }
            let opts = self.groups.get(key).copied().unwrap_or_default();
            let wd = opts
                .weight_decay
                .unwrap_or_else(|| self.rule.weight_decay());
            let state = self.states.get_or_insert_with(key, || {
                ParamState::new(
                    R::BUFFERS.len(),
                    &R::SCALARS.iter().map(|s| s.1).collect::<Vec<_>>(),
                )
            });
            state.step += 1;
            let p = store.value_mut(key).as_mut_slice();
            assert_eq!(
                p.len(),
                g.numel(),
                "{}: the gradient's size differs from the parameter's",
                self.rule.name()
            );
            self.rule
                .update(p, g.as_slice(), state, lr * opts.lr_scale, wd);
        }
    }

    fn set_momentum(&mut self, momentum: f64) {
        self.rule.set_momentum(momentum);
    }

    fn save_state(&self, store: &ParamStore<T>, ck: &mut Checkpoint, prefix: &str) {
        ck.set_meta(format!("{prefix}optimizer"), self.rule.name());
        for (key, s) in self.states.iter() {
            let Some(p) = store.get(key) else { continue };
            ck.insert(
                format!("{prefix}step.{}", p.name),
                Entry::I64(Tensor::scalar(s.step as i64)),
            );
            for (name, buf) in R::BUFFERS.iter().zip(&s.buffers) {
                if let Some(b) = buf {
                    ck.insert_float(
                        format!("{prefix}{name}.{}", p.name),
                        &Tensor::from_vec(b.clone(), p.value.dims()),
                    );
                }
            }
            for ((name, _), v) in R::SCALARS.iter().zip(&s.scalars) {
                ck.insert(
                    format!("{prefix}{name}.{}", p.name),
                    Entry::F64(Tensor::scalar(*v)),
                );
            }
        }
    }

    fn load_state(&mut self, store: &ParamStore<T>, ck: &Checkpoint, prefix: &str) -> Result<()> {
        match ck.meta(&format!("{prefix}optimizer")) {
            Some(n) if n == self.rule.name() => {}
            Some(n) => {
                return Err(ck.error(format!(
                    "the checkpoint holds {n} state, not {}",
                    self.rule.name()
                )))
            }
            None => return Err(ck.error(format!("no optimizer state under `{prefix}`"))),
        }
        self.states = load_rule_states(&self.rule, store, ck, prefix)?;
        Ok(())
    }
}

/// What an entry of a rule's saved state is: the step count, buffer `i`, or scalar `i`.
#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Step,
    Buffer(usize),
    Scalar(usize),
}

/// Reads every entry under `prefix` strictly: each must be a known slot of a parameter of
/// `store`, with the right dtype, shape and a valid value; every parameter with state must
/// have its step and exactly the buffers the rule creates. Nothing is changed on an error.
fn load_rule_states<T: Float, R: Rule<T>>(
    rule: &R,
    store: &ParamStore<T>,
    ck: &Checkpoint,
    prefix: &str,
) -> Result<ParamMap<ParamState<T>>> {
    let scalar_init: Vec<f64> = R::SCALARS.iter().map(|s| s.1).collect();
    let slots: Vec<(String, Slot)> = std::iter::once(("step".to_string(), Slot::Step))
        .chain(
            R::BUFFERS
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), Slot::Buffer(i))),
        )
        .chain(
            R::SCALARS
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.to_string(), Slot::Scalar(i))),
        )
        .collect();
    let mut states: ParamMap<(ParamState<T>, bool)> = ParamMap::new();
    for (entry, value) in ck.entries_with_prefix(prefix) {
        let rest = &entry[prefix.len()..];
        let Some((slot, pname)) = slots.iter().find_map(|(n, slot)| {
            rest.strip_prefix(n.as_str())
                .and_then(|r| r.strip_prefix('.'))
                .map(|p| (*slot, p))
        }) else {
            return Err(ck.error(format!(
                "`{entry}` is not part of {} state (its slots are step, {})",
                rule.name(),
                slots[1..]
                    .iter()
                    .map(|s| s.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let Some(key) = store.key(pname) else {
            return Err(ck.error(format!("`{entry}`: the model has no parameter `{pname}`")));
        };
        let pshape = store.value(key).dims();
        let (state, has_step) = states.get_or_insert_with(key, || {
            (ParamState::new(R::BUFFERS.len(), &scalar_init), false)
        });
        match (slot, value) {
            (Slot::Step, Entry::I64(t)) if t.ndim() == 0 => {
                let step = t.item();
                if step < 1 {
                    return Err(ck.error(format!(
                        "`{entry}` is {step}; a saved state has taken at least one step"
                    )));
                }
                state.step = step as u64;
                *has_step = true;
            }
            (Slot::Step, e) => {
                return Err(ck.error(format!(
                    "`{entry}` must be a 0-d i64 count, got {} of shape {:?}",
                    e.dtype(),
                    e.shape()
                )))
            }
            (Slot::Buffer(i), _) => {
                let t: Tensor<T> = ck.float(entry)?;
                if t.dims() != pshape {
                    return Err(ck.error(format!(
                        "`{entry}` has shape {:?}, the parameter {:?}",
                        t.dims(),
                        pshape
                    )));
                }
                if !rule.has_buffer(i) {
                    return Err(ck.error(format!(
                        "`{entry}`: this {} configuration keeps no {}",
                        rule.name(),
                        R::BUFFERS[i]
                    )));
                }
                let nonneg = R::NONNEGATIVE.contains(&R::BUFFERS[i]);
                if let Some(&bad) = t
                    .as_slice()
                    .iter()
                    .find(|v| !v.is_finite() || (nonneg && **v < T::zero()))
                {
                    return Err(ck.error(format!(
                        "`{entry}` holds {bad}, which {} cannot have",
                        R::BUFFERS[i]
                    )));
                }
                state.buffers[i] = Some(t.to_vec());
            }
            (Slot::Scalar(i), Entry::F64(t)) if t.ndim() == 0 && t.item().is_finite() => {
                state.scalars[i] = t.item();
            }
            (Slot::Scalar(_), e) => {
                return Err(ck.error(format!(
                    "`{entry}` must be a finite 0-d f64, got {} of shape {:?}",
                    e.dtype(),
                    e.shape()
                )))
            }
        }
    }
    let mut out = ParamMap::new();
    for (key, (state, has_step)) in states.drain() {
        let name = &store.get(key).expect("a live key").name;
        if !has_step {
            return Err(ck.error(format!("`{prefix}step.{name}` is missing")));
        }
        for (i, b) in R::BUFFERS.iter().enumerate() {
            if rule.has_buffer(i) && state.buffers[i].is_none() {
                return Err(ck.error(format!("`{prefix}{b}.{name}` is missing")));
            }
        }
        out.insert(key, state);
    }
    Ok(out)
}

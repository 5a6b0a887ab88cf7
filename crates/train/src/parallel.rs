//! Data-parallel training: the collectives a [`Trainer`](crate::Trainer) needs to run as one
//! of several replicas, and the gradient averaging built on them.
//!
//! Each replica holds the whole model, trains on its shard of every batch
//! ([`DataLoader::with_shard`](tapegrad_data::DataLoader::with_shard)), and before each
//! update the gradients are averaged across replicas, so every replica takes the same step
//! and the parameters stay identical. This module knows nothing of how the replicas talk:
//! [`Collective`] is implemented over MPI by `tapegrad-dist`, and the rest of the workspace
//! stays free of MPI.
//!
//! The gradients travel in *buckets*: the parameters' gradients, last layer first (the
//! order backward produces them), copied into a few flat buffers of at most
//! [`GradientSync::bucket_bytes`] each, which are summed across replicas one by one and
//! copied back divided by the replica count. The buffers are kept from step to step, so
//! averaging allocates nothing at steady state.

use std::any::Any;

use tapegrad_core::{Error, Float, Gradients, ParamKey, ParamMap, ParamStore, Result, Tensor};

pub use tapegrad_core::collective::Collective;

/// The `f32` or `f64` view of a buffer of `T`, for the collective of that type. It takes
/// the `Vec` because a `Vec` can be downcast; a slice cannot be a `dyn Any`.
enum Typed<'a> {
    F32(&'a mut Vec<f32>),
    F64(&'a mut Vec<f64>),
}

#[allow(clippy::ptr_arg)]
fn typed<T: Float>(buffer: &mut Vec<T>) -> Result<Typed<'_>> {
    let any: &mut dyn Any = buffer;
    if any.is::<Vec<f32>>() {
        return Ok(Typed::F32(any.downcast_mut().expect("checked")));
    }
    match any.downcast_mut::<Vec<f64>>() {
        Some(v) => Ok(Typed::F64(v)),
        None => Err(Error::argument(
            "Collective",
            format!("no sum for element type {}", T::DTYPE),
        )),
    }
}

/// Sums a flat buffer of `T` across the replicas.
fn sum_buffer<T: Float>(c: &dyn Collective, buffer: &mut Vec<T>) -> Result<()> {
    match typed(buffer)? {
        Typed::F32(v) => c.sum_f32(v),
        Typed::F64(v) => c.sum_f64(v),
    }
}

/// Starts summing a buffer without waiting; false if the collective does not do that.
fn start_buffer<T: Float>(c: &dyn Collective, id: usize, buffer: &mut Vec<T>) -> Result<bool> {
    match typed(buffer)? {
        Typed::F32(v) => c.start_sum_f32(id, v),
        Typed::F64(v) => c.start_sum_f64(id, v),
    }
}

/// Collects the sum [`start_buffer`] started into the buffer.
fn finish_buffer<T: Float>(c: &dyn Collective, id: usize, buffer: &mut Vec<T>) -> Result<()> {
    match typed(buffer)? {
        Typed::F32(v) => c.finish_sum_f32(id, v),
        Typed::F64(v) => c.finish_sum_f64(id, v),
    }
}

/// A description of a store's trainable layout: one line per parameter, `name dtype
/// [shape] role`, in the store's order. Replicas compare it before training.
pub fn layout<T: Float>(store: &ParamStore<T>) -> String {
    let mut s = String::new();
    for (_, p) in store.iter() {
        s.push_str(&format!(
            "{} {} {:?} {:?}{}\n",
            p.name,
            T::DTYPE,
            p.value.dims(),
            p.role,
            if p.frozen { " frozen" } else { "" }
        ));
    }
    s
}

/// Checks that every replica holds the same model as replica 0 (parameter names, shapes,
/// roles, frozen flags, element type); every replica returns the same verdict.
///
/// # Errors
/// [`Error::Argument`] naming the first replica that differs, and its first differing
/// parameter beside replica 0's.
pub fn check_same_model<T: Float>(c: &dyn Collective, store: &ParamStore<T>) -> Result<()> {
    let all = c.all_gather(layout(store).as_bytes())?;
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let first = text(&all[0]);
    for (rank, mine) in all.iter().enumerate().skip(1) {
        let mine = text(mine);
        if mine == first {
            continue;
        }
        let a: Vec<&str> = first.lines().collect();
        let b: Vec<&str> = mine.lines().collect();
        let k = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
        let show = |l: &[&str], who: &str| match l.get(k) {
            Some(line) => format!("{who} has `{line}`"),
            None => format!("{who} has no parameter {}", k + 1),
        };
        return Err(Error::argument(
            "Trainer (data parallel)",
            format!(
                "the replicas hold different models: at parameter {} of the store, {}, {}",
                k + 1,
                show(&a, "replica 0"),
                show(&b, &format!("replica {rank}"))
            ),
        ));
    }
    Ok(())
}

/// One parameter's place in a bucket.
#[derive(Clone, Debug)]
struct Slot {
    key: ParamKey,
    shape: Vec<usize>,
    /// Offset of the gradient in its bucket; the element after it counts the replicas that
    /// had a gradient for it.
    offset: usize,
}

/// Some parameters' gradients, flat, reduced together.
#[derive(Debug)]
struct Bucket<T> {
    slots: Vec<Slot>,
    len: usize,
    buffer: Vec<T>,
    /// Slots filled by [`GradientSync::ready`] this step.
    ready: usize,
    /// Whether its sum was started ahead (during the backward pass).
    started: bool,
}

impl<T: Float> Bucket<T> {
    /// Fills the buffer from `grads` (zeros and a zero count where a parameter has none).
    fn fill(&mut self, store: &ParamStore<T>, grads: &Gradients<T>) -> Result<()> {
        self.buffer.clear();
        for s in &self.slots {
            match grads.param(s.key) {
                Some(g) => {
                    check_shape(store, s, g)?;
                    self.buffer.extend_from_slice(g.as_slice());
                    self.buffer.push(T::from_f64(1.0));
                }
                None => {
                    let n: usize = s.shape.iter().product();
                    self.buffer
                        .extend(std::iter::repeat_n(T::from_f64(0.0), n + 1));
                }
            }
        }
        Ok(())
    }
}

fn check_shape<T: Float>(store: &ParamStore<T>, s: &Slot, g: &Tensor<T>) -> Result<()> {
    if g.dims() == s.shape.as_slice() {
        return Ok(());
    }
    Err(Error::argument(
        "GradientSync",
        format!(
            "the gradient of `{}` has shape {:?}, the parameter {:?}",
            store.name(s.key),
            g.dims(),
            s.shape
        ),
    ))
}

/// Averages gradients across replicas in reused buckets (see the module docs).
///
/// [`GradientSync::average`] reduces every bucket after the backward pass. Between
/// [`GradientSync::begin`] and [`GradientSync::finish`], [`GradientSync::ready`] — called
/// from [`Var::try_backward_with_ready`](tapegrad_core::Var::try_backward_with_ready) as
/// each parameter's gradient is done — copies the gradient into its bucket and starts the
/// bucket's sum without waiting as soon as the bucket is full, so the last layers' sums
/// run while the backward pass computes the first layers' gradients (PyTorch DDP's
/// overlap, where the collective starts sums ahead; otherwise `finish` does the work).
/// Buckets start in the same order on every replica (a bucket waits for the ones before
/// it), as MPI requires.
#[derive(Debug)]
pub struct GradientSync<T: Float> {
    bucket_bytes: usize,
    /// The store's trainable layout the buckets were built for.
    built_for: Vec<(ParamKey, Vec<usize>)>,
    buckets: Vec<Bucket<T>>,
    /// Each parameter's `(bucket, slot)`.
    place: ParamMap<(usize, usize)>,
    /// The first bucket not started yet this step.
    next: usize,
    /// An error met in `ready` (which cannot return one), reported by `finish`.
    error: Option<Error>,
    /// Buckets started during the last backward pass.
    started_ahead: usize,
}

impl<T: Float> Default for GradientSync<T> {
    /// Buckets of at most 25 MiB, PyTorch DDP's `bucket_cap_mb`.
    fn default() -> Self {
        Self::new(25 << 20)
    }
}

impl<T: Float> GradientSync<T> {
    /// Buckets of at most `bucket_bytes` (a parameter larger than that has a bucket of its
    /// own).
    pub fn new(bucket_bytes: usize) -> Self {
        GradientSync {
            bucket_bytes: bucket_bytes.max(1),
            built_for: Vec::new(),
            buckets: Vec::new(),
            place: ParamMap::new(),
            next: 0,
            error: None,
            started_ahead: 0,
        }
    }

    /// The largest bucket, in bytes.
    pub fn bucket_bytes(&self) -> usize {
        self.bucket_bytes
    }

    /// The buckets' sizes in elements (one more per parameter than its gradient: the count
    /// of replicas that had one).
    pub fn bucket_lens(&self) -> Vec<usize> {
        self.buckets.iter().map(|b| b.len).collect()
    }

    /// How many buckets the last step started during its backward pass.
    pub fn started_ahead(&self) -> usize {
        self.started_ahead
    }

    /// Lays the buckets out for `store`'s trainable parameters, unless they are laid out
    /// for it already.
    fn layout(&mut self, store: &ParamStore<T>) {
        let trainable = || store.iter().filter(|(_, p)| p.requires_grad());
        // Compared without allocating: this runs every step.
        let same = trainable().count() == self.built_for.len()
            && trainable()
                .zip(&self.built_for)
                .all(|((k, p), (bk, bs))| k == *bk && p.value.dims() == bs.as_slice());
        if same {
            return;
        }
        let want: Vec<(ParamKey, Vec<usize>)> = trainable()
            .map(|(k, p)| (k, p.value.dims().to_vec()))
            .collect();
        let per_bucket = (self.bucket_bytes / std::mem::size_of::<T>()).max(1);
        self.buckets.clear();
        self.place.clear();
        let mut slots: Vec<Slot> = Vec::new();
        let mut len = 0usize;
        let close = |slots: Vec<Slot>, len: usize| Bucket {
            slots,
            len,
            buffer: vec![T::from_f64(0.0); len],
            ready: 0,
            started: false,
        };
        // Last layer first: backward finishes those gradients first.
        for (key, shape) in want.iter().rev() {
            let n: usize = shape.iter().product();
            if len > 0 && len + n + 1 > per_bucket {
                self.buckets.push(close(std::mem::take(&mut slots), len));
                len = 0;
            }
            self.place.insert(*key, (self.buckets.len(), slots.len()));
            slots.push(Slot {
                key: *key,
                shape: shape.clone(),
                offset: len,
            });
            len += n + 1;
        }
        if !slots.is_empty() {
            self.buckets.push(close(slots, len));
        }
        self.built_for = want;
    }

    /// Starts a step's averaging (before its backward pass, for [`GradientSync::ready`]).
    pub fn begin(&mut self, store: &ParamStore<T>) {
        self.layout(store);
        for b in &mut self.buckets {
            b.ready = 0;
            b.started = false;
        }
        self.next = 0;
        self.error = None;
        self.started_ahead = 0;
    }

    /// Parameter `key`'s gradient is complete: copies it into its bucket, and starts the
    /// sums of the buckets that are full (in order). Errors wait for
    /// [`GradientSync::finish`].
    pub fn ready(
        &mut self,
        c: &dyn Collective,
        store: &ParamStore<T>,
        key: ParamKey,
        grad: &Tensor<T>,
    ) {
        if self.error.is_some() {
            return;
        }
        let Some(&(b, k)) = self.place.get(key) else {
            return; // not a trainable parameter of the store
        };
        let bucket = &mut self.buckets[b];
        let slot = &bucket.slots[k];
        if let Err(e) = check_shape(store, slot, grad) {
            self.error = Some(e);
            return;
        }
        let (o, n) = (slot.offset, grad.numel());
        bucket.buffer[o..o + n].copy_from_slice(grad.as_slice());
        bucket.buffer[o + n] = T::from_f64(1.0);
        bucket.ready += 1;
        while let Some(b) = self.buckets.get_mut(self.next) {
            if b.ready < b.slots.len() {
                break;
            }
            match start_buffer(c, self.next, &mut b.buffer) {
                Ok(true) => b.started = true,
                // The collective does not start sums ahead: `finish` reduces them all.
                Ok(false) => return,
                Err(e) => {
                    self.error = Some(e);
                    return;
                }
            }
            self.started_ahead += 1;
            self.next += 1;
        }
    }

    /// Ends a step's averaging: reduces the buckets not started yet, waits for those
    /// started, and replaces `grads` by their mean over the replicas (see
    /// [`GradientSync::average`]).
    ///
    /// # Errors
    /// The collective's error, or a gradient whose shape is not its parameter's.
    pub fn finish(
        &mut self,
        c: &dyn Collective,
        store: &ParamStore<T>,
        grads: &mut Gradients<T>,
    ) -> Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for (id, b) in self.buckets.iter_mut().enumerate().skip(self.next) {
            b.fill(store, grads)?;
            b.started = start_buffer(c, id, &mut b.buffer)?;
            if !b.started {
                sum_buffer(c, &mut b.buffer)?;
            }
        }
        self.next = self.buckets.len();
        let scale = T::from_f64(1.0 / c.size() as f64);
        let mut missing = Vec::new();
        for (id, b) in self.buckets.iter_mut().enumerate() {
            if b.started {
                finish_buffer(c, id, &mut b.buffer)?;
            }
            for s in &b.slots {
                let n: usize = s.shape.iter().product();
                let sum = &b.buffer[s.offset..s.offset + n];
                if b.buffer[s.offset + n] == T::from_f64(0.0) {
                    continue; // no replica had a gradient for it
                }
                match grads.param_mut(s.key) {
                    Some(g) => {
                        for (o, &v) in g.as_mut_slice().iter_mut().zip(sum) {
                            *o = v * scale;
                        }
                    }
                    None => missing.push((
                        s.key,
                        Tensor::from_fn(s.shape.as_slice(), |i| sum[i] * scale),
                    )),
                }
            }
        }
        if !missing.is_empty() {
            grads.accumulate(Gradients::from_params(missing));
        }
        Ok(())
    }

    /// Replaces `grads` by their mean over the replicas: every trainable parameter of
    /// `store` that got a gradient on some replica gets the sum over replicas divided by
    /// the replica count (a replica where it got none counts zeros, as in PyTorch DDP).
    /// Leaf gradients of `Var`s are left alone.
    ///
    /// # Errors
    /// The collective's error, or a gradient whose shape is not its parameter's.
    pub fn average(
        &mut self,
        c: &dyn Collective,
        store: &ParamStore<T>,
        grads: &mut Gradients<T>,
    ) -> Result<()> {
        self.begin(store);
        self.finish(c, store, grads)
    }
}

/// Sums a few numbers (a meter's) across the replicas, when there are replicas.
pub(crate) fn sum_stats(c: Option<&dyn Collective>, values: &mut [f64]) -> Result<()> {
    match c {
        Some(c) => c.sum_f64(values),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use tapegrad_core::ParamRole;

    /// Rank 0 of two, whose other collectives do nothing (both fakes below).
    macro_rules! two_ranks_rest {
        () => {
            fn rank(&self) -> usize {
                0
            }
            fn size(&self) -> usize {
                2
            }
            fn broadcast(&self, _: &mut Vec<u8>, _: usize) -> Result<()> {
                Ok(())
            }
            fn all_gather(&self, b: &[u8]) -> Result<Vec<Vec<u8>>> {
                Ok(vec![b.to_vec(), b.to_vec()])
            }
            fn barrier(&self) -> Result<()> {
                Ok(())
            }
        };
    }

    /// Two replicas, the other of which holds ones wherever this one has a number (its
    /// gradient of every parameter is all ones).
    struct OnesElsewhere {
        sums: Cell<usize>,
    }

    impl Collective for OnesElsewhere {
        fn sum_f32(&self, v: &mut [f32]) -> Result<()> {
            self.sums.set(self.sums.get() + 1);
            v.iter_mut().for_each(|x| *x += 1.0);
            Ok(())
        }
        fn sum_f64(&self, v: &mut [f64]) -> Result<()> {
            self.sums.set(self.sums.get() + 1);
            v.iter_mut().for_each(|x| *x += 1.0);
            Ok(())
        }
        two_ranks_rest!();
    }

    #[test]
    fn buckets_average_every_gradient_and_fill_the_missing_ones() {
        let mut store = ParamStore::<f64>::new();
        let a = store.insert("a", Tensor::zeros([3, 2]));
        let b = store.insert("b", Tensor::zeros([5]));
        let c = store.insert("c", Tensor::zeros([4]));
        let frozen = store.insert("frozen", Tensor::zeros([2]));
        store.freeze(frozen);
        let ga = Tensor::from_fn([3, 2], |i| i as f64);
        let gc = Tensor::from_fn([4], |i| -(i as f64));
        // 8 elements of f64 a bucket: `c` and `b` cannot share one.
        for bytes in [64, 1 << 20] {
            let mut sync = GradientSync::new(bytes);
            let comm = OnesElsewhere { sums: Cell::new(0) };
            let mut grads = Gradients::from_params([(a, ga.clone()), (c, gc.clone())]);
            sync.average(&comm, &store, &mut grads).unwrap();
            let mean = |g: &Tensor<f64>| {
                g.as_slice()
                    .iter()
                    .map(|v| (v + 1.0) / 2.0)
                    .collect::<Vec<_>>()
            };
            assert_eq!(grads.param(a).unwrap().to_vec(), mean(&ga));
            assert_eq!(grads.param(c).unwrap().to_vec(), mean(&gc));
            // `b` had no gradient here but one on the other replica: its mean.
            assert_eq!(grads.param(b).unwrap().to_vec(), vec![0.5; 5]);
            assert!(grads.param(frozen).is_none());
            let buckets = if bytes == 64 { 3 } else { 1 };
            assert_eq!(comm.sums.get(), buckets);
            assert_eq!(sync.bucket_lens().iter().sum::<usize>(), 6 + 5 + 4 + 3);
            // Last layer first.
            assert_eq!(sync.bucket_lens()[0], if bytes == 64 { 5 } else { 18 });
        }
    }

    /// `OnesElsewhere` that starts sums ahead, and records the order it started them in.
    struct Ahead {
        started: RefCell<Vec<(usize, Vec<f64>)>>,
    }

    impl Collective for Ahead {
        fn sum_f32(&self, _: &mut [f32]) -> Result<()> {
            unreachable!("every sum starts ahead")
        }
        fn sum_f64(&self, _: &mut [f64]) -> Result<()> {
            unreachable!("every sum starts ahead")
        }
        fn start_sum_f64(&self, id: usize, v: &[f64]) -> Result<bool> {
            self.started.borrow_mut().push((id, v.to_vec()));
            Ok(true)
        }
        fn finish_sum_f64(&self, id: usize, out: &mut [f64]) -> Result<()> {
            let started = self.started.borrow();
            let (_, v) = started.iter().find(|(i, _)| *i == id).expect("started");
            for (o, x) in out.iter_mut().zip(v) {
                *o = x + 1.0;
            }
            Ok(())
        }
        two_ranks_rest!();
    }

    #[test]
    fn buckets_started_during_backward_average_the_same() {
        use tapegrad_core::{seeded_rng, Graph};
        // A 3-layer chain, a bucket per layer (8 f64s each, with the counts).
        let mut store = ParamStore::<f64>::new();
        let mut rng = seeded_rng(0);
        let keys: Vec<ParamKey> = (0..3)
            .map(|i| {
                store.insert(
                    format!("w{i}"),
                    Tensor::rand_normal([2, 2], 0.0, 1.0, &mut rng),
                )
            })
            .collect();
        let x = Tensor::rand_normal([3, 2], 0.0, 1.0, &mut rng);
        fn loss<'g>(
            g: &'g Graph<f64>,
            x: &Tensor<f64>,
            store: &ParamStore<f64>,
            keys: &[ParamKey],
        ) -> tapegrad_core::Var<'g, f64> {
            let mut h = g.constant(x.clone());
            for &k in keys {
                h = h.matmul(g.param(store, k)).tanh();
            }
            h.sum()
        }
        let g = Graph::new();
        let mut plain = loss(&g, &x, &store, &keys).backward();
        GradientSync::new(64)
            .average(&OnesElsewhere { sums: Cell::new(0) }, &store, &mut plain)
            .unwrap();

        let ahead = Ahead {
            started: RefCell::new(Vec::new()),
        };
        let mut sync = GradientSync::new(64);
        sync.begin(&store);
        let g = Graph::new();
        let mut grads = loss(&g, &x, &store, &keys)
            .try_backward_with_ready(&mut |k, gk| sync.ready(&ahead, &store, k, gk))
            .unwrap();
        // Every bucket started during the sweep, last layer first.
        assert_eq!(sync.started_ahead(), 3);
        let order: Vec<usize> = ahead.started.borrow().iter().map(|(i, _)| *i).collect();
        assert_eq!(order, vec![0, 1, 2]);
        sync.finish(&ahead, &store, &mut grads).unwrap();
        for &k in &keys {
            assert_eq!(
                grads.param(k).unwrap().to_vec(),
                plain.param(k).unwrap().to_vec()
            );
        }
    }

    #[test]
    fn the_layout_names_dtype_shape_and_role() {
        let mut s = ParamStore::<f32>::new();
        s.insert_with_role("fc.weight", Tensor::zeros([2, 3]), ParamRole::Weight);
        let b = s.insert("fc.bias", Tensor::zeros([2]));
        s.freeze(b);
        assert_eq!(
            layout(&s),
            "fc.weight f32 [2, 3] Weight\nfc.bias f32 [2] Other frozen\n"
        );
    }
}

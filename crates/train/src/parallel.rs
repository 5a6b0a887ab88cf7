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

use tapegrad_core::{Error, Float, Gradients, ParamKey, ParamStore, Result, Tensor};

pub use tapegrad_core::collective::Collective;

/// Sums a flat buffer of `T` across the replicas (through the `f32` or `f64` collective).
/// It takes the `Vec` because a `Vec` can be downcast to `Vec<f32>`; a slice cannot be a
/// `dyn Any`.
#[allow(clippy::ptr_arg)]
fn sum_buffer<T: Float>(c: &dyn Collective, buffer: &mut Vec<T>) -> Result<()> {
    let any: &mut dyn Any = buffer;
    if let Some(v) = any.downcast_mut::<Vec<f32>>() {
        return c.sum_f32(v);
    }
    match any.downcast_mut::<Vec<f64>>() {
        Some(v) => c.sum_f64(v),
        None => Err(Error::argument(
            "Collective",
            format!("no sum for element type {}", T::DTYPE),
        )),
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
            p.value.shape(),
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

/// Averages gradients across replicas in reused buckets (see the module docs).
#[derive(Debug)]
pub struct GradientSync<T: Float> {
    bucket_bytes: usize,
    /// The store's trainable layout the buckets were built for.
    built_for: Vec<(ParamKey, Vec<usize>)>,
    buckets: Vec<(Vec<Slot>, Vec<T>)>,
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
        }
    }

    /// The largest bucket, in bytes.
    pub fn bucket_bytes(&self) -> usize {
        self.bucket_bytes
    }

    /// The buckets of the last average: their sizes in elements.
    pub fn bucket_lens(&self) -> Vec<usize> {
        self.buckets.iter().map(|(_, b)| b.len()).collect()
    }

    /// Lays the buckets out for `store`'s trainable parameters, unless they are laid out
    /// for it already.
    fn layout(&mut self, store: &ParamStore<T>) {
        let trainable = || store.iter().filter(|(_, p)| p.requires_grad());
        // Compared without allocating: this runs every step.
        let same = trainable().count() == self.built_for.len()
            && trainable()
                .zip(&self.built_for)
                .all(|((k, p), (bk, bs))| k == *bk && p.value.shape() == bs.as_slice());
        if same {
            return;
        }
        let want: Vec<(ParamKey, Vec<usize>)> = trainable()
            .map(|(k, p)| (k, p.value.shape().to_vec()))
            .collect();
        let per_bucket = (self.bucket_bytes / std::mem::size_of::<T>()).max(1);
        self.buckets.clear();
        let mut slots = Vec::new();
        let mut len = 0usize;
        // Last layer first: backward finishes those gradients first.
        for (key, shape) in want.iter().rev() {
            let n: usize = shape.iter().product();
            if len > 0 && len + n + 1 > per_bucket {
                self.buckets
                    .push((std::mem::take(&mut slots), Vec::with_capacity(len)));
                len = 0;
            }
            slots.push(Slot {
                key: *key,
                shape: shape.clone(),
                offset: len,
            });
            len += n + 1;
        }
        if !slots.is_empty() {
            self.buckets.push((slots, Vec::with_capacity(len)));
        }
        self.built_for = want;
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
        self.layout(store);
        let scale = T::from_f64(1.0 / c.size() as f64);
        let mut missing = Vec::new();
        for (slots, buffer) in &mut self.buckets {
            buffer.clear();
            for s in slots.iter() {
                match grads.param(s.key) {
                    Some(g) => {
                        if g.shape() != s.shape.as_slice() {
                            return Err(Error::argument(
                                "GradientSync::average",
                                format!(
                                    "the gradient of `{}` has shape {:?}, the parameter {:?}",
                                    store.name(s.key),
                                    g.shape(),
                                    s.shape
                                ),
                            ));
                        }
                        buffer.extend_from_slice(g.as_slice());
                        buffer.push(T::from_f64(1.0));
                    }
                    None => {
                        let n: usize = s.shape.iter().product();
                        buffer.extend(std::iter::repeat_n(T::from_f64(0.0), n + 1));
                    }
                }
            }
            sum_buffer(c, buffer)?;
            for s in slots.iter() {
                let n: usize = s.shape.iter().product();
                let sum = &buffer[s.offset..s.offset + n];
                if buffer[s.offset + n] == T::from_f64(0.0) {
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
    use std::cell::Cell;
    use tapegrad_core::ParamRole;

    /// Two replicas, the other of which holds ones wherever this one has a number (its
    /// gradient of every parameter is all ones).
    struct OnesElsewhere {
        sums: Cell<usize>,
    }

    impl Collective for OnesElsewhere {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
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
        fn broadcast(&self, _: &mut Vec<u8>, _: usize) -> Result<()> {
            Ok(())
        }
        fn all_gather(&self, b: &[u8]) -> Result<Vec<Vec<u8>>> {
            Ok(vec![b.to_vec(), b.to_vec()])
        }
        fn barrier(&self) -> Result<()> {
            Ok(())
        }
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

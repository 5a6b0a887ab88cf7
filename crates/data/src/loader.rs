//! `DataLoader`: a dataset in batches, reshuffled each epoch by a permutation computed from
//! the seed and the epoch alone.
//!
//! A batch's tensors are written straight into pooled buffers (`Tensor::from_writer`), and
//! the permutation's vector is reused from epoch to epoch, so a training loop driven by a
//! loader allocates nothing at steady state (`tests/zero_alloc.rs`). Any epoch can be
//! started at any batch (`epoch_from`): resuming in the middle of an epoch delivers exactly
//! the batches an uninterrupted run would have.

use std::cell::Cell;
use std::marker::PhantomData;

use rand::RngExt;
use tapegrad_core::{Error, Float, Tensor};

use crate::dataset::Dataset;
use crate::rng::{replica_seed, stream_rng, Stream};
use crate::transform::Transform;

/// One batch: features `[B, ...]`, labels `[B]`, and where it sits in the run.
#[derive(Clone, Debug)]
pub struct Batch<T: Float> {
    /// The features, `[B, feature_shape...]` (after the loader's transform, if any).
    pub x: Tensor<T>,
    /// The labels.
    pub y: Tensor<usize>,
    /// The epoch this batch belongs to.
    pub epoch: u64,
    /// Its position in the epoch (0-based).
    pub index: usize,
}

impl<T: Float> Batch<T> {
    /// The number of samples.
    pub fn len(&self) -> usize {
        self.y.numel()
    }

    /// Whether the batch is empty (never, for batches a loader yields).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a sharded loader does when the dataset does not split evenly between the replicas
/// (PyTorch's `DistributedSampler`, `drop_last=False` and `True`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uneven {
    /// Repeat the epoch's first samples until every replica has `⌈n / replicas⌉`
    /// (PyTorch's default): every sample is seen, a few twice.
    Pad,
    /// Leave out the epoch's last samples so every replica has `⌊n / replicas⌋`.
    Drop,
}

/// One replica's part of every epoch, in data-parallel training (see
/// [`DataLoader::with_shard`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This replica (0-based).
    pub rank: usize,
    /// How many replicas share the data.
    pub replicas: usize,
    /// What happens to the samples that do not split evenly.
    pub uneven: Uneven,
}

impl Shard {
    /// The samples of an `n`-sample epoch that each replica gets.
    pub fn samples(&self, n: usize) -> usize {
        match self.uneven {
            Uneven::Pad => n.div_ceil(self.replicas),
            Uneven::Drop => n / self.replicas,
        }
    }
}

/// A dataset in batches.
///
/// ```
/// use tapegrad_core::Tensor;
/// use tapegrad_data::{DataLoader, TensorDataset};
/// let d = TensorDataset::new(Tensor::<f32>::from_fn([10, 3], |i| i as f32), Tensor::from_fn([10], |i| i % 2)).unwrap();
/// let loader = DataLoader::new(&d, 4).with_shuffle(7);
/// let sizes: Vec<usize> = loader.epoch(0).map(|b| b.len()).collect();
/// assert_eq!(sizes, vec![4, 4, 2]);
/// // The order of epoch 1 is a function of the seed and the epoch alone.
/// assert_eq!(loader.order(1), DataLoader::new(&d, 4).with_shuffle(7).order(1));
/// assert_ne!(loader.order(1), loader.order(2));
/// ```
pub struct DataLoader<'d, T: Float, D: Dataset<T> + ?Sized> {
    data: &'d D,
    batch_size: usize,
    shuffle: Option<u64>,
    drop_last: bool,
    shard: Option<Shard>,
    transform: Option<(Box<dyn Transform<T> + 'd>, u64)>,
    /// The permutation's vector, kept between epochs.
    spare: Cell<Vec<usize>>,
    _t: PhantomData<T>,
}

impl<'d, T: Float, D: Dataset<T> + ?Sized> DataLoader<'d, T, D> {
    /// Batches of `batch_size` samples in the dataset's order; the last batch may be
    /// smaller.
    ///
    /// # Panics
    /// At the caller's line if `batch_size` is 0.
    #[track_caller]
    pub fn new(data: &'d D, batch_size: usize) -> Self {
        if batch_size == 0 {
            Error::argument("DataLoader", "the batch size must be at least 1").raise();
        }
        DataLoader {
            data,
            batch_size,
            shuffle: None,
            drop_last: false,
            shard: None,
            transform: None,
            spare: Cell::new(Vec::new()),
            _t: PhantomData,
        }
    }

    /// Reshuffles every epoch: epoch `e`'s order is a permutation drawn from a generator
    /// seeded by `(seed, e)` (see [`crate::rng`]).
    pub fn with_shuffle(mut self, seed: u64) -> Self {
        self.shuffle = Some(seed);
        self
    }

    /// Drops the last batch when it is smaller than the others.
    pub fn with_drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Delivers only replica `rank`'s part of each epoch, as PyTorch's `DistributedSampler`
    /// does: the epoch's permutation of the whole dataset (the same on every replica: same
    /// seed, same epoch), padded or cut to a multiple of `replicas` as `uneven` says, and
    /// from it every `replicas`-th sample starting at `rank`.
    ///
    /// Batch `k` of every replica together are the samples a single process would put in
    /// batch `k` with `replicas` times the batch size: training on `replicas` processes with
    /// batch `B` each takes the steps one process takes with batch `replicas · B` (exactly,
    /// when `replicas` divides the dataset). Augmentation draws from a stream of its own on
    /// each replica (replica 0's is the unsharded loader's).
    ///
    /// ```
    /// use tapegrad_core::Tensor;
    /// use tapegrad_data::{DataLoader, TensorDataset, Uneven};
    /// let d = TensorDataset::new(Tensor::<f32>::zeros([10, 1]), Tensor::from_fn([10], |i| i)).unwrap();
    /// let whole = DataLoader::new(&d, 4).with_shuffle(3).order(0);
    /// let r0 = DataLoader::new(&d, 2).with_shuffle(3).with_shard(0, 2, Uneven::Pad).order(0);
    /// let r1 = DataLoader::new(&d, 2).with_shuffle(3).with_shard(1, 2, Uneven::Pad).order(0);
    /// assert_eq!(r0, whole.iter().copied().step_by(2).collect::<Vec<_>>());
    /// assert_eq!(r1, whole.iter().copied().skip(1).step_by(2).collect::<Vec<_>>());
    /// ```
    ///
    /// # Panics
    /// At the caller's line if `replicas` is 0 or `rank` is not below it.
    #[track_caller]
    pub fn with_shard(mut self, rank: usize, replicas: usize, uneven: Uneven) -> Self {
        if replicas == 0 || rank >= replicas {
            Error::argument(
                "DataLoader::with_shard",
                format!("rank {rank} of {replicas} replicas: the rank must be below the count"),
            )
            .raise();
        }
        self.shard = Some(Shard {
            rank,
            replicas,
            uneven,
        });
        self
    }

    /// The shard this loader delivers, if it is sharded.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Applies `transform` to every batch's features, with random numbers drawn from a
    /// generator seeded by `(seed, epoch, batch)`: the same batch of the same epoch gets the
    /// same augmentation in every run.
    ///
    /// # Panics
    /// At the caller's line if the transform does not suit the dataset's samples.
    #[track_caller]
    pub fn with_transform(mut self, transform: impl Transform<T> + 'd, seed: u64) -> Self {
        if let Err(e) = transform.check(self.data.feature_shape()) {
            e.at_caller().raise();
        }
        self.transform = Some((Box::new(transform), seed));
        self
    }

    /// The dataset.
    pub fn dataset(&self) -> &'d D {
        self.data
    }

    /// The batch size.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.shard_len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The samples one epoch visits (all, or all but a dropped last batch).
    pub fn samples_per_epoch(&self) -> usize {
        let n = self.shard_len();
        if self.drop_last {
            n / self.batch_size * self.batch_size
        } else {
            n
        }
    }

    /// The samples of an epoch before batching: the dataset's, or this replica's part.
    fn shard_len(&self) -> usize {
        let n = self.data.len();
        self.shard.map_or(n, |s| s.samples(n))
    }

    /// The order in which epoch `epoch` visits the samples.
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut v = Vec::new();
        self.fill_order(epoch, &mut v);
        v
    }

    fn fill_order(&self, epoch: u64, v: &mut Vec<usize>) {
        v.clear();
        v.extend(0..self.data.len());
        if let Some(seed) = self.shuffle {
            // Fisher–Yates, from the end.
            let mut rng = stream_rng(seed, Stream::Shuffle, epoch, 0);
            for i in (1..v.len()).rev() {
                let j = rng.random_range(0..=i);
                v.swap(i, j);
            }
        }
        if let Some(s) = self.shard {
            let n = v.len();
            let per = s.samples(n);
            // Padded by repeating the order from its start (as often as needed when the
            // dataset is smaller than the replica count), then every `replicas`-th sample.
            for k in n..per * s.replicas {
                let again = v[k % n];
                v.push(again);
            }
            for k in 0..per {
                v[k] = v[k * s.replicas + s.rank];
            }
            v.truncate(per);
        }
    }

    /// The batches of epoch `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> Batches<'_, 'd, T, D> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of epoch `epoch` from batch `first` on (to resume in the middle of an
    /// epoch: the same batches, the same augmentation, as an uninterrupted run).
    pub fn epoch_from(&self, epoch: u64, first: usize) -> Batches<'_, 'd, T, D> {
        let mut order = self.spare.take();
        self.fill_order(epoch, &mut order);
        Batches {
            loader: self,
            order,
            epoch,
            next: first,
            end: self.batches_per_epoch(),
        }
    }

    /// Batch `index` of an epoch whose order is `order`.
    fn batch(&self, order: &[usize], epoch: u64, index: usize) -> Batch<T> {
        let start = index * self.batch_size;
        let idx = &order[start..(start + self.batch_size).min(order.len())];
        let fs = self.data.feature_shape();
        let sample: usize = fs.iter().product();
        let mut shape = tapegrad_core::Shape::new();
        shape.push(idx.len());
        shape.extend_from_slice(fs);
        let x = Tensor::from_writer(shape, |out| {
            for (k, &i) in idx.iter().enumerate() {
                self.data
                    .read_features(i, &mut out[k * sample..(k + 1) * sample]);
            }
        });
        let y = Tensor::from_writer([idx.len()], |out| {
            for (o, &i) in out.iter_mut().zip(idx) {
                *o = self.data.label(i);
            }
        });
        let x = match &self.transform {
            Some((t, seed)) => {
                let seed = replica_seed(*seed, self.shard.map_or(0, |s| s.rank));
                let mut rng = stream_rng(seed, Stream::Augment, epoch, index as u64);
                t.apply(x, &mut rng)
            }
            None => x,
        };
        Batch { x, y, epoch, index }
    }
}

/// The batches of one epoch (see [`DataLoader::epoch`]).
pub struct Batches<'l, 'd, T: Float, D: Dataset<T> + ?Sized> {
    loader: &'l DataLoader<'d, T, D>,
    order: Vec<usize>,
    epoch: u64,
    next: usize,
    end: usize,
}

impl<T: Float, D: Dataset<T> + ?Sized> Iterator for Batches<'_, '_, T, D> {
    type Item = Batch<T>;

    fn next(&mut self) -> Option<Batch<T>> {
        if self.next >= self.end {
            return None;
        }
        let b = self.loader.batch(&self.order, self.epoch, self.next);
        self.next += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end.saturating_sub(self.next);
        (n, Some(n))
    }
}

impl<T: Float, D: Dataset<T> + ?Sized> ExactSizeIterator for Batches<'_, '_, T, D> {}

impl<T: Float, D: Dataset<T> + ?Sized> Drop for Batches<'_, '_, T, D> {
    fn drop(&mut self) {
        // The permutation's memory goes back for the next epoch.
        self.loader.spare.set(std::mem::take(&mut self.order));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorDataset;

    fn data(n: usize) -> TensorDataset<f64> {
        TensorDataset::new(
            Tensor::from_fn([n, 2], |i| i as f64),
            Tensor::from_fn([n], |i| i % 3),
        )
        .unwrap()
    }

    #[test]
    fn an_epoch_visits_every_sample_once_in_a_seeded_permutation() {
        let d = data(23);
        let l = DataLoader::new(&d, 5).with_shuffle(11);
        let mut seen: Vec<usize> = l
            .epoch(3)
            .flat_map(|b| {
                b.x.as_slice()
                    .iter()
                    .step_by(2)
                    .map(|&v| v as usize / 2)
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_ne!(seen, (0..23).collect::<Vec<_>>(), "shuffled");
        seen.sort();
        assert_eq!(seen, (0..23).collect::<Vec<_>>());
        // Labels travel with their features.
        for b in l.epoch(3) {
            for k in 0..b.len() {
                let i = b.x.get(&[k, 0]) as usize / 2;
                assert_eq!(b.y.as_slice()[k], i % 3);
            }
        }
        // Unshuffled: the dataset's order.
        assert_eq!(DataLoader::new(&d, 5).order(9), (0..23).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_and_resuming_inside_an_epoch() {
        let d = data(23);
        let l = DataLoader::new(&d, 5).with_shuffle(1).with_drop_last(true);
        assert_eq!((l.batches_per_epoch(), l.samples_per_epoch()), (4, 20));
        assert!(l.epoch(0).all(|b| b.len() == 5));
        let all: Vec<Vec<f64>> = l.epoch(2).map(|b| b.x.to_vec()).collect();
        let tail: Vec<Vec<f64>> = l.epoch_from(2, 2).map(|b| b.x.to_vec()).collect();
        assert_eq!(&all[2..], &tail[..]);
        assert_eq!(l.epoch_from(2, 9).count(), 0);
    }

    #[test]
    fn shards_partition_each_epoch_as_distributed_sampler_does() {
        let d = data(23);
        let whole = DataLoader::new(&d, 6).with_shuffle(5);
        for replicas in 1..=4 {
            let shards: Vec<_> = (0..replicas)
                .map(|r| {
                    DataLoader::new(&d, 2)
                        .with_shuffle(5)
                        .with_shard(r, replicas, Uneven::Pad)
                })
                .collect();
            let per = 23usize.div_ceil(replicas);
            let mut padded = whole.order(4);
            padded.extend_from_within(..per * replicas - 23);
            for (r, s) in shards.iter().enumerate() {
                assert_eq!(s.samples_per_epoch(), per);
                assert_eq!(s.batches_per_epoch(), per.div_ceil(2));
                let mine: Vec<usize> = padded.iter().copied().skip(r).step_by(replicas).collect();
                assert_eq!(s.order(4), mine, "replicas {replicas}, rank {r}");
            }
            // Dropping: ⌊23 / replicas⌋ each, disjoint, from the front of the permutation.
            let mut seen: Vec<usize> = (0..replicas)
                .flat_map(|r| {
                    DataLoader::new(&d, 2)
                        .with_shuffle(5)
                        .with_shard(r, replicas, Uneven::Drop)
                        .order(4)
                })
                .collect();
            assert_eq!(seen.len(), 23 / replicas * replicas);
            seen.sort();
            let mut front = whole.order(4)[..23 / replicas * replicas].to_vec();
            front.sort();
            assert_eq!(seen, front);
        }
        // A dataset smaller than the replica count is repeated.
        let tiny = data(2);
        let l = DataLoader::new(&tiny, 1).with_shard(4, 5, Uneven::Pad);
        assert_eq!(l.order(0), vec![0]);
    }

    #[test]
    fn sharded_batches_together_are_the_single_process_batch() {
        let d = data(24);
        let whole = DataLoader::new(&d, 6).with_shuffle(9);
        let r: Vec<_> = (0..2)
            .map(|k| {
                DataLoader::new(&d, 3)
                    .with_shuffle(9)
                    .with_shard(k, 2, Uneven::Pad)
            })
            .collect();
        for (k, b) in whole.epoch(1).enumerate() {
            let mut a: Vec<f64> = r[0].epoch(1).nth(k).unwrap().x.to_vec();
            a.extend(r[1].epoch(1).nth(k).unwrap().x.to_vec());
            let mut all = b.x.to_vec();
            let key = |v: &Vec<f64>| {
                let mut p: Vec<(u64, u64)> =
                    v.chunks(2).map(|c| (c[0] as u64, c[1] as u64)).collect();
                p.sort();
                p
            };
            assert_eq!(key(&a), key(&std::mem::take(&mut all)));
        }
    }
}

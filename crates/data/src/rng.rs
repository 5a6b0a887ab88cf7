//! Counter-based random streams: every random decision of a training run is drawn from a
//! generator seeded by (run seed, stream, epoch, step), so it can be recomputed at any
//! point from those numbers alone.
//!
//! This is what makes a resumed run bit-identical to one that never stopped: there is no
//! generator state to save, only the seed and the position (the epoch and the step), which
//! a checkpoint holds anyway. The shuffle of epoch 7 is the shuffle of epoch 7 whether the
//! process ran epochs 0–6 first or not.

use rand::SeedableRng;
use tapegrad_core::StdRng;

/// The independent streams of a run. Each draws from its own generators, so adding
/// augmentation does not change the shuffle, and so on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stream {
    /// The order of the samples in an epoch.
    Shuffle,
    /// The random transforms of a batch.
    Augment,
    /// Dropout and other random layers in a training step.
    Dropout,
    /// Anything else a user wants on its own stream (the number tells them apart).
    User(u32),
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Stream::Shuffle => 1,
            Stream::Augment => 2,
            Stream::Dropout => 3,
            Stream::User(k) => 0x1_0000_0000 | k as u64,
        }
    }
}

/// SplitMix64's finaliser: a bijection of `u64` whose outputs look independent for
/// consecutive inputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of `stream` at `(epoch, step)` of the run seeded with `seed`.
///
/// ```
/// use tapegrad_data::rng::{stream_rng, Stream};
/// use rand::Rng;
/// let a: u64 = stream_rng(0, Stream::Shuffle, 3, 0).next_u64();
/// let b: u64 = stream_rng(0, Stream::Shuffle, 3, 0).next_u64();
/// assert_eq!(a, b); // recomputed, not replayed
/// assert_ne!(a, stream_rng(0, Stream::Shuffle, 4, 0).next_u64());
/// ```
pub fn stream_rng(seed: u64, stream: Stream, epoch: u64, step: u64) -> StdRng {
    let k = mix(mix(mix(mix(seed) ^ stream.id()) ^ epoch) ^ step);
    StdRng::seed_from_u64(k)
}

/// The seed of replica `rank`'s own streams in data-parallel training (dropout masks,
/// augmentation): `seed` itself for replica 0, so a single process draws what it always
/// drew, and an independent seed for every other replica.
///
/// ```
/// use tapegrad_data::rng::replica_seed;
/// assert_eq!(replica_seed(7, 0), 7);
/// assert_ne!(replica_seed(7, 1), replica_seed(7, 2));
/// ```
pub fn replica_seed(seed: u64, rank: usize) -> u64 {
    if rank == 0 {
        seed
    } else {
        mix(seed ^ mix(0x5EED_0000_0000_0000 | rank as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_and_positions_are_independent() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..3 {
            for s in [
                Stream::Shuffle,
                Stream::Augment,
                Stream::Dropout,
                Stream::User(0),
            ] {
                for e in 0..4 {
                    for t in 0..4 {
                        assert!(seen.insert(stream_rng(seed, s, e, t).next_u64()));
                    }
                }
            }
        }
    }
}

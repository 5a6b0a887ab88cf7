//! [`PassRng`]: the random number generator a forward pass hands to random layers.
//!
//! Usually it is the caller's `StdRng`, drawn from directly. Inside a checkpointed block
//! ([`crate::Checkpointed`]) it also keeps a log of what the block drew, and when the
//! block is recomputed during backward it plays that log back, so that dropout draws the
//! same masks both times and the pass's own generator advances exactly as in a plain run.

use std::convert::Infallible;

use rand::rngs::StdRng;
use rand::{Rng, TryRng};

/// The generator of a forward pass ([`crate::Forward::rng`]): implements [`Rng`], so it goes
/// wherever a generator does (`Tensor::rand_uniform`, [`crate::dropout()`], `rand`'s
/// distributions).
pub struct PassRng<'s>(Source<'s>);

enum Source<'s> {
    /// The caller's generator.
    Live(&'s mut StdRng),
    /// Another generator (a pass's), with every byte drawn appended to a log.
    Recording {
        from: &'s mut (dyn TryRng<Error = Infallible> + 's),
        log: &'s mut Vec<u8>,
    },
    /// A log played back from `pos`.
    Replay { log: &'s [u8], pos: usize },
}

impl<'s> PassRng<'s> {
    /// Draws from `rng`.
    pub fn new(rng: &'s mut StdRng) -> Self {
        PassRng(Source::Live(rng))
    }

    /// The caller's generator itself when the pass draws from it directly (not inside a
    /// checkpointed block): a random layer's hot loop runs on it without the dispatch of
    /// every draw (dropout's mask is twice as fast that way).
    pub fn as_std(&mut self) -> Option<&mut StdRng> {
        match &mut self.0 {
            Source::Live(r) => Some(r),
            _ => None,
        }
    }

    /// Draws from `from` and logs the bytes in `log`.
    pub(crate) fn recording(
        from: &'s mut (dyn TryRng<Error = Infallible> + 's),
        log: &'s mut Vec<u8>,
    ) -> Self {
        PassRng(Source::Recording { from, log })
    }

    /// Plays `log` back.
    pub(crate) fn replay(log: &'s [u8]) -> Self {
        PassRng(Source::Replay { log, pos: 0 })
    }

    /// The next `N` bytes of a replayed log.
    #[inline]
    fn replayed<const N: usize>(log: &[u8], pos: &mut usize) -> [u8; N] {
        let Some(bytes) = log.get(*pos..*pos + N) else {
            exhausted(log.len())
        };
        *pos += N;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        out
    }
}

/// A replay that reads past its log: the block is not a function of its inputs.
#[cold]
fn exhausted(len: usize) -> ! {
    panic!(
        "checkpoint: a checkpointed block drew more random numbers when recomputed than when it \
         first ran ({len} bytes); a block must draw the same numbers for the same inputs"
    )
}

/// `try_next_u32`/`try_next_u64`: the live draw, recorded (its bytes appended to the log) or
/// replayed from the log.
macro_rules! next_word {
    ($try:ident => $word:ty, $next:ident) => {
        #[inline]
        fn $try(&mut self) -> Result<$word, Infallible> {
            Ok(match &mut self.0 {
                Source::Live(r) => r.$next(),
                Source::Recording { from, log } => {
                    let v = from.$try()?;
                    log.extend_from_slice(&v.to_le_bytes());
                    v
                }
                Source::Replay { log, pos } => <$word>::from_le_bytes(Self::replayed(log, pos)),
            })
        }
    };
}

impl TryRng for PassRng<'_> {
    type Error = Infallible;

    next_word!(try_next_u32 => u32, next_u32);
    next_word!(try_next_u64 => u64, next_u64);

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        match &mut self.0 {
            Source::Live(r) => r.fill_bytes(dst),
            Source::Recording { from, log } => {
                from.try_fill_bytes(dst)?;
                log.extend_from_slice(dst);
            }
            Source::Replay { log, pos } => {
                let Some(bytes) = log.get(*pos..*pos + dst.len()) else {
                    exhausted(log.len())
                };
                dst.copy_from_slice(bytes);
                *pos += dst.len();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapegrad_core::seeded_rng;

    #[test]
    fn a_recording_plays_back_the_same_numbers_and_the_source_advances_as_if_drawn_directly() {
        let mut direct = seeded_rng(3);
        let want: Vec<u64> = (0..5)
            .map(|i| {
                if i % 2 == 0 {
                    u64::from(direct.next_u32())
                } else {
                    direct.next_u64()
                }
            })
            .collect();
        let after_direct = direct.next_u64();

        let mut src = seeded_rng(3);
        let mut log = Vec::new();
        let drawn: Vec<u64> = {
            let mut outer = PassRng::new(&mut src);
            let mut rec = PassRng::recording(&mut outer, &mut log);
            (0..5)
                .map(|i| {
                    if i % 2 == 0 {
                        u64::from(rec.next_u32())
                    } else {
                        rec.next_u64()
                    }
                })
                .collect()
        };
        assert_eq!(drawn, want);
        assert_eq!(src.next_u64(), after_direct);
        let mut rep = PassRng::replay(&log);
        let again: Vec<u64> = (0..5)
            .map(|i| {
                if i % 2 == 0 {
                    u64::from(rep.next_u32())
                } else {
                    rep.next_u64()
                }
            })
            .collect();
        assert_eq!(again, want);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rep.next_u32()));
        assert!(r.is_err(), "reading past the log is refused");
    }
}

//! The cost model of data-parallel training with a ring allreduce, to predict how a
//! training step scales to more ranks than one machine has.
//!
//! A ring allreduce of `n` bytes over `p` ranks sends `2 (p − 1)` messages of `n / p` bytes
//! from every rank, in sequence (a reduce-scatter, then an allgather; Patarasuk and Yuan,
//! 2009): its time is `2 (p − 1) α + 2 (p − 1)/p · n / β` for a per-message latency `α`
//! and a link bandwidth `β`. The bandwidth term tends to `2 n / β` and stops growing with
//! `p`; the latency term grows linearly, which is why large jobs reduce few, large buckets.
//! With weak scaling (a fixed batch per rank), a step's compute stays what it is on one
//! rank, and the efficiency is `compute / (compute + exposed communication)`.

/// A network: per-message latency and per-link bandwidth.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network {
    /// Seconds per message (start-up, switch hop, software).
    pub latency: f64,
    /// Bytes per second each way on one link.
    pub bandwidth: f64,
}

impl Network {
    /// A 100 Gb/s network (12.5 GB/s) with 5 µs per message: InfiniBand EDR or 100 GbE with
    /// RDMA, as HPC clusters have.
    pub const HPC_100G: Network = Network {
        latency: 5e-6,
        bandwidth: 12.5e9,
    };

    /// The seconds of a ring allreduce of `bytes` over `ranks` ranks (0 for one rank).
    ///
    /// ```
    /// use tapegrad_dist::scaling::Network;
    /// let net = Network { latency: 1e-6, bandwidth: 1e9 };
    /// // 2 ranks: 2 messages of half the buffer each.
    /// assert!((net.ring_allreduce_seconds(1e6, 2) - (2e-6 + 1e-3)).abs() < 1e-12);
    /// assert_eq!(net.ring_allreduce_seconds(1e6, 1), 0.0);
    /// ```
    pub fn ring_allreduce_seconds(&self, bytes: f64, ranks: usize) -> f64 {
        if ranks <= 1 {
            return 0.0;
        }
        let p = ranks as f64;
        2.0 * (p - 1.0) * self.latency + 2.0 * (p - 1.0) / p * bytes / self.bandwidth
    }
}

/// One training step of a model, for the prediction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// Seconds of forward, backward and update on one rank, at the per-rank batch.
    pub compute: f64,
    /// Bytes of gradient reduced per step.
    pub gradient_bytes: f64,
    /// The part of the reduction hidden behind the backward pass (0: none, as in the
    /// `Trainer`, which reduces after backward; PyTorch DDP hides most of it).
    pub overlap: f64,
}

impl Step {
    /// The seconds of a step on `ranks` ranks of `net`: the compute, plus the part of the
    /// allreduce not hidden behind it.
    pub fn seconds(&self, net: &Network, ranks: usize) -> f64 {
        let comm = net.ring_allreduce_seconds(self.gradient_bytes, ranks);
        let hidden = (comm * self.overlap.clamp(0.0, 1.0)).min(self.compute);
        self.compute + comm - hidden
    }

    /// Weak-scaling efficiency on `ranks` ranks: one rank's step time over this one's (1 is
    /// perfect: `ranks` times the samples in the same time).
    ///
    /// ```
    /// use tapegrad_dist::scaling::{Network, Step};
    /// let step = Step { compute: 10e-3, gradient_bytes: 4e6, overlap: 0.0 };
    /// // 64 ranks: 126 messages of 5 µs, and 2·63/64 · 4 MB at 12.5 GB/s: 0.63 + 0.63 ms.
    /// let e = step.efficiency(&Network::HPC_100G, 64);
    /// assert!((e - 10.0 / 11.26).abs() < 1e-9);
    /// ```
    pub fn efficiency(&self, net: &Network, ranks: usize) -> f64 {
        self.compute / self.seconds(net, ranks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bandwidth_term_saturates_and_the_latency_term_grows() {
        let net = Network {
            latency: 1e-5,
            bandwidth: 1e10,
        };
        let n = 1e8;
        let t = |p| net.ring_allreduce_seconds(n, p);
        // 2(p−1)/p · n/β → 2 n/β.
        let bw = |p: usize| t(p) - 2.0 * (p as f64 - 1.0) * net.latency;
        assert!((bw(2) - n / 1e10).abs() < 1e-12);
        assert!((bw(1000) - 2.0 * n / 1e10 * 999.0 / 1000.0).abs() < 1e-12);
        assert!(t(512) > t(64) && t(64) > t(8));
        // Full overlap hides the communication up to the compute.
        let s = Step {
            compute: 1.0,
            gradient_bytes: n,
            overlap: 1.0,
        };
        assert_eq!(s.seconds(&net, 8), 1.0);
        let s = Step { overlap: 0.0, ..s };
        assert!((s.seconds(&net, 8) - 1.0 - t(8)).abs() < 1e-12);
    }
}

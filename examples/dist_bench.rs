//! Data-parallel speed: W2's MLP step (784-512-256-10, batch 128, f32, SGD) on one process
//! or as one rank of an `mpirun` job, with the time spent averaging gradients, and the
//! ring-allreduce model's prediction for more ranks.
//!
//! ```text
//! cargo build --release --features mpi --example dist_bench
//! target/release/examples/dist_bench --threads 2                 # 1 process × 2 threads
//! mpirun -np 2 target/release/examples/dist_bench --threads 1    # 2 ranks × 1 thread
//! ```
//!
//! The global batch is 128 either way (64 per rank on 2 ranks). Rank 0 prints the median
//! step, the median time in the gradient average, and the efficiency the model of
//! `tapegrad::dist::scaling` predicts at 8, 64 and 512 ranks on a 100 Gb/s network, from the
//! measured compute per step and the bytes of gradient.

use std::time::Instant;

use clap::Parser;
use tapegrad::dist::scaling::{Network, Step};
use tapegrad::dist::Communicator;
use tapegrad::nn::cross_entropy;
use tapegrad::prelude::*;
use tapegrad::train::{Collective, GradientSync};

/// Time W2's step on one process or on every rank of an mpirun job.
#[derive(Parser, Debug)]
struct Args {
    /// Threads for the kernels on each rank.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Timed steps.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// The global batch (split evenly between the ranks).
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Start each bucket's sum during the backward pass (PyTorch DDP's overlap).
    #[arg(long)]
    overlap: bool,
    /// The largest gradient bucket, in KiB (PyTorch DDP: 25 MiB).
    #[arg(long, default_value_t = 25 << 10)]
    bucket_kib: usize,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let a = Args::parse();
    let comm = Communicator::init()?;
    tapegrad::kernels::threads::set_num_threads(a.threads);
    let (ranks, rank) = (comm.size(), comm.rank());
    let batch = a.batch / ranks;
    let sizes = [784usize, 512, 256, 10];
    let mut rng = seeded_rng(10 + rank as u64);
    let x = Tensor::<f32>::rand_uniform([batch, sizes[0]], 0.0, 1.0, &mut rng);
    let y = Tensor::from_fn([batch], |i| (i * 7 + rank) % 10);
    let mut store = ParamStore::<f32>::new();
    let mut keys = Vec::new();
    let mut init = seeded_rng(12);
    for l in 0..3 {
        let (fi, fo) = (sizes[l], sizes[l + 1]);
        let bound = 1.0 / (fi as f64).sqrt();
        keys.push(store.insert(
            format!("w{l}"),
            Tensor::rand_uniform([fi, fo], -bound, bound, &mut init),
        ));
        keys.push(store.insert(format!("b{l}"), Tensor::zeros([fo])));
    }
    comm.broadcast_store(&mut store)?;
    let mut g = Graph::<f32>::new();
    let mut opt = Sgd::new(SgdConfig::default());
    let mut sync = GradientSync::<f32>::new(a.bucket_kib << 10);
    let mut ahead = 0;
    let mut step = |times: Option<(&mut Vec<f64>, &mut Vec<f64>)>| -> Result<()> {
        let t0 = Instant::now();
        g.reset();
        let p = |i: usize| g.param(&store, keys[i]);
        let h1 = (g.constant(x.clone()).matmul(p(0)) + p(1)).relu();
        let h2 = (h1.matmul(p(2)) + p(3)).relu();
        let loss = cross_entropy(h2.matmul(p(4)) + p(5), &y, Reduction::Mean);
        let mut grads = if a.overlap && ranks > 1 {
            sync.begin(&store);
            let (sync, store, comm) = (&mut sync, &store, &comm);
            loss.try_backward_with_ready(&mut |k, gk| sync.ready(comm, store, k, gk))?
        } else {
            loss.backward()
        };
        g.reset();
        let t1 = Instant::now();
        if ranks > 1 && a.overlap {
            sync.finish(&comm, &store, &mut grads)?;
            ahead = sync.started_ahead();
        } else if ranks > 1 {
            comm.average_gradients(&mut sync, &store, &mut grads)?;
        }
        let t2 = Instant::now();
        opt.step(&mut store, &grads, 0.01);
        if let Some((steps, reduce)) = times {
            steps.push(t0.elapsed().as_secs_f64());
            reduce.push((t2 - t1).as_secs_f64());
        }
        Ok(())
    };
    for _ in 0..20 {
        step(None)?;
    }
    comm.barrier()?;
    let (mut steps, mut reduce) = (Vec::new(), Vec::new());
    for _ in 0..a.steps {
        step(Some((&mut steps, &mut reduce)))?;
    }
    let (step_s, reduce_s) = (median(&mut steps), median(&mut reduce));
    // The allreduce alone: a barrier first, so no rank waits for another's compute.
    let mut flat = vec![1.0f32; store.num_parameters()];
    let mut alone = Vec::new();
    for _ in 0..50 {
        comm.barrier()?;
        let t = Instant::now();
        comm.sum_f32(&mut flat)?;
        alone.push(t.elapsed().as_secs_f64());
    }
    let alone_s = median(&mut alone);
    // The replicas took the same steps.
    let digest: f64 = store
        .iter()
        .map(|(_, p)| p.value.as_slice().iter().map(|&v| v as f64).sum::<f64>())
        .sum();
    let all = comm.all_gather(&digest.to_le_bytes())?;
    assert!(all.windows(2).all(|w| w[0] == w[1]), "replicas differ");
    if rank == 0 {
        let bytes = (store.num_parameters() * 4) as f64;
        println!(
            "W2 step, global batch {}: {ranks} rank(s) × {} thread(s), batch {batch} each{}: median step {:.3} ms, of which gradient average after backward {:.3} ms ({:.1}%), {:.2} MB of gradient in {} bucket(s)",
            a.batch,
            a.threads,
            if a.overlap {
                format!(", {ahead} bucket(s) started during backward")
            } else {
                String::new()
            },
            step_s * 1e3,
            reduce_s * 1e3,
            100.0 * reduce_s / step_s,
            bytes / 1e6,
            sync.bucket_lens().len().max(1)
        );
        if ranks > 1 {
            println!(
                "  the allreduce alone (after a barrier): {:.3} ms, {:.2} GB/s (bytes / time, shared memory); the rest of the average is copying and waiting for the slower rank",
                alone_s * 1e3,
                bytes / alone_s / 1e9
            );
        }
        if a.overlap {
            // Backward now carries part of the communication, so the step minus the
            // average is no longer the compute the model needs.
            println!("  (the scaling model is printed by a run without --overlap)");
            return Ok(());
        }
        // Weak scaling on a cluster: each rank keeps this batch and this compute.
        let compute = step_s - reduce_s;
        for overlap in [0.0, 0.8] {
            let model = Step {
                compute,
                gradient_bytes: bytes,
                overlap,
            };
            let net = Network::HPC_100G;
            let e: Vec<String> = [8, 64, 512]
                .iter()
                .map(|&p| {
                    format!(
                        "{p} ranks {:.0}% ({:.3} ms allreduce)",
                        100.0 * model.efficiency(&net, p),
                        net.ring_allreduce_seconds(bytes, p) * 1e3
                    )
                })
                .collect();
            println!(
                "  predicted on 100 Gb/s, 5 µs, ring allreduce, {:.0}% overlap: {}",
                overlap * 100.0,
                e.join(", ")
            );
        }
    }
    Ok(())
}

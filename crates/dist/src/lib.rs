//! tapegrad-dist: data-parallel training over MPI.
//!
//! Each process of an `mpirun` job holds a replica of the model, trains on its shard of
//! every batch and averages the gradients with the others before each identical update,
//! so N processes with batch B take the steps one process takes with batch N·B. The
//! transport is Open MPI, through the `mpi` crate (rsmpi), behind this crate's `mpi`
//! feature (the facade's `mpi` feature turns it on); the rest of the workspace knows only
//! the [`Collective`](tapegrad_train::Collective) trait and never needs MPI.
//!
//! | item | what |
//! |---|---|
//! | `Communicator` (feature `mpi`) | rank, size, sums, broadcast, gather, barrier over MPI's world; a watchdog |
//! | [`scaling`] | the ring-allreduce cost model that predicts efficiency at more ranks |
//!
//! ```text
//! let comm = Communicator::init()?;
//! let loader = DataLoader::new(&train, 32).with_shuffle(seed).with_shard(comm.rank(), comm.size(), Uneven::Pad);
//! let mut trainer = Trainer::new(&model, optimizer, schedule).with_data_parallel(&comm);
//! trainer.fit(&mut store, &loader, &val)?;   // rank 0 prints and writes the checkpoints
//! ```
//!
//! Building the `mpi` feature needs Open MPI's headers and libclang (Debian:
//! `apt-get install openmpi-bin libopenmpi-dev libclang-dev`). Run with
//! `mpirun -np 2 target/release/examples/train_digits --distributed`; as root, and to keep
//! the traffic in shared memory and on the loopback interface:
//! `OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=self,vader
//! OMPI_MCA_oob_tcp_if_include=lo`. Keep the rank count at or below the core count: Open
//! MPI spins while it waits.
#![warn(missing_docs)]

#[cfg(feature = "mpi")]
mod communicator;
pub mod scaling;

#[cfg(feature = "mpi")]
pub use communicator::{Communicator, DEFAULT_TIMEOUT};

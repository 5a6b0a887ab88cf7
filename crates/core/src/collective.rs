//! The collectives of a group of replicas (processes training one model on shards of the
//! data), and the one differentiable op built on them: [`Var::sum_across`], a sum over the
//! replicas whose gradient is the sum over the replicas of the upstream gradients (what
//! synchronised batch normalisation needs).
//!
//! The core knows no transport: `tapegrad-dist` implements [`Collective`] over MPI.

use std::rc::Rc;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{ok, Result};
use crate::ops::custom::{CustomNode, DynCustomOp};
use crate::ops::Op;
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// The collective operations of a group of replicas (processes), as data-parallel training
/// uses them. Every replica must make the same calls in the same order; a call returns once
/// every replica has made it.
///
/// `tapegrad-dist`'s `Communicator` implements it over MPI; data-parallel training
/// (`tapegrad_train::Trainer::with_data_parallel`) and synchronised batch normalisation use
/// it.
pub trait Collective {
    /// This replica's number, `0..size()`; replica 0 prints, plots and writes checkpoints.
    fn rank(&self) -> usize;

    /// The number of replicas.
    fn size(&self) -> usize;

    /// Replaces `values` on every replica by their elementwise sum over the replicas (the
    /// same bits on every replica).
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if the replicas pass different lengths, where the transport can
    /// tell.
    fn sum_f32(&self, values: &mut [f32]) -> Result<()>;

    /// [`Collective::sum_f32`] in `f64`.
    ///
    /// # Errors
    /// As [`Collective::sum_f32`].
    fn sum_f64(&self, values: &mut [f64]) -> Result<()>;

    /// Starts summing `values` across the replicas without waiting for it (a non-blocking
    /// allreduce), under the number `id`; [`Collective::finish_sum_f32`] collects the sum.
    /// Returns `false` when this collective does not start sums ahead (the default): then
    /// nothing happened, and the caller sums with [`Collective::sum_f32`]. Every replica
    /// must start and finish the same sums in the same order.
    ///
    /// # Errors
    /// A transport error, or `id` already started and not finished.
    fn start_sum_f32(&self, _id: usize, _values: &[f32]) -> Result<bool> {
        Ok(false)
    }

    /// [`Collective::start_sum_f32`] in `f64`.
    ///
    /// # Errors
    /// As [`Collective::start_sum_f32`].
    fn start_sum_f64(&self, _id: usize, _values: &[f64]) -> Result<bool> {
        Ok(false)
    }

    /// Waits for the sum started under `id` and writes it into `out` (of the started
    /// length).
    ///
    /// # Errors
    /// [`crate::Error::Argument`] if no sum was started under `id` or `out`'s length differs;
    /// a transport error.
    fn finish_sum_f32(&self, id: usize, _out: &mut [f32]) -> Result<()> {
        Err(crate::Error::argument(
            "Collective::finish_sum_f32",
            format!("no sum was started under {id}"),
        ))
    }

    /// [`Collective::finish_sum_f32`] in `f64`.
    ///
    /// # Errors
    /// As [`Collective::finish_sum_f32`].
    fn finish_sum_f64(&self, id: usize, _out: &mut [f64]) -> Result<()> {
        Err(crate::Error::argument(
            "Collective::finish_sum_f64",
            format!("no sum was started under {id}"),
        ))
    }

    /// Replaces `bytes` on every replica by replica `root`'s.
    ///
    /// # Errors
    /// A transport error.
    fn broadcast(&self, bytes: &mut Vec<u8>, root: usize) -> Result<()>;

    /// Every replica's `bytes`, in rank order, on every replica.
    ///
    /// # Errors
    /// A transport error.
    fn all_gather(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>>;

    /// Returns once every replica has called it.
    ///
    /// # Errors
    /// A transport error.
    fn barrier(&self) -> Result<()>;
}

/// `t` summed over the replicas (through the `f64` collective: exact for `f32`, and the
/// same on every replica).
///
/// # Errors
/// The collective's error.
pub fn sum_tensor<T: Float>(c: &dyn Collective, t: &Tensor<T>) -> Result<Tensor<T>> {
    let mut v: Vec<f64> = t.as_slice().iter().map(|x| x.as_f64()).collect();
    c.sum_f64(&mut v)?;
    Ok(Tensor::from_fn(t.dims(), |i| T::from_f64(v[i])))
}

/// The recorded node of [`Var::sum_across`].
struct SumAcross(Rc<dyn Collective>);

impl<T: Float> DynCustomOp<T> for SumAcross {
    fn name(&self) -> &str {
        "sum_across_replicas"
    }

    fn backward_tensor(
        &self,
        _inputs: &[&Tensor<T>],
        _output: &Tensor<T>,
        grad: &Tensor<T>,
    ) -> Vec<Option<Tensor<T>>> {
        // Every replica's output depends on this replica's input: its gradient is the sum
        // of every replica's upstream gradient.
        vec![Some(ok(sum_tensor(&*self.0, grad)))]
    }

    fn backward_var<'g>(
        &self,
        _inputs: &[&Var<'g, T>],
        _output: &Var<'g, T>,
        grad: &Var<'g, T>,
    ) -> Vec<Option<Var<'g, T>>> {
        vec![Some(grad.sum_across(self.0.clone()))]
    }
}

impl<'g, T: Float> Var<'g, T> {
    /// `self` summed elementwise over the replicas of `c`, the same value on every replica;
    /// its gradient is the sum over the replicas of their upstream gradients (so a loss
    /// averaged over replicas, as data-parallel training averages it, gets the exact
    /// gradient). Every replica must call it at the same point of its forward pass, with
    /// the same shape.
    ///
    /// # Errors
    /// The collective's error.
    #[track_caller]
    pub fn try_sum_across(self, c: Rc<dyn Collective>) -> Result<Var<'g, T>> {
        let value = sum_tensor(&*c, &self.value())?;
        let ids: SmallVec<[u32; 4]> = SmallVec::from_slice(&[self.id]);
        // The tape keeps custom nodes in an `Arc`; a graph never leaves its thread, and a
        // collective is called from the thread that made it.
        #[allow(clippy::arc_with_non_send_sync)]
        let op: Arc<dyn DynCustomOp<T>> = Arc::new(SumAcross(c));
        Ok(self.graph.push(value, Op::Custom(CustomNode(op)), &ids))
    }

    /// [`Var::try_sum_across`].
    ///
    /// # Panics
    /// On the collective's error.
    #[track_caller]
    pub fn sum_across(self, c: Rc<dyn Collective>) -> Var<'g, T> {
        ok(self.try_sum_across(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Graph;

    /// Two replicas, the other of which holds twice this one's values.
    struct Doubled;
    impl Collective for Doubled {
        fn rank(&self) -> usize {
            0
        }
        fn size(&self) -> usize {
            2
        }
        fn sum_f32(&self, v: &mut [f32]) -> Result<()> {
            v.iter_mut().for_each(|x| *x *= 3.0);
            Ok(())
        }
        fn sum_f64(&self, v: &mut [f64]) -> Result<()> {
            v.iter_mut().for_each(|x| *x *= 3.0);
            Ok(())
        }
        fn broadcast(&self, _: &mut Vec<u8>, _: usize) -> Result<()> {
            Ok(())
        }
        fn all_gather(&self, b: &[u8]) -> Result<Vec<Vec<u8>>> {
            Ok(vec![b.to_vec(), b.iter().map(|x| x * 2).collect()])
        }
        fn barrier(&self) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_sum_across_replicas_sums_values_and_gradients() {
        let c: Rc<dyn Collective> = Rc::new(Doubled);
        let g = Graph::<f64>::new();
        let x = g.leaf(Tensor::from_vec(vec![1.0, -2.0], [2]));
        let y = x.sum_across(c.clone());
        assert_eq!(y.value().to_vec(), vec![3.0, -6.0]);
        // d/dx Σ (y²): 2y, summed over replicas (the other's upstream is twice ours).
        let grads = (y * y).sum().backward();
        assert_eq!(grads.wrt(x).to_vec(), vec![18.0, -36.0]);
        // And on the tape, for second order.
        let gx = (y * y).sum().backward_create_graph().wrt_var(x);
        assert_eq!(gx.value().to_vec(), vec![18.0, -36.0]);
        let h = gx.sum().backward().wrt(x);
        assert_eq!(h.to_vec(), vec![18.0, 18.0]);
    }
}

//! Matrix multiplication with `torch.matmul` semantics.
//!
//! The recorded op is a batched product of two operands of rank ≥ 2 with broadcast batch
//! dimensions, `C = op(A)·op(B)`, where `op` is the identity or a transpose chosen by a flag.
//! A transpose is a pair of swapped strides handed to gemm, never a copy, so the backward
//! rule reads like the math and costs two gemms with no transposed temporaries:
//!
//! ```text
//! C = A·B      dA = G·Bᵀ        dB = Aᵀ·G
//! C = A·Bᵀ     dA = G·B         dB = Gᵀ·A
//! C = Aᵀ·B     dA = B·Gᵀ        dB = A·G
//! C = Aᵀ·Bᵀ    dA = Bᵀ·Gᵀ       dB = Gᵀ·Aᵀ
//! ```
//! followed by [`Algebra::sum_to`] over broadcast batch dimensions. 1-d operands are handled
//! as in PyTorch by reshapes around the recorded op (a vector is a `1×k` row on the left and
//! a `k×1` column on the right, and that dimension is dropped from the result).

use tapegrad_kernels::gemm::{gemm, MatLayout};
use tapegrad_kernels::strided::{broadcast_strides, for_each_row};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{shape_error, Result};
use crate::ops::{BackwardArgs, Grads, Op, Rule};
use crate::shape::{broadcast_shapes, numel, Shape};
use crate::tensor::check_output;
use crate::tensor::Tensor;
use crate::var::Var;
use crate::Float;

/// Whether a matmul operand is used as it is or with its last two dimensions swapped (a
/// stride change, never a copy): BLAS's `N` and `T`.
///
/// ```
/// use tapegrad_core::{Tensor, Transpose};
/// let x = Tensor::<f64>::from_vec(vec![1.0, 2.0], [1, 2]);
/// let w = Tensor::<f64>::from_vec(vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2]);
/// // x·wᵀ, as Linear computes it
/// assert_eq!(x.matmul_t(&w, Transpose::No, Transpose::Yes).to_vec(), vec![1.0, 2.0, 3.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// The operand as it is.
    No,
    /// The operand with its last two dimensions swapped.
    Yes,
}

impl Transpose {
    /// Whether the operand is transposed.
    pub fn is_yes(self) -> bool {
        self == Transpose::Yes
    }
}

use Transpose::{No, Yes};

/// A batched matrix product `op(A)·op(B)` with transpose flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulOp {
    /// Use `Aᵀ` (A's last two dimensions swapped).
    pub ta: bool,
    /// Use `Bᵀ`.
    pub tb: bool,
}

impl MatmulOp {
    /// The op's name as printed on the tape.
    pub fn name(&self) -> &'static str {
        "matmul"
    }
}

/// The shape facts of a batched product: `(batch, m, k, n)`.
#[track_caller]
fn plan(
    a: &[usize],
    b: &[usize],
    ta: bool,
    tb: bool,
    shapes: &[&[usize]],
) -> Result<(Shape, usize, usize, usize)> {
    let (ra, ca) = (a[a.len() - 2], a[a.len() - 1]);
    let (rb, cb) = (b[b.len() - 2], b[b.len() - 1]);
    let (m, k) = if ta { (ca, ra) } else { (ra, ca) };
    let (k2, n) = if tb { (cb, rb) } else { (rb, cb) };
    if k != k2 {
        return Err(shape_error(
            "matmul",
            shapes,
            format!(
                "the inner dimensions differ ({k} columns on the left, {k2} rows on the right)"
            ),
        ));
    }
    let Some(batch) = broadcast_shapes(&a[..a.len() - 2], &b[..b.len() - 2]) else {
        return Err(shape_error(
            "matmul",
            shapes,
            "the batch dimensions do not broadcast",
        ));
    };
    Ok((batch, m, k, n))
}

impl MatmulOp {
    /// The batched product of two operands of rank ≥ 2.
    #[track_caller]
    pub(crate) fn forward<T: Float>(self, a: &Tensor<T>, b: &Tensor<T>) -> Result<Tensor<T>> {
        let (batch, m, k, n) = plan(a.dims(), b.dims(), self.ta, self.tb, &[a.dims(), b.dims()])?;
        let (ca, cb) = (a.dims()[a.ndim() - 1], b.dims()[b.ndim() - 1]);
        let la = MatLayout::row_major(ca, self.ta);
        let lb = MatLayout::row_major(cb, self.tb);
        let lc = MatLayout::row_major(n, false);
        let mut out_shape = batch.clone();
        out_shape.extend([m, n]);
        check_output::<T>("matmul", &out_shape, std::panic::Location::caller())?;
        let (a_batch, b_batch) = (&a.dims()[..a.ndim() - 2], &b.dims()[..b.ndim() - 2]);
        let (asz, bsz, csz) = (m * k, k * n, m * n);
        // Every element of the output is written by a gemm with β = 0 (which never reads C).
        Ok(Tensor::from_writer(out_shape, |c| {
            if numel(b_batch) == 1 && !self.ta && a_batch == batch.as_slice() {
                // B is shared by every batch and A's rows are contiguous: one gemm over
                // (batch·m) rows.
                gemm(
                    numel(&batch) * m,
                    k,
                    n,
                    T::one(),
                    a.as_slice(),
                    la,
                    b.as_slice(),
                    lb,
                    T::zero(),
                    c,
                    lc,
                );
                return;
            }
            let (a, b) = (a.as_slice(), b.as_slice());
            for_each_product(a_batch, b_batch, &batch, (asz, bsz, csz), |ao, bo, co| {
                gemm(
                    m,
                    k,
                    n,
                    T::one(),
                    &a[ao..ao + asz],
                    la,
                    &b[bo..bo + bsz],
                    lb,
                    T::zero(),
                    &mut c[co..co + csz],
                    lc,
                );
            });
        }))
    }
}

impl<T: Float> Rule<T> for MatmulOp {
    /// The backward rule (see the table in the module docs).
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (a, b, g, needs) = (args.inputs[0], args.inputs[1], args.grad, args.needs);
        let ga = needs[0].then(|| {
            let sa = a.shape();
            match (self.ta, self.tb) {
                (false, false) => matmul_t_sum_to(g, b, No, Yes, &sa),
                (false, true) => matmul_t_sum_to(g, b, No, No, &sa),
                (true, false) => matmul_t_sum_to(b, g, No, Yes, &sa),
                (true, true) => matmul_t_sum_to(b, g, Yes, Yes, &sa),
            }
        });
        let gb = needs[1].then(|| {
            let sb = b.shape();
            match (self.ta, self.tb) {
                (false, false) => matmul_t_sum_to(a, g, Yes, No, &sb),
                (false, true) => matmul_t_sum_to(g, a, Yes, No, &sb),
                (true, false) => matmul_t_sum_to(a, g, No, No, &sb),
                (true, true) => matmul_t_sum_to(g, a, Yes, Yes, &sb),
            }
        });
        smallvec::smallvec![ga, gb]
    }
}

/// `op(a)·op(b)` summed back to `shape`: the gradient of a matmul operand that was
/// broadcast over the batch. Tensors accumulate the batch's products into one matrix
/// ([`matmul_summed`]) instead of materialising them all; `Var`s record the two ops.
#[inline]
pub(crate) fn matmul_t_sum_to<T: Float, V: Algebra<T>>(
    a: &V,
    b: &V,
    ta: Transpose,
    tb: Transpose,
    shape: &[usize],
) -> V {
    if let (Some(at), Some(bt)) = (a.as_tensor(), b.as_tensor()) {
        let summed = matmul_summed(at, bt, ta.is_yes(), tb.is_yes(), shape)
            .unwrap_or_else(|| Algebra::sum_to(&at.matmul_t(bt, ta, tb), shape));
        return a.constant(summed);
    }
    a.matmul_t(b, ta, tb).sum_to(shape)
}

/// `Σ_batch op(a)·op(b)` as one `[m, n]` matrix shaped `target`, accumulated product by
/// product (β = 1) in batch order, when `target` keeps no batch dimension of the product
/// but it has some (the gradient of an operand broadcast over the batch). `None` when that
/// is not the case (the caller then sums the batched product).
pub(crate) fn matmul_summed<T: Float>(
    a: &Tensor<T>,
    b: &Tensor<T>,
    ta: bool,
    tb: bool,
    target: &[usize],
) -> Option<Tensor<T>> {
    if a.ndim() < 2 || b.ndim() < 2 || target.len() < 2 {
        return None;
    }
    let (batch, m, k, n) = plan(a.dims(), b.dims(), ta, tb, &[]).ok()?;
    let tb_dims = &target[..target.len() - 2];
    if numel(&batch) <= 1 || numel(tb_dims) != 1 || target[target.len() - 2..] != [m, n] {
        return None;
    }
    let (ca, cb) = (a.dims()[a.ndim() - 1], b.dims()[b.ndim() - 1]);
    let (la, lb) = (MatLayout::row_major(ca, ta), MatLayout::row_major(cb, tb));
    let lc = MatLayout::row_major(n, false);
    let (a_batch, b_batch) = (&a.dims()[..a.ndim() - 2], &b.dims()[..b.ndim() - 2]);
    let (asz, bsz) = (m * k, k * n);
    let (av, bv) = (a.as_slice(), b.as_slice());
    Some(Tensor::from_writer(target, |c| {
        let mut first = true;
        for_each_product(a_batch, b_batch, &batch, (asz, bsz, 0), |ao, bo, _| {
            let beta = if first { T::zero() } else { T::one() };
            first = false;
            gemm(
                m,
                k,
                n,
                T::one(),
                &av[ao..ao + asz],
                la,
                &bv[bo..bo + bsz],
                lb,
                beta,
                c,
                lc,
            );
        });
    }))
}

/// Calls `f(a_offset, b_offset, c_offset)` for every product of a broadcast batch, in
/// row-major order of `batch`: operands of `asz` and `bsz` elements per matrix whose batch
/// dimensions `a_batch`, `b_batch` broadcast to `batch`, outputs of `csz` (0: every product
/// goes to the same output).
fn for_each_product(
    a_batch: &[usize],
    b_batch: &[usize],
    batch: &[usize],
    (asz, bsz, csz): (usize, usize, usize),
    mut f: impl FnMut(usize, usize, usize),
) {
    let scaled =
        |strides: &[usize], size: usize| -> Shape { strides.iter().map(|s| s * size).collect() };
    let sa = scaled(&broadcast_strides(a_batch, batch), asz);
    let sb = scaled(&broadcast_strides(b_batch, batch), bsz);
    let sc = scaled(&tapegrad_kernels::strided::contiguous_strides(batch), csz);
    for_each_row(
        batch,
        [&sa, &sb, &sc],
        [0, 0, 0],
        |len, [ao, bo, co], [das, dbs, dcs]| {
            for j in 0..len {
                f(ao + j * das, bo + j * dbs, co + j * dcs);
            }
        },
    );
}

/// How a `torch.matmul` call maps onto the batched op: the reshapes of 1-d operands and the
/// shape of the result.
struct MatmulPlan {
    a_shape: Shape,
    b_shape: Shape,
    out_shape: Shape,
}

#[track_caller]
fn matmul_plan(a: &[usize], b: &[usize]) -> Result<MatmulPlan> {
    if a.is_empty() || b.is_empty() {
        return Err(shape_error(
            "matmul",
            &[a, b],
            "both operands need at least one dimension",
        ));
    }
    let a2: Shape = if a.len() == 1 {
        Shape::from_slice(&[1, a[0]])
    } else {
        Shape::from_slice(a)
    };
    let b2: Shape = if b.len() == 1 {
        Shape::from_slice(&[b[0], 1])
    } else {
        Shape::from_slice(b)
    };
    let (batch, m, _, n) = plan(&a2, &b2, false, false, &[a, b])?;
    let mut out_shape = batch;
    if a.len() > 1 {
        out_shape.push(m);
    }
    if b.len() > 1 {
        out_shape.push(n);
    }
    Ok(MatmulPlan {
        a_shape: a2,
        b_shape: b2,
        out_shape,
    })
}

impl<T: Float> Tensor<T> {
    fallible! {
        /// Matrix product with `torch.matmul` semantics (1-d, 2-d, batched with broadcast batch
        /// dimensions).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if an operand is 0-d, the inner dimensions differ or the batch
        /// dimensions do not broadcast.
        pub fn matmul / try_matmul(&self, other: &Tensor<T>) -> Tensor<T> {
            let p = matmul_plan(self.dims(), other.dims())?;
            let out = MatmulOp {
                ta: false,
                tb: false,
            }
            .forward(&self.reshaped(p.a_shape), &other.reshaped(p.b_shape))?;
            Ok(out.reshaped(p.out_shape))
        }
    }

    fallible! {
        /// `op(self)·op(other)` for operands of rank ≥ 2, where [`Transpose::Yes`] swaps an
        /// operand's last two dimensions without copying.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] on a rank below 2 or incompatible shapes.
        pub fn matmul_t / try_matmul_t(
            &self,
            other: &Tensor<T>,
            transpose_a: Transpose,
            transpose_b: Transpose,
        ) -> Tensor<T> {
            check_rank2(self.dims(), other.dims())?;
            MatmulOp {
                ta: transpose_a.is_yes(),
                tb: transpose_b.is_yes(),
            }
            .forward(self, other)
        }
    }
}

#[track_caller]
fn check_rank2(a: &[usize], b: &[usize]) -> Result<()> {
    if a.len() < 2 || b.len() < 2 {
        return Err(shape_error(
            "matmul_t",
            &[a, b],
            "both operands need at least two dimensions",
        ));
    }
    Ok(())
}

impl<'g, T: Float> Var<'g, T> {
    fallible! {
        /// Matrix product with `torch.matmul` semantics (1-d, 2-d, batched with broadcast batch
        /// dimensions).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] if an operand is 0-d, the inner dimensions differ or the batch
        /// dimensions do not broadcast.
        pub fn matmul / try_matmul(self, other: Var<'g, T>) -> Var<'g, T> {
            self.same_graph("matmul", &other);
            let p = matmul_plan(&self.shape(), &other.shape())?;
            let a = self.reshape(&p.a_shape);
            let b = other.reshape(&p.b_shape);
            Ok(a.try_matmul_t(b, No, No)?.reshape(&p.out_shape))
        }
    }

    fallible! {
        /// `op(self)·op(other)` for operands of rank ≥ 2, where the flags swap the last two
        /// dimensions without copying (e.g. `x.matmul_t(w, Transpose::No, Transpose::Yes)` is `x·wᵀ`).
        ///
        /// # Errors
        /// [`crate::Error::Shape`] on a rank below 2 or incompatible shapes.
        pub fn matmul_t / try_matmul_t(
            self,
            other: Var<'g, T>,
            transpose_a: Transpose,
            transpose_b: Transpose,
        ) -> Var<'g, T> {
            self.same_graph("matmul", &other);
            let op = MatmulOp {
                ta: transpose_a.is_yes(),
                tb: transpose_b.is_yes(),
            };
            let value = {
                let nodes = self.graph.nodes();
                let (a, b) = (
                    &nodes[self.id as usize].value,
                    &nodes[other.id as usize].value,
                );
                check_rank2(a.dims(), b.dims())?;
                op.forward(a, b)?
            };
            Ok(self.graph.push(value, Op::Matmul(op), &[self.id, other.id]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};

    fn naive(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
        let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] += a.get(&[i, p]) * b.get(&[p, j]);
                }
            }
        }
        c
    }

    #[test]
    fn semantics_of_torch_matmul() {
        let a = rand_tensor(&[3, 4], -1.0, 1.0, 1);
        let b = rand_tensor(&[4, 2], -1.0, 1.0, 2);
        let c = a.matmul(&b);
        for (x, y) in c.as_slice().iter().zip(naive(&a, &b)) {
            assert!((x - y).abs() < 1e-14);
        }
        let v = rand_tensor(&[4], -1.0, 1.0, 3);
        assert_eq!(a.matmul(&v).dims(), &[3]);
        assert_eq!(v.matmul(&b).dims(), &[2]);
        assert_eq!(v.matmul(&v).dims(), &[] as &[usize]);
        let batched = rand_tensor(&[5, 1, 3, 4], -1.0, 1.0, 4);
        let bb = rand_tensor(&[2, 4, 6], -1.0, 1.0, 5);
        let out = batched.matmul(&bb);
        assert_eq!(out.dims(), &[5, 2, 3, 6]);
        // One batch entry equals the 2-d product of the right slices.
        let a1 = Tensor::from_fn([3, 4], |i| batched.get(&[4, 0, i / 4, i % 4]));
        let b1 = Tensor::from_fn([4, 6], |i| bb.get(&[1, i / 6, i % 6]));
        let want = naive(&a1, &b1);
        for i in 0..3 {
            for j in 0..6 {
                assert!((out.get(&[4, 1, i, j]) - want[i * 6 + j]).abs() < 1e-14);
            }
        }
        // Batched left operand against a shared right one (the folded path).
        let x = rand_tensor(&[2, 3, 4], -1.0, 1.0, 6);
        let y = x.matmul(&b);
        let x1 = Tensor::from_fn([3, 4], |i| x.get(&[1, i / 4, i % 4]));
        for (p, q) in Tensor::from_fn([3, 2], |i| y.get(&[1, i / 2, i % 2]))
            .as_slice()
            .iter()
            .zip(naive(&x1, &b))
        {
            assert!((p - q).abs() < 1e-14);
        }
    }

    #[test]
    fn transpose_flags_match_explicit_transposes() {
        let a = rand_tensor(&[2, 3, 4], -1.0, 1.0, 7);
        let b = rand_tensor(&[2, 5, 4], -1.0, 1.0, 8);
        let want = a.matmul(&b.transpose(-1, -2));
        assert!(a.matmul_t(&b, No, Yes).allclose(&want, 1e-14, 0.0));
        let at = a.transpose(1, 2);
        assert!(at.matmul_t(&b, Yes, Yes).allclose(&want, 1e-14, 0.0));
    }

    #[test]
    fn gradients_of_every_form() {
        let cases: [(&[usize], &[usize]); 7] = [
            (&[2, 3], &[3, 4]),
            (&[3], &[3, 2]),
            (&[2, 3], &[3]),
            (&[3], &[3]),
            (&[2, 2, 3], &[3, 2]),
            (&[2, 1, 2, 3], &[3, 3, 2]),
            (&[1, 2, 3], &[2, 3, 4]),
        ];
        for (i, (sa, sb)) in cases.iter().enumerate() {
            let a = rand_tensor(sa, -1.0, 1.0, 60 + i as u64);
            let b = rand_tensor(sb, -1.0, 1.0, 70 + i as u64);
            check_op("matmul", &[a, b], |_, v| v[0].matmul(v[1]));
        }
        for (ta, tb) in [(No, Yes), (Yes, No), (Yes, Yes)] {
            let a = rand_tensor(
                if ta.is_yes() { &[2, 3, 2] } else { &[2, 2, 3] },
                -1.0,
                1.0,
                80,
            );
            let b = rand_tensor(if tb.is_yes() { &[4, 3] } else { &[3, 4] }, -1.0, 1.0, 81);
            check_op("matmul_t", &[a, b], move |_, v| v[0].matmul_t(v[1], ta, tb));
        }
    }

    #[test]
    fn shape_errors() {
        let a = Tensor::<f32>::zeros([2, 3]);
        let e = a
            .try_matmul(&Tensor::zeros([4, 2]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("matmul: the inner dimensions differ (3 columns on the left, 4 rows on the right); got [2, 3] and [4, 2]"), "{e}");
        assert!(a.try_matmul(&Tensor::scalar(1.0)).is_err());
        assert!(Tensor::<f32>::zeros([2, 2, 3])
            .try_matmul(&Tensor::zeros([3, 3, 1]))
            .is_err());
    }

    #[test]
    fn node_reuse_in_matmul() {
        // x·x, and x feeding both operands of a batched product and its transpose.
        let x = rand_tensor(&[3, 3], -1.0, 1.0, 90);
        check_op("x@x", std::slice::from_ref(&x), |_, v| v[0].matmul(v[0]));
        check_op("x@xT+x", std::slice::from_ref(&x), |_, v| {
            v[0].matmul_t(v[0], No, Yes) + v[0].matmul(v[0].matmul(v[0]))
        });
        let g = crate::Graph::<f64>::new();
        let a = g.leaf(Tensor::eye(2));
        // d/dA tr(A·A) = 2Aᵀ
        let d = a
            .matmul(a)
            .mul(g.constant(Tensor::eye(2)))
            .sum()
            .backward()
            .wrt(a);
        assert_eq!(d.to_vec(), vec![2.0, 0.0, 0.0, 2.0]);
    }
}

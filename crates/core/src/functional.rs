//! Functional transforms over functions of tensors: vector-Jacobian and Jacobian-vector
//! products, full Jacobians (reverse and forward), Hessians and Hessian-vector products —
//! `torch.func`'s `vjp`, `jvp`, `jacrev`, `jacfwd`, `hessian` and `hvp`.
//!
//! A function is a closure `|g, xs| …` that builds its outputs from the inputs `xs` (leaves
//! on the graph `g`) with ordinary ops, as for [`crate::gradcheck::gradcheck`]. Every
//! transform is built from the reverse sweep alone, so every op that has a backward rule has
//! all of them, and second-order transforms are exact wherever the rule is twice
//! differentiable (every built-in rule is written on `Var`s).
//!
//! - [`vjp`]: one forward, one reverse sweep.
//! - [`jvp`]: the double-vjp identity. With `u` a leaf, `g(u) = Jᵀu` is recorded on the tape
//!   (`backward_create_graph`); `g` is linear in `u`, and the derivative of `⟨g(u), v⟩` with
//!   respect to `u` is `J v`. Cost: one forward, one recorded reverse sweep (about twice a
//!   plain one: it records the rule's ops), and one sweep back through both — about three
//!   to four times a [`vjp`], and no second implementation of any rule.
//! - [`jacobian`]: one recorded forward, then one reverse sweep per output element (the
//!   tape is kept between sweeps). [`jacobian_fwd`]: one recorded forward and one recorded
//!   reverse sweep, then one sweep per input element through them. Reverse is cheaper when
//!   outputs are fewer than inputs, forward when inputs are fewer.
//! - [`hessian`] of a scalar function: its gradient recorded on the tape, then one reverse
//!   sweep per input element. [`hvp`]: one sweep, no Hessian formed.
//!
//! Outputs and inputs may be several tensors: `jacobian_multi` and `jacobian_fwd_multi`
//! take functions with several outputs. The Jacobian of output `y` with respect to input `x`
//! has shape `y.shape ++ x.shape`, the Hessian block of `xᵢ, xⱼ` has shape
//! `xᵢ.shape ++ xⱼ.shape` (PyTorch's layout). An output that does not depend on an input
//! gets a zero block. Sizes are checked: a Jacobian whose element count overflows is an
//! error, not a crash.
//!
//! Pass the function inline (as below) or as a `fn` item: a closure stored in a `let` first
//! does not get the signature for every graph lifetime that the transforms need.
//!
//! ```
//! use tapegrad_core::functional::{hessian, jacobian};
//! use tapegrad_core::Tensor;
//! // f(x) = tanh(x) elementwise: J = diag(1 − tanh²x).
//! let x = Tensor::from_vec(vec![0.5, -1.0], [2]);
//! let j = jacobian(|_, x| x[0].tanh(), &[x.clone()]).unwrap();
//! assert_eq!(j[0].dims(), &[2, 2]);
//! assert!((j[0].as_slice()[0] - (1.0 - 0.5f64.tanh().powi(2))).abs() < 1e-15);
//! assert_eq!(j[0].as_slice()[1], 0.0);
//! // f(x) = x₀²x₁: H = [[2x₁, 2x₀], [2x₀, 0]].
//! let h = hessian(|_, x| (x[0].square() * x[1]).sum(), &[Tensor::scalar(3.0), Tensor::scalar(2.0)]).unwrap();
//! assert_eq!(h[0][0].item(), 4.0);
//! assert_eq!(h[0][1].item(), 6.0);
//! assert_eq!(h[1][0].item(), 6.0);
//! ```

use crate::error::{shape_error, Result};
use crate::graph::Graph;
use crate::shape::checked_numel;
use crate::var::Var;
use crate::{Float, Tensor};

/// Tensors, one per output or per input of a function.
pub type Tensors<T> = Vec<Tensor<T>>;

/// The leaves of `xs` on `g`.
fn leaves<'g, T: Float>(g: &'g Graph<T>, xs: &[Tensor<T>]) -> Vec<Var<'g, T>> {
    xs.iter().map(|x| g.leaf(x.clone())).collect()
}

/// `Σᵢ ⟨aᵢ, bᵢ⟩` on the tape (the seed of several outputs at once: its backward sweep seeds
/// each `aᵢ` with exactly `bᵢ`).
fn contract<'g, T: Float>(a: &[Var<'g, T>], b: &[Var<'g, T>]) -> Option<Var<'g, T>> {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a * b).sum())
        .reduce(|s, t| s + t)
}

/// Checks that `given` has one tensor of each shape of `want`.
#[track_caller]
fn check_shapes<T: Float>(
    op: &'static str,
    what: &str,
    given: &[Tensor<T>],
    want: &[Vec<usize>],
) -> Result<()> {
    if given.len() != want.len() {
        return Err(shape_error(
            op,
            &[],
            format!("{} {what} given for {} tensors", given.len(), want.len()),
        ));
    }
    for (t, w) in given.iter().zip(want) {
        if t.dims() != w.as_slice() {
            return Err(shape_error(
                op,
                &[t.dims(), w.as_slice()],
                format!("each {what} must have its tensor's shape"),
            ));
        }
    }
    Ok(())
}

/// Zero blocks of shape `rows[i] ++ xs[j].shape` for every `i, j`, their sizes checked.
#[track_caller]
fn zero_blocks<T: Float, R: AsRef<[usize]>>(
    op: &'static str,
    rows: impl IntoIterator<Item = R>,
    xs: &[Tensor<T>],
) -> Result<Vec<Vec<Tensor<T>>>> {
    let block = |a: &[usize], b: &[usize]| {
        let shape: Vec<usize> = a.iter().chain(b).copied().collect();
        checked_numel(&shape)
            .ok_or_else(|| shape_error(op, &[a, b], "the Jacobian's element count overflows"))?;
        Tensor::try_zeros(shape)
    };
    rows.into_iter()
        .map(|r| xs.iter().map(|x| block(r.as_ref(), x.dims())).collect())
        .collect()
}

/// The gradients of `y` seeded with `seed` with respect to `xs` (zeros where nothing
/// reaches them, or when `y` depends on no input at all).
fn pull<'g, T: Float>(y: Var<'g, T>, seed: &Tensor<T>, xs: &[Var<'g, T>]) -> Vec<Tensor<T>> {
    if !y.requires_grad() {
        return xs.iter().map(|x| Tensor::zeros(x.shape())).collect();
    }
    let grads = y.backward_with(seed);
    xs.iter().map(|&x| grads.wrt(x)).collect()
}

/// A one-hot tensor of `shape` with a 1 at flat index `k`.
fn one_hot<T: Float>(shape: &[usize], k: usize) -> Tensor<T> {
    let mut e = Tensor::zeros(shape);
    e.as_mut_slice()[k] = T::one();
    e
}

/// Writes `rows` (one tensor per input, each of its input's size) as row `k` of the blocks.
fn write_row<T: Float>(blocks: &mut [Tensor<T>], k: usize, rows: &[Tensor<T>]) {
    for (b, r) in blocks.iter_mut().zip(rows) {
        let n = r.numel();
        b.as_mut_slice()[k * n..(k + 1) * n].copy_from_slice(r.as_slice());
    }
}

/// Writes `col` as column `k` of `block`, whose rows have `n` elements.
fn write_col<T: Float>(block: &mut Tensor<T>, k: usize, n: usize, col: &Tensor<T>) {
    let b = block.as_mut_slice();
    for (r, &v) in col.as_slice().iter().enumerate() {
        b[r * n + k] = v;
    }
}

/// The value of `f` at `xs` and the vector-Jacobian product `uᵀJ` with respect to each
/// input (`u` of the output's shape): what `backward_with(u)` gives, as a function.
///
/// # Errors
/// If `u`'s shape is not the output's.
#[track_caller]
pub fn vjp<T: Float, F>(
    f: F,
    xs: &[Tensor<T>],
    u: &Tensor<T>,
) -> Result<(Tensor<T>, Vec<Tensor<T>>)>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    let (mut ys, grads) = vjp_multi(|g, x| vec![f(g, x)], xs, std::slice::from_ref(u))?;
    Ok((ys.remove(0), grads))
}

/// [`vjp`] of a function with several outputs: `Σᵢ uᵢᵀJᵢ` with respect to each input.
///
/// # Errors
/// If the `us` are not one tensor of each output's shape.
#[track_caller]
pub fn vjp_multi<T: Float, F>(
    f: F,
    xs: &[Tensor<T>],
    us: &[Tensor<T>],
) -> Result<(Tensors<T>, Tensors<T>)>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Vec<Var<'g, T>>,
{
    let g = Graph::new();
    let x = leaves(&g, xs);
    let ys = f(&g, &x);
    let shapes: Vec<Vec<usize>> = ys.iter().map(|y| y.shape().to_vec()).collect();
    check_shapes("vjp", "cotangent", us, &shapes)?;
    let values: Vec<Tensor<T>> = ys.iter().map(|y| y.value()).collect();
    let u: Vec<Var<T>> = us.iter().map(|u| g.constant(u.clone())).collect();
    let grads = match contract(&ys, &u) {
        Some(s) => pull(s, &Tensor::ones(s.shape()), &x),
        None => xs.iter().map(|t| t.zeros_like()).collect(),
    };
    Ok((values, grads))
}

/// The value of `f` at `xs` and the Jacobian-vector product `J v = Σⱼ Jⱼ vⱼ` (`vⱼ` of input
/// `j`'s shape), by the double-vjp identity (see the module docs).
///
/// # Errors
/// If the `vs` are not one tensor of each input's shape.
#[track_caller]
pub fn jvp<T: Float, F>(f: F, xs: &[Tensor<T>], vs: &[Tensor<T>]) -> Result<(Tensor<T>, Tensor<T>)>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    let (mut ys, mut jv) = jvp_multi(|g, x| vec![f(g, x)], xs, vs)?;
    Ok((ys.remove(0), jv.remove(0)))
}

/// [`jvp`] of a function with several outputs: `Jᵢ v` for each output `i`.
///
/// # Errors
/// If the `vs` are not one tensor of each input's shape.
#[track_caller]
pub fn jvp_multi<T: Float, F>(
    f: F,
    xs: &[Tensor<T>],
    vs: &[Tensor<T>],
) -> Result<(Tensors<T>, Tensors<T>)>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Vec<Var<'g, T>>,
{
    let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.dims().to_vec()).collect();
    check_shapes("jvp", "tangent", vs, &shapes)?;
    let g = Graph::new();
    let x = leaves(&g, xs);
    let ys = f(&g, &x);
    let values: Vec<Tensor<T>> = ys.iter().map(|y| y.value()).collect();
    // u ↦ Jᵀu, recorded; its derivative along v with respect to u is J v.
    let u: Vec<Var<T>> = values
        .iter()
        .map(|y| g.leaf(Tensor::ones(y.dims())))
        .collect();
    let Some(s) =
        contract(&ys, &u).filter(|s| ys.iter().any(|y| y.requires_grad()) && s.requires_grad())
    else {
        let zero = values.iter().map(|y| y.zeros_like()).collect();
        return Ok((values, zero));
    };
    let gx = s.backward_create_graph();
    let gx: Vec<Var<T>> = x.iter().map(|&xi| gx.wrt_var(xi)).collect();
    let v: Vec<Var<T>> = vs.iter().map(|v| g.constant(v.clone())).collect();
    let t = contract(&gx, &v).expect("at least one input when an output depends on one");
    Ok((values, pull(t, &Tensor::ones(t.shape()), &u)))
}

/// The Jacobian of `f` at `xs` with respect to each input, by reverse sweeps (one per
/// output element, over one recorded forward): block `j` has shape `y.shape ++ xⱼ.shape`.
///
/// # Errors
/// If a block's element count overflows.
#[track_caller]
pub fn jacobian<T: Float, F>(f: F, xs: &[Tensor<T>]) -> Result<Vec<Tensor<T>>>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    Ok(jacobian_multi(|g, x| vec![f(g, x)], xs)?.remove(0))
}

/// [`jacobian`] of a function with several outputs: `J[i][j]` is the block of output `i`
/// and input `j`, of shape `yᵢ.shape ++ xⱼ.shape`.
///
/// # Errors
/// If a block's element count overflows.
#[track_caller]
pub fn jacobian_multi<T: Float, F>(f: F, xs: &[Tensor<T>]) -> Result<Vec<Vec<Tensor<T>>>>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Vec<Var<'g, T>>,
{
    let g = Graph::new();
    let x = leaves(&g, xs);
    let ys = f(&g, &x);
    let mut out = zero_blocks("jacobian", ys.iter().map(|y| y.shape()), xs)?;
    for (&y, blocks) in ys.iter().zip(&mut out) {
        if y.requires_grad() {
            let shape = y.shape();
            for k in 0..y.numel() {
                write_row(blocks, k, &pull(y, &one_hot(&shape, k), &x));
            }
        }
    }
    Ok(out)
}

/// The Jacobian of `f` at `xs` by forward-mode columns (one per input element, through the
/// double-vjp identity over one recorded forward and one recorded reverse sweep): the same
/// blocks as [`jacobian`], cheaper when the inputs have fewer elements than the output.
///
/// # Errors
/// If a block's element count overflows.
#[track_caller]
pub fn jacobian_fwd<T: Float, F>(f: F, xs: &[Tensor<T>]) -> Result<Vec<Tensor<T>>>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    Ok(jacobian_fwd_multi(|g, x| vec![f(g, x)], xs)?.remove(0))
}

/// [`jacobian_fwd`] of a function with several outputs (the layout of
/// [`jacobian_multi`]).
///
/// # Errors
/// If a block's element count overflows.
#[track_caller]
pub fn jacobian_fwd_multi<T: Float, F>(f: F, xs: &[Tensor<T>]) -> Result<Vec<Vec<Tensor<T>>>>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Vec<Var<'g, T>>,
{
    let g = Graph::new();
    let x = leaves(&g, xs);
    let ys = f(&g, &x);
    let mut out = zero_blocks("jacobian_fwd", ys.iter().map(|y| y.shape()), xs)?;
    let u: Vec<Var<T>> = ys.iter().map(|y| g.leaf(Tensor::ones(y.shape()))).collect();
    let Some(s) = contract(&ys, &u).filter(|_| ys.iter().any(|y| y.requires_grad())) else {
        return Ok(out);
    };
    let gx = s.backward_create_graph();
    for (j, &xj) in x.iter().enumerate() {
        let gj = gx.wrt_var(xj);
        let n = xj.numel();
        for k in 0..n {
            // Column (j, k) of every output's block: the derivative of ⟨Jᵀu, eⱼₖ⟩ in u.
            let cols = pull(gj, &one_hot(&gj.shape(), k), &u);
            for (blocks, col) in out.iter_mut().zip(&cols) {
                write_col(&mut blocks[j], k, n, col);
            }
        }
    }
    Ok(out)
}

/// The Hessian of the one-element function `f` at `xs`: `H[i][j]`, of shape
/// `xᵢ.shape ++ xⱼ.shape`, holds `∂²f/∂xᵢ∂xⱼ` (its gradient recorded on the tape, then one
/// reverse sweep per input element).
///
/// # Errors
/// If `f`'s output has more than one element, or a block's element count overflows.
#[track_caller]
pub fn hessian<T: Float, F>(f: F, xs: &[Tensor<T>]) -> Result<Vec<Vec<Tensor<T>>>>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    let g = Graph::new();
    let x = leaves(&g, xs);
    let y = scalar_output("hessian", f(&g, &x))?;
    let mut out = zero_blocks("hessian", xs.iter().map(|x| x.dims()), xs)?;
    if !y.requires_grad() {
        return Ok(out);
    }
    let grads = y.backward_create_graph();
    for (i, &xi) in x.iter().enumerate() {
        let gi = grads.wrt_var(xi);
        if !gi.requires_grad() {
            continue; // f is linear in xᵢ: its rows are zero
        }
        for k in 0..xi.numel() {
            write_row(&mut out[i], k, &pull(gi, &one_hot(&gi.shape(), k), &x));
        }
    }
    Ok(out)
}

/// The Hessian-vector product `H v = Σⱼ ∂²f/∂xᵢ∂xⱼ vⱼ` of the one-element function `f` for
/// each input `i`, without forming `H`: the gradient recorded, `⟨∇f, v⟩` differentiated.
///
/// # Errors
/// If `f`'s output has more than one element, or the `vs` are not one tensor of each input's
/// shape.
#[track_caller]
pub fn hvp<T: Float, F>(f: F, xs: &[Tensor<T>], vs: &[Tensor<T>]) -> Result<Vec<Tensor<T>>>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    let shapes: Vec<Vec<usize>> = xs.iter().map(|x| x.dims().to_vec()).collect();
    check_shapes("hvp", "vector", vs, &shapes)?;
    let g = Graph::new();
    let x = leaves(&g, xs);
    let y = scalar_output("hvp", f(&g, &x))?;
    if !y.requires_grad() {
        return Ok(xs.iter().map(|t| t.zeros_like()).collect());
    }
    let grads = y.backward_create_graph();
    let gx: Vec<Var<T>> = x.iter().map(|&xi| grads.wrt_var(xi)).collect();
    let v: Vec<Var<T>> = vs.iter().map(|v| g.constant(v.clone())).collect();
    match contract(&gx, &v) {
        Some(t) => Ok(pull(t, &Tensor::ones(t.shape()), &x)),
        None => Ok(Vec::new()),
    }
}

#[track_caller]
fn scalar_output<'g, T: Float>(op: &'static str, y: Var<'g, T>) -> Result<Var<'g, T>> {
    if y.numel() != 1 {
        return Err(shape_error(
            op,
            &[&y.shape()],
            "the function must return one element",
        ));
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f64], shape: &[usize]) -> Tensor<f64> {
        Tensor::from_vec(v.to_vec(), shape)
    }

    /// y = A x + b with A, b as inputs: J_x = A, J_A[i, (i, j)] = x_j, J_b = I.
    #[test]
    fn affine_map_jacobians_in_both_modes() {
        let a = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        let x = t(&[0.5, -1.0, 2.0], &[3]);
        let b = t(&[0.1, 0.2], &[2]);
        fn f<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
            v[0].matmul(v[1].reshape([3, 1])).reshape([2]) + v[2]
        }
        let xs = [a.clone(), x.clone(), b];
        for j in [jacobian(f, &xs).unwrap(), jacobian_fwd(f, &xs).unwrap()] {
            assert_eq!(j[0].dims(), &[2, 2, 3]);
            assert_eq!(j[1].dims(), &[2, 3]);
            assert_eq!(j[2].dims(), &[2, 2]);
            assert_eq!(j[1], a);
            assert_eq!(j[2].as_slice(), &[1.0, 0.0, 0.0, 1.0]);
            let ja = j[0].as_slice();
            for i in 0..2 {
                for r in 0..2 {
                    for c in 0..3 {
                        let want = if r == i { x.as_slice()[c] } else { 0.0 };
                        assert_eq!(ja[i * 6 + r * 3 + c], want);
                    }
                }
            }
        }
    }

    /// Two outputs, one of which ignores the second input: its block is zero.
    #[test]
    fn several_outputs_and_an_unused_input() {
        let xs = [t(&[1.0, 2.0], &[2]), t(&[3.0], &[1])];
        fn f<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Vec<Var<'g, f64>> {
            vec![v[0].square(), (v[0] * v[1]).sum()]
        }
        for j in [
            jacobian_multi(f, &xs).unwrap(),
            jacobian_fwd_multi(f, &xs).unwrap(),
        ] {
            assert_eq!(j[0][0].as_slice(), &[2.0, 0.0, 0.0, 4.0]);
            assert_eq!(j[0][1].as_slice(), &[0.0, 0.0]);
            assert_eq!(j[0][1].dims(), &[2, 1]);
            assert_eq!(j[1][0].as_slice(), &[3.0, 3.0]);
            assert_eq!(j[1][1].as_slice(), &[3.0]);
        }
        let (ys, jv) = jvp_multi(f, &xs, &[t(&[1.0, 0.0], &[2]), t(&[1.0], &[1])]).unwrap();
        assert_eq!(ys[0].as_slice(), &[1.0, 4.0]);
        assert_eq!(jv[0].as_slice(), &[2.0, 0.0]);
        assert_eq!(jv[1].item(), 3.0 + 3.0);
        let (_, grads) = vjp_multi(f, &xs, &[t(&[1.0, 1.0], &[2]), Tensor::scalar(2.0)]).unwrap();
        assert_eq!(grads[0].as_slice(), &[2.0 + 6.0, 4.0 + 6.0]);
        assert_eq!(grads[1].as_slice(), &[2.0 * 3.0]);
    }

    /// A function that ignores its input: zero Jacobians, Hessians and products.
    #[test]
    fn constant_functions_have_zero_derivatives() {
        let xs = [t(&[1.0, 2.0], &[2])];
        fn f<'g>(g: &'g Graph<f64>, _: &[Var<'g, f64>]) -> Var<'g, f64> {
            g.constant(Tensor::ones([3]))
        }
        assert_eq!(jacobian(f, &xs).unwrap()[0], Tensor::zeros([3, 2]));
        assert_eq!(jacobian_fwd(f, &xs).unwrap()[0], Tensor::zeros([3, 2]));
        assert_eq!(jvp(f, &xs, &xs).unwrap().1, Tensor::zeros([3]));
        fn s<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
            v[0].sum() * 2.0
        }
        assert_eq!(hessian(s, &xs).unwrap()[0][0], Tensor::zeros([2, 2]));
        assert_eq!(hvp(s, &xs, &xs).unwrap()[0], Tensor::zeros([2]));
    }

    /// The Rosenbrock function's Hessian, and hvp against it.
    #[test]
    fn rosenbrock_hessian_and_hvp() {
        let (x0, x1) = (1.5, -0.5);
        fn f<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
            let x = v[0].narrow(0, 0, 1);
            let y = v[0].narrow(0, 1, 1);
            ((y - x.square()).square() * 100.0 + x.rsub_scalar(1.0).square()).sum()
        }
        let xs = [t(&[x0, x1], &[2])];
        let h = hessian(f, &xs).unwrap();
        let want = [
            1200.0 * x0 * x0 - 400.0 * x1 + 2.0,
            -400.0 * x0,
            -400.0 * x0,
            200.0,
        ];
        for (a, b) in h[0][0].as_slice().iter().zip(want) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        let hv = hvp(f, &xs, &[t(&[1.0, 2.0], &[2])]).unwrap();
        assert!((hv[0].as_slice()[0] - (want[0] + 2.0 * want[1])).abs() < 1e-10);
        assert!((hv[0].as_slice()[1] - (want[2] + 2.0 * want[3])).abs() < 1e-10);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let xs = [t(&[1.0, 2.0], &[2])];
        fn f<'g>(_: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
            v[0].square()
        }
        let e = vjp(f, &xs, &Tensor::ones([3])).unwrap_err().to_string();
        assert!(e.contains("vjp") && e.contains("cotangent"), "{e}");
        let e = jvp(f, &xs, &[]).unwrap_err().to_string();
        assert!(e.contains("0 tangent given for 1 tensors"), "{e}");
        let e = hessian(f, &xs).unwrap_err().to_string();
        assert!(e.contains("hessian") && e.contains("one element"), "{e}");
        let e = hvp(|_, v| v[0].sum(), &xs, &[Tensor::ones([3])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("hvp"), "{e}");
    }

    /// A Jacobian too large to hold is an error.
    #[test]
    fn a_jacobian_too_large_is_an_error() {
        let big = usize::MAX / 2;
        let e = zero_blocks("jacobian", [[big]], &[Tensor::<f64>::zeros([4])]).unwrap_err();
        assert!(e.to_string().contains("overflows"), "{e}");
    }
}

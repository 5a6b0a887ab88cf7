//! One row per differentiable op: its input shapes, its domain (kinks avoided), and the
//! op. Every row is a property test over random shapes (0-d, size-1, broadcast pairs) and
//! values: first-order `gradcheck` and second-order `gradgradcheck` in f64, and every
//! functional transform (`jacobian`, `jacobian_fwd`, `jvp`, `hessian`, `hvp`) against
//! central differences and against each other.
//!
//! `docs/ops.md` lists the same ops with their gradient status. `sign`, the comparisons,
//! `argmax`/`argmin` and `one_hot` have no gradient and no row.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tapegrad_check::strategies::{broadcastable_pair, matmul_pair, shape, tensor_of_shape, Domain};
use tapegrad_check::{gradcheck, gradgradcheck, GradcheckConfig};
use tapegrad_core::{Conv2dSpec, Graph, Shape, SliceSpec, Tensor, Transpose, Var, Window2d};

fn config() -> Config {
    Config {
        cases: 12,
        rng_seed: RngSeed::Fixed(20261121),
        failure_persistence: None,
        ..Config::default()
    }
}

type Inputs = Vec<Tensor<f64>>;

fn d(lo: f64, hi: f64) -> Domain {
    Domain::new(lo, hi)
}

/// One tensor of rank `ranks`, dims ≤ 3.
fn one(ranks: std::ops::RangeInclusive<usize>, dom: Domain) -> impl Strategy<Value = Inputs> {
    shape(ranks, 3)
        .prop_flat_map(move |s| tensor_of_shape(s, dom.clone()))
        .prop_map(|t| vec![t])
}

/// One tensor whose every dimension is at least 2 (variances need two elements).
fn one_min2(dom: Domain) -> impl Strategy<Value = Inputs> {
    prop::collection::vec(2usize..=3, 1..=3)
        .prop_flat_map(move |v| tensor_of_shape(Shape::from_vec(v), dom.clone()))
        .prop_map(|t| vec![t])
}

/// Two tensors of broadcastable shapes.
fn pair(da: Domain, db: Domain) -> impl Strategy<Value = Inputs> {
    broadcastable_pair(0..=3, 3)
        .prop_flat_map(move |(a, b)| {
            (
                tensor_of_shape(a, da.clone()),
                tensor_of_shape(b, db.clone()),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
}

/// Two tensors of the same shape.
fn twin(ranks: std::ops::RangeInclusive<usize>, dom: Domain) -> impl Strategy<Value = Inputs> {
    shape(ranks, 3)
        .prop_flat_map(move |s| {
            (
                tensor_of_shape(s.clone(), dom.clone()),
                tensor_of_shape(s, dom.clone()),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
}

/// A tensor and a second one with its first dimension replaced by `n`.
fn with_rows(n: usize, dom: Domain) -> impl Strategy<Value = Inputs> {
    shape(1..=3, 3)
        .prop_flat_map(move |s| {
            let mut s2 = s.clone();
            s2[0] = n;
            (
                tensor_of_shape(s, dom.clone()),
                tensor_of_shape(s2, dom.clone()),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
}

/// An image batch `[N, C, H, W]` with N, C in 1..=2 and H, W in 3..=5.
fn images(dom: Domain) -> impl Strategy<Value = Inputs> {
    (1usize..=2, 1usize..=2, 3usize..=5, 3usize..=5)
        .prop_flat_map(move |(n, c, h, w)| {
            tensor_of_shape(Shape::from_slice(&[n, c, h, w]), dom.clone())
        })
        .prop_map(|t| vec![t])
}

/// An image batch, a 2×2 kernel bank for it and a bias.
fn conv_inputs() -> impl Strategy<Value = Inputs> {
    (1usize..=2, 1usize..=2, 3usize..=5, 3usize..=5, 1usize..=3)
        .prop_flat_map(|(n, c, h, w, o)| {
            (
                tensor_of_shape(Shape::from_slice(&[n, c, h, w]), d(-1.0, 1.0)),
                tensor_of_shape(Shape::from_slice(&[o, c, 2, 2]), d(-1.0, 1.0)),
                tensor_of_shape(Shape::from_slice(&[o]), d(-1.0, 1.0)),
            )
        })
        .prop_map(|(x, w, b)| vec![x, w, b])
}

/// Inputs of a grouped convolution: `x [n, 2g, h, w]`, `w [2g, 2, 3, 2]` (2 groups,
/// dilated in the rows).
fn grouped_conv_inputs() -> impl Strategy<Value = Inputs> {
    (1usize..=2, 5usize..=6, 3usize..=4)
        .prop_flat_map(|(n, h, w)| {
            (
                tensor_of_shape(Shape::from_slice(&[n, 4, h, w]), d(-1.0, 1.0)),
                tensor_of_shape(Shape::from_slice(&[4, 2, 3, 2]), d(-1.0, 1.0)),
            )
        })
        .prop_map(|(x, w)| vec![x, w])
}

/// Columns of 2×2 windows (stride (1, 2), padding (1, 0)) of a 3×4 image: `[N, C·4, 4·2]`.
fn columns() -> impl Strategy<Value = Inputs> {
    (1usize..=2, 1usize..=2)
        .prop_flat_map(|(n, c)| tensor_of_shape(Shape::from_slice(&[n, c * 4, 8]), d(-1.0, 1.0)))
        .prop_map(|t| vec![t])
}

/// Operands of `matmul_t` with the given flags: A `[b, m, k]` (or `[b, k, m]` transposed),
/// B `[k, n]` (or `[n, k]`), sizes in 1..=3 and the batch broadcast over B.
fn transposed_pair(ta: bool, tb: bool) -> impl Strategy<Value = Inputs> {
    (1usize..=2, 1usize..=3, 1usize..=3, 1usize..=3)
        .prop_flat_map(move |(b, m, k, n)| {
            let a = if ta { [b, k, m] } else { [b, m, k] };
            let bs = if tb { [n, k] } else { [k, n] };
            (
                tensor_of_shape(Shape::from_slice(&a), d(-1.0, 1.0)),
                tensor_of_shape(Shape::from_slice(&bs), d(-1.0, 1.0)),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
}

fn matmuls() -> impl Strategy<Value = Inputs> {
    matmul_pair(3)
        .prop_flat_map(|(a, b)| {
            (
                tensor_of_shape(a, d(-1.0, 1.0)),
                tensor_of_shape(b, d(-1.0, 1.0)),
            )
        })
        .prop_map(|(a, b)| vec![a, b])
}

/// Indices in `0..n` derived from positions (repeats included).
fn idx(shape: &[usize], n: usize, salt: usize) -> Tensor<usize> {
    Tensor::from_fn(shape, |p| (p * 7 + salt) % n)
}

fn check<F>(name: &str, inputs: &[Tensor<f64>], f: F) -> Result<(), TestCaseError>
where
    F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
{
    let cfg = GradcheckConfig::default();
    gradcheck(&f, inputs, &cfg).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
    gradgradcheck(&f, inputs, &cfg).map_err(|e| TestCaseError::fail(format!("{name}: {e}")))?;
    check_transforms(name, inputs, &f)
}

/// The transforms of `tapegrad_core::functional` on the row's function, in f64: the
/// Jacobian against central differences, the reverse and forward Jacobians equal to 1e-12,
/// `jvp` equal to `J v`; the Hessian of `⟨u, f⟩` symmetric to 1e-12, against central
/// differences of the gradient, and `hvp` equal to `H v`.
fn check_transforms<F>(name: &str, inputs: &[Tensor<f64>], f: F) -> Result<(), TestCaseError>
where
    F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
{
    use tapegrad_core::functional::{hessian, hvp, jacobian, jacobian_fwd, jvp, vjp};
    let fail = |what: String| TestCaseError::fail(format!("{name}: {what}"));
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()));
    let (eps, atol, rtol) = (1e-6, 1e-5, 1e-3);
    let value = |xs: &[Tensor<f64>]| {
        let g = Graph::new();
        let vs: Vec<Var<f64>> = xs.iter().map(|t| g.leaf(t.clone())).collect();
        f(&g, &vs).value()
    };
    let y = value(inputs);
    let m = y.numel();

    // Reverse and forward Jacobians, and central differences column by column.
    let jr = jacobian(&f, inputs).map_err(|e| fail(e.to_string()))?;
    let jf = jacobian_fwd(&f, inputs).map_err(|e| fail(e.to_string()))?;
    for (j, x) in inputs.iter().enumerate() {
        let n = x.numel();
        let want: Vec<usize> = y.dims().iter().chain(x.dims()).copied().collect();
        if jr[j].dims() != want.as_slice() || jf[j].dims() != want.as_slice() {
            return Err(fail(format!(
                "Jacobian shape {:?} / {:?}, want {want:?}",
                jr[j].dims(),
                jf[j].dims()
            )));
        }
        for (a, b) in jr[j].as_slice().iter().zip(jf[j].as_slice()) {
            if !close(*a, *b, 1e-12) {
                return Err(fail(format!("jacobian {a} vs jacobian_fwd {b}")));
            }
        }
        for k in 0..n {
            let shifted = |d: f64| {
                let mut xs = inputs.to_vec();
                xs[j].as_mut_slice()[k] += d;
                value(&xs)
            };
            let (hi, lo) = (shifted(eps), shifted(-eps));
            for r in 0..m {
                let num = (hi.as_slice()[r] - lo.as_slice()[r]) / (2.0 * eps);
                let got = jr[j].as_slice()[r * n + k];
                if (got - num).abs() > atol + rtol * num.abs() {
                    return Err(fail(format!(
                        "J[{r}, input {j} element {k}] = {got}, finite differences {num}"
                    )));
                }
            }
        }
    }

    // jvp against J v.
    let vs: Vec<Tensor<f64>> = inputs
        .iter()
        .enumerate()
        .map(|(j, x)| Tensor::from_fn(x.dims(), |i| ((i * 7 + j * 3) % 5) as f64 / 4.0 - 0.5))
        .collect();
    let (_, jv) = jvp(&f, inputs, &vs).map_err(|e| fail(e.to_string()))?;
    for r in 0..m {
        let want: f64 = inputs
            .iter()
            .enumerate()
            .map(|(j, x)| {
                (0..x.numel())
                    .map(|k| jr[j].as_slice()[r * x.numel() + k] * vs[j].as_slice()[k])
                    .sum::<f64>()
            })
            .sum();
        if !close(jv.as_slice()[r], want, 1e-12) {
            return Err(fail(format!(
                "jvp[{r}] = {}, J v = {want}",
                jv.as_slice()[r]
            )));
        }
    }

    // The Hessian of h = ⟨u, f⟩.
    let u = Tensor::from_fn(y.dims(), |i| ((i * 5 + 1) % 7) as f64 / 3.0 - 1.0);
    let hs = hessian(|g, v| (f(g, v) * &u).sum(), inputs).map_err(|e| fail(e.to_string()))?;
    let grad_at = |xs: &[Tensor<f64>]| {
        vjp(&f, xs, &u)
            .map(|r| r.1)
            .map_err(|e| fail(e.to_string()))
    };
    let hv = hvp(|g, v| (f(g, v) * &u).sum(), inputs, &vs).map_err(|e| fail(e.to_string()))?;
    for (i, xi) in inputs.iter().enumerate() {
        let ni = xi.numel();
        let mut hv_i = vec![0.0; ni];
        for (j, xj) in inputs.iter().enumerate() {
            let nj = xj.numel();
            let (hij, hji) = (&hs[i][j], &hs[j][i]);
            for (a, acc) in hv_i.iter_mut().enumerate() {
                for b in 0..nj {
                    let (p, q) = (hij.as_slice()[a * nj + b], hji.as_slice()[b * ni + a]);
                    if !close(p, q, 1e-12) {
                        return Err(fail(format!(
                            "H[{i}.{a}, {j}.{b}] = {p} but H[{j}.{b}, {i}.{a}] = {q}"
                        )));
                    }
                    *acc += p * vs[j].as_slice()[b];
                }
            }
            // Column (j, b) of H against central differences of the gradient.
            for b in 0..nj {
                let shifted = |d: f64| {
                    let mut xs = inputs.to_vec();
                    xs[j].as_mut_slice()[b] += d;
                    grad_at(&xs)
                };
                let (hi, lo) = (shifted(eps)?, shifted(-eps)?);
                for a in 0..ni {
                    let num = (hi[i].as_slice()[a] - lo[i].as_slice()[a]) / (2.0 * eps);
                    let got = hij.as_slice()[a * nj + b];
                    if (got - num).abs() > atol + rtol * num.abs() {
                        return Err(fail(format!(
                            "H[{i}.{a}, {j}.{b}] = {got}, finite differences {num}"
                        )));
                    }
                }
            }
        }
        for (a, (&got, &want)) in hv[i].as_slice().iter().zip(&hv_i).enumerate() {
            if !close(got, want, 1e-12) {
                return Err(fail(format!("hvp[{i}.{a}] = {got}, H v = {want}")));
            }
        }
    }
    Ok(())
}

macro_rules! rows {
    ($($name:ident : $inputs:expr => |$g:ident, $v:ident| $body:expr;)*) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(xs in $inputs) {
                    check(stringify!($name), &xs, |$g, $v| { let _ = $g; $body })?;
                }
            )*
        }
    };
}

rows! {
    // ---- unary
    neg: one(0..=3, d(-2.0, 2.0)) => |g, v| -v[0];
    abs: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].abs();
    exp: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].exp();
    log: one(0..=3, d(0.1, 3.0)) => |g, v| v[0].log();
    log1p: one(0..=3, d(-0.5, 3.0)) => |g, v| v[0].log1p();
    expm1: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].expm1();
    sqrt: one(0..=3, d(0.1, 3.0)) => |g, v| v[0].sqrt();
    rsqrt: one(0..=3, d(0.2, 3.0)) => |g, v| v[0].rsqrt();
    square: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].square();
    recip: one(0..=3, d(0.2, 3.0)) => |g, v| v[0].recip();
    sin: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].sin();
    cos: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].cos();
    tanh: one(0..=3, d(-2.5, 2.5)) => |g, v| v[0].tanh();
    sigmoid: one(0..=3, d(-4.0, 4.0)) => |g, v| v[0].sigmoid();
    relu: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].relu();
    leaky_relu: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].leaky_relu(0.01);
    elu: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].elu(1.3);
    selu: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].selu();
    gelu: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].gelu();
    gelu_tanh: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].gelu_tanh();
    silu: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].silu();
    softplus: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].softplus_with(1.5, 20.0);
    // Both branches: the identity above β·x = 0.5 (x = 1/3), softplus below.
    softplus_threshold: one(0..=3, d(-2.0, 2.0).avoiding(&[1.0 / 3.0])) => |g, v| v[0].softplus_with(1.5, 0.5);
    clamp: one(0..=3, d(-1.0, 1.0).avoiding(&[-0.5, 0.8])) => |g, v| v[0].clamp(-0.5, 0.8);
    erf: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].erf();
    add_scalar: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0] + 0.7;
    sub_scalar: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0] - 0.7;
    mul_scalar: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0] * -1.7;
    div_scalar: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0] / 3.0;
    rsub_scalar: one(0..=3, d(-2.0, 2.0)) => |g, v| 0.3 - v[0];
    rdiv_scalar: one(0..=3, d(0.2, 2.0)) => |g, v| 1.5 / v[0];
    powf_cube: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].powf(3.0);
    powf_sqrt: one(0..=3, d(0.2, 2.0)) => |g, v| v[0].powf(0.5);
    powf_negative: one(0..=3, d(0.2, 2.0)) => |g, v| v[0].powf(-1.5);

    // ---- binary, broadcasting
    add: pair(d(-2.0, 2.0), d(-2.0, 2.0)) => |g, v| v[0] + v[1];
    sub: pair(d(-2.0, 2.0), d(-2.0, 2.0)) => |g, v| v[0] - v[1];
    mul: pair(d(-2.0, 2.0), d(-2.0, 2.0)) => |g, v| v[0] * v[1];
    div: pair(d(-2.0, 2.0), d(0.3, 2.0)) => |g, v| v[0] / v[1];
    pow: pair(d(0.3, 2.0), d(-2.0, 2.0)) => |g, v| v[0].pow(v[1]);
    maximum: pair(d(-2.0, -0.05), d(0.05, 2.0)) => |g, v| v[0].maximum(v[1]) + v[1].maximum(v[0] * 2.0 + 1.0);
    minimum: pair(d(-2.0, -0.05), d(0.05, 2.0)) => |g, v| v[0].minimum(v[1]) + v[1].minimum(v[0] * 2.0 + 1.0);

    // ---- reductions
    sum: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].sum();
    sum_dim: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].sum_dim(-1, false);
    sum_dims_keep: one(2..=3, d(-2.0, 2.0)) => |g, v| v[0].sum_dim([0, -1], true);
    sum_to: one(2..=3, d(-2.0, 2.0)) => |g, v| { let s = v[0].shape(); let mut t = Shape::from_slice(&s[1..]); t[0] = 1; v[0].sum_to(&t) };
    mean: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].mean();
    mean_dim: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].mean_dim(0, true);
    var: one_min2(d(-2.0, 2.0)) => |g, v| v[0].var(true);
    var_dim_biased: one_min2(d(-2.0, 2.0)) => |g, v| v[0].var_dim(-1, false, false);
    std: one_min2(d(-2.0, 2.0)) => |g, v| v[0].std(true);
    std_dim: one_min2(d(-2.0, 2.0)) => |g, v| v[0].std_dim(0, false, true);
    prod: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].prod();
    prod_dim: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].prod_dim(0, false);
    logsumexp: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].logsumexp();
    logsumexp_dim: one(1..=3, d(-3.0, 3.0)) => |g, v| v[0].logsumexp_dim(-1, true);
    max: one(0..=3, d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].max();
    min: one(0..=3, d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].min();
    amax_dim: one(1..=3, d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].amax(-1, true);
    amin_dim: one(1..=3, d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].amin(0, false);
    max_dim: one(1..=3, d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].max_dim(-1, false).0;
    min_dim: one(1..=3, d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].min_dim(0, true).0;
    norm_l1: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].norm(1.0);
    norm_l2: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].norm(2.0);
    norm_p3: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| v[0].norm(3.0);
    norm_inf: one(0..=3, d(0.1, 2.0).distinct(0.01)) => |g, v| v[0].norm(f64::INFINITY);
    norm_dim: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].norm_dim(2.0, -1, false);

    // ---- matmul
    matmul: matmuls() => |g, v| v[0].matmul(v[1]);
    matmul_transposed: shape(2..=2, 3).prop_flat_map(|s| (tensor_of_shape(s.clone(), d(-1.0, 1.0)), tensor_of_shape(Shape::from_slice(&[2, s[1]]), d(-1.0, 1.0)))).prop_map(|(a, b)| vec![a, b]) => |g, v| v[0].matmul_t(v[1], Transpose::No, Transpose::Yes);
    // Every flag combination of matmul_t, batched with a broadcast batch dimension:
    // A is [b, m, k] or [b, k, m], B is [k, n] or [n, k].
    matmul_t_nn: transposed_pair(false, false) => |g, v| v[0].matmul_t(v[1], Transpose::No, Transpose::No);
    matmul_t_tn: transposed_pair(true, false) => |g, v| v[0].matmul_t(v[1], Transpose::Yes, Transpose::No);
    matmul_t_nt: transposed_pair(false, true) => |g, v| v[0].matmul_t(v[1], Transpose::No, Transpose::Yes);
    matmul_t_tt: transposed_pair(true, true) => |g, v| v[0].matmul_t(v[1], Transpose::Yes, Transpose::Yes);

    // ---- movement
    reshape: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].reshape([-1]);
    permute: one(0..=3, d(-2.0, 2.0)) => |g, v| { let r: Vec<usize> = (0..v[0].ndim()).rev().collect(); v[0].permute(r) };
    transpose: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].transpose(0, -1);
    t: one(0..=2, d(-2.0, 2.0)) => |g, v| v[0].t();
    broadcast_to: one(0..=3, d(-2.0, 2.0)) => |g, v| { let mut s = Shape::from_slice(&[2]); s.extend(v[0].shape()); v[0].broadcast_to(&s) };
    expand: one(1..=3, d(-2.0, 2.0)) => |g, v| { let s: Shape = v[0].shape().iter().map(|&d| if d == 1 { 3 } else { d }).collect(); v[0].expand(&s) * v[0] };
    slice_spec: one(1..=3, d(-2.0, 2.0)) => |g, v| { let s = v[0].shape(); let mut spec = SliceSpec::full(&s); let l = s.len() - 1; spec.dims[l] = (s[l] - 1, 1, 1); spec.dims[0] = (0, 2, s[0].div_ceil(2)); v[0].slice_spec(&spec).square() };
    squeeze_dim: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].unsqueeze(-1).square().squeeze_dim(-1);
    narrow: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].narrow(-1, 0, 1);
    slice_step: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].slice(-1, 0, isize::MAX, 2);
    select: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].select(0, 0);
    pad: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].pad(&[(1, 2)], 0.5);
    concat: one(1..=3, d(-2.0, 2.0)) => |g, v| Var::cat(&[v[0], v[0].exp()], -1);
    stack: twin(0..=3, d(-2.0, 2.0)) => |g, v| Var::stack(&[v[0], v[1]], 0);
    split: one(1..=3, d(-2.0, 2.0)) => |g, v| { let n = v[0].shape()[0]; let p = v[0].split(&[1, n - 1], 0); p[1].sum() * p[0].sum() };
    chunk: one(1..=3, d(-2.0, 2.0)) => |g, v| { let p = v[0].chunk(2, -1); p.last().unwrap().square().sum() + p[0].sum() };
    squeeze: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].squeeze();
    unsqueeze: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].unsqueeze(0);
    flatten: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].flatten(0, -1);

    // ---- indexing
    index_select: one(1..=3, d(-2.0, 2.0)) => |g, v| { let n = v[0].shape()[0]; v[0].index_select(0, &idx(&[4], n, 3)) };
    index_add: with_rows(3, d(-2.0, 2.0)) => |g, v| { let n = v[0].shape()[0]; v[0].index_add(0, &idx(&[3], n, 1), v[1]) };
    gather: one(1..=3, d(-2.0, 2.0)) => |g, v| { let s = v[0].shape(); v[0].gather(-1, &idx(&s, s[s.len() - 1], 2)) };
    scatter_add: twin(1..=3, d(-2.0, 2.0)) => |g, v| { let s = v[0].shape(); v[0].scatter_add(0, &idx(&s, s[0], 5), v[1]) };
    where_cond: pair(d(-2.0, 2.0).avoiding(&[0.0]), d(-2.0, 2.0)) => |g, v| { let c = v[0].gt_scalar(0.0); Var::where_cond(&c, v[0].square(), v[1] * v[0]) };
    masked_fill: one(0..=3, d(-2.0, 2.0).avoiding(&[0.0])) => |g, v| { let m = v[0].lt_scalar(0.0); v[0].masked_fill(&m, 0.5) * v[0] };

    // ---- sliding windows
    unfold2d: images(d(-1.0, 1.0)) => |g, v| v[0].unfold2d(Window2d::new(2, 2).with_stride(1, 2).with_padding(1, 0));
    fold2d: columns() => |g, v| v[0].fold2d(Window2d::new(2, 2).with_stride(1, 2).with_padding(1, 0), (3, 4)) * 1.5;
    conv2d: conv_inputs() => |g, v| v[0].conv2d(v[1], Some(v[2]), Conv2dSpec::default().with_padding(1, 1).with_stride(2, 1));
    conv2d_grouped_dilated: grouped_conv_inputs() => |g, v| v[0].conv2d(v[1], None, Conv2dSpec::default().with_groups(2).with_dilation(2, 1).with_padding(1, 0));
    max_pool2d: images(d(-2.0, 2.0).distinct(0.01)) => |g, v| v[0].max_pool2d(Window2d::new(2, 2).with_stride(1, 1));
    avg_pool2d: images(d(-2.0, 2.0)) => |g, v| v[0].avg_pool2d(Window2d::new(3, 2).with_stride(2, 1).with_padding(1, 1));

    // ---- fused
    softmax: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].softmax(-1);
    softmax_first_axis: one(1..=3, d(-3.0, 3.0)) => |g, v| v[0].softmax(0);
    log_softmax: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].log_softmax(-1);
    normalize_last: one_min2(d(-2.0, 2.0)) => |g, v| v[0].normalize(-1, 0.1);
    normalize_first: one_min2(d(-2.0, 2.0)) => |g, v| v[0].normalize(0, 0.1);
    normalize_batch: images(d(-2.0, 2.0)) => |g, v| v[0].normalize([0, 2, 3], 0.1);
    normalize_all: one_min2(d(-2.0, 2.0)) => |g, v| { let n = v[0].ndim() as isize; v[0].normalize((0..n).collect::<Vec<_>>(), 0.1) };
    normalize_with_stats: images(d(-2.0, 2.0)) => |g, v| v[0].normalize_with_stats([0, 2, 3], 0.1).0;
}

/// One row per op family (and per op whose kernels cut work by an axis), on tensors with a
/// zero-sized dimension: the forward gives PyTorch's shape (and values, for reductions of
/// nothing), and the backward gives a gradient of the input's shape — no kernel may panic
/// on an empty slice or a zero-sized chunk.
#[test]
fn empty_tensors_through_every_op_family() {
    type F = for<'g> fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>;
    let e = |s: &[usize]| Tensor::<f64>::zeros(s);
    let one = |s: &[usize]| Tensor::<f64>::ones(s);
    #[rustfmt::skip]
    /// Name, inputs, PyTorch's output shape, the output's value where it is one number, op.
    type Case = (&'static str, Vec<Tensor<f64>>, &'static [usize], Option<f64>, F);
    let cases: Vec<Case> = vec![
        ("exp", vec![e(&[3, 0])], &[3, 0], None, |_, v| v[0].exp()),
        ("tanh", vec![e(&[0])], &[0], None, |_, v| v[0].tanh()),
        ("relu", vec![e(&[0, 4])], &[0, 4], None, |_, v| v[0].relu()),
        ("powf", vec![e(&[2, 0, 3])], &[2, 0, 3], None, |_, v| {
            v[0].powf(2.5)
        }),
        (
            "add_broadcast",
            vec![e(&[0, 3]), one(&[3])],
            &[0, 3],
            None,
            |_, v| v[0] + v[1],
        ),
        (
            "mul_broadcast",
            vec![e(&[2, 0]), one(&[1])],
            &[2, 0],
            None,
            |_, v| v[0] * v[1],
        ),
        ("pow", vec![e(&[0]), one(&[0])], &[0], None, |_, v| {
            v[0].pow(v[1])
        }),
        ("sum", vec![e(&[3, 0])], &[], Some(0.0), |_, v| v[0].sum()),
        (
            "sum_dim_empty_axis",
            vec![e(&[3, 0])],
            &[3],
            None,
            |_, v| v[0].sum_dim(-1, false),
        ),
        (
            "sum_dim_other_axis",
            vec![e(&[3, 0])],
            &[0],
            None,
            |_, v| v[0].sum_dim(0, false),
        ),
        ("mean", vec![e(&[0])], &[], Some(f64::NAN), |_, v| {
            v[0].mean()
        }),
        ("prod", vec![e(&[0])], &[], Some(1.0), |_, v| v[0].prod()),
        ("logsumexp_dim", vec![e(&[3, 0])], &[3], None, |_, v| {
            v[0].logsumexp_dim(-1, false)
        }),
        ("norm", vec![e(&[0, 2])], &[], Some(0.0), |_, v| {
            v[0].norm(2.0)
        }),
        ("amax_other_axis", vec![e(&[0, 2])], &[0], None, |_, v| {
            v[0].amax(1, false).exp()
        }),
        (
            "max_dim_kept_axis",
            vec![e(&[2, 0])],
            &[1, 0],
            None,
            |_, v| v[0].max_dim(0, true).0,
        ),
        (
            "matmul_empty_rows",
            vec![e(&[0, 3]), one(&[3, 2])],
            &[0, 2],
            None,
            |_, v| v[0].matmul(v[1]),
        ),
        (
            "matmul_empty_inner",
            vec![e(&[2, 0]), e(&[0, 3])],
            &[2, 3],
            None,
            |_, v| v[0].matmul(v[1]),
        ),
        (
            "matmul_batched",
            vec![e(&[0, 2, 3]), one(&[3, 4])],
            &[0, 2, 4],
            None,
            |_, v| v[0].matmul(v[1]),
        ),
        ("reshape", vec![e(&[3, 0])], &[0, 5], None, |_, v| {
            v[0].reshape([0, 5])
        }),
        ("permute", vec![e(&[3, 0, 2])], &[2, 0, 3], None, |_, v| {
            v[0].permute([2, 1, 0])
        }),
        ("broadcast_to", vec![e(&[0, 1])], &[0, 4], None, |_, v| {
            v[0].broadcast_to(&[0, 4])
        }),
        ("narrow", vec![e(&[3, 0])], &[2, 0], None, |_, v| {
            v[0].narrow(0, 1, 2)
        }),
        (
            "narrow_to_nothing",
            vec![e(&[3, 2])],
            &[0, 2],
            None,
            |_, v| v[0].narrow(0, 3, 0),
        ),
        ("pad", vec![e(&[0, 2])], &[0, 5], None, |_, v| {
            v[0].pad(&[(1, 2)], 0.5)
        }),
        (
            "concat",
            vec![e(&[0, 2]), one(&[3, 2])],
            &[3, 2],
            None,
            |_, v| Var::cat(&[v[0], v[1]], 0),
        ),
        ("stack", vec![e(&[0]), e(&[0])], &[2, 0], None, |_, v| {
            Var::stack(&[v[0], v[1]], 0)
        }),
        ("split", vec![e(&[3, 0])], &[1, 0], None, |_, v| {
            v[0].split(&[1, 2], 0)[0]
        }),
        (
            "index_select_empty_input",
            vec![e(&[3, 0])],
            &[2, 0],
            None,
            |_, v| v[0].index_select(0, &Tensor::from_vec(vec![2, 0], [2])),
        ),
        (
            "index_select_empty_index",
            vec![e(&[3, 2])],
            &[0, 2],
            None,
            |_, v| v[0].index_select(0, &Tensor::from_vec(vec![], [0])),
        ),
        ("gather", vec![e(&[3, 0])], &[3, 0], None, |_, v| {
            v[0].gather(1, &Tensor::from_vec(vec![], [3, 0]))
        }),
        (
            "where",
            vec![e(&[0, 2]), one(&[2])],
            &[0, 2],
            None,
            |_, v| Var::where_cond(&Tensor::from_vec(vec![true, false], [2]), v[0], v[1]),
        ),
        (
            "softmax_empty_axis",
            vec![e(&[3, 0])],
            &[3, 0],
            None,
            |_, v| v[0].softmax(-1),
        ),
        (
            "softmax_other_axis",
            vec![e(&[3, 0])],
            &[3, 0],
            None,
            |_, v| v[0].softmax(0),
        ),
        ("log_softmax", vec![e(&[0, 4])], &[0, 4], None, |_, v| {
            v[0].log_softmax(-1)
        }),
        ("normalize", vec![e(&[0, 4])], &[0, 4], None, |_, v| {
            v[0].normalize(-1, 1e-5)
        }),
        (
            "unfold2d",
            vec![e(&[0, 2, 4, 4])],
            &[0, 8, 9],
            None,
            |_, v| v[0].unfold2d(Window2d::new(2, 2)),
        ),
        (
            "conv2d",
            vec![e(&[0, 2, 5, 5]), one(&[3, 2, 3, 3]), one(&[3])],
            &[0, 3, 5, 5],
            None,
            |_, v| v[0].conv2d(v[1], Some(v[2]), Conv2dSpec::default().with_padding(1, 1)),
        ),
        (
            "conv2d_direct",
            vec![e(&[0, 2, 5, 5]), one(&[3, 2, 2, 2])],
            &[0, 3, 2, 2],
            None,
            |_, v| v[0].conv2d(v[1], None, Conv2dSpec::default().with_stride(2, 2)),
        ),
        (
            "conv2d_no_channels",
            vec![e(&[1, 0, 4, 4]), one(&[2, 0, 3, 3]), one(&[2])],
            &[1, 2, 2, 2],
            None,
            |_, v| v[0].conv2d(v[1], Some(v[2]), Conv2dSpec::default()),
        ),
        (
            "mean_dim_empty_axis",
            vec![e(&[2, 0])],
            &[2],
            None,
            |_, v| v[0].mean_dim(1, false),
        ),
        ("softmax_1d", vec![e(&[0])], &[0], None, |_, v| {
            v[0].softmax(0)
        }),
        (
            "max_pool2d",
            vec![e(&[0, 1, 4, 4])],
            &[0, 1, 2, 2],
            None,
            |_, v| v[0].max_pool2d(Window2d::new(2, 2).with_stride(2, 2)),
        ),
        (
            "avg_pool2d",
            vec![e(&[2, 0, 4, 4])],
            &[2, 0, 3, 3],
            None,
            |_, v| v[0].avg_pool2d(Window2d::new(2, 2)),
        ),
    ];
    let mut checked = 0;
    let mut failed = vec![];
    for (name, inputs, want, value, f) in cases {
        let r = std::panic::catch_unwind(|| {
            let g = Graph::new();
            let xs: Vec<Var<f64>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
            let y = f(&g, &xs);
            assert_eq!(y.shape().as_slice(), want, "{name}: output shape");
            if let Some(v) = value {
                let got = y.value().item();
                assert!(
                    got == v || (v.is_nan() && got.is_nan()),
                    "{name}: {got} instead of {v}"
                );
            }
            let grads = y.backward_with(&Tensor::ones(want));
            for (i, x) in xs.iter().enumerate() {
                assert_eq!(
                    grads.wrt(*x).dims(),
                    inputs[i].dims(),
                    "{name}: gradient of input {i}"
                );
            }
            let gv = y.backward_create_graph_with(g.constant(Tensor::ones(want)));
            for (i, x) in xs.iter().enumerate() {
                assert_eq!(
                    gv.wrt_var(*x).shape().as_slice(),
                    inputs[i].dims(),
                    "{name}: recorded gradient of input {i}"
                );
            }
        });
        if r.is_err() {
            failed.push(name);
        }
        checked += 1;
    }
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(checked, 44);
}

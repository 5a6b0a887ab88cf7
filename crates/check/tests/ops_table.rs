//! One row per differentiable op: its input shapes, its domain (kinks avoided), and the
//! op. Every row is a property test over random shapes (0-d, size-1, broadcast pairs) and
//! values: first-order `gradcheck` and second-order `gradgradcheck` in f64.
//!
//! `docs/ops.md` lists the same ops with their gradient status. `sign`, the comparisons,
//! `argmax`/`argmin` and `one_hot` have no gradient and no row.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tapegrad_check::strategies::{broadcastable_pair, matmul_pair, shape, tensor_of_shape, Domain};
use tapegrad_check::{gradcheck, gradgradcheck, GradcheckConfig};
use tapegrad_core::{Conv2dSpec, Graph, Shape, Tensor, Var, Window2d};

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
    logsumexp: one(0..=3, d(-3.0, 3.0)) => |g, v| v[0].logsumexp_all();
    logsumexp_dim: one(1..=3, d(-3.0, 3.0)) => |g, v| v[0].logsumexp(-1, true);
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
    matmul_transposed: shape(2..=2, 3).prop_flat_map(|s| (tensor_of_shape(s.clone(), d(-1.0, 1.0)), tensor_of_shape(Shape::from_slice(&[2, s[1]]), d(-1.0, 1.0)))).prop_map(|(a, b)| vec![a, b]) => |g, v| v[0].matmul_t(v[1], false, true);

    // ---- movement
    reshape: one(0..=3, d(-2.0, 2.0)) => |g, v| v[0].reshape([-1]);
    permute: one(0..=3, d(-2.0, 2.0)) => |g, v| { let r: Vec<usize> = (0..v[0].ndim()).rev().collect(); v[0].permute(r) };
    transpose: one(1..=3, d(-2.0, 2.0)) => |g, v| v[0].transpose(0, -1);
    t: one(0..=2, d(-2.0, 2.0)) => |g, v| v[0].t();
    broadcast_to: one(0..=3, d(-2.0, 2.0)) => |g, v| { let mut s = Shape::from_slice(&[2]); s.extend(v[0].shape()); v[0].broadcast_to(&s) };
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
}

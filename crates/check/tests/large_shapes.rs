//! Gradients where the kernels cut their work: every op family on inputs above 64 Ki
//! elements (the element-wise and reduction kernels work in pieces of 16 Ki and hand the
//! pieces to the thread pool from 64 Ki; matrix products above 64³ multiply-adds and
//! convolutions of several images are spread over threads too), checked along one random
//! direction in f64 (three passes whatever the size), first order and, where the op is
//! twice differentiable, second order, on one thread and on two.
//!
//! The small-shape checks of `ops_table.rs` never reach these paths.

use tapegrad_check::{gradcheck_directional, gradgradcheck_directional, GradcheckConfig};
use tapegrad_core::{Conv2dSpec, Graph, Tensor, Transpose, Var, Window2d};
use tapegrad_kernels::threads::with_num_threads;

/// More than 64 Ki elements: 280 × 256 = 71,680.
const ROWS: usize = 280;
const COLS: usize = 256;

/// Values in ±[lo, hi], kept `lo` away from zero (the kinks of relu, abs, max ties).
fn values(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    let mut rng = tapegrad_core::seeded_rng(seed);
    let u = Tensor::<f64>::rand_uniform(shape, -1.0, 1.0, &mut rng);
    u.map(|v| v.signum() * (lo + (hi - lo) * v.abs()))
}

/// Positive values in [lo, hi].
fn positive(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    let mut rng = tapegrad_core::seeded_rng(seed);
    Tensor::rand_uniform(shape, lo, hi, &mut rng)
}

type F = for<'g> fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>;

/// `(name, inputs, f, twice differentiable)`.
fn rows() -> Vec<(&'static str, Vec<Tensor<f64>>, F, bool)> {
    let m = || values(&[ROWS, COLS], 0.05, 2.0, 1);
    let p = || positive(&[ROWS, COLS], 0.2, 2.0, 2);
    let img = || values(&[9, 8, 32, 32], 0.01, 1.0, 3);
    vec![
        ("exp", vec![m()], |_, v| v[0].exp(), true),
        ("log", vec![p()], |_, v| v[0].log(), true),
        ("tanh", vec![m()], |_, v| v[0].tanh(), true),
        ("sigmoid", vec![m()], |_, v| v[0].sigmoid(), true),
        ("gelu", vec![m()], |_, v| v[0].gelu(), true),
        ("softplus", vec![m()], |_, v| v[0].softplus(), true),
        ("relu", vec![m()], |_, v| v[0].relu() * v[0], true),
        ("abs", vec![m()], |_, v| v[0].abs() * v[0], true),
        ("powf", vec![p()], |_, v| v[0].powf(1.5), true),
        (
            "mul_broadcast",
            vec![m(), values(&[COLS], 0.1, 1.0, 4)],
            |_, v| v[0] * v[1],
            true,
        ),
        ("div", vec![m(), p()], |_, v| v[0] / v[1], true),
        (
            "pow",
            vec![p(), values(&[ROWS, 1], 0.1, 1.5, 5)],
            |_, v| v[0].pow(v[1]),
            true,
        ),
        (
            "maximum",
            vec![m(), values(&[ROWS, COLS], 0.05, 2.0, 6)],
            |_, v| v[0].maximum(v[1] * 1.01) * v[0],
            true,
        ),
        (
            "sum_dim",
            vec![m()],
            |_, v| v[0].sum_dim(0, false).square(),
            true,
        ),
        ("mean", vec![m()], |_, v| v[0].square().mean(), true),
        (
            "var_dim",
            vec![m()],
            |_, v| v[0].var_dim(-1, true, false),
            true,
        ),
        (
            "amax",
            vec![m()],
            |_, v| v[0].amax(-1, false) * v[0].amin(-1, false),
            true,
        ),
        (
            "logsumexp",
            vec![m()],
            |_, v| v[0].logsumexp_dim(0, false),
            true,
        ),
        (
            "norm",
            vec![m()],
            |_, v| v[0].norm(2.0) * v[0].norm(1.0),
            true,
        ),
        (
            "prod_dim",
            vec![positive(&[ROWS, COLS], 0.95, 1.05, 7)],
            |_, v| v[0].prod_dim(0, false),
            true,
        ),
        (
            "matmul",
            vec![
                values(&[300, COLS], 0.05, 1.0, 8),
                values(&[COLS, ROWS], 0.05, 1.0, 9),
            ],
            |_, v| v[0].matmul(v[1]),
            true,
        ),
        (
            "matmul_t",
            vec![
                values(&[COLS, 300], 0.05, 1.0, 10),
                values(&[ROWS, COLS], 0.05, 1.0, 11),
            ],
            |_, v| v[0].matmul_t(v[1], Transpose::Yes, Transpose::Yes),
            true,
        ),
        (
            "batched_matmul",
            vec![
                values(&[4, 70, 256], 0.05, 1.0, 12),
                values(&[256, 70], 0.05, 1.0, 13),
            ],
            |_, v| v[0].matmul(v[1]),
            true,
        ),
        (
            "permute",
            vec![values(&[40, 60, 32], 0.05, 1.0, 14)],
            |_, v| v[0].permute([2, 0, 1]) * v[0].permute([2, 0, 1]),
            true,
        ),
        (
            "pad_slice",
            vec![m()],
            |_, v| v[0].pad(&[(3, 2)], 0.5).slice(1, 1, -1, 3).square(),
            true,
        ),
        (
            "cat",
            vec![m(), m()],
            |_, v| Var::cat(&[v[0], v[1].square()], 1),
            true,
        ),
        (
            "broadcast_to",
            vec![values(&[COLS], 0.05, 1.0, 15)],
            |_, v| v[0].broadcast_to(&[ROWS, COLS]).square(),
            true,
        ),
        (
            "index_select",
            vec![m()],
            |_, v| {
                v[0].index_select(0, &Tensor::from_fn([400], |i| (i * 7) % ROWS))
                    .square()
            },
            true,
        ),
        (
            "gather",
            vec![m()],
            |_, v| {
                v[0].gather(1, &Tensor::from_fn([ROWS, COLS], |i| (i * 13) % COLS))
                    .square()
            },
            true,
        ),
        (
            "scatter_add",
            vec![m(), m()],
            |_, v| {
                v[0].scatter_add(0, &Tensor::from_fn([ROWS, COLS], |i| (i * 11) % ROWS), v[1])
                    .square()
            },
            true,
        ),
        (
            "where",
            vec![m(), m()],
            |_, v| Var::where_cond(&v[0].gt_scalar(0.0), v[0].square(), v[1] * v[0]),
            true,
        ),
        ("softmax", vec![m()], |_, v| v[0].softmax(-1), true),
        (
            "softmax_first_axis",
            vec![m()],
            |_, v| v[0].softmax(0),
            true,
        ),
        ("log_softmax", vec![m()], |_, v| v[0].log_softmax(-1), true),
        (
            "normalize_batch",
            vec![img()],
            |_, v| v[0].normalize([0, 2, 3], 1e-3),
            true,
        ),
        (
            "normalize_layer",
            vec![m()],
            |_, v| v[0].normalize(-1, 1e-3),
            true,
        ),
        (
            "conv2d_winograd",
            vec![
                img(),
                values(&[16, 8, 3, 3], 0.05, 0.5, 16),
                values(&[16], 0.05, 0.5, 17),
            ],
            |_, v| v[0].conv2d(v[1], Some(v[2]), Conv2dSpec::default().with_padding(1, 1)),
            true,
        ),
        (
            "conv2d_direct",
            vec![img(), values(&[16, 8, 3, 3], 0.05, 0.5, 18)],
            |_, v| {
                v[0].conv2d(
                    v[1],
                    None,
                    Conv2dSpec::default().with_stride(2, 2).with_padding(1, 1),
                )
            },
            true,
        ),
        (
            "conv2d_grouped",
            vec![img(), values(&[8, 2, 2, 2], 0.05, 0.5, 19)],
            |_, v| {
                v[0].conv2d(
                    v[1],
                    None,
                    Conv2dSpec::default().with_groups(4).with_dilation(2, 2),
                )
            },
            true,
        ),
        (
            "max_pool2d",
            vec![img()],
            |_, v| {
                v[0].max_pool2d(Window2d::new(2, 2).with_stride(2, 2))
                    .square()
            },
            true,
        ),
        (
            "avg_pool2d",
            vec![img()],
            |_, v| {
                v[0].avg_pool2d(Window2d::new(3, 3).with_stride(1, 1).with_padding(1, 1))
                    .square()
            },
            true,
        ),
        (
            "unfold_fold",
            vec![img()],
            |_, v| {
                v[0].unfold2d(Window2d::new(2, 2))
                    .square()
                    .fold2d(Window2d::new(2, 2), (32, 32))
            },
            true,
        ),
    ]
}

/// Tight tolerances: the directional derivative sums the contributions of every element,
/// so a wrong gradient in a few elements moves it by a small fraction. A step of 1e-3
/// along a unit direction moves each of n elements by about 1e-3/√n (4e-6 here, far from
/// every kink), leaves a truncation error near 1e-9, and keeps the rounding of the
/// difference quotient (the contracted outputs are sums of 70,000 terms of up to 1e6 in
/// all, rounded at 1e-16 of that) near 1e-7.
fn cfg() -> GradcheckConfig {
    GradcheckConfig::default()
        .with_eps(1e-3)
        .with_atol(1e-6)
        .with_rtol(1e-6)
}

#[test]
fn every_op_family_above_the_threaded_thresholds() {
    let cfg = cfg();
    let mut checked = 0;
    for threads in [1, 2] {
        with_num_threads(threads, || {
            for (name, inputs, f, second) in rows() {
                let n: usize = inputs.iter().map(|t| t.numel()).sum();
                let out = {
                    let g = Graph::new();
                    let xs: Vec<Var<f64>> = inputs.iter().map(|t| g.constant(t.clone())).collect();
                    f(&g, &xs).numel()
                };
                assert!(
                    n.max(out) > 65_536,
                    "{name}: only {n} elements in, {out} out"
                );
                if let Err(e) = gradcheck_directional(f, &inputs, &cfg) {
                    panic!("{name} ({threads} threads): {e}");
                }
                if second {
                    if let Err(e) = gradgradcheck_directional(f, &inputs, &cfg) {
                        panic!("{name} ({threads} threads): {e}");
                    }
                }
                checked += 1;
            }
        });
    }
    assert_eq!(checked, 2 * 42);
}

#[test]
fn a_wrong_gradient_in_one_element_of_a_large_tensor_is_found() {
    // A custom op whose backward is right except at the last element: the random direction
    // sees it.
    struct Square;
    impl<T: tapegrad_core::Float> tapegrad_core::CustomOp<T> for Square {
        fn name(&self) -> &str {
            "square_but_last"
        }
        fn forward(&self, x: &[&Tensor<T>]) -> tapegrad_core::Result<Tensor<T>> {
            Ok(x[0].square())
        }
        fn backward<V: tapegrad_core::Algebra<T>>(
            &self,
            x: &[&V],
            _y: &V,
            g: &V,
        ) -> Vec<Option<V>> {
            let n = x[0].value().numel();
            let mut k = Tensor::full(x[0].shape(), T::from_f64(2.0));
            k.as_mut_slice()[n - 1] = T::from_f64(2.5);
            vec![Some(g.mul(x[0]).mul(&g.constant(k)))]
        }
    }
    let x = values(&[ROWS, COLS], 0.5, 2.0, 20);
    fn f2<'g>(g: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
        g.apply(Square, &[v[0]])
    }
    let e = gradcheck_directional(f2, &[x], &cfg());
    assert!(e.is_err(), "a wrong last element was not found");
}

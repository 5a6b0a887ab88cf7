//! Per-example gradients: for every layer with a per-example rule, and for the fallback,
//! they equal a loop of single-example backward passes and sum to the batch gradient, to
//! 1e-12 in f64; norms, clipping and the DP-SGD step on top.

use std::ops::Range;

use tapegrad_core::{seeded_rng, Graph, ParamKey, ParamStore, StdRng, Tensor, Var};
use tapegrad_nn::*;

fn rand(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut seeded_rng(seed))
}

/// A per-example loss with a non-trivial gradient: Σ sin(y)·y over each example's outputs.
fn loss<'g>(y: Var<'g, f64>, rows: Range<usize>) -> Var<'g, f64> {
    let n = rows.len();
    let flat = y.reshape([n, y.numel() / n]);
    (flat.sin() * flat).sum_to(&[n, 1]).reshape([n])
}

/// The reference: one forward and backward pass per example, by hand.
fn by_loop(
    m: &dyn Module<f64>,
    store: &mut ParamStore<f64>,
    x: &Tensor<f64>,
) -> Vec<(ParamKey, Vec<Tensor<f64>>)> {
    let keys: Vec<ParamKey> = m
        .trainable(store)
        .into_iter()
        .filter(|&k| store.param(k).requires_grad())
        .collect();
    let b = x.dims()[0];
    let mut out: Vec<(ParamKey, Vec<Tensor<f64>>)> =
        keys.iter().map(|&k| (k, Vec::new())).collect();
    for i in 0..b {
        let g = Graph::new();
        let xi = g.constant(x.narrow(0, i, 1));
        let y = m.forward(&mut Forward::new(&g, store, Mode::Eval, None), xi);
        let grads = loss(y, i..i + 1).sum().backward();
        for (k, rows) in &mut out {
            rows.push(
                grads
                    .param(*k)
                    .cloned()
                    .unwrap_or_else(|| Tensor::zeros(store.value(*k).dims())),
            );
        }
    }
    out
}

fn close(a: &[f64], b: &[f64], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Per-example gradients of `m` at `x` against the loop and the batch gradient.
/// `4 → 6 → tanh → out`: layers `a` and `b`.
fn tanh_mlp(store: &mut ParamStore<f64>, rng: &mut StdRng, out: usize) -> Sequential<f64> {
    Sequential::new()
        .push(Linear::new(store, "a", 4, 6, Init::HeNormal, rng))
        .push(Tanh)
        .push(Linear::new(store, "b", 6, out, Init::HeNormal, rng))
}

/// [`check`] of a model whose every parameter takes the vectorised path.
fn vectorized(name: &str, m: &dyn Module<f64>, store: &mut ParamStore<f64>, x: Tensor<f64>) {
    check(name, m, store, x, Method::Vectorized);
}

fn check(
    name: &str,
    m: &dyn Module<f64>,
    store: &mut ParamStore<f64>,
    x: Tensor<f64>,
    want: Method,
) {
    let ps = per_sample_grads(m, store, Mode::Eval, None, &x, loss).unwrap();
    assert_eq!(ps.method(), want, "{name}: method");
    let b = x.dims()[0];
    let reference = by_loop(m, store, &x);
    assert!(!reference.is_empty());
    for (k, rows) in &reference {
        let what = format!("{name}: {}", store.name(*k));
        let got = ps
            .get(*k)
            .unwrap_or_else(|| panic!("{what}: no per-example gradient"));
        let mut shape = vec![b];
        shape.extend_from_slice(store.value(*k).dims());
        assert_eq!(got.dims(), shape.as_slice(), "{what}: shape");
        let flat: Vec<f64> = rows.iter().flat_map(|t| t.to_vec()).collect();
        close(&got.to_vec(), &flat, &what);
    }
    // Summed over the batch: the batch gradient.
    let g = Graph::new();
    let y = m.forward(
        &mut Forward::new(&g, store, Mode::Eval, None),
        g.constant(x.clone()),
    );
    let batch = loss(y, 0..b).sum().backward();
    let summed = ps.sum();
    for (k, want) in batch.params() {
        close(
            &summed.param(k).unwrap().to_vec(),
            &want.to_vec(),
            &format!("{name}: Σ {}", store.name(k)),
        );
    }
}

#[test]
fn linear_on_matrices_and_on_sequences() {
    let mut store = ParamStore::new();
    let mut rng = seeded_rng(1);
    let m = tanh_mlp(&mut store, &mut rng, 3);
    vectorized("linear", &m, &mut store, rand(&[5, 4], 2));
    // [B, T, features]: the rule sums over the middle axis.
    vectorized("linear (sequences)", &m, &mut store, rand(&[3, 7, 4], 3));
    // Without bias.
    let mut store = ParamStore::new();
    let m = Linear::with_config(
        &mut store,
        "c",
        4,
        2,
        LinearConfig::default().with_bias(false),
        &mut rng,
    );
    vectorized("linear (no bias)", &m, &mut store, rand(&[6, 4], 4));
}

#[test]
fn conv2d_with_stride_padding_dilation_and_groups() {
    let mut rng = seeded_rng(5);
    for (i, cfg) in [
        Conv2dConfig::new(3),
        Conv2dConfig::new(3).with_stride(2).with_padding(1),
        Conv2dConfig::new(2).with_dilation(2).with_bias(false),
        Conv2dConfig::new(3).with_padding(1).with_groups(2),
    ]
    .into_iter()
    .enumerate()
    {
        let mut store = ParamStore::new();
        let m = Sequential::new()
            .push(Conv2d::new(&mut store, "c", 4, 6, cfg, &mut rng))
            .push(Tanh)
            .push(Flatten::default());
        vectorized(
            &format!("conv2d #{i}"),
            &m,
            &mut store,
            rand(&[3, 4, 7, 6], 6 + i as u64),
        );
    }
}

#[test]
fn embedding_with_repeated_indices() {
    let mut store = ParamStore::new();
    let mut rng = seeded_rng(7);
    let m = Sequential::new()
        .push(Embedding::new(&mut store, "e", 5, 3, &mut rng))
        .push(Linear::new(&mut store, "l", 3, 2, Init::HeNormal, &mut rng));
    // Example 0 repeats index 1; index 4 is used by no example.
    let idx = Tensor::from_vec(vec![1.0, 1.0, 0.0, 2.0, 3.0, 0.0, 3.0, 3.0, 2.0], [3, 3]);
    vectorized("embedding", &m, &mut store, idx);
}

#[test]
fn layer_norm_and_batch_norm_in_evaluation() {
    let mut rng = seeded_rng(8);
    let mut store = ParamStore::new();
    let m = Sequential::new()
        .push(Linear::new(&mut store, "l", 4, 6, Init::HeNormal, &mut rng))
        .push(LayerNorm::new(&mut store, "ln", &[6]))
        .push(Tanh);
    // LayerNorm's γ and β start at 1 and 0: move them so the check sees them.
    for name in ["ln.weight", "ln.bias"] {
        let k = store.key(name).unwrap();
        *store.value_mut(k) = rand(&[6], 9);
    }
    vectorized("layer norm", &m, &mut store, rand(&[5, 4], 10));
    vectorized(
        "layer norm (sequences)",
        &m,
        &mut store,
        rand(&[2, 3, 4], 11),
    );

    let mut store = ParamStore::new();
    let m = Sequential::new()
        .push(Conv2d::new(
            &mut store,
            "c",
            2,
            3,
            Conv2dConfig::new(3).with_padding(1),
            &mut rng,
        ))
        .push(BatchNorm2d::new(&mut store, "bn", 3))
        .push(Relu)
        .push(Flatten::default())
        .push(Linear::new(
            &mut store,
            "l",
            3 * 4 * 4,
            3,
            Init::HeNormal,
            &mut rng,
        ))
        .push(BatchNorm1d::new(&mut store, "bn1", 3));
    for name in [
        "bn.running_mean",
        "bn.running_var",
        "bn.weight",
        "bn.bias",
        "bn1.running_mean",
        "bn1.weight",
    ] {
        let k = store.key(name).unwrap();
        let n = store.value(k).numel();
        *store.value_mut(k) =
            rand(&[n], 12).map(|v| if name.ends_with("var") { v + 1.5 } else { v });
    }
    vectorized(
        "batch norm (evaluation)",
        &m,
        &mut store,
        rand(&[4, 2, 4, 4], 13),
    );
}

#[test]
fn any_other_parameter_takes_the_loop() {
    let mut store = ParamStore::new();
    let mut rng = seeded_rng(14);
    let m = Sequential::new()
        .push(Linear::new(&mut store, "a", 4, 6, Init::HeNormal, &mut rng))
        .push(PRelu::new(&mut store, "p", 6, 0.1))
        .push(Linear::new(&mut store, "b", 6, 2, Init::HeNormal, &mut rng));
    check(
        "prelu (fallback)",
        &m,
        &mut store,
        rand(&[5, 4], 15),
        Method::Loop,
    );
    // A checkpointed block hides its layers: the loop again, with the same numbers.
    let mut store = ParamStore::new();
    let m = Sequential::new()
        .push(Checkpointed::new(Linear::new(
            &mut store,
            "a",
            4,
            6,
            Init::HeNormal,
            &mut rng,
        )))
        .push(Tanh)
        .push(Linear::new(&mut store, "b", 6, 2, Init::HeNormal, &mut rng));
    check(
        "checkpointed (fallback)",
        &m,
        &mut store,
        rand(&[5, 4], 16),
        Method::Loop,
    );
}

#[test]
fn frozen_parameters_get_none() {
    let mut store = ParamStore::new();
    let mut rng = seeded_rng(17);
    let a = Linear::new(&mut store, "a", 4, 6, Init::HeNormal, &mut rng);
    let m = Sequential::new()
        .push(a.clone())
        .push(Tanh)
        .push(Linear::new(&mut store, "b", 6, 2, Init::HeNormal, &mut rng));
    a.freeze(&mut store);
    let ps = per_sample_grads(&m, &mut store, Mode::Eval, None, &rand(&[3, 4], 18), loss).unwrap();
    assert!(ps.get(a.weight()).is_none());
    assert_eq!(ps.iter().count(), 2);
    vectorized("frozen", &m, &mut store, rand(&[3, 4], 18));
}

#[test]
fn norms_clipping_and_dp_sgd() {
    let mut store = ParamStore::new();
    let mut rng = seeded_rng(19);
    let m = tanh_mlp(&mut store, &mut rng, 2);
    let x = rand(&[6, 4], 20);
    let ps = per_sample_grads(&m, &mut store, Mode::Eval, None, &x, loss).unwrap();
    let reference = by_loop(&m, &mut store, &x);
    let want: Vec<f64> = (0..6)
        .map(|b| {
            reference
                .iter()
                .map(|(_, rows)| rows[b].as_slice().iter().map(|v| v * v).sum::<f64>())
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    close(&ps.norms().to_vec(), &want, "norms");
    let c = want.iter().cloned().fold(f64::INFINITY, f64::min) * 1.5;
    let mut clipped = ps.clone();
    let before = clipped.clip(c);
    close(&before.to_vec(), &want, "norms before clipping");
    for (n, w) in clipped.norms().as_slice().iter().zip(&want) {
        assert!(*n <= c + 1e-9, "clipped norm {n} above {c}");
        if *w <= c {
            assert!(
                (n - w).abs() < 1e-5 * w,
                "an example under the bound is (almost) unchanged"
            );
        }
    }
    // Without noise, DP-SGD is the clipped mean.
    let dp = ps.clone().dp_sgd(c, 0.0, &mut seeded_rng(0));
    let summed = clipped.sum();
    for (k, g) in dp.params() {
        let want: Vec<f64> = summed
            .param(k)
            .unwrap()
            .as_slice()
            .iter()
            .map(|v| v / 6.0)
            .collect();
        close(&g.to_vec(), &want, "dp-sgd without noise");
    }
    // With noise: the mean of clipped gradients plus N(0, (σC/B)²).
    let noisy = ps.dp_sgd(c, 1.0, &mut seeded_rng(1));
    let diffs: Vec<f64> = noisy
        .params()
        .flat_map(|(k, g)| {
            let d = dp.param(k).unwrap().clone();
            g.as_slice()
                .iter()
                .zip(d.as_slice())
                .map(|(a, b)| a - b)
                .collect::<Vec<_>>()
        })
        .collect();
    let sd = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    let want_sd = c / 6.0;
    assert!(
        (sd / want_sd - 1.0).abs() < 0.3,
        "noise sd {sd}, want about {want_sd}"
    );
}

#[test]
fn bad_input_is_refused() {
    let mut store = ParamStore::new();
    let mut rng = seeded_rng(21);
    let m = Sequential::new()
        .push(Linear::new(&mut store, "a", 4, 3, Init::HeNormal, &mut rng))
        .push(BatchNorm1d::new(&mut store, "bn", 3));
    let x = rand(&[4, 4], 22);
    // A mean instead of one loss per example.
    let e = per_sample_grads(&m, &mut store, Mode::Eval, None, &x, |y, _| {
        y.square().mean()
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("one loss per example, shape [4], got []"), "{e}");
    let e = per_sample_grads(
        &m,
        &mut store,
        Mode::Eval,
        None,
        &Tensor::zeros([0, 4]),
        loss,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("non-empty batch axis"), "{e}");
    // Batch norm in training mode mixes the examples.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut rng = seeded_rng(0);
        per_sample_grads(&m, &mut store, Mode::Train, Some(&mut rng), &x, loss)
    }));
    let msg = r.err().unwrap();
    let msg = msg.downcast_ref::<String>().unwrap();
    assert!(
        msg.contains("per-example gradients are not defined"),
        "{msg}"
    );
}

//! Gradient checks (f64, first and second order) of every layer, activation, loss and
//! regularizer, with respect to its input and to each of its parameters.

use std::cell::RefCell;

use tapegrad_core::gradcheck::{gradcheck, gradgradcheck, GradcheckConfig};
use tapegrad_core::{seeded_rng, Graph, ParamKey, ParamStore, Tensor, Var};
use tapegrad_nn::*;

/// Pins a closure to the higher-ranked signature `gradcheck` expects.
fn func<F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>>(f: F) -> F {
    f
}

fn rand(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, lo, hi, &mut seeded_rng(seed))
}

/// gradcheck + gradgradcheck of `m` with respect to `x` and every trainable parameter, in
/// `mode`; random layers see the same seeded draws at every evaluation.
/// [`check_module`] in training mode.
fn check_training(name: &str, store: ParamStore<f64>, m: &dyn Module<f64>, x: Tensor<f64>) {
    check_module(name, store, m, x, Mode::Train);
}

fn check_module(
    name: &str,
    store: ParamStore<f64>,
    m: &dyn Module<f64>,
    x: Tensor<f64>,
    mode: Mode,
) {
    let keys: Vec<ParamKey> = m.trainable(&store);
    let mut inputs = vec![x];
    inputs.extend(keys.iter().map(|&k| store.value(k).clone()));
    let store = RefCell::new(store);
    let f = func(|g, v| {
        let mut s = store.borrow_mut();
        let mut rng = seeded_rng(77);
        let mut fwd = Forward::new(g, &mut s, mode, Some(&mut rng));
        for (k, p) in keys.iter().zip(&v[1..]) {
            fwd = fwd.bind(*k, *p);
        }
        m.forward(&mut fwd, v[0])
    });
    let cfg = GradcheckConfig::default();
    if let Err(e) = gradcheck(f, &inputs, &cfg) {
        panic!("{name}: {e}");
    }
    if let Err(e) = gradgradcheck(f, &inputs, &cfg) {
        panic!("{name}: {e}");
    }
}

#[test]
fn layers() {
    let mut rng = seeded_rng(1);
    let mut s = ParamStore::new();
    let lin = Linear::new(
        &mut s,
        "fc",
        3,
        4,
        Init::XavierNormal { gain: 1.0 },
        &mut rng,
    );
    check_training("linear", s, &lin, rand(&[2, 3], -1.0, 1.0, 2));
    let mut s = ParamStore::new();
    let lin = Linear::with_config(
        &mut s,
        "fc",
        3,
        2,
        LinearConfig::default().with_bias(false),
        &mut rng,
    );
    check_training("linear_1d_no_bias", s, &lin, rand(&[3], -1.0, 1.0, 3));
    let mut s = ParamStore::new();
    let lin = Linear::new(&mut s, "fc", 3, 2, Init::HeUniform, &mut rng);
    check_training("linear_batched", s, &lin, rand(&[2, 2, 3], -1.0, 1.0, 4));
    let mut s = ParamStore::new();
    let conv = Conv2d::new(
        &mut s,
        "c",
        2,
        4,
        Conv2dConfig::new(3)
            .with_padding(1)
            .with_stride(2)
            .with_groups(2),
        &mut rng,
    );
    check_training("conv2d", s, &conv, rand(&[2, 2, 5, 4], -1.0, 1.0, 5));
    let distinct = Tensor::from_fn([1, 2, 4, 4], |i| ((i * 37) % 32) as f64 / 8.0 - 2.0);
    check_module(
        "max_pool2d",
        ParamStore::new(),
        &MaxPool2d::new(2),
        distinct.clone(),
        Mode::Train,
    );
    check_module(
        "avg_pool2d",
        ParamStore::new(),
        &AvgPool2d::new(2),
        distinct.clone(),
        Mode::Train,
    );
    check_module(
        "flatten",
        ParamStore::new(),
        &Flatten::default(),
        distinct,
        Mode::Train,
    );
    let mut s = ParamStore::new();
    let emb = Embedding::new(&mut s, "emb", 5, 3, &mut rng);
    let keys = Module::<f64>::params(&emb);
    let store = RefCell::new(s);
    let idx = Tensor::from_vec(vec![4usize, 0, 4, 2], [2, 2]);
    let f = func(|g, v| {
        let s = store.borrow();
        let mut fwd = Forward::eval(g, &s).bind(keys[0], v[0]);
        emb.lookup(&mut fwd, &idx).tanh()
    });
    let w = store.borrow().value(keys[0]).clone();
    gradcheck(f, std::slice::from_ref(&w), &GradcheckConfig::default()).unwrap();
    gradgradcheck(f, &[w], &GradcheckConfig::default()).unwrap();
}

#[test]
fn normalisation_and_dropout() {
    let x = rand(&[4, 3], -2.0, 2.0, 10);
    for affine in [true, false] {
        let mut s = ParamStore::new();
        let bn = BatchNorm::with_config_1d(
            &mut s,
            "bn",
            3,
            BatchNormConfig::default().with_affine(affine),
        );
        if affine {
            let (w, b) = bn.affine_params().unwrap();
            *s.value_mut(w) = rand(&[3], 0.5, 1.5, 11);
            *s.value_mut(b) = rand(&[3], -0.5, 0.5, 12);
        }
        check_training("batchnorm1d_train", s, &bn, x.clone());
    }
    let mut s = ParamStore::new();
    let bn = BatchNorm::new_1d(&mut s, "bn", 3);
    let (rm, rv) = bn.running_stats().unwrap();
    *s.value_mut(rm) = rand(&[3], -0.5, 0.5, 13);
    *s.value_mut(rv) = rand(&[3], 0.5, 1.5, 14);
    check_module("batchnorm1d_eval", s, &bn, x.clone(), Mode::Eval);
    let mut s = ParamStore::new();
    let bn = BatchNorm::new_1d(&mut s, "bn", 2);
    check_training("batchnorm1d_3d", s, &bn, rand(&[2, 2, 3], -2.0, 2.0, 15));
    let mut s = ParamStore::new();
    let bn = BatchNorm::new_2d(&mut s, "bn", 2);
    check_training("batchnorm2d", s, &bn, rand(&[2, 2, 2, 3], -2.0, 2.0, 16));
    let mut s = ParamStore::new();
    let ln = LayerNorm::new(&mut s, "ln", &[2, 3]);
    *s.value_mut(s.key("ln.weight").unwrap()) = rand(&[2, 3], 0.5, 1.5, 17);
    check_training("layernorm", s, &ln, rand(&[2, 2, 3], -2.0, 2.0, 18));
    check_module(
        "dropout_train",
        ParamStore::new(),
        &Dropout::new(0.3),
        x.clone(),
        Mode::Train,
    );
    check_module(
        "dropout_eval",
        ParamStore::new(),
        &Dropout::new(0.3),
        x,
        Mode::Eval,
    );
}

#[test]
fn activations() {
    // Inputs kept 0.05 away from every kink.
    let x = rand(&[2, 3, 2], 0.05, 2.0, 20).mul(&Tensor::from_fn([2, 3, 2], |i| {
        if i % 3 == 0 {
            -1.0
        } else {
            1.0
        }
    }));
    let cases: Vec<(&str, Box<dyn Module<f64>>)> = vec![
        ("relu", Box::new(Relu)),
        ("sigmoid", Box::new(Sigmoid)),
        ("tanh", Box::new(Tanh)),
        ("leaky_relu", Box::new(LeakyRelu(0.2))),
        ("elu", Box::new(Elu(0.7))),
        ("selu", Box::new(Selu)),
        ("gelu", Box::new(Gelu::default())),
        (
            "gelu_tanh",
            Box::new(Gelu {
                tanh_approximation: true,
            }),
        ),
        ("silu", Box::new(Silu)),
        (
            "softplus",
            Box::new(Softplus {
                beta: 2.0,
                threshold: 20.0,
            }),
        ),
        ("softmax", Box::new(Softmax(1))),
        ("log_softmax", Box::new(LogSoftmax(-1))),
        ("rrelu_eval", Box::new(RRelu::default())),
    ];
    for (name, m) in &cases {
        check_module(name, ParamStore::new(), m.as_ref(), x.clone(), Mode::Eval);
    }
    check_module(
        "rrelu_train",
        ParamStore::new(),
        &RRelu::default(),
        x.clone(),
        Mode::Train,
    );
    for channels in [1, 3] {
        let mut s = ParamStore::new();
        let p = PRelu::new(&mut s, "p", channels, 0.25);
        *s.value_mut(p.weight()) = rand(&[channels], 0.1, 0.4, 21);
        check_training("prelu", s, &p, x.clone());
    }
}

/// gradcheck + gradgradcheck of a loss with respect to the given inputs.
fn check_loss(
    name: &str,
    inputs: &[Tensor<f64>],
    f: impl for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
) {
    let cfg = GradcheckConfig::default();
    gradcheck(&f, inputs, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
    gradgradcheck(&f, inputs, &cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
}

#[test]
fn losses() {
    let x = rand(&[3, 4], -2.0, 2.0, 30);
    // Targets 0.1 away from the inputs (the kinks of L1, Huber, smooth-L1 at d = 0 and at β).
    let y = x.add(&Tensor::from_fn([3, 4], |i| [0.3, -0.6, 1.4, -2.2][i % 4]));
    let t = Tensor::from_vec(vec![2usize, 0, 3], [3]);
    for r in [
        Reduction::Mean,
        Reduction::Sum,
        Reduction::BatchMean,
        Reduction::None,
    ] {
        check_loss("mse", &[x.clone(), y.clone()], move |_, v| {
            mse_loss(v[0], v[1], r)
        });
        check_loss("l1", &[x.clone(), y.clone()], move |_, v| {
            l1_loss(v[0], v[1], r)
        });
        check_loss("smooth_l1", &[x.clone(), y.clone()], move |_, v| {
            smooth_l1_loss(v[0], v[1], 0.8, r)
        });
        check_loss("huber", &[x.clone(), y.clone()], move |_, v| {
            huber_loss(v[0], v[1], 0.8, r)
        });
    }
    let w = Tensor::from_vec(vec![1.0, 2.0, 0.5, 1.5], [4]);
    let cfgs = [
        CrossEntropyConfig::default(),
        CrossEntropyConfig::default().with_label_smoothing(0.2),
        CrossEntropyConfig::default().with_weight(w.clone()),
        CrossEntropyConfig::default()
            .with_weight(w.clone())
            .with_label_smoothing(0.1)
            .with_reduction(Reduction::Sum),
        CrossEntropyConfig::default().with_reduction(Reduction::None),
    ];
    for cfg in cfgs {
        let t = t.clone();
        check_loss("cross_entropy", std::slice::from_ref(&x), move |_, v| {
            cross_entropy_with(v[0], &t, &cfg)
        });
    }
    let t2 = t.clone();
    check_loss("nll", std::slice::from_ref(&x), move |_, v| {
        nll_loss(v[0].log_softmax(1), &t2, Some(&w), Reduction::Mean)
    });
    // Class axis 1 of a [N, C, L] input.
    let t3 = Tensor::from_vec(vec![0usize, 2, 1, 1], [2, 2]);
    check_loss(
        "cross_entropy_3d",
        &[rand(&[2, 3, 2], -2.0, 2.0, 31)],
        move |_, v| cross_entropy(v[0], &t3, Reduction::Mean),
    );
    let p = rand(&[3, 4], 0.1, 1.0, 32);
    check_loss("cross_entropy_soft", &[x.clone(), p.clone()], |_, v| {
        cross_entropy_soft(v[0], v[1].softmax(1), Reduction::Mean)
    });
    let yb = rand(&[3, 4], 0.0, 1.0, 33);
    let pw = Tensor::from_vec(vec![0.5, 1.0, 2.0, 3.0], [4]);
    check_loss("bce_with_logits", &[x.clone(), yb.clone()], move |_, v| {
        binary_cross_entropy_with_logits(v[0], v[1], Some(&pw), Reduction::Mean)
    });
    check_loss("bce", &[rand(&[3, 4], 0.05, 0.95, 34), yb], |_, v| {
        binary_cross_entropy(v[0], v[1], Reduction::Sum)
    });
    check_loss("kl_div", &[x.clone(), p.clone()], |_, v| {
        kl_div(
            v[0].log_softmax(1),
            v[1].softmax(1),
            false,
            Reduction::BatchMean,
        )
    });
    check_loss("kl_div_log_target", &[x, p], |_, v| {
        kl_div(
            v[0].log_softmax(1),
            v[1].log_softmax(1),
            true,
            Reduction::Mean,
        )
    });
}

#[test]
fn regularizers() {
    let mut rng = seeded_rng(40);
    let mut s = ParamStore::new();
    let lin = Linear::new(&mut s, "fc", 3, 2, Init::HeNormal, &mut rng);
    let w = lin.weight();
    *s.value_mut(w) = rand(&[2, 3], 0.1, 1.0, 41).mul(&Tensor::from_fn([2, 3], |i| {
        if i % 2 == 0 {
            1.0
        } else {
            -1.0
        }
    }));
    assert_eq!(lin.weights(&s), vec![w]);
    let store = RefCell::new(s);
    let value = store.borrow().value(w).clone();
    for kind in 0..3 {
        let f = func(|g, v| {
            let st = store.borrow();
            let fwd = Forward::eval(g, &st).bind(w, v[0]);
            match kind {
                0 => l1_penalty(&fwd, &[w], 0.3),
                1 => l2_penalty(&fwd, &[w], 0.3),
                _ => elastic_net_penalty(&fwd, &[w], 0.3, 0.4),
            }
        });
        gradcheck(f, std::slice::from_ref(&value), &GradcheckConfig::default()).unwrap();
        gradgradcheck(f, std::slice::from_ref(&value), &GradcheckConfig::default()).unwrap();
    }
    // Values against the formulas.
    let g = Graph::new();
    let st = store.borrow();
    let fwd = Forward::eval(&g, &st);
    let l1: f64 = value.as_slice().iter().map(|v| v.abs()).sum();
    let l2: f64 = value.as_slice().iter().map(|v| v * v).sum();
    assert!((l1_penalty(&fwd, &[w], 0.3).item() - 0.3 * l1).abs() < 1e-12);
    assert!((l2_penalty(&fwd, &[w], 0.3).item() - 0.3 * l2).abs() < 1e-12);
    assert!(
        (elastic_net_penalty(&fwd, &[w], 0.3, 0.4).item() - 0.3 * (0.4 * l1 + 0.3 * l2)).abs()
            < 1e-12
    );
}

#[test]
fn losses_are_stable_for_huge_logits() {
    let g = Graph::<f32>::new();
    let x = g.leaf(Tensor::from_vec(
        vec![1e4, -1e4, 0.0, -1e4, 1e4, 3.0],
        [2, 3],
    ));
    let t = Tensor::from_vec(vec![1usize, 0], [2]);
    let ce = cross_entropy(x, &t, Reduction::Mean);
    assert!(
        ce.item().is_finite() && (ce.item() - 2e4).abs() < 1.0,
        "{}",
        ce.item()
    ); // −log p = 2·10⁴ per row
    assert!(ce.backward().wrt(x).all_finite());
    let y = g.constant(Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 1.0, 0.5], [2, 3]));
    let bce = binary_cross_entropy_with_logits(x, y, None, Reduction::Mean);
    assert!(bce.item().is_finite());
    let gx = bce.backward().wrt(x);
    assert!(gx.all_finite(), "{gx}");
    assert_eq!(gx.get(&[0, 0]), 0.0); // σ(1e4) − 1 = 0 in f32
    let ls = cross_entropy_with(
        x,
        &t,
        &CrossEntropyConfig::default().with_label_smoothing(0.1),
    );
    assert!(ls.item().is_finite() && ls.backward().wrt(x).all_finite());
}

/// One replica: sums across it are the values themselves.
struct Alone;

impl tapegrad_core::Collective for Alone {
    fn rank(&self) -> usize {
        0
    }
    fn size(&self) -> usize {
        1
    }
    fn sum_f32(&self, _: &mut [f32]) -> tapegrad_core::Result<()> {
        Ok(())
    }
    fn sum_f64(&self, _: &mut [f64]) -> tapegrad_core::Result<()> {
        Ok(())
    }
    fn broadcast(&self, _: &mut Vec<u8>, _: usize) -> tapegrad_core::Result<()> {
        Ok(())
    }
    fn all_gather(&self, b: &[u8]) -> tapegrad_core::Result<Vec<Vec<u8>>> {
        Ok(vec![b.to_vec()])
    }
    fn barrier(&self) -> tapegrad_core::Result<()> {
        Ok(())
    }
}

#[test]
fn synchronised_batchnorm() {
    // Its own composite path (two passes, each summed across the replicas), checked like
    // every layer; the equivalence across 2 real ranks is in crates/dist/tests/mpi.rs.
    let alone: std::rc::Rc<dyn tapegrad_core::Collective> = std::rc::Rc::new(Alone);
    let x = rand(&[2, 2, 2, 3], -2.0, 2.0, 16);
    let mut s = ParamStore::new();
    let bn = BatchNorm::new_2d(&mut s, "bn", 2).with_sync(alone.clone());
    let (w, b) = bn.affine_params().unwrap();
    *s.value_mut(w) = rand(&[2], 0.5, 1.5, 11);
    *s.value_mut(b) = rand(&[2], -0.5, 0.5, 12);
    check_training("sync_batchnorm2d", s.clone(), &bn, x.clone());

    // On one replica it is batch normalisation: output, gradients, running statistics.
    let mut s2 = ParamStore::new();
    let plain = BatchNorm::new_2d(&mut s2, "bn", 2);
    let (w2, b2) = plain.affine_params().unwrap();
    *s2.value_mut(w2) = s.value(w).clone();
    *s2.value_mut(b2) = s.value(b).clone();
    let run = |m: &BatchNorm, store: &ParamStore<f64>| {
        let mut store = store.clone();
        let g = Graph::new();
        let xv = g.leaf(x.clone());
        let mut rng = seeded_rng(0);
        let y = {
            let mut f = Forward::new(&g, &mut store, Mode::Train, Some(&mut rng));
            m.forward(&mut f, xv)
        };
        let grads = (y * y.sin()).sum().backward();
        let (rm, rv) = m.running_stats().unwrap();
        (
            y.value().to_vec(),
            grads.wrt(xv).to_vec(),
            store.value(rm).to_vec(),
            store.value(rv).to_vec(),
        )
    };
    let (a, b) = (run(&bn, &s), run(&plain, &s2));
    let close = |u: &[f64], v: &[f64]| u.iter().zip(v).all(|(p, q)| (p - q).abs() < 1e-12);
    assert!(close(&a.0, &b.0) && close(&a.1, &b.1), "{a:?}\n{b:?}");
    assert!(close(&a.2, &b.2) && close(&a.3, &b.3), "{a:?}\n{b:?}");
}

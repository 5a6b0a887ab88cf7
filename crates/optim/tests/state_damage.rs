//! Optimizer state is loaded strictly: a damaged, crafted or foreign entry is an error that
//! names the file and the entry — never a panic, never a state silently reset or changed.

use tapegrad_core::checkpoint::{Checkpoint, Entry};
use tapegrad_core::{Gradients, Graph, ParamKey, ParamStore, Tensor};
use tapegrad_optim::*;

fn loss(store: &ParamStore<f64>, w: ParamKey, b: ParamKey) -> (f64, Gradients<f64>) {
    let g = Graph::new();
    let y = (g.param(store, w).sum() * g.param(store, b)).square().sum();
    (y.item(), y.backward())
}

/// A store with two parameters and the checkpoint of an Adam state after 3 steps.
fn adam_checkpoint() -> (ParamStore<f64>, Checkpoint) {
    let mut store = ParamStore::new();
    let w = store.insert(
        "fc.weight",
        Tensor::from_vec(vec![0.5, -1.0, 2.0, 0.25], [2, 2]),
    );
    let b = store.insert("fc.bias", Tensor::from_vec(vec![0.1, 0.2], [2]));
    let mut opt = Adam::new(AdamConfig::default());
    for _ in 0..3 {
        let (_, g) = loss(&store, w, b);
        opt.step(&mut store, &g, 1e-2);
    }
    let mut ck = Checkpoint::new();
    opt.save_state(&store, &mut ck, "optimizer.");
    // Through bytes, so that the errors name a file.
    let ck = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), "run.safetensors").unwrap();
    (store, ck)
}

/// `ck` with the entry `from` renamed to `to` (or removed when `to` is `None`) and the entry
/// `to` set to `value` when given — a checkpoint as a damaged or crafted file would decode.
fn edited(ck: &Checkpoint, from: &str, to: Option<&str>, value: Option<Entry>) -> Checkpoint {
    let mut out = Checkpoint::new();
    for name in ck.names() {
        let e = ck.get(name).unwrap().clone();
        if name == from {
            if let Some(t) = to {
                out.insert(t, value.clone().unwrap_or(e));
            }
        } else {
            out.insert(name, e);
        }
    }
    out.set_meta(
        "optimizer.optimizer",
        ck.meta("optimizer.optimizer").unwrap(),
    );
    Checkpoint::from_bytes(&out.to_bytes().unwrap(), "run.safetensors").unwrap()
}

#[track_caller]
fn refused(ck: &Checkpoint, store: &ParamStore<f64>, want: &str) {
    let mut opt = Adam::new(AdamConfig::default());
    let e = opt
        .load_state(store, ck, "optimizer.")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("run.safetensors: "), "{e}");
    assert!(e.contains(want), "{e} (expected {want:?})");
}

#[test]
fn a_whole_state_loads_and_continues() {
    let (store, ck) = adam_checkpoint();
    let mut opt = Adam::new(AdamConfig::default());
    opt.load_state(&store, &ck, "optimizer.").unwrap();
    assert_eq!(opt.state(store.key("fc.bias").unwrap()).unwrap().step, 3);
}

#[test]
fn renamed_and_retyped_entries_are_refused() {
    let (store, ck) = adam_checkpoint();
    let eb = "optimizer.exp_avg.fc.bias";
    // The flip the issue found: a name outside the prefix leaves `exp_avg` missing.
    refused(
        &edited(&ck, eb, Some("optimizerzexp_avg.fc.bias"), None),
        &store,
        "`optimizer.exp_avg.fc.bias` is missing",
    );
    refused(
        &edited(&ck, eb, Some("optimizer.exp_avg.fc.bia"), None),
        &store,
        "no parameter `fc.bia`",
    );
    refused(
        &edited(&ck, eb, Some("optimizer.exp_avgx.fc.bias"), None),
        &store,
        "is not part of Adam state",
    );
    refused(
        &edited(
            &ck,
            "optimizer.step.fc.bias",
            Some("optimizer.step.fc.biat"),
            None,
        ),
        &store,
        "no parameter",
    );
    refused(
        &edited(
            &ck,
            "optimizer.step.fc.bias",
            Some("optimizer.stepz.fc.bias"),
            None,
        ),
        &store,
        "is not part of Adam state",
    );
    refused(
        &edited(&ck, "optimizer.step.fc.bias", None, None),
        &store,
        "`optimizer.step.fc.bias` is missing",
    );
    refused(
        &edited(&ck, "optimizer.exp_avg_sq.fc.weight", None, None),
        &store,
        "is missing",
    );
    // The step's dtype changed from I64 to F64; shapes a count cannot have.
    let step = "optimizer.step.fc.bias";
    refused(
        &edited(&ck, step, Some(step), Some(Entry::F64(Tensor::scalar(3.0)))),
        &store,
        "must be a 0-d i64 count",
    );
    refused(
        &edited(
            &ck,
            step,
            Some(step),
            Some(Entry::I64(Tensor::from_vec(vec![3, 3], [2]))),
        ),
        &store,
        "shape [2]",
    );
    refused(
        &edited(
            &ck,
            step,
            Some(step),
            Some(Entry::I64(Tensor::from_vec(vec![], [0]))),
        ),
        &store,
        "shape [0]",
    );
    // A buffer of another dtype or shape.
    refused(
        &edited(&ck, eb, Some(eb), Some(Entry::F32(Tensor::zeros([2])))),
        &store,
        "holds f32 values",
    );
    refused(
        &edited(&ck, eb, Some(eb), Some(Entry::F64(Tensor::zeros([3])))),
        &store,
        "has shape [3]",
    );
}

#[test]
fn invalid_values_are_refused() {
    let (store, ck) = adam_checkpoint();
    let step = "optimizer.step.fc.bias";
    refused(
        &edited(&ck, step, Some(step), Some(Entry::I64(Tensor::scalar(-4)))),
        &store,
        "is -4",
    );
    refused(
        &edited(&ck, step, Some(step), Some(Entry::I64(Tensor::scalar(0)))),
        &store,
        "is 0",
    );
    let sq = "optimizer.exp_avg_sq.fc.bias";
    refused(
        &edited(
            &ck,
            sq,
            Some(sq),
            Some(Entry::F64(Tensor::from_vec(vec![1e-6, -1e-6], [2]))),
        ),
        &store,
        "holds -0.000001",
    );
    let m = "optimizer.exp_avg.fc.weight";
    refused(
        &edited(
            &ck,
            m,
            Some(m),
            Some(Entry::F64(Tensor::from_vec(
                vec![0.0, f64::NAN, 0.0, 0.0],
                [2, 2],
            ))),
        ),
        &store,
        "holds NaN",
    );
}

#[test]
fn a_refused_load_leaves_the_state_as_it_was() {
    let (store, ck) = adam_checkpoint();
    let mut opt = Adam::new(AdamConfig::default());
    opt.load_state(&store, &ck, "optimizer.").unwrap();
    let before = opt.state(store.key("fc.bias").unwrap()).cloned();
    let bad = edited(&ck, "optimizer.step.fc.weight", None, None);
    assert!(opt.load_state(&store, &bad, "optimizer.").is_err());
    assert_eq!(opt.state(store.key("fc.bias").unwrap()).cloned(), before);
}

#[test]
fn sgd_keeps_a_momentum_buffer_exactly_when_it_has_momentum() {
    let mut store = ParamStore::new();
    let w = store.insert("w", Tensor::from_vec(vec![1.0, 2.0], [2]));
    let b = store.insert("b", Tensor::from_vec(vec![0.5, 0.5], [2]));
    let mut with = Sgd::new(SgdConfig::default().with_momentum(0.9));
    let (_, g) = loss(&store, w, b);
    with.step(&mut store, &g, 0.1);
    let mut ck = Checkpoint::new();
    with.save_state(&store, &mut ck, "o.");
    let e = Sgd::new(SgdConfig::default())
        .load_state(&store, &ck, "o.")
        .unwrap_err();
    assert!(e.to_string().contains("keeps no momentum_buffer"), "{e}");
    let mut plain = Sgd::new(SgdConfig::default());
    plain.step(&mut store, &g, 0.1);
    let mut ck = Checkpoint::new();
    plain.save_state(&store, &mut ck, "o.");
    let e = Sgd::new(SgdConfig::default().with_momentum(0.9))
        .load_state(&store, &ck, "o.")
        .unwrap_err();
    assert!(
        e.to_string().contains("`o.momentum_buffer.") && e.to_string().ends_with("` is missing"),
        "{e}"
    );
}

#[test]
fn adam_keeps_the_amsgrad_maximum_exactly_with_amsgrad() {
    // As PyTorch's state: `max_exp_avg_sq` exists only when `amsgrad=True`.
    let (store, ck) = adam_checkpoint();
    assert!(
        ck.names().all(|n| !n.contains("max_exp_avg_sq")),
        "plain Adam keeps no maximum"
    );
    let e = Adam::new(AdamConfig::default().with_amsgrad(true))
        .load_state(&store, &ck, "optimizer.")
        .unwrap_err();
    assert!(
        e.to_string().contains("max_exp_avg_sq") && e.to_string().ends_with("` is missing"),
        "{e}"
    );
    let mut store = store;
    let w = store.key("fc.weight").unwrap();
    let b = store.key("fc.bias").unwrap();
    let mut ams = AdamW::new(AdamConfig::adamw().with_amsgrad(true));
    let (_, g) = loss(&store, w, b);
    ams.step(&mut store, &g, 1e-2);
    let mut ck = Checkpoint::new();
    ams.save_state(&store, &mut ck, "o.");
    assert_eq!(
        ck.names().filter(|n| n.contains("max_exp_avg_sq")).count(),
        2
    );
    let e = AdamW::new(AdamConfig::adamw())
        .load_state(&store, &ck, "o.")
        .unwrap_err();
    assert!(e.to_string().contains("keeps no max_exp_avg_sq"), "{e}");
}

#[test]
fn lbfgs_state_is_checked_against_its_parameters_and_history() {
    let mut store = ParamStore::new();
    let p = store.insert("p", Tensor::from_vec(vec![-1.5, 2.0], [2]));
    let cfg = LbfgsConfig::default().with_history_size(3);
    let mut opt = Lbfgs::new(vec![p], cfg);
    let f = |s: &ParamStore<f64>| {
        let g = Graph::new();
        let v = g.param(s, p);
        let y = (v.square() * &Tensor::from_vec(vec![1.0, 10.0], [2])).sum();
        (y.item(), y.backward())
    };
    opt.step(&mut store, f);
    let mut ck = Checkpoint::new();
    opt.save_state(&mut ck, "lbfgs.");
    let ck = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), "lbfgs.safetensors").unwrap();
    Lbfgs::new(vec![p], cfg)
        .load_state(&store, &ck, "lbfgs.")
        .unwrap();
    let with = |name: &str, e: Option<Entry>| {
        let mut out = Checkpoint::new();
        for n in ck.names() {
            if n != name {
                out.insert(n, ck.get(n).unwrap().clone());
            }
        }
        if let Some(e) = e {
            out.insert(name, e);
        }
        out.set_meta("lbfgs.optimizer", "LBFGS");
        out
    };
    let cases = [
        with("lbfgs.n_iter", Some(Entry::I64(Tensor::scalar(-1)))),
        with(
            "lbfgs.n_iter",
            Some(Entry::I64(Tensor::from_vec(vec![1, 2], [2]))),
        ),
        with("lbfgs.d", Some(Entry::F64(Tensor::zeros([3])))),
        with("lbfgs.t", Some(Entry::F64(Tensor::zeros([0])))),
        with("lbfgs.history", Some(Entry::I64(Tensor::scalar(4)))),
        with("lbfgs.old_dirs.9", Some(Entry::F64(Tensor::zeros([2])))),
        with("lbfgs.prev_loss", Some(Entry::I64(Tensor::scalar(1)))),
        with("lbfgs.h_diag", None),
    ];
    for (i, bad) in cases.iter().enumerate() {
        let r = Lbfgs::new(vec![p], cfg).load_state(&store, bad, "lbfgs.");
        assert!(r.is_err(), "case {i} loaded");
    }
    let mut small = ParamStore::<f64>::new();
    let q = small.insert("q", Tensor::zeros([3]));
    assert!(Lbfgs::new(vec![q], cfg)
        .load_state(&small, &ck, "lbfgs.")
        .is_err());
}

#[test]
fn plateau_state_is_checked() {
    let mut ck = Checkpoint::new();
    let mut p = ReduceOnPlateau::new(0.1, PlateauMode::Min);
    p.step(1.0);
    p.save_state(&mut ck, "s.");
    let mut q = ReduceOnPlateau::new(0.1, PlateauMode::Min);
    q.load_state(&ck, "s.").unwrap();
    for bad in ["NaN inf 0 0 1", "0.1 1 0 0", "0.1 1 -1 0 1", "-1 1 0 0 1"] {
        let mut c = Checkpoint::new();
        c.set_meta("s.plateau", bad);
        assert!(q.load_state(&c, "s.").is_err(), "{bad}");
    }
}

//! Closed forms, checkpoint resume, groups, frozen parameters, clipping errors, schedules.

use tapegrad_core::checkpoint::Checkpoint;
use tapegrad_core::{Error, Gradients, Graph, ParamKey, ParamStore, Tensor};
use tapegrad_optim::*;

/// `½(x − c)ᵀ A (x − c)` with A = diag(1, 10): its minimum is c.
fn quadratic(store: &ParamStore<f64>, x: ParamKey) -> (f64, Gradients<f64>) {
    let g = Graph::new();
    let d = g.param(store, x) - &Tensor::from_vec(vec![3.0, -2.0], [2]);
    let f = (d.square() * &Tensor::from_vec(vec![0.5, 5.0], [2])).sum();
    (f.item(), f.backward())
}

fn rosenbrock(store: &ParamStore<f64>, p: ParamKey) -> (f64, Gradients<f64>) {
    let g = Graph::new();
    let v = g.param(store, p);
    let (x, y) = (v.select(0, 0), v.select(0, 1));
    let f = x.rsub_scalar(1.0).square() + (y - x.square()).square() * 100.0;
    (f.item(), f.backward())
}

#[test]
fn sgd_on_a_quadratic_converges_to_its_minimum() {
    let mut store = ParamStore::new();
    let x = store.insert("x", Tensor::zeros([2]));
    let mut opt = Sgd::new(SgdConfig::default().with_momentum(0.9).with_nesterov(true));
    for _ in 0..300 {
        let (_, g) = quadratic(&store, x);
        opt.step(&mut store, &g, 0.05);
    }
    let v = store.value(x);
    assert!(
        (v.get(&[0]) - 3.0).abs() < 1e-8 && (v.get(&[1]) + 2.0).abs() < 1e-8,
        "{v}"
    );
    // Plain SGD: the error contracts by |1 − lr·λ| per step, exactly.
    let mut store = ParamStore::new();
    let x = store.insert("x", Tensor::zeros([2]));
    let mut opt = Sgd::new(SgdConfig::default());
    let (_, g) = quadratic(&store, x);
    opt.step(&mut store, &g, 0.1);
    // x₀ moves lr·λ₀·3 = 0.3 towards 3; x₁ has lr·λ₁ = 1 and lands on −2 in one step.
    let v = store.value(x).to_vec();
    assert!((v[0] - 0.3).abs() < 1e-15 && v[1] == -2.0, "{v:?}");
}

#[test]
fn lbfgs_minimises_rosenbrock_to_1e_8() {
    for ls in [LineSearch::None, LineSearch::StrongWolfe] {
        let mut store = ParamStore::new();
        let p = store.insert("p", Tensor::from_vec(vec![-1.5, 2.0], [2]));
        let mut opt = Lbfgs::new(
            vec![p],
            LbfgsConfig::default()
                .with_history_size(10)
                .with_line_search(ls),
        );
        for _ in 0..10 {
            opt.step(&mut store, |s| rosenbrock(s, p));
        }
        let (loss, _) = rosenbrock(&store, p);
        assert!(loss < 1e-8, "{ls:?}: {loss}");
        let v = store.value(p);
        assert!((v.get(&[0]) - 1.0).abs() < 1e-4 && (v.get(&[1]) - 1.0).abs() < 1e-4);
    }
}

/// A name and a way to build a fresh optimizer.
type Maker = (&'static str, Box<dyn Fn() -> Box<dyn Optimizer<f64>>>);

fn all_optimizers() -> Vec<Maker> {
    vec![
        (
            "sgd",
            Box::new(|| {
                Box::new(Sgd::new(
                    SgdConfig::default()
                        .with_momentum(0.9)
                        .with_weight_decay(0.01),
                ))
            }),
        ),
        (
            "adagrad",
            Box::new(|| Box::new(Adagrad::new(AdagradConfig::default().with_lr_decay(0.01)))),
        ),
        (
            "rmsprop",
            Box::new(|| {
                Box::new(RmsProp::new(
                    RmsPropConfig::default()
                        .with_centered(true)
                        .with_momentum(0.5),
                ))
            }),
        ),
        (
            "adam",
            Box::new(|| Box::new(Adam::new(AdamConfig::default().with_amsgrad(true)))),
        ),
        (
            "adamw",
            Box::new(|| Box::new(AdamW::new(AdamConfig::adamw()))),
        ),
        (
            "nadam",
            Box::new(|| Box::new(NAdam::new(NAdamConfig::default()))),
        ),
        (
            "adadelta",
            Box::new(|| Box::new(Adadelta::new(AdadeltaConfig::default()))),
        ),
    ]
}

/// `steps` steps of `opt` on the Rosenbrock function of `p`.
fn descend(
    opt: &mut dyn Optimizer<f64>,
    store: &mut ParamStore<f64>,
    p: ParamKey,
    steps: usize,
    lr: f64,
) {
    for _ in 0..steps {
        let (_, g) = rosenbrock(store, p);
        opt.step(store, &g, lr);
    }
}

#[test]
fn resuming_from_a_checkpoint_continues_bit_for_bit() {
    let dir = std::env::temp_dir().join(format!("tapegrad-optim-resume-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, make) in all_optimizers() {
        let lr = if name == "adadelta" { 1.0 } else { 1e-3 };
        let p0 = Tensor::from_vec(vec![-1.5, 2.0], [2]);
        // Uninterrupted: 50 steps.
        let mut store = ParamStore::new();
        let p = store.insert("p", p0.clone());
        let mut opt = make();
        descend(&mut *opt, &mut store, p, 50, lr);
        let straight = store.value(p).clone();
        // 25 steps, save parameters and state to a file, a fresh store and optimizer, 25 more.
        let mut store = ParamStore::new();
        let p = store.insert("p", p0.clone());
        let mut opt = make();
        descend(&mut *opt, &mut store, p, 25, lr);
        let path = dir.join(format!("{name}.safetensors"));
        let mut ck = Checkpoint::new();
        ck.add_store(&store);
        opt.save_state(&store, &mut ck, "optimizer.");
        ck.save(&path).unwrap();
        drop((store, opt));
        let mut store = ParamStore::new();
        let p = store.insert("p", Tensor::zeros([2]));
        let mut opt = make();
        let ck = Checkpoint::load(&path).unwrap();
        ck.restore_store(
            &mut store,
            &tapegrad_core::checkpoint::LoadOptions::partial(),
        )
        .unwrap();
        opt.load_state(&store, &ck, "optimizer.").unwrap();
        descend(&mut *opt, &mut store, p, 25, lr);
        assert_eq!(
            store.value(p).to_vec(),
            straight.to_vec(),
            "{name}: a resumed run differs"
        );
    }
    // L-BFGS too.
    let run = |split: bool| {
        let mut store = ParamStore::new();
        let p = store.insert("p", Tensor::from_vec(vec![-1.5, 2.0], [2]));
        let cfg = LbfgsConfig::default()
            .with_history_size(10)
            .with_line_search(LineSearch::StrongWolfe);
        let mut opt = Lbfgs::new(vec![p], cfg);
        opt.step(&mut store, |s| rosenbrock(s, p));
        if split {
            let mut ck = Checkpoint::new();
            ck.add_store(&store);
            opt.save_state(&mut ck, "lbfgs.");
            let bytes = ck.to_bytes().unwrap();
            let ck = Checkpoint::from_bytes(&bytes, "memory").unwrap();
            store = ParamStore::new();
            let p2 = store.insert("p", Tensor::zeros([2]));
            ck.restore_store(
                &mut store,
                &tapegrad_core::checkpoint::LoadOptions::partial(),
            )
            .unwrap();
            opt = Lbfgs::new(vec![p2], cfg);
            opt.load_state(&store, &ck, "lbfgs.").unwrap();
            opt.step(&mut store, |s| rosenbrock(s, p2));
            return store.value(p2).to_vec();
        }
        opt.step(&mut store, |s| rosenbrock(s, p));
        store.value(p).to_vec()
    };
    assert_eq!(run(true), run(false));
    // State from another optimizer is refused.
    let store = ParamStore::<f64>::new();
    let mut ck = Checkpoint::new();
    Adam::new(AdamConfig::default()).save_state(&store, &mut ck, "o.");
    let e = Sgd::new(SgdConfig::default())
        .load_state(&store, &ck, "o.")
        .unwrap_err();
    assert!(e.to_string().contains("holds Adam state, not SGD"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn groups_scale_the_rate_and_override_weight_decay() {
    let mut store = ParamStore::new();
    let a = store.insert("a", Tensor::from_vec(vec![1.0], [1]));
    let b = store.insert("b", Tensor::from_vec(vec![1.0], [1]));
    let frozen = store.insert("f", Tensor::from_vec(vec![1.0], [1]));
    store.freeze(frozen);
    let mut opt = Sgd::new(SgdConfig::default().with_weight_decay(0.5));
    opt.set_group(
        &[b],
        GroupOptions::default()
            .with_lr_scale(0.1)
            .with_weight_decay(0.0),
    );
    let g = Graph::new();
    let loss = (g.param(&store, a) + g.param(&store, b) + g.param(&store, frozen)).sum();
    let grads = loss.backward();
    opt.step(&mut store, &grads, 1.0);
    assert_eq!(store.value(a).item(), 1.0 - (1.0 + 0.5)); // g + wd·p
    assert_eq!(store.value(b).item(), 1.0 - 0.1); // scaled rate, no decay
    assert_eq!(store.value(frozen).item(), 1.0); // no gradient, no update
    assert!(opt.state(frozen).is_none());
}

#[test]
fn a_non_finite_gradient_norm_is_reported_not_spread() {
    let mut store = ParamStore::new();
    let a = store.insert("a", Tensor::from_vec(vec![1.0, -1.0], [2]));
    let g = Graph::new();
    let loss = (g.param(&store, a).sqrt()).sum(); // √(−1): NaN
    let mut grads = loss.backward();
    let before = grads.param(a).unwrap().clone();
    let e = clip_grad_norm(&mut grads, 1.0, NormType::L2).unwrap_err();
    assert!(matches!(e, Error::NonFinite { .. }), "{e}");
    assert_eq!(grads.param(a).unwrap().to_vec()[0], before.to_vec()[0]);
}

#[test]
fn warmup_sequential_and_plateau() {
    // The digits recipe: (s + 1)/warm, then cosine to 0 over the rest.
    let w = Warmup::new(10, Cosine::new(0.01, 90));
    assert!((w.lr(0) - 0.001).abs() < 1e-15 && (w.lr(9) - 0.01).abs() < 1e-15);
    assert!((w.lr(10) - 0.01).abs() < 1e-15 && w.lr(100).abs() < 1e-15);
    assert_eq!(Warmup::new(4, Constant(1.0)).from_zero().lr(0), 0.0);
    let s = SequentialLR::new(
        vec![
            Box::new(LinearLR::new(0.1, 0.1, 1.0, 5)),
            Box::new(StepDecay::new(0.1, 10, 0.5)),
        ],
        vec![5],
    );
    assert!(
        (s.lr(0) - 0.01).abs() < 1e-15
            && (s.lr(5) - 0.1).abs() < 1e-15
            && (s.lr(15) - 0.05).abs() < 1e-15
    );
    let f = FnSchedule(|t| 1.0 / (1 + t) as f64);
    assert_eq!(f.lr(3), 0.25);

    let mut p = ReduceOnPlateau::new(0.1, PlateauMode::Min)
        .with_patience(2)
        .with_factor(0.5)
        .with_cooldown(1);
    let lrs: Vec<f64> = [1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.94, 0.95, 0.96]
        .iter()
        .map(|&m| p.step(m))
        .collect();
    // best 0.9 at epoch 2; epochs 3, 4, 5 without improvement → halve after the third;
    // one cooldown epoch, then three more bad epochs → halve again.
    assert_eq!(lrs, vec![0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025]);
    let mut ck = Checkpoint::new();
    p.save_state(&mut ck, "sched.");
    let mut q = ReduceOnPlateau::new(0.1, PlateauMode::Min)
        .with_patience(2)
        .with_factor(0.5)
        .with_cooldown(1);
    q.load_state(&ck, "sched.").unwrap();
    assert_eq!(q, p);
    let mut max = ReduceOnPlateau::new(1.0, PlateauMode::Max)
        .with_patience(0)
        .with_min_lr(0.3);
    assert_eq!([0.5, 0.4, 0.3].map(|m| max.step(m)), [1.0, 0.3, 0.3]);
}

#[test]
fn one_cycle_drives_the_momentum() {
    let s = OneCycle::new(0.1, 100);
    let mut opt = Sgd::new(SgdConfig::default().with_momentum(0.9));
    let mut store = ParamStore::new();
    let x = store.insert("x", Tensor::zeros([2]));
    for t in 0..100 {
        opt.set_momentum(s.momentum(t));
        let (_, g) = quadratic(&store, x);
        opt.step(&mut store, &g, s.lr(t));
    }
    assert_eq!(opt.rule().momentum, s.momentum(99));
    assert!((s.momentum(29) - 0.85).abs() < 1e-12 && (s.lr(29) - 0.1).abs() < 1e-12);
    let three = OneCycle::new(0.1, 100).with_three_phase(true);
    assert!((three.lr(58) - 0.004).abs() < 1e-12, "{}", three.lr(58));
}

#[test]
fn every_config_field_has_a_builder() {
    let n = NAdamConfig::default()
        .with_betas(0.8, 0.99)
        .with_eps(1e-6)
        .with_weight_decay(0.1)
        .with_momentum_decay(0.01);
    assert_eq!(
        (n.betas, n.eps, n.weight_decay, n.momentum_decay),
        ((0.8, 0.99), 1e-6, 0.1, 0.01)
    );
    let d = AdadeltaConfig::default()
        .with_rho(0.5)
        .with_eps(1e-4)
        .with_weight_decay(0.2);
    assert_eq!((d.rho, d.eps, d.weight_decay), (0.5, 1e-4, 0.2));
    let l = LbfgsConfig::default()
        .with_tolerance_grad(1e-3)
        .with_tolerance_change(1e-4);
    assert_eq!((l.tolerance_grad, l.tolerance_change), (1e-3, 1e-4));
    assert_eq!(
        (
            LbfgsConfig::default().tolerance_grad,
            LbfgsConfig::default().tolerance_change
        ),
        (1e-7, 1e-9)
    );
}

//! Conformance with PyTorch's optimizers and schedulers (`tests/reference/`, PyTorch 2.15,
//! float64; see `tests/reference/README.md`):
//!
//! - every first-order trajectory (51 points, 51 losses) to 1e-10 relative;
//! - L-BFGS to the file's recommended tolerance per call (`null`: the run is chaotic at
//!   rounding level there, so only convergence is compared), iteration and evaluation
//!   counts exactly, and the strong-Wolfe run in full;
//! - gradient clipping (returned norm and clipped gradients);
//! - every schedule to 1e-12 absolute.

use serde_json::Value;
use tapegrad_core::{Graph, ParamStore, Tensor};
use tapegrad_optim::*;

use tapegrad_check::reference::tensor_f64;

const OPTIM: &str = include_str!("reference/optim.json");
const SCHEDULES: &str = include_str!("reference/schedules.json");

fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Rosenbrock at the store's `p`: value and gradients.
fn rosenbrock(
    store: &ParamStore<f64>,
    p: tapegrad_core::ParamKey,
) -> (f64, tapegrad_core::Gradients<f64>) {
    let g = Graph::new();
    let v = g.param(store, p);
    let (x, y) = (v.select(0, 0), v.select(0, 1));
    let f = x.rsub_scalar(1.0).square() + (y - x.square()).square() * 100.0;
    (f.item(), f.backward())
}

fn optimizer(name: &str, kw: &Value) -> Box<dyn Optimizer<f64>> {
    let f = |k: &str, d: f64| kw.get(k).and_then(Value::as_f64).unwrap_or(d);
    let b = |k: &str| kw.get(k).and_then(Value::as_bool).unwrap_or(false);
    match name {
        "SGD" | "SGD_momentum" | "SGD_nesterov" | "SGD_momentum_dampening_wd" => {
            Box::new(Sgd::new(
                SgdConfig::default()
                    .with_momentum(f("momentum", 0.0))
                    .with_dampening(f("dampening", 0.0))
                    .with_nesterov(b("nesterov"))
                    .with_weight_decay(f("weight_decay", 0.0)),
            ))
        }
        "Adagrad" => Box::new(Adagrad::new(AdagradConfig::default())),
        "RMSprop" | "RMSprop_centered_momentum" => Box::new(RmsProp::new(
            RmsPropConfig::default()
                .with_alpha(f("alpha", 0.99))
                .with_eps(f("eps", 1e-8))
                .with_centered(b("centered"))
                .with_momentum(f("momentum", 0.0)),
        )),
        "Adam" | "Adam_amsgrad" | "Adam_weight_decay" => Box::new(Adam::new(
            AdamConfig::default()
                .with_amsgrad(b("amsgrad"))
                .with_weight_decay(f("weight_decay", 0.0)),
        )),
        "AdamW" => Box::new(AdamW::new(
            AdamWConfig::default().with_weight_decay(f("weight_decay", 0.01)),
        )),
        "NAdam" => Box::new(NAdam::new(NAdamConfig::default())),
        "Adadelta" => Box::new(Adadelta::new(AdadeltaConfig::default())),
        other => panic!("no optimizer for {other}"),
    }
}

#[track_caller]
fn rel_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let num = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let den = want.iter().map(|v| v.abs()).fold(1.0, f64::max);
    assert!(
        num / den <= tol,
        "{what}: off by {:e} (tolerance {tol:e})\n got {got:?}\nwant {want:?}",
        num / den
    );
}

#[test]
fn first_order_trajectories_match_torch() {
    let doc: Value = serde_json::from_str(OPTIM).unwrap();
    let runs = doc["runs"].as_array().unwrap();
    let mut done = 0;
    for run in runs
        .iter()
        .filter(|r| !r["optimizer"].as_str().unwrap().starts_with("LBFGS"))
    {
        let name = run["optimizer"].as_str().unwrap();
        let kw = &run["kwargs"];
        let lr = kw["lr"].as_f64().unwrap();
        let mut store = ParamStore::<f64>::new();
        let p = store.insert("p", tensor_f64(&doc["problems"]["rosenbrock"]["p0"]));
        let mut opt = optimizer(name, kw);
        let params = run["params"].as_array().unwrap();
        let losses = nums(&run["losses"]);
        for k in 0..=50 {
            rel_close(
                &format!("{name} params[{k}]"),
                store.value(p).as_slice(),
                &nums(&params[k]),
                1e-10,
            );
            let (loss, grads) = rosenbrock(&store, p);
            rel_close(&format!("{name} losses[{k}]"), &[loss], &[losses[k]], 1e-10);
            if k < 50 {
                rel_close(
                    &format!("{name} grads[{k}]"),
                    grads.param(p).unwrap().as_slice(),
                    &nums(&run["grads"][k]),
                    1e-10,
                );
                opt.step(&mut store, &grads, lr);
            }
        }
        done += 1;
    }
    assert_eq!(done, 13);
}

#[test]
fn lbfgs_matches_torch_with_and_without_line_search() {
    let doc: Value = serde_json::from_str(OPTIM).unwrap();
    for run in doc["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["optimizer"].as_str().unwrap().starts_with("LBFGS"))
    {
        let name = run["optimizer"].as_str().unwrap();
        let kw = &run["kwargs"];
        let ls = if kw["line_search_fn"].is_null() {
            LineSearch::None
        } else {
            LineSearch::StrongWolfe
        };
        let cfg = LbfgsConfig::default()
            .with_lr(kw["lr"].as_f64().unwrap())
            .with_history_size(kw["history_size"].as_u64().unwrap() as usize)
            .with_max_iter(kw["max_iter"].as_u64().unwrap() as usize)
            .with_line_search(ls);
        let mut store = ParamStore::<f64>::new();
        let p = store.insert("p", tensor_f64(&doc["problems"]["rosenbrock"]["p0"]));
        let mut opt = Lbfgs::new(vec![p], cfg);
        let params = run["params"].as_array().unwrap();
        let tols = run["tolerance_recommended"].as_array().unwrap();
        let step_return = nums(&run["step_return"]);
        let n_iter = run["state_n_iter"].as_array().unwrap();
        let evals = run["state_func_evals"].as_array().unwrap();
        for k in 0..5 {
            let r = opt.step(&mut store, |s| rosenbrock(s, p));
            let Some(tol) = tols[k].as_f64() else {
                continue;
            };
            rel_close(
                &format!("{name} step_return[{k}]"),
                &[r],
                &[step_return[k]],
                tol.max(1e-10),
            );
            rel_close(
                &format!("{name} params[{}]", k + 1),
                store.value(p).as_slice(),
                &nums(&params[k + 1]),
                tol,
            );
            assert_eq!(
                opt.n_iter() as u64,
                n_iter[k].as_u64().unwrap(),
                "{name} n_iter after call {k}"
            );
            assert_eq!(
                opt.func_evals() as u64,
                evals[k].as_u64().unwrap(),
                "{name} func_evals after call {k}"
            );
        }
        // Both runs converge to the minimum (1, 1).
        let conv = tensor_f64(&run["converged_to"]);
        for _ in 0..20 {
            opt.step(&mut store, |s| rosenbrock(s, p));
        }
        let (loss, _) = rosenbrock(&store, p);
        assert!(loss < 1e-8, "{name}: final loss {loss}");
        rel_close(
            &format!("{name} converged"),
            store.value(p).as_slice(),
            conv.as_slice(),
            1e-4,
        );
    }
}

#[test]
fn clipping_matches_torch() {
    let doc: Value = serde_json::from_str(OPTIM).unwrap();
    for case in doc["clipping"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        // Gradients of three parameters: Σ ⟨p_k, g_k⟩ has gradient g_k.
        let before: Vec<Tensor<f64>> = case["grads_before"]
            .as_array()
            .unwrap()
            .iter()
            .map(tensor_f64)
            .collect();
        let mut store = ParamStore::<f64>::new();
        let keys: Vec<_> = before
            .iter()
            .enumerate()
            .map(|(i, g)| store.insert(format!("p{i}"), g.zeros_like()))
            .collect();
        let g = Graph::new();
        let mut loss = g.scalar(0.0);
        for (k, gk) in keys.iter().zip(&before) {
            loss += (g.param(&store, *k) * gk).sum();
        }
        let mut grads = loss.backward();
        let kw = &case["kwargs"];
        match case["kind"].as_str().unwrap() {
            "clip_grad_norm" => {
                let norm = match &kw["norm_type"] {
                    Value::String(s) if s == "inf" => NormType::Inf,
                    v => {
                        assert_eq!(v.as_f64(), Some(2.0));
                        NormType::L2
                    }
                };
                let total =
                    clip_grad_norm(&mut grads, kw["max_norm"].as_f64().unwrap(), norm).unwrap();
                rel_close(
                    &format!("{name} total"),
                    &[total],
                    &[case["returned_total_norm"].as_f64().unwrap()],
                    1e-12,
                );
            }
            _ => clip_grad_value(&mut grads, kw["clip_value"].as_f64().unwrap()),
        }
        for (k, want) in keys.iter().zip(case["grads_after"].as_array().unwrap()) {
            rel_close(
                &format!("{name} grads"),
                grads.param(*k).unwrap().as_slice(),
                tensor_f64(want).as_slice(),
                1e-12,
            );
        }
    }
}

#[test]
fn schedules_match_torch() {
    let doc: Value = serde_json::from_str(SCHEDULES).unwrap();
    let list = doc
        .as_object()
        .unwrap()
        .values()
        .find_map(|v| v.as_array())
        .unwrap();
    assert_eq!(list.len(), 8);
    for s in list {
        let name = s["name"].as_str().unwrap();
        let base = s["base_lr"].as_f64().unwrap();
        let one_cycle = OneCycle::new(0.1, 100);
        let sched: Box<dyn Schedule> = match name {
            "StepLR" => Box::new(StepDecay::new(base, 10, 0.5)),
            "MultiStepLR" => Box::new(MultiStep::new(base, vec![20, 50], 0.1)),
            "ExponentialLR" => Box::new(Exponential::new(base, 0.95)),
            "CosineAnnealingLR" => Box::new(Cosine::new(base, 100).with_eta_min(1e-5)),
            "CosineAnnealingWarmRestarts" => Box::new(CosineWarmRestarts::new(base, 20, 2)),
            "LinearLR" => Box::new(Linear::new(base, 0.1, 1.0, 30)),
            "OneCycleLR" => Box::new(one_cycle),
            "WarmupInverseSqrt" => Box::new(InverseSqrt::new(1e-3, 10)),
            other => panic!("no schedule for {other}"),
        };
        let lrs = nums(&s["lrs"]);
        assert_eq!(lrs.len(), 100);
        for (t, &want) in lrs.iter().enumerate() {
            assert!(
                (sched.lr(t) - want).abs() <= 1e-12,
                "{name} step {t}: {} vs {want}",
                sched.lr(t)
            );
        }
        if name == "OneCycleLR" {
            for (t, want) in nums(&s["momentums"]).into_iter().enumerate() {
                assert!(
                    (one_cycle.momentum(t) - want).abs() <= 1e-12,
                    "OneCycle momentum at {t}"
                );
            }
        }
    }
}

//! The sweeps' tests: long chains, fast paths against general paths, errors, anomaly
//! mode, retained and accumulated gradients.

use super::*;
use crate::{Graph, ParamStore};

#[test]
fn a_hundred_thousand_op_chain_does_not_overflow_the_stack() {
    let g = Graph::<f64>::with_capacity(100_001);
    let x = g.leaf(Tensor::scalar(0.5));
    let mut y = x;
    for _ in 0..100_000 {
        y = y * 0.99999 + 0.000001;
    }
    let dx = y.backward().wrt(x).item();
    assert!((dx - 0.99999f64.powi(100_000)).abs() < 1e-9, "{dx}");
    // The recorded (second-order) sweep walks the same chain without recursion too.
    let gx = y.backward_create_graph().wrt_var(x);
    assert!((gx.item() - dx).abs() < 1e-12);
}

#[test]
fn a_parameter_used_twice_is_ready_once_with_its_whole_gradient() {
    let mut store = crate::ParamStore::<f64>::new();
    let w = store.insert("w", Tensor::from_vec(vec![2.0], [1]));
    let v = store.insert("v", Tensor::from_vec(vec![5.0], [1]));
    let g = Graph::new();
    // y = w·(w·v): ∂y/∂w = 2wv = 20, ∂y/∂v = w² = 4.
    let (w1, vv) = (g.param(&store, w), g.param(&store, v));
    let y = (g.param(&store, w) * (w1 * vv)).sum();
    let mut seen = Vec::new();
    let grads = y
        .try_backward_with_ready(&mut |k, gk| seen.push((k, gk.to_vec())))
        .unwrap();
    seen.sort_by_key(|(k, _)| store.name(*k).to_string());
    assert_eq!(seen, vec![(v, vec![4.0]), (w, vec![20.0])]);
    assert_eq!(grads.param(w).unwrap().to_vec(), vec![20.0]);
}

/// A chain of unary ops on one element, recorded and swept by the one-element fast
/// paths, against the same chain on two equal elements (the general paths): same bits,
/// same shapes, also with branches (accumulation), retained intermediates, a parameter
/// leaf, a non-differentiable op, no_grad, anomaly mode and a shape of five dimensions.
#[test]
fn one_element_fast_paths_match_the_general_paths() {
    fn chain<'g>(x: Var<'g, f32>) -> (Var<'g, f32>, Var<'g, f32>) {
        let mut y = x;
        for i in 0..40 {
            y = match i % 5 {
                0 => y * 0.9,
                1 => y.tanh() + 0.1,
                2 => y.exp() * 0.5,
                3 => y.sigmoid().sub_scalar(0.2),
                _ => y.square().rsub_scalar(1.0),
            };
        }
        let mid = y.retain_grad();
        let branch = mid.tanh() + mid.mul_scalar(3.0) + mid.sign(); // the slot accumulates
        (branch.log1p(), mid)
    }
    for shape in [vec![], vec![1], vec![1, 1, 1, 1, 1]] {
        for anomaly in [false, true] {
            let one = Graph::<f32>::new();
            one.set_anomaly_detection(anomaly);
            let mut store = ParamStore::new();
            let key = store.insert("p", Tensor::full(shape.clone(), 0.3f32));
            let x = one.param(&store, key);
            let (y, mid) = chain(x);
            assert_eq!(y.shape().as_slice(), shape.as_slice());
            let grads = y.sum().backward();
            let two = Graph::<f32>::new();
            let x2 = two.leaf(Tensor::full([2], 0.3f32));
            let (y2, mid2) = chain(x2);
            let grads2 = y2.sum().backward();
            assert_eq!(y.value().as_slice()[0], y2.value().as_slice()[0]);
            let dx = grads.param(key).unwrap();
            assert_eq!(dx.dims(), shape.as_slice());
            assert_eq!(dx.as_slice()[0], grads2.wrt(x2).as_slice()[0]);
            assert_eq!(grads.wrt(mid).dims(), shape.as_slice());
            assert_eq!(grads.wrt(mid).as_slice()[0], grads2.wrt(mid2).as_slice()[0]);
            // Recording off: the fast path records constants.
            let z = one.no_grad(|| x.tanh() * 2.0);
            assert!(!z.requires_grad());
        }
    }
}

/// The gradient of a full sum handed on as one number: against the same chain seeded
/// with a tensor of ones (the general path), bit for bit; with the sum straight on a
/// leaf, on a retained node, on a node used twice, and on a non-unary node.
#[test]
fn a_full_sum_passes_its_gradient_as_one_number() {
    let x0 = crate::testing::rand_tensor(&[3, 5], -1.0, 1.0, 31).cast::<f32>();
    type Build = fn(Var<'_, f32>) -> Var<'_, f32>;
    let chains: [Build; 5] = [
        |x| (x * 0.5 + 0.1).tanh(),
        |x| x,
        |x| x.exp().retain_grad(),
        |x| {
            let y = x.sigmoid();
            y * 2.0 + y.tanh() // y is used twice
        },
        |x| (x * x).tanh(), // a binary op before the unary one
    ];
    for (k, chain) in chains.iter().enumerate() {
        let g = Graph::<f32>::new();
        let x = g.leaf(x0.clone());
        let y = chain(x);
        let fast = y.sum().backward();
        let g2 = Graph::<f32>::new();
        let x2 = g2.leaf(x0.clone());
        let y2 = chain(x2);
        let general = y2.backward_with(&Tensor::ones(y2.shape())).wrt(x2);
        assert_eq!(fast.wrt(x).as_slice(), general.as_slice(), "chain {k}");
        assert_eq!(fast.wrt(x).dims(), &[3, 5]);
    }
}

#[test]
fn a_non_finite_gradient_in_a_scalar_chain_is_caught_in_anomaly_mode() {
    let g = Graph::<f64>::new();
    g.set_anomaly_detection(true);
    let x = g.leaf(Tensor::scalar(0.0));
    let y = (x.sqrt() * 2.0 + 1.0).sum(); // d sqrt at 0 is +inf
    let msg = crate::testing::panic_message(|| y.backward());
    assert!(msg.contains("sqrt"), "{msg}");
}

#[test]
fn branches_that_reach_no_leaf_are_skipped() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::scalar(2.0));
    let c = g.constant(Tensor::scalar(3.0));
    let unused = (c * c).exp(); // no leaf behind it
    assert!(!unused.requires_grad());
    let y = x * unused + x;
    assert_eq!(y.backward().wrt(x).item(), 3f64.powi(2).exp() + 1.0);
    // and a leaf outside the output's history gets zeros
    let z = g.leaf(Tensor::zeros([2]));
    let grads = (x * 2.0).backward();
    assert!(grads.get(z).is_none());
    assert_eq!(grads.wrt(z).to_vec(), vec![0.0, 0.0]);
}

#[test]
fn errors_of_backward() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::zeros([2]));
    assert!(x
        .try_backward()
        .unwrap_err()
        .to_string()
        .contains("one-element"));
    let c = g.constant(Tensor::scalar(1.0));
    assert!(c
        .try_backward()
        .unwrap_err()
        .to_string()
        .contains("does not depend"));
    assert!(x.try_backward_with(&Tensor::zeros([3])).is_err());
    assert_eq!(
        x.backward_with(&Tensor::from_vec(vec![2.0, 3.0], [2]))
            .wrt(x)
            .to_vec(),
        vec![2.0, 3.0]
    );
}

#[test]
fn no_grad_and_detach() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::scalar(2.0));
    let frozen = g.no_grad(|| x * x);
    assert!(!frozen.requires_grad());
    assert!(g.is_grad_enabled());
    let y = x * frozen + x.detach() * x;
    // d/dx [x·4 + 2·x] = 6
    assert_eq!(y.backward().wrt(x).item(), 6.0);
}

#[test]
fn params_accumulate_across_uses_and_micro_batches() {
    let mut store = ParamStore::<f64>::new();
    let w = store.insert("w", Tensor::from_vec(vec![1.0, 2.0], [2]));
    let b = store.insert("b", Tensor::scalar(0.0));
    store.freeze(b);
    let mut total: Option<Gradients<f64>> = None;
    for batch in [1.0, 3.0] {
        let g = Graph::new();
        let (w1, w2) = (g.param(&store, w), g.param(&store, w));
        let bb = g.param(&store, b);
        assert!(!bb.requires_grad());
        let loss = ((w1 + w2) * batch + bb).sum();
        let grads = loss.backward();
        assert!(grads.param(b).is_none());
        match &mut total {
            Some(t) => t.accumulate(grads),
            None => total = Some(grads),
        }
    }
    let mut total = total.unwrap();
    assert_eq!(total.param(w).unwrap().to_vec(), vec![8.0, 8.0]);
    total.scale(0.5);
    assert_eq!(total.param(w).unwrap().to_vec(), vec![4.0, 4.0]);
}

#[test]
fn reset_keeps_capacity_and_starts_over() {
    let mut g = Graph::<f32>::new();
    for _ in 0..3 {
        let x = g.leaf(Tensor::scalar(1.0));
        let y = (x * 2.0).sum();
        assert_eq!(y.backward().wrt(x).item(), 2.0);
        g.reset();
        assert!(g.is_empty());
    }
}

#[test]
fn anomaly_mode_names_the_op_and_the_line() {
    let g = Graph::<f64>::new();
    g.set_anomaly_detection(true);
    let x = g.leaf(Tensor::from_vec(vec![1.0, -1.0], [2]));
    let msg = crate::testing::panic_message(|| x.log());
    assert!(
        msg.contains("op `log` produced NaN at element [1]") && msg.contains("backward/tests.rs"),
        "{msg}"
    );
    // In backward: sqrt at 0 has an infinite gradient.
    let y = g.leaf(Tensor::from_vec(vec![0.0, 4.0], [2]));
    let s = y.sqrt().sum();
    let msg = crate::testing::panic_message(|| s.backward());
    assert!(
        msg.contains("op `sqrt` (recorded at") && msg.contains("backward/tests.rs"),
        "{msg}"
    );
    // In a recorded backward: the ops sqrt's rule records are attributed to sqrt and to
    // the line where sqrt was called, not to the rule's own code.
    let g = Graph::<f64>::new();
    g.set_anomaly_detection(true);
    let y = g.leaf(Tensor::from_vec(vec![0.0, 4.0], [2]));
    let s = y.sqrt().sum();
    let line = line!() - 1;
    let msg = crate::testing::panic_message(|| s.backward_create_graph());
    assert!(
        msg.starts_with("anomaly detected in the recorded backward of `sqrt` (recorded at crates/core/src/backward/tests.rs:")
            && msg.contains(&format!("backward/tests.rs:{line}:")),
        "{msg}"
    );
    // The attribution ends with the rule, even when it panicked.
    g.set_anomaly_detection(false);
    let z = y.exp();
    let exp_line = line!() - 1;
    let printed = g.to_string();
    let last = printed.lines().last().unwrap();
    assert!(
        last.contains(&format!("backward/tests.rs:{exp_line}:")),
        "{last}"
    );
    let _ = z;
}

#[test]
fn a_training_loop_without_reset_is_reported_in_debug_builds() {
    let mut store = ParamStore::<f64>::new();
    let w = store.insert("w", Tensor::ones([3]));
    let g = Graph::<f64>::new();
    for _ in 0..3 {
        // The loop that forgot `g.reset()`.
        let loss = (g.param(&store, w) * 2.0).sum();
        let _ = loss.backward();
    }
    assert_eq!(g.warned_no_reset(), cfg!(debug_assertions));
    // Reusing a tape properly, and recording after a backward without re-adding a
    // parameter (a Hessian-vector product), say nothing.
    let mut g = Graph::<f64>::new();
    for _ in 0..3 {
        g.reset();
        let loss = (g.param(&store, w).square() * 2.0).sum();
        let _ = loss.backward();
        let _ = loss.backward_create_graph();
    }
    assert!(!g.warned_no_reset());
}

#[test]
fn the_tape_prints() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::zeros([2, 3]));
    let _ = x.tanh().sum();
    let s = g.to_string();
    assert!(s.contains("%1 = tanh(%0) -> [2, 3]  grad  at"), "{s}");
    assert!(s.contains("%2 = sum(%1) -> []"), "{s}");
}

#[test]
fn retained_intermediates_keep_their_gradient() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0], [2]));
    let h = (x * 3.0).retain_grad();
    let k = h.exp();
    let y = h.square().sum();
    let grads = y.backward();
    assert_eq!(grads.wrt(h).to_vec(), vec![6.0, 12.0]);
    assert_eq!(grads.wrt(x).to_vec(), vec![18.0, 36.0]);
    // An intermediate that was not retained is refused, with advice.
    let msg = crate::testing::panic_message(|| grads.wrt(k));
    assert!(msg.contains("retain_grad"), "{msg}");
    // The recorded pass keeps it too.
    let gv = y.backward_create_graph();
    assert_eq!(gv.wrt(h).to_vec(), vec![6.0, 12.0]);
}

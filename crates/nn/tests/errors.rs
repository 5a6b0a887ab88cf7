//! Bad arguments to layers, losses and initialisers are refused with the core's message
//! form — the op, what is wrong, and the caller's own line — and impossible sizes panic at
//! the caller's line instead of corrupting memory.

use tapegrad_core::{seeded_rng, Graph, ParamStore, Tensor};
use tapegrad_nn::{mse_loss, Embedding, Forward, Init, Linear, Module, Reduction};

fn panic_message(f: impl FnOnce()) -> String {
    let e =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("expected a panic");
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

const HERE: &str = "(at crates/nn/tests/errors.rs:";

#[test]
fn a_layer_too_large_for_memory_panics_at_the_callers_line() {
    // 2^62 elements of 4 bytes: the byte count overflows (this was a SIGSEGV).
    let msg = panic_message(|| {
        let mut store = ParamStore::<f32>::new();
        let mut rng = seeded_rng(0);
        let _ = Linear::new(&mut store, "fc", 1 << 31, 1 << 31, Init::HeNormal, &mut rng);
    });
    assert!(msg.starts_with("rand_normal: "), "{msg}");
    assert!(msg.contains(HERE), "{msg}");
    // 2^48 elements: representable, but 1 PiB is more than the address space.
    let msg = panic_message(|| {
        let mut store = ParamStore::<f32>::new();
        let mut rng = seeded_rng(0);
        let _ = Linear::new(&mut store, "fc", 1 << 24, 1 << 24, Init::HeNormal, &mut rng);
    });
    assert!(msg.contains(HERE), "{msg}");
    let msg = panic_message(|| {
        let mut store = ParamStore::<f64>::new();
        let _ = Embedding::new(&mut store, "emb", 1 << 62, 4, &mut seeded_rng(0));
    });
    assert!(msg.contains(HERE), "{msg}");
}

#[test]
fn a_linear_layer_without_inputs_has_a_zero_bias_as_in_pytorch() {
    let mut store = ParamStore::<f64>::new();
    let mut rng = seeded_rng(0);
    let lin = Linear::new(&mut store, "fc", 0, 3, Init::TorchDefault, &mut rng);
    assert_eq!(store.value(lin.weight()).dims(), &[3, 0]);
    assert_eq!(store.value(lin.bias().unwrap()).to_vec(), vec![0.0; 3]);
    // Its output is the bias: zeros, not NaN.
    let g = Graph::new();
    let y = lin.forward(
        &mut Forward::eval(&g, &store),
        g.constant(Tensor::zeros([2, 0])),
    );
    assert_eq!(y.value().to_vec(), vec![0.0; 6]);
    // A scale that divides by the fan refuses a zero fan for a non-empty tensor.
    let msg = panic_message(|| {
        let _: Tensor<f64> = Init::HeNormal.tensor_with_fans(&[3], (0, 3), &mut seeded_rng(0));
    });
    assert!(msg.starts_with("init: HeNormal: the fan is 0"), "{msg}");
    assert!(msg.contains(HERE), "{msg}");
}

#[test]
fn embedding_indices_out_of_range_point_at_the_caller() {
    let mut store = ParamStore::<f64>::new();
    let emb = Embedding::new(&mut store, "emb", 5, 2, &mut seeded_rng(0));
    let msg = panic_message(|| {
        let g = Graph::new();
        let mut f = Forward::eval(&g, &store);
        let _ = emb.lookup(&mut f, &Tensor::from_vec(vec![1, 7], [2]));
    });
    assert!(
        msg.starts_with("Embedding: index 7 is out of range for a table of 5 vectors"),
        "{msg}"
    );
    assert!(msg.contains(HERE), "{msg}");
    for bad in [-1.0, 0.5, f64::NAN, 1e300] {
        let msg = panic_message(|| {
            let g = Graph::new();
            let mut f = Forward::eval(&g, &store);
            let _ = emb.forward(&mut f, g.constant(Tensor::from_vec(vec![bad], [1])));
        });
        assert!(msg.starts_with("Embedding: "), "{msg}");
        assert!(msg.contains(HERE), "{msg}");
    }
}

#[test]
fn loss_shape_errors_point_at_the_caller() {
    let msg = panic_message(|| {
        let g = Graph::<f64>::new();
        let _ = mse_loss(
            g.leaf(Tensor::zeros([2, 3])),
            g.constant(Tensor::zeros([3, 2])),
            Reduction::Mean,
        );
    });
    assert!(msg.starts_with("mse_loss: "), "{msg}");
    assert!(msg.contains("[2, 3] and [3, 2]"), "{msg}");
    assert!(msg.contains(HERE), "{msg}");
    let msg = panic_message(|| {
        let g = Graph::<f64>::new();
        let _ = tapegrad_nn::cross_entropy(
            g.leaf(Tensor::zeros([3])),
            &Tensor::from_vec(vec![0], [1]),
            Reduction::Mean,
        );
    });
    assert!(msg.starts_with("cross_entropy: "), "{msg}");
    assert!(msg.contains(HERE), "{msg}");
}

#[test]
fn every_loss_has_a_try_form_that_returns_the_panics_error() {
    use tapegrad_core::Error;
    use tapegrad_nn::*;
    let g = Graph::<f64>::new();
    let (a, b) = (g.leaf(Tensor::zeros([2, 3])), g.leaf(Tensor::zeros([3, 2])));
    let logits = g.leaf(Tensor::zeros([2, 3]));
    let bad_class = Tensor::from_vec(vec![0, 3], [2]);
    let shape_errors = [
        try_mse_loss(a, b, Reduction::Mean),
        try_l1_loss(a, b, Reduction::Sum),
        try_smooth_l1_loss(a, b, 1.0, Reduction::Mean),
        try_huber_loss(a, b, 1.0, Reduction::Mean),
        try_cross_entropy_soft(a, b, Reduction::Mean),
        try_binary_cross_entropy_with_logits(a, b, None, Reduction::Mean),
        try_binary_cross_entropy(a, b, Reduction::Mean),
        try_kl_div(a, b, false, Reduction::BatchMean),
        try_cross_entropy(logits, &Tensor::from_vec(vec![0], [1]), Reduction::Mean),
    ];
    for r in shape_errors {
        let e = r.expect_err("mismatched shapes");
        assert!(matches!(e, Error::Shape { .. }), "{e}");
        assert!(e.to_string().contains(HERE), "{e}");
    }
    let argument_errors = [
        try_cross_entropy(logits, &bad_class, Reduction::Mean),
        try_nll_loss(logits, &bad_class, None, Reduction::Mean),
        try_smooth_l1_loss(a, a, -1.0, Reduction::Mean),
        try_huber_loss(a, a, 0.0, Reduction::Mean),
        try_cross_entropy_with(
            logits,
            &Tensor::from_vec(vec![0, 1], [2]),
            &CrossEntropyConfig::default().with_label_smoothing(2.0),
        ),
    ];
    for r in argument_errors {
        let e = r.expect_err("a bad argument");
        assert!(matches!(e, Error::Argument { .. }), "{e}");
    }
    // The panicking form raises the same message.
    let want = try_cross_entropy(logits, &bad_class, Reduction::Mean)
        .unwrap_err()
        .to_string();
    let got = panic_message(|| {
        let _ = cross_entropy(logits, &bad_class, Reduction::Mean);
    });
    assert_eq!(
        got.split(" (at ").next(),
        want.split(" (at ").next(),
        "{got} / {want}"
    );
    // And a good call is the same value either way.
    let t = Tensor::from_vec(vec![0, 1], [2]);
    assert_eq!(
        try_cross_entropy(logits, &t, Reduction::Mean)
            .unwrap()
            .item(),
        cross_entropy(logits, &t, Reduction::Mean).item()
    );
}

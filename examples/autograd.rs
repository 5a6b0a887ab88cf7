//! A tour of tapegrad's autograd core: tensors, the tape, gradients, gradients of
//! gradients, and checking them.
//!
//! Run: `cargo run --release --example autograd`
//!
//! It fits a small two-layer network to `sin(x)` with hand-written gradient descent (the nn
//! and optim crates will wrap this), then shows a Hessian-vector product and a gradcheck.

use tapegrad::prelude::*;

fn main() {
    // 1. Tensors print like PyTorch's.
    let x = Tensor::<f64>::linspace(-3.0, 3.0, 64).reshape([64, 1]);
    let y = x.sin();
    println!("inputs (first rows): {}", x.narrow(0, 0, 3));

    // 2. Parameters live in a store; each step puts them on a fresh tape.
    let mut rng = seeded_rng(0);
    let mut store = ParamStore::<f64>::new();
    let w1 = store.insert("w1", Tensor::rand_normal([1, 32], 0.0, 1.0, &mut rng));
    let b1 = store.insert("b1", Tensor::zeros([32]));
    let w2 = store.insert(
        "w2",
        Tensor::rand_normal([32, 1], 0.0, (1.0f64 / 32.0).sqrt(), &mut rng),
    );
    let b2 = store.insert("b2", Tensor::zeros([1]));

    let mut g = Graph::<f64>::new();
    let lr = 0.03;
    let mut first_and_last = (f64::NAN, f64::NAN);
    for step in 0..=2000 {
        g.reset(); // reuse the tape's memory
        let input = g.constant(x.clone());
        let h = (input.matmul(g.param(&store, w1)) + g.param(&store, b1)).tanh();
        let pred = h.matmul(g.param(&store, w2)) + g.param(&store, b2);
        let loss = (pred - &y).square().mean();
        let grads = loss.backward();
        for key in [w1, b1, w2, b2] {
            let gk = grads
                .param(key)
                .expect("every parameter reaches the loss")
                .clone();
            *store.value_mut(key) -= &(gk * lr);
        }
        if step % 500 == 0 {
            println!("step {step:4}  mse {:.6}", loss.item());
        }
        if step == 0 {
            first_and_last.0 = loss.item();
        }
        first_and_last.1 = loss.item();
    }
    // The fit: from about the variance of sin on [-3, 3] down by two orders of magnitude.
    assert!(
        first_and_last.0 > 0.5 && first_and_last.1 < 0.01,
        "{first_and_last:?}"
    );

    // 3. Gradients of gradients: a Hessian-vector product of f(x) = Σ x² tanh(x).
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![0.5, -1.0, 2.0], [3]));
    let f = (x.square() * x.tanh()).sum();
    let gx = f.backward_create_graph().wrt_var(x);
    let v = Tensor::from_vec(vec![1.0, 0.0, 0.0], [3]);
    let hv = (gx * &v).sum().backward().wrt(x);
    println!("∇f = {}", gx.value());
    println!("H·e₀ = {hv}");
    // Against the closed forms: f' = 2x·tanh x + x²·sech² x, and
    // f'' = 2 tanh x + 4x·sech² x − 2x²·sech² x·tanh x (only x₀ moves along e₀).
    let sech2 = |x: f64| 1.0 - x.tanh().powi(2);
    for (i, &xi) in [0.5f64, -1.0, 2.0].iter().enumerate() {
        let d1 = 2.0 * xi * xi.tanh() + xi * xi * sech2(xi);
        assert!((gx.value().get(&[i]) - d1).abs() < 1e-14, "∇f[{i}]");
    }
    let x0 = 0.5f64;
    let d2 = 2.0 * x0.tanh() + 4.0 * x0 * sech2(x0) - 2.0 * x0 * x0 * sech2(x0) * x0.tanh();
    assert!((hv.get(&[0]) - d2).abs() < 1e-14 && hv.get(&[1]) == 0.0 && hv.get(&[2]) == 0.0);

    // 4. Checking a composite function against finite differences.
    let inputs = [Tensor::from_vec(vec![0.3, -1.2, 0.7, 2.0], [2, 2])];
    let report = gradcheck(
        |_, v| v[0].matmul(v[0]).softmax(-1),
        &inputs,
        &GradcheckConfig::default(),
    )
    .expect("gradients agree");
    gradgradcheck(
        |_, v| v[0].matmul(v[0]).softmax(-1),
        &inputs,
        &GradcheckConfig::default(),
    )
    .expect("second order agrees");
    println!(
        "gradcheck: {} elements, max |analytic − numeric| = {:.2e}",
        report.checked, report.max_abs_error
    );
    assert_eq!(report.checked, 4);
    assert!(report.max_abs_error < 1e-8);
}

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
    }

    // 3. Gradients of gradients: a Hessian-vector product of f(x) = Σ x² tanh(x).
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![0.5, -1.0, 2.0], [3]));
    let f = (x.square() * x.tanh()).sum();
    let gx = f.backward_create_graph().wrt_var(x);
    let v = Tensor::from_vec(vec![1.0, 0.0, 0.0], [3]);
    let hv = (gx * &v).sum().backward().wrt(x);
    println!("∇f = {}", gx.value());
    println!("H·e₀ = {hv}");

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
}

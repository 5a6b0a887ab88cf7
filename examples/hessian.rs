//! Hessian-vector products by double backward, checked against the analytic Hessian.
//!
//! Run: `cargo run --release --example hessian`
//!
//! The n-dimensional Rosenbrock function
//! `f(x) = Σᵢ 100(xᵢ₊₁ − xᵢ²)² + (1 − xᵢ)²` has the tridiagonal Hessian
//!
//! ```text
//! H[i,i]   = 1200xᵢ² − 400xᵢ₊₁ + 2   (for i < n−1)   + 200 (for i > 0)
//! H[i,i+1] = H[i+1,i] = −400xᵢ
//! ```
//! `H·v` is computed as `∇ₓ ⟨∇ₓf(x), v⟩`: one backward pass recorded on the tape
//! (`backward_create_graph`), then an ordinary backward pass through it. No Hessian is ever
//! formed. The example compares `H·v` for random `x` and `v` with the analytic product, and
//! builds the whole Hessian column by column from `H·eⱼ` to show it is symmetric; then does
//! the same with the named transforms `tapegrad::functional::{hvp, hessian}`.

use tapegrad::prelude::*;

/// Rosenbrock in n dimensions, from slices of `x`.
fn rosenbrock<'g>(x: Var<'g, f64>) -> Var<'g, f64> {
    let n = x.shape()[0];
    let head = x.narrow(0, 0, n - 1);
    let tail = x.narrow(0, 1, n - 1);
    ((tail - head.square()).square() * 100.0 + head.rsub_scalar(1.0).square()).sum()
}

/// `H·v` by double backward.
fn hvp(x: &Tensor<f64>, v: &Tensor<f64>) -> Tensor<f64> {
    let g = Graph::new();
    let xv = g.leaf(x.clone());
    let grad = rosenbrock(xv).backward_create_graph().wrt_var(xv);
    (grad * v).sum().backward().wrt(xv)
}

/// The analytic Hessian, dense.
fn hessian(x: &[f64]) -> Vec<Vec<f64>> {
    let n = x.len();
    let mut h = vec![vec![0.0; n]; n];
    for i in 0..n {
        if i + 1 < n {
            h[i][i] += 1200.0 * x[i] * x[i] - 400.0 * x[i + 1] + 2.0;
            h[i][i + 1] = -400.0 * x[i];
            h[i + 1][i] = -400.0 * x[i];
        }
        if i > 0 {
            h[i][i] += 200.0;
        }
    }
    h
}

fn main() {
    let mut rng = seeded_rng(42);
    let n = 6;
    let mut worst = 0.0f64;
    for trial in 0..20 {
        let x = Tensor::<f64>::rand_uniform([n], -2.0, 2.0, &mut rng);
        let v = Tensor::<f64>::rand_normal([n], 0.0, 1.0, &mut rng);
        let got = hvp(&x, &v);
        let h = hessian(x.as_slice());
        let want: Vec<f64> = h
            .iter()
            .map(|row| row.iter().zip(v.as_slice()).map(|(a, b)| a * b).sum())
            .collect();
        let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
        let err = got
            .as_slice()
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
            / scale;
        worst = worst.max(err);
        if trial == 0 {
            println!("x   = {x}\nv   = {v}\nH·v = {got}");
            println!("analytic H·v = {}", Tensor::from_vec(want, [n]));
        }
    }
    println!("20 random (x, v): max relative error of H·v = {worst:.2e}");
    assert!(
        worst < 1e-12,
        "Hessian-vector products disagree with the analytic Hessian"
    );

    // The Hessian at the minimum (1, …, 1), column by column from H·eⱼ.
    let ones = Tensor::<f64>::ones([n]);
    let cols: Vec<Tensor<f64>> = (0..n)
        .map(|j| {
            hvp(
                &ones,
                &Tensor::from_fn([n], |i| if i == j { 1.0 } else { 0.0 }),
            )
        })
        .collect();
    let refs: Vec<&Tensor<f64>> = cols.iter().collect();
    let h = Tensor::stack(&refs, 1);
    println!("H at the minimum =\n{h}");
    assert_close(&h, &h.t(), 1e-12, 0.0);
    assert_close(
        &h,
        &Tensor::from_vec(hessian(&[1.0; 6]).concat(), [n, n]),
        1e-9,
        0.0,
    );
    println!("symmetric, and equal to the analytic Hessian");

    // The same through the named transforms: `functional::hvp` is the recipe above, and
    // `functional::hessian` forms H with one sweep per row of the recorded gradient.
    let x = Tensor::<f64>::rand_uniform([n], -2.0, 2.0, &mut rng);
    let v = Tensor::<f64>::rand_normal([n], 0.0, 1.0, &mut rng);
    let named = tapegrad::functional::hvp(
        |_, x| rosenbrock(x[0]),
        std::slice::from_ref(&x),
        std::slice::from_ref(&v),
    )
    .expect("hvp")
    .remove(0);
    assert_close(&named, &hvp(&x, &v), 1e-12, 0.0);
    let full = tapegrad::functional::hessian(|_, x| rosenbrock(x[0]), std::slice::from_ref(&x))
        .expect("hessian")
        .remove(0)
        .remove(0);
    assert_close(
        &full,
        &Tensor::from_vec(hessian(x.as_slice()).concat(), [n, n]),
        1e-9,
        0.0,
    );
    println!("functional::hvp and functional::hessian agree at a random x");
}

//! The problems and solvers of `examples/second_order.rs` (and of `tests/second_order.rs`,
//! which asserts its claims): L2-regularised logistic regression, minimised by Newton's
//! method with exact Hessians, by gradient descent and by L-BFGS.

#![allow(dead_code)] // the example uses all of it, the test the solvers it asserts on

use tapegrad::functional::hessian;
use tapegrad::optim::{Lbfgs, LbfgsConfig, LineSearch};
use tapegrad::prelude::*;

/// A logistic-regression problem: features `[n, d]`, labels in {0, 1}, the L2 weight λ.
pub struct Problem {
    /// The features.
    pub x: Tensor<f64>,
    /// The labels.
    pub y: Tensor<f64>,
    /// λ in `mean BCE + λ/2 ‖w‖²`.
    pub lambda: f64,
}

impl Problem {
    /// `n` examples of `d` features drawn N(0, 1) and multiplied by `10^(spread · j/(d−1))`
    /// for feature j (spread 0: all of scale 1), labels drawn from the logistic model of a
    /// random true weight vector of norm about 3 on the scaled features' units.
    pub fn synthetic(n: usize, d: usize, spread: f64, lambda: f64, seed: u64) -> Problem {
        let mut rng = seeded_rng(seed);
        let scale: Vec<f64> = (0..d)
            .map(|j| 10f64.powf(spread * j as f64 / (d.max(2) - 1) as f64))
            .collect();
        let z = Tensor::<f64>::rand_normal([n, d], 0.0, 1.0, &mut rng);
        let x = Tensor::from_vec(
            z.as_slice()
                .iter()
                .enumerate()
                .map(|(i, v)| v * scale[i % d])
                .collect(),
            [n, d],
        );
        let truth: Vec<f64> =
            Tensor::<f64>::rand_normal([d], 0.0, 3.0 / (d as f64).sqrt(), &mut rng)
                .as_slice()
                .iter()
                .zip(&scale)
                .map(|(w, s)| w / s)
                .collect();
        let u = Tensor::<f64>::rand_uniform([n], 0.0, 1.0, &mut rng);
        let y = (0..n)
            .map(|i| {
                let logit: f64 = (0..d).map(|j| x.as_slice()[i * d + j] * truth[j]).sum();
                f64::from(u8::from(u.as_slice()[i] < 1.0 / (1.0 + (-logit).exp())))
            })
            .collect();
        Problem {
            x,
            y: Tensor::from_vec(y, [n]),
            lambda,
        }
    }

    /// The number of weights.
    pub fn dim(&self) -> usize {
        self.x.dims()[1]
    }

    /// The objective at `w` (a `[d]` vector on the tape).
    pub fn loss<'g>(&self, w: Var<'g, f64>) -> Var<'g, f64> {
        let g = w.graph();
        let (n, d) = (self.x.dims()[0], self.dim());
        let logits = g
            .constant(self.x.clone())
            .matmul(w.reshape([d, 1]))
            .reshape([n]);
        let bce = binary_cross_entropy_with_logits(
            logits,
            g.constant(self.y.clone()),
            None,
            Reduction::Mean,
        );
        bce + w.square().sum() * (self.lambda / 2.0)
    }

    /// The objective and its gradient at `w`.
    pub fn value_and_grad(&self, w: &Tensor<f64>) -> (f64, Tensor<f64>) {
        let g = Graph::new();
        let wv = g.leaf(w.clone());
        let l = self.loss(wv);
        (l.item(), l.backward().wrt(wv))
    }

    /// The Hessian at `w` (`[d, d]`), from double backward.
    pub fn hessian(&self, w: &Tensor<f64>) -> Tensor<f64> {
        hessian(|_, v| self.loss(v[0]), std::slice::from_ref(w))
            .expect("a d × d Hessian")
            .remove(0)
            .remove(0)
    }

    /// An upper bound of the gradient's Lipschitz constant: λ + λ_max(XᵀX)/(4n), with
    /// λ_max by power iteration.
    pub fn lipschitz(&self) -> f64 {
        let (n, d) = (self.x.dims()[0], self.dim());
        let xtx = self.x.matmul_t(&self.x, Transpose::Yes, Transpose::No);
        let mut v = vec![1.0 / (d as f64).sqrt(); d];
        let mut top = 0.0;
        for _ in 0..500 {
            let av: Vec<f64> = (0..d)
                .map(|i| (0..d).map(|j| xtx.as_slice()[i * d + j] * v[j]).sum())
                .collect();
            top = av.iter().map(|a| a * a).sum::<f64>().sqrt();
            v = av.iter().map(|a| a / top).collect();
        }
        self.lambda + top / (4.0 * n as f64)
    }
}

/// One run of a solver: the objective and the gradient's norm at every iterate (the
/// start included).
pub struct Trace {
    /// The objective at each iterate.
    pub loss: Vec<f64>,
    /// ‖∇‖₂ at each iterate.
    pub grad_norm: Vec<f64>,
}

impl Trace {
    /// Iterations until ‖∇‖ ≤ `tol` (None: never).
    pub fn iterations_to(&self, tol: f64) -> Option<usize> {
        self.grad_norm.iter().position(|&g| g <= tol)
    }
}

fn norm(t: &Tensor<f64>) -> f64 {
    t.as_slice().iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// Solves `A·d = b` for a symmetric positive definite `A` by Cholesky.
pub fn cholesky_solve(a: &Tensor<f64>, b: &Tensor<f64>) -> Vec<f64> {
    let n = b.numel();
    let (a, b) = (a.as_slice(), b.as_slice());
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            l[i * n + j] = if i == j {
                (a[i * n + i] - s).sqrt()
            } else {
                (a[i * n + j] - s) / l[j * n + j]
            };
        }
    }
    let mut z = vec![0.0; n];
    for i in 0..n {
        z[i] = (b[i] - (0..i).map(|k| l[i * n + k] * z[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut d = vec![0.0; n];
    for i in (0..n).rev() {
        d[i] = (z[i] - (i + 1..n).map(|k| l[k * n + i] * d[k]).sum::<f64>()) / l[i * n + i];
    }
    d
}

/// Newton's method from zero, the step halved until the objective decreases (damped
/// Newton; the full step is taken near the optimum), until ‖∇‖ ≤ `tol` or `max_iter`.
pub fn newton(p: &Problem, tol: f64, max_iter: usize) -> Trace {
    let d = p.dim();
    let mut w = Tensor::<f64>::zeros([d]);
    let (mut loss, mut grad_norm) = (Vec::new(), Vec::new());
    for _ in 0..=max_iter {
        let (l, g) = p.value_and_grad(&w);
        loss.push(l);
        grad_norm.push(norm(&g));
        if norm(&g) <= tol || loss.len() > max_iter {
            break;
        }
        let step = cholesky_solve(&p.hessian(&w), &g);
        let mut t = 1.0;
        loop {
            let cand = Tensor::from_vec(
                w.as_slice()
                    .iter()
                    .zip(&step)
                    .map(|(a, s)| a - t * s)
                    .collect(),
                [d],
            );
            // Within rounding of the start counts as no increase: at the optimum the
            // objective's changes are below its last bits.
            if p.value_and_grad(&cand).0 <= l + 4.0 * f64::EPSILON * l.abs() || t < 1e-10 {
                w = cand;
                break;
            }
            t /= 2.0;
        }
    }
    Trace { loss, grad_norm }
}

/// Gradient descent from zero with the step 1/L.
pub fn gradient_descent(p: &Problem, iters: usize) -> Trace {
    let lr = 1.0 / p.lipschitz();
    let mut w = Tensor::<f64>::zeros([p.dim()]);
    let (mut loss, mut grad_norm) = (Vec::new(), Vec::new());
    for _ in 0..=iters {
        let (l, g) = p.value_and_grad(&w);
        loss.push(l);
        grad_norm.push(norm(&g));
        w = Tensor::from_vec(
            w.as_slice()
                .iter()
                .zip(g.as_slice())
                .map(|(a, b)| a - lr * b)
                .collect(),
            [p.dim()],
        );
    }
    Trace { loss, grad_norm }
}

/// L-BFGS (`torch.optim.LBFGS` with the strong-Wolfe line search and PyTorch's history of
/// 100) from zero, one iteration per call, until ‖∇‖ ≤ `tol` or `max_iter`.
pub fn lbfgs(p: &Problem, tol: f64, max_iter: usize) -> Trace {
    let mut store = ParamStore::new();
    let k = store.insert("w", Tensor::<f64>::zeros([p.dim()]));
    let cfg = LbfgsConfig::default()
        .with_max_iter(1)
        .with_tolerance_grad(0.0)
        .with_tolerance_change(0.0)
        .with_line_search(LineSearch::StrongWolfe);
    let mut opt = Lbfgs::new(vec![k], cfg);
    let (mut loss, mut grad_norm) = (Vec::new(), Vec::new());
    for _ in 0..=max_iter {
        let (l, g) = p.value_and_grad(store.value(k));
        loss.push(l);
        grad_norm.push(norm(&g));
        if norm(&g) <= tol {
            break;
        }
        opt.step(&mut store, |s| {
            let (l, g) = p.value_and_grad(s.value(k));
            (l, Gradients::from_params([(k, g)]))
        });
    }
    Trace { loss, grad_norm }
}

/// The tolerance Newton's method is run to.
pub const TOL: f64 = 1e-10;

/// The tolerance at which the iteration counts of Newton and L-BFGS are compared (L-BFGS's
/// line search stalls near 1e-8: see `examples/second_order.rs`).
pub const COMPARE_AT: f64 = 1e-6;

/// The claims of `examples/second_order.rs` for the problem `tag` (`"well"` or `"ill"`).
///
/// # Panics
/// When a claim does not hold, saying which.
pub fn check_claims(tag: &str, newton: &Trace, lbfgs: &Trace) {
    let n = newton.iterations_to(TOL).expect("Newton reaches 1e-10");
    if tag == "well" {
        assert!(n <= 10, "Newton took {n} iterations");
        let g = &newton.grad_norm;
        for k in 0..n {
            // Quadratic until the gradient reaches its rounding floor (about 1e-16 here).
            if g[k] < 1e-2 {
                let bound = (10.0 * g[k] * g[k]).max(1e-14);
                assert!(g[k + 1] <= bound, "step {k}: {} then {}", g[k], g[k + 1]);
            }
        }
    } else {
        let (nc, lc) = (
            newton
                .iterations_to(COMPARE_AT)
                .expect("Newton reaches 1e-6"),
            lbfgs
                .iterations_to(COMPARE_AT)
                .expect("L-BFGS reaches 1e-6"),
        );
        assert!(
            lc >= 5 * nc,
            "L-BFGS took {lc} iterations to 1e-6, Newton {nc}"
        );
        let (a, b) = (newton.loss.last().unwrap(), lbfgs.loss.last().unwrap());
        assert!(
            (a - b).abs() <= 1e-10,
            "the final losses {a} and {b} differ"
        );
    }
}

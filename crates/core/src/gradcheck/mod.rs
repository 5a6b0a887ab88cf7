//! `gradcheck` and `gradgradcheck`: analytic gradients against central finite differences,
//! for any function of `Var`s — built-in ops, composites and custom ops alike — in f64, or
//! in f32 with [`GradcheckConfig::for_f32`]'s tolerances (the directional checks are f64).
//!
//! Both contract the output with a random upstream gradient `u` (seeded) instead of
//! summing it, so a gradient that is right in sum but wrong in place (a mis-permuted
//! output) is caught. A failure is a [`GradcheckFailure`] that names the input, the element,
//! the analytic and numeric values and the tolerance.
//!
//! `gradgradcheck` differentiates the recorded backward pass with respect to the inputs
//! *and* to the upstream gradient, as PyTorch's does (it treats `grad_outputs` as inputs):
//! for a linear or piecewise-linear op the first half has nothing to find (the gradient
//! does not depend on the inputs), but the second still checks that the recorded rule is a
//! function of `u` with the right derivative. It also checks that the recorded gradients
//! have the values of the plain backward pass.
//!
//! Defaults follow PyTorch's `gradcheck`: `eps = 1e-6`, `atol = 1e-5`, `rtol = 1e-3`.

// A failure is a full report (where, how far, why) returned once, on the path that ends a
// test: its size does not matter, and boxing it would make every caller's match clumsier.
#![allow(clippy::result_large_err)]

use std::fmt;

use rand::SeedableRng;

use crate::graph::Graph;
use crate::shape::Shape;
use crate::tensor::{unravel, Tensor};
use crate::var::Var;
use crate::Float;

/// Tolerances and the seed of a gradient check.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckConfig {
    /// The finite-difference step.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (relative to the numeric value).
    pub rtol: f64,
    /// Seed of the random upstream gradients.
    pub seed: u64,
    /// Names of the inputs, in order, for the failure report (default none: inputs are
    /// named by position).
    pub labels: Vec<String>,
}

impl Default for GradcheckConfig {
    fn default() -> Self {
        GradcheckConfig {
            eps: 1e-6,
            atol: 1e-5,
            rtol: 1e-3,
            seed: 0,
            labels: Vec::new(),
        }
    }
}

impl GradcheckConfig {
    /// Tolerances for a check in `f32`: step `1e-3`, `atol = 1e-3`, `rtol = 1e-2`. A central
    /// difference in `f32` loses about `ε_f32/step ≈ 1e-4` of the value to rounding, so
    /// the f64 defaults (step `1e-6`) would measure noise. A check in f32 finds wrong rules,
    /// not errors in the last digits; check in f64 for those.
    ///
    /// ```
    /// use tapegrad_core::gradcheck::{gradcheck, gradgradcheck, GradcheckConfig};
    /// use tapegrad_core::Tensor;
    /// let x = Tensor::<f32>::from_vec(vec![0.3, -1.2, 2.0], [3]);
    /// let cfg = GradcheckConfig::for_f32();
    /// gradcheck(|_, v| v[0].tanh() * v[0], &[x.clone()], &cfg).unwrap();
    /// gradgradcheck(|_, v| v[0].sigmoid() * v[0].sin(), &[x], &cfg).unwrap();
    /// ```
    pub fn for_f32() -> Self {
        GradcheckConfig {
            eps: 1e-3,
            atol: 1e-3,
            rtol: 1e-2,
            ..GradcheckConfig::default()
        }
    }
    /// With names for the inputs, in order, used by the failure report:
    /// `with_labels(["x", "weight"])` reports "input `weight`" instead of "input 1".
    pub fn with_labels<S: Into<String>>(mut self, labels: impl IntoIterator<Item = S>) -> Self {
        self.labels = labels.into_iter().map(Into::into).collect();
        self
    }
}

crate::setters! { GradcheckConfig {
    /// With another finite-difference step.
    with_eps(eps: f64) => eps = eps;
    /// With another absolute tolerance.
    with_atol(atol: f64) => atol = atol;
    /// With another relative tolerance.
    with_rtol(rtol: f64) => rtol = rtol;
    /// With another seed for the random upstream gradients.
    with_seed(seed: u64) => seed = seed;
}}

/// What a passing check measured.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckReport {
    /// Number of gradient elements compared.
    pub checked: usize,
    /// The largest `|analytic − numeric|`.
    pub max_abs_error: f64,
}

/// A failed gradient check: the worst element and how many failed.
#[derive(Clone, Debug, PartialEq)]
pub struct GradcheckFailure {
    /// 1 for `gradcheck`, 2 for `gradgradcheck`.
    pub order: u8,
    /// What was compared: `"gradient"` (first order), `"second-order gradient"` (with
    /// respect to an input), `"gradient with respect to the upstream gradient"`, or
    /// `"recorded gradient"` (the value of `backward_create_graph`'s gradient against
    /// `backward`'s).
    pub check: &'static str,
    /// Which input (position in the inputs slice); `inputs.len()` is the upstream gradient.
    pub input: usize,
    /// The multi-index of the worst element within that input.
    pub index: Vec<usize>,
    /// The gradient from the backward rules.
    pub analytic: f64,
    /// The central finite difference.
    pub numeric: f64,
    /// `|analytic − numeric|`.
    pub error: f64,
    /// `atol + rtol·|numeric|`.
    pub tolerance: f64,
    /// How many elements were out of tolerance.
    pub failures: usize,
    /// How many elements were compared.
    pub checked: usize,
    /// The input's name, when the configuration gives one ([`GradcheckConfig::with_labels`]).
    pub label: Option<String>,
    /// What the check makes of the failure, when it can say more than the numbers: the
    /// message of a backward pass that panicked, or that a second-order gradient does not
    /// depend on its input at all.
    pub note: Option<String>,
}

impl GradcheckFailure {
    /// A backward pass that panicked (a custom rule returning a gradient of the wrong shape).
    fn panicked(order: u8, message: String) -> GradcheckFailure {
        GradcheckFailure {
            order,
            check: "backward",
            input: 0,
            index: Vec::new(),
            analytic: f64::NAN,
            numeric: f64::NAN,
            error: f64::NAN,
            tolerance: f64::NAN,
            failures: 1,
            checked: 0,
            label: None,
            note: Some(message),
        }
    }

    /// Names the input from the configuration's labels.
    fn labelled(mut self, cfg: &GradcheckConfig) -> GradcheckFailure {
        if self.check != "backward" {
            self.label = cfg.labels.get(self.input).cloned();
        }
        self
    }
}

/// Runs a backward pass, turning a panic inside it into a failure of the check.
fn catching<R>(order: u8, pass: impl FnOnce() -> R) -> Result<R, GradcheckFailure> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(pass)).map_err(|p| {
        let message = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(a panic without a message)".into());
        GradcheckFailure::panicked(order, message)
    })
}

impl fmt::Display for GradcheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = if self.order == 1 {
            "gradcheck"
        } else {
            "gradgradcheck"
        };
        if self.check == "backward" {
            let note = self.note.as_deref().unwrap_or("");
            return write!(
                f,
                "{name} failed (backward): the backward pass panicked: {note}"
            );
        }
        write!(
            f,
            "{} failed ({}) for {} at element {:?}: analytic {:e}, numeric {:e}, |diff| {:.3e} > tolerance {:.3e} (atol + rtol·|numeric|); {} of {} elements fail",
            name,
            self.check,
            if self.check == "gradient with respect to the upstream gradient" {
                "the upstream gradient".to_string()
            } else if let Some(l) = &self.label {
                format!("input `{l}`")
            } else {
                format!("input {}", self.input)
            },
            self.index,
            self.analytic,
            self.numeric,
            self.error,
            self.tolerance,
            self.failures,
            self.checked
        )?;
        match &self.note {
            Some(n) => write!(f, "; {n}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for GradcheckFailure {}

fn normal(shape: &[usize], rng: &mut rand::rngs::StdRng) -> Tensor<f64> {
    Tensor::rand_normal(shape, 0.0, 1.0, rng)
}

fn dot(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    a.as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| x * y)
        .sum()
}

/// Compares analytic and numeric gradients of every element of every input (each pair
/// `(atol, rtol)` its own tolerance).
fn compare(
    order: u8,
    check: &'static str,
    inputs: &[Shape],
    analytic: &[Tensor<f64>],
    mut numeric_at: impl FnMut(usize, usize) -> f64,
    (atol, rtol): (f64, f64),
) -> Result<GradcheckReport, GradcheckFailure> {
    let mut worst: Option<GradcheckFailure> = None;
    let mut worst_ratio = 0.0;
    let (mut failures, mut checked, mut max_abs) = (0, 0, 0.0f64);
    for (i, shape) in inputs.iter().enumerate() {
        for j in 0..shape.iter().product::<usize>() {
            let n = numeric_at(i, j);
            let a = analytic[i].as_slice()[j];
            let err = (a - n).abs();
            let tol = atol + rtol * n.abs();
            checked += 1;
            max_abs = max_abs.max(err);
            if err.is_nan() || err > tol {
                failures += 1;
                let ratio = if err.is_nan() {
                    f64::INFINITY
                } else {
                    err / tol
                };
                if worst.is_none() || ratio > worst_ratio {
                    worst_ratio = ratio;
                    worst = Some(GradcheckFailure {
                        order,
                        check,
                        input: i,
                        index: unravel(j, shape).to_vec(),
                        analytic: a,
                        numeric: n,
                        error: err,
                        tolerance: tol,
                        failures: 0,
                        checked: 0,
                        label: None,
                        note: None,
                    });
                }
            }
        }
    }
    match worst {
        Some(mut w) => {
            w.failures = failures;
            w.checked = checked;
            Err(w)
        }
        None => Ok(GradcheckReport {
            checked,
            max_abs_error: max_abs,
        }),
    }
}

/// Evaluates `f` at `inputs` with element `j` of input `i` moved by `delta`.
fn perturbed<T: Float>(inputs: &[Tensor<T>], i: usize, j: usize, delta: f64) -> Vec<Tensor<T>> {
    let mut xs = inputs.to_vec();
    xs[i].as_mut_slice()[j] += T::from_f64(delta);
    xs
}

/// The inputs' shapes, for the comparison.
fn shapes_of<T: Float>(inputs: &[Tensor<T>]) -> Vec<Shape> {
    inputs.iter().map(|t| Shape::from_slice(t.dims())).collect()
}

/// Checks the first-order gradients of `f` at `inputs` against central finite
/// differences of `⟨u, f(x)⟩` for a random `u`.
///
/// ```
/// use tapegrad_core::gradcheck::{gradcheck, GradcheckConfig};
/// use tapegrad_core::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], [3]);
/// gradcheck(|_, v| v[0].tanh() * v[0], &[x], &GradcheckConfig::default()).unwrap();
/// ```
///
/// # Errors
/// A [`GradcheckFailure`] naming the worst element when any element is out of tolerance.
///
/// # Panics
/// If `f` returns values of different shapes for perturbed inputs.
pub fn gradcheck<T: Float, F>(
    f: F,
    inputs: &[Tensor<T>],
    cfg: &GradcheckConfig,
) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    let g = Graph::new();
    let xs: Vec<Var<T>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
    let y = f(&g, &xs);
    let u = normal(&y.shape(), &mut rng);
    let ut: Tensor<T> = u.cast();
    let analytic: Vec<Tensor<f64>> = match catching(1, || y.try_backward_with(&ut))? {
        Ok(grads) => xs.iter().map(|&x| grads.wrt(x).cast()).collect(),
        Err(_) => inputs
            .iter()
            .map(|t| t.cast::<f64>().zeros_like())
            .collect(),
    };
    let eval = |xs_in: Vec<Tensor<T>>| -> f64 {
        let g = Graph::new();
        let vs: Vec<Var<T>> = xs_in.into_iter().map(|t| g.leaf(t)).collect();
        let y = f(&g, &vs).value();
        assert_eq!(
            y.dims(),
            u.dims(),
            "gradcheck: the function's output shape changed under perturbation"
        );
        dot(&u, &y.cast())
    };
    let eps = cfg.eps;
    compare(
        1,
        "gradient",
        &shapes_of(inputs),
        &analytic,
        |i, j| {
            (eval(perturbed(inputs, i, j, eps)) - eval(perturbed(inputs, i, j, -eps))) / (2.0 * eps)
        },
        (cfg.atol, cfg.rtol),
    )
    .map_err(|e| e.labelled(cfg))
}

/// How far the recorded gradient (`backward_create_graph`) may be from the plain one: both
/// compute the same quantity, but a rule may take another route on `Var`s (convolution's
/// recorded form is unfold and matmul where the plain one is Winograd's), so the last bits
/// differ.
const RECORDED_RTOL: f64 = 1e-9;

/// Checks second-order gradients: the gradient of
/// `h(x, u) = Σᵢ ⟨vᵢ, ∂⟨u, f(x)⟩/∂xᵢ⟩` computed by differentiating the recorded backward
/// pass (`backward_create_graph`), with respect to every input `xᵢ` and to the upstream
/// gradient `u`, against central finite differences of `h` computed with the first-order
/// backward pass; and the recorded first-order gradients against the plain ones (to
/// `1e-9` relative: both compute the same numbers, by routes that may round differently).
///
/// `∂h/∂u = J·v` does not depend on how `u` enters the rule only for rules that ignore
/// it: so even for ops whose gradient does not depend on the inputs (linear and
/// piecewise-linear ones) the check tests the recorded rule, as PyTorch's `gradgradcheck`
/// does by treating `grad_outputs` as inputs.
///
/// ```
/// use tapegrad_core::gradcheck::{gradgradcheck, GradcheckConfig};
/// use tapegrad_core::Tensor;
/// let x = Tensor::from_vec(vec![0.3, -1.2, 2.0], [3]);
/// gradgradcheck(|_, v| v[0].sigmoid() * v[0].sin(), &[x], &GradcheckConfig::default()).unwrap();
/// ```
///
/// # Errors
/// A [`GradcheckFailure`] (order 2) naming the worst element; its `input` is
/// `inputs.len()` when the failure is with respect to the upstream gradient.
pub fn gradgradcheck<T: Float, F>(
    f: F,
    inputs: &[Tensor<T>],
    cfg: &GradcheckConfig,
) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'g> Fn(&'g Graph<T>, &[Var<'g, T>]) -> Var<'g, T>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(1));
    let u_shape = {
        let g = Graph::new();
        let xs: Vec<Var<T>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
        f(&g, &xs).shape()
    };
    let u = normal(&u_shape, &mut rng);
    let ut: Tensor<T> = u.cast();
    let vs: Vec<Tensor<f64>> = inputs.iter().map(|t| normal(t.dims(), &mut rng)).collect();
    let vts: Vec<Tensor<T>> = vs.iter().map(|v| v.cast()).collect();
    let zeros = || -> Vec<Tensor<f64>> {
        inputs
            .iter()
            .map(|t| Tensor::zeros(Shape::from_slice(t.dims())))
            .collect()
    };
    let shapes = shapes_of(inputs);

    // The plain first-order gradients at `x`, for the recorded ones to match.
    let plain: Vec<Tensor<f64>> = {
        let g = Graph::new();
        let xs: Vec<Var<T>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
        let y = f(&g, &xs);
        match catching(2, || y.try_backward_with(&ut))? {
            Ok(grads) => xs.iter().map(|&x| grads.wrt(x).cast()).collect(),
            Err(_) => zeros(),
        }
    };

    // Analytic: differentiate the recorded first-order gradients, with respect to the
    // inputs and to the upstream gradient (a leaf here).
    let g = Graph::new();
    let xs: Vec<Var<T>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
    let uv = g.leaf(ut.clone());
    let y = f(&g, &xs);
    let (analytic, analytic_u, recorded) = if y.requires_grad() {
        let gv = catching(2, || y.backward_create_graph_with(uv))?;
        let recorded: Vec<Tensor<f64>> = xs.iter().map(|&x| gv.wrt_var(x).value().cast()).collect();
        let mut h = g.scalar(T::zero());
        for (x, v) in xs.iter().zip(&vts) {
            h += (gv.wrt_var(*x) * v).sum();
        }
        match catching(2, || h.try_backward())? {
            Ok(grads) => (
                xs.iter().map(|&x| grads.wrt(x).cast()).collect(),
                grads.wrt(uv).cast(),
                recorded,
            ),
            Err(_) => (zeros(), u.zeros_like(), recorded),
        }
    } else {
        (zeros(), u.zeros_like(), zeros())
    };

    // The recorded values: the same numbers as the plain pass, to rounding.
    let scale = plain
        .iter()
        .flat_map(|t| t.as_slice())
        .fold(0.0f64, |m, v| m.max(v.abs()));
    // In f32 the two routes round apart by more than in f64.
    let recorded_rtol = RECORDED_RTOL.max(100.0 * T::epsilon().as_f64());
    compare(
        2,
        "recorded gradient",
        &shapes,
        &recorded,
        |i, j| plain[i].as_slice()[j],
        (recorded_rtol * scale.max(1e-300), recorded_rtol),
    )
    .map_err(|e| e.labelled(cfg))?;

    // Numeric: finite differences of h, each h from an ordinary backward pass.
    let h_at = |xs_in: Vec<Tensor<T>>, u: &Tensor<f64>| -> f64 {
        let g = Graph::new();
        let xs: Vec<Var<T>> = xs_in.into_iter().map(|t| g.leaf(t)).collect();
        let y = f(&g, &xs);
        match y.try_backward_with(&u.cast()) {
            Ok(grads) => xs
                .iter()
                .zip(&vs)
                .map(|(&x, v)| dot(&grads.wrt(x).cast(), v))
                .sum(),
            Err(_) => 0.0,
        }
    };
    let eps = cfg.eps;
    let wrt_x = compare(
        2,
        "second-order gradient",
        &shapes,
        &analytic,
        |i, j| {
            (h_at(perturbed(inputs, i, j, eps), &u) - h_at(perturbed(inputs, i, j, -eps), &u))
                / (2.0 * eps)
        },
        (cfg.atol, cfg.rtol),
    )
    .map_err(|mut e| {
        if analytic[e.input].as_slice().iter().all(|&a| a == 0.0) {
            e.note = Some(
                "the recorded gradient does not depend on this input (analytic 0 everywhere): \
                 the rule likely uses a detached value (`.value()` or a constant) where it \
                 should use the input"
                    .into(),
            );
        }
        e.labelled(cfg)
    })?;
    let us = std::slice::from_ref(&u);
    let wrt_u = compare(
        2,
        "gradient with respect to the upstream gradient",
        &shapes_of(us),
        std::slice::from_ref(&analytic_u),
        |_, j| {
            (h_at(inputs.to_vec(), &perturbed(us, 0, j, eps)[0])
                - h_at(inputs.to_vec(), &perturbed(us, 0, j, -eps)[0]))
                / (2.0 * eps)
        },
        (cfg.atol, cfg.rtol),
    )
    .map_err(|mut e| {
        e.input = inputs.len();
        e
    })?;
    Ok(GradcheckReport {
        checked: wrt_x.checked + wrt_u.checked,
        max_abs_error: wrt_x.max_abs_error.max(wrt_u.max_abs_error),
    })
}

/// Gradients along one random direction: for large inputs, where checking every element
/// would take a forward pass per element. With a random upstream gradient `u` and a random
/// unit direction `dᵢ` per input, compares `Σᵢ ⟨∂⟨u, f⟩/∂xᵢ, dᵢ⟩` from the backward pass
/// with the central difference of `⟨u, f(x + ε·d)⟩` — three passes whatever the size, and a
/// wrong gradient anywhere in the tensor moves the sum (a random direction is orthogonal
/// to an error only with probability 0).
///
/// PyTorch's default tolerances are meant for one element at a time. The directional
/// derivative sums every element's contribution, so an error in a few elements moves it
/// by a small fraction: for large inputs tighten the tolerances and take a larger step
/// (the direction has unit norm, so each of n elements moves by only `eps/√n`), e.g.
/// `eps = 1e-3, atol = rtol = 1e-6` as tapegrad's own large-shape checks do.
///
/// ```
/// use tapegrad_core::gradcheck::{gradcheck_directional, GradcheckConfig};
/// use tapegrad_core::Tensor;
/// let x = Tensor::from_fn([300, 300], |i| (i as f64 * 0.37).sin());
/// gradcheck_directional(|_, v| v[0].tanh() * v[0], &[x], &GradcheckConfig::default()).unwrap();
/// ```
///
/// # Errors
/// A [`GradcheckFailure`] (order 1, element `[]`: the directional derivative).
pub fn gradcheck_directional<F>(
    f: F,
    inputs: &[Tensor<f64>],
    cfg: &GradcheckConfig,
) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(2));
    let dirs = unit_directions(inputs, &mut rng);
    let g = Graph::new();
    let xs: Vec<Var<f64>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
    let y = f(&g, &xs);
    let u = normal(&y.shape(), &mut rng);
    let analytic = projected(catching(1, || y.try_backward_with(&u))?, &xs, &dirs);
    let at = |t: f64| -> f64 {
        let g = Graph::new();
        let vs: Vec<Var<f64>> = along(inputs, &dirs, t)
            .into_iter()
            .map(|x| g.leaf(x))
            .collect();
        dot(&u, &f(&g, &vs).value())
    };
    let numeric = (at(cfg.eps) - at(-cfg.eps)) / (2.0 * cfg.eps);
    compare_one(
        1,
        "gradient along a random direction",
        analytic,
        numeric,
        cfg,
    )
}

/// Second-order gradients along one random direction (see [`gradcheck_directional`]): the
/// derivative of `h(x) = Σᵢ ⟨vᵢ, ∂⟨u, f⟩/∂xᵢ⟩` along a random unit direction, from the
/// recorded backward pass, against the central difference of `h` computed with the plain
/// one.
///
/// # Errors
/// A [`GradcheckFailure`] (order 2, element `[]`).
pub fn gradgradcheck_directional<F>(
    f: F,
    inputs: &[Tensor<f64>],
    cfg: &GradcheckConfig,
) -> Result<GradcheckReport, GradcheckFailure>
where
    F: for<'g> Fn(&'g Graph<f64>, &[Var<'g, f64>]) -> Var<'g, f64>,
{
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_add(3));
    let dirs = unit_directions(inputs, &mut rng);
    let vs: Vec<Tensor<f64>> = inputs.iter().map(|t| normal(t.dims(), &mut rng)).collect();
    let g = Graph::new();
    let xs: Vec<Var<f64>> = inputs.iter().map(|t| g.leaf(t.clone())).collect();
    let y = f(&g, &xs);
    let u = normal(&y.shape(), &mut rng);
    let analytic = if y.requires_grad() {
        let gv = catching(2, || y.backward_create_graph_with(g.constant(u.clone())))?;
        let mut h = g.scalar(0.0);
        for (x, v) in xs.iter().zip(&vs) {
            h += (gv.wrt_var(*x) * v).sum();
        }
        projected(catching(2, || h.try_backward())?, &xs, &dirs)
    } else {
        0.0
    };
    let h_at = |t: f64| -> f64 {
        let g = Graph::new();
        let xs: Vec<Var<f64>> = along(inputs, &dirs, t)
            .into_iter()
            .map(|x| g.leaf(x))
            .collect();
        projected(f(&g, &xs).try_backward_with(&u), &xs, &vs)
    };
    let numeric = (h_at(cfg.eps) - h_at(-cfg.eps)) / (2.0 * cfg.eps);
    compare_one(
        2,
        "second-order gradient along a random direction",
        analytic,
        numeric,
        cfg,
    )
}

/// `Σᵢ ⟨∂/∂xᵢ, wᵢ⟩` of a backward pass, 0 where the pass found nothing to differentiate.
fn projected(
    grads: crate::Result<crate::Gradients<f64>>,
    xs: &[Var<'_, f64>],
    ws: &[Tensor<f64>],
) -> f64 {
    match grads {
        Ok(grads) => xs.iter().zip(ws).map(|(&x, w)| dot(&grads.wrt(x), w)).sum(),
        Err(_) => 0.0,
    }
}

/// A random direction of unit norm over all the inputs together.
fn unit_directions(inputs: &[Tensor<f64>], rng: &mut rand::rngs::StdRng) -> Vec<Tensor<f64>> {
    let dirs: Vec<Tensor<f64>> = inputs.iter().map(|t| normal(t.dims(), rng)).collect();
    let norm = dirs.iter().map(|d| dot(d, d)).sum::<f64>().sqrt();
    let k = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    dirs.iter().map(|d| d.mul_scalar(k)).collect()
}

/// The inputs moved by `t` along the directions.
fn along(inputs: &[Tensor<f64>], dirs: &[Tensor<f64>], t: f64) -> Vec<Tensor<f64>> {
    inputs
        .iter()
        .zip(dirs)
        .map(|(x, d)| {
            let mut x = x.clone();
            for (xi, di) in x.as_mut_slice().iter_mut().zip(d.as_slice()) {
                *xi += t * di;
            }
            x
        })
        .collect()
}

/// One analytic number against one numeric one.
fn compare_one(
    order: u8,
    check: &'static str,
    a: f64,
    n: f64,
    cfg: &GradcheckConfig,
) -> Result<GradcheckReport, GradcheckFailure> {
    let err = (a - n).abs();
    let tol = cfg.atol + cfg.rtol * n.abs();
    if err.is_nan() || err > tol {
        return Err(GradcheckFailure {
            order,
            check,
            input: 0,
            index: vec![],
            analytic: a,
            numeric: n,
            error: err,
            tolerance: tol,
            failures: 1,
            checked: 1,
            label: None,
            note: None,
        });
    }
    Ok(GradcheckReport {
        checked: 1,
        max_abs_error: err,
    })
}

#[cfg(test)]
mod tests;

//! L-BFGS (Nocedal 1980; `torch.optim.LBFGS`), with PyTorch's algorithm step for step,
//! including its strong-Wolfe line search (a port of minFunc's, with cubic interpolation).
//!
//! Each [`Lbfgs::step`] call evaluates the closure once (the loss it returns is that
//! **initial** loss), then runs up to `max_iter` iterations: the direction from the
//! two-loop recursion over the last `history_size` pairs (a pair is kept only when
//! `y·s > 1e-10`), a step of `lr` (the very first iteration ever: `min(1, 1/‖g‖₁)·lr`),
//! and stops at `max_iter` or `max_eval` evaluations, `max|g| ≤ tolerance_grad`,
//! `max|d·t| ≤ tolerance_change`, or `|Δloss| < tolerance_change`. The iteration count is
//! global across calls, as PyTorch's.

use std::collections::VecDeque;

use tapegrad_core::checkpoint::{Checkpoint, Entry};
use tapegrad_core::{Float, Gradients, ParamKey, ParamStore, Result, Tensor};

/// The step-length rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineSearch {
    /// A fixed step `lr` (PyTorch's `line_search_fn=None`).
    None,
    /// PyTorch's `'strong_wolfe'` (c₁ = 1e-4, c₂ = 0.9, at most 25 evaluations).
    StrongWolfe,
}

/// L-BFGS options (PyTorch's defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LbfgsConfig {
    /// Step length (default 1).
    pub lr: f64,
    /// Iterations per `step` call (default 20).
    pub max_iter: usize,
    /// Closure evaluations per call (default `max_iter·5/4`).
    pub max_eval: Option<usize>,
    /// Stop when `max|g| ≤` this (default 1e-7).
    pub tolerance_grad: f64,
    /// Stop when the step or the loss change is below this (default 1e-9).
    pub tolerance_change: f64,
    /// Pairs kept (default 100).
    pub history_size: usize,
    /// The line search (default none).
    pub line_search: LineSearch,
}

impl Default for LbfgsConfig {
    fn default() -> Self {
        LbfgsConfig {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search: LineSearch::None,
        }
    }
}

tapegrad_core::setters! { LbfgsConfig {
    /// With a step length.
    with_lr(lr: f64) => lr = lr;
    /// With iterations per call.
    with_max_iter(n: usize) => max_iter = n;
    /// With evaluations per call.
    with_max_eval(n: usize) => max_eval = Some(n);
    /// With a history size.
    with_history_size(n: usize) => history_size = n;
    /// With the gradient tolerance: stop when `max|g| ≤ tol` (PyTorch's `tolerance_grad`).
    with_tolerance_grad(tol: f64) => tolerance_grad = tol;
    /// With the change tolerance: stop when the step or the loss change is below `tol`
    /// (PyTorch's `tolerance_change`).
    with_tolerance_change(tol: f64) => tolerance_change = tol;
    /// With a line search.
    with_line_search(ls: LineSearch) => line_search = ls;
}}

/// L-BFGS over a fixed list of parameters, flattened into one vector in that order.
///
/// ```
/// use tapegrad_core::{Graph, ParamStore, Tensor};
/// use tapegrad_optim::{Lbfgs, LbfgsConfig, LineSearch};
/// let mut store = ParamStore::<f64>::new();
/// let p = store.insert("p", Tensor::from_vec(vec![-1.5, 2.0], [2]));
/// let mut opt = Lbfgs::new(vec![p], LbfgsConfig::default().with_line_search(LineSearch::StrongWolfe));
/// for _ in 0..5 {
///     opt.step(&mut store, |s| {
///         let g = Graph::new();
///         let v = g.param(s, p);
///         let (x, y) = (v.select(0, 0), v.select(0, 1));
///         let f = x.rsub_scalar(1.0).square() + (y - x.square()).square() * 100.0; // Rosenbrock
///         (f.item(), f.backward())
///     });
/// }
/// let x = store.value(p);
/// // (1, 1) to within PyTorch's default tolerance_change, as PyTorch's run: ≈ (0.99998, 0.99997)
/// assert!((x.get(&[0]) - 1.0).abs() < 1e-4 && (x.get(&[1]) - 1.0).abs() < 1e-4);
/// ```
#[derive(Clone, Debug)]
pub struct Lbfgs<T: Float> {
    keys: Vec<ParamKey>,
    cfg: LbfgsConfig,
    func_evals: usize,
    n_iter: usize,
    d: Vec<T>,
    t: T,
    old_dirs: VecDeque<Vec<T>>,
    old_stps: VecDeque<Vec<T>>,
    ro: VecDeque<T>,
    h_diag: T,
    prev_flat_grad: Option<Vec<T>>,
    prev_loss: f64,
}

fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    a.iter().zip(b).fold(T::zero(), |s, (&x, &y)| s + x * y)
}

fn abs_max<T: Float>(a: &[T]) -> T {
    a.iter().fold(T::zero(), |m, &v| {
        if v.abs() > m || v.is_nan() {
            v.abs()
        } else {
            m
        }
    })
}

/// PyTorch's `_cubic_interpolate`: the minimiser of the cubic through two points with their
/// derivatives, clamped to `bounds` (default: between the points).
fn cubic_interpolate<T: Float>(
    x1: T,
    f1: T,
    g1: T,
    x2: T,
    f2: T,
    g2: T,
    bounds: Option<(T, T)>,
) -> T {
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let three = T::from_f64(3.0);
    let two = T::from_f64(2.0);
    let d1 = g1 + g2 - three * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= T::zero() {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + two * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + two * d2))
        };
        min_pos.max(lo).min(hi)
    } else {
        (lo + hi) / two
    }
}

impl<T: Float> Lbfgs<T> {
    /// An optimizer of the parameters `keys` (their order fixes the flattening).
    pub fn new(keys: Vec<ParamKey>, cfg: LbfgsConfig) -> Self {
        Lbfgs {
            keys,
            cfg,
            func_evals: 0,
            n_iter: 0,
            d: Vec::new(),
            t: T::zero(),
            old_dirs: VecDeque::new(),
            old_stps: VecDeque::new(),
            ro: VecDeque::new(),
            h_diag: T::one(),
            prev_flat_grad: None,
            prev_loss: 0.0,
        }
    }

    /// Iterations so far, over all calls (PyTorch's `state['n_iter']`).
    pub fn n_iter(&self) -> usize {
        self.n_iter
    }

    /// Closure evaluations so far (PyTorch's `state['func_evals']`).
    pub fn func_evals(&self) -> usize {
        self.func_evals
    }

    fn flat_grad(&self, store: &ParamStore<T>, grads: &Gradients<T>) -> Vec<T> {
        let mut out = Vec::new();
        for &k in &self.keys {
            match grads.param(k) {
                Some(g) => out.extend_from_slice(g.as_slice()),
                None => out.extend(std::iter::repeat_n(T::zero(), store.value(k).numel())),
            }
        }
        out
    }

    fn flat_params(&self, store: &ParamStore<T>) -> Vec<T> {
        self.keys
            .iter()
            .flat_map(|&k| store.value(k).as_slice().iter().copied())
            .collect()
    }

    fn set_params(&self, store: &mut ParamStore<T>, x: &[T]) {
        let mut off = 0;
        for &k in &self.keys {
            let p = store.value_mut(k).as_mut_slice();
            p.copy_from_slice(&x[off..off + p.len()]);
            off += p.len();
        }
    }

    /// `p ← p + t·d`, parameter by parameter.
    fn add_dir(&self, store: &mut ParamStore<T>, t: T, d: &[T]) {
        let mut off = 0;
        for &k in &self.keys {
            let p = store.value_mut(k).as_mut_slice();
            for (pi, &di) in p.iter_mut().zip(&d[off..]) {
                *pi += t * di;
            }
            off += p.len();
        }
    }

    /// One call: up to `max_iter` iterations. `closure` evaluates the loss and its
    /// gradients at the store's current values. Returns the loss at the start of the call.
    pub fn step<F>(&mut self, store: &mut ParamStore<T>, mut closure: F) -> f64
    where
        F: FnMut(&ParamStore<T>) -> (f64, Gradients<T>),
    {
        let cfg = self.cfg;
        let (tol_grad, tol_change) = (
            T::from_f64(cfg.tolerance_grad),
            T::from_f64(cfg.tolerance_change),
        );
        let max_eval = cfg.max_eval.unwrap_or(cfg.max_iter * 5 / 4);
        let (orig_loss, grads) = closure(store);
        let mut loss = orig_loss;
        let mut current_evals = 1;
        self.func_evals += 1;
        let mut flat_grad = self.flat_grad(store, &grads);
        if abs_max(&flat_grad) <= tol_grad {
            return orig_loss;
        }
        let mut n_iter = 0;
        while n_iter < cfg.max_iter {
            n_iter += 1;
            self.n_iter += 1;
            if self.n_iter == 1 {
                self.d = flat_grad.iter().map(|&g| -g).collect();
                self.old_dirs.clear();
                self.old_stps.clear();
                self.ro.clear();
                self.h_diag = T::one();
            } else {
                let prev = self
                    .prev_flat_grad
                    .as_ref()
                    .expect("set after the first iteration");
                let y: Vec<T> = flat_grad.iter().zip(prev).map(|(&a, &b)| a - b).collect();
                let s: Vec<T> = self.d.iter().map(|&v| v * self.t).collect();
                let ys = dot(&y, &s);
                if ys > T::from_f64(1e-10) {
                    if self.old_dirs.len() == cfg.history_size {
                        self.old_dirs.pop_front();
                        self.old_stps.pop_front();
                        self.ro.pop_front();
                    }
                    self.h_diag = ys / dot(&y, &y);
                    self.old_dirs.push_back(y);
                    self.old_stps.push_back(s);
                    self.ro.push_back(T::one() / ys);
                }
                // The two-loop recursion.
                let k = self.old_dirs.len();
                let mut al = vec![T::zero(); k];
                let mut q: Vec<T> = flat_grad.iter().map(|&g| -g).collect();
                for i in (0..k).rev() {
                    al[i] = dot(&self.old_stps[i], &q) * self.ro[i];
                    for (qj, &yj) in q.iter_mut().zip(&self.old_dirs[i]) {
                        *qj -= al[i] * yj;
                    }
                }
                let mut r: Vec<T> = q.iter().map(|&v| v * self.h_diag).collect();
                for (((y, st), &ro), &a) in self
                    .old_dirs
                    .iter()
                    .zip(&self.old_stps)
                    .zip(&self.ro)
                    .zip(&al)
                {
                    let be_i = dot(y, &r) * ro;
                    for (rj, &sj) in r.iter_mut().zip(st) {
                        *rj += (a - be_i) * sj;
                    }
                }
                self.d = r;
            }
            self.prev_flat_grad = Some(flat_grad.clone());
            self.prev_loss = loss;
            let lr = T::from_f64(cfg.lr);
            self.t = if self.n_iter == 1 {
                let l1 = flat_grad.iter().fold(T::zero(), |s, &g| s + g.abs());
                T::one().min(T::one() / l1) * lr
            } else {
                lr
            };
            let gtd = dot(&flat_grad, &self.d);
            if gtd > -tol_change {
                break;
            }
            let mut ls_evals = 0;
            let mut opt_cond = false;
            let d = self.d.clone();
            match cfg.line_search {
                LineSearch::StrongWolfe => {
                    let x0 = self.flat_params(store);
                    let (f_new, g_new, t, evals) = self.strong_wolfe(
                        store,
                        &mut closure,
                        &x0,
                        self.t,
                        &d,
                        T::from_f64(loss),
                        &flat_grad,
                        gtd,
                    );
                    self.t = t;
                    self.add_dir(store, t, &d);
                    loss = f_new.as_f64();
                    flat_grad = g_new;
                    opt_cond = abs_max(&flat_grad) <= tol_grad;
                    ls_evals = evals;
                }
                LineSearch::None => {
                    self.add_dir(store, self.t, &d);
                    if n_iter != cfg.max_iter {
                        let (l, gr) = closure(store);
                        loss = l;
                        flat_grad = self.flat_grad(store, &gr);
                        opt_cond = abs_max(&flat_grad) <= tol_grad;
                        ls_evals = 1;
                    }
                }
            }
            current_evals += ls_evals;
            self.func_evals += ls_evals;
            if n_iter == cfg.max_iter || current_evals >= max_eval || opt_cond {
                break;
            }
            if abs_max(&d.iter().map(|&v| v * self.t).collect::<Vec<_>>()) <= tol_change {
                break;
            }
            if (loss - self.prev_loss).abs() < cfg.tolerance_change {
                break;
            }
        }
        orig_loss
    }

    /// `f(x + t·d)` and its gradient, leaving the parameters at `x`.
    fn directional<F>(
        &self,
        store: &mut ParamStore<T>,
        closure: &mut F,
        x: &[T],
        t: T,
        d: &[T],
    ) -> (T, Vec<T>)
    where
        F: FnMut(&ParamStore<T>) -> (f64, Gradients<T>),
    {
        self.add_dir(store, t, d);
        let (l, g) = closure(store);
        let flat = self.flat_grad(store, &g);
        self.set_params(store, x);
        (T::from_f64(l), flat)
    }

    /// PyTorch's `_strong_wolfe` (c₁ = 1e-4, c₂ = 0.9, tolerance 1e-9, 25 evaluations).
    #[allow(clippy::too_many_arguments)]
    fn strong_wolfe<F>(
        &self,
        store: &mut ParamStore<T>,
        closure: &mut F,
        x: &[T],
        mut t: T,
        d: &[T],
        f: T,
        g: &[T],
        gtd: T,
    ) -> (T, Vec<T>, T, usize)
    where
        F: FnMut(&ParamStore<T>) -> (f64, Gradients<T>),
    {
        let (c1, c2, tol, max_ls) = (T::from_f64(1e-4), T::from_f64(0.9), T::from_f64(1e-9), 25);
        let d_norm = abs_max(d);
        let (mut f_new, mut g_new) = self.directional(store, closure, x, t, d);
        let mut evals = 1;
        let mut gtd_new = dot(&g_new, d);
        let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (T::zero(), f, g.to_vec(), gtd);
        let mut done = false;
        let mut ls_iter = 0;
        // Brackets: (t, f, g, gtd) at two ends (or one when done).
        let mut br_t: Vec<T> = Vec::new();
        let mut br_f: Vec<T> = Vec::new();
        let mut br_g: Vec<Vec<T>> = Vec::new();
        let mut br_gtd: Vec<T> = Vec::new();
        while ls_iter < max_ls {
            if f_new > f + c1 * t * gtd || (ls_iter > 1 && f_new >= f_prev) {
                br_t = vec![t_prev, t];
                br_f = vec![f_prev, f_new];
                br_g = vec![g_prev.clone(), g_new.clone()];
                br_gtd = vec![gtd_prev, gtd_new];
                break;
            }
            if gtd_new.abs() <= -c2 * gtd {
                br_t = vec![t];
                br_f = vec![f_new];
                br_g = vec![g_new.clone()];
                done = true;
                break;
            }
            if gtd_new >= T::zero() {
                br_t = vec![t_prev, t];
                br_f = vec![f_prev, f_new];
                br_g = vec![g_prev.clone(), g_new.clone()];
                br_gtd = vec![gtd_prev, gtd_new];
                break;
            }
            let min_step = t + T::from_f64(0.01) * (t - t_prev);
            let max_step = t * T::from_f64(10.0);
            let tmp = t;
            t = cubic_interpolate(
                t_prev,
                f_prev,
                gtd_prev,
                t,
                f_new,
                gtd_new,
                Some((min_step, max_step)),
            );
            t_prev = tmp;
            f_prev = f_new;
            g_prev = g_new.clone();
            gtd_prev = gtd_new;
            (f_new, g_new) = self.directional(store, closure, x, t, d);
            evals += 1;
            gtd_new = dot(&g_new, d);
            ls_iter += 1;
        }
        if ls_iter == max_ls {
            br_t = vec![T::zero(), t];
            br_f = vec![f, f_new];
            br_g = vec![g.to_vec(), g_new.clone()];
        }
        // Zoom.
        let mut insuf_progress = false;
        let order = |bf: &[T]| {
            if bf[0] <= bf[bf.len() - 1] {
                (0, 1)
            } else {
                (1, 0)
            }
        };
        let (mut low, mut high) = order(&br_f);
        while !done && ls_iter < max_ls {
            if (br_t[1] - br_t[0]).abs() * d_norm < tol {
                break;
            }
            t = cubic_interpolate(
                br_t[0], br_f[0], br_gtd[0], br_t[1], br_f[1], br_gtd[1], None,
            );
            let (bmax, bmin) = (br_t[0].max(br_t[1]), br_t[0].min(br_t[1]));
            let eps = T::from_f64(0.1) * (bmax - bmin);
            if (bmax - t).min(t - bmin) < eps {
                if insuf_progress || t >= bmax || t <= bmin {
                    t = if (t - bmax).abs() < (t - bmin).abs() {
                        bmax - eps
                    } else {
                        bmin + eps
                    };
                    insuf_progress = false;
                } else {
                    insuf_progress = true;
                }
            } else {
                insuf_progress = false;
            }
            (f_new, g_new) = self.directional(store, closure, x, t, d);
            evals += 1;
            gtd_new = dot(&g_new, d);
            ls_iter += 1;
            if f_new > f + c1 * t * gtd || f_new >= br_f[low] {
                br_t[high] = t;
                br_f[high] = f_new;
                br_g[high] = g_new.clone();
                br_gtd[high] = gtd_new;
                (low, high) = order(&br_f);
            } else {
                if gtd_new.abs() <= -c2 * gtd {
                    done = true;
                } else if gtd_new * (br_t[high] - br_t[low]) >= T::zero() {
                    br_t[high] = br_t[low];
                    br_f[high] = br_f[low];
                    br_g[high] = br_g[low].clone();
                    br_gtd[high] = br_gtd[low];
                }
                br_t[low] = t;
                br_f[low] = f_new;
                br_g[low] = g_new.clone();
                br_gtd[low] = gtd_new;
            }
        }
        (br_f[low], br_g[low].clone(), br_t[low], evals)
    }

    /// Writes the state (iteration counts, history, last direction) into `ck` under
    /// `prefix`.
    pub fn save_state(&self, ck: &mut Checkpoint, prefix: &str) {
        ck.set_meta(format!("{prefix}optimizer"), "LBFGS");
        let v = |x: &[T]| Entry::from_float(&Tensor::from_vec(x.to_vec(), [x.len()]));
        ck.insert(
            format!("{prefix}n_iter"),
            Entry::I64(Tensor::scalar(self.n_iter as i64)),
        );
        ck.insert(
            format!("{prefix}func_evals"),
            Entry::I64(Tensor::scalar(self.func_evals as i64)),
        );
        ck.insert(format!("{prefix}d"), v(&self.d));
        ck.insert(format!("{prefix}t"), v(&[self.t]));
        ck.insert(format!("{prefix}h_diag"), v(&[self.h_diag]));
        ck.insert(
            format!("{prefix}prev_loss"),
            Entry::F64(Tensor::scalar(self.prev_loss)),
        );
        if let Some(p) = &self.prev_flat_grad {
            ck.insert(format!("{prefix}prev_flat_grad"), v(p));
        }
        ck.insert(
            format!("{prefix}history"),
            Entry::I64(Tensor::scalar(self.old_dirs.len() as i64)),
        );
        for (i, ((y, s), r)) in self
            .old_dirs
            .iter()
            .zip(&self.old_stps)
            .zip(&self.ro)
            .enumerate()
        {
            ck.insert(format!("{prefix}old_dirs.{i}"), v(y));
            ck.insert(format!("{prefix}old_stps.{i}"), v(s));
            ck.insert(format!("{prefix}ro.{i}"), v(&[*r]));
        }
    }

    /// Restores the state written by [`Lbfgs::save_state`], for the parameters of `store`
    /// this optimizer was built with (their total size fixes the vectors' lengths).
    ///
    /// # Errors
    /// [`tapegrad_core::Error::Checkpoint`] naming the file if an entry is missing, unknown,
    /// of the wrong dtype or length, or holds an invalid value (a negative count, a
    /// history longer than the configured one, a non-finite vector); nothing changes then.
    pub fn load_state(
        &mut self,
        store: &ParamStore<T>,
        ck: &Checkpoint,
        prefix: &str,
    ) -> Result<()> {
        if ck.meta(&format!("{prefix}optimizer")) != Some("LBFGS") {
            return Err(ck.error(format!("no L-BFGS state under `{prefix}`")));
        }
        let name = |n: &str| format!("{prefix}{n}");
        let count = |n: &str| match ck.get(&name(n)) {
            Some(Entry::I64(t)) if t.ndim() == 0 && t.item() >= 0 => Ok(t.item() as usize),
            Some(e) => Err(ck.error(format!(
                "`{}` must be a 0-d i64 count ≥ 0, got {} of shape {:?}",
                name(n),
                e.dtype(),
                e.shape()
            ))),
            None => Err(ck.error(format!("`{}` is missing", name(n)))),
        };
        // A vector of `len` finite values.
        let vector = |n: &str, len: usize| -> Result<Vec<T>> {
            let t = ck.float::<T>(&name(n))?;
            if t.dims() != [len] {
                return Err(ck.error(format!(
                    "`{}` has shape {:?}, expected [{len}]",
                    name(n),
                    t.dims()
                )));
            }
            if let Some(bad) = t.as_slice().iter().find(|v| !v.is_finite()) {
                return Err(ck.error(format!("`{}` holds {bad}", name(n))));
            }
            Ok(t.to_vec())
        };
        let mut d_len = 0usize;
        for &k in &self.keys {
            match store.get(k) {
                Some(p) => d_len += p.value.numel(),
                None => {
                    return Err(
                        ck.error("L-BFGS: a parameter it was built with is not in this store")
                    )
                }
            }
        }
        let n_iter = count("n_iter")?;
        let func_evals = count("func_evals")?;
        let d = vector("d", d_len)?;
        let t = vector("t", 1)?[0];
        let h_diag = vector("h_diag", 1)?[0];
        let prev_loss = match ck.get(&name("prev_loss")) {
            Some(Entry::F64(v)) if v.ndim() == 0 => v.item(),
            _ => return Err(ck.error(format!("`{}` must be a 0-d f64", name("prev_loss")))),
        };
        let prev_flat_grad = match ck.get(&name("prev_flat_grad")) {
            Some(_) => Some(vector("prev_flat_grad", d_len)?),
            None => None,
        };
        let history = count("history")?;
        if history > self.cfg.history_size {
            return Err(ck.error(format!(
                "`{}` is {history}, above the history size {}",
                name("history"),
                self.cfg.history_size
            )));
        }
        let (mut old_dirs, mut old_stps, mut ro) =
            (VecDeque::new(), VecDeque::new(), VecDeque::new());
        for i in 0..history {
            old_dirs.push_back(vector(&format!("old_dirs.{i}"), d_len)?);
            old_stps.push_back(vector(&format!("old_stps.{i}"), d_len)?);
            ro.push_back(vector(&format!("ro.{i}"), 1)?[0]);
        }
        // Nothing else may be under the prefix.
        let fixed = [
            "n_iter",
            "func_evals",
            "d",
            "t",
            "h_diag",
            "prev_loss",
            "prev_flat_grad",
            "history",
        ];
        for (entry, _) in ck.entries_with_prefix(prefix) {
            let rest = &entry[prefix.len()..];
            let indexed = ["old_dirs.", "old_stps.", "ro."].iter().any(|p| {
                rest.strip_prefix(p)
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i < history && format!("{p}{i}") == rest)
            });
            if !fixed.contains(&rest) && !indexed {
                return Err(ck.error(format!("`{entry}` is not part of L-BFGS state")));
            }
        }
        self.n_iter = n_iter;
        self.func_evals = func_evals;
        self.d = d;
        self.t = t;
        self.h_diag = h_diag;
        self.prev_loss = prev_loss;
        self.prev_flat_grad = prev_flat_grad;
        self.old_dirs = old_dirs;
        self.old_stps = old_stps;
        self.ro = ro;
        Ok(())
    }
}

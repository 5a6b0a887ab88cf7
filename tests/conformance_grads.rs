//! Conformance with PyTorch: every case of `tests/reference/grads.json` (values, gradients
//! and Hessian-vector products computed by PyTorch 2.15 in float64, cross-checked with JAX;
//! copied from `shared/reference/grads.json`, see `tests/reference/README.md`).
//!
//! Each case's `source` expression is written below in tapegrad. Values and gradients must
//! agree to 1e-10 relative (`max|a − b| / max(1, max|b|)`), Hessian-vector products
//! (double backward) to 1e-10 as well. The same cases also run in f32 (tolerance 1e-4).

use std::collections::BTreeMap;

use serde_json::Value;
use tapegrad::prelude::*;
use tapegrad_check::reference::{tensor, tensor_f64};

const GRADS_JSON: &str = include_str!("reference/grads.json");

/// The inputs of one case on a graph: differentiable ones as leaves.
struct Inputs<'g, T: Float> {
    vars: BTreeMap<String, Var<'g, T>>,
    index: BTreeMap<String, Tensor<usize>>,
    mask: BTreeMap<String, Tensor<bool>>,
}

impl<'g, T: Float> Inputs<'g, T> {
    fn new(g: &'g Graph<T>, case: &Value) -> Self {
        let mut s = Inputs {
            vars: BTreeMap::new(),
            index: BTreeMap::new(),
            mask: BTreeMap::new(),
        };
        for (name, v) in case["inputs"].as_object().unwrap() {
            match v["dtype"].as_str().unwrap() {
                "f64" => {
                    let t: Tensor<T> = tensor_f64(v).cast();
                    let var = if v["requires_grad"].as_bool().unwrap() {
                        g.leaf(t)
                    } else {
                        g.constant(t)
                    };
                    s.vars.insert(name.clone(), var);
                }
                "i64" => {
                    s.index
                        .insert(name.clone(), tensor(v, |x| x.as_u64().unwrap() as usize));
                }
                "bool" => {
                    s.mask
                        .insert(name.clone(), tensor(v, |x| x.as_bool().unwrap()));
                }
                other => panic!("unknown dtype {other}"),
            }
        }
        s
    }
    fn v(&self, name: &str) -> Var<'g, T> {
        self.vars[name]
    }
}

/// Each case's `source`, in tapegrad.
fn eval<'g, T: Float>(name: &str, i: &Inputs<'g, T>) -> Var<'g, T> {
    let c = T::from_f64;
    let x = || i.v("x");
    let y = || i.v("y");
    let w = || i.v("w");
    match name {
        "add_broadcast_row" => (x() + y()).powf(c(2.0)).sum(),
        "sub_broadcast_col" => (x() - y()).powf(c(3.0)).sum(),
        "mul_broadcast_3d" => (x() * x() * y()).mean(),
        "scalar_arith" => (x().rsub_scalar(c(1.0)) * c(2.5) - (x() + c(3.0)).rdiv_scalar(c(1.5))
            + x() / c(4.0))
        .sum(),
        "neg_exp" => ((-x()).exp() * x()).sum(),
        "log_positive" => (x() * x().log()).sum(),
        "sqrt_positive" => x().sqrt().sum() + x().powf(c(2.0)).sum().sqrt(),
        "pow_scalar_positive" => {
            x().powf(c(3.0)).sum() + x().powf(c(0.5)).sum() + x().powf(c(-1.5)).sum()
        }
        "abs_away_from_zero" => (x().abs() * y()).sum(),
        "sum_axis_keepdim" => (x() * x().sum_dim(1, true)).tanh().sum(),
        "sum_axis_nokeep" => {
            x().sum_dim(0, false).powf(c(2.0)).sum() + x().sum_dim(1, false).powf(c(3.0)).sum()
        }
        "mean_all" => x().powf(c(2.0)).mean() - x().mean().powf(c(2.0)),
        "mean_axis_keepdim" => (x() - x().mean_dim(1, true)).powf(c(2.0)).sum(),
        "max_axis_nokeep" => x().max_dim(1, false).0.powf(c(2.0)).sum(),
        "matmul_2d_tanh" => (x().matmul(i.v("W")) + i.v("b")).tanh().powf(c(2.0)).sum(),
        "matmul_batched_3d" => i.v("A").matmul(i.v("B")).tanh().sum(),
        "matvec" => (i.v("M").matmul(i.v("v")) * c(0.5)).exp().sum(),
        "transpose_2d" => x().matmul(y().t()).tanh().sum(),
        "permute_3d" => (x().permute([2, 0, 1]) * w()).powf(c(2.0)).sum(),
        "reshape" => x().reshape([4, 6]).matmul(i.v("W")).tanh().sum(),
        "slicing" => {
            let a = x().slice(0, 1, 3, 1).slice(1, 1, 4, 1).powf(c(2.0)).sum();
            let b = (x().select(1, 0) * x().select(1, 4)).sum();
            let d = x()
                .slice(0, 0, isize::MAX, 2)
                .select(1, 2)
                .powf(c(3.0))
                .sum();
            a + b + d
        }
        "concat_axis1" => (Var::cat(&[x(), y()], 1).tanh() * w()).sum(),
        "index_select" => {
            x().index_select(0, &i.index["idx"]).powf(c(2.0)).sum()
                + x().index_select(1, &i.index["jdx"]).tanh().sum()
        }
        "where_select" => {
            Var::where_cond(&x().gt_scalar(c(0.0)), x().powf(c(2.0)), y() * x()).sum()
        }
        "masked_fill_zero" => x().masked_fill(&i.mask["m"], c(0.0)).powf(c(2.0)).sum() + x().sum(),
        "sigmoid" => x().sigmoid().powf(c(2.0)).sum(),
        "tanh" => (x() * x().tanh()).sum(),
        "relu" => (x().relu() * w()).sum() + x().relu().powf(c(2.0)).sum(),
        "leaky_relu_0.01" => (x().leaky_relu(c(0.01)) * w()).sum(),
        "elu_alpha1" => (x().elu(c(1.0)) * w()).sum(),
        "gelu_erf_exact" => (x().gelu() * w()).sum(),
        "softplus" => (x().softplus() * w()).sum(),
        "silu" => (x().silu() * w()).sum(),
        "softmax_last_axis" => (x().softmax(-1) * w()).sum(),
        "log_softmax_last_axis" => -(x().log_softmax(-1) * i.v("t")).sum(),
        "logsumexp" => {
            x().logsumexp_dim(-1, false).powf(c(2.0)).sum() + x().logsumexp_dim([0, 1, 2], false)
        }
        "clamp" => x().clamp(c(-0.5), c(0.8)).powf(c(2.0)).sum() + x().sum(),
        "min_max_elementwise" => {
            x().maximum(y()).powf(c(2.0)).sum() + x().minimum(y()).powf(c(3.0)).sum()
        }
        "norm_l1" => (x() - y()).norm(1.0),
        "norm_l2" => x().norm(2.0),
        other => panic!("case {other} has no tapegrad formula: add one"),
    }
}

/// `max|a − b| / max(1, max|b|)`.
fn rel(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.dims(), b.dims());
    let num = a
        .as_slice()
        .iter()
        .zip(b.as_slice())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    let den = b.as_slice().iter().map(|v| v.abs()).fold(1.0, f64::max);
    num / den
}

fn cases() -> Vec<Value> {
    let doc: Value = serde_json::from_str(GRADS_JSON).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

#[test]
fn every_case_matches_pytorch_in_f64() {
    let cases = cases();
    assert_eq!(cases.len(), 40);
    let mut worst = (0.0f64, String::new());
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let g = Graph::<f64>::new();
        let inputs = Inputs::new(&g, case);
        let out = eval(name, &inputs);
        let value = Tensor::scalar(case["value"].as_f64().unwrap());
        let r = rel(&out.value().reshape(Vec::<usize>::new()), &value);
        assert!(
            r <= 1e-10,
            "{name}: value {} vs {} (rel {r:e})",
            out.item(),
            value.item()
        );
        let grads = out.backward();
        for (k, want) in case["grads"].as_object().unwrap() {
            let got = grads.wrt(inputs.v(k));
            let r = rel(&got, &tensor_f64(want));
            assert!(
                r <= 1e-10,
                "{name}: gradient of {k} off by {r:e}\n got {got}\nwant {}",
                tensor_f64(want)
            );
            if r > worst.0 {
                worst = (r, format!("{name}/{k}"));
            }
        }
    }
    eprintln!("worst gradient disagreement: {:e} ({})", worst.0, worst.1);
}

#[test]
fn every_hessian_vector_product_matches_pytorch() {
    let mut n = 0;
    for case in cases().iter().filter(|c| c.get("hvp").is_some()) {
        let name = case["name"].as_str().unwrap();
        let g = Graph::<f64>::new();
        let inputs = Inputs::new(&g, case);
        let out = eval(name, &inputs);
        let gv = out.backward_create_graph();
        let hvp = &case["hvp"];
        let mut h = g.scalar(0.0);
        for (k, v) in hvp["v"].as_object().unwrap() {
            h += (gv.wrt_var(inputs.v(k)) * tensor_f64(v)).sum();
        }
        let hv = h.backward();
        for (k, want) in hvp["Hv"].as_object().unwrap() {
            let got = hv.wrt(inputs.v(k));
            let r = rel(&got, &tensor_f64(want));
            assert!(
                r <= 1e-10,
                "{name}: Hv for {k} off by {r:e}\n got {got}\nwant {}",
                tensor_f64(want)
            );
        }
        n += 1;
    }
    assert_eq!(n, 13);
}

#[test]
fn every_case_matches_pytorch_in_f32() {
    for case in &cases() {
        let name = case["name"].as_str().unwrap();
        let g = Graph::<f32>::new();
        let inputs = Inputs::new(&g, case);
        let out = eval(name, &inputs);
        let r = rel(
            &out.value().cast::<f64>().reshape(Vec::<usize>::new()),
            &Tensor::scalar(case["value"].as_f64().unwrap()),
        );
        assert!(r <= 1e-4, "{name} (f32): value off by {r:e}");
        let grads = out.backward();
        for (k, want) in case["grads"].as_object().unwrap() {
            let r = rel(&grads.wrt(inputs.v(k)).cast(), &tensor_f64(want));
            assert!(r <= 1e-4, "{name} (f32): gradient of {k} off by {r:e}");
        }
    }
}

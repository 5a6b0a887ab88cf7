//! Conformance with PyTorch: every case of `tests/reference/nn.json` and
//! `tests/reference/losses.json` (PyTorch 2.15, float64; see `tests/reference/README.md`),
//! values and gradients to 1e-10 relative (`max|a − b| / max(1, max|b|)`).

use std::collections::BTreeMap;

use serde_json::Value;
use tapegrad_core::{seeded_rng, Gradients, Graph, ParamStore, Tensor, Var, Window2d};
use tapegrad_nn::*;

use tapegrad_check::reference::{tensor_f64, tensor_usize};

const NN: &str = include_str!("reference/nn.json");
const LOSSES: &str = include_str!("reference/losses.json");
const TOL: f64 = 1e-10;

#[track_caller]
fn close(what: &str, got: &Tensor<f64>, want: &Tensor<f64>) {
    assert_eq!(got.dims(), want.dims(), "{what}: shape");
    let num = got
        .as_slice()
        .iter()
        .zip(want.as_slice())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let den = want.as_slice().iter().map(|v| v.abs()).fold(1.0, f64::max);
    assert!(
        num / den <= TOL,
        "{what}: off by {:e}\n got {got}\nwant {want}",
        num / den
    );
}

/// Every case of `nn.json`, each checked by one of the tests below (a case added to the
/// file without a test fails `every_nn_case_is_checked`).
const NN_CASES: [&str; 8] = [
    "batchnorm1d_affine_true",
    "batchnorm1d_affine_false",
    "batchnorm2d_train",
    "layernorm_5",
    "conv2d_k3_s1_p1",
    "maxpool2d_k2_4x4",
    "avgpool2d_k2_4x4",
    "prelu_num_parameters_1",
];

/// The fields a case (or a step of one) may have: every one that holds a number is
/// compared by the tests; the others describe the case.
const CASE_FIELDS: [&str; 16] = [
    "name",
    "formula",
    "source",
    "hyperparameters",
    "upstream_gradient",
    "steps",
    "weight",
    "bias",
    "input",
    "output",
    "grad_output",
    "grad_input",
    "grad_weight",
    "grad_bias",
    "running_mean_after",
    "running_var_after",
];
const STEP_FIELDS: [&str; 12] = [
    "mode",
    "input",
    "grad_output",
    "output",
    "grad_input",
    "grad_weight",
    "grad_bias",
    "running_mean_after",
    "running_var_after",
    "num_batches_tracked_after",
    "running_mean_used",
    "running_var_used",
];

#[test]
fn every_nn_case_is_checked() {
    let doc: Value = serde_json::from_str(NN).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, NN_CASES);
    assert_eq!(doc["n_cases"].as_u64(), Some(8));
    for c in cases {
        for k in c.as_object().unwrap().keys() {
            assert!(
                CASE_FIELDS.contains(&k.as_str()),
                "{}: unknown field {k}",
                c["name"]
            );
        }
        for step in c["steps"].as_array().into_iter().flatten() {
            for k in step.as_object().unwrap().keys() {
                assert!(
                    STEP_FIELDS.contains(&k.as_str()),
                    "{}: unknown step field {k}",
                    c["name"]
                );
            }
        }
    }
}

fn case<'a>(doc: &'a Value, name: &str) -> &'a Value {
    assert!(NN_CASES.contains(&name), "{name} is not a case of nn.json");
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn batchnorm1d_train_and_eval_with_running_statistics() {
    let doc: Value = serde_json::from_str(NN).unwrap();
    for name in ["batchnorm1d_affine_true", "batchnorm1d_affine_false"] {
        let c = case(&doc, name);
        // Every hyperparameter of the case configures the layer.
        let h = &c["hyperparameters"];
        assert_eq!(h.as_object().unwrap().len(), 5, "{name}: {h}");
        let affine = h["affine"].as_bool().unwrap();
        let mut store = ParamStore::<f64>::new();
        let bn = BatchNorm::with_config_1d(
            &mut store,
            "bn",
            h["num_features"].as_u64().unwrap() as usize,
            BatchNormConfig::default()
                .with_affine(affine)
                .with_eps(h["eps"].as_f64().unwrap())
                .with_momentum(h["momentum"].as_f64())
                .with_running_stats(h["track_running_stats"].as_bool().unwrap()),
        );
        let mut steps = 0;
        if affine {
            let (w, b) = bn.affine_params().unwrap();
            *store.value_mut(w) = tensor_f64(&c["weight"]);
            *store.value_mut(b) = tensor_f64(&c["bias"]);
        }
        let (rm, rv) = bn.running_stats().unwrap();
        for (k, step) in c["steps"].as_array().unwrap().iter().enumerate() {
            let check = |what: &str, got: &Tensor<f64>, key: &str| {
                close(
                    &format!("{name} step {k} {what}"),
                    got,
                    &tensor_f64(&step[key]),
                )
            };
            let mode = if step["mode"] == "train" {
                Mode::Train
            } else {
                Mode::Eval
            };
            if mode == Mode::Eval {
                check("running_mean_used", store.value(rm), "running_mean_used");
                check("running_var_used", store.value(rv), "running_var_used");
            }
            let g = Graph::new();
            let x = g.leaf(tensor_f64(&step["input"]));
            let out = bn.forward(&mut Forward::new(&g, &mut store, mode, None), x);
            let grads = (out * tensor_f64(&step["grad_output"])).sum().backward();
            check("output", &out.value(), "output");
            check("grad_input", &grads.wrt(x), "grad_input");
            if affine {
                let (w, b) = bn.affine_params().unwrap();
                check("grad_weight", grads.param(w).unwrap(), "grad_weight");
                check("grad_bias", grads.param(b).unwrap(), "grad_bias");
            }
            if mode == Mode::Train {
                check("running_mean", store.value(rm), "running_mean_after");
                check("running_var", store.value(rv), "running_var_after");
                let nb = store
                    .value(store.key("bn.num_batches_tracked").unwrap())
                    .item();
                assert_eq!(nb, step["num_batches_tracked_after"].as_f64().unwrap());
            }
            steps += 1;
        }
        assert_eq!(
            steps, 4,
            "{name}: three training batches and one in evaluation"
        );
    }
}

/// Runs a layer case: output and input gradient against the file; returns the gradients.
fn check_layer(
    doc: &Value,
    name: &str,
    m: &dyn Module<f64>,
    store: &mut ParamStore<f64>,
) -> Gradients<f64> {
    let c = case(doc, name);
    let g = Graph::new();
    let x = g.leaf(tensor_f64(&c["input"]));
    let out = m.forward(&mut Forward::new(&g, store, Mode::Train, None), x);
    let grads = (out * tensor_f64(&c["grad_output"])).sum().backward();
    close(
        &format!("{name} output"),
        &out.value(),
        &tensor_f64(&c["output"]),
    );
    close(
        &format!("{name} grad_input"),
        &grads.wrt(x),
        &tensor_f64(&c["grad_input"]),
    );
    grads
}

#[test]
fn batchnorm2d_layernorm_conv_pool_prelu() {
    let doc: Value = serde_json::from_str(NN).unwrap();
    let mut rng = seeded_rng(0);

    // BatchNorm2d(3), one training batch.
    let c = case(&doc, "batchnorm2d_train");
    let mut store = ParamStore::<f64>::new();
    let bn = BatchNorm::new_2d(&mut store, "bn", 3);
    let (w, b) = bn.affine_params().unwrap();
    *store.value_mut(w) = tensor_f64(&c["weight"]);
    *store.value_mut(b) = tensor_f64(&c["bias"]);
    let grads = check_layer(&doc, "batchnorm2d_train", &bn, &mut store);
    close(
        "bn2d grad_weight",
        grads.param(w).unwrap(),
        &tensor_f64(&c["grad_weight"]),
    );
    close(
        "bn2d grad_bias",
        grads.param(b).unwrap(),
        &tensor_f64(&c["grad_bias"]),
    );
    let (rm, rv) = bn.running_stats().unwrap();
    close(
        "bn2d running_mean",
        store.value(rm),
        &tensor_f64(&c["running_mean_after"]),
    );
    close(
        "bn2d running_var",
        store.value(rv),
        &tensor_f64(&c["running_var_after"]),
    );

    // LayerNorm([5]) on 2×3×5.
    let c = case(&doc, "layernorm_5");
    let mut store = ParamStore::<f64>::new();
    let ln = LayerNorm::new(&mut store, "ln", &[5]);
    let (lw, lb) = (
        store.key("ln.weight").unwrap(),
        store.key("ln.bias").unwrap(),
    );
    *store.value_mut(lw) = tensor_f64(&c["weight"]);
    *store.value_mut(lb) = tensor_f64(&c["bias"]);
    let grads = check_layer(&doc, "layernorm_5", &ln, &mut store);
    close(
        "layernorm grad_weight",
        grads.param(lw).unwrap(),
        &tensor_f64(&c["grad_weight"]),
    );
    close(
        "layernorm grad_bias",
        grads.param(lb).unwrap(),
        &tensor_f64(&c["grad_bias"]),
    );

    // Conv2d(2 → 3, k=3, stride 1, padding 1).
    let c = case(&doc, "conv2d_k3_s1_p1");
    let h = &c["hyperparameters"];
    assert_eq!(h.as_object().unwrap().len(), 7, "{h}");
    let u = |k: &str| h[k].as_u64().unwrap() as usize;
    let mut store = ParamStore::<f64>::new();
    let conv = Conv2d::new(
        &mut store,
        "conv",
        u("in_channels"),
        u("out_channels"),
        Conv2dConfig::new(u("kernel_size"))
            .with_stride(u("stride"))
            .with_padding(u("padding"))
            .with_dilation(u("dilation"))
            .with_groups(u("groups")),
        &mut rng,
    );
    *store.value_mut(conv.weight()) = tensor_f64(&c["weight"]);
    *store.value_mut(conv.bias().unwrap()) = tensor_f64(&c["bias"]);
    let grads = check_layer(&doc, "conv2d_k3_s1_p1", &conv, &mut store);
    close(
        "conv grad_weight",
        grads.param(conv.weight()).unwrap(),
        &tensor_f64(&c["grad_weight"]),
    );
    close(
        "conv grad_bias",
        grads.param(conv.bias().unwrap()).unwrap(),
        &tensor_f64(&c["grad_bias"]),
    );

    // Pooling (floor mode, stride = kernel).
    let mut store = ParamStore::<f64>::new();
    check_layer(&doc, "maxpool2d_k2_4x4", &MaxPool2d::new(2), &mut store);
    check_layer(
        &doc,
        "avgpool2d_k2_4x4",
        &AvgPool2d(Window2d::new(2, 2).with_stride(2, 2)),
        &mut store,
    );

    // PReLU with one slope.
    let c = case(&doc, "prelu_num_parameters_1");
    let mut store = ParamStore::<f64>::new();
    let pr = PRelu::new(&mut store, "act", 1, 0.25);
    *store.value_mut(pr.weight()) = tensor_f64(&c["weight"]);
    let grads = check_layer(&doc, "prelu_num_parameters_1", &pr, &mut store);
    close(
        "prelu grad_weight",
        grads.param(pr.weight()).unwrap(),
        &tensor_f64(&c["grad_weight"]),
    );
}

#[test]
fn every_loss_matches_pytorch() {
    let doc: Value = serde_json::from_str(LOSSES).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 14);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let inp = &c["inputs"];
        let g = Graph::<f64>::new();
        // Float inputs on the tape (leaves where PyTorch differentiated them).
        let mut vars = BTreeMap::new();
        for (k, v) in inp.as_object().unwrap() {
            if v["dtype"] == "f64" {
                let t = tensor_f64(v);
                vars.insert(
                    k.clone(),
                    if v["requires_grad"].as_bool().unwrap_or(false) {
                        g.leaf(t)
                    } else {
                        g.constant(t)
                    },
                );
            }
        }
        let l = |k: &str| vars[k];
        let target = || tensor_usize(&inp["target"]);
        let out: Var<f64> = match name {
            "mse_mean" => mse_loss(l("input"), l("target"), Reduction::Mean),
            "mse_sum" => mse_loss(l("input"), l("target"), Reduction::Sum),
            "l1_mean" => l1_loss(l("input"), l("target"), Reduction::Mean),
            "smooth_l1_beta1" => smooth_l1_loss(l("input"), l("target"), 1.0, Reduction::Mean),
            "huber_delta1" => huber_loss(l("input"), l("target"), 1.0, Reduction::Mean),
            "huber_delta0.5" => huber_loss(l("input"), l("target"), 0.5, Reduction::Mean),
            "cross_entropy" => cross_entropy(l("logits"), &target(), Reduction::Mean),
            "cross_entropy_label_smoothing_0.1" => cross_entropy_with(
                l("logits"),
                &target(),
                &CrossEntropyConfig::default().with_label_smoothing(0.1),
            ),
            "cross_entropy_soft_targets" => {
                cross_entropy_soft(l("logits"), l("p"), Reduction::Mean)
            }
            "nll_loss" => nll_loss(l("logp"), &target(), None, Reduction::Mean),
            "bce_with_logits" => {
                binary_cross_entropy_with_logits(l("x"), l("y"), None, Reduction::Mean)
            }
            "bce_with_logits_pos_weight" => binary_cross_entropy_with_logits(
                l("x"),
                l("y"),
                Some(&tensor_f64(&inp["pos_weight"])),
                Reduction::Mean,
            ),
            "binary_cross_entropy_probs" => binary_cross_entropy(l("p"), l("y"), Reduction::Mean),
            "kl_div_batchmean" => kl_div(l("input"), l("target"), false, Reduction::BatchMean),
            other => panic!("loss case {other} has no tapegrad call: add one"),
        };
        close(
            &format!("{name} value"),
            &out.value(),
            &Tensor::scalar(c["value"].as_f64().unwrap()),
        );
        let grads = out.backward();
        for (k, want) in c["grads"].as_object().unwrap() {
            close(
                &format!("{name} grad {k}"),
                &grads.wrt(l(k)),
                &tensor_f64(want),
            );
        }
    }
}

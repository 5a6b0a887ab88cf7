//! The cases and claims of `examples/vanishing_gradients.rs`, shared with
//! `tests/vanishing_gradients.rs`.

#![allow(dead_code)] // the test uses part of it

use tapegrad::prelude::*;

pub use crate::claims::{report, Claim};

use crate::deep_mlp::{norm, train, Act, DeepMlp, Pass, Update};

/// One network of the experiment, with its parameters.
pub struct Case {
    /// Its name in tables and plots.
    pub name: &'static str,
    /// The network.
    pub model: DeepMlp,
    /// Its parameters.
    pub store: ParamStore<f32>,
    /// The mean-field backward factor per layer, where the claims compare with one.
    pub theory: Option<f64>,
    /// Weight-gradient norms per layer after training, once trained.
    pub trained: Option<Vec<f64>>,
}

impl Case {
    fn new(name: &'static str, act: Act, init: Init, bias: Init, theory: Option<f64>) -> Self {
        let mut store = ParamStore::new();
        let model = DeepMlp::new(&mut store, 10, 64, act, init, bias, 0);
        Case {
            name,
            model,
            store,
            theory,
            trained: None,
        }
    }

    /// The pass over `(x, y)` with the current parameters.
    pub fn at_init(&self, x: &Tensor<f32>, y: &Tensor<usize>) -> Pass {
        self.model.measure(&self.store, x, y).0
    }
}

/// The five nonlinearities with PyTorch's default init, then ReLU with He's.
pub fn cases() -> Vec<Case> {
    let theory = |a| match a {
        Act::Sigmoid => Some(0.14),
        Act::Tanh => Some(0.55),
        Act::Relu => Some(0.41),
        _ => None,
    };
    let mut v: Vec<Case> = Act::ALL
        .iter()
        .map(|&a| {
            Case::new(
                a.name(),
                a,
                Init::TorchDefault,
                Init::TorchDefault,
                theory(a),
            )
        })
        .collect();
    v.push(Case::new(
        "ReLU, He init",
        Act::Relu,
        Init::HeNormal,
        Init::Zeros,
        None,
    ));
    v
}

/// `‖∂L/∂W₁‖ / ‖∂L/∂W₁₀‖`.
pub fn ratio(p: &Pass) -> f64 {
    p.weight_grad[0] / p.weight_grad[p.weight_grad.len() - 1]
}

/// The geometric-mean backward factor per layer, `(‖∂L/∂z₁‖/‖∂L/∂z₁₀‖)^(1/9)`.
pub fn factor(p: &Pass) -> f64 {
    let n = p.delta.len();
    (p.delta[0] / p.delta[n - 1]).powf(1.0 / (n - 1) as f64)
}

/// The claims at initialisation.
pub fn init_claims(cases: &[Case], x: &Tensor<f32>, y: &Tensor<usize>) -> Vec<Claim> {
    let passes: Vec<Pass> = cases.iter().map(|c| c.at_init(x, y)).collect();
    let by = |name: &str| {
        let i = cases.iter().position(|c| c.name == name).expect("a case");
        &passes[i]
    };
    let sig = ratio(by("sigmoid"));
    let mut claims = vec![
        Claim {
            what: "sigmoid: ‖∂L/∂W₁‖/‖∂L/∂W₁₀‖".into(),
            measured: format!("{sig:.2e}"),
            expected: "below 1e-4".into(),
            holds: sig < 1e-4,
        },
        Claim {
            what: "sigmoid's ratio below tanh's and ReLU's".into(),
            measured: format!(
                "{sig:.2e} < {:.2e}, {:.2e}",
                ratio(by("tanh")),
                ratio(by("ReLU"))
            ),
            expected: "smaller than both".into(),
            holds: sig < ratio(by("tanh")) && sig < ratio(by("ReLU")),
        },
    ];
    for (c, p) in cases.iter().zip(&passes) {
        if let Some(t) = c.theory {
            let f = factor(p);
            claims.push(Claim {
                what: format!("{}: backward factor per layer", c.name),
                measured: format!("{f:.3}"),
                expected: format!("mean field {t}, within 10%"),
                holds: (f / t - 1.0).abs() < 0.10,
            });
        }
    }
    let he = ratio(by("ReLU, He init"));
    claims.push(Claim {
        what: "ReLU, He init: ‖∂L/∂W₁‖/‖∂L/∂W₁₀‖".into(),
        measured: format!("{he:.3}"),
        expected: "within [0.2, 5]".into(),
        holds: (0.2..=5.0).contains(&he),
    });
    claims
}

/// The exploding-gradient runs: the gradient norm at initialisation and the loss per step
/// of plain SGD and of SGD with clipping.
pub struct Exploding {
    /// The global gradient norm at initialisation.
    pub grad_norm: f64,
    /// Loss per step without clipping (it may end with a non-finite value).
    pub plain: Vec<f64>,
    /// Loss per step with the global norm clipped to 1.
    pub clipped: Vec<f64>,
}

/// ReLU with weights `N(0, 8/n)` (zero biases), `steps` SGD steps at lr 0.01 with and
/// without clipping the global gradient norm to 1.
pub fn exploding(data: &TensorDataset<f32>, steps: usize) -> Exploding {
    let big = |fan_in: usize| Init::Normal {
        mean: 0.0,
        std: (8.0 / fan_in as f64).sqrt(),
    };
    // Every layer's fan-in is 64 (the input has 64 pixels), so one init serves all.
    let make = || {
        let mut store = ParamStore::new();
        let m = DeepMlp::new(&mut store, 10, 64, Act::Relu, big(64), Init::Zeros, 0);
        (m, store)
    };
    let (m, mut store) = make();
    let (_, grads) = m.measure(&store, data.features(), data.targets());
    let grad_norm = grads
        .params()
        .map(|(_, g)| norm(g).powi(2))
        .sum::<f64>()
        .sqrt();
    let plain = train(
        &m,
        &mut store,
        data,
        Update::Sgd {
            lr: 0.01,
            momentum: 0.0,
            clip: None,
        },
        steps,
        64,
        1,
    );
    let (m, mut store) = make();
    let clipped = train(
        &m,
        &mut store,
        data,
        Update::Sgd {
            lr: 0.01,
            momentum: 0.0,
            clip: Some(1.0),
        },
        steps,
        64,
        1,
    );
    Exploding {
        grad_norm,
        plain,
        clipped,
    }
}

/// The claims of the exploding-gradient runs.
pub fn exploding_claims(e: &Exploding) -> Vec<Claim> {
    let (p0, p1) = (e.plain[0], *e.plain.last().expect("a step"));
    let (c0, c1) = (e.clipped[0], *e.clipped.last().expect("a step"));
    vec![
        Claim {
            what: "exploding: gradient norm at initialisation".into(),
            measured: format!("{:.2e}", e.grad_norm),
            expected: "above 1e3".into(),
            holds: e.grad_norm > 1e3,
        },
        Claim {
            what: "exploding: SGD without clipping diverges".into(),
            measured: format!("loss {p0:.3e} → {p1:.3e}"),
            expected: "non-finite, or above its start".into(),
            holds: !p1.is_finite() || p1 > p0,
        },
        Claim {
            what: "exploding: SGD with clipping trains".into(),
            measured: format!("loss {c0:.3e} → {c1:.3e}"),
            expected: "below a quarter of its start".into(),
            holds: c1.is_finite() && c1 < 0.25 * c0,
        },
    ]
}

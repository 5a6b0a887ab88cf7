//! `Linear`: `y = x·Wᵀ + b`, with PyTorch's layout (`weight` is `[out, in]`) and names
//! (`{name}.weight`, `{name}.bias`), so weights move to and from PyTorch unchanged.

use rand::Rng;
use tapegrad_core::{Float, ParamKey, ParamRole, ParamStore, Transpose, Var};

use crate::init::Init;
use crate::module::{Forward, Module};
use crate::per_sample::TapKind;

/// Options of a [`Linear`] layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearConfig {
    /// Whether the layer has a bias (default true).
    pub bias: bool,
    /// The weight's initialiser (default PyTorch's: U(±1/√in)).
    pub init: Init,
    /// The bias's initialiser, with the weight's fans (default PyTorch's: U(±1/√in)).
    pub bias_init: Init,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            bias: true,
            init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
        }
    }
}

tapegrad_core::setters! { LinearConfig {
    /// With or without a bias.
    with_bias(bias: bool) => bias = bias;
    /// With a weight initialiser.
    with_init(init: Init) => init = init;
    /// With a bias initialiser.
    with_bias_init(init: Init) => bias_init = init;
}}

/// A fully connected layer: `y = x·Wᵀ + b` over the last dimension of `x`.
#[derive(Clone, Debug)]
pub struct Linear {
    name: String,
    weight: ParamKey,
    bias: Option<ParamKey>,
    in_features: usize,
    out_features: usize,
}

impl Linear {
    /// A layer with a bias, the weight drawn from `init` and the bias from PyTorch's default.
    #[track_caller]
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        init: Init,
        rng: &mut R,
    ) -> Self {
        Self::with_config(
            store,
            name,
            in_features,
            out_features,
            LinearConfig::default().with_init(init),
            rng,
        )
    }

    /// A layer from a config.
    ///
    /// # Panics
    /// If `{name}.weight` or `{name}.bias` exists already in the store.
    #[track_caller]
    pub fn with_config<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        cfg: LinearConfig,
        rng: &mut R,
    ) -> Self {
        let shape = [out_features, in_features];
        let weight = store.insert_with_role(
            format!("{name}.weight"),
            cfg.init.tensor(&shape, rng),
            ParamRole::Weight,
        );
        let bias = cfg.bias.then(|| {
            let b =
                cfg.bias_init
                    .tensor_with_fans(&[out_features], (in_features, out_features), rng);
            store.insert_with_role(format!("{name}.bias"), b, ParamRole::Bias)
        });
        Linear {
            name: name.to_string(),
            weight,
            bias,
            in_features,
            out_features,
        }
    }

    /// The weight's key (`[out, in]`).
    pub fn weight(&self) -> ParamKey {
        self.weight
    }

    /// The bias's key, if any.
    pub fn bias(&self) -> Option<ParamKey> {
        self.bias
    }

    /// `(in_features, out_features)`.
    pub fn features(&self) -> (usize, usize) {
        (self.in_features, self.out_features)
    }
}

impl<T: Float> Module<T> for Linear {
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let shape = x.shape();
        if shape.last() != Some(&self.in_features) {
            crate::fail(
                "Linear",
                format!(
                    "`{}` expects inputs with {} features in the last dimension, got shape {:?}",
                    self.name,
                    self.in_features,
                    shape.as_slice()
                ),
            );
        }
        let w = f.param(self.weight);
        let y = if shape.len() >= 2 {
            // x·Wᵀ with the transpose as a stride swap, no copy of W.
            x.matmul_t(w, Transpose::No, Transpose::Yes)
        } else {
            x.unsqueeze(0)
                .matmul_t(w, Transpose::No, Transpose::Yes)
                .squeeze_dim(0)
        };
        let y = match self.bias {
            Some(b) => y + f.param(b),
            None => y,
        };
        let (weight, bias) = (self.weight, self.bias);
        f.tap(|| TapKind::Linear { weight, bias }, x, y)
    }

    fn params(&self) -> Vec<ParamKey> {
        std::iter::once(self.weight).chain(self.bias).collect()
    }

    fn name(&self) -> String {
        format!("Linear({})", self.name)
    }
}

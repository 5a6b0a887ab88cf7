//! Deep, narrow MLPs on the bundled digits: the networks of `examples/vanishing_gradients.rs`
//! and `examples/he_init_depth.rs` (and their tests). `depth` Linear layers, the first
//! 64 → width, then width → width, the last width → 10, the nonlinearity after every layer
//! but the last; cross-entropy on the logits.

#![allow(dead_code)] // each example uses part of it

use tapegrad::prelude::*;

/// The nonlinearity after each hidden layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// The logistic sigmoid.
    Sigmoid,
    /// `tanh`.
    Tanh,
    /// `max(0, x)`.
    Relu,
    /// LeakyReLU with PyTorch's slope 0.01.
    LeakyRelu,
    /// ELU with α = 1.
    Elu,
}

impl Act {
    /// The five of the vanishing-gradient experiment, in its order.
    pub const ALL: [Act; 5] = [Act::Sigmoid, Act::Tanh, Act::Relu, Act::LeakyRelu, Act::Elu];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
            Act::Relu => "ReLU",
            Act::LeakyRelu => "LeakyReLU",
            Act::Elu => "ELU",
        }
    }

    fn apply<'g>(self, z: Var<'g, f32>) -> Var<'g, f32> {
        match self {
            Act::Sigmoid => z.sigmoid(),
            Act::Tanh => z.tanh(),
            Act::Relu => z.relu(),
            Act::LeakyRelu => z.leaky_relu(0.01),
            Act::Elu => z.elu(1.0),
        }
    }
}

/// A deep MLP: its layers and nonlinearity.
pub struct DeepMlp {
    /// The Linear layers, first to last.
    pub layers: Vec<Linear>,
    /// The nonlinearity after each but the last.
    pub act: Act,
}

/// What one pass over a batch measured, per layer (index 0 is layer 1).
pub struct Pass {
    /// The mean cross-entropy.
    pub loss: f64,
    /// `‖∂L/∂Wₗ‖` (Frobenius) of each layer's weight.
    pub weight_grad: Vec<f64>,
    /// `‖∂L/∂zₗ‖` at each layer's pre-activation (the back-propagated gradient).
    pub delta: Vec<f64>,
    /// The standard deviation of each hidden layer's activations (`depth − 1` of them).
    pub act_std: Vec<f64>,
}

/// The L2 norm of a tensor's elements (Frobenius for a matrix).
pub fn norm(t: &Tensor<f32>) -> f64 {
    f64::from(t.norm(2.0).item())
}

/// The population standard deviation of a tensor's elements (NumPy's `std`).
pub fn std_of(t: &Tensor<f32>) -> f64 {
    f64::from(t.std(false).item())
}

impl DeepMlp {
    /// `depth` layers of `width` units (64 inputs, 10 outputs), weights from `init`, biases
    /// from `bias` (PyTorch's default `U(±1/√in)` or zeros), drawn from `seed`.
    pub fn new(
        store: &mut ParamStore<f32>,
        depth: usize,
        width: usize,
        act: Act,
        init: Init,
        bias: Init,
        seed: u64,
    ) -> Self {
        let mut rng = seeded_rng(seed);
        let layers = (0..depth)
            .map(|l| {
                let fan_in = if l == 0 { 64 } else { width };
                let fan_out = if l + 1 == depth { 10 } else { width };
                let cfg = LinearConfig::default().with_init(init).with_bias_init(bias);
                Linear::with_config(
                    store,
                    &format!("fc{}", l + 1),
                    fan_in,
                    fan_out,
                    cfg,
                    &mut rng,
                )
            })
            .collect();
        DeepMlp { layers, act }
    }

    /// The logits, with every pre-activation (its gradient retained) and every hidden
    /// activation.
    pub fn forward<'g>(
        &self,
        f: &mut Forward<'g, '_, f32>,
        x: Var<'g, f32>,
    ) -> (Var<'g, f32>, Vec<Var<'g, f32>>, Vec<Var<'g, f32>>) {
        // Images [B, 1, 8, 8] become rows of 64 pixels.
        let (mut h, mut zs, mut acts) = (x.flatten(1, -1), Vec::new(), Vec::new());
        for (l, layer) in self.layers.iter().enumerate() {
            let z = layer.forward(f, h).retain_grad();
            zs.push(z);
            if l + 1 < self.layers.len() {
                h = self.act.apply(z);
                acts.push(h);
            } else {
                h = z;
            }
        }
        (h, zs, acts)
    }

    /// One forward and backward pass over `(x, y)` in eval mode (nothing here is random),
    /// measured layer by layer; returns the gradients too.
    pub fn measure(
        &self,
        store: &ParamStore<f32>,
        x: &Tensor<f32>,
        y: &Tensor<usize>,
    ) -> (Pass, Gradients<f32>) {
        let g = Graph::new();
        let mut f = Forward::eval(&g, store);
        let (logits, zs, acts) = self.forward(&mut f, g.constant(x.clone()));
        let loss = cross_entropy(logits, y, Reduction::Mean);
        let grads = loss.backward();
        let pass = Pass {
            loss: f64::from(loss.item()),
            weight_grad: self
                .layers
                .iter()
                .map(|l| grads.param(l.weight()).map_or(0.0, norm))
                .collect(),
            delta: zs.iter().map(|z| norm(&grads.wrt(*z))).collect(),
            act_std: acts.iter().map(|a| std_of(&a.value())).collect(),
        };
        (pass, grads)
    }

    /// The mean cross-entropy on `(x, y)`.
    pub fn loss(&self, store: &ParamStore<f32>, x: &Tensor<f32>, y: &Tensor<usize>) -> f64 {
        let g = Graph::new();
        let mut f = Forward::eval(&g, store);
        let (logits, _, _) = self.forward(&mut f, g.constant(x.clone()));
        f64::from(cross_entropy(logits, y, Reduction::Mean).item())
    }

    /// The weight keys, first layer to last.
    pub fn weights(&self) -> Vec<ParamKey> {
        self.layers.iter().map(Linear::weight).collect()
    }
}

/// How [`train`] updates the weights.
#[derive(Clone, Copy, Debug)]
pub enum Update {
    /// Adam (PyTorch's defaults) at this learning rate.
    Adam(f64),
    /// SGD (PyTorch's, with heavy-ball momentum if not 0), the gradients' global norm
    /// clipped to `clip` first if given.
    Sgd {
        /// The learning rate.
        lr: f64,
        /// The momentum (0 for plain SGD).
        momentum: f64,
        /// The largest global gradient norm, if clipped.
        clip: Option<f64>,
    },
}

/// Trains for `steps` minibatch steps of `batch` (reshuffled each epoch from `seed`);
/// returns the training loss (mean cross-entropy of each step's batch, before the step).
/// Stops early, with a last `NaN` or `∞`, if the loss stops being finite.
pub fn train(
    model: &DeepMlp,
    store: &mut ParamStore<f32>,
    data: &TensorDataset<f32>,
    update: Update,
    steps: usize,
    batch: usize,
    seed: u64,
) -> Vec<f64> {
    let loader = DataLoader::new(data, batch).with_shuffle(seed);
    let (mut opt, lr, clip): (Box<dyn Optimizer<f32>>, f64, Option<f64>) = match update {
        Update::Adam(lr) => (Box::new(Adam::new(AdamConfig::default())), lr, None),
        Update::Sgd { lr, momentum, clip } => (
            Box::new(Sgd::new(SgdConfig::default().with_momentum(momentum))),
            lr,
            clip,
        ),
    };
    let mut losses = Vec::with_capacity(steps);
    let mut g = Graph::new();
    'outer: for epoch in 0.. {
        for b in loader.epoch(epoch) {
            if losses.len() == steps {
                break 'outer;
            }
            g.reset();
            let (loss, mut grads) = {
                let mut f = Forward::eval(&g, store);
                let (logits, _, _) = model.forward(&mut f, g.constant(b.x));
                let loss = cross_entropy(logits, &b.y, Reduction::Mean);
                (f64::from(loss.item()), loss.backward())
            };
            g.reset();
            losses.push(loss);
            if !loss.is_finite() {
                break 'outer;
            }
            if let Some(c) = clip {
                if clip_grad_norm(&mut grads, c, NormType::L2).is_err() {
                    losses.push(f64::NAN);
                    break 'outer;
                }
            }
            opt.step(store, &grads, lr);
        }
    }
    losses
}

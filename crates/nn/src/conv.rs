//! Convolution and pooling layers on the core's `conv2d`, `max_pool2d` and `avg_pool2d`
//! (im2col and a batched matmul; gradients from the ops). PyTorch's layouts and names:
//! data NCHW, `{name}.weight` `[out, in/groups, kh, kw]`, `{name}.bias` `[out]`.

use rand::Rng;
use tapegrad_core::{Conv2dSpec, Float, ParamKey, ParamRole, ParamStore, Var, Window2d};

use crate::init::Init;
use crate::module::{Forward, Module};
use crate::per_sample::TapKind;

/// Options of a [`Conv2d`] layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Conv2dConfig {
    /// Kernel size (height, width).
    pub kernel: (usize, usize),
    /// Stride, padding, dilation and groups.
    pub spec: Conv2dSpec,
    /// Whether the layer has a bias (default true).
    pub bias: bool,
    /// The weight's initialiser (default PyTorch's: U(±1/√fan_in)).
    pub init: Init,
}

impl Conv2dConfig {
    /// A `k × k` kernel, stride 1, no padding, with a bias and PyTorch's initialisation.
    pub fn new(k: usize) -> Self {
        Conv2dConfig {
            kernel: (k, k),
            spec: Conv2dSpec::default(),
            bias: true,
            init: Init::TorchDefault,
        }
    }
}

tapegrad_core::setters! { Conv2dConfig {
    /// With a stride.
    with_stride(s: usize) => spec.stride = (s, s);
    /// With zero padding.
    with_padding(p: usize) => spec.padding = (p, p);
    /// With a dilation.
    with_dilation(d: usize) => spec.dilation = (d, d);
    /// With channel groups.
    with_groups(g: usize) => spec.groups = g;
    /// With or without a bias.
    with_bias(bias: bool) => bias = bias;
    /// With a weight initialiser.
    with_init(init: Init) => init = init;
}}

/// A 2-d convolution layer.
#[derive(Clone, Debug)]
pub struct Conv2d {
    name: String,
    weight: ParamKey,
    bias: Option<ParamKey>,
    in_channels: usize,
    spec: Conv2dSpec,
}

impl Conv2d {
    /// A layer from `in_channels` to `out_channels`.
    ///
    /// # Panics
    /// If the groups do not divide both channel counts, or the names exist in the store.
    #[track_caller]
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        cfg: Conv2dConfig,
        rng: &mut R,
    ) -> Self {
        let g = cfg.spec.groups;
        if !(g > 0 && in_channels % g == 0 && out_channels % g == 0) {
            crate::fail(
                "Conv2d",
                format!("`{name}`: {g} groups must divide {in_channels} input and {out_channels} output channels"),
            );
        }
        let shape = [out_channels, in_channels / g, cfg.kernel.0, cfg.kernel.1];
        let weight = store.insert_with_role(
            format!("{name}.weight"),
            cfg.init.tensor(&shape, rng),
            ParamRole::Weight,
        );
        let fans = crate::init::fans(&shape);
        let bias = cfg.bias.then(|| {
            let b = Init::TorchDefault.tensor_with_fans(&[out_channels], fans, rng);
            store.insert_with_role(format!("{name}.bias"), b, ParamRole::Bias)
        });
        Conv2d {
            name: name.to_string(),
            weight,
            bias,
            in_channels,
            spec: cfg.spec,
        }
    }

    /// The weight's key.
    pub fn weight(&self) -> ParamKey {
        self.weight
    }

    /// The bias's key, if any.
    pub fn bias(&self) -> Option<ParamKey> {
        self.bias
    }
}

impl<T: Float> Module<T> for Conv2d {
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let s = x.shape();
        if s.len() != 4 || s[1] != self.in_channels {
            crate::fail(
                "Conv2d",
                format!(
                    "`{}` expects inputs [N, {}, H, W], got shape {:?}",
                    self.name,
                    self.in_channels,
                    s.as_slice()
                ),
            );
        }
        let b = self.bias.map(|b| f.param(b));
        let w = f.param(self.weight);
        let ws = w.shape();
        let y = x.conv2d(w, b, self.spec);
        let (weight, bias, spec) = (self.weight, self.bias, self.spec);
        let kernel = (ws[2], ws[3]);
        f.tap(
            || TapKind::Conv2d {
                weight,
                bias,
                kernel,
                spec,
            },
            x,
            y,
        )
    }

    fn params(&self) -> Vec<ParamKey> {
        std::iter::once(self.weight).chain(self.bias).collect()
    }

    fn name(&self) -> String {
        format!("Conv2d({})", self.name)
    }
}

/// A pooling module over a [`Window2d`] (the stride defaults to the kernel size).
macro_rules! pool2d {
    ($(#[$doc:meta])* $name:ident => $op:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name(pub Window2d);

        impl $name {
            /// A `k × k` window with stride `k`.
            pub fn new(k: usize) -> Self {
                $name(Window2d::new(k, k).with_stride(k, k))
            }
        }

        impl<T: Float> Module<T> for $name {
            #[track_caller]
            fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
                x.$op(self.0)
            }
        }
    };
}

pool2d! {
    /// Max pooling (PyTorch's `MaxPool2d`; the stride defaults to the kernel size).
    MaxPool2d => max_pool2d
}
pool2d! {
    /// Average pooling (PyTorch's `AvgPool2d`; the stride defaults to the kernel size).
    AvgPool2d => avg_pool2d
}

/// Flattens dimensions `start..=end` (PyTorch's `nn.Flatten` default: 1 to −1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flatten {
    /// First dimension flattened.
    pub start: isize,
    /// Last dimension flattened.
    pub end: isize,
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten { start: 1, end: -1 }
    }
}

impl<T: Float> Module<T> for Flatten {
    #[track_caller]
    fn forward<'g>(&self, _f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        x.flatten(self.start, self.end)
    }
}

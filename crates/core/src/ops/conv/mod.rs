//! Sliding windows over images: `unfold` (im2col) and `fold` (col2im), and the composites
//! built on them — `conv2d`, `max_pool2d`, `avg_pool2d`.
//!
//! `unfold` and `fold` are linear and each is the other's backward rule (the slice/pad
//! pattern again), so a convolution written as `unfold` followed by a batched `matmul` has
//! exact first- and second-order gradients for the input, the weight and the bias with no
//! rule of its own. Layouts follow PyTorch: data NCHW, weights OIHW, cross-correlation (no
//! kernel flip), `H_out = ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1` (floor mode).

pub use tapegrad_kernels::conv::Window2d;
use tapegrad_kernels::conv::{self, ConvDims, Scratch};

use crate::algebra::Algebra;
use crate::error::fallible;
use crate::error::{arg_error, shape_error, Result};
use crate::ops::matmul::Transpose;
use crate::ops::{op_names, BackwardArgs, Grads, Op, Rule};
use crate::shape::Shape;
use crate::tensor::{check_output, Tensor};
use crate::var::Var;
use crate::Float;

/// Checks that a window's kernel, stride and dilation are positive.
#[track_caller]
fn validate(win: &Window2d, op: &'static str) -> Result<()> {
    let pos = [
        win.kernel.0,
        win.kernel.1,
        win.stride.0,
        win.stride.1,
        win.dilation.0,
        win.dilation.1,
    ];
    if pos.contains(&0) {
        return Err(arg_error(
            op,
            format!("kernel, stride and dilation must be positive, got {win:?}"),
        ));
    }
    Ok(())
}

/// A sliding-window op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConvOp {
    /// `[N, C, H, W] → [N, C·kh·kw, H_out·W_out]`: every window as a column (im2col).
    Unfold {
        /// The window.
        win: Window2d,
    },
    /// `[N, C·kh·kw, L] → [N, C, H, W]`: columns summed back into the image (col2im).
    Fold {
        /// The window.
        win: Window2d,
        /// The image size `(H, W)`.
        size: (usize, usize),
    },
    /// `x [N, C, H, W] ⋆ w [O, C/groups, kh, kw] → [N, O, H_out, W_out]` (no bias): the
    /// convolution as one op, computed image by image (im2col into a buffer that stays in
    /// cache, then one matrix product per group), never holding the columns of the whole
    /// batch. Inputs `[x, w]`.
    Conv2d {
        /// The window (kernel, stride, padding, dilation).
        win: Window2d,
        /// Channel groups.
        groups: usize,
    },
}

op_names! { ConvOp {
    Unfold => "unfold", Fold => "fold", Conv2d => "conv2d",
}}

impl ConvOp {
    /// Applies a one-input op (unfold, fold) to a tensor whose shape has been checked.
    pub(crate) fn forward<T: Float>(&self, x: &Tensor<T>) -> Tensor<T> {
        match *self {
            ConvOp::Unfold { win } => unfold(x, win),
            ConvOp::Fold { win, size } => fold(x, win, size),
            ConvOp::Conv2d { .. } => unreachable!("conv2d has two inputs"),
        }
    }

    /// Checks the input's shape and the output's size.
    #[track_caller]
    fn check<T: Float>(&self, shape: &[usize]) -> Result<()> {
        match *self {
            ConvOp::Unfold { win } => {
                validate(&win, "unfold")?;
                if shape.len() != 4 {
                    return Err(shape_error(
                        "unfold",
                        &[shape],
                        "expects an input of shape [N, C, H, W]",
                    ));
                }
                let Some((ho, wo)) = win.output_size(shape[2], shape[3]) else {
                    return Err(shape_error(
                        "unfold",
                        &[shape],
                        format!("the window {win:?} is larger than the padded image (or its sizes overflow)"),
                    ));
                };
                let (kh, kw) = win.kernel;
                check_output::<T>(
                    "unfold",
                    &[shape[0], shape[1], kh, kw, ho, wo],
                    std::panic::Location::caller(),
                )?;
            }
            ConvOp::Fold { win, size } => {
                validate(&win, "fold")?;
                let Some((ho, wo)) = win.output_size(size.0, size.1) else {
                    return Err(arg_error(
                        "fold",
                        format!("the window {win:?} is larger than the padded image {size:?} (or its sizes overflow)"),
                    ));
                };
                let (Some(k), Some(l)) =
                    (win.kernel.0.checked_mul(win.kernel.1), ho.checked_mul(wo))
                else {
                    return Err(arg_error(
                        "fold",
                        format!("the window {win:?} over an image of {size:?} overflows"),
                    ));
                };
                if shape.len() != 3 || shape[1] % k != 0 || shape[2] != l {
                    return Err(shape_error(
                        "fold",
                        &[shape],
                        format!("expects [N, C·{k}, {l}] columns for an image of {size:?}"),
                    ));
                }
                check_output::<T>(
                    "fold",
                    &[shape[0], shape[1] / k, size.0, size.1],
                    std::panic::Location::caller(),
                )?;
            }
            ConvOp::Conv2d { .. } => {}
        }
        Ok(())
    }
}

impl<T: Float> Rule<T> for ConvOp {
    /// The backward rule: unfold and fold are each other's gradient; a convolution's
    /// input gradient is the transposed convolution of `g`, its weight gradient the
    /// correlation of `g` with the input.
    #[inline]
    fn backward<V: Algebra<T>>(&self, args: &BackwardArgs<'_, V>) -> Grads<V> {
        let (x, g, needs) = (args.inputs, args.grad, args.needs);
        match *self {
            ConvOp::Unfold { win } => {
                let s = x[0].shape();
                smallvec::smallvec![Some(g.conv(ConvOp::Fold {
                    win,
                    size: (s[2], s[3]),
                }))]
            }
            ConvOp::Fold { win, .. } => smallvec::smallvec![Some(g.conv(ConvOp::Unfold { win }))],
            ConvOp::Conv2d { win, groups } => {
                let (xv, wv) = (x[0], x[1]);
                let gx = needs[0].then(|| match (g.as_tensor(), wv.as_tensor()) {
                    (Some(gt), Some(wt)) => {
                        g.constant(conv2d_input_grad_tensor(gt, wt, win, groups, &xv.shape()))
                    }
                    _ => conv2d_input_grad_composite(g, wv, win, groups, &xv.shape()),
                });
                let gw = needs[1].then(|| match (g.as_tensor(), xv.as_tensor()) {
                    (Some(gt), Some(xt)) => {
                        g.constant(conv2d_weight_grad_tensor(gt, xt, win, groups, &wv.shape()))
                    }
                    _ => conv2d_weight_grad_composite(g, xv, win, groups, &wv.shape()),
                });
                if x.len() == 3 {
                    // The fused bias: the sum over images and positions, `[o]`.
                    let gb = needs[2].then(|| match g.as_tensor() {
                        Some(gt) => g.constant(conv2d_bias_grad_tensor(gt)),
                        None => {
                            let s = g.shape();
                            g.sum_to(&[1, s[1], 1, 1]).reshape(&[s[1]])
                        }
                    });
                    return smallvec::smallvec![gx, gw, gb];
                }
                smallvec::smallvec![gx, gw]
            }
        }
    }
}

/// im2col: `x [N, C, H, W]` → `[N, C·kh·kw, H_out·W_out]`, rows ordered (c, i, j) as
/// PyTorch's `F.unfold`.
fn unfold<T: Float>(x: &Tensor<T>, win: Window2d) -> Tensor<T> {
    let s = x.dims();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let (ho, wo) = win.output_size(h, w).expect("checked when recorded");
    let rows = c * win.kernel.0 * win.kernel.1;
    Tensor::from_writer([n, rows, ho * wo], |dst| {
        conv::unfold_planes(x.as_slice(), (h, w), win, dst)
    })
}

/// col2im: columns `[N, C·kh·kw, L]` summed into `[N, C, H, W]` (the adjoint of `unfold`).
fn fold<T: Float>(cols: &Tensor<T>, win: Window2d, (h, w): (usize, usize)) -> Tensor<T> {
    let s = cols.dims();
    let c = s[1] / (win.kernel.0 * win.kernel.1);
    Tensor::from_writer([s[0], c, h, w], |dst| {
        conv::fold_planes(cols.as_slice(), (h, w), win, dst)
    })
}

/// Scratch buffers from the tensor pool (no allocation once warm).
struct Pool;

impl<T: Float> Scratch<T> for Pool {
    #[inline]
    fn with<R>(&self, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
        let mut buf = Tensor::<T>::from_writer([len], |_| {});
        f(buf.as_mut_slice())
    }
}

/// `x ⋆ w + bias` (the kernels choose direct or Winograd).
fn conv2d_forward<T: Float>(
    x: &Tensor<T>,
    wt: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    win: Window2d,
    groups: usize,
) -> Tensor<T> {
    let d = ConvDims::new(x.dims(), wt.dims(), win, groups);
    let bias = bias.map(|b| b.as_slice());
    Tensor::from_writer([d.n, d.o, d.ho, d.wo], |out| {
        conv::forward(x.as_slice(), wt.as_slice(), bias, &d, out, &Pool)
    })
}

/// The bias gradient of a convolution, `[o]`: the sum of `g` over images and positions.
pub(crate) fn conv2d_bias_grad_tensor<T: Float>(g: &Tensor<T>) -> Tensor<T> {
    let s = g.dims();
    let (n, o, l) = (s[0], s[1], s[2] * s[3]);
    Tensor::from_writer([o], |gb| conv::bias_grad(g.as_slice(), (n, o, l), gb))
}

/// The input gradient of a convolution given the output gradient `g`.
pub(crate) fn conv2d_input_grad_tensor<T: Float>(
    g: &Tensor<T>,
    wt: &Tensor<T>,
    win: Window2d,
    groups: usize,
    x_shape: &[usize],
) -> Tensor<T> {
    let d = ConvDims::new(x_shape, wt.dims(), win, groups);
    Tensor::from_writer(x_shape, |dx| {
        conv::input_grad(g.as_slice(), wt.as_slice(), &d, dx, &Pool)
    })
}

/// The weight gradient of a convolution given the output gradient `g`.
pub(crate) fn conv2d_weight_grad_tensor<T: Float>(
    g: &Tensor<T>,
    x: &Tensor<T>,
    win: Window2d,
    groups: usize,
    w_shape: &[usize],
) -> Tensor<T> {
    let d = ConvDims::new(x.dims(), w_shape, win, groups);
    Tensor::from_writer(w_shape, |dw| {
        conv::weight_grad(g.as_slice(), x.as_slice(), &d, dw, &Pool)
    })
}

/// The input gradient of a convolution as recorded ops (for gradients of gradients):
/// `fold(wᵀ·g)` per group.
pub(crate) fn conv2d_input_grad_composite<T: Float, V: Algebra<T>>(
    g: &V,
    wt: &V,
    win: Window2d,
    groups: usize,
    x_shape: &[usize],
) -> V {
    let d = ConvDims::new(x_shape, &wt.shape(), win, groups);
    let gg = g.reshape(&[d.n, d.groups, d.og, d.l]);
    let wg = wt.reshape(&[d.groups, d.og, d.k]);
    let cols = wg.matmul_t(&gg, Transpose::Yes, Transpose::No); // [n, groups, k, l]
    cols.reshape(&[d.n, d.c * win.kernel.0 * win.kernel.1, d.l])
        .conv(ConvOp::Fold {
            win,
            size: (d.h, d.w),
        })
}

/// The weight gradient of a convolution as recorded ops: `Σ_n g_n·unfold(x)_nᵀ` per group.
pub(crate) fn conv2d_weight_grad_composite<T: Float, V: Algebra<T>>(
    g: &V,
    x: &V,
    win: Window2d,
    groups: usize,
    w_shape: &[usize],
) -> V {
    let d = ConvDims::new(&x.shape(), w_shape, win, groups);
    let cols = x
        .conv(ConvOp::Unfold { win })
        .reshape(&[d.n, d.groups, d.k, d.l]);
    let gg = g.reshape(&[d.n, d.groups, d.og, d.l]);
    crate::ops::matmul::matmul_t_sum_to(
        &gg,
        &cols,
        Transpose::No,
        Transpose::Yes,
        &[1, d.groups, d.og, d.k],
    )
    .reshape(w_shape)
}

/// The hyperparameters of a 2-d convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Stride (height, width).
    pub stride: (usize, usize),
    /// Zero padding (height, width).
    pub padding: (usize, usize),
    /// Dilation (height, width).
    pub dilation: (usize, usize),
    /// Channel groups: input and output channels are split into this many independent
    /// convolutions.
    pub groups: usize,
}

impl Default for Conv2dSpec {
    fn default() -> Self {
        Conv2dSpec {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

crate::setters! { Conv2dSpec {
    /// With a stride.
    with_stride(sh: usize, sw: usize) => stride = (sh, sw);
    /// With zero padding.
    with_padding(ph: usize, pw: usize) => padding = (ph, pw);
    /// With a dilation.
    with_dilation(dh: usize, dw: usize) => dilation = (dh, dw);
    /// With channel groups.
    with_groups(groups: usize) => groups = groups;
}}

/// Checks conv2d shapes: returns (N, C, O, kh, kw, H_out, W_out).
#[track_caller]
fn conv_plan<T: Float>(
    x: &[usize],
    w: &[usize],
    b: Option<&[usize]>,
    spec: &Conv2dSpec,
) -> Result<[usize; 7]> {
    if x.len() != 4 || w.len() != 4 {
        return Err(shape_error(
            "conv2d",
            &[x, w],
            "expects input [N, C, H, W] and weight [O, C/groups, kh, kw]",
        ));
    }
    let g = spec.groups;
    if g == 0 || x[1] % g != 0 || w[0] % g != 0 || w[1] * g != x[1] {
        return Err(shape_error(
            "conv2d",
            &[x, w],
            format!("with {g} groups the input channels must equal weight.shape[1]·groups and both channel counts must divide by groups"),
        ));
    }
    if let Some(b) = b {
        if b != [w[0]] {
            return Err(shape_error(
                "conv2d",
                &[w, b],
                "the bias must have one entry per output channel",
            ));
        }
    }
    let win = Window2d {
        kernel: (w[2], w[3]),
        stride: spec.stride,
        padding: spec.padding,
        dilation: spec.dilation,
    };
    validate(&win, "conv2d")?;
    let Some((ho, wo)) = win.output_size(x[2], x[3]) else {
        return Err(shape_error(
            "conv2d",
            &[x, w],
            "the (dilated) kernel is larger than the padded input (or the sizes overflow)",
        ));
    };
    check_output::<T>(
        "conv2d",
        &[x[0], w[0], ho, wo],
        std::panic::Location::caller(),
    )?;
    Ok([x[0], x[1], w[0], w[2], w[3], ho, wo])
}

impl<T: Float> Tensor<T> {
    fallible! {
        /// im2col: every `win`-window of `[N, C, H, W]` as a column of `[N, C·kh·kw, L]`
        /// (PyTorch's `F.unfold`).
        ///
        /// # Errors
        /// On a shape that is not 4-d or a window larger than the padded image.
        pub fn unfold2d / try_unfold2d(&self, win: Window2d) -> Tensor<T> {
            let op = ConvOp::Unfold { win };
            op.check::<T>(self.dims())?;
            Ok(op.forward(self))
        }
    }

    fallible! {
        /// col2im: columns `[N, C·kh·kw, L]` summed into `[N, C, H, W]` (PyTorch's `F.fold`).
        ///
        /// # Errors
        /// On mismatched shapes.
        pub fn fold2d / try_fold2d(&self, win: Window2d, size: (usize, usize)) -> Tensor<T> {
            let op = ConvOp::Fold { win, size };
            op.check::<T>(self.dims())?;
            Ok(op.forward(self))
        }
    }

    fallible! {
        /// 2-d convolution of tensors (see [`Var::try_conv2d`]): the same kernels, no tape.
        ///
        /// ```
        /// use tapegrad_core::{Conv2dSpec, Tensor};
        /// let x = Tensor::<f64>::ones([1, 1, 3, 3]);
        /// let w = Tensor::<f64>::ones([1, 1, 2, 2]);
        /// let y = x.conv2d(&w, None, Conv2dSpec::default());
        /// assert_eq!(y.to_vec(), vec![4.0; 4]);
        /// ```
        ///
        /// # Errors
        /// [`crate::Error::Shape`] on inconsistent shapes, channel counts or groups.
        pub fn conv2d / try_conv2d(
            &self,
            weight: &Tensor<T>,
            bias: Option<&Tensor<T>>,
            spec: Conv2dSpec,
        ) -> Tensor<T> {
            let [_, _, _, kh, kw, _, _] =
                conv_plan::<T>(self.dims(), weight.dims(), bias.map(|b| b.dims()), &spec)?;
            let win = Window2d {
                kernel: (kh, kw),
                stride: spec.stride,
                padding: spec.padding,
                dilation: spec.dilation,
            };
            Ok(conv2d_forward(self, weight, bias, win, spec.groups))
        }
    }

    fallible! {
        /// Max pooling of a tensor (see [`Var::try_max_pool2d`]): the composite run on a
        /// throwaway tape of constants, so it is written once.
        ///
        /// # Errors
        /// On a non-4-d input, an oversized window, or padding above half the kernel.
        pub fn max_pool2d / try_max_pool2d(&self, win: Window2d) -> Tensor<T> {
            let g = crate::Graph::new();
            Ok(g.constant(self.clone()).try_max_pool2d(win)?.value())
        }
    }

    fallible! {
        /// Average pooling of a tensor (see [`Var::try_avg_pool2d`]), written once as
        /// [`Tensor::try_max_pool2d`] is.
        ///
        /// # Errors
        /// On a non-4-d input, an oversized window, or padding above half the kernel.
        pub fn avg_pool2d / try_avg_pool2d(&self, win: Window2d) -> Tensor<T> {
            let g = crate::Graph::new();
            Ok(g.constant(self.clone()).try_avg_pool2d(win)?.value())
        }
    }
}

impl<'g, T: Float> Var<'g, T> {
    /// Records a sliding-window op whose input shape has been checked.
    #[track_caller]
    pub(crate) fn conv_op(self, op: ConvOp) -> Var<'g, T> {
        let v = self.with_value(|x| op.forward(x));
        self.graph
            .push(v, Op::Conv(self.graph.boxed(op)), &[self.id])
    }

    fallible! {
        /// im2col (see [`Tensor::try_unfold2d`]); its gradient is `fold2d`.
        ///
        /// # Errors
        /// On a shape that is not 4-d or a window larger than the padded image.
        pub fn unfold2d / try_unfold2d(self, win: Window2d) -> Var<'g, T> {
            let op = ConvOp::Unfold { win };
            op.check::<T>(&self.shape())?;
            Ok(self.conv_op(op))
        }
    }

    fallible! {
        /// col2im (see [`Tensor::try_fold2d`]); its gradient is `unfold2d`.
        ///
        /// # Errors
        /// On mismatched shapes.
        pub fn fold2d / try_fold2d(self, win: Window2d, size: (usize, usize)) -> Var<'g, T> {
            let op = ConvOp::Fold { win, size };
            op.check::<T>(&self.shape())?;
            Ok(self.conv_op(op))
        }
    }

    fallible! {
        /// 2-d convolution (cross-correlation, as PyTorch's `F.conv2d`): input `[N, C, H, W]`,
        /// weight `[O, C/groups, kh, kw]`, optional bias `[O]`, output `[N, O, H_out, W_out]`.
        ///
        /// One op on the tape: the forward pass and the input and weight gradients each run
        /// image by image as im2col and a gemm per group, or as Winograd F(2×2, 3×3) for a
        /// 3×3 window of stride and dilation 1, one group and padding up to 2; the bias is added
        /// in the same pass. The
        /// gradients are themselves convolutions, so second order follows from the same rule.
        ///
        /// # Errors
        /// [`crate::Error::Shape`] on inconsistent shapes, channel counts or groups.
        pub fn conv2d / try_conv2d(
            self,
            weight: Var<'g, T>,
            bias: Option<Var<'g, T>>,
            spec: Conv2dSpec,
        ) -> Var<'g, T> {
            self.same_graph("conv2d", &weight);
            let bshape = bias.map(|b| b.shape());
            let [_, _, _, kh, kw, _, _] =
                conv_plan::<T>(&self.shape(), &weight.shape(), bshape.as_deref(), &spec)?;
            let win = Window2d {
                kernel: (kh, kw),
                stride: spec.stride,
                padding: spec.padding,
                dilation: spec.dilation,
            };
            let op = ConvOp::Conv2d {
                win,
                groups: spec.groups,
            };
            if let Some(b) = bias {
                self.same_graph("conv2d", &b);
            }
            let value = {
                let nodes = self.graph.nodes();
                conv2d_forward(
                    &nodes[self.id as usize].value,
                    &nodes[weight.id as usize].value,
                    bias.map(|b| &nodes[b.id as usize].value),
                    win,
                    spec.groups,
                )
            };
            let op = Op::Conv(self.graph.boxed(op));
            Ok(match bias {
                // The bias is part of the op: added in the same pass, its gradient summed in one.
                Some(b) => self.graph.push(value, op, &[self.id, weight.id, b.id]),
                None => self.graph.push(value, op, &[self.id, weight.id]),
            })
        }
    }

    /// Per-channel windows of `[N, C, H, W]` padded with `fill`, as `[N·C, kh·kw, L]`.
    #[track_caller]
    fn pool_windows(self, win: Window2d, fill: T) -> Result<(Var<'g, T>, Shape)> {
        let s = self.shape();
        if s.len() != 4 {
            return Err(shape_error(
                "pool2d",
                &[&s],
                "expects an input of shape [N, C, H, W]",
            ));
        }
        validate(&win, "pool2d")?;
        if win.padding.0 * 2 > win.kernel.0 || win.padding.1 * 2 > win.kernel.1 {
            return Err(arg_error(
                "pool2d",
                "the padding must be at most half the kernel size (as PyTorch)",
            ));
        }
        let Some((ho, wo)) = win.output_size(s[2], s[3]) else {
            return Err(shape_error(
                "pool2d",
                &[&s],
                format!(
                    "the window {win:?} is larger than the padded image (or its sizes overflow)"
                ),
            ));
        };
        let (ph, pw) = win.padding;
        let x = self.reshape([s[0] * s[1], 1, s[2], s[3]]);
        let x = if ph + pw > 0 {
            x.try_pad(&[(ph, ph), (pw, pw)], fill)?
        } else {
            x
        };
        let cols = x.conv_op(ConvOp::Unfold {
            win: Window2d {
                padding: (0, 0),
                ..win
            },
        });
        Ok((cols, Shape::from_slice(&[s[0], s[1], ho, wo])))
    }

    fallible! {
        /// Max pooling over `win` windows (padding is `-∞`; the gradient goes to the first
        /// maximum of each window, as PyTorch). Floor mode.
        ///
        /// # Errors
        /// On a non-4-d input, an oversized window, or padding above half the kernel.
        pub fn max_pool2d / try_max_pool2d(self, win: Window2d) -> Var<'g, T> {
            let (cols, out) = self.pool_windows(win, T::neg_infinity())?;
            Ok(cols.max_dim(1, false).0.reshape(&out))
        }
    }

    fallible! {
        /// Average pooling over `win` windows (zero padding counted, PyTorch's default
        /// `count_include_pad=True`). Floor mode.
        ///
        /// # Errors
        /// On a non-4-d input, an oversized window, or padding above half the kernel.
        pub fn avg_pool2d / try_avg_pool2d(self, win: Window2d) -> Var<'g, T> {
            let (cols, out) = self.pool_windows(win, T::zero())?;
            Ok(cols.mean_dim(1, false).reshape(&out))
        }
    }
}

#[cfg(test)]
mod tests;

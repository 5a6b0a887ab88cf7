//! Sliding windows over images: `unfold` (im2col) and `fold` (col2im), and the composites
//! built on them — `conv2d`, `max_pool2d`, `avg_pool2d`.
//!
//! `unfold` and `fold` are linear and each is the other's backward rule (the slice/pad
//! pattern again), so a convolution written as `unfold` followed by a batched `matmul` has
//! exact first- and second-order gradients for the input, the weight and the bias with no
//! rule of its own. Layouts follow PyTorch: data NCHW, weights OIHW, cross-correlation (no
//! kernel flip), `H_out = ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1` (floor mode).

use tapegrad_kernels::elementwise::{for_blocks, for_heavy_blocks};
use tapegrad_kernels::gemm::{gemm, MatLayout};

use crate::algebra::Algebra;
use crate::error::{arg_error, ok, shape_error, Result};
use crate::ops::matmul::Transpose;
use crate::ops::{BackwardArgs, Grads, Op, Rule};
use crate::shape::Shape;
use crate::tensor::{check_output, Tensor};
use crate::var::Var;
use crate::Float;

/// The geometry of a 2-d sliding window: kernel, stride, zero padding and dilation, each as
/// (height, width).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// Kernel size.
    pub kernel: (usize, usize),
    /// Step between windows.
    pub stride: (usize, usize),
    /// Zero padding added on both sides.
    pub padding: (usize, usize),
    /// Spacing between kernel taps.
    pub dilation: (usize, usize),
}

impl Window2d {
    /// A `kh × kw` window with stride 1, no padding, no dilation.
    pub fn new(kh: usize, kw: usize) -> Self {
        Window2d {
            kernel: (kh, kw),
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
        }
    }
    /// With a stride.
    pub fn with_stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = (sh, sw);
        self
    }
    /// With zero padding.
    pub fn with_padding(mut self, ph: usize, pw: usize) -> Self {
        self.padding = (ph, pw);
        self
    }
    /// With a dilation.
    pub fn with_dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = (dh, dw);
        self
    }

    /// The number of window positions along one axis, or `None` if the window does not fit
    /// or the sizes overflow: the padded length plus the stride must fit in `isize`, so
    /// that every position the kernels compute from them fits too.
    fn positions(n: usize, k: usize, s: usize, p: usize, d: usize) -> Option<usize> {
        let span = d.checked_mul(k.checked_sub(1)?)?.checked_add(1)?;
        let padded = p.checked_mul(2)?.checked_add(n)?;
        if padded.checked_add(s)? > isize::MAX as usize {
            return None;
        }
        padded.checked_sub(span).map(|r| r / s + 1)
    }

    /// The output size `(H_out, W_out)` for an input of `(h, w)`, or `None` if the (dilated)
    /// kernel is larger than the padded input or the sizes overflow.
    pub fn output_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (kh, kw) = self.kernel;
        Some((
            Self::positions(h, kh, self.stride.0, self.padding.0, self.dilation.0)?,
            Self::positions(w, kw, self.stride.1, self.padding.1, self.dilation.1)?,
        ))
    }

    #[track_caller]
    fn validate(&self, op: &'static str) -> Result<()> {
        let pos = [
            self.kernel.0,
            self.kernel.1,
            self.stride.0,
            self.stride.1,
            self.dilation.0,
            self.dilation.1,
        ];
        if pos.contains(&0) {
            return Err(arg_error(
                op,
                format!("kernel, stride and dilation must be positive, got {self:?}"),
            ));
        }
        Ok(())
    }
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

impl ConvOp {
    /// The op's name as printed on the tape.
    pub fn name(&self) -> &'static str {
        match self {
            ConvOp::Unfold { .. } => "unfold",
            ConvOp::Fold { .. } => "fold",
            ConvOp::Conv2d { .. } => "conv2d",
        }
    }

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
                win.validate("unfold")?;
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
                win.validate("fold")?;
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
    fn name(&self) -> &str {
        ConvOp::name(self)
    }

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

/// Where tap `k` of a window reads along one axis: output positions `lo..hi` read input
/// positions `lo·s + k·d − p`, `(lo+1)·s + k·d − p`, …, all inside `0..n`; the others fall
/// in the padding.
#[derive(Clone, Copy)]
struct TapRange {
    lo: usize,
    hi: usize,
    /// Input position read by output position `lo`.
    first: usize,
}

impl TapRange {
    fn new(k: usize, s: usize, p: usize, d: usize, n: usize, out: usize) -> TapRange {
        let off = k * d; // input position = o·s + off − p
        let lo = p.saturating_sub(off).div_ceil(s).min(out);
        // Largest o with o·s + off − p ≤ n − 1.
        let hi = if n + p > off {
            ((n - 1 + p - off) / s + 1).min(out)
        } else {
            0
        };
        let hi = hi.max(lo);
        TapRange {
            lo,
            hi,
            first: (lo * s + off).saturating_sub(p),
        }
    }
}

/// The columns of one channel plane `img` (`h × w`): `kh·kw` rows of `L = ho·wo`, row
/// `(i, j)` holding tap `(i, j)` of every window. With stride 1 each output line is one
/// contiguous copy plus the zeros of the padding.
fn unfold_plane<T: Float>(img: &[T], (h, w): (usize, usize), win: Window2d, block: &mut [T]) {
    let (kh, kw) = win.kernel;
    let (ho, wo) = win.output_size(h, w).expect("checked when recorded");
    let l = ho * wo;
    let (sh, sw) = win.stride;
    for i in 0..kh {
        let rows = TapRange::new(i, sh, win.padding.0, win.dilation.0, h, ho);
        for j in 0..kw {
            let cols = TapRange::new(j, sw, win.padding.1, win.dilation.1, w, wo);
            let row = &mut block[(i * kw + j) * l..][..l];
            row[..rows.lo * wo].fill(T::zero());
            row[rows.hi * wo..].fill(T::zero());
            for oh in rows.lo..rows.hi {
                let ih = rows.first + (oh - rows.lo) * sh;
                let line = &img[ih * w..][..w];
                let out = &mut row[oh * wo..][..wo];
                out[..cols.lo].fill(T::zero());
                out[cols.hi..].fill(T::zero());
                let out = &mut out[cols.lo..cols.hi];
                if sw == 1 {
                    out.copy_from_slice(&line[cols.first..cols.first + out.len()]);
                } else {
                    for (q, o) in out.iter_mut().enumerate() {
                        *o = line[cols.first + q * sw];
                    }
                }
            }
        }
    }
}

/// The adjoint of [`unfold_plane`]: the `kh·kw × L` columns `block` summed into the plane
/// `img` (which is overwritten), in a fixed order.
fn fold_plane<T: Float>(block: &[T], (h, w): (usize, usize), win: Window2d, img: &mut [T]) {
    let (kh, kw) = win.kernel;
    let (ho, wo) = win.output_size(h, w).expect("checked when recorded");
    let l = ho * wo;
    let (sh, sw) = win.stride;
    img.fill(T::zero());
    for i in 0..kh {
        let rows = TapRange::new(i, sh, win.padding.0, win.dilation.0, h, ho);
        for j in 0..kw {
            let cs = TapRange::new(j, sw, win.padding.1, win.dilation.1, w, wo);
            let row = &block[(i * kw + j) * l..][..l];
            for oh in rows.lo..rows.hi {
                let ih = rows.first + (oh - rows.lo) * sh;
                let line = &mut img[ih * w..][..w];
                let v = &row[oh * wo + cs.lo..oh * wo + cs.hi];
                if sw == 1 {
                    for (o, &x) in line[cs.first..cs.first + v.len()].iter_mut().zip(v) {
                        *o += x;
                    }
                } else {
                    for (q, &x) in v.iter().enumerate() {
                        line[cs.first + q * sw] += x;
                    }
                }
            }
        }
    }
}

/// Unfolds consecutive planes (`x` holds whole `h × w` planes) into `out`, a
/// `kh·kw·L` block per plane, planes split over threads.
fn unfold_planes<T: Float>(x: &[T], hw: (usize, usize), win: Window2d, out: &mut [T]) {
    let (kh, kw) = win.kernel;
    let (ho, wo) = win.output_size(hw.0, hw.1).expect("checked when recorded");
    let plane = hw.0 * hw.1;
    for_blocks(out, kh * kw * ho * wo, |p, block| {
        unfold_plane(&x[p * plane..][..plane], hw, win, block)
    });
}

/// Folds consecutive `kh·kw·L` column blocks into planes of `out`, planes split over
/// threads.
fn fold_planes<T: Float>(cols: &[T], hw: (usize, usize), win: Window2d, out: &mut [T]) {
    let (kh, kw) = win.kernel;
    let (ho, wo) = win.output_size(hw.0, hw.1).expect("checked when recorded");
    let block = kh * kw * ho * wo;
    for_blocks(out, hw.0 * hw.1, |p, img| {
        fold_plane(&cols[p * block..][..block], hw, win, img)
    });
}

/// im2col: `x [N, C, H, W]` → `[N, C·kh·kw, H_out·W_out]`, rows ordered (c, i, j) as
/// PyTorch's `F.unfold`.
fn unfold<T: Float>(x: &Tensor<T>, win: Window2d) -> Tensor<T> {
    let s = x.shape();
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let (ho, wo) = win.output_size(h, w).expect("checked when recorded");
    let rows = c * win.kernel.0 * win.kernel.1;
    Tensor::from_writer([n, rows, ho * wo], |dst| {
        unfold_planes(x.as_slice(), (h, w), win, dst)
    })
}

/// col2im: columns `[N, C·kh·kw, L]` summed into `[N, C, H, W]` (the adjoint of `unfold`).
fn fold<T: Float>(cols: &Tensor<T>, win: Window2d, (h, w): (usize, usize)) -> Tensor<T> {
    let s = cols.shape();
    let c = s[1] / (win.kernel.0 * win.kernel.1);
    Tensor::from_writer([s[0], c, h, w], |dst| {
        fold_planes(cols.as_slice(), (h, w), win, dst)
    })
}

/// The sizes of a convolution of `x` by `w`: per group, `og` output channels, `cg` input
/// channels, `k = cg·kh·kw` column rows; `l` output positions.
struct ConvDims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    groups: usize,
    og: usize,
    cg: usize,
    k: usize,
    ho: usize,
    wo: usize,
    l: usize,
}

impl ConvDims {
    fn new(x: &[usize], w: &[usize], win: Window2d, groups: usize) -> ConvDims {
        let (ho, wo) = win.output_size(x[2], x[3]).expect("checked when recorded");
        let cg = x[1] / groups;
        ConvDims {
            n: x[0],
            c: x[1],
            h: x[2],
            w: x[3],
            o: w[0],
            groups,
            og: w[0] / groups,
            cg,
            k: cg * win.kernel.0 * win.kernel.1,
            ho,
            wo,
            l: ho * wo,
        }
    }
}

/// A scratch buffer of `len` elements from the tensor pool (no allocation once warm).
fn scratch<T: Float>(len: usize) -> Tensor<T> {
    Tensor::from_writer([len], |_| {})
}

/// The convolution `x ⋆ w` (no bias), image by image: the columns of one image and group
/// are built in a buffer that stays in cache and multiplied at once. Images are spread over
/// the threads (each image's output is written by one task).
fn conv2d_forward<T: Float>(
    x: &Tensor<T>,
    wt: &Tensor<T>,
    bias: Option<&Tensor<T>>,
    win: Window2d,
    groups: usize,
) -> Tensor<T> {
    let d = ConvDims::new(x.shape(), wt.shape(), win, groups);
    if super::winograd::applies(win, groups, d.ho, d.wo) {
        return super::winograd::forward(x, wt, bias, win);
    }
    let mut out = conv2d_forward_direct(x, wt, win, groups);
    if let Some(b) = bias {
        add_bias(&mut out, b);
    }
    out
}

/// Adds `b[oi]` to every element of channel `oi` of `out` (`[n, o, h, w]`), images over
/// threads.
fn add_bias<T: Float>(out: &mut Tensor<T>, b: &Tensor<T>) {
    let s = out.shape();
    let (o, l) = (s[1], s[2] * s[3]);
    let bs = b.as_slice();
    for_heavy_blocks(out.as_mut_slice(), o * l, |_, img| {
        for (plane, &bo) in img.chunks_exact_mut(l).zip(bs) {
            for v in plane {
                *v += bo;
            }
        }
    });
}

/// The bias gradient of a convolution: per output channel, the sum of `g` over positions
/// (each plane in the fixed order of [`tapegrad_kernels::reduce::sum`]) and then over
/// images in order, channels over threads. Independent of the thread count.
pub(crate) fn conv2d_bias_grad_tensor<T: Float>(g: &Tensor<T>) -> Tensor<T> {
    let s = g.shape();
    let (n, o, l) = (s[0], s[1], s[2] * s[3]);
    let gs = g.as_slice();
    let per_task = o.div_ceil(tapegrad_kernels::threads::num_threads()).max(1);
    Tensor::from_writer([o], |gb| {
        for_heavy_blocks(gb, per_task, |blk, out| {
            for (k, v) in out.iter_mut().enumerate() {
                let oi = blk * per_task + k;
                *v = (0..n).fold(T::zero(), |acc, b| {
                    acc + tapegrad_kernels::reduce::sum(&gs[(b * o + oi) * l..][..l])
                });
            }
        })
    })
}

/// [`conv2d_forward`] through im2col and the gemm, whatever the window.
pub(crate) fn conv2d_forward_direct<T: Float>(
    x: &Tensor<T>,
    wt: &Tensor<T>,
    win: Window2d,
    groups: usize,
) -> Tensor<T> {
    let d = ConvDims::new(x.shape(), wt.shape(), win, groups);
    let (xs, ws) = (x.as_slice(), wt.as_slice());
    let row = MatLayout::row_major(d.l, false);
    Tensor::from_writer([d.n, d.o, d.ho, d.wo], |out| {
        for_heavy_blocks(out, d.o * d.l, |b, out| {
            let mut cols = scratch::<T>(d.k * d.l);
            for gi in 0..d.groups {
                let planes = &xs[(b * d.c + gi * d.cg) * d.h * d.w..][..d.cg * d.h * d.w];
                unfold_planes(planes, (d.h, d.w), win, cols.as_mut_slice());
                gemm(
                    d.og,
                    d.k,
                    d.l,
                    T::one(),
                    &ws[gi * d.og * d.k..][..d.og * d.k],
                    MatLayout::row_major(d.k, false),
                    cols.as_slice(),
                    row,
                    T::zero(),
                    &mut out[gi * d.og * d.l..][..d.og * d.l],
                    row,
                );
            }
        })
    })
}

/// The input gradient of a convolution: for each image and group, `wᵀ·g` as columns,
/// folded back into the image. Images are spread over the threads.
pub(crate) fn conv2d_input_grad_tensor<T: Float>(
    g: &Tensor<T>,
    wt: &Tensor<T>,
    win: Window2d,
    groups: usize,
    x_shape: &[usize],
) -> Tensor<T> {
    let d = ConvDims::new(x_shape, wt.shape(), win, groups);
    if super::winograd::applies(win, groups, d.ho, d.wo) {
        return super::winograd::input_grad(g, wt, win, x_shape);
    }
    conv2d_input_grad_direct(g, wt, win, groups, x_shape)
}

/// [`conv2d_input_grad_tensor`] through the gemm and col2im, whatever the window.
pub(crate) fn conv2d_input_grad_direct<T: Float>(
    g: &Tensor<T>,
    wt: &Tensor<T>,
    win: Window2d,
    groups: usize,
    x_shape: &[usize],
) -> Tensor<T> {
    let d = ConvDims::new(x_shape, wt.shape(), win, groups);
    let (gs, ws) = (g.as_slice(), wt.as_slice());
    let row = MatLayout::row_major(d.l, false);
    Tensor::from_writer(x_shape, |dx| {
        for_heavy_blocks(dx, d.c * d.h * d.w, |b, dx| {
            let mut cols = scratch::<T>(d.k * d.l);
            for gi in 0..d.groups {
                gemm(
                    d.k,
                    d.og,
                    d.l,
                    T::one(),
                    &ws[gi * d.og * d.k..][..d.og * d.k],
                    MatLayout::row_major(d.k, true),
                    &gs[(b * d.o + gi * d.og) * d.l..][..d.og * d.l],
                    row,
                    T::zero(),
                    cols.as_mut_slice(),
                    row,
                );
                let planes = &mut dx[gi * d.cg * d.h * d.w..][..d.cg * d.h * d.w];
                fold_planes(cols.as_slice(), (d.h, d.w), win, planes);
            }
        })
    })
}

/// Images per partial sum of the weight gradient: fixed, so the order of the additions
/// (within a run of images, then across runs) does not depend on the thread count.
const WEIGHT_GRAD_RUN: usize = 8;

/// The weight gradient of a convolution: `Σ_images g·colsᵀ` per group, the columns rebuilt
/// image by image. Runs of [`WEIGHT_GRAD_RUN`] images accumulate their products in order
/// (in parallel across runs); the runs' sums are then added in order.
pub(crate) fn conv2d_weight_grad_tensor<T: Float>(
    g: &Tensor<T>,
    x: &Tensor<T>,
    win: Window2d,
    groups: usize,
    w_shape: &[usize],
) -> Tensor<T> {
    let d = ConvDims::new(x.shape(), w_shape, win, groups);
    if super::winograd::applies(win, groups, d.ho, d.wo) {
        return super::winograd::weight_grad(g, x, win, w_shape);
    }
    conv2d_weight_grad_direct(g, x, win, groups, w_shape)
}

/// [`conv2d_weight_grad_tensor`] through im2col and the gemm, whatever the window.
pub(crate) fn conv2d_weight_grad_direct<T: Float>(
    g: &Tensor<T>,
    x: &Tensor<T>,
    win: Window2d,
    groups: usize,
    w_shape: &[usize],
) -> Tensor<T> {
    let d = ConvDims::new(x.shape(), w_shape, win, groups);
    let (gs, xs) = (g.as_slice(), x.as_slice());
    let size = d.o * d.k;
    let runs = d.n.div_ceil(WEIGHT_GRAD_RUN);
    let partial_run = |r: usize, dw: &mut [T]| {
        let mut cols = scratch::<T>(d.k * d.l);
        let images = r * WEIGHT_GRAD_RUN..((r + 1) * WEIGHT_GRAD_RUN).min(d.n);
        for (i, b) in images.enumerate() {
            for gi in 0..d.groups {
                let planes = &xs[(b * d.c + gi * d.cg) * d.h * d.w..][..d.cg * d.h * d.w];
                unfold_planes(planes, (d.h, d.w), win, cols.as_mut_slice());
                gemm(
                    d.og,
                    d.l,
                    d.k,
                    T::one(),
                    &gs[(b * d.o + gi * d.og) * d.l..][..d.og * d.l],
                    MatLayout::row_major(d.l, false),
                    cols.as_slice(),
                    MatLayout::row_major(d.l, true),
                    if i == 0 { T::zero() } else { T::one() },
                    &mut dw[gi * d.og * d.k..][..d.og * d.k],
                    MatLayout::row_major(d.k, false),
                );
            }
        }
    };
    if runs <= 1 {
        return Tensor::from_writer(w_shape, |dw| {
            if d.n == 0 {
                dw.fill(T::zero());
            } else {
                partial_run(0, dw);
            }
        });
    }
    let mut partials = scratch::<T>(runs * size);
    for_heavy_blocks(partials.as_mut_slice(), size, partial_run);
    let p = partials.as_slice();
    Tensor::from_writer(w_shape, |dw| {
        dw.copy_from_slice(&p[..size]);
        for r in 1..runs {
            for (o, &v) in dw.iter_mut().zip(&p[r * size..(r + 1) * size]) {
                *o += v;
            }
        }
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

impl Conv2dSpec {
    /// With a stride.
    pub fn with_stride(mut self, sh: usize, sw: usize) -> Self {
        self.stride = (sh, sw);
        self
    }
    /// With zero padding.
    pub fn with_padding(mut self, ph: usize, pw: usize) -> Self {
        self.padding = (ph, pw);
        self
    }
    /// With a dilation.
    pub fn with_dilation(mut self, dh: usize, dw: usize) -> Self {
        self.dilation = (dh, dw);
        self
    }
    /// With channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }
}

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
    win.validate("conv2d")?;
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
    /// im2col: every `win`-window of `[N, C, H, W]` as a column of `[N, C·kh·kw, L]`
    /// (PyTorch's `F.unfold`).
    ///
    /// # Errors
    /// On a shape that is not 4-d or a window larger than the padded image.
    #[track_caller]
    pub fn try_unfold2d(&self, win: Window2d) -> Result<Tensor<T>> {
        let op = ConvOp::Unfold { win };
        op.check::<T>(self.shape())?;
        Ok(op.forward(self))
    }

    /// col2im: columns `[N, C·kh·kw, L]` summed into `[N, C, H, W]` (PyTorch's `F.fold`).
    ///
    /// # Errors
    /// On mismatched shapes.
    #[track_caller]
    pub fn try_fold2d(&self, win: Window2d, size: (usize, usize)) -> Result<Tensor<T>> {
        let op = ConvOp::Fold { win, size };
        op.check::<T>(self.shape())?;
        Ok(op.forward(self))
    }

    /// im2col (see [`Tensor::try_unfold2d`]).
    ///
    /// # Panics
    /// At the caller's line on invalid shapes.
    #[track_caller]
    pub fn unfold2d(&self, win: Window2d) -> Tensor<T> {
        ok(self.try_unfold2d(win))
    }

    /// col2im (see [`Tensor::try_fold2d`]).
    ///
    /// # Panics
    /// At the caller's line on mismatched shapes.
    #[track_caller]
    pub fn fold2d(&self, win: Window2d, size: (usize, usize)) -> Tensor<T> {
        ok(self.try_fold2d(win, size))
    }

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
    #[track_caller]
    pub fn try_conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
    ) -> Result<Tensor<T>> {
        let [_, _, _, kh, kw, _, _] =
            conv_plan::<T>(self.shape(), weight.shape(), bias.map(|b| b.shape()), &spec)?;
        let win = Window2d {
            kernel: (kh, kw),
            stride: spec.stride,
            padding: spec.padding,
            dilation: spec.dilation,
        };
        Ok(conv2d_forward(self, weight, bias, win, spec.groups))
    }

    /// 2-d convolution of tensors (see [`Tensor::try_conv2d`]).
    ///
    /// # Panics
    /// On inconsistent shapes.
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        spec: Conv2dSpec,
    ) -> Tensor<T> {
        ok(self.try_conv2d(weight, bias, spec))
    }

    /// Max pooling of a tensor (see [`Var::try_max_pool2d`]): the composite run on a
    /// throwaway tape of constants, so it is written once.
    ///
    /// # Errors
    /// On a non-4-d input, an oversized window, or padding above half the kernel.
    #[track_caller]
    pub fn try_max_pool2d(&self, win: Window2d) -> Result<Tensor<T>> {
        let g = crate::Graph::new();
        Ok(g.constant(self.clone()).try_max_pool2d(win)?.value())
    }

    /// Max pooling of a tensor (see [`Tensor::try_max_pool2d`]).
    ///
    /// # Panics
    /// On invalid shapes or windows.
    #[track_caller]
    pub fn max_pool2d(&self, win: Window2d) -> Tensor<T> {
        ok(self.try_max_pool2d(win))
    }

    /// Average pooling of a tensor (see [`Var::try_avg_pool2d`]), written once as
    /// [`Tensor::try_max_pool2d`] is.
    ///
    /// # Errors
    /// On a non-4-d input, an oversized window, or padding above half the kernel.
    #[track_caller]
    pub fn try_avg_pool2d(&self, win: Window2d) -> Result<Tensor<T>> {
        let g = crate::Graph::new();
        Ok(g.constant(self.clone()).try_avg_pool2d(win)?.value())
    }

    /// Average pooling of a tensor (see [`Tensor::try_avg_pool2d`]).
    ///
    /// # Panics
    /// On invalid shapes or windows.
    #[track_caller]
    pub fn avg_pool2d(&self, win: Window2d) -> Tensor<T> {
        ok(self.try_avg_pool2d(win))
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

    /// im2col (see [`Tensor::try_unfold2d`]); its gradient is `fold2d`.
    ///
    /// # Errors
    /// On a shape that is not 4-d or a window larger than the padded image.
    #[track_caller]
    pub fn try_unfold2d(self, win: Window2d) -> Result<Var<'g, T>> {
        let op = ConvOp::Unfold { win };
        op.check::<T>(&self.shape())?;
        Ok(self.conv_op(op))
    }

    /// im2col (see [`Var::try_unfold2d`]).
    ///
    /// # Panics
    /// On invalid shapes.
    #[track_caller]
    pub fn unfold2d(self, win: Window2d) -> Var<'g, T> {
        ok(self.try_unfold2d(win))
    }

    /// col2im (see [`Tensor::try_fold2d`]); its gradient is `unfold2d`.
    ///
    /// # Errors
    /// On mismatched shapes.
    #[track_caller]
    pub fn try_fold2d(self, win: Window2d, size: (usize, usize)) -> Result<Var<'g, T>> {
        let op = ConvOp::Fold { win, size };
        op.check::<T>(&self.shape())?;
        Ok(self.conv_op(op))
    }

    /// col2im (see [`Var::try_fold2d`]).
    ///
    /// # Panics
    /// On mismatched shapes.
    #[track_caller]
    pub fn fold2d(self, win: Window2d, size: (usize, usize)) -> Var<'g, T> {
        ok(self.try_fold2d(win, size))
    }

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
    #[track_caller]
    pub fn try_conv2d(
        self,
        weight: Var<'g, T>,
        bias: Option<Var<'g, T>>,
        spec: Conv2dSpec,
    ) -> Result<Var<'g, T>> {
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

    /// 2-d convolution (see [`Var::try_conv2d`]).
    ///
    /// # Panics
    /// On inconsistent shapes.
    #[track_caller]
    pub fn conv2d(
        self,
        weight: Var<'g, T>,
        bias: Option<Var<'g, T>>,
        spec: Conv2dSpec,
    ) -> Var<'g, T> {
        ok(self.try_conv2d(weight, bias, spec))
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
        win.validate("pool2d")?;
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

    /// Max pooling over `win` windows (padding is `-∞`; the gradient goes to the first
    /// maximum of each window, as PyTorch). Floor mode.
    ///
    /// # Errors
    /// On a non-4-d input, an oversized window, or padding above half the kernel.
    #[track_caller]
    pub fn try_max_pool2d(self, win: Window2d) -> Result<Var<'g, T>> {
        let (cols, out) = self.pool_windows(win, T::neg_infinity())?;
        Ok(cols.max_dim(1, false).0.reshape(&out))
    }

    /// Max pooling (see [`Var::try_max_pool2d`]).
    ///
    /// # Panics
    /// On invalid shapes or windows.
    #[track_caller]
    pub fn max_pool2d(self, win: Window2d) -> Var<'g, T> {
        ok(self.try_max_pool2d(win))
    }

    /// Average pooling over `win` windows (zero padding counted, PyTorch's default
    /// `count_include_pad=True`). Floor mode.
    ///
    /// # Errors
    /// On a non-4-d input, an oversized window, or padding above half the kernel.
    #[track_caller]
    pub fn try_avg_pool2d(self, win: Window2d) -> Result<Var<'g, T>> {
        let (cols, out) = self.pool_windows(win, T::zero())?;
        Ok(cols.mean_dim(1, false).reshape(&out))
    }

    /// Average pooling (see [`Var::try_avg_pool2d`]).
    ///
    /// # Panics
    /// On invalid shapes or windows.
    #[track_caller]
    pub fn avg_pool2d(self, win: Window2d) -> Var<'g, T> {
        ok(self.try_avg_pool2d(win))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{check_op, rand_tensor};

    #[test]
    fn tensor_forms_equal_the_recorded_ones() {
        let x = rand_tensor(&[2, 3, 6, 6], -1.0, 1.0, 1);
        let w = rand_tensor(&[4, 3, 3, 3], -1.0, 1.0, 2);
        let b = rand_tensor(&[4], -1.0, 1.0, 3);
        let g = crate::Graph::new();
        let (xv, wv, bv) = (g.leaf(x.clone()), g.leaf(w.clone()), g.leaf(b.clone()));
        for spec in [
            Conv2dSpec::default().with_padding(1, 1),
            Conv2dSpec::default().with_stride(2, 1),
        ] {
            let want = xv.conv2d(wv, Some(bv), spec).value();
            assert_eq!(x.conv2d(&w, Some(&b), spec).to_vec(), want.to_vec());
        }
        let win = Window2d::new(2, 2).with_stride(2, 2);
        assert_eq!(
            x.max_pool2d(win).to_vec(),
            xv.max_pool2d(win).value().to_vec()
        );
        assert_eq!(
            x.avg_pool2d(win).to_vec(),
            xv.avg_pool2d(win).value().to_vec()
        );
        assert!(x.try_conv2d(&b, None, Conv2dSpec::default()).is_err());
        assert!(b.try_max_pool2d(win).is_err());
    }

    #[test]
    fn conv2d_results_do_not_depend_on_the_thread_count() {
        use tapegrad_kernels::threads::with_num_threads;
        let x = Tensor::<f32>::rand_uniform([19, 3, 9, 8], -1.0, 1.0, &mut crate::seeded_rng(1));
        let w = Tensor::<f32>::rand_uniform([6, 3, 3, 3], -1.0, 1.0, &mut crate::seeded_rng(2));
        let spec = Conv2dSpec::default().with_padding(1, 1);
        let run = |threads: usize| {
            with_num_threads(threads, || {
                let g = crate::Graph::new();
                let (xv, wv) = (g.leaf(x.clone()), g.leaf(w.clone()));
                let bv = g.leaf(Tensor::from_vec(vec![0.1, -0.2, 0.3, 0.0, 0.5, -0.6], [6]));
                let y = xv.conv2d(wv, Some(bv), spec);
                let s = (y * y).sum();
                let grads = s.backward();
                let gb = grads.wrt(bv);
                let gw = grads.wrt(wv).with_shape([6 * 27]);
                (y.value(), grads.wrt(xv), Tensor::cat(&[&gw, &gb], 0))
            })
        };
        let one = run(1);
        let two = run(2);
        assert!(one
            .0
            .as_slice()
            .iter()
            .zip(two.0.as_slice())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(one
            .1
            .as_slice()
            .iter()
            .zip(two.1.as_slice())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
        assert!(one
            .2
            .as_slice()
            .iter()
            .zip(two.2.as_slice())
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn unfold_and_fold_match_the_definition_for_every_window() {
        let x = rand_tensor(&[2, 3, 7, 6], -1.0, 1.0, 5);
        for k in 1..=4 {
            for s in 1..=3 {
                for p in 0..=2 {
                    for d in 1..=2 {
                        let win = Window2d {
                            kernel: (k, k.max(2) - 1),
                            stride: (s, s.max(2) - 1),
                            padding: (p, p / 2),
                            dilation: (d, 3 - d),
                        };
                        let Some((ho, wo)) = win.output_size(7, 6) else {
                            continue;
                        };
                        let (kh, kw) = win.kernel;
                        let cols = unfold(&x, win);
                        let l = ho * wo;
                        // By definition, element by element.
                        let mut want = vec![0.0; 2 * 3 * kh * kw * l];
                        let mut back = vec![0.0; 2 * 3 * 7 * 6];
                        let cv = cols.as_slice();
                        for b in 0..2 {
                            for c in 0..3 {
                                for i in 0..kh {
                                    for j in 0..kw {
                                        let r = ((b * 3 + c) * kh + i) * kw + j;
                                        for oh in 0..ho {
                                            for ow in 0..wo {
                                                let (a, bb) = (win.stride, win.dilation);
                                                let ih = (oh * a.0 + i * bb.0)
                                                    .checked_sub(win.padding.0)
                                                    .filter(|&v| v < 7);
                                                let iw = (ow * a.1 + j * bb.1)
                                                    .checked_sub(win.padding.1)
                                                    .filter(|&v| v < 6);
                                                if let (Some(ih), Some(iw)) = (ih, iw) {
                                                    let src = ((b * 3 + c) * 7 + ih) * 6 + iw;
                                                    want[r * l + oh * wo + ow] = x.as_slice()[src];
                                                    back[src] += cv[r * l + oh * wo + ow];
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        assert_eq!(cols.as_slice(), want.as_slice(), "unfold {win:?}");
                        let folded = fold(&cols, win, (7, 6));
                        for (g, w) in folded.as_slice().iter().zip(&back) {
                            assert!((g - w).abs() < 1e-12, "fold {win:?}");
                        }
                    }
                }
            }
        }
    }

    /// Direct convolution by definition, for checking.
    fn naive_conv(x: &Tensor<f64>, w: &Tensor<f64>, spec: Conv2dSpec) -> Tensor<f64> {
        let (xs, ws) = (x.shape(), w.shape());
        let (n, h, wd) = (xs[0], xs[2], xs[3]);
        let (o, cg, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let g = spec.groups;
        let win = Window2d {
            kernel: (kh, kw),
            stride: spec.stride,
            padding: spec.padding,
            dilation: spec.dilation,
        };
        let (ho, wo) = win.output_size(h, wd).unwrap();
        Tensor::from_fn([n, o, ho, wo], |p| {
            let (b, oc, oh, ow) = (p / (o * ho * wo), p / (ho * wo) % o, p / wo % ho, p % wo);
            let grp = oc / (o / g);
            let mut s = 0.0;
            for ci in 0..cg {
                let ch = grp * cg + ci;
                for i in 0..kh {
                    for j in 0..kw {
                        let ih = (oh * spec.stride.0 + i * spec.dilation.0) as isize
                            - spec.padding.0 as isize;
                        let iw = (ow * spec.stride.1 + j * spec.dilation.1) as isize
                            - spec.padding.1 as isize;
                        if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < wd {
                            s += x.get(&[b, ch, ih as usize, iw as usize]) * w.get(&[oc, ci, i, j]);
                        }
                    }
                }
            }
            s
        })
    }

    #[test]
    fn conv2d_matches_the_definition() {
        let specs = [
            Conv2dSpec::default(),
            Conv2dSpec::default().with_padding(1, 1),
            Conv2dSpec::default().with_stride(2, 1).with_padding(1, 0),
            Conv2dSpec::default().with_dilation(2, 2).with_padding(2, 1),
            Conv2dSpec::default().with_groups(2).with_padding(1, 1),
        ];
        for (i, spec) in specs.iter().enumerate() {
            let x = rand_tensor(&[2, 4, 6, 5], -1.0, 1.0, 200 + i as u64);
            let w = rand_tensor(&[6, 4 / spec.groups, 3, 3], -1.0, 1.0, 210 + i as u64);
            let g = crate::Graph::<f64>::new();
            let got = g
                .constant(x.clone())
                .conv2d(g.constant(w.clone()), None, *spec)
                .value();
            crate::assert_close(&got, &naive_conv(&x, &w, *spec), 1e-12, 0.0);
        }
    }

    #[test]
    fn conv2d_gradients_first_and_second_order() {
        let x = rand_tensor(&[2, 2, 5, 4], -1.0, 1.0, 220);
        let w = rand_tensor(&[3, 2, 3, 2], -1.0, 1.0, 221);
        let b = rand_tensor(&[3], -1.0, 1.0, 222);
        let spec = Conv2dSpec::default().with_stride(2, 1).with_padding(1, 1);
        check_op("conv2d", &[x.clone(), w, b], move |_, v| {
            v[0].conv2d(v[1], Some(v[2]), spec)
        });
        // 3×3 at stride 1: the Winograd path, with the fused bias, odd and even sides.
        let w3 = rand_tensor(&[3, 2, 3, 3], -1.0, 1.0, 224);
        let b3 = rand_tensor(&[3], -1.0, 1.0, 225);
        for pad in [(1, 1), (0, 2)] {
            let spec = Conv2dSpec::default().with_padding(pad.0, pad.1);
            check_op(
                "conv2d_3x3",
                &[x.clone(), w3.clone(), b3.clone()],
                move |_, v| v[0].conv2d(v[1], Some(v[2]), spec),
            );
        }
        let wg = rand_tensor(&[4, 1, 2, 2], -1.0, 1.0, 223);
        check_op("conv2d_groups", &[x.clone(), wg], |_, v| {
            v[0].conv2d(v[1], None, Conv2dSpec::default().with_groups(2))
        });
    }

    #[test]
    fn unfold_and_fold_are_adjoint() {
        // ⟨unfold(x), y⟩ = ⟨x, fold(y)⟩
        let win = Window2d::new(3, 2)
            .with_stride(2, 1)
            .with_padding(1, 0)
            .with_dilation(1, 2);
        let x = rand_tensor(&[2, 3, 6, 7], -1.0, 1.0, 230);
        let u = x.try_unfold2d(win).unwrap();
        let y = rand_tensor(u.shape(), -1.0, 1.0, 231);
        let f = y.try_fold2d(win, (6, 7)).unwrap();
        let lhs: f64 = u
            .as_slice()
            .iter()
            .zip(y.as_slice())
            .map(|(a, b)| a * b)
            .sum();
        let rhs: f64 = x
            .as_slice()
            .iter()
            .zip(f.as_slice())
            .map(|(a, b)| a * b)
            .sum();
        assert!((lhs - rhs).abs() < 1e-12);
        check_op("unfold", &[x], move |_, v| v[0].unfold2d(win));
    }

    #[test]
    fn pooling_values_and_gradients() {
        let x = Tensor::<f64>::from_fn([1, 1, 4, 4], |i| ((i * 7) % 16) as f64);
        let g = crate::Graph::<f64>::new();
        let xv = g.leaf(x.clone());
        let m = xv.max_pool2d(Window2d::new(2, 2).with_stride(2, 2));
        // x = [[0 7 14 5] [12 3 10 1] [8 15 6 13] [4 11 2 9]]
        assert_eq!(m.to_vec(), vec![12.0, 14.0, 15.0, 13.0]);
        let a = g
            .constant(x.clone())
            .avg_pool2d(Window2d::new(2, 2).with_stride(2, 2));
        assert_eq!(a.to_vec(), vec![5.5, 7.5, 9.5, 7.5]);
        // floor mode: a 5x5 input pools to 2x2, and row/column 5 get no gradient
        let x5 = g.leaf(rand_tensor(&[1, 2, 5, 5], -1.0, 1.0, 240));
        let pooled = x5.avg_pool2d(Window2d::new(2, 2).with_stride(2, 2));
        assert_eq!(pooled.shape().as_slice(), &[1, 2, 2, 2]);
        let gx = pooled.sum().backward().wrt(x5);
        for c in 0..2 {
            for k in 0..5 {
                assert_eq!((gx.get(&[0, c, 4, k]), gx.get(&[0, c, k, 4])), (0.0, 0.0));
            }
            assert_eq!(gx.get(&[0, c, 0, 0]), 0.25);
        }
        let xd = Tensor::<f64>::from_fn([2, 2, 5, 5], |i| ((i * 37) % 100) as f64 / 10.0 - 5.0);
        check_op("max_pool2d", std::slice::from_ref(&xd), |_, v| {
            v[0].max_pool2d(Window2d::new(2, 2).with_stride(2, 2))
        });
        check_op("max_pool2d_pad", std::slice::from_ref(&xd), |_, v| {
            v[0].max_pool2d(Window2d::new(3, 3).with_stride(2, 2).with_padding(1, 1))
        });
        check_op("avg_pool2d", &[xd], |_, v| {
            v[0].avg_pool2d(Window2d::new(3, 2).with_stride(1, 2).with_padding(1, 1))
        });
    }

    #[test]
    fn shape_errors() {
        let g = crate::Graph::<f64>::new();
        let x = g.leaf(Tensor::zeros([1, 3, 4, 4]));
        let w = g.leaf(Tensor::zeros([2, 2, 3, 3]));
        let e = x
            .try_conv2d(w, None, Conv2dSpec::default())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("conv2d:"), "{e}");
        let w5 = g.leaf(Tensor::zeros([2, 3, 5, 5]));
        assert!(x.try_conv2d(w5, None, Conv2dSpec::default()).is_err());
        assert!(x
            .try_max_pool2d(Window2d::new(2, 2).with_stride(0, 1))
            .is_err());
    }
}

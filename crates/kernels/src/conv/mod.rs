//! 2-d convolution kernels over slices in NCHW layout: im2col/col2im, the direct
//! convolution through the gemm, and Winograd's F(2×2, 3×3) for 3×3 windows at stride 1.
//!
//! [`forward`], [`input_grad`], [`weight_grad`] and [`bias_grad`] choose the algorithm
//! ([`winograd::applies`]); the results never depend on the thread count. Temporary
//! buffers come from the caller's [`Scratch`] (the core crate lends pooled tensor memory,
//! so a training step allocates nothing once warm).

mod direct;
mod im2col;
#[cfg(test)]
mod tests;
pub mod winograd;

pub use im2col::{fold_planes, unfold_planes};

use crate::elementwise::for_heavy_blocks;
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
}

/// The sizes of a convolution of `x` by `w`: per group, `og` output channels, `cg` input
/// channels, `k = cg·kh·kw` column rows; `l` output positions.
pub struct ConvDims {
    /// Images.
    pub n: usize,
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub o: usize,
    /// Channel groups.
    pub groups: usize,
    /// Output channels per group.
    pub og: usize,
    /// Input channels per group.
    pub cg: usize,
    /// Column rows per group: `cg·kh·kw`.
    pub k: usize,
    /// Output height.
    pub ho: usize,
    /// Output width.
    pub wo: usize,
    /// Output positions: `ho·wo`.
    pub l: usize,
    /// The window (kernel, stride, padding, dilation).
    pub win: Window2d,
}

impl ConvDims {
    /// The sizes for `x` (`[n, c, h, w]`) and `w` (`[o, c/groups, kh, kw]`).
    ///
    /// # Panics
    /// If the window does not fit the input (the op checked it when it was recorded).
    pub fn new(x: &[usize], w: &[usize], win: Window2d, groups: usize) -> ConvDims {
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
            win,
        }
    }
}

/// Where a kernel gets its temporary buffers.
pub trait Scratch<T>: Sync {
    /// Runs `f` on a buffer of `len` elements whose contents are unspecified (the kernels
    /// write before they read).
    fn with<R>(&self, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R;
}

/// Scratch buffers freshly allocated on the heap (for tests and one-off calls).
#[derive(Clone, Copy, Debug, Default)]
pub struct Heap;

impl<T: Float> Scratch<T> for Heap {
    fn with<R>(&self, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
        f(&mut vec![T::zero(); len])
    }
}

/// `x ⋆ w + bias` into `out` (`[n, o, ho, wo]`), `x` `[n, c, h, w]`, `w`
/// `[o, c/groups, kh, kw]`, `bias` `[o]`.
pub fn forward<T: Float, S: Scratch<T>>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    d: &ConvDims,
    out: &mut [T],
    scratch: &S,
) {
    if winograd::applies(d.win, d.groups, d.ho, d.wo) {
        return winograd::forward(x, w, bias, d, out, scratch);
    }
    direct::forward(x, w, d, out, scratch);
    if let Some(b) = bias {
        direct::add_bias(out, (d.o, d.l), b);
    }
}

/// The input gradient into `dx` (`[n, c, h, w]`) given the output gradient `g`.
pub fn input_grad<T: Float, S: Scratch<T>>(
    g: &[T],
    w: &[T],
    d: &ConvDims,
    dx: &mut [T],
    scratch: &S,
) {
    if winograd::applies(d.win, d.groups, d.ho, d.wo) {
        return winograd::input_grad(g, w, d, dx, scratch);
    }
    direct::input_grad(g, w, d, dx, scratch)
}

/// The weight gradient into `dw` (`[o, c/groups, kh, kw]`) given the output gradient `g`.
pub fn weight_grad<T: Float, S: Scratch<T>>(
    g: &[T],
    x: &[T],
    d: &ConvDims,
    dw: &mut [T],
    scratch: &S,
) {
    if winograd::applies(d.win, d.groups, d.ho, d.wo) {
        return winograd::weight_grad(g, x, d, dw, scratch);
    }
    direct::weight_grad(g, x, d, dw, scratch)
}

/// The bias gradient into `gb` (`[o]`): per output channel, the sum of `g` (`[n, o, l]`)
/// over positions (each plane in the fixed order of [`crate::reduce::sum`]) and then over
/// images in order, channels over threads. Independent of the thread count.
pub fn bias_grad<T: Float>(g: &[T], (n, o, l): (usize, usize, usize), gb: &mut [T]) {
    let per_task = o.div_ceil(crate::threads::num_threads()).max(1);
    for_heavy_blocks(gb, per_task, |blk, out| {
        for (k, v) in out.iter_mut().enumerate() {
            let oi = blk * per_task + k;
            *v = (0..n).fold(T::zero(), |acc, b| {
                acc + crate::reduce::sum(&g[(b * o + oi) * l..][..l])
            });
        }
    })
}

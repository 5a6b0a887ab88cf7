//! The direct convolution, for every window: image by image and group by group, im2col of
//! one image into a scratch buffer that stays in L2, then one gemm — so the columns of the
//! whole batch never exist. Images are spread over the threads (each image, or run of
//! images, is one task), so the results do not depend on the thread count.

use super::im2col::{fold_planes, unfold_planes};
use super::{ConvDims, Scratch};
use crate::elementwise::for_heavy_blocks;
use crate::gemm::{gemm, MatLayout};
use crate::Float;

/// Adds `b[oi]` to every element of channel `oi` of `out` (`[n, o, l]`), images over
/// threads.
pub(super) fn add_bias<T: Float>(out: &mut [T], (o, l): (usize, usize), b: &[T]) {
    for_heavy_blocks(out, o * l, |_, img| {
        for (plane, &bo) in img.chunks_exact_mut(l).zip(b) {
            for v in plane {
                *v += bo;
            }
        }
    });
}

/// `x ⋆ w` (no bias) into `out` (`[n, o, ho, wo]`).
pub fn forward<T: Float, S: Scratch<T>>(
    x: &[T],
    w: &[T],
    d: &ConvDims,
    out: &mut [T],
    scratch: &S,
) {
    let row = MatLayout::row_major(d.l, false);
    for_heavy_blocks(out, d.o * d.l, |b, out| {
        scratch.with(d.k * d.l, |cols| {
            for gi in 0..d.groups {
                let planes = &x[(b * d.c + gi * d.cg) * d.h * d.w..][..d.cg * d.h * d.w];
                unfold_planes(planes, (d.h, d.w), d.win, cols);
                gemm(
                    d.og,
                    d.k,
                    d.l,
                    T::one(),
                    &w[gi * d.og * d.k..][..d.og * d.k],
                    MatLayout::row_major(d.k, false),
                    cols,
                    row,
                    T::zero(),
                    &mut out[gi * d.og * d.l..][..d.og * d.l],
                    row,
                );
            }
        })
    })
}

/// The input gradient into `dx` (`[n, c, h, w]`): for each image and group, `wᵀ·g` as
/// columns, folded back into the image (col2im).
pub fn input_grad<T: Float, S: Scratch<T>>(
    g: &[T],
    w: &[T],
    d: &ConvDims,
    dx: &mut [T],
    scratch: &S,
) {
    let row = MatLayout::row_major(d.l, false);
    for_heavy_blocks(dx, d.c * d.h * d.w, |b, dx| {
        scratch.with(d.k * d.l, |cols| {
            for gi in 0..d.groups {
                gemm(
                    d.k,
                    d.og,
                    d.l,
                    T::one(),
                    &w[gi * d.og * d.k..][..d.og * d.k],
                    MatLayout::row_major(d.k, true),
                    &g[(b * d.o + gi * d.og) * d.l..][..d.og * d.l],
                    row,
                    T::zero(),
                    cols,
                    row,
                );
                let planes = &mut dx[gi * d.cg * d.h * d.w..][..d.cg * d.h * d.w];
                fold_planes(cols, (d.h, d.w), d.win, planes);
            }
        })
    })
}

/// Images per partial sum of the weight gradient: fixed, so the order of the additions
/// (within a run of images, then across runs) does not depend on the thread count.
pub(super) const WEIGHT_GRAD_RUN: usize = 8;

/// The weight gradient into `dw` (`[o, c/groups, kh, kw]`): `Σ_images g·colsᵀ` per group,
/// the columns rebuilt image by image. Runs of `WEIGHT_GRAD_RUN` (8) images accumulate their
/// products in order (in parallel across runs); the runs' sums are then added in order.
pub fn weight_grad<T: Float, S: Scratch<T>>(
    g: &[T],
    x: &[T],
    d: &ConvDims,
    dw: &mut [T],
    scratch: &S,
) {
    let size = d.o * d.k;
    let runs = d.n.div_ceil(WEIGHT_GRAD_RUN);
    let partial_run = |r: usize, dw: &mut [T]| {
        scratch.with(d.k * d.l, |cols| {
            let images = r * WEIGHT_GRAD_RUN..((r + 1) * WEIGHT_GRAD_RUN).min(d.n);
            for (i, b) in images.enumerate() {
                for gi in 0..d.groups {
                    let planes = &x[(b * d.c + gi * d.cg) * d.h * d.w..][..d.cg * d.h * d.w];
                    unfold_planes(planes, (d.h, d.w), d.win, cols);
                    gemm(
                        d.og,
                        d.l,
                        d.k,
                        T::one(),
                        &g[(b * d.o + gi * d.og) * d.l..][..d.og * d.l],
                        MatLayout::row_major(d.l, false),
                        cols,
                        MatLayout::row_major(d.l, true),
                        if i == 0 { T::zero() } else { T::one() },
                        &mut dw[gi * d.og * d.k..][..d.og * d.k],
                        MatLayout::row_major(d.k, false),
                    );
                }
            }
        })
    };
    if runs <= 1 {
        if d.n == 0 {
            dw.fill(T::zero());
        } else {
            partial_run(0, dw);
        }
        return;
    }
    scratch.with(runs * size, |partials| {
        for_heavy_blocks(partials, size, partial_run);
        dw.copy_from_slice(&partials[..size]);
        for r in 1..runs {
            for (o, &v) in dw.iter_mut().zip(&partials[r * size..(r + 1) * size]) {
                *o += v;
            }
        }
    })
}

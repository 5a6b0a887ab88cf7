//! The fast path of `conv2d` for 3×3 windows at stride 1 (the common case): Winograd's
//! minimal filtering F(2×2, 3×3) (Lavin & Gray, 2016), used for the forward pass and for the
//! input gradient (a 3×3 convolution of the output gradient with the flipped weights).
//!
//! Each 2×2 block of outputs of one channel pair costs 16 multiplications instead of 36:
//! the input is cut into overlapping 4×4 tiles, each transformed (`Bᵀ·d·B`), the weights
//! are transformed once (`G·g·Gᵀ`), the 16 elements of the transformed domain become 16
//! independent matrix products over channels (`M_ξ = U_ξ · V_ξ`, on the blocked gemm), and
//! each result is transformed back (`Aᵀ·m·A`). The transforms use only additions and
//! halvings; with
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡1   0   0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢½   ½   ½ ⎥    Aᵀ = ⎡1 1  1  0⎤
//!      ⎢0 −1  1  0⎥        ⎢½  −½   ½ ⎥         ⎣0 1 −1 −1⎦
//!      ⎣0  1  0 −1⎦        ⎣0   0   1 ⎦
//! ```
//!
//! the result is the cross-correlation PyTorch computes, up to rounding: the sums are
//! regrouped, so the last bits differ from the direct (im2col) product, by a few ulps of the
//! inputs' magnitudes (the tests bound it against the direct path, in f32 and f64).

use super::{ConvDims, Scratch, Window2d};
use crate::elementwise::for_heavy_blocks;
use crate::gemm::{gemm, MatLayout};
use crate::Float;

/// Whether a convolution with this window and grouping takes the Winograd path: a 3×3
/// kernel, stride 1, no dilation, one group, padding at most 2 on each axis (so that the
/// input gradient is itself such a convolution), and an output of at least 2×2.
pub fn applies(win: Window2d, groups: usize, ho: usize, wo: usize) -> bool {
    win.kernel == (3, 3)
        && win.stride == (1, 1)
        && win.dilation == (1, 1)
        && groups == 1
        && win.padding.0 <= 2
        && win.padding.1 <= 2
        && ho >= 2
        && wo >= 2
}

/// The transformed weights `U_ξ = (G·g·Gᵀ)_ξ` for every output/input channel pair, laid out
/// `[16][rows][cols]` for the products `M_ξ = U_ξ · V_ξ`, written to `u`.
///
/// `w` is OIHW `[o, c, 3, 3]`. Without `flip`, rows are the `o` output channels and cols the
/// `c` input channels (the forward pass). With `flip`, the kernel is rotated by 180° and the
/// roles swap (rows `c`, cols `o`): the weights of the input gradient, which is the
/// correlation of the output gradient with the flipped kernel.
fn transform_weights<T: Float>(w: &[T], o: usize, c: usize, flip: bool, u: &mut [T]) {
    let (rows, cols) = if flip { (c, o) } else { (o, c) };
    let half = T::from_f64(0.5);
    {
        for oi in 0..o {
            for ci in 0..c {
                let k = &w[(oi * c + ci) * 9..][..9];
                let g = |a: usize, b: usize| {
                    if flip {
                        k[(2 - a) * 3 + 2 - b]
                    } else {
                        k[a * 3 + b]
                    }
                };
                // t = G·g (4×3), then u = t·Gᵀ (4×4).
                let t: [[T; 3]; 4] = [
                    std::array::from_fn(|b| g(0, b)),
                    std::array::from_fn(|b| (g(0, b) + g(1, b) + g(2, b)) * half),
                    std::array::from_fn(|b| (g(0, b) - g(1, b) + g(2, b)) * half),
                    std::array::from_fn(|b| g(2, b)),
                ];
                let (r, s) = if flip { (ci, oi) } else { (oi, ci) };
                for (i, ti) in t.iter().enumerate() {
                    let v = [
                        ti[0],
                        (ti[0] + ti[1] + ti[2]) * half,
                        (ti[0] - ti[1] + ti[2]) * half,
                        ti[2],
                    ];
                    for (j, &vj) in v.iter().enumerate() {
                        u[((i * 4 + j) * rows + r) * cols + s] = vj;
                    }
                }
            }
        }
    }
}

/// The geometry of one image's tiling.
#[derive(Clone, Copy)]
struct Tiles {
    /// Input channels, plane size.
    c: usize,
    h: usize,
    w: usize,
    /// Padding.
    ph: usize,
    pw: usize,
    /// Output channels, plane size.
    o: usize,
    ho: usize,
    wo: usize,
    /// Tiles down and across, and their count.
    th: usize,
    tw: usize,
    t: usize,
    /// The padded plane the 4×4 tiles are cut from: `(2·th + 2) × (2·tw + 2)`.
    hp: usize,
    wp: usize,
}

impl Tiles {
    fn new(c: usize, (h, w): (usize, usize), (ph, pw): (usize, usize), o: usize) -> Tiles {
        let (ho, wo) = (h + 2 * ph - 2, w + 2 * pw - 2);
        let (th, tw) = (ho.div_ceil(2), wo.div_ceil(2));
        Tiles {
            c,
            h,
            w,
            ph,
            pw,
            o,
            ho,
            wo,
            th,
            tw,
            t: th * tw,
            hp: 2 * th + 2,
            wp: 2 * tw + 2,
        }
    }

    /// Scratch elements one image needs: the padded plane, four transformed rows, the
    /// transformed input `V` (`[16][c][t]`) and the products `M` (`[16][o][t]`).
    fn scratch(&self) -> usize {
        self.hp * self.wp + 4 * self.wp + 16 * self.c * self.t + 16 * self.o * self.t
    }
}

/// Consecutive pieces of `s` of the given lengths, from its start.
#[inline(always)]
fn carve<T, const N: usize>(s: &mut [T], lens: [usize; N]) -> [&mut [T]; N] {
    let mut rest = s;
    std::array::from_fn(|k| {
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(lens[k]);
        rest = tail;
        piece
    })
}

/// Row `i` (elements ξ = 4i … 4i+3) of a transformed domain laid out `[16][plane]`: the
/// `len` elements at `base` of each of those four planes.
#[inline(always)]
fn domain_row<T>(v: &mut [T], i: usize, plane: usize, base: usize, len: usize) -> [&mut [T]; 4] {
    let [a, b, c, d] = quarters(&mut v[4 * i * plane..], plane);
    [
        &mut a[base..][..len],
        &mut b[base..][..len],
        &mut c[base..][..len],
        &mut d[base..][..len],
    ]
}

/// The first four consecutive `n`-element pieces of `s`.
#[inline(always)]
fn quarters<T>(s: &mut [T], n: usize) -> [&mut [T]; 4] {
    let (a, rest) = s.split_at_mut(n);
    let (b, rest) = rest.split_at_mut(n);
    let (c, rest) = rest.split_at_mut(n);
    [a, b, c, &mut rest[..n]]
}

/// `V_ξ[ci][tile] = (Bᵀ·d·B)_ξ` for every 4×4 tile `d` of every channel of one image.
///
/// The padding is never written out: each band of tiles combines its four input rows
/// (`Bᵀ·d` on whole rows) straight from the image, rows above or below it reading `zero`,
/// and the columns of the padding stay zero in `e` from the start.
fn transform_input<T: Float>(x: &[T], g: &Tiles, zero: &mut [T], e: &mut [T], v: &mut [T]) {
    let (wp, tw, t, w) = (g.wp, g.tw, g.t, g.w);
    let zero = &mut zero[..w];
    zero.fill(T::zero());
    let zero = &*zero;
    e.fill(T::zero());
    let [e0, e1, e2, e3] = quarters(e, wp);
    for ci in 0..g.c {
        let plane = &x[ci * g.h * w..][..g.h * w];
        let row = |r: usize| -> &[T] {
            match r.checked_sub(g.ph) {
                Some(ih) if ih < g.h => &plane[ih * w..][..w],
                _ => zero,
            }
        };
        for ty in 0..g.th {
            // Bᵀ·d on whole rows: the four row combinations of this band of tiles.
            let (d0, d1, d2, d3) = (
                row(2 * ty),
                row(2 * ty + 1),
                row(2 * ty + 2),
                row(2 * ty + 3),
            );
            let inner = g.pw..g.pw + w;
            let (f0, f1, f2, f3) = (
                &mut e0[inner.clone()],
                &mut e1[inner.clone()],
                &mut e2[inner.clone()],
                &mut e3[inner],
            );
            for s in 0..w {
                f0[s] = d0[s] - d2[s];
                f1[s] = d1[s] + d2[s];
                f2[s] = d2[s] - d1[s];
                f3[s] = d1[s] - d3[s];
            }
            // ·B on each tile's four columns.
            for (i, ei) in [&*e0, &*e1, &*e2, &*e3].into_iter().enumerate() {
                let [v0, v1, v2, v3] = domain_row(v, i, g.c * t, ci * t + ty * tw, tw);
                for tx in 0..tw {
                    let q = &ei[2 * tx..][..4];
                    v0[tx] = q[0] - q[2];
                    v1[tx] = q[1] + q[2];
                    v2[tx] = q[2] - q[1];
                    v3[tx] = q[1] - q[3];
                }
            }
        }
    }
}

/// `out[oi]` from the products: `Aᵀ·m·A` per tile. Whole pairs of rows are written in
/// place; a last odd row or column goes through `rows` and is clipped.
fn transform_output<T: Float>(
    m: &[T],
    g: &Tiles,
    bias: Option<&[T]>,
    rows: &mut [T],
    out: &mut [T],
) {
    let (tw, t, o) = (g.tw, g.t, g.o);
    let (b0, b1) = rows.split_at_mut(2 * tw);
    for oi in 0..o {
        let plane = &mut out[oi * g.ho * g.wo..][..g.ho * g.wo];
        for ty in 0..g.th {
            let at = |xi: usize| &m[(xi * o + oi) * t + ty * tw..][..tw];
            let mm: [&[T]; 16] = std::array::from_fn(at);
            let y = 2 * ty;
            let b = bias.map_or(T::zero(), |b| b[oi]);
            let in_place = g.wo == 2 * tw && y + 1 < g.ho;
            {
                let (r0, r1): (&mut [T], &mut [T]) = if in_place {
                    plane[y * g.wo..][..2 * g.wo].split_at_mut(g.wo)
                } else {
                    (&mut *b0, &mut *b1)
                };
                for tx in 0..tw {
                    let e = |i: usize, j: usize| mm[i * 4 + j][tx];
                    let s0: [T; 4] = std::array::from_fn(|j| e(0, j) + e(1, j) + e(2, j));
                    let s1: [T; 4] = std::array::from_fn(|j| e(1, j) - e(2, j) - e(3, j));
                    r0[2 * tx] = s0[0] + s0[1] + s0[2] + b;
                    r0[2 * tx + 1] = s0[1] - s0[2] - s0[3] + b;
                    r1[2 * tx] = s1[0] + s1[1] + s1[2] + b;
                    r1[2 * tx + 1] = s1[1] - s1[2] - s1[3] + b;
                }
            }
            if !in_place {
                plane[y * g.wo..][..g.wo].copy_from_slice(&b0[..g.wo]);
                if y + 1 < g.ho {
                    plane[(y + 1) * g.wo..][..g.wo].copy_from_slice(&b1[..g.wo]);
                }
            }
        }
    }
}

/// The 3×3, stride-1 correlation of `x` (`[n, c, h, w]`) with the transformed weights `u`
/// (`[16, o, c]`), padding `pad`, plus `bias[oi]` if given, written to `out`
/// (`[n, o, ho, wo]`). Images are spread over the threads; each image's result does not
/// depend on the thread count.
#[allow(clippy::too_many_arguments)] // the geometry of one call, spelled out
fn correlate<T: Float, S: Scratch<T>>(
    x: &[T],
    (n, c, h, w): (usize, usize, usize, usize),
    u: &[T],
    o: usize,
    pad: (usize, usize),
    bias: Option<&[T]>,
    out: &mut [T],
    scratch: &S,
) {
    let g = Tiles::new(c, (h, w), pad, o);
    debug_assert_eq!(out.len(), n * o * g.ho * g.wo);
    for_heavy_blocks(out, o * g.ho * g.wo, |b, out| {
        scratch.with(g.scratch() + 4 * g.tw, |s| image(x, b, &g, u, bias, s, out))
    });
}

/// One image `b` of [`correlate`] into `out`, in the scratch space `s`.
fn image<T: Float>(
    x: &[T],
    b: usize,
    g: &Tiles,
    u: &[T],
    bias: Option<&[T]>,
    s: &mut [T],
    out: &mut [T],
) {
    let (c, o, h, w) = (g.c, g.o, g.h, g.w);
    {
        let [padded, e, v, m, rows] = carve(
            s,
            [g.hp * g.wp, 4 * g.wp, 16 * c * g.t, 16 * o * g.t, 4 * g.tw],
        );
        transform_input(&x[b * c * h * w..][..c * h * w], g, padded, e, v);
        let row = MatLayout::row_major(g.t, false);
        for xi in 0..16 {
            gemm(
                o,
                c,
                g.t,
                T::one(),
                &u[xi * o * c..][..o * c],
                MatLayout::row_major(c, false),
                &v[xi * c * g.t..][..c * g.t],
                row,
                T::zero(),
                &mut m[xi * o * g.t..][..o * g.t],
                row,
            );
        }
        transform_output(m, g, bias, rows, out);
    }
}

/// `conv2d(x, w) + bias` into `out` (`[n, o, ho, wo]`) for a window where [`applies`]
/// holds.
pub fn forward<T: Float, S: Scratch<T>>(
    x: &[T],
    w: &[T],
    bias: Option<&[T]>,
    d: &ConvDims,
    out: &mut [T],
    scratch: &S,
) {
    scratch.with(16 * d.o * d.c, |u| {
        transform_weights(w, d.o, d.c, false, u);
        correlate(
            x,
            (d.n, d.c, d.h, d.w),
            u,
            d.o,
            d.win.padding,
            bias,
            out,
            scratch,
        )
    })
}

/// The input gradient of `conv2d(x, w)` into `dx` (`[n, c, h, w]`) for a window where
/// [`applies`] holds: the correlation of `g` (`[n, o, ho, wo]`) with the flipped kernel,
/// padded by `2 − p`.
pub fn input_grad<T: Float, S: Scratch<T>>(
    g: &[T],
    w: &[T],
    d: &ConvDims,
    dx: &mut [T],
    scratch: &S,
) {
    scratch.with(16 * d.o * d.c, |u| {
        transform_weights(w, d.o, d.c, true, u);
        correlate(
            g,
            (d.n, d.o, d.ho, d.wo),
            u,
            d.c,
            (2 - d.win.padding.0, 2 - d.win.padding.1),
            None,
            dx,
            scratch,
        )
    })
}

/// `Ĝ_ξ[oi][tile] = (A·dy·Aᵀ)_ξ` for every 2×2 tile `dy` of every channel of one image's
/// output gradient (`[o, ho, wo]`; tiles past an odd edge read zeros): the adjoint of the
/// output transform.
fn transform_grad<T: Float>(gy: &[T], t: &Tiles, pad: &mut [T], e: &mut [T], out: &mut [T]) {
    let (tw, nt, o) = (t.tw, t.t, t.o);
    let wq = 2 * tw;
    for oi in 0..o {
        let plane = &gy[oi * t.ho * t.wo..][..t.ho * t.wo];
        // Planes of whole tiles are read as they are; others through a zero-extended copy.
        let src: &[T] = if t.ho == 2 * t.th && t.wo == wq {
            plane
        } else {
            let pad = &mut pad[..2 * t.th * wq];
            pad.fill(T::zero());
            for r in 0..t.ho {
                pad[r * wq..][..t.wo].copy_from_slice(&plane[r * t.wo..][..t.wo]);
            }
            pad
        };
        let [a0, a1, a2, a3] = quarters(&mut *e, wq);
        for ty in 0..t.th {
            // A·dy on whole rows of this band, then ·Aᵀ on each tile's two columns.
            let (q0, q1) = (&src[2 * ty * wq..][..wq], &src[(2 * ty + 1) * wq..][..wq]);
            for s in 0..wq {
                a0[s] = q0[s];
                a1[s] = q0[s] + q1[s];
                a2[s] = q0[s] - q1[s];
                a3[s] = -q1[s];
            }
            for (i, ai) in [&*a0, &*a1, &*a2, &*a3].into_iter().enumerate() {
                let [v0, v1, v2, v3] = domain_row(out, i, o * nt, oi * nt + ty * tw, tw);
                for tx in 0..tw {
                    let (u, w) = (ai[2 * tx], ai[2 * tx + 1]);
                    v0[tx] = u;
                    v1[tx] = u + w;
                    v2[tx] = u - w;
                    v3[tx] = -w;
                }
            }
        }
    }
}

/// Images per partial sum of the weight gradient: fixed, so the order of the additions does
/// not depend on the thread count; four, so that a batch of 8 is already two tasks (the
/// partial sums are small: 16·o·c each).
pub(super) const WEIGHT_GRAD_RUN: usize = 4;

/// The weight gradient of `conv2d(x, w)` for a window where [`applies`] holds: the adjoint
/// of the forward algorithm. Per image, `dU_ξ += Ĝ_ξ · V_ξᵀ` (output gradient and input
/// in the transformed domain, summed over tiles); then `dw = Gᵀ·dU·G` per channel pair.
/// Runs of `WEIGHT_GRAD_RUN` (4) images accumulate in order (in parallel across runs), and
/// the runs' sums are added in order.
pub fn weight_grad<T: Float, S: Scratch<T>>(
    gy: &[T],
    x: &[T],
    d: &ConvDims,
    dw: &mut [T],
    scratch: &S,
) {
    let (size, runs) = (16 * d.o * d.c, d.n.div_ceil(WEIGHT_GRAD_RUN).max(1));
    scratch.with(runs * size, |partials| {
        for_heavy_blocks(partials, size, |r, du| {
            weight_grad_run(gy, x, d, r, du, scratch)
        });
        sum_runs(partials, d, runs, dw);
    })
}

/// The transformed weight gradient `dU` of the run of images `r`, into `du`.
fn weight_grad_run<T: Float, S: Scratch<T>>(
    gv: &[T],
    xv: &[T],
    d: &ConvDims,
    r: usize,
    du: &mut [T],
    scratch: &S,
) {
    let (n, c, h, w, o) = (d.n, d.c, d.h, d.w, d.o);
    let t = Tiles::new(c, (h, w), d.win.padding, o);
    let images = r * WEIGHT_GRAD_RUN..((r + 1) * WEIGHT_GRAD_RUN).min(n);
    if images.is_empty() {
        du.fill(T::zero());
        return;
    }
    scratch.with(t.scratch(), |s| {
        let [padded, e, v, gh] = carve(s, [t.hp * t.wp, 4 * t.wp, 16 * c * t.t, 16 * o * t.t]);
        for (i, b) in images.enumerate() {
            transform_input(&xv[b * c * h * w..][..c * h * w], &t, padded, e, v);
            transform_grad(
                &gv[b * o * t.ho * t.wo..][..o * t.ho * t.wo],
                &t,
                padded,
                e,
                gh,
            );
            for xi in 0..16 {
                gemm(
                    o,
                    t.t,
                    c,
                    T::one(),
                    &gh[xi * o * t.t..][..o * t.t],
                    MatLayout::row_major(t.t, false),
                    &v[xi * c * t.t..][..c * t.t],
                    MatLayout::row_major(t.t, true),
                    if i == 0 { T::zero() } else { T::one() },
                    &mut du[xi * o * c..][..o * c],
                    MatLayout::row_major(c, false),
                );
            }
        }
    })
}

/// `dw = Gᵀ·dU·G` per channel pair, `dU` the runs' sums of `p`, added in order.
fn sum_runs<T: Float>(p: &[T], d: &ConvDims, runs: usize, dw: &mut [T]) {
    let (o, c, size) = (d.o, d.c, 16 * d.o * d.c);
    let half = T::from_f64(0.5);
    {
        for oi in 0..o {
            for ci in 0..c {
                // The runs' sums, in order; then Gᵀ·dU·G.
                let d: [T; 16] = std::array::from_fn(|xi| {
                    let at = |r: usize| p[r * size + (xi * o + oi) * c + ci];
                    (1..runs).fold(at(0), |acc, r| acc + at(r))
                });
                let row = |i: usize| [d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]];
                let (d0, d1, d2, d3) = (row(0), row(1), row(2), row(3));
                let r: [[T; 4]; 3] = [
                    std::array::from_fn(|j| d0[j] + (d1[j] + d2[j]) * half),
                    std::array::from_fn(|j| (d1[j] - d2[j]) * half),
                    std::array::from_fn(|j| (d1[j] + d2[j]) * half + d3[j]),
                ];
                let k = &mut dw[(oi * c + ci) * 9..][..9];
                for (a, ra) in r.iter().enumerate() {
                    k[a * 3] = ra[0] + (ra[1] + ra[2]) * half;
                    k[a * 3 + 1] = (ra[1] - ra[2]) * half;
                    k[a * 3 + 2] = (ra[1] + ra[2]) * half + ra[3];
                }
            }
        }
    }
}

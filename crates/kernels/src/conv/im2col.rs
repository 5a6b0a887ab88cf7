//! im2col and col2im: the columns of a sliding window over channel planes, and their
//! adjoint. Stride 1 copies contiguous runs; the padding is handled with per-tap index
//! ranges, never by reading out of bounds.

use super::Window2d;
use crate::elementwise::for_blocks;
use crate::Float;

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
pub fn unfold_planes<T: Float>(x: &[T], hw: (usize, usize), win: Window2d, out: &mut [T]) {
    let (kh, kw) = win.kernel;
    let (ho, wo) = win.output_size(hw.0, hw.1).expect("checked when recorded");
    let plane = hw.0 * hw.1;
    for_blocks(out, kh * kw * ho * wo, |p, block| {
        unfold_plane(&x[p * plane..][..plane], hw, win, block)
    });
}

/// Folds consecutive `kh·kw·L` column blocks into planes of `out`, planes split over
/// threads.
pub fn fold_planes<T: Float>(cols: &[T], hw: (usize, usize), win: Window2d, out: &mut [T]) {
    let (kh, kw) = win.kernel;
    let (ho, wo) = win.output_size(hw.0, hw.1).expect("checked when recorded");
    let block = kh * kw * ho * wo;
    for_blocks(out, hw.0 * hw.1, |p, img| {
        fold_plane(&cols[p * block..][..block], hw, win, img)
    });
}

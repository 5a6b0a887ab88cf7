//! Normalisation to zero mean and unit variance: the core of batch and layer norm, fused.
//!
//! `x` is viewed as `(outer, kept, inner)`: every index `k` of the middle block is normalised
//! over its `outer · inner` elements `x[a, k, b]`,
//!
//! ```text
//! y = (x − μ) · r,   μ = mean(x),   r = 1 / √(var(x) + ε)   (var biased, dividing by n)
//! ```
//!
//! Batch norm over `[N, C, H, W]` is `(N, C, H·W)`; layer norm over the last dimensions is
//! `(1, rows, features)`. The backward pass recomputes μ and r from `x` and uses `y`:
//!
//! ```text
//! dx = r · (g − mean(g) − y · mean(g · y))
//! ```
//!
//! Forward: three passes over each group (sum, squared deviations, output); backward: four
//! (the two statistics, the two sums of the gradient, the output). The composite of mean,
//! var, subtract, add, rsqrt and multiply needs about twice as many, and four full-size
//! intermediates. Groups are split over the thread pool; each group is computed by one task
//! in a fixed order, so results do not depend on the thread count.
//!
//! When `inner` is 1 (batch norm over `[N, C]`), a group is a strided column: the passes
//! then run over blocks of up to 64 neighbouring columns at once, row after row (each row's
//! piece is contiguous and vectorises), with the block's statistics on the stack — one
//! task per block, so again the order of every sum is fixed.

use crate::elementwise::{Out, PARALLEL_MIN};
use crate::reduce::{lane_sum, lane_sum_of};
use crate::simd::with_avx2;
use crate::threads::parallel_for;
use crate::Float;

/// Runs `f(k)` for every group `k in 0..kept`, on the pool when the data is large.
fn for_groups(kept: usize, total: usize, f: &(dyn Fn(usize) + Sync)) {
    if total < PARALLEL_MIN || kept < 2 {
        (0..kept).for_each(f);
        return;
    }
    // Fixed pieces of consecutive groups: which thread runs a group changes nothing.
    let pieces = kept.min(64);
    parallel_for(pieces, &|p| {
        (kept * p / pieces..kept * (p + 1) / pieces).for_each(f);
    });
}

/// The segments `x[a, k, ..]` of group `k`, `inner` long each.
#[inline(always)]
fn segments<T>(
    x: &[T],
    k: usize,
    outer: usize,
    kept: usize,
    inner: usize,
) -> impl Iterator<Item = &[T]> {
    (0..outer).map(move |a| &x[(a * kept + k) * inner..][..inner])
}

/// Mean and `1/√(var + ε)` of group `k` (two passes: the mean, then squared deviations).
#[inline(always)]
fn stats<T: Float>(
    x: &[T],
    k: usize,
    outer: usize,
    kept: usize,
    inner: usize,
    eps: T,
) -> (T, T, T) {
    let n = T::from_f64((outer * inner) as f64);
    let mut s = T::zero();
    for seg in segments(x, k, outer, kept, inner) {
        s += lane_sum(seg);
    }
    let mean = s / n;
    let mut q = T::zero();
    for seg in segments(x, k, outer, kept, inner) {
        q += lane_sum_of(seg, |v| (v - mean) * (v - mean));
    }
    let var = q / n;
    (mean, var, T::one() / (var + eps).sqrt())
}

/// `Σ g` and `Σ g·y` in 32 lanes each.
#[inline(always)]
fn grad_sums<T: Float>(g: &[T], y: &[T]) -> (T, T) {
    const L: usize = 32;
    let (mut sg, mut sgy) = ([T::zero(); L], [T::zero(); L]);
    let (gc, yc) = (g.chunks_exact(L), y.chunks_exact(L));
    let (gr, yr) = (gc.remainder(), yc.remainder());
    for (gs, ys) in gc.zip(yc) {
        for l in 0..L {
            sg[l] += gs[l];
            sgy[l] += gs[l] * ys[l];
        }
    }
    let mut a: T = sg.iter().copied().sum();
    let mut b: T = sgy.iter().copied().sum();
    for (&gv, &yv) in gr.iter().zip(yr) {
        a += gv;
        b += gv * yv;
    }
    (a, b)
}

/// Columns per block of the `inner == 1` path.
const COLS: usize = 64;

/// The statistics of columns `c0..c0 + w` (`w ≤ COLS`) of the `outer × kept` matrix `x`:
/// the mean, the biased variance and `1/√(var + ε)` of each, summed row after row.
#[inline(always)]
fn column_stats<T: Float>(
    x: &[T],
    outer: usize,
    kept: usize,
    c0: usize,
    w: usize,
    eps: T,
) -> ([T; COLS], [T; COLS], [T; COLS]) {
    let n = T::from_f64(outer as f64);
    let (mut mean, mut var, mut r) = ([T::zero(); COLS], [T::zero(); COLS], [T::zero(); COLS]);
    for a in 0..outer {
        for (s, &v) in mean[..w].iter_mut().zip(&x[a * kept + c0..][..w]) {
            *s += v;
        }
    }
    for m in &mut mean[..w] {
        *m /= n;
    }
    for a in 0..outer {
        for ((q, &m), &v) in var[..w]
            .iter_mut()
            .zip(&mean[..w])
            .zip(&x[a * kept + c0..][..w])
        {
            *q += (v - m) * (v - m);
        }
    }
    for (q, ri) in var[..w].iter_mut().zip(&mut r[..w]) {
        *q /= n;
        *ri = T::one() / (*q + eps).sqrt();
    }
    (mean, var, r)
}

/// The blocks of `kept` columns, as `(first column, width)`, and a runner over them.
fn for_column_blocks(kept: usize, total: usize, f: &(dyn Fn(usize, usize) + Sync)) {
    let blocks = kept.div_ceil(COLS);
    for_groups(blocks, total, &|b| {
        let c0 = b * COLS;
        f(c0, COLS.min(kept - c0));
    });
}

/// [`normalize`] for `inner == 1`, by blocks of columns (see the module docs).
fn normalize_columns<T: Float>(
    x: &[T],
    out: Out<T>,
    outer: usize,
    kept: usize,
    eps: T,
    mean: Option<Out<T>>,
    var: Option<Out<T>>,
) {
    for_column_blocks(kept, x.len(), &|c0, w| {
        with_avx2(|| {
            let (mu, v, r) = column_stats(x, outer, kept, c0, w, eps);
            // SAFETY: the block of columns `c0..c0 + w` is written by this call only (one
            // call per block, blocks disjoint); `mean` and `var` hold `kept ≥ c0 + w` values
            // (asserted by the caller), and each row's piece `a·kept + c0 ..+ w` with
            // `a < outer` lies inside `outer·kept`, the output's length (checked).
            unsafe {
                if let Some(m) = mean {
                    m.piece(c0..c0 + w).copy_from_slice(&mu[..w]);
                }
                if let Some(s) = var {
                    s.piece(c0..c0 + w).copy_from_slice(&v[..w]);
                }
                for a in 0..outer {
                    let off = a * kept + c0;
                    let dst = out.piece(off..off + w);
                    for (((d, &xv), &m), &ri) in dst
                        .iter_mut()
                        .zip(&x[off..off + w])
                        .zip(&mu[..w])
                        .zip(&r[..w])
                    {
                        *d = (xv - m) * ri;
                    }
                }
            }
        })
    });
}

/// [`normalize_backward`] for `inner == 1`, by blocks of columns.
fn normalize_backward_columns<T: Float>(
    x: &[T],
    y: &[T],
    g: &[T],
    out: Out<T>,
    outer: usize,
    kept: usize,
    eps: T,
) {
    let n = T::from_f64(outer as f64);
    for_column_blocks(kept, x.len(), &|c0, w| {
        with_avx2(|| {
            let (_, _, r) = column_stats(x, outer, kept, c0, w, eps);
            let (mut mg, mut mgy) = ([T::zero(); COLS], [T::zero(); COLS]);
            for a in 0..outer {
                let off = a * kept + c0;
                for (((sg, sgy), &gv), &yv) in mg[..w]
                    .iter_mut()
                    .zip(&mut mgy[..w])
                    .zip(&g[off..off + w])
                    .zip(&y[off..off + w])
                {
                    *sg += gv;
                    *sgy += gv * yv;
                }
            }
            for (a, b) in mg[..w].iter_mut().zip(&mut mgy[..w]) {
                (*a, *b) = (*a / n, *b / n);
            }
            // SAFETY: the block of columns `c0..c0 + w` is written by this call only (one
            // call per block, blocks disjoint), and each row's piece `a·kept + c0 ..+ w`
            // with `a < outer` lies inside `outer·kept`, the length of `dx` (checked).
            unsafe {
                for a in 0..outer {
                    let off = a * kept + c0;
                    let dst = out.piece(off..off + w);
                    for (j, d) in dst.iter_mut().enumerate() {
                        *d = r[j] * (g[off + j] - mg[j] - y[off + j] * mgy[j]);
                    }
                }
            }
        })
    });
}

/// `y = (x − μ)/√(var + ε)` per group of `x` viewed as `(outer, kept, inner)`. When given,
/// `mean` and `var` (`kept` long each) receive each group's mean and biased variance.
///
/// A group of one element gives 0 (its variance is 0, as in PyTorch's layer norm).
///
/// # Panics
/// If the slices' lengths do not match the view.
#[allow(clippy::too_many_arguments)]
pub fn normalize<T: Float>(
    x: &[T],
    y: &mut [T],
    outer: usize,
    kept: usize,
    inner: usize,
    eps: T,
    mean: Option<&mut [T]>,
    var: Option<&mut [T]>,
) {
    // Checked: the offsets below are computed from the view, and only a view whose size
    // is the slices' keeps them inside.
    let total = outer.checked_mul(kept).and_then(|v| v.checked_mul(inner));
    let total = match total {
        Some(t) if x.len() == t && y.len() == t => t,
        _ => panic!("normalize: lengths"),
    };
    let (mean, var) = (
        mean.map(|m| {
            assert_eq!(m.len(), kept, "normalize: mean length");
            Out(m.as_mut_ptr())
        }),
        var.map(|v| {
            assert_eq!(v.len(), kept, "normalize: var length");
            Out(v.as_mut_ptr())
        }),
    );
    let out = Out(y.as_mut_ptr());
    if inner == 1 {
        return normalize_columns(x, out, outer, kept, eps, mean, var);
    }
    for_groups(kept, total, &|k| {
        with_avx2(|| {
            let (mu, v, r) = stats(x, k, outer, kept, inner, eps);
            // SAFETY: group `k < kept` is written by this call only (one call per group),
            // `mean` and `var` hold `kept` values (asserted), and every range
            // `(a·kept + k)·inner ..+ inner` with `a < outer` lies inside `total`, the
            // output's length (checked).
            unsafe {
                if let Some(m) = mean {
                    m.piece(k..k + 1)[0] = mu;
                }
                if let Some(s) = var {
                    s.piece(k..k + 1)[0] = v;
                }
                for a in 0..outer {
                    let off = (a * kept + k) * inner;
                    let dst = out.piece(off..off + inner);
                    for (d, &xv) in dst.iter_mut().zip(&x[off..off + inner]) {
                        *d = (xv - mu) * r;
                    }
                }
            }
        })
    });
}

/// The gradient of [`normalize`]: `dx = r·(g − mean(g) − y·mean(g·y))` per group, with `r`
/// recomputed from `x` and `y` the forward output.
///
/// # Panics
/// If the slices' lengths do not match the view.
#[allow(clippy::too_many_arguments)]
pub fn normalize_backward<T: Float>(
    x: &[T],
    y: &[T],
    g: &[T],
    dx: &mut [T],
    outer: usize,
    kept: usize,
    inner: usize,
    eps: T,
) {
    let total = outer.checked_mul(kept).and_then(|v| v.checked_mul(inner));
    let total = match total {
        Some(t) if x.len() == t && y.len() == t && g.len() == t && dx.len() == t => t,
        _ => panic!("normalize_backward: lengths"),
    };
    let out = Out(dx.as_mut_ptr());
    if inner == 1 {
        return normalize_backward_columns(x, y, g, out, outer, kept, eps);
    }
    let n = T::from_f64((outer * inner) as f64);
    for_groups(kept, total, &|k| {
        with_avx2(|| {
            let (_, _, r) = stats(x, k, outer, kept, inner, eps);
            let (mut sg, mut sgy) = (T::zero(), T::zero());
            for (gs, ys) in
                segments(g, k, outer, kept, inner).zip(segments(y, k, outer, kept, inner))
            {
                let (a, b) = grad_sums(gs, ys);
                sg += a;
                sgy += b;
            }
            let (mg, mgy) = (sg / n, sgy / n);
            // SAFETY: group `k < kept` is written by this call only (one call per group), and
            // every range `(a·kept + k)·inner ..+ inner` with `a < outer` lies inside
            // `total`, the length of `dx` (checked).
            unsafe {
                for a in 0..outer {
                    let off = (a * kept + k) * inner;
                    let dst = out.piece(off..off + inner);
                    for ((d, &gv), &yv) in dst
                        .iter_mut()
                        .zip(&g[off..off + inner])
                        .zip(&y[off..off + inner])
                    {
                        *d = r * (gv - mg - yv * mgy);
                    }
                }
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive formulas, in f64.
    fn naive(x: &[f64], outer: usize, kept: usize, inner: usize, eps: f64) -> Vec<f64> {
        let mut y = vec![0.0; x.len()];
        for k in 0..kept {
            let idx: Vec<usize> = (0..outer)
                .flat_map(|a| (0..inner).map(move |b| (a * kept + k) * inner + b))
                .collect();
            let n = idx.len() as f64;
            let m = idx.iter().map(|&i| x[i]).sum::<f64>() / n;
            let v = idx.iter().map(|&i| (x[i] - m).powi(2)).sum::<f64>() / n;
            for &i in &idx {
                y[i] = (x[i] - m) / (v + eps).sqrt();
            }
        }
        y
    }

    #[test]
    fn matches_the_formula_on_every_layout() {
        for (outer, kept, inner) in [
            (1, 1, 1),
            (1, 3, 5),
            (4, 3, 1),
            (2, 3, 37),
            (3, 70, 40),
            (1, 1, 100),
            (64, 128, 1),
            (5, 130, 1),
        ] {
            let x: Vec<f64> = (0..outer * kept * inner)
                .map(|i| ((i * 7919) % 101) as f64 * 0.05 - 2.0)
                .collect();
            let mut y = vec![0.0; x.len()];
            let (mut m, mut v) = (vec![0.0; kept], vec![0.0; kept]);
            normalize(
                &x,
                &mut y,
                outer,
                kept,
                inner,
                1e-5,
                Some(&mut m),
                Some(&mut v),
            );
            let want = naive(&x, outer, kept, inner, 1e-5);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{outer}x{kept}x{inner}: {a} vs {b}");
            }
            assert!(v.iter().all(|&s| s >= 0.0) && m.iter().all(|s| s.is_finite()));
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        for (outer, kept, inner) in [(8, 16, 900), (300, 200, 1)] {
            let x: Vec<f32> = (0..outer * kept * inner)
                .map(|i| (i as f32 * 0.37).sin() * 3.0)
                .collect();
            let g: Vec<f32> = (0..x.len()).map(|i| (i as f32 * 0.11).cos()).collect();
            let run = |threads| {
                crate::threads::with_num_threads(threads, || {
                    let mut y = vec![0.0f32; x.len()];
                    normalize(&x, &mut y, outer, kept, inner, 1e-5, None, None);
                    let mut dx = vec![0.0f32; x.len()];
                    normalize_backward(&x, &y, &g, &mut dx, outer, kept, inner, 1e-5);
                    (y, dx)
                })
            };
            let one = run(1);
            assert_eq!(one, run(2));
            assert_eq!(one, run(3));
        }
    }

    #[test]
    fn the_column_path_has_the_gradient_of_the_group_path() {
        // inner = 1 runs by columns; the same data transposed to (1, kept, outer) runs by
        // groups. Both must give dx = r·(g − mean(g) − y·mean(g·y)).
        let (outer, kept) = (37, 70);
        let x: Vec<f64> = (0..outer * kept)
            .map(|i| ((i * 7919) % 101) as f64 * 0.05 - 2.0)
            .collect();
        let g: Vec<f64> = (0..x.len()).map(|i| (i as f64 * 0.11).cos()).collect();
        let t = |v: &[f64]| -> Vec<f64> {
            (0..kept)
                .flat_map(|k| (0..outer).map(move |a| (a, k)))
                .map(|(a, k)| v[a * kept + k])
                .collect()
        };
        let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        normalize(&x, &mut y, outer, kept, 1, 1e-5, None, None);
        normalize_backward(&x, &y, &g, &mut dx, outer, kept, 1, 1e-5);
        let (xt, gt) = (t(&x), t(&g));
        let (mut yt, mut dxt) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        normalize(&xt, &mut yt, 1, kept, outer, 1e-5, None, None);
        normalize_backward(&xt, &yt, &gt, &mut dxt, 1, kept, outer, 1e-5);
        for (a, b) in t(&y).iter().zip(&yt).chain(t(&dx).iter().zip(&dxt)) {
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
    }
}

//! gemm against naive loops: every size class, layout, kernel and thread count.

use super::*;

fn naive(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    la: MatLayout,
    b: &[f64],
    lb: MatLayout,
) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                s += a[i * la.row_stride + p * la.col_stride]
                    * b[p * lb.row_stride + j * lb.col_stride];
            }
            c[i * n + j] = s;
        }
    }
    c
}

#[test]
fn all_small_sizes_and_transposes_match_naive() {
    for m in 0..6 {
        for k in 0..6 {
            for n in 0..6 {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a: Vec<f64> = (0..m * k).map(|v| (v as f64 * 0.37).sin()).collect();
                    let b: Vec<f64> = (0..k * n).map(|v| (v as f64 * 0.11).cos()).collect();
                    // A stored as k×m when transposed, B as n×k.
                    let la = MatLayout::row_major(if ta { m } else { k }, ta);
                    let lb = MatLayout::row_major(if tb { k } else { n }, tb);
                    let mut c = vec![f64::NAN; m * n];
                    gemm(
                        m,
                        k,
                        n,
                        1.0,
                        &a,
                        la,
                        &b,
                        lb,
                        0.0,
                        &mut c,
                        MatLayout::row_major(n, false),
                    );
                    let want = naive(m, k, n, &a, la, &b, lb);
                    for (x, y) in c.iter().zip(&want) {
                        assert!((x - y).abs() < 1e-12, "m={m} k={k} n={n} ta={ta} tb={tb}");
                    }
                }
            }
        }
    }
}

#[test]
fn beta_accumulates() {
    let a = [1.0f32, 2.0, 3.0, 4.0];
    let b = [1.0f32, 0.0, 0.0, 1.0];
    let mut c = [1.0f32; 4];
    let l = MatLayout::row_major(2, false);
    gemm(2, 2, 2, 2.0, &a, l, &b, l, 1.0, &mut c, l);
    assert_eq!(c, [3.0, 5.0, 7.0, 9.0]);
}

#[test]
fn sizes_whose_extent_overflows_are_refused() {
    // 2^33 rows 2^31 apart: (m − 1)·stride + 1 = 2^64 + 1 wraps to 1 in unchecked
    // arithmetic, small enough to pass a length check; a stride beyond isize turns
    // negative as an offset.
    let a = vec![0f32; 16];
    let mut c = vec![0f32; 16];
    let one = MatLayout::row_major(1, false);
    for (m, la) in [
        (
            (1usize << 33) + 1,
            MatLayout {
                row_stride: 1 << 31,
                col_stride: 1,
            },
        ),
        (
            2,
            MatLayout {
                row_stride: usize::MAX,
                col_stride: 1,
            },
        ),
    ] {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gemm(m, 1, 1, 1.0, &a, la, &a, one, 0.0, &mut c, one)
        }));
        assert!(r.is_err(), "{la:?} accepted");
    }
}

#[test]
#[should_panic(expected = "A is too short")]
fn short_operand_is_refused() {
    let mut c = [0.0f64; 4];
    let l = MatLayout::row_major(2, false);
    gemm(2, 2, 2, 1.0, &[1.0; 3], l, &[1.0; 4], l, 0.0, &mut c, l);
}

/// Every operand layout: plain, transposed, and padded (row stride larger than the width).
#[derive(Clone, Copy, Debug)]
enum Form {
    Plain,
    Transposed,
    Padded,
}

/// A `rows × cols` operand stored in `form`: (data, layout).
fn operand(rows: usize, cols: usize, form: Form, seed: u64) -> (Vec<f64>, MatLayout) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 2001) as f64 / 1000.0 - 1.0
    };
    match form {
        Form::Plain => (
            (0..rows * cols).map(|_| next()).collect(),
            MatLayout::row_major(cols, false),
        ),
        Form::Transposed => (
            (0..rows * cols).map(|_| next()).collect(),
            MatLayout::row_major(rows, true),
        ),
        Form::Padded => (
            (0..rows * (cols + 3)).map(|_| next()).collect(),
            MatLayout {
                row_stride: cols + 3,
                col_stride: 1,
            },
        ),
    }
}

fn reference(
    m: usize,
    k: usize,
    n: usize,
    a: &[f64],
    la: MatLayout,
    b: &[f64],
    lb: MatLayout,
) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0.0;
            for p in 0..k {
                s += a[i * la.row_stride + p * la.col_stride]
                    * b[p * lb.row_stride + j * lb.col_stride];
            }
            c[i * n + j] = s;
        }
    }
    c
}

fn check_sizes<T: Float>(kernel: MicroKernel<T>, sizes: &[usize], tol: f64) {
    let forms = [Form::Plain, Form::Transposed, Form::Padded];
    for &m in sizes {
        for &k in sizes {
            for &n in sizes {
                for (f, (fa, fb)) in forms
                    .iter()
                    .flat_map(|&x| forms.iter().map(move |&y| (x, y)))
                    .enumerate()
                {
                    let (a, la) = operand(m, k, fa, (m * 31 + k * 7 + n + f) as u64);
                    let (b, lb) = operand(k, n, fb, (m + k * 13 + n * 5 + f) as u64 + 99);
                    let want = reference(m, k, n, &a, la, &b, lb);
                    let (at, bt): (Vec<T>, Vec<T>) = (
                        a.iter().map(|&v| T::from_f64(v)).collect(),
                        b.iter().map(|&v| T::from_f64(v)).collect(),
                    );
                    // C with a padded row stride, pre-filled with NaN: β = 0 must not read it.
                    let lc = MatLayout {
                        row_stride: n + 2,
                        col_stride: 1,
                    };
                    let mut c = vec![T::nan(); m * (n + 2)];
                    gemm_with(
                        kernel,
                        m,
                        k,
                        n,
                        T::one(),
                        &at,
                        la,
                        &bt,
                        lb,
                        T::zero(),
                        &mut c,
                        lc,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let got = c[i * (n + 2) + j].as_f64();
                            let w = want[i * n + j];
                            assert!(
                                (got - w).abs()
                                    <= tol * (1.0 + w.abs()) * (k as f64).sqrt().max(1.0),
                                "{}: m={m} k={k} n={n} {fa:?}×{fb:?} at ({i},{j}): {got} vs {w}",
                                T::DTYPE
                            );
                        }
                    }
                    // β = 1 accumulates into C; α scales.
                    let mut c2: Vec<T> = vec![T::one(); m * (n + 2)];
                    gemm_with(
                        kernel,
                        m,
                        k,
                        n,
                        T::from_f64(2.0),
                        &at,
                        la,
                        &bt,
                        lb,
                        T::one(),
                        &mut c2,
                        lc,
                    );
                    for i in 0..m {
                        for j in 0..n {
                            let got = c2[i * (n + 2) + j].as_f64();
                            let w = 2.0 * want[i * n + j] + 1.0;
                            assert!(
                                (got - w).abs()
                                    <= 2.0 * tol * (1.0 + w.abs()) * (k as f64).sqrt().max(1.0),
                                "{}: β=1 m={m} k={k} n={n}",
                                T::DTYPE
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_size_to_20_in_every_layout_with_each_kernel() {
    let sizes: Vec<usize> = (0..=20).collect();
    check_sizes::<f64>(f64::micro_kernel(), &sizes, 1e-13);
    check_sizes::<f64>(f64::portable_kernel(), &sizes, 1e-13);
    check_sizes::<f32>(f32::micro_kernel(), &sizes, 1e-5);
    check_sizes::<f32>(f32::portable_kernel(), &sizes, 1e-5);
}

#[test]
fn odd_and_block_crossing_sizes() {
    // Across MC, KC and NR boundaries, with the blocked path and both threads.

    for &(m, k, n) in &[
        (300, 257, 33),
        (127, 300, 257),
        (33, 7, 300),
        (257, 127, 1),
        (1, 257, 127),
        (253, 513, 130),
    ] {
        for kernel in [f64::micro_kernel(), f64::portable_kernel()] {
            let (a, la) = operand(m, k, Form::Plain, 5);
            let (b, lb) = operand(k, n, Form::Transposed, 6);
            let want = reference(m, k, n, &a, la, &b, lb);
            let mut c = vec![0.0; m * n];
            gemm_with(
                kernel,
                m,
                k,
                n,
                1.0,
                &a,
                la,
                &b,
                lb,
                0.0,
                &mut c,
                MatLayout::row_major(n, false),
            );
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-11, "m={m} k={k} n={n}");
            }
        }
    }
}

#[test]
fn agrees_with_matrixmultiply() {
    for &(m, k, n) in &[(64, 64, 64), (128, 200, 96), (255, 513, 129)] {
        let (a, la) = operand(m, k, Form::Plain, 11);
        let (b, lb) = operand(k, n, Form::Plain, 12);
        let (a32, b32): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&v| v as f32).collect(),
            b.iter().map(|&v| v as f32).collect(),
        );
        let mut ours = vec![0f32; m * n];
        let mut theirs = vec![0f32; m * n];
        gemm(
            m,
            k,
            n,
            1.0,
            &a32,
            la,
            &b32,
            lb,
            0.0,
            &mut ours,
            MatLayout::row_major(n, false),
        );
        // SAFETY: the three buffers have exactly the extents of their layouts.
        unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a32.as_ptr(),
                k as isize,
                1,
                b32.as_ptr(),
                n as isize,
                1,
                0.0,
                theirs.as_mut_ptr(),
                n as isize,
                1,
            );
        }
        for (x, y) in ours.iter().zip(&theirs) {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{m}x{k}x{n}: {x} vs {y}"
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    // Tall (rows split between threads) and short-and-wide (columns split).
    for (m, k, n) in [(301, 700, 259), (64, 288, 784), (10, 300, 900)] {
        let (a, la) = operand(m, k, Form::Plain, 21);
        let (b, lb) = operand(k, n, Form::Plain, 22);
        let (a32, b32): (Vec<f32>, Vec<f32>) = (
            a.iter().map(|&v| v as f32).collect(),
            b.iter().map(|&v| v as f32).collect(),
        );
        let run = |threads: usize| {
            crate::threads::with_num_threads(threads, || {
                let mut c = vec![0f32; m * n];
                gemm(
                    m,
                    k,
                    n,
                    1.0,
                    &a32,
                    la,
                    &b32,
                    lb,
                    0.0,
                    &mut c,
                    MatLayout::row_major(n, false),
                );
                c
            })
        };
        let one = run(1);
        assert_eq!(one, run(2), "{m}x{k}x{n}");
        assert_eq!(one, run(3), "{m}x{k}x{n}");
        let want = naive(m, k, n, &a, la, &b, lb);
        for (x, y) in one.iter().zip(&want) {
            assert!((*x as f64 - y).abs() < 1e-3, "{m}x{k}x{n}");
        }
    }
}

//! conv2d, unfold/fold and pooling: values against the definition, gradients of both
//! orders, the tensor forms, thread-count independence, shape errors.

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

/// An empty batch through the Winograd path: empty output, zero weight and bias
/// gradients, no panic.
#[test]
fn an_empty_batch() {
    let g = crate::Graph::<f64>::new();
    let x = g.leaf(Tensor::zeros([0, 2, 5, 5]));
    let w = g.leaf(Tensor::ones([3, 2, 3, 3]));
    let b = g.leaf(Tensor::ones([3]));
    let y = x.conv2d(w, Some(b), Conv2dSpec::default().with_padding(1, 1));
    assert_eq!(y.shape().as_slice(), &[0, 3, 5, 5]);
    let grads = y.sum().backward();
    assert!(grads.wrt(w).as_slice().iter().all(|&v| v == 0.0));
    assert!(grads.wrt(b).as_slice().iter().all(|&v| v == 0.0));
    assert_eq!(grads.wrt(x).dims(), &[0, 2, 5, 5]);
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
    let (xs, ws) = (x.dims(), w.dims());
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
    let y = rand_tensor(u.dims(), -1.0, 1.0, 231);
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

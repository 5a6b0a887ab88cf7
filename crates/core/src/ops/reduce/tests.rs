//! Reductions: values, gradients of both orders, ties, zeros, axis errors, node reuse.

use super::*;
use crate::testing::{check_op, rand_tensor};
use crate::Graph;

#[test]
fn values_of_reductions() {
    let x = Tensor::<f64>::from_vec(vec![1.0, -2.0, 3.0, 4.0, 0.5, -6.0], [2, 3]);
    assert_eq!(x.sum().item(), 0.5);
    assert_eq!(x.sum_dim(0, false).to_vec(), vec![5.0, -1.5, -3.0]);
    assert_eq!(x.sum_dim(-1, true).dims(), &[2, 1]);
    assert_eq!(x.amax(1, false).to_vec(), vec![3.0, 4.0]);
    assert_eq!(x.amin([0, 1], false).item(), -6.0);
    assert_eq!(x.prod_dim(1, false).to_vec(), vec![-6.0, -12.0]);
    assert!((x.var(true).item() - 13.241666666666667).abs() < 1e-12);
    assert!((x.var(false).item() - 11.034722222222221).abs() < 1e-12);
    assert_eq!(x.norm(1.0).item(), 16.5);
    assert_eq!(x.norm(f64::INFINITY).item(), 6.0);
    assert!(
        (x.norm(3.0).item() - (1.0f64 + 8.0 + 27.0 + 64.0 + 0.125 + 216.0).powf(1.0 / 3.0)).abs()
            < 1e-12
    );
    assert_eq!(x.argmax(1, false).to_vec(), vec![2, 0]);
    assert_eq!(x.argmin(0, true).to_vec(), vec![0, 0, 1]);
    assert_eq!(x.sum_to(&[1, 3]).to_vec(), vec![5.0, -1.5, -3.0]);
    assert_eq!(x.sum_to(&[]).item(), 0.5);
    let big = Tensor::<f64>::from_vec(vec![1000.0, 1000.0], [2]);
    assert!((big.logsumexp_dim(0, false).item() - (1000.0 + 2f64.ln())).abs() < 1e-12);
    // An empty axis list reduces every axis (PyTorch's `dim=[]`).
    let e: [isize; 0] = [];
    assert_eq!(x.amax(e, false).item(), x.max().item());
    assert_eq!(x.sum_dim(e, true).dims(), &[1, 1]);
    assert_eq!(Tensor::<f64>::scalar(2.0).sum_dim(e, false).item(), 2.0);
    let g = crate::Graph::<f64>::new();
    let v = g.leaf(x.clone());
    assert_eq!(v.amin(e, false).item(), x.min().item());
    let masked = Tensor::<f64>::from_vec(vec![f64::NEG_INFINITY; 2], [2]);
    assert_eq!(masked.logsumexp_dim(0, false).item(), f64::NEG_INFINITY);
    assert!(Tensor::<f64>::zeros([0]).mean().item().is_nan());
    assert!(Tensor::<f64>::zeros([2, 0]).try_amax(1, false).is_err());
}

#[test]
fn gradients_of_every_reduction() {
    let shapes: [&[usize]; 4] = [&[], &[4], &[2, 3], &[2, 3, 2]];
    for (i, s) in shapes.iter().enumerate() {
        let x = rand_tensor(s, -2.0, 2.0, 40 + i as u64);
        let pos = rand_tensor(s, 0.3, 2.0, 50 + i as u64);
        check_op("sum", std::slice::from_ref(&x), |_, v| v[0].sum());
        check_op("mean", std::slice::from_ref(&x), |_, v| v[0].mean());
        check_op("prod", std::slice::from_ref(&x), |_, v| v[0].prod());
        check_op("logsumexp", std::slice::from_ref(&x), |_, v| {
            v[0].logsumexp()
        });
        check_op("max", std::slice::from_ref(&x), |_, v| v[0].max());
        check_op("min", std::slice::from_ref(&x), |_, v| v[0].min());
        check_op("norm2", std::slice::from_ref(&x), |_, v| v[0].norm(2.0));
        check_op("norm1", std::slice::from_ref(&pos), |_, v| v[0].norm(1.0));
        check_op("norm3", std::slice::from_ref(&x), |_, v| v[0].norm(3.0));
        check_op("norm_inf", std::slice::from_ref(&x), |_, v| {
            v[0].norm(f64::INFINITY)
        });
        if x.numel() > 1 {
            check_op("var", std::slice::from_ref(&x), |_, v| v[0].var(true));
            check_op("std", std::slice::from_ref(&x), |_, v| v[0].std(false));
        }
        if s.len() >= 2 {
            check_op("sum_dim", std::slice::from_ref(&x), |_, v| {
                v[0].sum_dim(-1, false)
            });
            check_op("mean_dim", std::slice::from_ref(&x), |_, v| {
                v[0].mean_dim([0, -1], true)
            });
            check_op("var_dim", std::slice::from_ref(&x), |_, v| {
                v[0].var_dim(1, true, false)
            });
            check_op("amax", std::slice::from_ref(&x), |_, v| v[0].amax(0, true));
            check_op("amin", std::slice::from_ref(&x), |_, v| v[0].amin(1, false));
            check_op("prod_dim", std::slice::from_ref(&x), |_, v| {
                v[0].prod_dim(0, false)
            });
            check_op("logsumexp_dim", std::slice::from_ref(&x), |_, v| {
                v[0].logsumexp_dim(-1, true)
            });
            check_op("norm_dim", std::slice::from_ref(&x), |_, v| {
                v[0].norm_dim(2.0, 1, false)
            });
            check_op("max_dim", std::slice::from_ref(&x), |_, v| {
                v[0].max_dim(1, false).0
            });
            check_op("min_dim", std::slice::from_ref(&x), |_, v| {
                v[0].min_dim(0, true).0
            });
            check_op("sum_to", std::slice::from_ref(&x), |_, v| {
                let s = v[0].shape();
                let mut target = Shape::from_slice(&s[1..]);
                target[0] = 1;
                v[0].sum_to(&target)
            });
        }
    }
}

#[test]
fn prod_gradient_with_zeros_first_and_second_order() {
    // One zero: only the zero's neighbours... the zero position gets the product of
    // the others; two zeros: everything 0.
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![2.0, 0.0, 3.0, 0.0, 0.0, 5.0], [2, 3]));
    let gx = x.prod_dim(1, false).sum().backward().wrt(x);
    assert_eq!(gx.to_vec(), vec![0.0, 6.0, 0.0, 0.0, 0.0, 0.0]);
    let x1 = Tensor::from_vec(vec![2.0, 0.0, 3.0, 1.5, -0.5, 5.0], [2, 3]);
    check_op("prod_with_zero", &[x1], |_, v| v[0].prod_dim(1, false));
    // Second order at the zero: d²/dx0 dx1 of x0·x1·x2 is x2 = 3.
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![2.0, 0.0, 3.0], [3]));
    let gx = x.prod().backward_create_graph().wrt_var(x);
    let h = gx.narrow(0, 1, 1).sum().backward().wrt(x);
    assert_eq!(h.to_vec(), vec![3.0, 0.0, 2.0]);
}

#[test]
fn ties_share_the_gradient_and_max_dim_picks_one() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![1.0, 3.0, 3.0, 0.0], [4]));
    assert_eq!(x.max().backward().wrt(x).to_vec(), vec![0.0, 0.5, 0.5, 0.0]);
    let (v, i) = x.max_dim(0, false);
    assert_eq!((v.item(), i.item()), (3.0, 1));
    assert_eq!(v.backward().wrt(x).to_vec(), vec![0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn zero_norm_has_zero_gradient() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::zeros([3]));
    assert_eq!(x.norm(2.0).backward().wrt(x).to_vec(), vec![0.0; 3]);
}

#[test]
fn axis_errors() {
    let x = Tensor::<f32>::zeros([2, 3]);
    let e = x.try_sum_dim(2, false).unwrap_err().to_string();
    assert!(
        e.contains("sum: axis 2 is out of range for a tensor of rank 2"),
        "{e}"
    );
    assert!(x.try_sum_dim([0, -2], false).is_err());
    assert!(x.try_norm_dim(0.0, 0, false).is_err());
    assert!(x.try_sum_to(&[3, 1]).is_err());
}

#[test]
fn node_reuse_in_reductions() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0, 4.0], [3]));
    // sum + mean + max of one value, and a reduction fed back into itself.
    let y = x.sum() + x.mean() + x.max();
    assert_eq!(
        y.backward().wrt(x).to_vec(),
        vec![1.0 + 1.0 / 3.0, 1.0 + 1.0 / 3.0, 1.0 + 1.0 / 3.0 + 1.0]
    );
    let mut c = x.sum_dim(0, true);
    c = c + c * 2.0;
    assert_eq!(c.sum().backward().wrt(x).to_vec(), vec![3.0; 3]);
    check_op("reuse", &[rand_tensor(&[2, 3], -1.0, 1.0, 7)], |_, v| {
        let s = v[0].sum_dim(1, true);
        (v[0] * s).var(true)
            + s.prod()
            + v[0].logsumexp_dim(0, false).sum()
            + v[0].norm(2.0) * v[0].mean()
    });
}

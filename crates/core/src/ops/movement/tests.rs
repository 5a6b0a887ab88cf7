//! Movement ops: values, gradients of both orders, node reuse.

use super::*;
use crate::testing::{check_op, rand_tensor};
use crate::Graph;

#[test]
fn values_of_movement_ops() {
    let x = Tensor::<f64>::from_fn([2, 3, 4], |i| i as f64);
    assert_eq!(x.reshape([4, -1]).dims(), &[4, 6]);
    assert!(x.try_reshape([5, -1]).is_err());
    let p = x.permute([2, 0, 1]);
    assert_eq!(p.dims(), &[4, 2, 3]);
    assert_eq!(p.get(&[3, 1, 2]), x.get(&[1, 2, 3]));
    assert_eq!(x.transpose(0, -1).get(&[3, 2, 1]), x.get(&[1, 2, 3]));
    let m = Tensor::<f64>::from_fn([4, 5], |i| i as f64);
    assert_eq!(
        m.slice(0, 1, 3, 1).slice(1, 1, 4, 1).to_vec(),
        vec![6.0, 7.0, 8.0, 11.0, 12.0, 13.0]
    );
    assert_eq!(
        m.slice(0, 0, isize::MAX, 2).select(1, 2).to_vec(),
        vec![2.0, 12.0]
    );
    assert_eq!(m.slice(1, -2, 100, 1).dims(), &[4, 2]);
    assert_eq!(m.select(1, 0).to_vec(), vec![0.0, 5.0, 10.0, 15.0]);
    let padded = Tensor::<f64>::ones([2, 2]).pad(&[(1, 0), (0, 2)], 0.5);
    assert_eq!(padded.dims(), &[3, 4]);
    assert_eq!(
        padded.to_vec(),
        vec![0.5, 0.5, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0, 0.5, 0.5]
    );
    let a = Tensor::<f64>::zeros([2, 3]);
    let b = Tensor::<f64>::ones([2, 2]);
    let c = Tensor::cat(&[&a, &b], 1);
    assert_eq!(c.dims(), &[2, 5]);
    assert_eq!(c.get(&[1, 4]), 1.0);
    assert!(Tensor::try_cat(&[&a, &b], 0).is_err());
    let s = Tensor::stack(&[&b, &b, &b], 1);
    assert_eq!(s.dims(), &[2, 3, 2]);
    let parts = m.chunk(3, 1);
    assert_eq!(
        parts.iter().map(|p| p.dims()[1]).collect::<Vec<_>>(),
        vec![2, 2, 1]
    );
    assert_eq!(m.split(&[1, 3], 0)[1].dims(), &[3, 5]);
    assert_eq!(Tensor::<f64>::zeros([1, 3, 1]).squeeze().dims(), &[3]);
    assert_eq!(Tensor::<f64>::zeros([3]).unsqueeze(-1).dims(), &[3, 1]);
    assert_eq!(x.flatten(1, -1).dims(), &[2, 12]);
    assert_eq!(
        Tensor::<f64>::from_vec(vec![1.0, 2.0], [2, 1])
            .broadcast_to(&[2, 3])
            .to_vec(),
        vec![1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    );
}

#[test]
fn gradients_of_movement_ops() {
    let x = rand_tensor(&[2, 3, 4], -1.0, 1.0, 90);
    let y = rand_tensor(&[2, 2, 4], -1.0, 1.0, 91);
    let v = rand_tensor(&[3, 1], -1.0, 1.0, 92);
    check_op("reshape", std::slice::from_ref(&x), |_, a| {
        a[0].reshape([4, -1])
    });
    check_op("permute", std::slice::from_ref(&x), |_, a| {
        a[0].permute([2, 0, 1])
    });
    check_op("transpose", std::slice::from_ref(&x), |_, a| {
        a[0].transpose(0, 2)
    });
    check_op("broadcast_to", std::slice::from_ref(&v), |_, a| {
        a[0].broadcast_to(&[2, 3, 4])
    });
    check_op("narrow", std::slice::from_ref(&x), |_, a| {
        a[0].narrow(1, 1, 2)
    });
    check_op("slice_step", std::slice::from_ref(&x), |_, a| {
        a[0].slice(2, 0, 4, 3)
    });
    check_op("select", std::slice::from_ref(&x), |_, a| a[0].select(1, 2));
    check_op("pad", std::slice::from_ref(&x), |_, a| {
        a[0].pad(&[(1, 2), (0, 1)], 0.3)
    });
    check_op("concat", &[x.clone(), y.clone()], |_, a| {
        Var::cat(&[a[0], a[1], a[0]], 1)
    });
    check_op("stack", &[y.clone(), y.clone()], |_, a| {
        Var::stack(&[a[0], a[1]], -1)
    });
    check_op("split", std::slice::from_ref(&x), |_, a| {
        let p = a[0].split(&[1, 3], 2);
        p[0] * 2.0 + p[1].sum_dim(-1, true)
    });
    check_op("chunk", std::slice::from_ref(&x), |_, a| {
        let p = a[0].chunk(2, 1);
        p[1].sum_dim(1, true) * p[0]
    });
    check_op("squeeze", std::slice::from_ref(&v), |_, a| a[0].squeeze());
    check_op("unsqueeze", std::slice::from_ref(&v), |_, a| {
        a[0].unsqueeze(0)
    });
    check_op("flatten", std::slice::from_ref(&x), |_, a| {
        a[0].flatten(0, 1)
    });
}

#[test]
fn node_reuse_in_movement() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![1.0, 2.0, 3.0], [3]));
    let y = Var::cat(&[x, x, x.narrow(0, 1, 2)], 0);
    assert_eq!(y.sum().backward().wrt(x).to_vec(), vec![2.0, 3.0, 3.0]);
}

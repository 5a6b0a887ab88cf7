//! Tensors: construction and access, copy on write, seeded random draws, casts.

use super::*;

#[test]
fn construction_and_access() {
    let t = Tensor::<f64>::from_vec((0..6).map(|v| v as f64).collect(), [2, 3]);
    assert_eq!(t.numel(), 6);
    assert_eq!(t.get(&[1, 2]), 5.0);
    assert_eq!(t.dim(-1), 3);
    assert!(t.try_get(&[2, 0]).is_err());
    assert!(Tensor::<f64>::try_from_vec(vec![1.0; 5], [2, 3]).is_err());
    assert_eq!(Tensor::<f32>::scalar(2.5).item(), 2.5);
    assert_eq!(Tensor::<f32>::scalar(2.5).dims(), &[] as &[usize]);
    assert_eq!(Tensor::<f64>::eye(2).to_vec(), vec![1.0, 0.0, 0.0, 1.0]);
    assert_eq!(
        Tensor::<f64>::arange(0.0, 1.0, 0.25).to_vec(),
        vec![0.0, 0.25, 0.5, 0.75]
    );
    assert_eq!(
        Tensor::<f64>::linspace(0.0, 1.0, 3).to_vec(),
        vec![0.0, 0.5, 1.0]
    );
}

#[test]
fn copy_on_write_keeps_clones_apart() {
    let a = Tensor::<f64>::zeros([10]);
    let mut b = a.clone();
    assert!(a.shares_storage_with(&b));
    b.as_mut_slice()[0] = 1.0;
    assert!(!a.shares_storage_with(&b));
    assert_eq!(a.as_slice()[0], 0.0);
    assert_eq!(b.as_slice()[0], 1.0);
    // Inline (tiny) tensors copy on clone.
    let s = Tensor::<f64>::scalar(1.0);
    let mut s2 = s.clone();
    s2.as_mut_slice()[0] = 3.0;
    assert_eq!(s.item(), 1.0);
}

#[test]
fn seeded_random_tensors_are_reproducible_and_in_range() {
    let mut r1 = crate::seeded_rng(7);
    let mut r2 = crate::seeded_rng(7);
    let a = Tensor::<f64>::rand_uniform([1000], -2.0, 3.0, &mut r1);
    let b = Tensor::<f64>::rand_uniform([1000], -2.0, 3.0, &mut r2);
    assert_eq!(a, b);
    assert!(a.as_slice().iter().all(|&v| (-2.0..3.0).contains(&v)));
    let n = Tensor::<f64>::rand_normal([20000], 1.0, 2.0, &mut r1);
    let mean = n.as_slice().iter().sum::<f64>() / 20000.0;
    let var = n.as_slice().iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 20000.0;
    assert!(
        (mean - 1.0).abs() < 0.05 && (var - 4.0).abs() < 0.15,
        "mean {mean} var {var}"
    );
}

#[test]
fn casting_between_float_types() {
    let a = Tensor::<f64>::from_vec(vec![0.1, 1e40], [2]);
    let b: Tensor<f32> = a.cast();
    assert_eq!(b.as_slice()[0], 0.1f32);
    assert!(b.as_slice()[1].is_infinite());
    assert_eq!(b.first_non_finite().map(|p| p.0), Some(1));
}

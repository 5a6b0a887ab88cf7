//! gradcheck itself: wrong rules of both orders are caught, detached and wrongly shaped ones reported, labels.

use super::*;
use crate::{Algebra, CustomOp, Float, Result};

/// A custom op with a deliberately wrong backward (2x instead of 3x²).
struct BadCube;
impl<T: Float> CustomOp<T> for BadCube {
    fn name(&self) -> &str {
        "bad_cube"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].powf(T::from_f64(3.0)))
    }
    fn backward<V: Algebra<T>>(&self, inputs: &[&V], _y: &V, g: &V) -> Vec<Option<V>> {
        vec![Some(g.mul(inputs[0]).scale(T::from_f64(2.0)))]
    }
}

#[test]
fn a_wrong_rule_is_reported_with_its_element() {
    let x = Tensor::from_vec(vec![0.5, 1.5, -2.0], [3]);
    let e = gradcheck(
        |g, v| g.apply(BadCube, &[v[0]]),
        &[x],
        &GradcheckConfig::default(),
    )
    .unwrap_err();
    assert_eq!(e.order, 1);
    assert_eq!(e.input, 0);
    assert_eq!(e.failures, 3);
    assert_eq!(e.index, vec![2]); // the largest error relative to tolerance: x = -2
    let msg = e.to_string();
    assert!(
        msg.starts_with("gradcheck failed (gradient) for input 0 at element [2]: analytic"),
        "{msg}"
    );
}

#[test]
fn a_right_first_order_with_a_wrong_second_order_is_caught() {
    // 3x² as the rule, but built from a value (a constant), so its own derivative is 0.
    struct ConstRule;
    impl<T: Float> CustomOp<T> for ConstRule {
        fn name(&self) -> &str {
            "const_rule"
        }
        fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
            Ok(inputs[0].powf(T::from_f64(3.0)))
        }
        fn backward<V: Algebra<T>>(&self, inputs: &[&V], _y: &V, g: &V) -> Vec<Option<V>> {
            let d = g.constant(inputs[0].value().square().mul_scalar(T::from_f64(3.0)));
            vec![Some(g.mul(&d))]
        }
    }
    let x = Tensor::from_vec(vec![0.5, 1.5], [2]);
    let cfg = GradcheckConfig::default();
    gradcheck(
        |g, v| g.apply(ConstRule, &[v[0]]),
        std::slice::from_ref(&x),
        &cfg,
    )
    .unwrap();
    let e = gradgradcheck(|g, v| g.apply(ConstRule, &[v[0]]), &[x], &cfg).unwrap_err();
    assert_eq!(e.order, 2);
    assert!(e.to_string().starts_with("gradgradcheck failed"));
}

#[test]
fn a_linear_rule_that_drops_the_upstream_gradient_from_the_tape_is_caught() {
    // y = 3x with the rule 3·g, but g taken as a constant: right values at first order,
    // and a second-order gradient with respect to x of 0 = 0 (the op is linear). Only
    // the derivative with respect to the upstream gradient sees that the rule does not
    // record how it depends on g.
    struct Triple;
    impl<T: Float> CustomOp<T> for Triple {
        fn name(&self) -> &str {
            "triple"
        }
        fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
            Ok(inputs[0].mul_scalar(T::from_f64(3.0)))
        }
        fn backward<V: Algebra<T>>(&self, _x: &[&V], _y: &V, g: &V) -> Vec<Option<V>> {
            vec![Some(g.constant(g.value().mul_scalar(T::from_f64(3.0))))]
        }
    }
    let x = Tensor::from_vec(vec![0.5, 1.5, -1.0], [3]);
    let cfg = GradcheckConfig::default();
    fn f<'g>(g: &'g Graph<f64>, v: &[Var<'g, f64>]) -> Var<'g, f64> {
        g.apply(Triple, &[v[0]])
    }
    gradcheck(f, std::slice::from_ref(&x), &cfg).unwrap();
    let e = gradgradcheck(f, &[x], &cfg).unwrap_err();
    assert_eq!(e.check, "gradient with respect to the upstream gradient");
    assert_eq!(e.input, 1);
    assert!(
        e.to_string().starts_with(
            "gradgradcheck failed (gradient with respect to the upstream gradient) for the upstream gradient at element"
        ),
        "{e}"
    );
}

#[test]
fn a_non_scalar_output_and_several_inputs() {
    let a = Tensor::from_vec(vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6], [2, 3]);
    let b = Tensor::from_vec(vec![1.0, -1.0, 0.5], [3]);
    let r = gradcheck(
        |_, v| (v[0] * v[1]).exp(),
        &[a.clone(), b.clone()],
        &GradcheckConfig::default(),
    )
    .unwrap();
    assert_eq!(r.checked, 9);
    gradgradcheck(
        |_, v| (v[0] * v[1]).exp(),
        &[a, b],
        &GradcheckConfig::default(),
    )
    .unwrap();
}

/// A custom op whose rule returns a gradient of the wrong shape.
struct WrongShape;
impl<T: Float> CustomOp<T> for WrongShape {
    fn name(&self) -> &str {
        "wrong_shape"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].clone())
    }
    fn backward<V: Algebra<T>>(&self, _x: &[&V], _y: &V, g: &V) -> Vec<Option<V>> {
        vec![Some(g.sum_to(&[]))]
    }
}

#[test]
fn a_rule_with_a_gradient_of_the_wrong_shape_is_a_failure_not_a_panic() {
    let x = Tensor::from_vec(vec![0.5, 1.5, -2.0], [3]);
    let cfg = GradcheckConfig::default();
    let r = gradcheck(
        |g, v| g.apply(WrongShape, &[v[0]]),
        std::slice::from_ref(&x),
        &cfg,
    );
    let e = r.unwrap_err();
    assert_eq!((e.order, e.check), (1, "backward"));
    let msg = e.to_string();
    assert!(
        msg.starts_with("gradcheck failed (backward): the backward pass panicked: custom op `wrong_shape`: the gradient of input 0 has shape []"),
        "{msg}"
    );
    let r = gradgradcheck(|g, v| g.apply(WrongShape, &[v[0]]), &[x], &cfg);
    let e = r.unwrap_err();
    assert_eq!((e.order, e.check), (2, "backward"));
}

/// A cube whose rule reads the input's value as a constant: right at first order,
/// with no second order.
struct DetachedCube;
impl<T: Float> CustomOp<T> for DetachedCube {
    fn name(&self) -> &str {
        "detached_cube"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        Ok(inputs[0].powf(T::from_f64(3.0)))
    }
    fn backward<V: Algebra<T>>(&self, inputs: &[&V], _y: &V, g: &V) -> Vec<Option<V>> {
        let x = inputs[0].value();
        let d = inputs[0].constant(x.square().mul_scalar(T::from_f64(3.0)));
        vec![Some(g.mul(&d))]
    }
}

#[test]
fn a_detached_rule_is_named_and_inputs_by_their_labels() {
    let x = Tensor::from_vec(vec![0.5, 1.5, -2.0], [3]);
    let cfg = GradcheckConfig::default().with_labels(["x"]);
    gradcheck(
        |g, v| g.apply(DetachedCube, &[v[0]]),
        std::slice::from_ref(&x),
        &cfg,
    )
    .unwrap();
    let e = gradgradcheck(|g, v| g.apply(DetachedCube, &[v[0]]), &[x], &cfg).unwrap_err();
    assert_eq!(e.check, "second-order gradient");
    assert_eq!(e.label.as_deref(), Some("x"));
    let msg = e.to_string();
    assert!(msg.contains("for input `x` at element"), "{msg}");
    assert!(
        msg.contains("the recorded gradient does not depend on this input"),
        "{msg}"
    );
}

#[test]
fn f32_checks_pass_right_rules_and_catch_wrong_ones() {
    let cfg = GradcheckConfig::for_f32();
    let x = Tensor::<f32>::from_vec(vec![0.5, 1.5, -2.0, 0.25, -0.7, 1.1], [2, 3]);
    let w = Tensor::<f32>::from_vec(vec![0.3, -0.2, 0.9, 0.4, -1.0, 0.6], [3, 2]);
    let inputs = [x.clone(), w];
    gradcheck(|_, v| v[0].matmul(v[1]).tanh(), &inputs, &cfg).unwrap();
    gradgradcheck(|_, v| v[0].matmul(v[1]).tanh(), &inputs, &cfg).unwrap();
    gradgradcheck(
        |_, v| v[0].softmax(1) * v[0].exp(),
        std::slice::from_ref(&x),
        &cfg,
    )
    .unwrap();
    let e = gradcheck(|g, v| g.apply(BadCube, &[v[0]]), &[x], &cfg).unwrap_err();
    assert_eq!(e.check, "gradient");
}

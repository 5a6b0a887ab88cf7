//! The unary ops: gradients of both orders, closed forms, PyTorch's kink conventions,
//! large inputs, accumulation through a reused node, f32 against f64.

use super::*;
use crate::testing::check_unary_op;
use crate::{Graph, Tensor};

fn all_ops() -> Vec<(Unary<f64>, f64, f64)> {
    // (op, low, high) of a domain that avoids kinks by at least 0.05.
    vec![
        (Unary::Neg, -2.0, 2.0),
        (Unary::Abs, 0.05, 2.0),
        (Unary::Exp, -2.0, 2.0),
        (Unary::Log, 0.1, 3.0),
        (Unary::Log1p, -0.5, 3.0),
        (Unary::Expm1, -2.0, 2.0),
        (Unary::Sqrt, 0.1, 3.0),
        (Unary::Rsqrt, 0.2, 3.0),
        (Unary::Square, -2.0, 2.0),
        (Unary::Recip, 0.2, 3.0),
        (Unary::Sin, -3.0, 3.0),
        (Unary::Cos, -3.0, 3.0),
        (Unary::Tanh, -2.5, 2.5),
        (Unary::Sigmoid, -4.0, 4.0),
        (Unary::Relu, 0.05, 2.0),
        (Unary::LeakyRelu(0.01), 0.05, 2.0),
        (Unary::Elu(1.3), 0.05, 2.0),
        (Unary::Selu, 0.05, 2.0),
        (Unary::Gelu, -3.0, 3.0),
        (Unary::GeluTanh, -3.0, 3.0),
        (Unary::Silu, -3.0, 3.0),
        (
            Unary::Softplus {
                beta: 2.0,
                threshold: 20.0,
            },
            -3.0,
            3.0,
        ),
        (
            Unary::Clamp {
                min: -0.5,
                max: 0.8,
            },
            -0.45,
            0.75,
        ),
        (Unary::Erf, -2.0, 2.0),
        (Unary::AddScalar(0.3), -2.0, 2.0),
        (Unary::MulScalar(-1.7), -2.0, 2.0),
        (Unary::DivScalar(3.0), -2.0, 2.0),
        (Unary::RsubScalar(0.3), -2.0, 2.0),
        (Unary::RdivScalar(1.5), 0.2, 2.0),
        (Unary::Powf(3.0), -2.0, 2.0),
        (Unary::Powf(0.5), 0.2, 2.0),
        (Unary::Powf(-1.5), 0.2, 2.0),
    ]
}

#[test]
fn every_unary_op_first_and_second_order() {
    for (op, lo, hi) in all_ops() {
        // Both signs of the kinked ops' domains.
        check_unary_op(op, lo, hi);
        if lo > 0.0
            && matches!(
                op,
                Unary::Abs | Unary::Relu | Unary::LeakyRelu(_) | Unary::Elu(_) | Unary::Selu
            )
        {
            check_unary_op(op, -hi, -lo);
        }
    }
}

#[test]
fn values_match_closed_forms() {
    let x = [-1.3f64, -0.2, 0.0, 0.7, 2.5];
    let t = Tensor::from_vec(x.to_vec(), [5]);
    let close = |a: &Tensor<f64>, f: &dyn Fn(f64) -> f64| {
        for (v, &xi) in a.as_slice().iter().zip(&x) {
            let want = f(xi);
            assert!(
                (v - want).abs() <= 1e-14 * want.abs().max(1.0),
                "{v} vs {want} at {xi}"
            );
        }
    };
    close(&t.relu(), &|v| v.max(0.0));
    close(&t.sigmoid(), &|v| 1.0 / (1.0 + (-v).exp()));
    close(&t.silu(), &|v| v / (1.0 + (-v).exp()));
    close(&t.selu(), &|v| {
        SELU_SCALE
            * if v > 0.0 {
                v
            } else {
                SELU_ALPHA * (v.exp() - 1.0)
            }
    });
    close(&t.softplus(), &|v| (1.0 + v.exp()).ln());
    close(&t.clamp(-0.5, 0.8), &|v| v.clamp(-0.5, 0.8));
    close(&t.leaky_relu(0.01), &|v| if v > 0.0 { v } else { 0.01 * v });
    close(&t.powf(3.0), &|v| v * v * v);
    // Softplus above the threshold is the identity; sigmoid does not overflow.
    assert_eq!(Tensor::from_vec(vec![30.0f64], [1]).softplus().item(), 30.0);
    assert_eq!(
        Tensor::from_vec(vec![-1000.0f64], [1]).sigmoid().item(),
        0.0
    );
}

#[test]
fn kink_conventions() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(vec![0.0, 0.0, 0.0, -0.5, 0.8], [5]));
    let d = |y: Var<f64>| y.sum().backward().wrt(x).to_vec();
    assert_eq!(d(x.relu())[0], 0.0);
    assert_eq!(d(x.abs())[0], 0.0);
    assert_eq!(d(x.leaky_relu(0.1))[0], 0.1);
    assert_eq!(d(x.elu(2.0))[0], 2.0);
    // clamp passes the gradient at the bounds
    let c = d(x.clamp(-0.5, 0.8));
    assert_eq!((c[3], c[4]), (1.0, 1.0));
    // x^0 has gradient 0 even at 0, where 0·0⁻¹ would be NaN
    assert_eq!(d(x.powf(0.0))[0], 0.0);
    // sign carries no gradient
    assert!(!x.sign().requires_grad());
}

#[test]
fn large_inputs_stay_finite() {
    let g = Graph::<f32>::new();
    let x = g.leaf(Tensor::from_vec(vec![100.0f32, -100.0, 500.0], [3]));
    for y in [
        x.elu(1.0),
        x.selu(),
        x.sigmoid(),
        x.silu(),
        x.softplus(),
        x.tanh(),
        x.gelu(),
    ] {
        let gx = y.sum().backward().wrt(x);
        assert!(gx.all_finite(), "{}", gx);
    }
}

#[test]
fn node_reuse_accumulates() {
    // a + a, c = c + c * 2, and one value feeding ten ops.
    let g = Graph::<f64>::new();
    let a = g.leaf(Tensor::from_vec(vec![0.5, -1.0], [2]));
    assert_eq!(
        (a.exp() + a.exp()).sum().backward().wrt(a).to_vec(),
        vec![2.0 * 0.5f64.exp(), 2.0 * (-1.0f64).exp()]
    );
    let mut c = a.tanh();
    c = c + c * 2.0;
    c += c.mul_scalar(2.0);
    let want: Vec<f64> = [0.5f64, -1.0]
        .iter()
        .map(|v| 9.0 * (1.0 - v.tanh().powi(2)))
        .collect();
    let got = c.sum().backward().wrt(a).to_vec();
    for (x, y) in got.iter().zip(&want) {
        assert!((x - y).abs() < 1e-12);
    }
    let s = a.sin();
    let mut acc = s.mul_scalar(0.0);
    for k in 0..10 {
        acc += s.mul_scalar(k as f64);
    }
    let got = acc.sum().backward().wrt(a).to_vec();
    assert!((got[0] - 45.0 * 0.5f64.cos()).abs() < 1e-12);
}

#[test]
fn f32_matches_f64() {
    for (op, lo, hi) in all_ops() {
        let x64 = Tensor::<f64>::linspace(lo, hi, 7);
        let x32: Tensor<f32> = x64.cast();
        let a = op.forward(&x64);
        let op32 = match op {
            Unary::LeakyRelu(s) => Unary::LeakyRelu(s as f32),
            Unary::Elu(s) => Unary::Elu(s as f32),
            Unary::Softplus { beta, threshold } => Unary::Softplus {
                beta: beta as f32,
                threshold: threshold as f32,
            },
            Unary::Clamp { min, max } => Unary::Clamp {
                min: min as f32,
                max: max as f32,
            },
            Unary::AddScalar(s) => Unary::AddScalar(s as f32),
            Unary::MulScalar(s) => Unary::MulScalar(s as f32),
            Unary::DivScalar(s) => Unary::DivScalar(s as f32),
            Unary::RsubScalar(s) => Unary::RsubScalar(s as f32),
            Unary::RdivScalar(s) => Unary::RdivScalar(s as f32),
            Unary::Powf(s) => Unary::Powf(s as f32),
            Unary::Neg => Unary::Neg,
            Unary::Abs => Unary::Abs,
            Unary::Sign => Unary::Sign,
            Unary::Exp => Unary::Exp,
            Unary::Log => Unary::Log,
            Unary::Log1p => Unary::Log1p,
            Unary::Expm1 => Unary::Expm1,
            Unary::Sqrt => Unary::Sqrt,
            Unary::Rsqrt => Unary::Rsqrt,
            Unary::Square => Unary::Square,
            Unary::Recip => Unary::Recip,
            Unary::Sin => Unary::Sin,
            Unary::Cos => Unary::Cos,
            Unary::Tanh => Unary::Tanh,
            Unary::Sigmoid => Unary::Sigmoid,
            Unary::Relu => Unary::Relu,
            Unary::Selu => Unary::Selu,
            Unary::Gelu => Unary::Gelu,
            Unary::GeluTanh => Unary::GeluTanh,
            Unary::Silu => Unary::Silu,
            Unary::Erf => Unary::Erf,
        };
        let b = op32.forward(&x32);
        for (p, q) in a.as_slice().iter().zip(b.as_slice()) {
            assert!(
                (p - *q as f64).abs() <= 1e-5 * p.abs().max(1.0),
                "{} {p} {q}",
                op.name()
            );
        }
    }
}

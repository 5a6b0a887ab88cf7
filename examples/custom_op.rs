//! A custom op with its own backward rule, checked by the same gradcheck as the built-ins.
//!
//! Run: `cargo run --release --example custom_op`
//!
//! The op is `logcosh(x) = ln(cosh(x))`, a smooth robust loss. Written naively it overflows
//! for |x| > 710; the op computes it stably as `|x| + ln(1 + e^{−2|x|}) − ln 2`, and its
//! gradient is `tanh(x)`. The backward rule is written once over `Algebra`, so the same rule
//! gives first-order gradients (on tensors) and second-order ones (on `Var`s): the second
//! derivative `1 − tanh²(x)` comes for free and `gradgradcheck` verifies it.

use tapegrad::prelude::*;

/// `ln(cosh(x))`, element-wise, overflow-free.
struct LogCosh;

impl<T: Float> CustomOp<T> for LogCosh {
    fn name(&self) -> &str {
        "logcosh"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
        let ln2 = T::from_f64(std::f64::consts::LN_2);
        Ok(inputs[0].map(|x| {
            let a = x.abs();
            a + (T::from_f64(-2.0) * a).exp().ln_1p() - ln2
        }))
    }

    fn backward<V: Algebra<T>>(&self, inputs: &[&V], _output: &V, grad: &V) -> Vec<Option<V>> {
        vec![Some(grad.mul(&inputs[0].tanh()))]
    }
}

fn main() {
    let g = Graph::<f64>::new();
    let x = g.leaf(Tensor::from_vec(
        vec![-800.0, -1.5, 0.0, 0.25, 3.0, 800.0],
        [6],
    ));
    let y = g.apply(LogCosh, &[x]);
    println!("logcosh(x)   = {}", y.value());
    let dx = y.sum().backward().wrt(x);
    println!("d/dx (= tanh) = {dx}");
    // The claim: no overflow at |x| = 800 (cosh(800) is beyond f64), logcosh(±800) is
    // 800 − ln 2, and the gradient is tanh everywhere.
    let ln2 = std::f64::consts::LN_2;
    let xs = x.value();
    for (i, &xi) in xs.as_slice().iter().enumerate() {
        let want = if xi.abs() < 20.0 {
            xi.cosh().ln()
        } else {
            xi.abs() - ln2
        };
        let got = y.value().get(&[i]);
        assert!(
            got.is_finite() && (got - want).abs() <= 1e-14 * want.abs().max(1.0),
            "logcosh({xi})"
        );
        assert_eq!(dx.get(&[i]), xi.tanh(), "d/dx at {xi}");
    }
    assert!((800f64).cosh().is_infinite(), "the naive form overflows");

    // The user's own test: first and second order against finite differences.
    let cfg = GradcheckConfig::default();
    let inputs = [Tensor::from_vec(vec![-2.0, -0.3, 0.4, 1.7, 5.0], [5])];
    let r1 = gradcheck(|g, v| g.apply(LogCosh, &[v[0]]), &inputs, &cfg);
    let r2 = gradgradcheck(|g, v| g.apply(LogCosh, &[v[0]]), &inputs, &cfg);
    match (&r1, &r2) {
        (Ok(a), Ok(b)) => println!(
            "gradcheck ok ({} elements, max error {:.1e}); gradgradcheck ok (max error {:.1e})",
            a.checked, a.max_abs_error, b.max_abs_error
        ),
        _ => {
            eprintln!("{r1:?}\n{r2:?}");
            std::process::exit(1);
        }
    }

    // A wrong rule is caught, with the element and both values named.
    struct Wrong;
    impl<T: Float> CustomOp<T> for Wrong {
        fn name(&self) -> &str {
            "logcosh_wrong"
        }
        fn forward(&self, inputs: &[&Tensor<T>]) -> Result<Tensor<T>> {
            LogCosh.forward(inputs)
        }
        fn backward<V: Algebra<T>>(&self, inputs: &[&V], _output: &V, grad: &V) -> Vec<Option<V>> {
            vec![Some(grad.mul(&inputs[0].sigmoid()))] // should be tanh
        }
    }
    let e = gradcheck(|g, v| g.apply(Wrong, &[v[0]]), &inputs, &cfg).unwrap_err();
    println!("a wrong rule is reported: {e}");
    assert_eq!((e.order, e.input, e.checked), (1, 0, 5));
    assert!(e.failures > 0 && e.error > e.tolerance);
}

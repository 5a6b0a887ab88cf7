//! Forward values of the unary ops against independent references: values computed by
//! `scripts/forward_values.py` with Python's `decimal` at 50 digits from series written out
//! there (no libm, no PyTorch). A gradient check cannot catch a wrong forward.
//!
//! f64 must agree to 1e-12 relative; f32 (whose exp, log, tanh and sigmoid are our own
//! vectorised approximations) to a few of its ulps, with an absolute allowance of
//! `1e-7·|x|` where the result is a product with `x` that cancels (gelu far left).

use tapegrad_core::{Graph, Tensor, Unary};

const REFERENCE: &str = include_str!("reference/forward_values.json");

fn apply<T: tapegrad_core::Float>(op: &str, x: &Tensor<T>) -> Tensor<T> {
    // Through the tape (the fused one-element paths) and directly (the vector kernels):
    // both must agree with the reference.
    let g = Graph::<T>::new();
    let v = g.leaf(x.clone());
    let via_tape = match op {
        "log1p" => v.log1p(),
        "expm1" => v.expm1(),
        "rsqrt" => v.rsqrt(),
        "recip" => v.recip(),
        "sin" => v.sin(),
        "cos" => v.cos(),
        "exp" => v.exp(),
        "log" => v.log(),
        "sqrt" => v.sqrt(),
        "tanh" => v.tanh(),
        "sigmoid" => v.sigmoid(),
        "erf" => v.erf(),
        "gelu" => v.gelu(),
        "gelu_tanh" => v.gelu_tanh(),
        "silu" => v.silu(),
        "softplus" => v.softplus(),
        other => panic!("no op {other}"),
    }
    .value();
    let unary = match op {
        "log1p" => Unary::Log1p,
        "expm1" => Unary::Expm1,
        "rsqrt" => Unary::Rsqrt,
        "recip" => Unary::Recip,
        "sin" => Unary::Sin,
        "cos" => Unary::Cos,
        "exp" => Unary::Exp,
        "log" => Unary::Log,
        "sqrt" => Unary::Sqrt,
        "tanh" => Unary::Tanh,
        "sigmoid" => Unary::Sigmoid,
        "erf" => Unary::Erf,
        "gelu" => Unary::Gelu,
        "gelu_tanh" => Unary::GeluTanh,
        "silu" => Unary::Silu,
        _ => Unary::Softplus {
            beta: T::one(),
            threshold: T::from_f64(20.0),
        },
    };
    let direct = x.unary(unary);
    assert_eq!(
        via_tape.to_vec(),
        direct.to_vec(),
        "{op}: the tape and the kernel differ"
    );
    direct
}

#[test]
fn unary_forwards_match_independent_values() {
    let doc: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
    let mut checked = 0;
    for (op, cases) in doc["ops"].as_object().unwrap() {
        let (xs, want): (Vec<f64>, Vec<f64>) = cases
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_f64().unwrap(),
                    c[1].as_str().unwrap().parse::<f64>().unwrap(),
                )
            })
            .unzip();
        // Repeated past 32 elements so that the vector kernels run, not only scalar tails.
        let reps = 40usize.div_ceil(xs.len());
        let x64: Vec<f64> = xs.iter().copied().cycle().take(xs.len() * reps).collect();
        let n = x64.len();
        let got64 = apply(op, &Tensor::from_vec(x64.clone(), [n]));
        let x32: Vec<f32> = x64.iter().map(|&v| v as f32).collect();
        let got32 = apply(op, &Tensor::from_vec(x32, [n]));
        for i in 0..n {
            let (x, w) = (x64[i], want[i % xs.len()]);
            let g = got64.get(&[i]);
            assert!(
                (g - w).abs() <= 1e-12 * w.abs(),
                "{op}({x}) in f64: {g:e}, want {w:e}"
            );
            let g = got32.get(&[i]) as f64;
            assert!(
                (g - w).abs() <= 1e-6 * w.abs() + 1e-7 * x.abs(),
                "{op}({x}) in f32: {g:e}, want {w:e}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 16 * 40, "{checked}");
}

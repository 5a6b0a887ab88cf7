//! The peer benchmark: the workloads of `shared/peers/README.md`, implemented exactly (same
//! data generator, seeds, warm-up and timing protocol, same JSON lines, same `check` values),
//! so tapegrad's figures sit beside PyTorch's, JAX's, candle's and burn's from one run:
//!
//! ```text
//! cargo build --release --example peer_bench
//! TAPEGRAD_BENCH=$PWD/target/release/examples/peer_bench \
//!   ../shared/peers/run.sh --peers torch,jax,candle,tapegrad --workloads w3 --repeat 3 > run.jsonl
//! python3 ../shared/peers/python/summarize.py run.jsonl
//! ```
//!
//! Arguments: `--threads T --workloads w1,w2,... --sizes 64,128,...`. All five workloads are
//! implemented: W1 sgemm, W2 an MLP training step, W3 per-op overhead, W4 a large
//! element-wise chain, W5 a convolution forward and backward.

use std::time::Instant;

use serde_json::{json, Map, Value};
use tapegrad::optim::{Optimizer, Sgd, SgdConfig};
use tapegrad::prelude::*;

const PEER: &str = "tapegrad";
const VERSION: &str = env!("CARGO_PKG_VERSION");

const W3_LEN: usize = 1000;
const W3_MUL: f32 = 0.999;
const W3_ADD: f32 = 0.001;
const W3_X0: f32 = 0.5;

// ---------------------------------------------------------------- deterministic data
// (bit-identical to the harness's common.py / lib.rs)

const GOLDEN: u32 = 0x9E37_79B9;

/// lowbias32 (C. Wellons).
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Element i = lo + (hi - lo)·u(seed, i), in f32 arithmetic.
fn uniform(seed: u32, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    let base = seed.wrapping_mul(GOLDEN);
    let (lo32, span) = (lo as f32, (hi - lo) as f32);
    (0..n)
        .map(|i| {
            lo32 + span
                * ((hash32((i as u32).wrapping_add(base)) >> 8) as f32 * (1.0 / 16_777_216.0))
        })
        .collect()
}

/// Class labels `hash32(i + seed·GOLDEN) mod classes`.
fn labels(seed: u32, n: usize, classes: u32) -> Vec<usize> {
    let base = seed.wrapping_mul(GOLDEN);
    (0..n)
        .map(|i| (hash32((i as u32).wrapping_add(base)) % classes) as usize)
        .collect()
}

fn sum64(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum()
}

// ---------------------------------------------------------------- timing and output

fn cpu_time_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

struct Timing {
    times: Vec<f64>,
    cpu_util: f64,
}

impl Timing {
    fn median(&self) -> f64 {
        let mut t = self.times.clone();
        t.sort_by(f64::total_cmp);
        let n = t.len();
        if n % 2 == 1 {
            t[n / 2]
        } else {
            0.5 * (t[n / 2 - 1] + t[n / 2])
        }
    }
}

/// `warmup` untimed calls, then timed calls until both `min_reps` and `min_total_s`.
fn measure(mut f: impl FnMut(), min_total_s: f64, mut min_reps: usize, warmup: usize) -> Timing {
    for _ in 0..warmup {
        let t0 = Instant::now();
        f();
        if t0.elapsed().as_secs_f64() > 1.0 {
            min_reps = min_reps.min(3);
            break;
        }
    }
    let mut times = Vec::new();
    let mut total = 0.0;
    let (c0, w0) = (cpu_time_s(), Instant::now());
    while (times.len() < min_reps || total < min_total_s) && times.len() < 100_000 {
        let t0 = Instant::now();
        f();
        let dt = t0.elapsed().as_secs_f64();
        times.push(dt);
        total += dt;
    }
    let cpu_util = (cpu_time_s() - c0) / w0.elapsed().as_secs_f64();
    Timing { times, cpu_util }
}

/// One JSON line, in the harness's field order.
fn emit(workload: &str, params: Value, threads: usize, t: &Timing, extra: &[(&str, Value)]) {
    let med = t.median();
    let mut m = Map::new();
    m.insert("peer".into(), json!(PEER));
    m.insert("workload".into(), json!(workload));
    m.insert("params".into(), params);
    m.insert("median_s".into(), json!(med));
    m.insert("threads".into(), json!(threads));
    for (k, v) in extra {
        let v = match (*k, v) {
            ("per_op_ns", Value::Number(n)) => json!(med / n.as_f64().unwrap() * 1e9),
            ("gflops", Value::Number(f)) => json!(f.as_f64().unwrap() / med / 1e9),
            _ => continue,
        };
        m.insert((*k).into(), v);
    }
    m.insert("reps".into(), json!(t.times.len()));
    m.insert(
        "min_s".into(),
        json!(t.times.iter().cloned().fold(f64::INFINITY, f64::min)),
    );
    m.insert(
        "max_s".into(),
        json!(t.times.iter().cloned().fold(0.0, f64::max)),
    );
    m.insert(
        "cpu_util".into(),
        json!((t.cpu_util * 100.0).round() / 100.0),
    );
    for (k, v) in extra {
        if *k != "per_op_ns" && *k != "gflops" {
            m.insert((*k).into(), v.clone());
        }
    }
    m.insert("version".into(), json!(VERSION));
    if let Some(r) = std::env::var("PEERS_RUN")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        m.insert("run".into(), json!(r));
    }
    println!("{}", Value::Object(m));
}

/// Every repetition took a positive, finite time.
fn assert_timed(workload: &str, t: &Timing) {
    assert!(
        !t.times.is_empty() && t.times.iter().all(|s| s.is_finite() && *s > 0.0),
        "{workload}: times {:?}",
        t.times
    );
}

// ---------------------------------------------------------------- workloads

/// W3: a chain of 1000 ops on a `[1]` tensor (5 mul, 4 add, 1 tanh per 10), sum, backward,
/// gradient fetched. The tape is reset and reused between repetitions, as a training loop
/// would; `x` is a fresh leaf each time.
fn w3(threads: usize) {
    let mut g = Graph::<f32>::with_capacity(W3_LEN + 2);
    let mut out = (0.0f32, 0.0f32);
    let t = measure(
        || {
            g.reset();
            let x = g.leaf(Tensor::from_vec(vec![W3_X0], [1]));
            let mut y = x;
            for i in 0..W3_LEN {
                y = if i % 10 == 9 {
                    y.tanh()
                } else if i % 2 == 0 {
                    y * W3_MUL
                } else {
                    y + W3_ADD
                };
            }
            let s = y.sum();
            let grads = s.backward();
            out = (s.item(), grads.wrt(x).item());
        },
        0.5,
        5,
        2,
    );
    // The result, against the chain and its derivative computed in f64 by hand.
    let (mut y, mut dy) = (W3_X0 as f64, 1.0f64);
    for i in 0..W3_LEN {
        if i % 10 == 9 {
            y = y.tanh();
            dy *= 1.0 - y * y;
        } else if i % 2 == 0 {
            y *= W3_MUL as f64;
            dy *= W3_MUL as f64;
        } else {
            y += W3_ADD as f64;
        }
    }
    assert!(
        (out.0 as f64 - y).abs() <= 1e-4 * y.abs(),
        "W3: y {} vs {y}",
        out.0
    );
    assert!(
        (out.1 as f64 - dy).abs() <= 1e-4 * dy.abs(),
        "W3: dx {} vs {dy}",
        out.1
    );
    assert_timed("W3", &t);
    emit(
        "op_overhead",
        json!({"ops": W3_LEN, "shape": [1]}),
        threads,
        &t,
        &[
            ("per_op_ns", json!(W3_LEN)),
            ("check", json!({"y": out.0, "dx": out.1})),
        ],
    );
}

/// W1: `C = A·B`, square f32, C preallocated and overwritten (the gemm kernel directly, as
/// the peers call theirs with an output argument).
fn w1(threads: usize, sizes: &[usize]) {
    use tapegrad::kernels::gemm::{gemm, MatLayout};
    for &n in sizes {
        let a = uniform(1, n * n, -1.0, 1.0);
        let b = uniform(2, n * n, -1.0, 1.0);
        let mut c = vec![0.0f32; n * n];
        let l = MatLayout::row_major(n, false);
        let t = measure(
            || gemm(n, n, n, 1.0, &a, l, &b, l, 0.0, &mut c, l),
            0.5,
            3,
            2,
        );
        // Σ C = (1ᵀA)·(B1), computed in f64 without a product.
        let col: Vec<f64> = (0..n)
            .map(|k| (0..n).map(|i| a[i * n + k] as f64).sum())
            .collect();
        let row: Vec<f64> = (0..n)
            .map(|k| b[k * n..(k + 1) * n].iter().map(|&v| v as f64).sum())
            .collect();
        let want: f64 = col.iter().zip(&row).map(|(x, y)| x * y).sum();
        let scale: f64 = col.iter().zip(&row).map(|(x, y)| (x * y).abs()).sum();
        assert!(
            (sum64(&c) - want).abs() <= 1e-4 * scale.max(1.0),
            "W1 n={n}: Σ C {} vs {want}",
            sum64(&c)
        );
        assert_timed("W1", &t);
        let flops = 2.0 * (n as f64).powi(3);
        emit(
            "sgemm",
            json!({"n": n}),
            threads,
            &t,
            &[
                ("gflops", json!(flops)),
                ("check", json!({"c_sum": sum64(&c)})),
            ],
        );
    }
}

/// W2: one training step of a 784-512-256-10 ReLU MLP, softmax cross-entropy, SGD 0.01.
fn w2(threads: usize, update_with_tape: bool) {
    use tapegrad::nn::cross_entropy;
    let (batch, sizes) = (128usize, [784usize, 512, 256, 10]);
    let x = Tensor::from_vec(uniform(10, batch * sizes[0], 0.0, 1.0), [batch, sizes[0]]);
    let y = Tensor::from_vec(labels(11, batch, 10), [batch]);
    let mut store = ParamStore::<f32>::new();
    let mut keys = Vec::new();
    for l in 0..3 {
        let (fi, fo) = (sizes[l], sizes[l + 1]);
        let bound = 1.0 / (fi as f64).sqrt();
        keys.push(store.insert(
            format!("w{l}"),
            Tensor::from_vec(uniform(12 + l as u32, fi * fo, -bound, bound), [fi, fo]),
        ));
        keys.push(store.insert(format!("b{l}"), Tensor::zeros([fo])));
    }
    let mut g = Graph::<f32>::new();
    let mut opt = Sgd::new(SgdConfig::default());
    let mut step = || -> f32 {
        g.reset();
        let p = |i: usize| g.param(&store, keys[i]);
        let h1 = (g.constant(x.clone()).matmul(p(0)) + p(1)).relu();
        let h2 = (h1.matmul(p(2)) + p(3)).relu();
        let logits = h2.matmul(p(4)) + p(5);
        let loss = cross_entropy(logits, &y, Reduction::Mean);
        let value = loss.item();
        let grads = loss.backward();
        // The tape is done with: releasing it now lets the update write the parameters in
        // place (while the tape holds them, a write would copy them first). The variant
        // `update-with-tape` measures the difference.
        if !update_with_tape {
            g.reset();
        }
        opt.step(&mut store, &grads, 0.01);
        value
    };
    let losses: Vec<f32> = (0..11).map(|_| step()).collect();
    let t = measure(
        || {
            step();
        },
        0.5,
        50,
        0,
    );
    // Ten SGD steps from ln 10 (uniform initial guesses over 10 classes) bring the loss down.
    assert!(
        (losses[0] - 10f32.ln()).abs() < 0.1,
        "W2: first loss {}",
        losses[0]
    );
    assert!(
        losses[10] < losses[0] && losses.iter().all(|l| l.is_finite()),
        "W2: {losses:?}"
    );
    assert_timed("W2", &t);
    emit(
        "mlp_train_step",
        json!({"sizes": sizes, "batch": batch}),
        threads,
        &t,
        &[
            ("gflops", json!(308_150_272.0)),
            ("check", json!({"loss0": losses[0], "loss10": losses[10]})),
        ],
    );
}

/// W4: `tanh(x·0.5 + 0.1)` on 10⁶ elements, summed, differentiated.
fn w4(threads: usize) {
    let n = 1_000_000;
    let x = Tensor::from_vec(uniform(20, n, -2.0, 2.0), [n]);
    let mut g = Graph::<f32>::new();
    let mut out = (0.0f32, Tensor::zeros([1]));
    let t = measure(
        || {
            g.reset();
            let xv = g.leaf(x.clone());
            let s = (xv * 0.5 + 0.1).tanh().sum();
            out = (s.item(), s.backward().wrt(xv));
        },
        0.5,
        10,
        2,
    );
    // Against the function and its derivative in f64.
    let (mut sy, mut sdx) = (0.0f64, 0.0f64);
    for &v in x.as_slice() {
        let t = (v as f64 * 0.5 + 0.1).tanh();
        sy += t;
        sdx += 0.5 * (1.0 - t * t);
    }
    assert!(
        (out.0 as f64 - sy).abs() <= 1e-3 * sy.abs().max(1.0),
        "W4: Σ y {} vs {sy}",
        out.0
    );
    let got = sum64(out.1.as_slice());
    assert!((got - sdx).abs() <= 1e-4 * sdx, "W4: Σ dx {got} vs {sdx}");
    assert_timed("W4", &t);
    emit(
        "elementwise_large",
        json!({"n": n}),
        threads,
        &t,
        &[(
            "check",
            json!({"sum_y": out.0, "sum_dx": sum64(out.1.as_slice())}),
        )],
    );
}

/// W5: a 3×3 convolution 32 → 64 channels on 32×28×28 images, padding 1, forward and the
/// gradients of the input, the weight and the bias.
fn w5(threads: usize) {
    let (b, cin, cout, h, w, k) = (32usize, 32usize, 64usize, 28usize, 28usize, 3usize);
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    let x = Tensor::from_vec(uniform(30, b * cin * h * w, -1.0, 1.0), [b, cin, h, w]);
    let wt = Tensor::from_vec(
        uniform(31, cout * cin * k * k, -bound, bound),
        [cout, cin, k, k],
    );
    let bias = Tensor::from_vec(uniform(32, cout, -bound, bound), [cout]);
    let spec = Conv2dSpec::default().with_padding(1, 1);
    let mut g = Graph::<f32>::new();
    let mut out = (0.0f32, Tensor::zeros([1]));
    let t = measure(
        || {
            g.reset();
            let (xv, wv, bv) = (g.leaf(x.clone()), g.leaf(wt.clone()), g.leaf(bias.clone()));
            let s = xv.conv2d(wv, Some(bv), spec).sum();
            out = (s.item(), s.backward().wrt(wv));
        },
        1.0,
        5,
        2,
    );
    // The loss is Σ conv(x) = Σ_o (Σ over windows of x)·w_o + bias: its weight gradient is
    // the sum of x over each tap's window, the same for every output channel; check one
    // tap (the centre: every pixel of every image, once per output channel).
    let centre: f64 = sum64(x.as_slice());
    let dw = out.1.as_slice();
    for o in [0, cout - 1] {
        for c in [0, cin - 1] {
            let got = dw[((o * cin + c) * k + 1) * k + 1] as f64;
            let want: f64 = (0..b)
                .map(|n| sum64(&x.as_slice()[(n * cin + c) * h * w..(n * cin + c + 1) * h * w]))
                .sum();
            assert!(
                (got - want).abs() <= 1e-3 * want.abs().max(1.0),
                "W5: dw[{o},{c},1,1] {got} vs {want}"
            );
        }
    }
    assert!(
        out.0.is_finite() && centre.is_finite(),
        "W5: loss {}",
        out.0
    );
    assert_timed("W5", &t);
    let flops = 3.0 * 2.0 * (b * cout * h * w * cin * k * k) as f64;
    emit(
        "conv2d",
        json!({"batch": b, "cin": cin, "cout": cout, "h": h, "w": w, "k": k, "pad": 1, "stride": 1}),
        threads,
        &t,
        &[
            ("gflops", json!(flops)),
            (
                "check",
                json!({"loss": out.0, "sum_dw": sum64(out.1.as_slice())}),
            ),
        ],
    );
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let mut threads = 1usize;
    let mut workloads: Vec<String> = "w1,w2,w3,w4,w5".split(',').map(String::from).collect();
    let mut sizes: Vec<usize> = vec![64, 128, 256, 512, 1024, 2048];
    let mut variant = String::new();
    let mut i = 1;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--threads" => {
                threads = v
                    .parse()
                    .unwrap_or_else(|_| panic!("--threads N, got {v:?}"))
            }
            "--workloads" => {
                workloads = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--sizes" => {
                sizes = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().expect("--sizes 64,128,..."))
                    .collect()
            }
            "--variant" => variant = v.clone(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    tapegrad::kernels::threads::set_num_threads(threads);
    for w in &workloads {
        match w.as_str() {
            "w1" => w1(threads, &sizes),
            "w2" => w2(threads, variant == "update-with-tape"),
            "w3" => w3(threads),
            "w4" => w4(threads),
            "w5" => w5(threads),
            other => panic!("peer_bench: unknown workload {other} (w1 to w5)"),
        }
    }
}

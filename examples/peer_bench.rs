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
//! Arguments: `--threads T --workloads w1,w2,... --sizes 64,128,...`. Implemented so far:
//! W3 (per-op overhead). Workloads not yet implemented are reported on stderr and skipped.

use std::time::Instant;

use serde_json::{json, Map, Value};
use tapegrad::prelude::*;

const PEER: &str = "tapegrad";
const VERSION: &str = env!("CARGO_PKG_VERSION");

const W3_LEN: usize = 1000;
const W3_MUL: f32 = 0.999;
const W3_ADD: f32 = 0.001;
const W3_X0: f32 = 0.5;

// ---------------------------------------------------------------- deterministic data
// (bit-identical to the harness's common.py / lib.rs; used by the workloads that need data)

#[allow(dead_code)]
const GOLDEN: u32 = 0x9E37_79B9;

/// lowbias32 (C. Wellons).
#[allow(dead_code)]
fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Element i = lo + (hi - lo)·u(seed, i), in f32 arithmetic.
#[allow(dead_code)]
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

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let mut threads = 1usize;
    let mut workloads: Vec<String> = "w1,w2,w3,w4,w5".split(',').map(String::from).collect();
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
            "--sizes" | "--variant" => {}
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    for w in &workloads {
        match w.as_str() {
            "w3" => w3(threads),
            other => eprintln!("peer_bench: workload {other} is not implemented yet, skipped"),
        }
    }
}

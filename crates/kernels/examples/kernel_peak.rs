//! The f32 microkernel alone on L1-resident panels: its ceiling, without packing or memory
//! effects. `cargo run --release -p tapegrad-kernels --example kernel_peak`
use std::time::Instant;
use tapegrad_kernels::gemm::GemmElem;

fn main() {
    let kc = 256;
    let a = vec![1.0f32; 6 * kc];
    let b = vec![1.0f32; 16 * kc];
    let mut c = vec![0.0f32; 6 * 16];
    let k = f32::micro_kernel();
    let reps = 200_000;
    for _ in 0..3 {
        let t = Instant::now();
        for _ in 0..reps {
            // SAFETY: the panels and the tile are exactly the kernel's sizes.
            unsafe {
                k(
                    kc,
                    1.0,
                    a.as_ptr(),
                    b.as_ptr(),
                    0.0,
                    c.as_mut_ptr(),
                    16,
                    1,
                    6,
                    16,
                )
            };
            std::hint::black_box(&mut c);
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "{:.1} GFLOP/s",
            2.0 * 6.0 * 16.0 * kc as f64 * reps as f64 / s / 1e9
        );
    }
}

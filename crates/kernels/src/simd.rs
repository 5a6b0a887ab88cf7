//! Run-time CPU feature dispatch.
//!
//! The default build targets baseline x86-64 (SSE2), so it runs anywhere. Loops that gain
//! from wider vectors run inside [`with_avx2`]: on a CPU with AVX2 and FMA the closure is
//! compiled a second time with those features enabled and that copy runs; elsewhere the
//! baseline copy does. Both copies compute the same thing: Rust never fuses a multiply and
//! an add on its own, so results are identical bit for bit whichever copy runs.

/// Whether this CPU has AVX2 and FMA (detected once).
#[inline]
pub fn avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static HAS: OnceLock<bool> = OnceLock::new();
        *HAS.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Runs `f`, compiled with AVX2 and FMA enabled when the CPU has them.
///
/// `f` is inlined into a function carrying `#[target_feature(enable = "avx2,fma")]`, so its
/// loops are vectorised 8 lanes wide (f32) instead of 4. Put the whole loop inside `f`, not
/// one iteration: the dispatch costs a branch per call.
#[inline(always)]
pub fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the features were detected on this CPU.
        return unsafe { avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

//! Every file reader against damaged and hostile files, seeded and bounded so that it runs
//! in seconds: checkpoints (`Checkpoint::from_bytes`, `load`), model weights
//! (`nn::load`, through `restore_store`) and optimizer state (`load_state`).
//!
//! Inputs: random truncations, byte and bit flips of real files; crafted safetensors headers
//! (offsets past the end, overlapping and out-of-order ranges, absurd and overflowing
//! shapes, unknown dtypes, header lengths that would be allocation bombs, malformed JSON
//! and metadata); and edits of decoded checkpoints (renamed, retyped, reshaped and removed
//! entries, invalid values). For each: no panic, no more memory asked for than the file's
//! size times a small factor (this binary counts every allocation of the thread that
//! reads), and whatever is accepted is exactly what was saved (a damaged tapegrad file is
//! always refused: its checksums cover every byte of meaning).
//!
//! The counts are printed with `--nocapture`:
//! `cargo test --release --test fuzz_readers -- --nocapture`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashMap;

use rand::{Rng, RngExt, SeedableRng};
use tapegrad::core::checkpoint::{Checkpoint, Entry, LoadOptions};
use tapegrad::optim::{Adam, AdamConfig, Optimizer};
use tapegrad::prelude::*;

struct Counting;

thread_local! {
    /// Bytes asked of the allocator by this thread since the last reset.
    static ASKED: Cell<usize> = const { Cell::new(0) };
}

fn count(size: usize) {
    let _ = ASKED.try_with(|a| a.set(a.get().saturating_add(size)));
}

// SAFETY: forwards every call to the system allocator unchanged; only counts the sizes
// (with a const-initialised thread-local, which does not allocate).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: the caller's contract is passed on as it is.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        count(new);
        // SAFETY: as above.
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f`, returning its result and the bytes this thread asked for meanwhile.
fn measured<R>(f: impl FnOnce() -> R) -> (R, usize) {
    ASKED.with(|a| a.set(0));
    let r = f();
    (r, ASKED.with(|a| a.get()))
}

/// At most this many bytes may be asked for while reading `len` bytes.
fn budget(len: usize) -> usize {
    8 * len + (64 << 10)
}

#[derive(Default, Debug)]
struct Tally {
    tried: usize,
    refused: usize,
    accepted_same: usize,
}

/// A model, trained three steps with Adam: its store, its optimizer and the checkpoint of
/// both.
fn sample() -> (ParamStore<f32>, Adam<f32>, Checkpoint) {
    let mut store = ParamStore::<f32>::new();
    let mut rng = seeded_rng(1);
    let model = Sequential::new()
        .push(Linear::new(&mut store, "0", 6, 5, Init::HeNormal, &mut rng))
        .push(BatchNorm1d::new(&mut store, "1", 5))
        .push(Relu)
        .push(Linear::new(&mut store, "3", 5, 3, Init::HeNormal, &mut rng));
    let mut opt = Adam::new(AdamConfig::default());
    for _ in 0..3 {
        let g = Graph::new();
        let x = g.constant(Tensor::rand_normal([8, 6], 0.0, 1.0, &mut rng));
        let y = model.forward(&mut Forward::train(&g, &mut store, &mut rng), x);
        let grads = cross_entropy(y, &Tensor::from_fn([8], |i| i % 3), Reduction::Mean).backward();
        drop(g);
        opt.step(&mut store, &grads, 1e-2);
    }
    let mut ck = Checkpoint::new();
    ck.add_store(&store);
    opt.save_state(&store, &mut ck, "optimizer.");
    ck.set_meta("epoch", "3");
    (store, opt, ck)
}

/// Reads `bytes` every way a user can, checking the memory asked for and what is accepted.
fn read_all_ways(bytes: &[u8], original: Option<&Checkpoint>, tally: &mut Tally) {
    tally.tried += 1;
    let (parsed, asked) = measured(|| Checkpoint::from_bytes(bytes, "fuzz.safetensors"));
    assert!(
        asked <= budget(bytes.len()),
        "asked for {asked} bytes reading {} (case {})",
        bytes.len(),
        tally.tried
    );
    let ck = match parsed {
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.safetensors: "), "{e}");
            tally.refused += 1;
            return;
        }
        Ok(ck) => ck,
    };
    if let Some(orig) = original {
        assert_eq!(
            &ck, orig,
            "a damaged file loaded with another meaning (case {})",
            tally.tried
        );
        tally.accepted_same += 1;
    } else {
        // A crafted file that parses: it must be self-consistent (re-written and re-read,
        // the same entries).
        let again = Checkpoint::from_bytes(&ck.to_bytes().unwrap(), "again").unwrap();
        assert_eq!(again, ck);
        tally.accepted_same += 1;
    }
    // And through the model and optimizer readers: no panic, whatever the outcome.
    let (mut store, _, _) = sample();
    let _ = ck.restore_store(&mut store, &LoadOptions::partial());
    let mut opt = Adam::<f32>::new(AdamConfig::default());
    let _ = opt.load_state(&store, &ck, "optimizer.");
}

#[test]
fn damaged_checkpoints_are_refused_without_panics_or_allocation_bombs() {
    let (_, _, ck) = sample();
    let bytes = ck.to_bytes().unwrap();
    let original = Checkpoint::from_bytes(&bytes, "x").unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261201);
    let mut tally = Tally::default();
    // Every truncation of the header and a sample of the data.
    let header_end = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for len in (0..header_end + 64).chain((header_end..bytes.len()).step_by(97)) {
        read_all_ways(
            &bytes[..len.min(bytes.len() - 1)],
            Some(&original),
            &mut tally,
        );
    }
    // Single and multiple byte changes and bit flips anywhere.
    for _ in 0..3000 {
        let mut b = bytes.clone();
        let n = *[1usize, 1, 2, 5].get(rng.random_range(0..4)).unwrap();
        for _ in 0..n {
            let i = rng.random_range(0..b.len());
            if rng.random_bool(0.5) {
                b[i] ^= 1 << rng.random_range(0..8);
            } else {
                b[i] = rng.random();
            }
        }
        if b != bytes {
            read_all_ways(&b, Some(&original), &mut tally);
        }
    }
    // Every single bit of the header.
    for i in 0..header_end * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        read_all_ways(&b, Some(&original), &mut tally);
    }
    eprintln!("damaged files: {tally:?}");
    assert_eq!(tally.accepted_same, 0, "a damaged file was accepted");
    assert_eq!(tally.refused, tally.tried);
}

/// A safetensors file from a header (as JSON text) and a data area.
fn crafted(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn crafted_headers_are_refused_or_read_consistently() {
    let mut tally = Tally::default();
    let d16 = [0u8; 16];
    let headers = [
        // offsets past the end
        r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,32]}}"#,
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"u":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
        // overlapping and out-of-order ranges
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
        r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
        // absurd and overflowing shapes
        r#"{"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}"#,
        r#"{"w":{"dtype":"F64","shape":[18446744073709551615],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,16]}}"#,
        // unknown and unsupported dtypes
        r#"{"w":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"BOOL","shape":[16],"data_offsets":[0,16]}}"#,
        // malformed JSON and metadata
        r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#,
        r#"{"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        r#"{"__metadata__":{"tapegrad.format":"1"},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
        r#"[1,2,3]"#,
        "",
        // valid, to show the harness accepts what it should
        r#"{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
        r#"{"w":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"c":{"dtype":"I64","shape":[1],"data_offsets":[8,16]}}"#,
    ];
    for h in headers {
        read_all_ways(&crafted(h, &d16), None, &mut tally);
    }
    // Header lengths that would be allocation bombs if believed.
    for n in [u64::MAX, 1 << 62, 1 << 40, 100_000_001, 1 << 20] {
        let mut b = n.to_le_bytes().to_vec();
        b.extend_from_slice(br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#);
        read_all_ways(&b, None, &mut tally);
    }
    // Long names and many entries: memory stays proportional to the file.
    let many: Vec<String> = (0..500)
        .map(|i| {
            format!(
                r#""{}{i}":{{"dtype":"F32","shape":[1],"data_offsets":[{},{}]}}"#,
                "n".repeat(200),
                4 * i,
                4 * i + 4
            )
        })
        .collect();
    read_all_ways(
        &crafted(&format!("{{{}}}", many.join(",")), &[0u8; 2000]),
        None,
        &mut tally,
    );
    eprintln!("crafted files: {tally:?}");
    assert_eq!(tally.tried, 21 + 5 + 1);
    // Accepted: the two valid headers, the many-entries file, and the one with a name given
    // twice (JSON's last value wins, as in safetensors' own reader and PyTorch's; what is
    // read is consistent). Everything else is refused.
    assert_eq!(tally.accepted_same, 4, "{tally:?}");
}

/// `ck` with entry edits applied as a damaged or crafted file would decode to them.
fn edit(ck: &Checkpoint, rng: &mut impl Rng) -> Checkpoint {
    let names: Vec<String> = ck.names().map(String::from).collect();
    let mut out = Checkpoint::new();
    let victim = &names[rng.random_range(0..names.len())];
    let kind = rng.random_range(0..7);
    for n in &names {
        let e = ck.get(n).unwrap().clone();
        if n != victim {
            out.insert(n.clone(), e);
            continue;
        }
        match kind {
            0 => {} // removed
            1 => {
                // one character changed
                let mut chars: Vec<char> = n.chars().collect();
                let i = rng.random_range(0..chars.len());
                chars[i] = ['z', '.', '_', 'x', '0'][rng.random_range(0..5)];
                out.insert(chars.into_iter().collect::<String>(), e);
            }
            2 => out.insert(n.clone(), retyped(e)),
            3 => out.insert(n.clone(), reshaped(e)),
            4 => out.insert(n.clone(), revalued(e, -1.0)),
            5 => out.insert(n.clone(), revalued(e, f64::NAN)),
            _ => {
                out.insert(n.clone(), e.clone());
                out.insert(format!("{n}x"), e); // an extra entry
            }
        }
    }
    for k in ["optimizer.optimizer", "epoch"] {
        if let Some(v) = ck.meta(k) {
            out.set_meta(k, v);
        }
    }
    out
}

fn retyped(e: Entry) -> Entry {
    match e {
        Entry::F32(t) => Entry::F64(t.cast()),
        Entry::F64(t) => Entry::I64(t.map(|v| v as i64)),
        Entry::I64(t) => Entry::F64(t.map(|v| v as f64)),
    }
}

fn reshaped(e: Entry) -> Entry {
    let flat = |s: &[usize]| -> Vec<usize> { vec![s.iter().product::<usize>(), 1] };
    match e {
        Entry::F32(t) => Entry::F32(t.with_shape(flat(t.dims()))),
        Entry::F64(t) => Entry::F64(t.with_shape(flat(t.dims()))),
        Entry::I64(t) => Entry::I64(t.with_shape(flat(t.dims()))),
    }
}

fn revalued(e: Entry, v: f64) -> Entry {
    match e {
        Entry::F32(t) => Entry::F32(t.map(|_| v as f32)),
        Entry::F64(t) => Entry::F64(t.map(|_| v)),
        Entry::I64(t) => Entry::I64(t.map(|_| if v.is_nan() { i64::MIN } else { v as i64 })),
    }
}

#[test]
fn edited_state_is_refused_or_loaded_exactly() {
    let (store, opt, ck) = sample();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let (mut tally, mut model_refused, mut opt_refused) = (Tally::default(), 0, 0);
    for _ in 0..2000 {
        let edited = edit(&ck, &mut rng);
        tally.tried += 1;
        // The model's weights: a strict load takes exactly the file's values or nothing.
        let mut fresh = sample().0;
        let before: Vec<Tensor<f32>> = fresh.iter().map(|(_, p)| p.value.clone()).collect();
        let model_only = LoadOptions::strict().with_prefix("");
        match edited.restore_store(
            &mut fresh,
            &LoadOptions {
                allow_unexpected: true,
                ..model_only
            },
        ) {
            Err(_) => {
                model_refused += 1;
                let after: Vec<Tensor<f32>> = fresh.iter().map(|(_, p)| p.value.clone()).collect();
                assert_eq!(before, after, "a refused load changed the store");
            }
            Ok(_) => {
                for (_, p) in fresh.iter() {
                    let want = match edited.get(&p.name).unwrap() {
                        Entry::F32(t) => t.clone(),
                        Entry::I64(t) => t.map(|v| v as f32),
                        Entry::F64(t) => t.cast(),
                    };
                    let bits = |t: &Tensor<f32>| {
                        t.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    };
                    assert_eq!(
                        (p.value.dims(), bits(&p.value)),
                        (want.dims(), bits(&want)),
                        "{}",
                        p.name
                    );
                }
            }
        }
        // The optimizer: accepted means the state written back is the file's, entry for entry.
        let mut o = Adam::<f32>::new(AdamConfig::default());
        match o.load_state(&store, &edited, "optimizer.") {
            Err(e) => {
                assert!(e.to_string().starts_with("<checkpoint>: "), "{e}");
                opt_refused += 1;
            }
            Ok(()) => {
                let mut back = Checkpoint::new();
                o.save_state(&store, &mut back, "optimizer.");
                let mine: Vec<(&str, &Entry)> = back.entries_with_prefix("optimizer.").collect();
                let theirs: Vec<(&str, &Entry)> =
                    edited.entries_with_prefix("optimizer.").collect();
                assert_eq!(mine, theirs, "optimizer state loaded with another meaning");
                tally.accepted_same += 1;
            }
        }
    }
    // The unedited state loads (the harness can accept).
    let mut o = Adam::<f32>::new(AdamConfig::default());
    o.load_state(&store, &ck, "optimizer.").unwrap();
    drop(opt);
    eprintln!("edited checkpoints: {} tried, model refused {model_refused}, optimizer refused {opt_refused}, optimizer accepted {}", tally.tried, tally.accepted_same);
    assert!(opt_refused > 0 && model_refused > 0);
}

#[test]
fn weights_files_through_nn_load() {
    // nn::load reads a file: the same checks, and a refused load leaves the store as it was.
    let (store, _, _) = sample();
    let dir = std::env::temp_dir().join(format!("tapegrad-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    tapegrad::nn::save(&store, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let mut refused = 0;
    let mut seen = HashMap::new();
    for _ in 0..300 {
        let mut b = bytes.clone();
        let i = rng.random_range(0..b.len());
        b[i] ^= 1 << rng.random_range(0..8);
        std::fs::write(&path, &b).unwrap();
        let mut fresh = sample().0;
        let before: Vec<Tensor<f32>> = fresh.iter().map(|(_, p)| p.value.clone()).collect();
        let (r, asked) = measured(|| tapegrad::nn::load(&mut fresh, &path));
        assert!(asked <= budget(b.len()), "{asked}");
        let e = r.expect_err("a damaged file loaded");
        *seen
            .entry(e.to_string().split(": ").nth(1).unwrap_or("").to_string())
            .or_insert(0) += 1;
        assert!(
            e.to_string().starts_with(&path.display().to_string()),
            "{e}"
        );
        let after: Vec<Tensor<f32>> = fresh.iter().map(|(_, p)| p.value.clone()).collect();
        assert_eq!(before, after);
        refused += 1;
    }
    assert_eq!(refused, 300);
    std::fs::remove_dir_all(&dir).unwrap();
}

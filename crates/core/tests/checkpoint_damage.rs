//! Damaged checkpoints are refused, never loaded with another meaning: every single-bit flip
//! of a file is tried, and each must be an error or load exactly what was saved.

use tapegrad_core::checkpoint::{Checkpoint, Entry, LoadOptions};
use tapegrad_core::{Error, ParamRole, ParamStore, Tensor};

fn sample() -> Checkpoint {
    let mut ck = Checkpoint::new();
    ck.insert_float(
        "fc.weight",
        &Tensor::<f32>::from_fn([3, 4], |i| i as f32 * 0.25 - 1.0),
    );
    ck.insert_float(
        "fc.bias",
        &Tensor::<f32>::from_vec(vec![0.5, -0.5, 2.0], [3]),
    );
    ck.insert(
        "optimizer.exp_avg.fc.bias",
        Entry::F64(Tensor::from_vec(vec![1e-3, 2e-3, -3e-3], [3])),
    );
    ck.insert(
        "optimizer.exp_avg_sq.fc.bias",
        Entry::F64(Tensor::from_vec(vec![1e-6, 4e-6, 9e-6], [3])),
    );
    ck.insert("optimizer.step.fc.bias", Entry::I64(Tensor::scalar(25)));
    ck.set_meta("optimizer.optimizer", "Adam");
    ck.set_meta("epoch", "3");
    ck
}

/// Checks that `e` starts with `start` and ends with `end`.
fn assert_between(e: &str, start: &str, end: &str) {
    assert!(e.starts_with(start) && e.ends_with(end), "{e}");
}

/// The message with which `Checkpoint::from_bytes` refuses `bytes`.
fn refused(bytes: &[u8], name: &str) -> String {
    Checkpoint::from_bytes(bytes, name).unwrap_err().to_string()
}

#[test]
fn every_single_bit_flip_is_refused_or_harmless() {
    let ck = sample();
    let bytes = ck.to_bytes().unwrap();
    let (mut refused, mut same) = (0, 0);
    for i in 0..bytes.len() * 8 {
        let mut b = bytes.clone();
        b[i / 8] ^= 1 << (i % 8);
        match Checkpoint::from_bytes(&b, "flip.safetensors") {
            Err(e) => {
                assert!(e.to_string().starts_with("flip.safetensors: "), "{e}");
                refused += 1;
            }
            Ok(back) => {
                // A flip that loads must change nothing of meaning; none is expected
                // (the checksums are read exactly as written).
                assert_eq!(
                    back,
                    ck,
                    "bit {i} (byte {}) loaded with another meaning",
                    i / 8
                );
                same += 1;
            }
        }
    }
    assert_eq!(refused, bytes.len() * 8, "{same} flips loaded");
    eprintln!(
        "{} bits: {refused} refused, {same} harmless",
        bytes.len() * 8
    );
}

#[test]
fn a_flipped_data_byte_names_the_file_and_the_tensor() {
    let ck = sample();
    let bytes = ck.to_bytes().unwrap();
    // The last 8 bytes are the data of the last tensor by offset; find which one it is by
    // damaging every tensor's region in turn: each error names exactly one tensor.
    let mut b = bytes.clone();
    let n = b.len();
    b[n - 3] ^= 0x10;
    let e = refused(&b, "m.safetensors");
    assert_between(
        &e,
        "m.safetensors: the file is damaged: the data of `",
        "` does not match its checksum",
    );
}

#[test]
fn files_without_the_record_load_unverified() {
    // What safetensors writes without our metadata (as PyTorch's save_file does).
    let data: Vec<u8> = [1.5f32, -2.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let bytes = safetensors::tensor::serialize([("w", view)], None).unwrap();
    let ck = Checkpoint::from_bytes(&bytes, "torch.safetensors").unwrap();
    assert_eq!(ck.float::<f32>("w").unwrap().to_vec(), vec![1.5, -2.0]);
    // A file that carries part of a record is damaged, not foreign.
    let mut meta = std::collections::HashMap::new();
    meta.insert("tapegrad.format".to_string(), "1".to_string());
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let bytes = safetensors::tensor::serialize([("w", view)], Some(meta)).unwrap();
    let e = Checkpoint::from_bytes(&bytes, "part.safetensors").unwrap_err();
    assert!(e.to_string().contains("damaged"), "{e}");
}

#[test]
fn a_malformed_entry_is_named() {
    // Data offsets that do not match the shape: safetensors' own message names no entry.
    let h = r#"{"fc.weight":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#;
    let mut b = (h.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(&[0u8; 16]);
    let e = refused(&b, "bad.safetensors");
    assert_between(
        &e,
        "bad.safetensors: not a valid safetensors file: ",
        "(entry `fc.weight`)",
    );
}

#[test]
fn reserved_metadata_keys_are_refused_on_save() {
    let mut ck = sample();
    ck.set_meta("tapegrad.manifest", "0");
    assert!(ck.to_bytes().is_err());
}

#[test]
fn shapes_no_tensor_can_have_are_errors_naming_the_entry() {
    // [0, 2^40, 2^40] passes safetensors' own check (0 elements, 0 bytes).
    let view = safetensors::tensor::TensorView::new(
        safetensors::Dtype::F32,
        vec![0, 1 << 40, 1 << 40],
        &[],
    )
    .unwrap();
    let bytes = safetensors::tensor::serialize([("w", view)], None).unwrap();
    let e = refused(&bytes, "big.safetensors");
    assert!(e.starts_with("big.safetensors: `w`: "), "{e}");
}

#[test]
fn restore_errors_name_the_file_and_list_missing_and_unexpected_names() {
    let dir = std::env::temp_dir().join(format!("tapegrad-ckd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let mut store = ParamStore::<f32>::new();
    store.insert("fc.weight", Tensor::zeros([3, 4]));
    store.insert("fc.bias", Tensor::zeros([3]));
    let mut ck = Checkpoint::new();
    ck.add_store(&store);
    ck.save(&path).unwrap();
    // A renamed layer: one name missing, one unexpected, both reported.
    let mut renamed = ParamStore::<f32>::new();
    renamed.insert("head.weight", Tensor::zeros([3, 4]));
    renamed.insert("fc.bias", Tensor::zeros([3]));
    let e = Checkpoint::load(&path)
        .unwrap()
        .restore_store(&mut renamed, &LoadOptions::strict())
        .unwrap_err()
        .to_string();
    let p = path.display().to_string();
    assert_eq!(
        e,
        format!("{p}: missing from the file: head.weight; not in the model: fc.weight")
    );
    // A counter stored as 7.5 (or -1) is not a count.
    for bad in [
        Entry::F64(Tensor::scalar(7.5)),
        Entry::I64(Tensor::scalar(-1)),
    ] {
        let mut ck = Checkpoint::new();
        ck.insert("bn.num_batches_tracked", bad);
        let mut s = ParamStore::<f32>::new();
        s.insert_with_role(
            "bn.num_batches_tracked",
            Tensor::scalar(0.0),
            ParamRole::Count,
        );
        let e = ck
            .restore_store(&mut s, &LoadOptions::strict())
            .unwrap_err();
        assert!(e.to_string().contains("is a counter but holds"), "{e}");
    }
    let mut ck = Checkpoint::new();
    ck.insert("bn.num_batches_tracked", Entry::F64(Tensor::scalar(7.0)));
    let mut s = ParamStore::<f32>::new();
    let k = s.insert_with_role(
        "bn.num_batches_tracked",
        Tensor::scalar(0.0),
        ParamRole::Count,
    );
    ck.restore_store(&mut s, &LoadOptions::strict()).unwrap();
    assert_eq!(s.value(k).item(), 7.0);
    assert!(matches!(
        Checkpoint::load(dir.join("none")),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

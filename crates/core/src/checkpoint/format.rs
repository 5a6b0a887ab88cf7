//! The bytes of a checkpoint: a safetensors file whose string metadata also holds tapegrad's
//! integrity record.
//!
//! safetensors has no checksum: a flipped bit in the data loads as another number, and a
//! flipped bit in the header can rename an entry or change its dtype and still parse. So a
//! checkpoint written by tapegrad carries, in the file's metadata:
//!
//! - `tapegrad.format`: `1`;
//! - `tapegrad.crc32c.<name>`: the CRC-32C of each tensor's bytes (8 hex digits);
//! - `tapegrad.manifest`: the CRC-32C of every entry's name, dtype and shape and of every
//!   other metadata pair (the user's and the per-tensor checksums).
//!
//! On load, a file with any `tapegrad.` key must carry a whole, valid record: the manifest
//! is checked first (a damaged header: a renamed entry, another dtype or shape, a changed
//! metadata value), then each tensor's data (a damaged value, named). A single flipped bit
//! is therefore always refused: it breaks the safetensors structure, or changes what one of
//! the checksums covers, or damages one of the record's keys and leaves the others to
//! notice. A file with no `tapegrad.` key at all (written by PyTorch's
//! `safetensors.torch.save_file`, say) is loaded without verification. The record's keys
//! are not part of the loaded checkpoint's metadata.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{ck_err, Checkpoint, Entry};
use crate::error::Result;
use crate::tensor::{Element, Tensor};

const FORMAT_KEY: &str = "tapegrad.format";
const FORMAT: &str = "1";
const CRC_PREFIX: &str = "tapegrad.crc32c.";
const MANIFEST_KEY: &str = "tapegrad.manifest";
/// Every key of the record starts with this; users' metadata may not.
pub(super) const RESERVED: &str = "tapegrad.";

/// The CRC-32C of the entries' names, dtypes and shapes and of the metadata pairs, each
/// string length-prefixed so that no two listings encode alike.
fn manifest<'a>(
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize])>,
    meta: &BTreeMap<String, String>,
) -> u32 {
    let mut buf = Vec::new();
    let mut put = |b: &[u8]| {
        buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
        buf.extend_from_slice(b);
    };
    for (name, dtype, shape) in tensors {
        put(name.as_bytes());
        put(format!("{dtype:?}").as_bytes());
        let dims: Vec<u8> = shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        put(&dims);
    }
    put(b"metadata");
    for (k, v) in meta.iter().filter(|(k, _)| k.as_str() != MANIFEST_KEY) {
        put(k.as_bytes());
        put(v.as_bytes());
    }
    crc32c::crc32c(&buf)
}

/// The little-endian bytes of a slice of numbers.
fn le_bytes<E: Copy, const N: usize>(v: &[E], to: impl Fn(E) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * N);
    for &x in v {
        out.extend_from_slice(&to(x));
    }
    out
}

impl Checkpoint {
    /// The safetensors bytes, with the integrity record in the metadata (see
    /// [`crate::checkpoint`]).
    ///
    /// # Errors
    /// [`crate::Error::Checkpoint`] if a metadata key starts with the reserved `tapegrad.`,
    /// or the serializer refuses the entries (it does not for valid tensors).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        if let Some(k) = self.metadata.keys().find(|k| k.starts_with(RESERVED)) {
            return Err(ck_err(
                &self.origin,
                format!("the metadata key `{k}` is reserved for the checksums"),
            ));
        }
        let data: Vec<(&String, Dtype, &[usize], Vec<u8>)> = self
            .entries
            .iter()
            .map(|(name, e)| {
                let (dtype, bytes) = match e {
                    Entry::F32(t) => (Dtype::F32, le_bytes(t.as_slice(), f32::to_le_bytes)),
                    Entry::F64(t) => (Dtype::F64, le_bytes(t.as_slice(), f64::to_le_bytes)),
                    Entry::I64(t) => (Dtype::I64, le_bytes(t.as_slice(), i64::to_le_bytes)),
                };
                (name, dtype, e.shape(), bytes)
            })
            .collect();
        let mut meta = self.metadata.clone();
        meta.insert(FORMAT_KEY.into(), FORMAT.into());
        for (name, _, _, bytes) in &data {
            meta.insert(
                format!("{CRC_PREFIX}{name}"),
                format!("{:08x}", crc32c::crc32c(bytes)),
            );
        }
        let m = manifest(data.iter().map(|(n, d, s, _)| (n.as_str(), *d, *s)), &meta);
        meta.insert(MANIFEST_KEY.into(), format!("{m:08x}"));
        let mut views = Vec::with_capacity(data.len());
        for (name, dtype, shape, bytes) in &data {
            let v = TensorView::new(*dtype, shape.to_vec(), bytes)
                .map_err(|e| ck_err(&self.origin, format!("`{name}`: {e}")))?;
            views.push((name.as_str(), v));
        }
        let meta: HashMap<String, String> = meta.into_iter().collect();
        safetensors::tensor::serialize(views, Some(meta))
            .map_err(|e| ck_err(&self.origin, e.to_string()))
    }

    /// Parses safetensors bytes; `origin` names them in errors (and in the errors of what
    /// is later restored from them).
    ///
    /// # Errors
    /// [`crate::Error::Checkpoint`] naming `origin` for a truncated or malformed file (with
    /// the tensor whose entry is wrong, where there is one), a damaged file (a checksum of
    /// tapegrad's record that does not match: the header, or the data of the named tensor),
    /// a shape no tensor can have, or a dtype other than f32, f64 and i64. Nothing is
    /// allocated beyond the size of the tensors the file holds.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Self> {
        let invalid = |e: safetensors::SafeTensorError| {
            let which = invalid_entry(bytes)
                .map(|n| format!(" (entry `{n}`)"))
                .unwrap_or_default();
            ck_err(origin, format!("not a valid safetensors file: {e}{which}"))
        };
        // One parse of the header (safetensors validates offsets, sizes and dtypes), then
        // views into the data area, by name.
        let (n, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
        let data_area = bytes.get(8 + n..).unwrap_or(&[]);
        let meta: BTreeMap<String, String> = header
            .metadata()
            .as_ref()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let mut views: BTreeMap<String, View<'_>> = BTreeMap::new();
        for (name, info) in header.tensors() {
            let (s, e) = info.data_offsets;
            let Some(data) = data_area.get(s..e) else {
                return Err(ck_err(
                    origin,
                    format!("`{name}`: its data lies outside the file"),
                ));
            };
            let view = View {
                dtype: info.dtype,
                shape: info.shape.as_slice(),
                data,
            };
            views.insert(name, view);
        }
        let meta = verify(origin, &views, meta)?;
        let mut ck = Checkpoint::new();
        ck.origin = origin.to_string();
        ck.metadata = meta;
        for (name, view) in views {
            let (shape, data) = (view.shape, view.data);
            let entry = match view.dtype {
                Dtype::F32 => Entry::F32(decode(origin, &name, shape, data, f32::from_le_bytes)?),
                Dtype::F64 => Entry::F64(decode(origin, &name, shape, data, f64::from_le_bytes)?),
                Dtype::I64 => Entry::I64(decode(origin, &name, shape, data, i64::from_le_bytes)?),
                other => {
                    return Err(ck_err(
                        origin,
                        format!("`{name}` has dtype {other:?}; tapegrad reads F32, F64 and I64"),
                    ))
                }
            };
            ck.entries.insert(name, entry);
        }
        Ok(ck)
    }
}

/// One tensor of a parsed file: what its header says and its bytes.
struct View<'a> {
    dtype: Dtype,
    shape: &'a [usize],
    data: &'a [u8],
}

/// Checks tapegrad's record, if the file has one, and returns the user's metadata.
fn verify(
    origin: &str,
    views: &BTreeMap<String, View<'_>>,
    mut meta: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    if !meta.keys().any(|k| k.starts_with(RESERVED)) {
        return Ok(meta);
    }
    let damaged = |what: String| ck_err(origin, format!("the file is damaged: {what}"));
    if meta.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        return Err(damaged(format!(
            "`{FORMAT_KEY}` is {:?}, expected \"{FORMAT}\"",
            meta.get(FORMAT_KEY)
        )));
    }
    // Exactly as written: 8 lowercase hex digits (so that no flipped bit of one, not even
    // a letter's case, reads as the same checksum).
    let parse = |v: &str| {
        let ok = v.len() == 8 && v.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| u32::from_str_radix(v, 16).ok()).flatten()
    };
    let Some(want) = meta.get(MANIFEST_KEY).and_then(|v| parse(v)) else {
        return Err(damaged(format!(
            "`{MANIFEST_KEY}` is missing or not a checksum"
        )));
    };
    let got = manifest(
        views.iter().map(|(n, v)| (n.as_str(), v.dtype, v.shape)),
        &meta,
    );
    if got != want {
        return Err(damaged(
            "the header's checksum does not match (a name, dtype, shape or metadata value changed)"
                .into(),
        ));
    }
    for (name, view) in views {
        let Some(want) = meta
            .get(&format!("{CRC_PREFIX}{name}"))
            .and_then(|v| parse(v))
        else {
            return Err(damaged(format!("no checksum for `{name}`")));
        };
        if crc32c::crc32c(view.data) != want {
            return Err(damaged(format!(
                "the data of `{name}` does not match its checksum"
            )));
        }
    }
    for k in meta.keys().filter(|k| k.starts_with(RESERVED)) {
        let known = k == FORMAT_KEY
            || k == MANIFEST_KEY
            || k.strip_prefix(CRC_PREFIX)
                .is_some_and(|n| views.contains_key(n));
        if !known {
            return Err(damaged(format!("unknown key `{k}`")));
        }
    }
    meta.retain(|k, _| !k.starts_with(RESERVED));
    Ok(meta)
}

/// A tensor of `shape` from little-endian bytes, refusing a shape no tensor can have.
fn decode<E: Element, const N: usize>(
    origin: &str,
    name: &str,
    shape: &[usize],
    data: &[u8],
    from: impl Fn([u8; N]) -> E,
) -> Result<Tensor<E>> {
    let bad = |m: String| ck_err(origin, format!("`{name}`: {m}"));
    match crate::shape::checked_numel(shape) {
        Some(n) if n.checked_mul(N) == Some(data.len()) => {}
        _ => {
            return Err(bad(format!(
                "the shape {shape:?} does not fit its {} bytes of data",
                data.len()
            )))
        }
    }
    Tensor::try_from_writer(shape, |out| {
        for (o, c) in out.iter_mut().zip(data.chunks_exact(N)) {
            *o = from(c.try_into().expect("chunks of N bytes"));
        }
    })
    .map_err(|e| bad(e.to_string()))
}

/// The name of the first entry of a safetensors header whose shape, dtype or offsets are
/// inconsistent (safetensors' own error does not say which); `None` if the header cannot
/// be read or every entry looks right.
fn invalid_entry(bytes: &[u8]) -> Option<String> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
    let end = 8usize.checked_add(usize::try_from(n).ok()?)?;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..end)?).ok()?;
    let data_len = bytes.len() - end;
    for (name, info) in header.as_object()? {
        if name == "__metadata__" {
            continue;
        }
        let bits = match info.get("dtype")?.as_str()? {
            "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => Some(8),
            "I16" | "U16" | "F16" | "BF16" => Some(16),
            "I32" | "U32" | "F32" => Some(32),
            "I64" | "U64" | "F64" => Some(64),
            _ => None,
        };
        let shape = sizes(info.get("shape")?.as_array()?);
        let offsets = sizes(info.get("data_offsets")?.as_array()?);
        let size = shape
            .and_then(|s| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d)))
            .zip(bits)
            .and_then(|(n, b)| n.checked_mul(b))
            .map(|b| b / 8);
        let fits = match (offsets.as_deref(), size) {
            (Some(&[s, e]), Some(size)) => s <= e && e <= data_len && e - s == size,
            _ => false,
        };
        if !fits {
            return Some(name.clone());
        }
    }
    None
}

/// A JSON array of whole numbers as sizes (`None` if one is not a `usize`).
fn sizes(values: &[serde_json::Value]) -> Option<Vec<usize>> {
    values
        .iter()
        .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
        .collect()
}

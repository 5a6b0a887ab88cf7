//! Checkpoints: named tensors and string metadata in one safetensors file.
//!
//! A [`Checkpoint`] holds f32, f64 and i64 tensors by name (PyTorch `state_dict` names, so
//! files move between tapegrad and PyTorch in both directions) and a string map of
//! metadata (step counters, hyperparameters). Parameters and buffers of a [`ParamStore`] go
//! in with [`Checkpoint::add_store`] and come back with [`Checkpoint::restore_store`], which
//! checks names, shapes and dtypes; optimizers add their state under their own prefix.
//!
//! Saving is atomic ([`write_atomic`]): the bytes go to a temporary file in the same
//! directory, are flushed to disk, and the file is renamed over the target. A crash leaves
//! the old file or the new one, never half of one. Every tensor's bytes and the whole header
//! are covered by CRC-32C checksums stored in the file's metadata ([`format`](mod@format) says how), so
//! a damaged file is refused, naming the tensor whose data changed. Loading never panics on
//! a bad file: a truncated, corrupt, damaged or mismatched file is an [`Error::Checkpoint`]
//! that names the file, the entry and what is wrong.

mod atomic;
pub mod format;

use std::collections::BTreeMap;
use std::path::Path;

pub use atomic::write_atomic;

use crate::error::{Error, Result};
use crate::params::{ParamRole, ParamStore};
use crate::tensor::Tensor;
use crate::Float;

/// One stored tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// 32-bit floats.
    F32(Tensor<f32>),
    /// 64-bit floats.
    F64(Tensor<f64>),
    /// 64-bit integers (counters such as `num_batches_tracked`).
    I64(Tensor<i64>),
}

impl Entry {
    /// The entry of a float tensor, in its own precision.
    pub fn from_float<T: Float>(t: &Tensor<T>) -> Entry {
        if T::DTYPE == "f32" {
            Entry::F32(t.cast())
        } else {
            Entry::F64(t.cast())
        }
    }

    /// The dtype's name (`"f32"`, `"f64"`, `"i64"`).
    pub fn dtype(&self) -> &'static str {
        match self {
            Entry::F32(_) => "f32",
            Entry::F64(_) => "f64",
            Entry::I64(_) => "i64",
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Entry::F32(t) => t.dims(),
            Entry::F64(t) => t.dims(),
            Entry::I64(t) => t.dims(),
        }
    }

    /// The first value that is not a count (a whole number ≥ 0, below 2⁵³ so that it is
    /// exact as a float), if any.
    pub fn first_non_count(&self) -> Option<String> {
        let limit = (1u64 << 53) as f64;
        match self {
            Entry::I64(t) => t
                .as_slice()
                .iter()
                .find(|&&v| !(0..1i64 << 53).contains(&v))
                .map(|v| v.to_string()),
            Entry::F32(t) => t
                .as_slice()
                .iter()
                .map(|&v| v as f64)
                .find(|v| !(v.fract() == 0.0 && (0.0..limit).contains(v)))
                .map(|v| v.to_string()),
            Entry::F64(t) => t
                .as_slice()
                .iter()
                .find(|v| !(v.fract() == 0.0 && (0.0..limit).contains(*v)))
                .map(|v| v.to_string()),
        }
    }

    /// The values as floats of type `T`: exact when the dtype is `T`'s; across float
    /// precisions only with `cast`; integers converted exactly up to 2⁵³.
    fn to_float<T: Float>(&self, cast: bool) -> Option<Tensor<T>> {
        match self {
            Entry::F32(t) if T::DTYPE == "f32" || cast => Some(t.cast()),
            Entry::F64(t) if T::DTYPE == "f64" || cast => Some(t.cast()),
            Entry::I64(t) => Some(t.map(|v| T::from_f64(v as f64))),
            _ => None,
        }
    }
}

/// What to accept when restoring a store from a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Leave store entries that the file lacks as they are (a partial load, e.g. the lower
    /// layers of a pretrained model). Off: a missing name is an error.
    pub allow_missing: bool,
    /// Ignore file entries that the store lacks. Off: an unexpected name is an error.
    pub allow_unexpected: bool,
    /// Convert between f32 and f64. Off: a float dtype other than the store's is an error.
    pub allow_dtype_cast: bool,
    /// Restore only store names starting with this prefix (e.g. `"encoder."`).
    pub only_prefix: Option<String>,
}

impl LoadOptions {
    /// Everything must match: no missing, no unexpected names, same dtypes.
    pub fn strict() -> Self {
        LoadOptions::default()
    }
    /// A partial load: missing and unexpected names are allowed (and reported).
    pub fn partial() -> Self {
        LoadOptions {
            allow_missing: true,
            allow_unexpected: true,
            ..Default::default()
        }
    }
}

crate::setters! { LoadOptions {
    /// With f32 ↔ f64 conversion allowed.
    with_dtype_cast() => allow_dtype_cast = true;
    /// Restores only store names with this prefix.
    with_prefix(prefix: impl Into<String>) => only_prefix = Some(prefix.into());
}}

/// What [`Checkpoint::restore_store`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Store names that were set from the file.
    pub loaded: Vec<String>,
    /// Store names the file lacks (left unchanged).
    pub missing: Vec<String>,
    /// File names the store lacks (ignored).
    pub unexpected: Vec<String>,
}

/// Named tensors and metadata, saved to and loaded from safetensors files.
///
/// ```
/// use tapegrad_core::checkpoint::{Checkpoint, LoadOptions};
/// use tapegrad_core::{ParamStore, Tensor};
/// let mut store = ParamStore::<f32>::new();
/// let w = store.insert("fc.weight", Tensor::from_vec(vec![1.0, 2.0], [1, 2]));
/// let dir = std::env::temp_dir().join(format!("tapegrad-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("model.safetensors");
/// let mut ck = Checkpoint::new();
/// ck.add_store(&store);
/// ck.save(&path).unwrap();
///
/// let mut fresh = ParamStore::<f32>::new();
/// let w2 = fresh.insert("fc.weight", Tensor::zeros([1, 2]));
/// Checkpoint::load(&path).unwrap().restore_store(&mut fresh, &LoadOptions::strict()).unwrap();
/// assert_eq!(fresh.value(w2), store.value(w));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Checkpoint {
    entries: BTreeMap<String, Entry>,
    metadata: BTreeMap<String, String>,
    /// Where the entries came from (the file's path), for errors.
    origin: String,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint {
            entries: BTreeMap::new(),
            metadata: BTreeMap::new(),
            origin: "<checkpoint>".into(),
        }
    }
}

impl PartialEq for Checkpoint {
    /// Equal entries and metadata (wherever each was read from).
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.metadata == other.metadata
    }
}

fn ck_err(path: &str, message: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_string(),
        message: message.into(),
    }
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) an entry.
    pub fn insert(&mut self, name: impl Into<String>, entry: Entry) {
        self.entries.insert(name.into(), entry);
    }

    /// Adds (or replaces) a float tensor in its own precision.
    pub fn insert_float<T: Float>(&mut self, name: impl Into<String>, t: &Tensor<T>) {
        self.insert(name, Entry::from_float(t));
    }

    /// The entry named `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// The float tensor named `name`, in `T`'s precision.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the name is absent or the dtype is another float type.
    pub fn float<T: Float>(&self, name: &str) -> Result<Tensor<T>> {
        let e = self
            .get(name)
            .ok_or_else(|| self.error(format!("no entry named `{name}`")))?;
        e.to_float(false).ok_or_else(|| {
            self.error(format!(
                "`{name}` holds {} values, expected {}",
                e.dtype(),
                T::DTYPE
            ))
        })
    }

    /// Where the entries were read from (the path given to [`Checkpoint::load`], the
    /// origin given to [`Checkpoint::from_bytes`]; `<checkpoint>` for one built in memory).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// An [`Error::Checkpoint`] naming this checkpoint's origin: for the code that restores
    /// state from it (optimizers, schedules, loaders).
    pub fn error(&self, message: impl Into<String>) -> Error {
        ck_err(&self.origin, message)
    }

    /// The entries whose names start with `prefix`, sorted by name.
    pub fn entries_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        self.entries
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.as_str(), e))
    }

    /// Names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sets a metadata string. Keys starting with `tapegrad.` are reserved for the
    /// checksums ([`Checkpoint::to_bytes`] refuses them).
    pub fn set_meta(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }

    /// A metadata string.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Every parameter and buffer of `store` under its name (counters as i64).
    pub fn add_store<T: Float>(&mut self, store: &ParamStore<T>) {
        for (_, p) in store.iter() {
            let e = if p.role == ParamRole::Count {
                Entry::I64(p.value.map(|v| v.as_f64().round() as i64))
            } else {
                Entry::from_float(&p.value)
            };
            self.insert(p.name.clone(), e);
        }
    }

    /// Sets `store`'s parameters and buffers from the entries of the same names.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] (and nothing in the store changes) for a store name the file
    /// lacks (unless `allow_missing`), a file name the store lacks (unless
    /// `allow_unexpected`), a shape that differs, or a dtype that differs (unless
    /// `allow_dtype_cast`; counters load from i64 or floats).
    pub fn restore_store<T: Float>(
        &self,
        store: &mut ParamStore<T>,
        opts: &LoadOptions,
    ) -> Result<LoadReport> {
        let path = self.origin.as_str();
        let in_scope = |name: &str| {
            opts.only_prefix
                .as_deref()
                .is_none_or(|p| name.starts_with(p))
        };
        let mut report = LoadReport::default();
        let mut updates = Vec::new();
        for (key, p) in store.iter() {
            if !in_scope(&p.name) {
                continue;
            }
            let Some(e) = self.entries.get(&p.name) else {
                report.missing.push(p.name.clone());
                continue;
            };
            if e.shape() != p.value.dims() {
                return Err(ck_err(
                    path,
                    format!(
                        "`{}` has shape {:?} in the file but {:?} in the model",
                        p.name,
                        e.shape(),
                        p.value.dims()
                    ),
                ));
            }
            let value = match (p.role, e) {
                (ParamRole::Count, e) => {
                    if let Some(bad) = e.first_non_count() {
                        return Err(ck_err(
                            path,
                            format!("`{}` is a counter but holds {bad}", p.name),
                        ));
                    }
                    e.to_float(true)
                }
                (_, Entry::I64(_)) => None,
                (_, e) => e.to_float(opts.allow_dtype_cast),
            };
            let Some(value) = value else {
                return Err(ck_err(
                    path,
                    format!(
                        "`{}` holds {} values, the model expects {}",
                        p.name,
                        e.dtype(),
                        T::DTYPE
                    ),
                ));
            };
            updates.push((key, value));
            report.loaded.push(p.name.clone());
        }
        for name in self.entries.keys() {
            if in_scope(name) && store.key(name).is_none() {
                report.unexpected.push(name.clone());
            }
        }
        let mut problems = vec![];
        if !report.missing.is_empty() && !opts.allow_missing {
            problems.push(format!(
                "missing from the file: {}",
                report.missing.join(", ")
            ));
        }
        if !report.unexpected.is_empty() && !opts.allow_unexpected {
            problems.push(format!(
                "not in the model: {}",
                report.unexpected.join(", ")
            ));
        }
        if !problems.is_empty() {
            return Err(ck_err(path, problems.join("; ")));
        }
        for (key, value) in updates {
            *store.value_mut(key) = value;
        }
        Ok(report)
    }

    /// Writes the checkpoint to `path` atomically: a temporary file in the same directory,
    /// flushed to disk, then renamed over `path`.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory is missing or not writable; the target is then
    /// untouched and no temporary file is left behind.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes)
    }

    /// Reads a checkpoint.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Checkpoint`] if it is not a valid
    /// safetensors file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("tapegrad-ck-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn store() -> ParamStore<f64> {
        let mut s = ParamStore::new();
        s.insert_with_role(
            "fc.weight",
            Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]),
            ParamRole::Weight,
        );
        s.insert_with_role(
            "fc.bias",
            Tensor::from_vec(vec![0.5, -0.5], [2]),
            ParamRole::Bias,
        );
        s.insert_with_role(
            "bn.num_batches_tracked",
            Tensor::scalar(3.0),
            ParamRole::Count,
        );
        s
    }

    #[test]
    fn round_trip_through_a_file_keeps_values_dtypes_and_metadata() {
        let dir = tmpdir("rt");
        let path = dir.join("m.safetensors");
        let mut ck = Checkpoint::new();
        ck.add_store(&store());
        ck.set_meta("step", "25");
        ck.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, ck);
        assert_eq!(
            back.get("bn.num_batches_tracked"),
            Some(&Entry::I64(Tensor::scalar(3)))
        );
        assert_eq!(back.meta("step"), Some("25"));
        let mut fresh = store();
        *fresh.value_mut(fresh.key("fc.bias").unwrap()) = Tensor::zeros([2]);
        let r = back
            .restore_store(&mut fresh, &LoadOptions::strict())
            .unwrap();
        assert_eq!(r.loaded.len(), 3);
        assert_eq!(
            fresh.value(fresh.key("fc.bias").unwrap()).to_vec(),
            vec![0.5, -0.5]
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_bad_file_is_a_clear_error() {
        let mut ck = Checkpoint::new();
        ck.add_store(&store());
        let bytes = ck.to_bytes().unwrap();
        // truncated
        let e = Checkpoint::from_bytes(&bytes[..bytes.len() - 5], "m.safetensors")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.safetensors: not a valid safetensors file"),
            "{e}"
        );
        // corrupt header
        let mut bad = bytes.clone();
        bad[8] = b'#'; // the opening brace of the JSON header
        assert!(Checkpoint::from_bytes(&bad, "m").is_err());
        assert!(Checkpoint::from_bytes(&[1, 2, 3], "m").is_err());
        // missing file
        let e = Checkpoint::load("/nonexistent/dir/m.safetensors").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        // missing key, unexpected key, wrong shape, wrong dtype — and the store is untouched
        let mut s = store();
        s.insert("extra", Tensor::zeros([1]));
        let e = ck
            .restore_store(&mut s, &LoadOptions::strict())
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing from the file: extra"), "{e}");
        let r = ck.restore_store(&mut s, &LoadOptions::partial()).unwrap();
        assert_eq!(r.missing, vec!["extra".to_string()]);
        let mut small = ParamStore::<f64>::new();
        small.insert("fc.weight", Tensor::zeros([2, 3]));
        let e = ck
            .restore_store(&mut small, &LoadOptions::strict())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not in the model: bn.num_batches_tracked, fc.bias"),
            "{e}"
        );
        let mut wrong = ParamStore::<f64>::new();
        let k = wrong.insert("fc.weight", Tensor::zeros([3, 2]));
        let e = ck
            .restore_store(&mut wrong, &LoadOptions::partial())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`fc.weight` has shape [2, 3] in the file but [3, 2] in the model"),
            "{e}"
        );
        assert_eq!(wrong.value(k).to_vec(), vec![0.0; 6]);
        let mut f32s = ParamStore::<f32>::new();
        f32s.insert("fc.weight", Tensor::zeros([2, 3]));
        let e = ck
            .restore_store(&mut f32s, &LoadOptions::partial())
            .unwrap_err()
            .to_string();
        assert!(e.contains("holds f64 values, the model expects f32"), "{e}");
        ck.restore_store(&mut f32s, &LoadOptions::partial().with_dtype_cast())
            .unwrap();
        // an unwritable target
        let e = ck.save("/nonexistent/dir/m.safetensors").unwrap_err();
        assert!(matches!(e, Error::Io { .. }));
    }
}

//! Save and load a model's parameters and buffers as safetensors, with PyTorch's
//! `state_dict` names and layouts (`Linear` weight `[out, in]`, conv weight OIHW, batch norm
//! `running_mean`/`running_var`/`num_batches_tracked`), so weights move between tapegrad and
//! PyTorch in both directions (`safetensors.torch.save_file(model.state_dict(), path)` and
//! `load_file`).
//!
//! Writes are atomic (temporary file, then rename). Loading checks names, shapes and dtypes:
//! a missing or unexpected name, a wrong shape or dtype, or a truncated or corrupt file is
//! an error and leaves the store unchanged. A partial load (for transfer learning) is asked
//! for explicitly with [`LoadOptions::partial`] and reports what it loaded and skipped.

use std::path::Path;

use tapegrad_core::checkpoint::Checkpoint;
pub use tapegrad_core::checkpoint::{LoadOptions, LoadReport};
use tapegrad_core::{Error, Float, ParamStore, Result};

/// Saves every parameter and buffer of `store` to `path` (atomically).
///
/// # Errors
/// [`Error::Io`] if the file cannot be written.
pub fn save<T: Float>(store: &ParamStore<T>, path: impl AsRef<Path>) -> Result<()> {
    let mut ck = Checkpoint::new();
    ck.add_store(store);
    ck.save(path)
}

/// Loads every parameter and buffer of `store` from `path`; names, shapes and dtypes must
/// match exactly.
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`]; the store is then unchanged.
pub fn load<T: Float>(store: &mut ParamStore<T>, path: impl AsRef<Path>) -> Result<LoadReport> {
    load_with(store, path, &LoadOptions::strict())
}

/// Loads with options (partial loads, f32/f64 conversion, a name prefix).
///
/// # Errors
/// [`Error::Io`] or [`Error::Checkpoint`]; the store is then unchanged.
pub fn load_with<T: Float>(
    store: &mut ParamStore<T>,
    path: impl AsRef<Path>,
    opts: &LoadOptions,
) -> Result<LoadReport> {
    let path = path.as_ref();
    let ck = Checkpoint::load(path)?;
    ck.restore_store(store, opts).map_err(|e| match e {
        Error::Checkpoint { message, .. } => Error::Checkpoint {
            path: path.display().to_string(),
            message,
        },
        other => other,
    })
}

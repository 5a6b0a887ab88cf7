//! Atomic file writes: a temporary sibling, flushed to disk, renamed over the target, and the
//! directory flushed after the rename.
//!
//! A crash or a kill at any moment leaves either the old file or the new one at the target,
//! never part of one. What it can leave is its temporary file: those are named
//! `.{file}.tmp-{pid}-{n}` (the writing process and a per-process counter, so two saves to
//! one path never share one), and every save removes the temporaries of the same target
//! whose process is gone (on Linux, where `/proc` says which processes live; elsewhere
//! they are left for the user, and their names say where they came from).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Distinguishes the temporaries of concurrent saves within one process.
static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically (see the module docs).
///
/// # Errors
/// [`Error::Io`] naming `path` if the directory is missing or not writable, the disk is
/// full, or a flush fails; the target is then untouched and the temporary file removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| Error::io(path, e);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(file_name) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else {
        return Err(Error::Io {
            path: path.display().to_string(),
            message: "not a file path".into(),
        });
    };
    let n = NEXT_TMP.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(
        "{}{}-{n}",
        tmp_prefix(&file_name),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    sync_dir(&dir).map_err(io)?;
    remove_stale_temporaries(&dir, &file_name);
    Ok(())
}

/// The start of every temporary name for `file_name`.
fn tmp_prefix(file_name: &str) -> String {
    format!(".{file_name}.tmp-")
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; the rename is as durable as the platform
/// makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Removes the temporaries of `file_name` in `dir` left by processes that no longer run.
/// Best effort: a temporary that cannot be removed is left, and never one of a live
/// process (this one's included: another thread may be saving).
fn remove_stale_temporaries(dir: &Path, file_name: &str) {
    let prefix = tmp_prefix(file_name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        // `{pid}-{n}`, or `{pid}` from versions before the counter.
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !process_alive(pid) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Whether process `pid` exists.
#[cfg(target_os = "linux")]
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Without `/proc`, every process is taken to be alive (nothing is removed).
#[cfg(not(target_os = "linux"))]
fn process_alive(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tapegrad-atomic-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn concurrent_saves_to_one_path_all_succeed_and_leave_one_file() {
        let dir = tmpdir("concurrent");
        let path = dir.join("m.bin");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        write_atomic(path, &[t; 1000]).unwrap();
                    }
                });
            }
        });
        assert_eq!(names(&dir), vec!["m.bin".to_string()]);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 1000);
        assert!(bytes.iter().all(|&b| b == bytes[0]), "one write, whole");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        let dir = tmpdir("stale");
        let path = dir.join("m.bin");
        // A pid above Linux's maximum (2^22) never runs; the old naming without a counter
        // is recognised too.
        let dead = [".m.bin.tmp-4194305-0", ".m.bin.tmp-4194306"];
        let mine = format!(".m.bin.tmp-{}-999", std::process::id());
        // Another target's temporary and an unrelated file are not touched.
        let other = [".n.bin.tmp-4194305-0", "notes.txt"];
        for n in dead.iter().chain(&other) {
            std::fs::write(dir.join(n), b"x").unwrap();
        }
        std::fs::write(dir.join(&mine), b"x").unwrap();
        write_atomic(&path, b"new").unwrap();
        let mut want = vec![
            ".n.bin.tmp-4194305-0".to_string(),
            mine.clone(),
            "m.bin".into(),
            "notes.txt".into(),
        ];
        if !cfg!(target_os = "linux") {
            want.extend(dead.iter().map(|s| s.to_string()));
        }
        want.sort();
        assert_eq!(names(&dir), want);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_target_and_no_temporary() {
        let dir = tmpdir("fail");
        let path = dir.join("m.bin");
        write_atomic(&path, b"old").unwrap();
        // The target's name taken by a directory with contents: the rename fails.
        let blocked = dir.join("d");
        std::fs::create_dir_all(blocked.join("inner")).unwrap();
        let e = write_atomic(&blocked, b"new").unwrap_err();
        assert!(e.to_string().contains("/d: "), "{e}");
        assert_eq!(names(&dir), vec!["d".to_string(), "m.bin".into()]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let e = write_atomic(&dir.join("missing/m.bin"), b"x").unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

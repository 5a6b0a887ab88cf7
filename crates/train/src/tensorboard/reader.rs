//! Reading event files back: ours (the tests, examples that compare runs) and any other
//! writer's. A record that fails its CRC is an error naming the file and the byte offset;
//! a last record cut short (a run killed mid-write) is reported, with every record before it
//! kept.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tapegrad_core::{Error, Result};

use super::event::{Data, Event, Histogram, Image, What};
use super::record::read_records;

/// The events of one file.
#[derive(Clone, Debug, PartialEq)]
pub struct EventFile {
    /// The file.
    pub path: PathBuf,
    /// Its events, in order.
    pub events: Vec<Event>,
    /// A last record cut short: where it starts and what is missing.
    pub truncated: Option<String>,
}

/// Reads an event file.
///
/// # Errors
/// [`Error::Io`] if it cannot be read; [`Error::Data`] naming the file and the byte offset
/// for a record that fails its CRC or does not decode.
pub fn read_events(path: impl AsRef<Path>) -> Result<EventFile> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    events_from_bytes(&bytes, path)
}

/// [`read_events`] of bytes in memory (`path` names them in errors).
///
/// # Errors
/// As [`read_events`].
pub fn events_from_bytes(bytes: &[u8], path: &Path) -> Result<EventFile> {
    let err = |at: usize, m: String| Error::Data {
        path: path.display().to_string(),
        message: format!("byte {at}: {m}"),
    };
    let records = read_records(bytes).map_err(|(at, m)| err(at, m))?;
    let mut events = Vec::with_capacity(records.records.len());
    for (at, data) in records.records {
        // The record's data starts 12 bytes after the record.
        events.push(Event::decode(data).map_err(|(o, m)| err(at + 12 + o, m))?);
    }
    Ok(EventFile {
        path: path.to_path_buf(),
        events,
        truncated: records.truncated.map(|(at, m)| format!("byte {at}: {m}")),
    })
}

/// Every event file (`events.out.tfevents.*`) under `dir`, its subfolders included, sorted
/// by path.
///
/// # Errors
/// As [`read_events`], for the first file that fails.
pub fn read_logdir(dir: impl AsRef<Path>) -> Result<Vec<EventFile>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, out)?;
            } else if p
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events.out.tfevents."))
            {
                out.push(p);
            }
        }
        Ok(())
    }
    let mut paths = Vec::new();
    walk(dir.as_ref(), &mut paths)?;
    paths.sort();
    paths.iter().map(read_events).collect()
}

impl EventFile {
    /// Every `(step, value)` of `tag`'s data, in order.
    fn values<'a, T>(
        &'a self,
        tag: &'a str,
        f: impl Fn(&'a Data) -> Option<T> + 'a,
    ) -> Vec<(i64, T)> {
        self.events
            .iter()
            .filter_map(|e| match &e.what {
                What::Summary(vs) => Some((e.step, vs)),
                _ => None,
            })
            .flat_map(|(step, vs)| {
                vs.iter()
                    .filter(move |v| v.tag == tag)
                    .map(move |v| (step, v))
            })
            .filter_map(|(step, v)| f(&v.data).map(|x| (step, x)))
            .collect()
    }

    /// The tags of every summary value.
    pub fn tags(&self) -> BTreeSet<String> {
        self.events
            .iter()
            .filter_map(|e| match &e.what {
                What::Summary(vs) => Some(vs),
                _ => None,
            })
            .flatten()
            .map(|v| v.tag.clone())
            .collect()
    }

    /// A scalar series as `(step, value)`.
    pub fn scalars(&self, tag: &str) -> Vec<(i64, f64)> {
        self.values(tag, |d| match d {
            Data::Scalar(x) => Some(f64::from(*x)),
            _ => None,
        })
    }

    /// A histogram series.
    pub fn histograms(&self, tag: &str) -> Vec<(i64, Histogram)> {
        self.values(tag, |d| match d {
            Data::Histogram(h) => Some(h.clone()),
            _ => None,
        })
    }

    /// An image series.
    pub fn images(&self, tag: &str) -> Vec<(i64, Image)> {
        self.values(tag, |d| match d {
            Data::Image(i) => Some(i.clone()),
            _ => None,
        })
    }

    /// A text series.
    pub fn texts(&self, tag: &str) -> Vec<(i64, String)> {
        self.values(tag, |d| match d {
            Data::Tensor(t) => t
                .strings
                .first()
                .map(|s| String::from_utf8_lossy(s).into_owned()),
            _ => None,
        })
    }
}

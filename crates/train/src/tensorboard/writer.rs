//! `SummaryWriter`: one event file per run, in TensorBoard's naming, appended to as the run
//! goes and flushed so that a running TensorBoard shows progress live.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tapegrad_core::{Error, Result};

use super::event::{Data, Event, Histogram, Image, Metadata, TensorData, Value, What, DT_STRING};
use super::proto::Encoder;
use super::record::frame;

/// The value of one hyperparameter (TensorBoard's HParams dashboard).
#[derive(Clone, Debug, PartialEq)]
pub enum HParam {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// A flag.
    Bool(bool),
}

impl From<f64> for HParam {
    fn from(v: f64) -> Self {
        HParam::Number(v)
    }
}
impl From<usize> for HParam {
    fn from(v: usize) -> Self {
        HParam::Number(v as f64)
    }
}
impl From<u64> for HParam {
    fn from(v: u64) -> Self {
        HParam::Number(v as f64)
    }
}
impl From<bool> for HParam {
    fn from(v: bool) -> Self {
        HParam::Bool(v)
    }
}
impl From<&str> for HParam {
    fn from(v: &str) -> Self {
        HParam::Text(v.to_string())
    }
}

/// Writes one run's event file under a log directory.
///
/// ```
/// use tapegrad_train::tensorboard::{read_events, SummaryWriter};
/// let dir = std::env::temp_dir().join(format!("tapegrad-tb-doc-{}", std::process::id()));
/// let mut w = SummaryWriter::new(&dir).unwrap();
/// for step in 0..3 {
///     w.add_scalar("train/loss", 1.0 / (step + 1) as f64, step).unwrap();
/// }
/// w.add_text("config", "lr = 0.01", 0).unwrap();
/// w.flush().unwrap();
/// let file = read_events(w.path()).unwrap();
/// // Scalars are stored as f32, as TensorBoard stores them.
/// assert_eq!(file.scalars("train/loss"), vec![(0, 1.0), (1, 0.5), (2, f64::from(1.0f32 / 3.0))]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct SummaryWriter {
    path: PathBuf,
    file: std::fs::File,
    pending: Vec<u8>,
    last_flush: Instant,
    flush_every: Duration,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains('/'))
        .unwrap_or_else(|| "localhost".into())
}

impl SummaryWriter {
    /// A new event file `events.out.tfevents.{seconds}.{host}.{pid}.{n}` in `logdir`
    /// (created if needed), starting with the file-version event. Writes are buffered and
    /// flushed every 2 seconds (and by [`SummaryWriter::flush`] and on drop).
    ///
    /// # Errors
    /// [`Error::Io`] if the directory or the file cannot be created.
    pub fn new(logdir: impl AsRef<Path>) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = logdir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let (secs, host, pid) = (now() as u64, hostname(), std::process::id());
        let (path, file) = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("events.out.tfevents.{secs}.{host}.{pid}.{n}"));
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::io(&path, e)),
            }
        };
        let mut w = SummaryWriter {
            path,
            file,
            pending: Vec::new(),
            last_flush: Instant::now(),
            flush_every: Duration::from_secs(2),
        };
        w.write_event(&Event {
            wall_time: now(),
            step: 0,
            what: What::FileVersion("brain.Event:2".into()),
        })?;
        w.flush()?;
        Ok(w)
    }

    /// Flushes at most this often by itself (0: after every event).
    pub fn with_flush_every(mut self, every: Duration) -> Self {
        self.flush_every = every;
        self
    }

    /// The event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `event` (written out when the flush interval has passed).
    ///
    /// # Errors
    /// [`Error::Io`] if a due flush fails.
    pub fn write_event(&mut self, event: &Event) -> Result<()> {
        frame(&event.encode(), &mut self.pending);
        if self.last_flush.elapsed() >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is buffered to the file (TensorBoard then sees it).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn flush(&mut self) -> Result<()> {
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(&self.path, e))?;
        self.pending.clear();
        Ok(())
    }

    /// Appends summary values at `step`.
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_values(&mut self, values: Vec<Value>, step: usize) -> Result<()> {
        self.write_event(&Event {
            wall_time: now(),
            step: step as i64,
            what: What::Summary(values),
        })
    }

    /// A scalar (stored as f32, as TensorBoard's scalars are).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: usize) -> Result<()> {
        self.add_scalars(&[(tag, value)], step)
    }

    /// Several scalars at one step, in one event.
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_scalars(&mut self, values: &[(&str, f64)], step: usize) -> Result<()> {
        let values = values
            .iter()
            .map(|&(tag, v)| Value {
                tag: tag.to_string(),
                metadata: None,
                data: Data::Scalar(v as f32),
            })
            .collect();
        self.add_values(values, step)
    }

    /// A histogram.
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_histogram(&mut self, tag: &str, histogram: Histogram, step: usize) -> Result<()> {
        let v = Value {
            tag: tag.to_string(),
            metadata: None,
            data: Data::Histogram(histogram),
        };
        self.add_values(vec![v], step)
    }

    /// The histogram of `values` in 30 buckets.
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_histogram_of<I>(&mut self, tag: &str, values: I, step: usize) -> Result<()>
    where
        I: IntoIterator<Item = f64>,
        I::IntoIter: Clone,
    {
        self.add_histogram(tag, Histogram::of(values, 30), step)
    }

    /// A PNG image (its size and colour space read from its header).
    ///
    /// # Errors
    /// [`Error::Data`] if `png` is not a PNG file; as [`SummaryWriter::write_event`].
    pub fn add_image_png(&mut self, tag: &str, png: &[u8], step: usize) -> Result<()> {
        let (width, height, colorspace) = png_header(png).ok_or_else(|| Error::Data {
            path: tag.to_string(),
            message: "the image is not a PNG file".into(),
        })?;
        let v = Value {
            tag: tag.to_string(),
            metadata: None,
            data: Data::Image(Image {
                height,
                width,
                colorspace,
                encoded: png.to_vec(),
            }),
        };
        self.add_values(vec![v], step)
    }

    /// Text (Markdown, shown by TensorBoard's text dashboard).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_text(&mut self, tag: &str, text: &str, step: usize) -> Result<()> {
        let v = Value {
            tag: tag.to_string(),
            metadata: Some(Metadata {
                plugin_name: "text".into(),
                ..Default::default()
            }),
            data: Data::Tensor(TensorData {
                dtype: DT_STRING,
                shape: vec![1],
                strings: vec![text.as_bytes().to_vec()],
                ..Default::default()
            }),
        };
        self.add_values(vec![v], step)
    }

    /// The run's hyperparameters and final metrics, for the HParams dashboard (several
    /// runs compare in one table): the experiment (names and types), the session's values,
    /// its end, and each metric as a scalar at `step` under its tag (as PyTorch's
    /// `add_hparams` writes them).
    ///
    /// # Errors
    /// As [`SummaryWriter::write_event`].
    pub fn add_hparams(
        &mut self,
        hparams: &[(&str, HParam)],
        metrics: &[(&str, f64)],
        step: usize,
    ) -> Result<()> {
        let plugin = |content: Vec<u8>| {
            Some(Metadata {
                plugin_name: "hparams".into(),
                content,
                ..Default::default()
            })
        };
        let mut experiment = Encoder::default();
        experiment.message(2, |e| {
            e.double(3, now());
            for (name, v) in hparams {
                e.message(4, |info| {
                    let kind = match v {
                        HParam::Text(_) => 1,
                        HParam::Bool(_) => 2,
                        HParam::Number(_) => 3,
                    };
                    info.bytes(1, name.as_bytes()).int(4, kind);
                });
            }
            for (tag, _) in metrics {
                e.message(5, |info| {
                    info.message(1, |n| {
                        n.bytes(2, tag.as_bytes());
                    });
                });
            }
        });
        let mut start = Encoder::default();
        start.message(3, |s| {
            for (name, v) in hparams {
                s.message(1, |entry| {
                    entry.bytes(1, name.as_bytes());
                    entry.message(2, |value| match v {
                        HParam::Number(x) => {
                            value.double(2, *x);
                        }
                        HParam::Text(t) => {
                            value.bytes(3, t.as_bytes());
                        }
                        HParam::Bool(b) => {
                            value.int(4, i64::from(*b));
                        }
                    });
                });
            }
            s.double(5, now());
        });
        let mut end = Encoder::default();
        end.message(4, |s| {
            s.int(1, 1).double(2, now()); // STATUS_SUCCESS
        });
        let record = |tag: &str, content: Encoder| Value {
            tag: tag.to_string(),
            metadata: plugin(content.buf),
            data: Data::None,
        };
        self.add_values(vec![record("_hparams_/experiment", experiment)], 0)?;
        self.add_values(vec![record("_hparams_/session_start_info", start)], 0)?;
        self.add_scalars(metrics, step)?;
        self.add_values(vec![record("_hparams_/session_end_info", end)], 0)
    }
}

impl Drop for SummaryWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// `(width, height, colour space)` from a PNG file's IHDR chunk.
fn png_header(png: &[u8]) -> Option<(i32, i32, i32)> {
    if png.len() < 26 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes(b.try_into().expect("4 bytes"));
    let (w, h) = (
        i32::try_from(be(&png[16..20])).ok()?,
        i32::try_from(be(&png[20..24])).ok()?,
    );
    let colorspace = match png[25] {
        0 => 1,     // grey
        4 => 2,     // grey and alpha
        2 | 3 => 3, // RGB, palette
        6 => 4,     // RGBA
        _ => return None,
    };
    Some((w, h, colorspace))
}

//! The messages of an event file, as TensorBoard's `event.proto`, `summary.proto` and
//! `tensor.proto` define them (the field numbers below are theirs; TensorBoard's own
//! definitions are Apache-2.0, and only the numbers and types are used here), with their
//! encoding and a strict decoding.

use super::proto::{unpack_doubles, Decoder, Encoder, Wire};

/// One record of an event file.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Seconds since the Unix epoch.
    pub wall_time: f64,
    /// The training step.
    pub step: i64,
    /// What the event holds.
    pub what: What,
}

/// The payload of an [`Event`].
#[derive(Clone, Debug, PartialEq)]
pub enum What {
    /// The first event of a file: `brain.Event:2`.
    FileVersion(String),
    /// Summary values (scalars, histograms, images, tensors).
    Summary(Vec<Value>),
    /// `session_log` with status `START`: a run (re)starts at this event's step, and
    /// TensorBoard drops the events at this step and later written before it.
    SessionStart,
    /// Another kind of event (a graph, a session log...), by its field number: kept so that
    /// files of other writers read, not interpreted.
    Other(u32),
}

/// One tagged value of a summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// The series it belongs to (`train/loss`).
    pub tag: String,
    /// The plugin that reads it, when not implied by the data.
    pub metadata: Option<Metadata>,
    /// The value.
    pub data: Data,
}

/// A summary value's `SummaryMetadata`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// `plugin_data.plugin_name` (`text`, `hparams`, ...).
    pub plugin_name: String,
    /// `plugin_data.content`: the plugin's own message.
    pub content: Vec<u8>,
    /// A name to show instead of the tag.
    pub display_name: String,
    /// A description of the series.
    pub description: String,
}

/// A summary value's data.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// No data (the hparams plugin's records carry everything in their metadata).
    None,
    /// `simple_value`: a scalar.
    Scalar(f32),
    /// `histo`: a histogram.
    Histogram(Histogram),
    /// `image`: an encoded image.
    Image(Image),
    /// `tensor`: a tensor (text is a string tensor).
    Tensor(TensorData),
}

/// TensorBoard's `HistogramProto`: bucket `i` counts the values in
/// `(bucket_limit[i−1], bucket_limit[i]]`, the first from `min`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// The number of values.
    pub num: f64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_squares: f64,
    /// Each bucket's right edge.
    pub bucket_limit: Vec<f64>,
    /// Each bucket's count.
    pub bucket: Vec<f64>,
}

impl Histogram {
    /// The histogram of `values` in `bins` buckets of equal width between the smallest
    /// and the largest finite value (non-finite values are left out; no values gives an
    /// empty histogram, one distinct value a single bucket). Two passes over `values`, no
    /// copy of them.
    pub fn of<I>(values: I, bins: usize) -> Histogram
    where
        I: IntoIterator<Item = f64>,
        I::IntoIter: Clone,
    {
        let values = values.into_iter().filter(|v| v.is_finite());
        let mut h = Histogram {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            ..Default::default()
        };
        let mut n = 0usize;
        for v in values.clone() {
            n += 1;
            if v < h.min {
                h.min = v;
            }
            if v > h.max {
                h.max = v;
            }
            h.sum += v;
            h.sum_squares += v * v;
        }
        h.num = n as f64;
        if n == 0 {
            (h.min, h.max) = (0.0, 0.0);
            return h;
        }
        let bins = if h.max > h.min { bins.max(1) } else { 1 };
        let width = (h.max - h.min) / bins as f64;
        h.bucket_limit = (1..=bins)
            .map(|i| {
                if i == bins {
                    h.max
                } else {
                    h.min + width * i as f64
                }
            })
            .collect();
        let mut counts = vec![0u64; bins];
        let scale = if width > 0.0 { 1.0 / width } else { 0.0 };
        for v in values {
            // Bucket i holds (limit[i−1], limit[i]]: i = ⌈t⌉ − 1 for t = (v − min)/width,
            // the minimum in the first (⌈t⌉ without `ceil`, a libm call on baseline x86-64).
            let t = (v - h.min) * scale;
            let k = t as usize;
            let i = if k > 0 && k as f64 == t { k - 1 } else { k };
            counts[i.min(bins - 1)] += 1;
        }
        h.bucket = counts.into_iter().map(|c| c as f64).collect();
        h
    }
}

/// TensorBoard's `Summary.Image`.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// Height in pixels.
    pub height: i32,
    /// Width in pixels.
    pub width: i32,
    /// 1 grey, 2 grey and alpha, 3 RGB, 4 RGBA.
    pub colorspace: i32,
    /// The PNG file's bytes.
    pub encoded: Vec<u8>,
}

/// The parts of TensorBoard's `TensorProto` the writers here use.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorData {
    /// The `DataType` (1 float, 2 double, 7 string).
    pub dtype: i64,
    /// The dimensions.
    pub shape: Vec<i64>,
    /// `string_val`.
    pub strings: Vec<Vec<u8>>,
    /// `float_val`.
    pub floats: Vec<f32>,
    /// `double_val`.
    pub doubles: Vec<f64>,
}

/// The data type of strings in a `TensorProto`.
pub(crate) const DT_STRING: i64 = 7;

impl Event {
    /// The message's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::default();
        e.double(1, self.wall_time).int(2, self.step);
        match &self.what {
            What::FileVersion(v) => {
                e.bytes(3, v.as_bytes());
            }
            What::Summary(values) => {
                e.message(5, |s| {
                    for v in values {
                        s.message(1, |m| encode_value(v, m));
                    }
                });
            }
            What::SessionStart => {
                e.message(7, |m| {
                    m.int(1, 1);
                });
            }
            What::Other(_) => {}
        }
        e.buf
    }

    /// Decodes one event; an error is `(offset in the record, what is wrong)`.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Event, (usize, String)> {
        let mut ev = Event {
            wall_time: 0.0,
            step: 0,
            what: What::Other(0),
        };
        let mut d = Decoder::new(bytes);
        while let Some((field, w, at)) = d.next_field()? {
            let bad = |what: &str| {
                (
                    at,
                    format!("Event field {field} ({what}) has the wrong type"),
                )
            };
            match field {
                1 => ev.wall_time = w.as_f64().ok_or_else(|| bad("wall_time"))?,
                2 => ev.step = w.as_int().ok_or_else(|| bad("step"))?,
                3 => {
                    let s = w.as_bytes().ok_or_else(|| bad("file_version"))?;
                    ev.what = What::FileVersion(utf8(s, at)?);
                }
                5 => {
                    let s = w.as_bytes().ok_or_else(|| bad("summary"))?;
                    ev.what = What::Summary(decode_summary(s).map_err(|(o, m)| (at + o, m))?);
                }
                7 => {
                    let s = w.as_bytes().ok_or_else(|| bad("session_log"))?;
                    let mut status = 0;
                    fields(s, |f, w, at2| {
                        if f == 1 {
                            status = w.as_int().ok_or_else(|| wrong(at + at2, "SessionLog", f))?;
                        }
                        Ok(())
                    })?;
                    ev.what = if status == 1 {
                        What::SessionStart
                    } else {
                        What::Other(7)
                    };
                }
                f => ev.what = What::Other(f),
            }
        }
        Ok(ev)
    }
}

fn utf8(b: &[u8], at: usize) -> Result<String, (usize, String)> {
    String::from_utf8(b.to_vec()).map_err(|_| (at, "a string is not UTF-8".into()))
}

fn encode_value(v: &Value, m: &mut Encoder) {
    m.bytes(1, v.tag.as_bytes());
    if let Some(md) = &v.metadata {
        m.message(9, |e| {
            e.message(1, |p| {
                p.bytes(1, md.plugin_name.as_bytes()).bytes(2, &md.content);
            });
            if !md.display_name.is_empty() {
                e.bytes(2, md.display_name.as_bytes());
            }
            if !md.description.is_empty() {
                e.bytes(3, md.description.as_bytes());
            }
        });
    }
    match &v.data {
        Data::None => {}
        Data::Scalar(x) => {
            m.float(2, *x);
        }
        Data::Histogram(h) => {
            m.message(5, |e| {
                e.double(1, h.min)
                    .double(2, h.max)
                    .double(3, h.num)
                    .double(4, h.sum);
                e.double(5, h.sum_squares);
                e.packed_doubles(6, &h.bucket_limit)
                    .packed_doubles(7, &h.bucket);
            });
        }
        Data::Image(img) => {
            m.message(4, |e| {
                e.int(1, img.height.into()).int(2, img.width.into());
                e.int(3, img.colorspace.into()).bytes(4, &img.encoded);
            });
        }
        Data::Tensor(t) => {
            m.message(8, |e| {
                e.int(1, t.dtype);
                e.message(2, |s| {
                    for &d in &t.shape {
                        s.message(2, |dim| {
                            dim.int(1, d);
                        });
                    }
                });
                for x in &t.floats {
                    e.float(5, *x);
                }
                for x in &t.doubles {
                    e.double(6, *x);
                }
                for s in &t.strings {
                    e.bytes(8, s);
                }
            });
        }
    }
}

type Decoded<T> = Result<T, (usize, String)>;

/// The fields of a sub-message, each passed to `f` with the offset of `bytes`' fields.
fn fields<'a>(
    bytes: &'a [u8],
    mut f: impl FnMut(u32, Wire<'a>, usize) -> Decoded<()>,
) -> Decoded<()> {
    let mut d = Decoder::new(bytes);
    while let Some((field, w, at)) = d.next_field()? {
        f(field, w, at)?;
    }
    Ok(())
}

fn wrong(at: usize, msg: &str, field: u32) -> (usize, String) {
    (at, format!("{msg} field {field} has the wrong type"))
}

fn decode_summary(bytes: &[u8]) -> Decoded<Vec<Value>> {
    let mut values = Vec::new();
    fields(bytes, |field, w, at| {
        if field == 1 {
            let b = w.as_bytes().ok_or_else(|| wrong(at, "Summary", field))?;
            values.push(decode_value(b).map_err(|(o, m)| (at + o, m))?);
        }
        Ok(())
    })?;
    Ok(values)
}

fn decode_value(bytes: &[u8]) -> Decoded<Value> {
    let mut v = Value {
        tag: String::new(),
        metadata: None,
        data: Data::None,
    };
    fields(bytes, |field, w, at| {
        let sub = || {
            w.as_bytes()
                .ok_or_else(|| wrong(at, "Summary.Value", field))
        };
        match field {
            1 => v.tag = utf8(sub()?, at)?,
            2 => {
                v.data = Data::Scalar(
                    w.as_f32()
                        .ok_or_else(|| wrong(at, "Summary.Value", field))?,
                )
            }
            4 => v.data = Data::Image(decode_image(sub()?).map_err(|(o, m)| (at + o, m))?),
            5 => v.data = Data::Histogram(decode_histogram(sub()?).map_err(|(o, m)| (at + o, m))?),
            8 => v.data = Data::Tensor(decode_tensor(sub()?).map_err(|(o, m)| (at + o, m))?),
            9 => v.metadata = Some(decode_metadata(sub()?).map_err(|(o, m)| (at + o, m))?),
            _ => {}
        }
        Ok(())
    })?;
    Ok(v)
}

fn decode_metadata(bytes: &[u8]) -> Decoded<Metadata> {
    let mut md = Metadata::default();
    fields(bytes, |field, w, at| {
        let b = || {
            w.as_bytes()
                .ok_or_else(|| wrong(at, "SummaryMetadata", field))
        };
        match field {
            1 => fields(b()?, |f, w, at2| {
                let b = w
                    .as_bytes()
                    .ok_or_else(|| wrong(at + at2, "PluginData", f))?;
                match f {
                    1 => md.plugin_name = utf8(b, at + at2)?,
                    2 => md.content = b.to_vec(),
                    _ => {}
                }
                Ok(())
            })?,
            2 => md.display_name = utf8(b()?, at)?,
            3 => md.description = utf8(b()?, at)?,
            _ => {}
        }
        Ok(())
    })?;
    Ok(md)
}

fn decode_image(bytes: &[u8]) -> Decoded<Image> {
    let mut img = Image {
        height: 0,
        width: 0,
        colorspace: 0,
        encoded: Vec::new(),
    };
    fields(bytes, |field, w, at| {
        let int = || {
            w.as_int()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| wrong(at, "Summary.Image", field))
        };
        match field {
            1 => img.height = int()?,
            2 => img.width = int()?,
            3 => img.colorspace = int()?,
            4 => {
                img.encoded = w
                    .as_bytes()
                    .ok_or_else(|| wrong(at, "Summary.Image", field))?
                    .to_vec()
            }
            _ => {}
        }
        Ok(())
    })?;
    Ok(img)
}

fn decode_histogram(bytes: &[u8]) -> Decoded<Histogram> {
    let mut h = Histogram::default();
    fields(bytes, |field, w, at| {
        let num = || w.as_f64().ok_or_else(|| wrong(at, "HistogramProto", field));
        // Repeated doubles: packed (as written here and by TensorFlow) or one by one.
        let many = || match w {
            Wire::Bytes(b) => unpack_doubles(b).ok_or_else(|| {
                (
                    at,
                    "a packed double field's length is not a multiple of 8".to_string(),
                )
            }),
            Wire::Fixed64(b) => Ok(vec![f64::from_bits(b)]),
            _ => Err(wrong(at, "HistogramProto", field)),
        };
        match field {
            1 => h.min = num()?,
            2 => h.max = num()?,
            3 => h.num = num()?,
            4 => h.sum = num()?,
            5 => h.sum_squares = num()?,
            6 => h.bucket_limit.extend(many()?),
            7 => h.bucket.extend(many()?),
            _ => {}
        }
        Ok(())
    })?;
    if h.bucket.len() != h.bucket_limit.len() {
        return Err((
            0,
            format!(
                "a histogram of {} buckets with {} limits",
                h.bucket.len(),
                h.bucket_limit.len()
            ),
        ));
    }
    Ok(h)
}

fn decode_tensor(bytes: &[u8]) -> Decoded<TensorData> {
    let mut t = TensorData::default();
    fields(bytes, |field, w, at| {
        match field {
            1 => t.dtype = w.as_int().ok_or_else(|| wrong(at, "TensorProto", field))?,
            2 => fields(
                w.as_bytes()
                    .ok_or_else(|| wrong(at, "TensorProto", field))?,
                |f, w, at2| {
                    if f == 2 {
                        let dim = w
                            .as_bytes()
                            .ok_or_else(|| wrong(at + at2, "TensorShapeProto", f))?;
                        fields(dim, |f, w, at3| {
                            if f == 1 {
                                t.shape.push(
                                    w.as_int().ok_or_else(|| wrong(at + at2 + at3, "Dim", f))?,
                                );
                            }
                            Ok(())
                        })?;
                    }
                    Ok(())
                },
            )?,
            5 => match w {
                Wire::Fixed32(b) => t.floats.push(f32::from_bits(b)),
                Wire::Bytes(b) if b.len() % 4 == 0 => t.floats.extend(
                    b.chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))),
                ),
                _ => return Err(wrong(at, "TensorProto", field)),
            },
            6 => match w {
                Wire::Fixed64(b) => t.doubles.push(f64::from_bits(b)),
                Wire::Bytes(b) => t
                    .doubles
                    .extend(unpack_doubles(b).ok_or_else(|| wrong(at, "TensorProto", field))?),
                _ => return Err(wrong(at, "TensorProto", field)),
            },
            8 => t.strings.push(
                w.as_bytes()
                    .ok_or_else(|| wrong(at, "TensorProto", field))?
                    .to_vec(),
            ),
            _ => {}
        }
        Ok(())
    })?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_value_round_trips() {
        let ev = Event {
            wall_time: 1.7e9 + 0.25,
            step: 42,
            what: What::Summary(vec![
                Value {
                    tag: "train/loss".into(),
                    metadata: None,
                    data: Data::Scalar(0.125),
                },
                Value {
                    tag: "weights/fc".into(),
                    metadata: None,
                    data: Data::Histogram(Histogram::of([1.0, 2.0, 2.5, -1.0, f64::NAN], 3)),
                },
                Value {
                    tag: "images/confusion".into(),
                    metadata: None,
                    data: Data::Image(Image {
                        height: 2,
                        width: 3,
                        colorspace: 3,
                        encoded: vec![1, 2, 3],
                    }),
                },
                Value {
                    tag: "config".into(),
                    metadata: Some(Metadata {
                        plugin_name: "text".into(),
                        display_name: "the configuration".into(),
                        ..Default::default()
                    }),
                    data: Data::Tensor(TensorData {
                        dtype: DT_STRING,
                        shape: vec![1],
                        strings: vec![b"lr = 0.01".to_vec()],
                        ..Default::default()
                    }),
                },
            ]),
        };
        assert_eq!(Event::decode(&ev.encode()).unwrap(), ev);
        for what in [
            What::FileVersion("brain.Event:2".into()),
            What::SessionStart,
        ] {
            let v = Event {
                wall_time: 1.0,
                step: 3,
                what,
            };
            assert_eq!(Event::decode(&v.encode()).unwrap(), v);
        }
    }

    #[test]
    fn histograms_count_every_finite_value_once() {
        let h = Histogram::of([1.0, 2.0, 2.5, -1.0, f64::NAN, 4.0], 5);
        assert_eq!((h.min, h.max, h.num), (-1.0, 4.0, 5.0));
        assert_eq!(h.bucket, vec![1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(h.bucket_limit, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(h.sum, 8.5);
        assert_eq!(Histogram::of([3.0, 3.0], 30).bucket, vec![2.0]);
        assert_eq!(Histogram::of([], 30).num, 0.0);
    }
}

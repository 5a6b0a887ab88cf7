//! Readers: the bundled digits data, MNIST-format IDX files (raw or gzip), numeric CSV.
//!
//! Every reader returns an [`Error::Data`] naming the file and the line or byte offset —
//! a wrong magic number, a truncated file, image and label counts that differ, a ragged or
//! non-numeric CSV row, a label out of range — and never panics. Memory follows the data
//! actually read, never a count the file claims: a header claiming more data than the file
//! can hold (for gzip, more than deflate's largest ratio allows) is refused before anything
//! is allocated for it. Gzip is detected from the bytes (`1f 8b`), not from the name.

use std::io::Read;
use std::path::Path;

use tapegrad_core::{Error, Float, Result, Tensor};

use crate::dataset::TensorDataset;

/// The bundled digits data (see `data/README.md`), compressed, in the binary.
const DIGITS: &[u8] = include_bytes!("../../../data/digits.csv.gz");

fn data_err(path: &str, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Deflate never expands more than about 1032 to 1; a gzip stream claiming more is damaged.
const MAX_GZIP_RATIO: u64 = 1100;

/// The bytes of a file, decompressed if they are gzip's, reading at most `limit` bytes of
/// content (more is an error: the caller knows how much the file should hold).
fn content(bytes: &[u8], origin: &str, limit: Option<u64>) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        let cap = limit.unwrap_or(u64::MAX);
        flate2::read::GzDecoder::new(bytes)
            .take(cap.saturating_add(1))
            .read_to_end(&mut out)
            .map_err(|e| data_err(origin, format!("not a valid gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

// ------------------------------------------------------------------------------ digits

/// The UCI digits (1797 images of 8×8 pixels in 0..=16, labels 0..=9), embedded in the
/// binary: features `[1797, 1, 8, 8]` holding the raw pixel values (divide by 16 for
/// [0, 1]).
///
/// ```
/// use tapegrad_data::{read, Dataset};
/// let d = read::digits::<f32>().unwrap();
/// assert_eq!((d.len(), d.feature_shape()), (1797, &[1usize, 8, 8][..]));
/// assert_eq!(d.num_classes(), 10);
/// ```
///
/// # Errors
/// Never for the bundled file (the reader is the CSV reader, which checks everything).
pub fn digits<T: Float>() -> Result<TensorDataset<T>> {
    let opts = CsvOptions::default().with_num_classes(10);
    csv_from_bytes(DIGITS, "<digits>", &opts)?.with_feature_shape(&[1, 8, 8])
}

// ------------------------------------------------------------------------------ CSV

/// Where the label of a CSV row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last field.
    Last,
    /// The first field.
    First,
    /// Field `i` (0-based).
    Index(usize),
}

/// How to read a CSV table of numbers with one label column.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvOptions {
    /// The label's column (default: the last).
    pub label: LabelColumn,
    /// Whether the first line is a header to skip (default: no).
    pub header: bool,
    /// The field separator (default `,`).
    pub delimiter: char,
    /// Labels must be below this (default: any).
    pub num_classes: Option<usize>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            label: LabelColumn::Last,
            header: false,
            delimiter: ',',
            num_classes: None,
        }
    }
}

tapegrad_core::setters! { CsvOptions {
    /// With the label in another column.
    with_label(label: LabelColumn) => label = label;
    /// With (or without) a header line.
    with_header(header: bool) => header = header;
    /// With another separator.
    with_delimiter(d: char) => delimiter = d;
    /// Labels must be below `n`.
    with_num_classes(n: usize) => num_classes = Some(n);
}}

/// A numeric CSV file (raw or gzip) with one label per row: features `[rows, fields − 1]`.
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Data`] naming the file and the line
/// for a ragged row, a field that is not a number, a label that is not a whole number in
/// range, or a file without rows.
pub fn csv<T: Float>(path: impl AsRef<Path>, opts: &CsvOptions) -> Result<TensorDataset<T>> {
    let path = path.as_ref();
    csv_from_bytes(&read_file(path)?, &path.display().to_string(), opts)
}

/// [`csv`] from bytes; `origin` names them in errors.
///
/// # Errors
/// As [`csv`].
pub fn csv_from_bytes<T: Float>(
    bytes: &[u8],
    origin: &str,
    opts: &CsvOptions,
) -> Result<TensorDataset<T>> {
    let text = content(bytes, origin, None)?;
    let text = std::str::from_utf8(&text)
        .map_err(|e| data_err(origin, format!("not UTF-8 text (byte {})", e.valid_up_to())))?;
    let (mut features, mut labels) = (Vec::<T>::new(), Vec::<usize>::new());
    let mut width: Option<usize> = None;
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        if (opts.header && n == 0) || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(opts.delimiter).map(str::trim).collect();
        let w = *width.get_or_insert(fields.len());
        if fields.len() != w {
            return Err(data_err(
                origin,
                format!(
                    "line {lineno}: {} fields, the first row has {w}",
                    fields.len()
                ),
            ));
        }
        if w < 2 {
            return Err(data_err(
                origin,
                format!("line {lineno}: a row needs a label and at least one feature"),
            ));
        }
        let li = match opts.label {
            LabelColumn::Last => w - 1,
            LabelColumn::First => 0,
            LabelColumn::Index(i) if i < w => i,
            LabelColumn::Index(i) => {
                return Err(data_err(
                    origin,
                    format!("line {lineno}: no column {i} for the label in {w} fields"),
                ))
            }
        };
        for (k, f) in fields.iter().enumerate() {
            let v: f64 = f.parse().map_err(|_| {
                data_err(
                    origin,
                    format!("line {lineno}, field {}: `{f}` is not a number", k + 1),
                )
            })?;
            if k == li {
                let ok = v >= 0.0 && v.fract() == 0.0 && v < 1e15;
                let in_range = opts.num_classes.is_none_or(|c| v < c as f64);
                if !ok || !in_range {
                    return Err(data_err(
                        origin,
                        match opts.num_classes {
                            Some(c) => format!("line {lineno}: label {f} is not a class in 0..{c}"),
                            None => format!("line {lineno}: label {f} is not a whole number ≥ 0"),
                        },
                    ));
                }
                labels.push(v as usize);
            } else {
                features.push(T::from_f64(v));
            }
        }
    }
    let (Some(w), rows) = (width, labels.len()) else {
        return Err(data_err(origin, "no rows"));
    };
    let x = Tensor::try_from_vec(features, [rows, w - 1])
        .map_err(|e| data_err(origin, e.to_string()))?;
    TensorDataset::new(x, Tensor::from_vec(labels, [rows]))
}

// ------------------------------------------------------------------------------ IDX

/// An IDX array of unsigned bytes (the MNIST format): its dimensions and its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, as the header gives them.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

/// An IDX file of unsigned bytes, raw or gzip (detected from the bytes).
///
/// # Errors
/// [`Error::Io`] if the file cannot be read; [`Error::Data`] naming the file and the byte
/// offset for a wrong magic number, a type other than unsigned bytes, a header claiming more
/// data than the file can hold, or a file shorter or longer than its header says.
pub fn idx(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    idx_from_bytes(&read_file(path)?, &path.display().to_string())
}

/// [`idx`] from bytes; `origin` names them in errors.
///
/// # Errors
/// As [`idx`].
pub fn idx_from_bytes(bytes: &[u8], origin: &str) -> Result<Idx> {
    let gz = bytes.starts_with(&[0x1f, 0x8b]);
    // The header first (at most 4 + 4·255 bytes), to know how much data to expect.
    let head = content_prefix(bytes, origin, 4 + 4 * 255)?;
    if head.len() < 4 || head[0] != 0 || head[1] != 0 {
        return Err(data_err(
            origin,
            format!(
                "byte 0: not an IDX file (magic {:02x?}, expected 00 00 08 <dims>)",
                &head[..head.len().min(4)]
            ),
        ));
    }
    if head[2] != 0x08 {
        return Err(data_err(
            origin,
            format!(
                "byte 2: element type 0x{:02x}; tapegrad reads unsigned bytes (0x08)",
                head[2]
            ),
        ));
    }
    let ndim = head[3] as usize;
    let header_len = 4 + 4 * ndim;
    if head.len() < header_len {
        return Err(data_err(
            origin,
            format!(
                "byte {}: the file ends inside its header of {ndim} dimensions",
                head.len()
            ),
        ));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|d| {
            u32::from_be_bytes(head[4 + 4 * d..8 + 4 * d].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let claimed = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d as u64));
    // A raw file's data is read as it is (its size bounds the memory, and a short one is
    // reported as truncated below); a gzip stream cannot expand past deflate's ratio.
    let most = if gz {
        (bytes.len() as u64).saturating_mul(MAX_GZIP_RATIO)
    } else {
        u64::MAX
    };
    let Some(claimed) = claimed.filter(|&n| n.saturating_add(header_len as u64) <= most) else {
        return Err(data_err(
            origin,
            format!(
                "byte 4: the header claims {dims:?} = {} values, more than a file of {} bytes can hold",
                claimed.map_or("too many".to_string(), |n| n.to_string()),
                bytes.len()
            ),
        ));
    };
    let all = content(bytes, origin, Some(header_len as u64 + claimed))?;
    let body = &all[header_len.min(all.len())..];
    if (body.len() as u64) < claimed {
        return Err(data_err(
            origin,
            format!(
                "byte {}: truncated: the header says {dims:?} ({claimed} values), the file holds {}",
                all.len(),
                body.len()
            ),
        ));
    }
    if (body.len() as u64) > claimed {
        return Err(data_err(
            origin,
            format!(
                "byte {}: {} bytes past the {claimed} values the header announces",
                header_len as u64 + claimed,
                if gz {
                    "more".to_string()
                } else {
                    (body.len() as u64 - claimed).to_string()
                }
            ),
        ));
    }
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}

/// At most the first `n` bytes of the content (decompressed if gzip).
fn content_prefix(bytes: &[u8], origin: &str, n: usize) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(n as u64)
            .read_to_end(&mut out)
            .map_err(|e| data_err(origin, format!("not a valid gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes[..bytes.len().min(n)].to_vec())
    }
}

/// The parts of an MNIST-format folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MnistPart {
    /// `train-images-idx3-ubyte` and `train-labels-idx1-ubyte` (60,000).
    Train,
    /// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` (10,000).
    Test,
}

/// A part of an MNIST-format folder (MNIST, Fashion-MNIST...): images `[N, 1, H, W]` with
/// the raw pixel values 0..=255 (divide by 255 for [0, 1]), labels 0..=9. Each file may be
/// raw or gzip, named with or without `.gz`.
///
/// # Errors
/// [`Error::Io`] if a file is missing or unreadable (naming both names looked for);
/// [`Error::Data`] for a malformed file (see [`idx`]), images that are not 3-d, label files
/// that are not 1-d, counts that differ between the two files, or a label above 9 (with
/// its byte offset).
pub fn mnist<T: Float>(dir: impl AsRef<Path>, part: MnistPart) -> Result<TensorDataset<T>> {
    let dir = dir.as_ref();
    let stem = match part {
        MnistPart::Train => "train",
        MnistPart::Test => "t10k",
    };
    let find = |name: &str| -> Result<std::path::PathBuf> {
        let raw = dir.join(name);
        let gz = dir.join(format!("{name}.gz"));
        match (gz.exists(), raw.exists()) {
            (true, _) => Ok(gz),
            (_, true) => Ok(raw),
            _ => Err(Error::Io {
                path: dir.display().to_string(),
                message: format!("no {name} or {name}.gz in this folder"),
            }),
        }
    };
    let ipath = find(&format!("{stem}-images-idx3-ubyte"))?;
    let lpath = find(&format!("{stem}-labels-idx1-ubyte"))?;
    let (iname, lname) = (ipath.display().to_string(), lpath.display().to_string());
    let images = idx(&ipath)?;
    let labels = idx(&lpath)?;
    let rank = |name: &str, what: &str, dims: &[usize], want: usize| {
        if dims.len() == want {
            return Ok(());
        }
        let s = if want == 1 { "" } else { "s" };
        Err(data_err(
            name,
            format!("byte 3: {what} need {want} dimension{s}, the file has {dims:?}"),
        ))
    };
    rank(&iname, "images", &images.dims, 3)?;
    rank(&lname, "labels", &labels.dims, 1)?;
    let (n, h, w) = (images.dims[0], images.dims[1], images.dims[2]);
    if labels.dims[0] != n {
        return Err(data_err(
            &lname,
            format!(
                "byte 4: {} labels for the {n} images of {iname}",
                labels.dims[0]
            ),
        ));
    }
    if let Some(i) = labels.data.iter().position(|&l| l > 9) {
        return Err(data_err(
            &lname,
            format!(
                "byte {}: label {} is not a class in 0..10",
                8 + i,
                labels.data[i]
            ),
        ));
    }
    let x = Tensor::try_from_writer([n, 1, h, w], |out| {
        for (o, &p) in out.iter_mut().zip(&images.data) {
            *o = T::from_f64(p as f64);
        }
    })
    .map_err(|e| data_err(&iname, e.to_string()))?;
    let y = Tensor::from_vec(labels.data.iter().map(|&l| l as usize).collect(), [n]);
    TensorDataset::new(x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Dataset;

    fn idx_bytes(magic: [u8; 4], dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = magic.to_vec();
        for d in dims {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(data);
        b
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn digits_are_the_uci_set() {
        let d = digits::<f64>().unwrap();
        assert_eq!(d.len(), 1797);
        let y = d.labels();
        let counts: Vec<usize> = (0..10)
            .map(|c| y.iter().filter(|&&l| l == c).count())
            .collect();
        assert_eq!(
            counts,
            vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        let x = d.features().as_slice();
        assert!(x
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
        assert_eq!(&x[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
        assert_eq!(y[..3], [0, 1, 2]);
    }

    #[test]
    fn idx_raw_and_gzip_read_alike_and_bad_files_are_named() {
        let raw = idx_bytes(
            [0, 0, 8, 3],
            &[2, 2, 3],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        );
        let a = idx_from_bytes(&raw, "a").unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(idx_from_bytes(&gzip(&raw), "a.gz").unwrap(), a);
        let bad = |b: &[u8], want: &str| {
            let e = idx_from_bytes(b, "f.idx").unwrap_err().to_string();
            assert!(
                e.starts_with("f.idx: ") && e.contains(want),
                "{e} (want {want})"
            );
        };
        bad(&raw[..raw.len() - 1], "truncated");
        bad(&gzip(&raw[..raw.len() - 1]), "truncated");
        bad(&[raw.clone(), vec![0]].concat(), "past the 12 values");
        bad(&[1, 2, 3, 4], "not an IDX file");
        bad(
            &idx_bytes([0, 0, 0x0d, 1], &[2], &[0; 8]),
            "element type 0x0d",
        );
        bad(&[0, 0, 8, 3, 0, 0], "ends inside its header");
        // 10^12 images claimed: refused before any allocation for them.
        bad(
            &idx_bytes([0, 0, 8, 3], &[u32::MAX, 28, 28], &[0; 16]),
            "truncated",
        );
        bad(
            &gzip(&idx_bytes([0, 0, 8, 3], &[u32::MAX, 28, 28], &[0; 16])),
            "more than a file",
        );
        bad(&[0x1f, 0x8b, 0, 1, 2], "gzip");
    }

    #[test]
    fn mnist_folders_check_counts_and_labels() {
        let dir = std::env::temp_dir().join(format!("tapegrad-mnist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let imgs = idx_bytes(
            [0, 0, 8, 3],
            &[3, 2, 2],
            &[0, 255, 7, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        );
        std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), gzip(&imgs)).unwrap();
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            idx_bytes([0, 0, 8, 1], &[3], &[4, 0, 9]),
        )
        .unwrap();
        let d = mnist::<f32>(&dir, MnistPart::Test).unwrap();
        assert_eq!((d.len(), d.feature_shape()), (3, &[1usize, 2, 2][..]));
        assert_eq!(d.labels(), vec![4, 0, 9]);
        assert_eq!(d.features().get(&[0, 0, 0, 1]), 255.0);
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            idx_bytes([0, 0, 8, 1], &[3], &[4, 10, 9]),
        )
        .unwrap();
        let e = mnist::<f32>(&dir, MnistPart::Test).unwrap_err().to_string();
        assert!(
            e.contains("t10k-labels-idx1-ubyte: byte 9: label 10"),
            "{e}"
        );
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            idx_bytes([0, 0, 8, 1], &[2], &[4, 0]),
        )
        .unwrap();
        let e = mnist::<f32>(&dir, MnistPart::Test).unwrap_err().to_string();
        assert!(e.contains("2 labels for the 3 images"), "{e}");
        let e = mnist::<f32>(&dir, MnistPart::Train)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no train-images-idx3-ubyte or train-images-idx3-ubyte.gz"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn csv_errors_name_the_line() {
        let ok = b"1,2,0\n3,4,1\n\n";
        let d = csv_from_bytes::<f64>(ok, "t.csv", &CsvOptions::default()).unwrap();
        assert_eq!((d.len(), d.labels()), (2, vec![0, 1]));
        let d = csv_from_bytes::<f64>(
            b"y,a\n1,2.5\n",
            "t.csv",
            &CsvOptions::default()
                .with_header(true)
                .with_label(LabelColumn::First),
        )
        .unwrap();
        assert_eq!(d.features().to_vec(), vec![2.5]);
        assert_eq!(
            csv_from_bytes::<f64>(&gzip(ok), "t.csv.gz", &CsvOptions::default())
                .unwrap()
                .len(),
            2
        );
        let bad = |b: &[u8], opts: CsvOptions, want: &str| {
            let e = csv_from_bytes::<f64>(b, "t.csv", &opts)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with("t.csv: ") && e.contains(want),
                "{e} (want {want})"
            );
        };
        bad(
            b"1,2,0\n3,4\n",
            CsvOptions::default(),
            "line 2: 2 fields, the first row has 3",
        );
        bad(
            b"1,2,0\n3,x,1\n",
            CsvOptions::default(),
            "line 2, field 2: `x` is not a number",
        );
        bad(b"1,2,0.5\n", CsvOptions::default(), "line 1: label 0.5");
        bad(b"1,2,-1\n", CsvOptions::default(), "label -1");
        bad(
            b"1,2,7\n",
            CsvOptions::default().with_num_classes(5),
            "label 7 is not a class in 0..5",
        );
        bad(b"\n\n", CsvOptions::default(), "no rows");
        bad(
            b"1\n",
            CsvOptions::default(),
            "needs a label and at least one feature",
        );
        bad(&[0xff, 0xfe], CsvOptions::default(), "not UTF-8");
    }
}

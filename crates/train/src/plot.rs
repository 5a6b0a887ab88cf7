//! Plots of a run, as PNG: loss and accuracy curves (training and validation), the learning
//! rate, and the confusion matrix.
//!
//! Drawn with plotters' bitmap backend into memory, encoded with `png` and written
//! atomically (never a half-written image). Text uses DejaVu Sans, shipped in
//! `crates/train/assets` with its licence and embedded in the binary, so no system font
//! library is needed: [`register_font`] makes it plotters' `sans-serif` (and `serif`,
//! `monospace`) — the plots here call it, and so must any other plotters drawing in a
//! program that links this crate, SVG included.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use tapegrad_core::checkpoint::write_atomic;
use tapegrad_core::{Error, Result};

use crate::history::History;
use crate::metrics::ConfusionMatrix;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// A grid of the first images of a batch `[N, C, H, W]` (C = 1 grey or 3 RGB) as PNG, each
/// image scaled to 0–255 by the batch's own range and enlarged to about 64 pixels, with a
/// one-pixel grey border: what the model sees (augmented samples, say).
///
/// # Errors
/// [`Error::Shape`] if the batch is not `[N, 1 or 3, H, W]`.
pub fn image_grid_png<T: tapegrad_core::Float>(
    images: &tapegrad_core::Tensor<T>,
    max_images: usize,
) -> Result<Vec<u8>> {
    let s = images.dims();
    if s.len() != 4 || !(s[1] == 1 || s[1] == 3) || s[0] == 0 || s[2] == 0 || s[3] == 0 {
        return Err(Error::shape(
            "image_grid_png",
            &[s],
            "a batch of images [N, 1 or 3, H, W] with N, H, W ≥ 1",
        ));
    }
    let (n, c, h, w) = (s[0].min(max_images.max(1)), s[1], s[2], s[3]);
    let v = images.as_slice();
    let used = &v[..n * c * h * w];
    let (lo, hi) = used
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            let x = x.as_f64();
            if x.is_finite() {
                (lo.min(x), hi.max(x))
            } else {
                (lo, hi)
            }
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let scale = (64 / h.max(w)).clamp(1, 8);
    let cols = (n as f64).sqrt().ceil() as usize;
    let rows = n.div_ceil(cols);
    let (cw, ch) = (w * scale + 1, h * scale + 1);
    let (gw, gh) = (cols * cw + 1, rows * ch + 1);
    let mut px = vec![128u8; gw * gh * 3];
    for i in 0..n {
        let (ox, oy) = ((i % cols) * cw + 1, (i / cols) * ch + 1);
        for y in 0..h * scale {
            for x in 0..w * scale {
                let at = |ch_: usize| {
                    let val = v[((i * c + ch_) * h + y / scale) * w + x / scale].as_f64();
                    (((val - lo) / span).clamp(0.0, 1.0) * 255.0).round() as u8
                };
                let o = ((oy + y) * gw + ox + x) * 3;
                let rgb = if c == 1 {
                    [at(0); 3]
                } else {
                    [at(0), at(1), at(2)]
                };
                px[o..o + 3].copy_from_slice(&rgb);
            }
        }
    }
    encode_png(&px, (gw as u32, gh as u32), png::ColorType::Rgb).map_err(|e| Error::Io {
        path: "<image grid>".into(),
        message: e.to_string(),
    })
}

/// Registers the bundled DejaVu Sans as plotters' `sans-serif`, `serif` and `monospace`
/// fonts (once per process; later calls do nothing).
pub fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            // The font is a valid TrueType file (checked by the test below), so
            // registration cannot fail; if it did, text would be missing from the plots
            // and drawing them would return the error.
            let _ = plotters::style::register_font(family, FontStyle::Normal, FONT);
        }
    });
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: format!("cannot draw the plot: {e}"),
    }
}

/// Draws into a `w × h` RGB image with `draw` and returns it as PNG (`path` names it in
/// errors).
fn render_png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    register_font();
    let mut rgb = vec![255u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        draw(&root).map_err(|e| plot_error(path, e))?;
        root.present().map_err(|e| plot_error(path, e))?;
    }
    encode_png(&rgb, (w, h), png::ColorType::Rgb).map_err(|e| plot_error(path, e))
}

/// `pixels` (rows of `w` pixels, 8 bits per channel) as a PNG file's bytes.
pub(crate) fn encode_png(
    pixels: &[u8],
    (w, h): (u32, u32),
    color: png::ColorType,
) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut enc = png::Encoder::new(&mut bytes, w, h);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    // Plots are mostly flat colour: the adaptive filter and the best deflate level make
    // them several times smaller, for a few milliseconds more.
    enc.set_compression(png::Compression::Best);
    enc.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = enc.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(bytes)
}

/// [`render_png`], written to `path` atomically.
fn render(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    write_atomic(path, &render_png(path, size, draw)?)
}

/// The white canvas and titled cartesian frame every line plot and histogram here shares.
type Frame<'a, 'b> =
    ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn frame<'a, 'b>(
    root: &'a DrawingArea<BitMapBackend<'b>, Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> std::result::Result<Frame<'a, 'b>, String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)
        .map_err(e)
}

/// Draws a custom plot with plotters into a `w × h` image and writes it to `path` as PNG,
/// atomically, with the bundled font registered (so text needs no system font). `draw`
/// gets the whole drawing area (not filled); it returns a message on failure.
///
/// ```
/// use plotters::prelude::*;
/// let path = std::env::temp_dir().join(format!("tapegrad-draw-{}.png", std::process::id()));
/// tapegrad_train::plot::draw_png(&path, (200, 100), |root| {
///     root.fill(&WHITE).map_err(|e| e.to_string())?;
///     root.draw(&Circle::new((100, 50), 20, RED.filled())).map_err(|e| e.to_string())
/// })
/// .unwrap();
/// assert!(std::fs::read(&path).unwrap().starts_with(b"\x89PNG"));
/// # std::fs::remove_file(&path).unwrap();
/// ```
///
/// # Errors
/// [`Error::Io`] naming the file if `draw` fails or the file cannot be written.
pub fn draw_png(
    path: impl AsRef<Path>,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<()> {
    render(path.as_ref(), size, draw)
}

/// The range of the finite values, padded by 5% (a unit around a single value).
fn value_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        lo.abs().max(1.0) * 0.05
    };
    Some((lo - pad, hi + pad))
}

/// A named, coloured line of `(epoch, value)` points.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

/// A line chart of one or more series over epochs.
fn line_chart(path: &Path, title: &str, y_label: &str, series: &[Series<'_>]) -> Result<()> {
    xy_chart(path, title, "epoch", y_label, series)
}

/// The colours of [`line_plot_png`]'s series, in order (matplotlib's first ten).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Writes a line plot of named `(x, y)` series to `path` as PNG, atomically (non-finite
/// points are left out; for a logarithmic axis, plot `log10` of the values and say so in
/// the label). The x axis runs from the smallest x (at most 1) to the largest.
///
/// # Errors
/// [`Error::Io`] if the file cannot be drawn or written.
pub fn line_plot_png(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, Vec<(f64, f64)>)],
) -> Result<()> {
    let coloured: Vec<Series<'_>> = series
        .iter()
        .enumerate()
        .map(|(i, (name, pts))| (*name, PALETTE[i % PALETTE.len()], pts.clone()))
        .collect();
    xy_chart(path.as_ref(), title, x_label, y_label, &coloured)
}

/// A line chart of one or more series.
fn xy_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series<'_>],
) -> Result<()> {
    let xs = || {
        series
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|p| p.0))
    };
    let first = xs().filter(|x| x.is_finite()).fold(1.0f64, f64::min);
    let last = xs().filter(|x| x.is_finite()).fold(1.0f64, f64::max);
    let range = value_range(
        series
            .iter()
            .flat_map(|(_, _, pts)| pts.iter().map(|p| p.1)),
    )
    .unwrap_or((0.0, 1.0));
    render(path, (800, 500), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut chart = frame(root, title, first..last.max(first + 1.0), range.0..range.1)?;
        // Whole-number labels: at most one per unit of x, so a short axis (five seeds, ten
        // layers) is not labelled 1, 2, 2, 3 by rounding.
        let x_labels = ((last - first).round() as usize + 1).clamp(2, 11);
        chart
            .configure_mesh()
            .x_desc(x_label)
            .x_labels(x_labels)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_desc(y_label)
            .label_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        for (name, colour, pts) in series {
            let finite: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.1.is_finite()).collect();
            if finite.is_empty() {
                continue;
            }
            let c = *colour;
            chart
                .draw_series(LineSeries::new(finite.clone(), c.stroke_width(2)))
                .map_err(e)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(2))
                });
            if finite.len() < 30 {
                chart
                    .draw_series(finite.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(e)?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        Ok(())
    })
}

/// Writes a histogram of `values` (the finite ones, in `bins` equal-width bins over their
/// range) to `path` as PNG, atomically: per-example gradient norms, weights, activations.
///
/// # Errors
/// [`Error::Argument`] if `bins` is 0 or no value is finite; [`Error::Io`] if the file cannot
/// be drawn or written.
pub fn histogram_png(
    path: impl AsRef<Path>,
    title: &str,
    x_label: &str,
    values: &[f64],
    bins: usize,
) -> Result<()> {
    let path = path.as_ref();
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let Some((lo, hi)) = value_range(finite.iter().copied()) else {
        return Err(Error::argument("histogram_png", "no finite value to plot"));
    };
    if bins == 0 {
        return Err(Error::argument(
            "histogram_png",
            "the number of bins must be at least 1",
        ));
    }
    let width = (hi - lo) / bins as f64;
    let counts = bin_counts(&finite, lo, hi, bins);
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
    render(path, (800, 500), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        let mut chart = frame(root, title, lo..hi, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("count")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(e)?;
        chart.draw_series(bars(&counts, lo, width)).map_err(e)?;
        Ok(())
    })
}

/// The bars of a histogram whose first bin starts at `lo`, each `width` wide.
fn bars(counts: &[usize], lo: f64, width: f64) -> impl Iterator<Item = Rectangle<(f64, f64)>> + '_ {
    counts.iter().enumerate().map(move |(i, &c)| {
        let x0 = lo + i as f64 * width;
        Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], TRAIN.filled())
    })
}

/// How many of `values` fall in each of `bins` equal-width bins over `[lo, hi]` (values
/// outside the range, and non-finite ones, are not counted; `hi` falls in the last bin).
fn bin_counts(values: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values {
        if v.is_finite() && v >= lo && v <= hi {
            counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
        }
    }
    counts
}

/// Writes a grid of histograms to `path` as PNG, atomically: one panel per `(title,
/// values)`, `cols` panels to a row, every panel binned over the same range (`range`, or
/// the finite values' range over all panels) in `bins` bins, each panel's count axis
/// scaled to its own tallest bin — the layer-by-layer activation histograms of an
/// initialisation experiment.
///
/// # Errors
/// [`Error::Argument`] if there is no panel, `cols` or `bins` is 0, or the range is empty
/// (no finite value, or `range` not increasing); [`Error::Io`] if the file cannot be drawn
/// or written.
pub fn histogram_grid_png(
    path: impl AsRef<Path>,
    title: &str,
    panels: &[(&str, &[f64])],
    cols: usize,
    range: Option<(f64, f64)>,
    bins: usize,
) -> Result<()> {
    let path = path.as_ref();
    let bad = |why: &str| Err(Error::argument("histogram_grid_png", why));
    if panels.is_empty() || cols == 0 || bins == 0 {
        return bad("it needs at least one panel, one column and one bin");
    }
    let Some((lo, hi)) =
        range.or_else(|| value_range(panels.iter().flat_map(|(_, v)| v.iter().copied())))
    else {
        return bad("no finite value to plot");
    };
    if !(lo < hi && lo.is_finite() && hi.is_finite()) {
        return bad("the range must be finite and increasing");
    }
    let counts: Vec<Vec<usize>> = panels
        .iter()
        .map(|(_, v)| bin_counts(v, lo, hi, bins))
        .collect();
    let rows = panels.len().div_ceil(cols);
    let (pw, ph, head) = (220u32, 160u32, 50u32);
    let size = (pw * cols as u32, head + ph * rows as u32);
    let width = (hi - lo) / bins as f64;
    render(path, size, |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (top, body) = root.split_vertically(head);
        top.titled(title, ("sans-serif", 24)).map_err(e)?;
        let cells = body.split_evenly((rows, cols));
        for ((cell, (name, _)), counts) in cells.iter().zip(panels).zip(&counts) {
            let peak = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.05;
            let mut chart = ChartBuilder::on(cell)
                .caption(*name, ("sans-serif", 14))
                .margin(6)
                .margin_right(14)
                .x_label_area_size(22)
                .y_label_area_size(8)
                .build_cartesian_2d(lo..hi, 0.0..peak)
                .map_err(e)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .disable_y_axis()
                .x_labels(3)
                .x_label_formatter(&|x| format!("{x:.1}"))
                .label_style(("sans-serif", 11))
                .light_line_style(RGBColor(240, 240, 240))
                .draw()
                .map_err(e)?;
            chart.draw_series(bars(counts, lo, width)).map_err(e)?;
        }
        Ok(())
    })
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const VAL: RGBColor = RGBColor(255, 127, 14);

/// Writes `loss.png`, `accuracy.png` and `lr.png` of `history` into `dir` (created if
/// needed) and returns their paths.
///
/// # Errors
/// [`Error::Io`] naming the file that cannot be drawn or written.
pub fn plot_history(history: &History, dir: impl AsRef<Path>) -> Result<Vec<PathBuf>> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let pts = |f: fn(&crate::history::EpochRecord) -> f64| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .map(|r| (r.epoch as f64, f(r)))
            .collect()
    };
    let (loss, acc, lr) = (
        dir.join("loss.png"),
        dir.join("accuracy.png"),
        dir.join("lr.png"),
    );
    line_chart(
        &loss,
        "Loss per sample",
        "cross-entropy",
        &[
            ("train", TRAIN, pts(|r| r.train_loss)),
            ("validation", VAL, pts(|r| r.val_loss)),
        ],
    )?;
    line_chart(
        &acc,
        "Accuracy",
        "accuracy (%)",
        &[
            ("train", TRAIN, pts(|r| 100.0 * r.train_accuracy)),
            ("validation", VAL, pts(|r| 100.0 * r.val_accuracy)),
        ],
    )?;
    line_chart(
        &lr,
        "Learning rate (last step of each epoch)",
        "learning rate",
        &[("lr", TRAIN, pts(|r| r.lr))],
    )?;
    Ok(vec![loss, acc, lr])
}

/// Writes the confusion matrix as a PNG heat map: rows are true classes, columns
/// predictions, each cell's count printed and its shade the fraction of its row (the
/// class's recall on the diagonal). `names` labels the classes (their indices without).
///
/// # Errors
/// [`Error::Io`] naming the file that cannot be drawn or written.
pub fn plot_confusion(
    cm: &ConfusionMatrix,
    names: Option<&[String]>,
    title: &str,
    path: impl AsRef<Path>,
) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, &confusion_png_named(cm, names, title, path)?)
}

/// [`plot_confusion`]'s image as PNG bytes (for TensorBoard).
///
/// # Errors
/// [`Error::Io`] if it cannot be drawn.
pub fn confusion_png(
    cm: &ConfusionMatrix,
    names: Option<&[String]>,
    title: &str,
) -> Result<Vec<u8>> {
    confusion_png_named(cm, names, title, Path::new("<confusion matrix>"))
}

fn confusion_png_named(
    cm: &ConfusionMatrix,
    names: Option<&[String]>,
    title: &str,
    path: &Path,
) -> Result<Vec<u8>> {
    let c = cm.classes();
    let names: Vec<String> = match names {
        Some(n) if n.len() == c => n.to_vec(),
        _ => (0..c).map(|i| i.to_string()).collect(),
    };
    let label_w = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as i32 * 9 + 20;
    let cell = (560 / c.max(1) as i32).clamp(24, 64);
    let (left, top) = (label_w + 40, 70);
    let side = cell * c as i32;
    let (w, h) = ((left + side + 30) as u32, (top + side + 70) as u32);
    render_png(path, (w, h), |root| {
        let e = |e: DrawingAreaErrorKind<_>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let centre = Pos::new(HPos::Center, VPos::Center);
        let font = |size: i32| TextStyle::from(("sans-serif", size).into_font()).color(&BLACK);
        root.draw(&Text::new(
            title.to_string(),
            (w as i32 / 2, 25),
            font(22).pos(centre),
        ))
        .map_err(e)?;
        let counts = cm.counts();
        let cell_font = (cell / 3).clamp(9, 16);
        for (t, row) in counts.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (p, &n) in row.iter().enumerate() {
                let frac = if total == 0 {
                    0.0
                } else {
                    n as f64 / total as f64
                };
                // White to a deep blue.
                let mix = |a: f64, b: f64| (a + (b - a) * frac).round() as u8;
                let shade = RGBColor(mix(247.0, 8.0), mix(251.0, 48.0), mix(255.0, 107.0));
                let (x, y) = (left + p as i32 * cell, top + t as i32 * cell);
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    shade.filled(),
                ))
                .map_err(e)?;
                let ink = if frac > 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(
                    n.to_string(),
                    (x + cell / 2, y + cell / 2),
                    font(cell_font).color(&ink).pos(centre),
                ))
                .map_err(e)?;
            }
        }
        root.draw(&Rectangle::new(
            [(left, top), (left + side, top + side)],
            BLACK.stroke_width(1),
        ))
        .map_err(e)?;
        for (i, name) in names.iter().enumerate() {
            let mid = i as i32 * cell + cell / 2;
            let right = Pos::new(HPos::Right, VPos::Center);
            root.draw(&Text::new(
                name.clone(),
                (left - 6, top + mid),
                font(14).pos(right),
            ))
            .map_err(e)?;
            let below = Pos::new(HPos::Center, VPos::Top);
            root.draw(&Text::new(
                name.clone(),
                (left + mid, top + side + 6),
                font(14).pos(below),
            ))
            .map_err(e)?;
        }
        root.draw(&Text::new(
            "predicted".to_string(),
            (left + side / 2, top + side + 40),
            font(16).pos(centre),
        ))
        .map_err(e)?;
        root.draw(&Text::new(
            "true".to_string(),
            (14, top + side / 2),
            font(16).pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(e)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::EpochRecord;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tapegrad-plot-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn png_size(bytes: &[u8]) -> (u32, u32) {
        let dec = png::Decoder::new(bytes);
        let reader = dec.read_info().unwrap();
        let info = reader.info();
        (info.width, info.height)
    }

    #[test]
    fn the_font_is_valid() {
        // Registration validates the file; a second family reuses it.
        assert!(plotters::style::register_font("tapegrad-test", FontStyle::Normal, FONT).is_ok());
    }

    #[test]
    fn history_plots_are_pngs_with_text() {
        let dir = tmp("history");
        let h = History {
            epochs: (1..=5)
                .map(|e| EpochRecord {
                    epoch: e,
                    train_loss: 1.0 / e as f64,
                    train_accuracy: 0.5 + 0.08 * e as f64,
                    val_loss: if e == 3 { f64::NAN } else { 1.2 / e as f64 },
                    val_accuracy: 0.5 + 0.07 * e as f64,
                    lr: 0.01 * (6 - e) as f64,
                    train_seconds: 0.1,
                    eval_seconds: 0.01,
                })
                .collect(),
        };
        let files = plot_history(&h, &dir).unwrap();
        assert_eq!(files.len(), 3);
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(png_size(&bytes), (800, 500));
            // Text and lines were drawn: far from a blank image.
            let dec = png::Decoder::new(&bytes[..]);
            let mut reader = dec.read_info().unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            reader.next_frame(&mut buf).unwrap();
            let dark = buf.chunks(3).filter(|p| p.iter().all(|&v| v < 100)).count();
            assert!(dark > 2000, "{}: {dark} dark pixels", f.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn histogram_grid_is_a_png_and_refuses_an_empty_range() {
        let dir = tmp("grid");
        let a: Vec<f64> = (0..1000).map(|i| (i as f64 / 100.0).sin()).collect();
        let b = vec![0.0; 10];
        let path = dir.join("grid.png");
        histogram_grid_png(&path, "two layers", &[("a", &a), ("b", &b)], 2, None, 20).unwrap();
        let png = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&png), (440, 210));
        let none: &[f64] = &[f64::NAN];
        assert!(histogram_grid_png(&path, "t", &[("n", none)], 1, None, 10).is_err());
        assert!(histogram_grid_png(&path, "t", &[("a", &a)], 1, Some((1.0, 1.0)), 10).is_err());
        assert!(histogram_grid_png(&path, "t", &[], 1, None, 10).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn confusion_plot_and_a_bad_path() {
        let dir = tmp("confusion");
        let cm = ConfusionMatrix::new(&[0, 1, 1, 2, 2, 2], &[0, 1, 2, 2, 2, 1], 3);
        let path = dir.join("confusion.png");
        plot_confusion(&cm, None, "test", &path).unwrap();
        let (w, h) = png_size(&std::fs::read(&path).unwrap());
        assert!(w > 200 && h > 200);
        let bad = dir.join("missing-dir").join("c.png");
        let err = plot_confusion(&cm, None, "test", &bad).unwrap_err();
        assert!(err.to_string().contains("missing-dir"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

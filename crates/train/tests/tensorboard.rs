//! Event files: what is written reads back identically; a run killed mid-write keeps its
//! records; damage is an error naming the file and the offset; and TensorBoard itself reads
//! the files (its `EventAccumulator`, and its HTTP data API from a server on 127.0.0.1),
//! when it is installed (`.ci/run` installs it in a virtual environment).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tapegrad_train::plot::plot_confusion;
use tapegrad_train::tensorboard::{
    events_from_bytes, read_events, read_logdir, Data, HParam, Histogram, SummaryWriter, What,
};
use tapegrad_train::ConfusionMatrix;

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad-tb-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A confusion-matrix PNG of `w × h`-ish pixels.
fn png(dir: &Path) -> Vec<u8> {
    let cm = ConfusionMatrix::new(&[0, 1, 1, 0], &[0, 1, 0, 0], 2);
    let p = dir.join("cm.png");
    plot_confusion(&cm, None, "confusion", &p).unwrap();
    std::fs::read(p).unwrap()
}

/// A run's worth of every kind of summary: 20 steps of scalars, histograms every 5 steps,
/// an image, text and hyperparameters.
fn write_run(dir: &Path) -> (PathBuf, Vec<u8>) {
    let image = png(dir);
    let mut w = SummaryWriter::new(dir.join("run1")).unwrap();
    for step in 0..20 {
        let loss = 2.0 / (1.0 + step as f64);
        w.add_scalars(&[("train/loss", loss), ("train/lr", 1e-3)], step)
            .unwrap();
        if step % 5 == 0 {
            let values = (0..1000).map(|i| ((i * 37) % 101) as f64 / 100.0 - 0.5 + step as f64);
            w.add_histogram_of("weights/fc1", values, step).unwrap();
        }
    }
    w.add_image_png("plots/confusion", &image, 19).unwrap();
    w.add_text("config", "**lr** = 1e-3, batch 64", 0).unwrap();
    w.add_hparams(
        &[
            ("lr", HParam::from(1e-3)),
            ("optimizer", "adamw".into()),
            ("augment", false.into()),
        ],
        &[("hparams/test_accuracy", 0.975)],
        19,
    )
    .unwrap();
    w.flush().unwrap();
    (w.path().to_path_buf(), image)
}

#[test]
fn everything_written_reads_back() {
    let dir = tmp("roundtrip");
    let (path, image) = write_run(&dir);
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    let f = read_events(&path).unwrap();
    assert!(f.truncated.is_none());
    assert_eq!(f.events[0].what, What::FileVersion("brain.Event:2".into()));
    let loss = f.scalars("train/loss");
    assert_eq!(loss.len(), 20);
    for (step, v) in &loss {
        assert_eq!(*v, f64::from((2.0 / (1.0 + *step as f64)) as f32));
    }
    let h = f.histograms("weights/fc1");
    assert_eq!(
        h.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![0, 5, 10, 15]
    );
    assert_eq!(h[0].1.bucket.iter().sum::<f64>(), 1000.0);
    assert_eq!(h[0].1.bucket.len(), 30);
    let img = &f.images("plots/confusion")[0].1;
    assert_eq!(img.encoded, image);
    assert!(img.width > 100 && img.height > 100 && img.colorspace == 3);
    assert_eq!(
        f.texts("config"),
        vec![(0, "**lr** = 1e-3, batch 64".to_string())]
    );
    let tags = f.tags();
    for t in [
        "_hparams_/experiment",
        "_hparams_/session_start_info",
        "_hparams_/session_end_info",
    ] {
        assert!(tags.contains(t), "{t}");
    }
    assert_eq!(
        f.scalars("hparams/test_accuracy"),
        vec![(19, f64::from(0.975f32))]
    );
    // The whole log directory, and the file re-encoded event by event, byte for byte.
    assert_eq!(read_logdir(&dir).unwrap(), vec![f.clone()]);
    let mut again = Vec::new();
    for e in &f.events {
        let data = e.encode();
        let len = (data.len() as u64).to_le_bytes();
        again.extend_from_slice(&len);
        again.extend_from_slice(&[0; 4]);
        again.extend_from_slice(&data);
        again.extend_from_slice(&[0; 4]);
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(again.len(), bytes.len());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_run_killed_mid_write_keeps_its_records_and_damage_is_named() {
    let dir = tmp("damage");
    let (path, _) = write_run(&dir);
    let bytes = std::fs::read(&path).unwrap();
    let whole = events_from_bytes(&bytes, &path).unwrap();
    let n = whole.events.len();
    // Cut anywhere inside the last record: every earlier event is kept, the cut reported.
    let last_len = whole.events.last().unwrap().encode().len() + 16;
    for cut in (bytes.len() - last_len + 1..bytes.len()).step_by(7) {
        let f = events_from_bytes(&bytes[..cut], &path).unwrap();
        assert_eq!(f.events, whole.events[..n - 1], "cut at {cut}");
        let why = f.truncated.unwrap();
        assert!(
            why.starts_with(&format!("byte {}", bytes.len() - last_len)),
            "{why}"
        );
    }
    // A flipped byte anywhere: an error naming the file and an offset, never a panic or a
    // wrong event.
    for at in (0..bytes.len()).step_by(13) {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        let e = events_from_bytes(&b, &path).unwrap_err().to_string();
        assert!(
            e.contains(path.to_str().unwrap()) && e.contains("byte "),
            "{e}"
        );
    }
    let e = read_events(dir.join("missing")).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn histograms_keep_every_value() {
    let h = Histogram::of((0..100).map(f64::from), 10);
    assert_eq!(h.bucket.iter().sum::<f64>(), 100.0);
    assert_eq!((h.min, h.max, h.sum), (0.0, 99.0, 4950.0));
    assert!(matches!(Data::Histogram(h), Data::Histogram(_)));
}

/// The Python with TensorBoard: `TAPEGRAD_TENSORBOARD_PYTHON`, or the virtual environment
/// `.ci/run` makes.
fn tensorboard_python() -> PathBuf {
    std::env::var_os("TAPEGRAD_TENSORBOARD_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tmp =
                std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
            tmp.join("tapegrad-tensorboard-venv/bin/python")
        })
}

const ACCUMULATE: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0, "images": 0, "tensors": 0})
acc.Reload()
tags = acc.Tags()
loss = [(e.step, e.value) for e in acc.Scalars("train/loss")]
hist = acc.Histograms("weights/fc1")
img = acc.Images("plots/confusion")[0]
text = acc.Tensors("config")[0].tensor_proto.string_val[0].decode()
print(json.dumps({
    "scalars": sorted(tags["scalars"]), "histograms": sorted(tags["histograms"]),
    "images": sorted(tags["images"]), "tensors": sorted(tags["tensors"]),
    "loss": loss, "hist_steps": [h.step for h in hist],
    "hist_counts": [sum(h.histogram_value.bucket) for h in hist],
    "hist_buckets": [len(h.histogram_value.bucket) for h in hist],
    "image": [img.width, img.height], "text": text,
}))
"#;

#[test]
#[ignore = "needs tensorboard"]
fn tensorboard_reads_our_files() {
    let py = tensorboard_python();
    let dir = tmp("accumulator");
    let (_, image) = write_run(&dir);
    let out = Command::new(&py)
        .args(["-c", ACCUMULATE])
        .arg(dir.join("run1"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", py.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["scalars"],
        serde_json::json!(["hparams/test_accuracy", "train/loss", "train/lr"])
    );
    assert_eq!(v["histograms"], serde_json::json!(["weights/fc1"]));
    assert_eq!(v["images"], serde_json::json!(["plots/confusion"]));
    assert!(v["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == "config"));
    let loss = v["loss"].as_array().unwrap();
    assert_eq!(loss.len(), 20);
    for p in loss {
        let (step, value) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        assert_eq!(value, f64::from((2.0 / (1.0 + step)) as f32));
    }
    assert_eq!(v["hist_steps"], serde_json::json!([0, 5, 10, 15]));
    assert_eq!(
        v["hist_counts"],
        serde_json::json!([1000.0, 1000.0, 1000.0, 1000.0])
    );
    assert_eq!(v["hist_buckets"], serde_json::json!([30, 30, 30, 30]));
    let (w, h) = {
        let be = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap());
        (be(&image[16..20]), be(&image[20..24]))
    };
    assert_eq!(v["image"], serde_json::json!([w, h]));
    assert_eq!(v["text"], "**lr** = 1e-3, batch 64");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One HTTP request on 127.0.0.1 (the server speaks HTTP/1.1; we ask it to close): a GET,
/// or a POST of a JSON body.
fn http(port: u16, path: &str, json: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let method = if json.is_some() { "POST" } else { "GET" };
    let body = json.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

#[test]
#[ignore = "needs tensorboard"]
fn a_tensorboard_server_serves_our_scalars() {
    let py = tensorboard_python();
    let dir = tmp("server");
    write_run(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tb = py.parent().unwrap().join("tensorboard");
    let mut server = Command::new(&tb)
        .args(["--logdir"])
        .arg(&dir)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--reload_interval",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", tb.display()));
    // Keep its log for a failure message.
    let log = server.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        BufReader::new(log)
            .lines()
            .map_while(|l| l.ok())
            .collect::<Vec<_>>()
    });
    let mut found = None;
    for _ in 0..120 {
        std::thread::sleep(std::time::Duration::from_millis(500));
        if let Some((200, body)) = http(
            port,
            "/data/plugin/scalars/scalars?run=run1&tag=train%2Floss",
            None,
        ) {
            let series: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            if series.as_array().is_some_and(|a| a.len() == 20) {
                found = Some(series);
                break;
            }
        }
    }
    // The HParams dashboard's table: the run as a session with its values and metric.
    let groups = http(
        port,
        "/data/plugin/hparams/session_groups",
        Some(
            r#"{"experimentName":"","allowedStatuses":["STATUS_SUCCESS"],"colParams":[],"startIndex":0,"sliceSize":10}"#,
        ),
    );
    let _ = server.kill();
    let _ = server.wait();
    let log = log.join().unwrap_or_default();
    let series =
        found.unwrap_or_else(|| panic!("no series from the server; its log:\n{}", log.join("\n")));
    let (status, groups) = groups.expect("an answer from the hparams plugin");
    assert_eq!(status, 200, "{groups}");
    let groups: serde_json::Value = serde_json::from_str(&groups).unwrap();
    let g = &groups["sessionGroups"][0];
    assert_eq!(
        g["hparams"],
        serde_json::json!({"lr": 0.001, "optimizer": "adamw", "augment": false})
    );
    assert_eq!(g["metricValues"][0]["name"]["tag"], "hparams/test_accuracy");
    assert_eq!(g["metricValues"][0]["value"], f64::from(0.975f32));
    eprintln!(
        "the server returned {} points of train/loss",
        series.as_array().unwrap().len()
    );
    // [[wall_time, step, value], ...]
    for p in series.as_array().unwrap() {
        let (step, value) = (p[1].as_f64().unwrap(), p[2].as_f64().unwrap());
        assert_eq!(value, f64::from((2.0 / (1.0 + step)) as f32));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

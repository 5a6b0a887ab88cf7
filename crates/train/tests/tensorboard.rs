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

/// Runs `script` with TensorBoard's Python on `arg`; its standard output, as JSON.
fn run_python(script: &str, arg: &Path) -> serde_json::Value {
    let py = tensorboard_python();
    let out = Command::new(&py)
        .args(["-c", script])
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", py.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
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
    let dir = tmp("accumulator");
    let (_, image) = write_run(&dir);
    let v = run_python(ACCUMULATE, &dir.join("run1"));
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

// ---- the Trainer's callback ----

use tapegrad_core::checkpoint::Checkpoint;
use tapegrad_core::{seeded_rng, ParamStore, Tensor};
use tapegrad_data::{DataLoader, TensorDataset};
use tapegrad_nn::{Init, Linear, Relu, Sequential};
use tapegrad_optim::{Adam, AdamConfig, Constant};
use tapegrad_train::tensorboard::{TensorBoard, TensorBoardLogger};
use tapegrad_train::{Callback, Checkpointer, Control, EpochEnd, Monitor, Progress, StepEnd};
use tapegrad_train::{TrainConfig, Trainer};

/// 200 points of two classes (is x₀ + x₁ positive?): 7 batches of 32 per epoch.
fn two_classes() -> TensorDataset<f64> {
    let x = Tensor::<f64>::rand_normal([200, 2], 0.0, 1.0, &mut seeded_rng(0));
    let s = x.as_slice().to_vec();
    let y = Tensor::from_fn([200], |i| usize::from(s[2 * i] + s[2 * i + 1] > 0.0));
    TensorDataset::new(x, y).unwrap()
}

fn two_layers(store: &mut ParamStore<f64>) -> Sequential<f64> {
    let mut rng = seeded_rng(0);
    Sequential::new()
        .push(Linear::new(store, "0", 2, 16, Init::HeNormal, &mut rng))
        .push(Relu)
        .push(Linear::new(store, "2", 16, 2, Init::HeNormal, &mut rng))
}

/// Each step's number, loss and gradient global norm.
type Steps = Vec<(usize, f64, f64)>;

/// Keeps every step's loss and gradient norm; panics at `crash` (a killed process).
#[derive(Clone, Default)]
struct Watch {
    steps: std::rc::Rc<std::cell::RefCell<Steps>>,
    /// The parameters after every 7th step (the histogram steps).
    stores: std::rc::Rc<std::cell::RefCell<Vec<ParamStore<f64>>>>,
    crash: Option<usize>,
}

impl Callback<f64> for Watch {
    fn name(&self) -> &str {
        "watch"
    }
    fn on_step(&mut self, s: &mut StepEnd<'_, f64>) -> Control {
        if self.crash == Some(s.step) {
            panic!("killed at step {}", s.step);
        }
        let sq: f64 = s
            .grads
            .params()
            .map(|(_, g)| g.as_slice().iter().map(|v| v * v).sum::<f64>())
            .sum();
        self.steps.borrow_mut().push((s.step, s.loss, sq.sqrt()));
        if s.step % 7 == 0 {
            self.stores.borrow_mut().push(s.store.clone());
        }
        Control::Continue
    }
    fn on_epoch_end(&mut self, _: &mut EpochEnd<'_, f64>) -> tapegrad_core::Result<Control> {
        Ok(Control::Continue)
    }
    fn save_state(&self, _: &mut Checkpoint, _: &str) {}
    fn load_state(&mut self, _: &Checkpoint, _: &str) -> tapegrad_core::Result<()> {
        Ok(())
    }
}

/// Trains 3 epochs (21 steps) logging to `run`: scalars every 5 steps, histograms every 7,
/// activations on the first 50 points; checkpoints in `ckpt` at every epoch's end. Returns
/// the steps the watcher saw (the panic of `crash` caught) and the parameters after steps
/// 7, 14 and 21.
fn train_logged(
    run: &Path,
    ckpt: &Path,
    crash: Option<usize>,
    resume: bool,
) -> (Steps, Vec<ParamStore<f64>>) {
    let data = two_classes();
    let loader = DataLoader::new(&data, 32).with_shuffle(1);
    let mut store = ParamStore::new();
    let model = two_layers(&mut store);
    let probe = data.subset(&(0..50).collect::<Vec<_>>()).features().clone();
    let log = TensorBoardLogger::new(run).unwrap();
    let watch = Watch {
        crash,
        ..Watch::default()
    };
    let config = TrainConfig {
        epochs: 3,
        seed: 1,
        progress: Progress::Quiet,
        ..Default::default()
    };
    let mut trainer = Trainer::new(&model, Adam::new(AdamConfig::default()), Constant(1e-2))
        .with_config(config)
        .with_callback(Checkpointer::new(ckpt, Monitor::ValLoss, 0))
        .with_callback(
            TensorBoard::new(&log)
                .with_scalars_every(5)
                .with_histograms_every(7)
                .with_activations(&model, probe),
        )
        .with_callback(watch.clone());
    if resume {
        trainer.resume(&mut store, ckpt.join("last.ckpt")).unwrap();
    }
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        trainer.fit(&mut store, &loader, &loader).unwrap();
    }));
    assert_eq!(run.is_err(), crash.is_some());
    drop(trainer);
    let steps = watch.steps.borrow().clone();
    let stores = watch.stores.borrow().clone();
    (steps, stores)
}

/// The event values are `f32`.
fn close(a: f64, b: f64) -> bool {
    a == f64::from(b as f32)
}

#[test]
fn the_callback_logs_a_run() {
    let dir = tmp("callback");
    let (steps, stores) = train_logged(&dir.join("run"), &dir.join("ckpt"), None, false);
    assert_eq!(steps.len(), 21);
    let files = read_logdir(dir.join("run")).unwrap();
    assert_eq!(files.len(), 1);
    let f = &files[0];

    let loss = f.scalars("step/loss");
    assert_eq!(
        loss.iter().map(|p| p.0).collect::<Vec<_>>(),
        [5, 10, 15, 20]
    );
    for &(step, value) in &loss {
        let (_, l, norm) = steps[step as usize - 1];
        assert!(close(value, l), "step {step}: {value} vs {l}");
        let global = f.scalars("grad_norm/global");
        let g = global.iter().find(|p| p.0 == step).unwrap().1;
        assert!(close(g, norm), "step {step}: global norm {g} vs {norm}");
        // The layers' norms make up the global one.
        let layers: f64 = ["grad_norm/0", "grad_norm/2"]
            .iter()
            .map(|t| f.scalars(t).iter().find(|p| p.0 == step).unwrap().1.powi(2))
            .sum();
        assert!((layers.sqrt() - g).abs() < 1e-6 * g, "{layers} vs {g}");
    }
    assert_eq!(f.scalars("step/lr")[0].1, f64::from(1e-2f32));

    // Histograms at steps 7, 14, 21: every parameter, its gradient, and the activations
    // of each layer on the 50 probe points.
    for (tag, n) in [
        ("weights/0.weight", 32.0),
        ("weights/0.bias", 16.0),
        ("weights/2.weight", 32.0),
        ("grads/2.bias", 2.0),
    ] {
        let h = f.histograms(tag);
        assert_eq!(
            h.iter().map(|p| p.0).collect::<Vec<_>>(),
            [7, 14, 21],
            "{tag}"
        );
        assert!(
            h.iter()
                .all(|p| p.1.num == n && p.1.bucket.iter().sum::<f64>() == n),
            "{tag}"
        );
    }
    // Each layer's output on the 50 probe points, from the parameters of that step.
    let probe = two_classes()
        .subset(&(0..50).collect::<Vec<_>>())
        .features()
        .clone();
    let acts: Vec<String> = f
        .tags()
        .into_iter()
        .filter(|t| t.starts_with("activations/"))
        .collect();
    assert_eq!(acts.len(), 3, "{acts:?}");
    for (i, store) in stores.iter().enumerate() {
        let p = |n: &str| store.value(store.key(n).unwrap()).clone();
        let linear = |x: &Tensor<f64>, l: &str| {
            x.matmul(&p(&format!("{l}.weight")).t()) + p(&format!("{l}.bias"))
        };
        let h = linear(&probe, "0");
        let r = h.relu();
        let out = linear(&r, "2");
        for (layer, want) in [("0", &h), ("1", &r), ("2", &out)] {
            let tag = acts
                .iter()
                .find(|t| t.starts_with(&format!("activations/{layer}:")))
                .unwrap();
            let (step, got) = &f.histograms(tag)[i];
            assert_eq!(*step as usize, 7 * (i + 1));
            let v = want.as_slice();
            let sum: f64 = v.iter().sum();
            assert_eq!(got.num, v.len() as f64, "{tag}");
            assert_eq!(got.bucket.iter().sum::<f64>(), v.len() as f64, "{tag}");
            assert!(
                (got.sum - sum).abs() < 1e-9 * (1.0 + sum.abs()),
                "{tag}: {} vs {sum}",
                got.sum
            );
            let sq: f64 = v.iter().map(|x| x * x).sum();
            assert!((got.sum_squares - sq).abs() < 1e-9 * (1.0 + sq), "{tag}");
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!((got.min, got.max), (min, max), "{tag}");
            // The fraction of zero outputs: the ReLU's, none of the Linear layers'.
            let zeros = v.iter().filter(|&&x| x == 0.0).count() as f64 / v.len() as f64;
            let z = f.scalars(&tag.replace("activations/", "zero_fraction/"))[i].1;
            assert!(close(z, zeros), "{tag}: {z} vs {zeros}");
            assert_eq!(zeros > 0.0, layer == "1", "{tag}");
        }
    }

    // Each epoch's numbers at its last step.
    let val = f.scalars("epoch/val_loss");
    assert_eq!(val.iter().map(|p| p.0).collect::<Vec<_>>(), [7, 14, 21]);
    for t in [
        "epoch/train_loss",
        "epoch/train_accuracy",
        "epoch/val_accuracy",
        "epoch/lr",
        "epoch/seconds",
    ] {
        assert_eq!(f.scalars(t).len(), 3, "{t}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A run killed at step 17 and resumed from its checkpoint of step 14: the second file
/// starts with a restart at step 15, so TensorBoard drops the first process's steps 15–17,
/// and the resumed steps equal those of an uninterrupted run.
fn crashed_and_resumed(dir: &Path) -> Steps {
    let (run, ckpt) = (dir.join("run"), dir.join("ckpt"));
    let (first, _) = train_logged(&run, &ckpt, Some(17), false);
    assert_eq!(first.len(), 16);
    train_logged(&run, &ckpt, None, true).0
}

#[test]
fn a_resumed_run_marks_its_restart() {
    let dir = tmp("restart");
    let resumed = crashed_and_resumed(&dir);
    let (whole, _) = train_logged(&dir.join("whole"), &dir.join("whole-ckpt"), None, false);
    assert_eq!(resumed[..], whole[14..]);
    let files = read_logdir(dir.join("run")).unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(
        files[0]
            .scalars("step/loss")
            .iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        [5, 10, 15]
    );
    let starts: Vec<i64> = files[1]
        .events
        .iter()
        .filter(|e| e.what == What::SessionStart)
        .map(|e| e.step)
        .collect();
    assert_eq!(starts, [15]);
    assert_eq!(
        files[1]
            .scalars("step/loss")
            .iter()
            .map(|p| p.0)
            .collect::<Vec<_>>(),
        [15, 20]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

const RESUMED: &str = r#"
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "histograms": 0})
acc.Reload()
print(json.dumps({
    "loss": [(e.step, e.value) for e in acc.Scalars("step/loss")],
    "weights": [h.step for h in acc.Histograms("weights/0.weight")],
}))
"#;

#[test]
#[ignore = "needs tensorboard"]
fn tensorboard_drops_what_a_crashed_run_logged_after_its_checkpoint() {
    let dir = tmp("restart-tb");
    let resumed = crashed_and_resumed(&dir);
    let v = run_python(RESUMED, &dir.join("run"));
    let loss = v["loss"].as_array().unwrap();
    let steps: Vec<u64> = loss.iter().map(|p| p[0].as_u64().unwrap()).collect();
    assert_eq!(steps, [5, 10, 15, 20]);
    // Steps 15 and 20 are the resumed process's.
    for p in &loss[2..] {
        let step = p[0].as_u64().unwrap() as usize;
        let l = resumed.iter().find(|s| s.0 == step).unwrap().1;
        assert!(close(p[1].as_f64().unwrap(), l));
    }
    assert_eq!(v["weights"], serde_json::json!([7, 14, 21]));
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Weights move between PyTorch and tapegrad in both directions.
//!
//! `reference/torch_mlp.safetensors` was written by PyTorch 2.15 (`scripts/torch_interop.py
//! make`: `nn.Sequential(Linear(5,8), BatchNorm1d(8), ReLU(), Linear(8,3))` after three
//! training batches, saved with `safetensors.torch.save_file(model.state_dict())`);
//! `reference/torch_mlp.json` holds a fixed input and PyTorch's eval-mode output. The other
//! direction writes a tapegrad model to `$CARGO_TARGET_TMPDIR/torch_interop/` for
//! `scripts/torch_interop.py check`, which loads it into PyTorch with `strict=True`.
//!
//! `with_pytorch_itself` runs PyTorch on both directions: it is ignored by the README's
//! test command (it needs Python with torch and safetensors) and run by `.ci/run`, which
//! installs them in a virtual environment and names its interpreter in
//! `TAPEGRAD_TORCH_PYTHON`.

use serde_json::Value;
use tapegrad_core::{seeded_rng, Graph, ParamStore, Tensor};
use tapegrad_nn::*;

use tapegrad_check::reference::tensor_f32;

const TORCH_FILE: &[u8] = include_bytes!("reference/torch_mlp.safetensors");
const TORCH_JSON: &str = include_str!("reference/torch_mlp.json");

/// The architecture, with PyTorch's `nn.Sequential` names.
fn model(store: &mut ParamStore<f32>, seed: u64) -> Sequential<f32> {
    let mut rng = seeded_rng(seed);
    Sequential::new()
        .push(Linear::new(store, "0", 5, 8, Init::TorchDefault, &mut rng))
        .push(BatchNorm::new_1d(store, "1", 8))
        .push(Relu)
        .push(Linear::new(store, "3", 8, 3, Init::TorchDefault, &mut rng))
}

/// The model's eval output on the input recorded in `r` is the output recorded there.
fn gives_the_recorded_output(m: &Sequential<f32>, store: &mut ParamStore<f32>, r: &Value) {
    let g = Graph::new();
    let y = m
        .forward(
            &mut Forward::eval(&g, store),
            g.constant(tensor_f32(&r["input"])),
        )
        .value();
    tapegrad_core::assert_close(&y, &tensor_f32(&r["output"]), 1e-6, 1e-5);
}

#[test]
fn pytorch_weights_load_strictly_and_give_pytorchs_outputs() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("torch_interop");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("from_torch.safetensors");
    std::fs::write(&path, TORCH_FILE).unwrap();
    let mut store = ParamStore::new();
    let m = model(&mut store, 0);
    let report = load(&mut store, &path).unwrap();
    assert_eq!(report.loaded.len(), 9);
    assert_eq!(
        store
            .value(store.key("1.num_batches_tracked").unwrap())
            .item(),
        3.0
    );
    let r: Value = serde_json::from_str(TORCH_JSON).unwrap();
    gives_the_recorded_output(&m, &mut store, &r);
}

/// A trained-looking tapegrad model (running statistics moved), written for PyTorch to
/// `dir` with a fixed input and tapegrad's eval output.
fn write_tapegrad_model(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut store = ParamStore::new();
    let m = model(&mut store, 5);
    let mut rng = seeded_rng(6);
    for _ in 0..3 {
        let g = Graph::new();
        let x = g.constant(Tensor::rand_normal([16, 5], 1.0, 2.0, &mut rng));
        m.forward(&mut Forward::train(&g, &mut store, &mut rng), x);
    }
    let x = Tensor::<f32>::linspace(-2.0, 2.0, 20).reshape([4, 5]);
    let g = Graph::new();
    let y = m
        .forward(&mut Forward::eval(&g, &store), g.constant(x.clone()))
        .value();
    save(&store, dir.join("tapegrad_mlp.safetensors")).unwrap();
    let json = format!(
        "{{\"input\": {{\"shape\": [4, 5], \"data\": {:?}}}, \"output\": {{\"shape\": [4, 3], \"data\": {:?}}}}}",
        x.to_vec(),
        y.to_vec()
    );
    std::fs::write(dir.join("tapegrad_mlp.json"), json).unwrap();
}

#[test]
fn tapegrad_weights_for_pytorch() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("torch_interop");
    write_tapegrad_model(&dir);
    // What PyTorch will read: every state_dict name, num_batches_tracked as int64.
    let ck =
        tapegrad_core::checkpoint::Checkpoint::load(dir.join("tapegrad_mlp.safetensors")).unwrap();
    let names: Vec<&str> = ck.names().collect();
    assert_eq!(
        names,
        [
            "0.bias",
            "0.weight",
            "1.bias",
            "1.num_batches_tracked",
            "1.running_mean",
            "1.running_var",
            "1.weight",
            "3.bias",
            "3.weight"
        ]
    );
    assert_eq!(ck.get("1.num_batches_tracked").unwrap().dtype(), "i64");
    assert_eq!(ck.get("0.weight").unwrap().shape(), &[8, 5]); // [out, in], as PyTorch
}

#[test]
#[ignore = "needs torch: Python with torch and safetensors, named by TAPEGRAD_TORCH_PYTHON (.ci/run installs them)"]
fn with_pytorch_itself() {
    let python = std::env::var("TAPEGRAD_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/torch_interop.py");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("torch_interop_live");
    let run = |args: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{python} {script:?} {args:?} failed:\n{text}"
        );
        text
    };
    // tapegrad → PyTorch: PyTorch loads the file strictly and reproduces tapegrad's output.
    write_tapegrad_model(&dir);
    let text = run(&[
        "check".as_ref(),
        dir.join("tapegrad_mlp.safetensors").as_os_str(),
        dir.join("tapegrad_mlp.json").as_os_str(),
    ]);
    assert!(text.contains("(strict): max |output difference|"), "{text}");
    // PyTorch → tapegrad, with the PyTorch installed now (not only the file committed).
    let prefix = dir.join("torch_mlp");
    run(&["make".as_ref(), prefix.as_os_str()]);
    let mut store = ParamStore::new();
    let m = model(&mut store, 0);
    let report = load(&mut store, prefix.with_extension("safetensors")).unwrap();
    assert_eq!(report.loaded.len(), 9);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(prefix.with_extension("json")).unwrap())
            .unwrap();
    gives_the_recorded_output(&m, &mut store, &r);
}

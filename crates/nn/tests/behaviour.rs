//! Behaviour: batch-norm mode switching, dropout statistics, freezing, save/load round trips
//! and bad files, per-layer statistics, error messages.

use tapegrad_core::checkpoint::LoadOptions;
use tapegrad_core::{seeded_rng, Error, Graph, ParamStore, Tensor};
use tapegrad_nn::*;

/// The message of a caught panic.
fn panic_message(r: std::thread::Result<impl Sized>) -> String {
    let p = r.err().expect("the call should panic");
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tapegrad-nn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn batchnorm_switches_between_batch_and_running_statistics() {
    let mut store = ParamStore::<f64>::new();
    let bn = BatchNorm::new_1d(&mut store, "bn", 2);
    let mut rng = seeded_rng(0);
    // Data with mean (3, −1) and std (2, 0.5).
    let batch = |rng: &mut rand::rngs::StdRng| {
        let z = Tensor::<f64>::rand_normal([256, 2], 0.0, 1.0, rng);
        z.mul(&Tensor::from_vec(vec![2.0, 0.5], [2]))
            .add(&Tensor::from_vec(vec![3.0, -1.0], [2]))
    };
    for _ in 0..100 {
        let g = Graph::new();
        let x = g.constant(batch(&mut rng));
        let y = bn.forward(&mut Forward::new(&g, &mut store, Mode::Train, None), x);
        // Training output is normalised with the batch's own statistics.
        let m = y.value().mean_dim(0, false);
        assert!(m.as_slice().iter().all(|v| v.abs() < 1e-12));
    }
    let (rm, rv) = bn.running_stats().unwrap();
    let (mean, var) = (store.value(rm).clone(), store.value(rv).clone());
    assert!(
        (mean.get(&[0]) - 3.0).abs() < 0.1 && (mean.get(&[1]) + 1.0).abs() < 0.05,
        "{mean}"
    );
    assert!(
        (var.get(&[0]) - 4.0).abs() < 0.4 && (var.get(&[1]) - 0.25).abs() < 0.03,
        "{var}"
    );
    assert_eq!(
        store
            .value(store.key("bn.num_batches_tracked").unwrap())
            .item(),
        100.0
    );
    // Evaluation uses the running statistics and changes nothing.
    let g = Graph::new();
    let x = Tensor::from_vec(vec![3.0, -1.0, 5.0, -0.5], [2, 2]);
    let y = bn
        .forward(&mut Forward::eval(&g, &store), g.constant(x))
        .value();
    let want = |v: f64, c: usize| (v - mean.get(&[c])) / (var.get(&[c]) + 1e-5).sqrt();
    assert!((y.get(&[1, 0]) - want(5.0, 0)).abs() < 1e-12);
    assert_eq!(store.value(rm), &mean);
    // One sample per channel in training is refused, as in PyTorch.
    let g = Graph::new();
    let one = g.constant(Tensor::ones([1, 2]));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        bn.forward(&mut Forward::new(&g, &mut store, Mode::Train, None), one)
    }));
    let msg = panic_message(r);
    assert!(msg.contains("more than 1 value per channel"), "{msg}");
}

#[test]
fn dropout_statistics_and_modes() {
    let mut store = ParamStore::<f64>::new();
    let mut rng = seeded_rng(5);
    let g = Graph::new();
    let x = g.constant(Tensor::ones([200, 100]));
    let d = Dropout::new(0.3);
    let y = d
        .forward(&mut Forward::train(&g, &mut store, &mut rng), x)
        .value();
    let kept = y.as_slice().iter().filter(|&&v| v != 0.0).count() as f64 / 20000.0;
    assert!((kept - 0.7).abs() < 0.015, "kept {kept}");
    assert!(y
        .as_slice()
        .iter()
        .all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-12));
    let mean = y.as_slice().iter().sum::<f64>() / 20000.0;
    assert!((mean - 1.0).abs() < 0.03, "mean {mean}"); // inverted dropout keeps the expectation
    let e = d.forward(&mut Forward::eval(&g, &store), x);
    assert_eq!(e.id(), x.id()); // the identity in evaluation
    let zero = Dropout::new(1.0)
        .forward(&mut Forward::train(&g, &mut store, &mut rng), x)
        .value();
    assert!(zero.as_slice().iter().all(|&v| v == 0.0));
    // The same seed gives the same mask.
    let a = Dropout::new(0.5)
        .forward(&mut Forward::train(&g, &mut store, &mut seeded_rng(1)), x)
        .value();
    let b = Dropout::new(0.5)
        .forward(&mut Forward::train(&g, &mut store, &mut seeded_rng(1)), x)
        .value();
    assert_eq!(a, b);
    // Training without an RNG is refused clearly.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        d.forward(&mut Forward::new(&g, &mut store, Mode::Train, None), x)
    }));
    let msg = panic_message(r);
    assert!(msg.contains("Forward::train"), "{msg}");
}

fn model(store: &mut ParamStore<f32>, seed: u64) -> Sequential<f32> {
    let mut rng = seeded_rng(seed);
    Sequential::new()
        .push(Linear::new(store, "0", 5, 8, Init::HeNormal, &mut rng))
        .push(BatchNorm::new_1d(store, "1", 8))
        .push(Relu)
        .push(Linear::new(
            store,
            "3",
            8,
            3,
            Init::XavierUniform { gain: 1.0 },
            &mut rng,
        ))
}

fn eval_output(m: &Sequential<f32>, store: &mut ParamStore<f32>, x: &Tensor<f32>) -> Tensor<f32> {
    let g = Graph::new();
    m.forward(&mut Forward::eval(&g, store), g.constant(x.clone()))
        .value()
}

#[test]
fn save_then_load_gives_identical_outputs() {
    let dir = tmp("roundtrip");
    let path = dir.join("model.safetensors");
    let mut store = ParamStore::new();
    let m = model(&mut store, 1);
    // Train a few batch-norm steps so the running statistics are not at their start values.
    let mut rng = seeded_rng(2);
    for _ in 0..3 {
        let g = Graph::new();
        let x = g.constant(Tensor::rand_normal([16, 5], 1.0, 2.0, &mut rng));
        m.forward(&mut Forward::train(&g, &mut store, &mut rng), x);
    }
    let x = Tensor::rand_normal([4, 5], 0.0, 1.0, &mut rng);
    let before = eval_output(&m, &mut store, &x);
    save(&store, &path).unwrap();
    let mut fresh = ParamStore::new();
    let m2 = model(&mut fresh, 99); // other weights
    assert_ne!(eval_output(&m2, &mut fresh, &x), before);
    let report = load(&mut fresh, &path).unwrap();
    assert_eq!(report.loaded.len(), 9); // 2 linears × 2, bn: weight, bias, mean, var, count
    assert_eq!(eval_output(&m2, &mut fresh, &x), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_files_are_clear_errors_and_leave_the_store_unchanged() {
    let dir = tmp("bad");
    let path = dir.join("model.safetensors");
    let mut store = ParamStore::new();
    model(&mut store, 1);
    save(&store, &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let snapshot =
        |s: &ParamStore<f32>| s.iter().map(|(_, p)| p.value.to_vec()).collect::<Vec<_>>();

    // A model with an extra layer: a key the file lacks.
    let mut bigger = ParamStore::new();
    model(&mut bigger, 2);
    let mut rng = seeded_rng(3);
    Linear::new(&mut bigger, "5", 3, 2, Init::HeNormal, &mut rng);
    let before = snapshot(&bigger);
    let e = load(&mut bigger, &path).unwrap_err().to_string();
    assert!(e.contains("missing from the file: 5.weight, 5.bias"), "{e}");
    assert_eq!(snapshot(&bigger), before);
    // ...which a partial load accepts, reporting what it skipped.
    let r = load_with(&mut bigger, &path, &LoadOptions::partial()).unwrap();
    assert_eq!(
        r.missing,
        vec!["5.weight".to_string(), "5.bias".to_string()]
    );

    // A model without the last layer: keys the model lacks.
    let mut smaller = ParamStore::<f32>::new();
    let mut rng = seeded_rng(4);
    Linear::new(&mut smaller, "0", 5, 8, Init::HeNormal, &mut rng);
    let e = load(&mut smaller, &path).unwrap_err().to_string();
    assert!(
        e.contains("not in the model: 1.bias, 1.num_batches_tracked"),
        "{e}"
    );

    // A wrong shape.
    let mut wrong = ParamStore::<f32>::new();
    let mut rng = seeded_rng(5);
    Linear::new(&mut wrong, "0", 5, 7, Init::HeNormal, &mut rng);
    let e = load_with(&mut wrong, &path, &LoadOptions::partial())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`0.weight` has shape [8, 5] in the file but [7, 5] in the model"),
        "{e}"
    );
    assert!(e.starts_with(&path.display().to_string()), "{e}");

    // A truncated file, a corrupt file, a missing file, an f64 model.
    let cut = dir.join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut s = ParamStore::new();
    model(&mut s, 1);
    let before = snapshot(&s);
    let e = load(&mut s, &cut).unwrap_err();
    assert!(matches!(e, Error::Checkpoint { .. }), "{e}");
    let junk = dir.join("junk.safetensors");
    std::fs::write(&junk, b"this is not a safetensors file at all").unwrap();
    assert!(matches!(
        load(&mut s, &junk).unwrap_err(),
        Error::Checkpoint { .. }
    ));
    assert!(matches!(
        load(&mut s, dir.join("absent.safetensors")).unwrap_err(),
        Error::Io { .. }
    ));
    assert_eq!(snapshot(&s), before);
    let mut s64 = ParamStore::<f64>::new();
    let mut rng = seeded_rng(6);
    Linear::new(&mut s64, "0", 5, 8, Init::HeNormal, &mut rng);
    let e = load_with(&mut s64, &path, &LoadOptions::partial())
        .unwrap_err()
        .to_string();
    assert!(e.contains("holds f32 values, the model expects f64"), "{e}");
    load_with(&mut s64, &path, &LoadOptions::partial().with_dtype_cast()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn frozen_layers_get_no_gradient() {
    let mut store = ParamStore::<f64>::new();
    let mut rng = seeded_rng(7);
    let lower = Linear::new(&mut store, "lower", 3, 4, Init::HeNormal, &mut rng);
    let head = Linear::new(&mut store, "head", 4, 2, Init::HeNormal, &mut rng);
    lower.freeze(&mut store);
    let g = Graph::new();
    let x = g.constant(Tensor::ones([2, 3]));
    let mut f = Forward::train(&g, &mut store, &mut rng);
    let h = lower.forward(&mut f, x).relu();
    let y = head.forward(&mut f, h).sum();
    let grads = y.backward();
    assert!(grads.param(lower.weight()).is_none() && grads.param(lower.bias().unwrap()).is_none());
    assert!(grads.param(head.weight()).is_some());
    lower.unfreeze(&mut store);
    assert!(!store.is_frozen(lower.weight()));
}

#[test]
fn per_layer_statistics_show_dead_units() {
    let mut store = ParamStore::<f64>::new();
    let mut rng = seeded_rng(8);
    let model = Sequential::new()
        .push(Linear::new(
            &mut store,
            "0",
            10,
            50,
            Init::HeNormal,
            &mut rng,
        ))
        .push(Relu)
        .push(Linear::new(
            &mut store,
            "2",
            50,
            1,
            Init::HeNormal,
            &mut rng,
        ));
    let g = Graph::new();
    let mut rec = Recorder::new().with_bins(10);
    let x = g.constant(Tensor::rand_normal([64, 10], 0.0, 1.0, &mut rng));
    let y = model.forward(
        &mut Forward::train(&g, &mut store, &mut rng).with_recorder(&mut rec),
        x,
    );
    let grads = y.square().mean().backward();
    let report = rec.report(Some(&grads));
    assert_eq!(report.len(), 3);
    assert_eq!(report[1].name, "1:Relu");
    // About half of the ReLU outputs are exactly zero, and exactly there the gradient of
    // the ReLU's input (the first layer's output) is zero too.
    let z = report[1].activation.zero_fraction;
    assert!((0.35..0.65).contains(&z), "{z}");
    assert_eq!(report[0].gradient.as_ref().unwrap().zero_fraction, z);
    assert_eq!(
        report[1].activation.histogram.counts.iter().sum::<usize>(),
        64 * 50
    );
    assert!(report[2].to_string().contains("grad:"));
}

#[test]
fn wrong_inputs_name_the_layer_and_shapes() {
    let mut store = ParamStore::<f64>::new();
    let mut rng = seeded_rng(9);
    let lin = Linear::new(&mut store, "fc1", 4, 2, Init::HeNormal, &mut rng);
    let g = Graph::new();
    let x = g.constant(Tensor::ones([3, 5]));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lin.forward(&mut Forward::eval(&g, &store), x)
    }));
    let msg = panic_message(r);
    assert!(
        msg.starts_with(
            "Linear: `fc1` expects inputs with 4 features in the last dimension, got shape [3, 5] (at crates/nn/tests/behaviour.rs:"
        ),
        "{msg}"
    );
}

#[test]
fn parameters_and_buffers_are_apart() {
    let mut store = ParamStore::<f32>::new();
    let m = model(&mut store, 0);
    let names = |keys: Vec<tapegrad_core::ParamKey>| -> Vec<String> {
        keys.iter().map(|&k| store.name(k).to_string()).collect()
    };
    assert_eq!(
        names(m.params()),
        ["0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    );
    assert_eq!(
        names(m.buffers()),
        ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    );
    // 5·8 + 8 + 8 + 8 + 8·3 + 3 parameters; two buffers of 8 and one counter.
    assert_eq!(store.num_parameters(), 40 + 8 + 16 + 24 + 3);
    assert_eq!(store.num_buffer_elements(), 8 + 8 + 1);
    assert_eq!(m.trainable(&store), m.params());
}

//! A small MLP on a synthetic problem: train, evaluate, save, load.
//!
//! Run: `cargo run --release --example mlp`
//!
//! Three interleaved spirals (not linearly separable), a 2-64-64-3 network with batch
//! normalisation, ReLU and dropout, full-batch gradient descent (`Sgd`) with an L2 penalty
//! on the weights, then a save to safetensors and a load into a fresh model that must give the
//! same outputs.

#[path = "common/spirals.rs"]
mod spirals;

use spirals::{accuracy, spirals};
use tapegrad::nn::{l2_penalty, load, save};
use tapegrad::prelude::*;

fn model(store: &mut ParamStore<f32>, seed: u64) -> Sequential<f32> {
    let mut rng = seeded_rng(seed);
    Sequential::new()
        .push(Linear::new(store, "0", 2, 64, Init::HeNormal, &mut rng))
        .push(BatchNorm1d::new(store, "1", 64))
        .push(Relu)
        .push(Dropout::new(0.1))
        .push(Linear::new(store, "4", 64, 64, Init::HeNormal, &mut rng))
        .push(Relu)
        .push(Linear::new(
            store,
            "6",
            64,
            3,
            Init::XavierUniform { gain: 1.0 },
            &mut rng,
        ))
}

fn logits(m: &Sequential<f32>, store: &mut ParamStore<f32>, x: &Tensor<f32>) -> Tensor<f32> {
    let g = Graph::new();
    m.forward(&mut Forward::eval(&g, store), g.constant(x.clone()))
        .value()
}

fn main() -> Result<()> {
    let (x, y) = spirals(3, 200, 0.2, 1);
    let (x_test, y_test) = spirals(3, 100, 0.2, 2);
    let mut store = ParamStore::new();
    let m = model(&mut store, 0);
    let weights = m.weights(&store);
    println!(
        "{} parameters in {} tensors",
        store.num_parameters(),
        store.len()
    );

    let mut rng = seeded_rng(3);
    let mut g = Graph::new();
    let lr = 0.5;
    // Plain SGD (PyTorch's defaults: no momentum, no weight decay; the L2 penalty is a
    // graph op in the loss).
    let mut opt = Sgd::new(SgdConfig::default());
    for epoch in 0..=400 {
        g.reset();
        let (loss, grads) = {
            let mut f = Forward::train(&g, &mut store, &mut rng);
            let out = m.forward(&mut f, g.constant(x.clone()));
            let loss = cross_entropy(out, &y, Reduction::Mean) + l2_penalty(&f, &weights, 1e-4);
            (loss.item(), loss.backward())
        };
        // Release the tape before the update: it shares the parameters' buffers, and
        // while it holds them the update would copy each one.
        g.reset();
        opt.step(&mut store, &grads, lr);
        if epoch % 100 == 0 {
            let acc = accuracy(&logits(&m, &mut store, &x_test), &y_test);
            println!(
                "epoch {epoch:3}  loss {:.4}  test accuracy {:.1}%",
                loss,
                100.0 * acc
            );
        }
    }
    let out = logits(&m, &mut store, &x_test);
    let acc = accuracy(&out, &y_test);
    println!("final test accuracy {:.1}%", 100.0 * acc);

    let dir = std::env::temp_dir().join(format!("tapegrad-mlp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join("mlp.safetensors");
    save(&store, &path)?;
    let mut fresh = ParamStore::new();
    let m2 = model(&mut fresh, 42);
    let report = load(&mut fresh, &path)?;
    let out2 = logits(&m2, &mut fresh, &x_test);
    println!(
        "saved {} tensors to {} and loaded them into a fresh model",
        report.loaded.len(),
        path.display()
    );
    assert_eq!(out, out2, "the loaded model must give the same outputs");
    println!("the loaded model gives identical outputs");
    assert!(acc > 0.9, "the MLP should separate the spirals");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

//! Transfer learning: train, save, load the lower layers into a new model, freeze them, and
//! train a new head.
//!
//! Run: `cargo run --release --example transfer`
//!
//! Task A is the three spirals; task B asks only "is this point on the middle arm?". A body
//! trained on A already separates the arms, so a new head on the frozen body learns B in a
//! few steps; the same head on a frozen *random* body does much worse. The body's weights
//! are checked to be untouched by B's training.

#[path = "common/spirals.rs"]
mod spirals;

use spirals::{accuracy, spirals};
use tapegrad::nn::{load_with, save};
use tapegrad::prelude::*;

/// The shared body: 2 → 64 → 64, ReLU.
fn body(store: &mut ParamStore<f32>, rng: &mut rand::rngs::StdRng) -> Sequential<f32> {
    Sequential::new()
        .push(Linear::new(store, "body.0", 2, 64, Init::HeNormal, rng))
        .push(Relu)
        .push(Linear::new(store, "body.2", 64, 64, Init::HeNormal, rng))
        .push(Relu)
}

/// Full-batch gradient descent on whatever gets a gradient (frozen parameters do not).
fn train(
    model: &Sequential<f32>,
    store: &mut ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
    steps: usize,
    lr: f32,
) -> f32 {
    let mut g = Graph::new();
    let mut rng = seeded_rng(7);
    let mut last = 0.0;
    for _ in 0..steps {
        g.reset();
        let out = model.forward(
            &mut Forward::train(&g, store, &mut rng),
            g.constant(x.clone()),
        );
        let loss = cross_entropy(out, y, Reduction::Mean);
        last = loss.item();
        let grads = loss.backward();
        for (key, grad) in grads.params() {
            *store.value_mut(key) -= &grad.mul_scalar(lr);
        }
    }
    last
}

fn evaluate(
    model: &Sequential<f32>,
    store: &mut ParamStore<f32>,
    x: &Tensor<f32>,
    y: &Tensor<usize>,
) -> f64 {
    let g = Graph::new();
    accuracy(
        &model
            .forward(&mut Forward::eval(&g, store), g.constant(x.clone()))
            .value(),
        y,
    )
}

fn main() -> Result<()> {
    let (x, y) = spirals(3, 200, 0.2, 1);
    let (x_test, y_test) = spirals(3, 100, 0.2, 2);
    let middle = |t: &Tensor<usize>| t.map(|c| usize::from(c == 1));

    // 1. Task A: the body and a three-way head.
    let mut store_a = ParamStore::new();
    let mut rng = seeded_rng(0);
    let model_a = body(&mut store_a, &mut rng).push(Linear::new(
        &mut store_a,
        "head_a",
        64,
        3,
        Init::XavierUniform { gain: 1.0 },
        &mut rng,
    ));
    train(&model_a, &mut store_a, &x, &y, 500, 0.5);
    println!(
        "task A (3 arms): test accuracy {:.1}%",
        100.0 * evaluate(&model_a, &mut store_a, &x_test, &y_test)
    );
    let dir = std::env::temp_dir().join(format!("tapegrad-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let path = dir.join("task_a.safetensors");
    save(&store_a, &path)?;

    // 2. Task B: the same body with a new two-way head; load only the body, explicitly.
    let new_model = |store: &mut ParamStore<f32>| {
        let mut rng = seeded_rng(10);
        let b = body(store, &mut rng);
        let head = Linear::new(
            store,
            "head_b",
            64,
            2,
            Init::XavierUniform { gain: 1.0 },
            &mut rng,
        );
        (b, head)
    };
    let mut store_b = ParamStore::new();
    let (body_b, head_b) = new_model(&mut store_b);
    let report = load_with(
        &mut store_b,
        &path,
        &LoadOptions::partial().with_prefix("body."),
    )?;
    println!(
        "loaded {:?} from task A; head_b.* starts fresh",
        report.loaded
    );
    body_b.freeze(&mut store_b);
    let frozen_before: Vec<Tensor<f32>> = body_b
        .params()
        .iter()
        .map(|&k| store_b.value(k).clone())
        .collect();
    let model_b = body_b.push(head_b);
    let loss = train(&model_b, &mut store_b, &x, &middle(&y), 60, 0.5);
    let acc_transfer = evaluate(&model_b, &mut store_b, &x_test, &middle(&y_test));
    println!("task B (middle arm?), pretrained frozen body + new head, 60 steps: loss {loss:.3}, test accuracy {:.1}%", 100.0 * acc_transfer);
    let untouched = frozen_before
        .iter()
        .zip(store_b.iter().filter(|(_, p)| p.name.starts_with("body.")))
        .all(|(a, (_, p))| a == &p.value);
    assert!(untouched, "frozen layers must not change");
    println!("the frozen body's weights are unchanged");

    // 3. The baseline: the same head on a frozen random body.
    let mut store_c = ParamStore::new();
    let (body_c, head_c) = new_model(&mut store_c);
    body_c.freeze(&mut store_c);
    let model_c = body_c.push(head_c);
    train(&model_c, &mut store_c, &x, &middle(&y), 60, 0.5);
    let acc_random = evaluate(&model_c, &mut store_c, &x_test, &middle(&y_test));
    println!(
        "task B, random frozen body + new head, 60 steps: test accuracy {:.1}%",
        100.0 * acc_random
    );
    assert!(acc_transfer > acc_random, "the pretrained body should help");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

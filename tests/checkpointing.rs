//! Gradient checkpointing through the `Trainer`: the digits recipe's MLP (Linear, BatchNorm,
//! ReLU, Dropout per hidden layer), trained for two epochs plain and cut into checkpointed
//! segments, gives the same history and the same parameters bit for bit — the dropout masks,
//! the batch-norm statistics and every update agree.

#[path = "../examples/common/recipe.rs"]
mod recipe;

use tapegrad::prelude::*;

/// Each epoch's (training, validation) loss as bits, and every parameter by name.
type Run = (Vec<(u64, u64)>, Vec<(String, Vec<f32>)>);

fn train(segments: Option<usize>) -> Run {
    let r = recipe::Recipe {
        epochs: 2,
        ..recipe::Recipe::digits()
    };
    let data = recipe::digits_splits(r.seed).unwrap();
    let mut store = ParamStore::new();
    let model = recipe::mlp(&mut store, 64, &r, data.classes);
    let model = match segments {
        Some(s) => checkpoint_segments(model, s),
        None => model,
    };
    let train = DataLoader::new(&data.train, r.batch).with_shuffle(r.seed);
    let val = DataLoader::new(&data.val, r.eval_batch);
    let config = TrainConfig {
        epochs: r.epochs,
        seed: r.seed,
        progress: Progress::Quiet,
        clip_grad_norm: Some(1.0),
    };
    let mut trainer = Trainer::new(
        &model,
        AdamW::new(AdamConfig::adamw()),
        Cosine::new(r.lr, 50),
    )
    .with_config(config);
    trainer.fit(&mut store, &train, &val).unwrap();
    let history = trainer
        .history()
        .epochs
        .iter()
        .map(|e| (e.train_loss.to_bits(), e.val_loss.to_bits()))
        .collect();
    let params = store
        .iter()
        .map(|(_, p)| (p.name.clone(), p.value.to_vec()))
        .collect();
    (history, params)
}

#[test]
fn checkpointed_training_equals_plain_training_bit_for_bit() {
    let plain = train(None);
    assert_eq!(plain.0.len(), 2);
    for segments in [2, 4] {
        let ck = train(Some(segments));
        assert_eq!(ck.0, plain.0, "{segments} segments: the history");
        assert_eq!(ck.1.len(), plain.1.len());
        for ((name, a), (_, b)) in ck.1.iter().zip(&plain.1) {
            assert!(a == b, "{segments} segments: {name} differs");
        }
    }
}

//! The MLP classification recipe of `train_digits`, `train_fashion_mnist` and `kfold` (and
//! of the tests that run them shortened): the data and its splits, the model, the optimizer
//! and schedule, early stopping, the `Trainer`, the test evaluation.
//!
//! The recipes are those of `../shared/peers/python/train_digits_torch.py` and
//! `train_fmnist_torch.py` (their docstrings are the specification): the same splits by
//! the same rules (the random draws differ: numpy's generator is not ours), the same model,
//! initialisation, optimizer, schedule, batch size and early stopping.

#![allow(dead_code)] // each example uses part of it

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Instant;

use tapegrad::data::read::{digits, mnist, MnistPart};
use tapegrad::data::Uneven;
use tapegrad::data::{stratified_holdout, train_test_split, RandomTranslate};
use tapegrad::nn::LinearConfig;
use tapegrad::prelude::*;
use tapegrad::train::tensorboard::{TensorBoard, TensorBoardLogger};
use tapegrad::train::{Callback, Collective, Evaluation, Outcome};

/// What the recipe trains with.
#[derive(Clone, Debug)]
pub struct Recipe {
    /// Hidden layer widths (each Linear → BatchNorm1d → ReLU → Dropout).
    pub hidden: Vec<usize>,
    /// The dropout probability.
    pub dropout: f64,
    /// AdamW's peak learning rate.
    pub lr: f64,
    /// AdamW's (decoupled) weight decay.
    pub weight_decay: f64,
    /// The training batch size (the last batch of an epoch is partial).
    pub batch: usize,
    /// The validation and test batch size (evaluation only).
    pub eval_batch: usize,
    /// Epochs; the cosine reaches 0 at the end of the last.
    pub epochs: usize,
    /// Epochs of linear warm-up.
    pub warmup_epochs: usize,
    /// Early stopping: epochs without an improvement of the validation loss.
    pub patience: usize,
    /// Early stopping: the improvement that counts.
    pub min_delta: f64,
    /// A random ±1-pixel translation of the training images.
    pub augment: bool,
    /// The seed of the splits, the initialisation and every random stream of training.
    pub seed: u64,
}

impl Recipe {
    /// `train_digits_torch.py`: 64-128-64-10, AdamW 1e-2, warm-up 3 epochs then cosine to
    /// epoch 60, batch 64, patience 10.
    pub fn digits() -> Self {
        Recipe {
            hidden: vec![128, 64],
            dropout: 0.2,
            lr: 1e-2,
            weight_decay: 1e-4,
            batch: 64,
            eval_batch: 1024,
            epochs: 60,
            warmup_epochs: 3,
            patience: 10,
            min_delta: 1e-4,
            augment: false,
            seed: 0,
        }
    }

    /// `train_fmnist_torch.py`: 784-256-128-10, AdamW 2e-3, warm-up 1 epoch then cosine to
    /// epoch 15, batch 128, patience 4.
    pub fn fashion_mnist() -> Self {
        Recipe {
            hidden: vec![256, 128],
            dropout: 0.2,
            lr: 2e-3,
            weight_decay: 1e-4,
            batch: 128,
            eval_batch: 10_000,
            epochs: 15,
            warmup_epochs: 1,
            patience: 4,
            min_delta: 1e-4,
            augment: false,
            seed: 0,
        }
    }
}

/// Training, validation and test sets.
pub struct Splits {
    /// What the recipe trains on.
    pub train: TensorDataset<f32>,
    /// What early stopping watches.
    pub val: TensorDataset<f32>,
    /// What the final accuracy is measured on.
    pub test: TensorDataset<f32>,
    /// The number of classes.
    pub classes: usize,
    /// Where the data came from (for the report).
    pub name: String,
}

/// A second seed drawn from the first, for a second split of the same run.
fn derived(seed: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x5EED)
}

fn labels(d: &TensorDataset<f32>) -> Vec<usize> {
    d.targets().to_vec()
}

/// The bundled digits, pixels / 16: a stratified 80/20 train/test split, then 10% of the
/// training part held out (stratified) for validation.
pub fn digits_splits(seed: u64) -> Result<Splits> {
    let all = digits::<f32>()?.map_features(|x| x.mul_scalar(1.0 / 16.0));
    let y = labels(&all);
    let outer = train_test_split(y.len(), 0.2, Some(&y), seed)?;
    let rest = all.subset(&outer.train);
    let yr = labels(&rest);
    let inner = train_test_split(yr.len(), 0.1, Some(&yr), derived(seed))?;
    Ok(Splits {
        train: rest.subset(&inner.train),
        val: rest.subset(&inner.test),
        test: all.subset(&outer.test),
        classes: all.num_classes(),
        name: "digits (bundled, 8×8)".into(),
    })
}

/// An MNIST-format folder (MNIST, Fashion-MNIST), pixels / 255: the official test set;
/// `val` training images held out (stratified, largest remainder), or 10% stratified.
pub fn mnist_splits(dir: &Path, val: Option<usize>, seed: u64) -> Result<Splits> {
    // In place: the features are this tensor's only owner, so no second copy is made.
    let scale = |mut x: Tensor<f32>| {
        x *= 1.0 / 255.0;
        x
    };
    let train = mnist::<f32>(dir, MnistPart::Train)?.map_features(scale);
    let test = mnist::<f32>(dir, MnistPart::Test)?.map_features(scale);
    let y = labels(&train);
    let split = match val {
        Some(n) => stratified_holdout(&y, n, seed)?,
        None => train_test_split(y.len(), 0.1, Some(&y), seed)?,
    };
    let splits = Splits {
        val: train.subset(&split.test),
        classes: train.num_classes().max(test.num_classes()),
        train: train.subset(&split.train),
        test,
        name: format!("{} (IDX)", dir.display()),
    };
    // The whole training set, now copied into the two parts, would otherwise stay in this
    // thread's tensor pool (188 MB for Fashion-MNIST): give it back to the system.
    drop(train);
    tapegrad::core::memory::trim_pool();
    Ok(splits)
}

/// Flatten → (Linear → BatchNorm1d → ReLU → Dropout) per hidden width → Linear, weights He
/// normal (fan in, ReLU gain), biases zero. Parameters are named by position, as PyTorch's
/// `nn.Sequential(nn.Flatten(), …)` names them (`1.weight`, `2.running_mean`, …).
pub fn mlp(
    store: &mut ParamStore<f32>,
    inputs: usize,
    r: &Recipe,
    classes: usize,
) -> Sequential<f32> {
    mlp_synced(store, inputs, r, classes, None)
}

/// [`mlp`], its batch normalisations synchronised across `sync`'s replicas if given.
pub fn mlp_synced(
    store: &mut ParamStore<f32>,
    inputs: usize,
    r: &Recipe,
    classes: usize,
    sync: Option<Rc<dyn Collective>>,
) -> Sequential<f32> {
    let mut rng = seeded_rng(r.seed);
    let cfg = LinearConfig::default()
        .with_init(Init::HeNormal)
        .with_bias_init(Init::Zeros);
    let mut m = Sequential::new().push(Flatten::default());
    let mut width = inputs;
    for &h in &r.hidden {
        let i = m.len();
        m = m
            .push(Linear::with_config(
                store,
                &i.to_string(),
                width,
                h,
                cfg,
                &mut rng,
            ))
            .push({
                let bn = BatchNorm1d::new(store, &(i + 1).to_string(), h);
                match &sync {
                    Some(c) => bn.with_sync(c.clone()),
                    None => bn,
                }
            })
            .push(Relu)
            .push(Dropout::new(r.dropout));
        width = h;
    }
    let i = m.len();
    m.push(Linear::with_config(
        store,
        &i.to_string(),
        width,
        classes,
        cfg,
        &mut rng,
    ))
}

/// Where a run writes its checkpoints, and how it shows progress.
#[derive(Default)]
pub struct RunOptions {
    /// How progress is shown.
    pub progress: Progress,
    /// The folder of `last.ckpt`, `best.ckpt` and the history files (none: no files).
    pub dir: Option<PathBuf>,
    /// Also checkpoint every this many steps (0: at epoch ends only).
    pub every_steps: usize,
    /// A training checkpoint to resume from.
    pub resume: Option<PathBuf>,
    /// A callback added after the recipe's (a test's).
    pub extra: Option<Box<dyn Callback<f32>>>,
    /// Log the run to TensorBoard: scalars every 10 steps, and histograms (weights,
    /// gradients, activations on 256 validation images) every this many steps (0: none).
    pub tensorboard: Option<(TensorBoardLogger, usize)>,
    /// Train as one replica of a data-parallel job: each replica takes its shard of every
    /// batch of `batch / replicas` samples, so the steps are those of one process (the
    /// validation and test sets are evaluated whole on every replica: exact numbers).
    pub collective: Option<Rc<dyn Collective>>,
    /// With a collective: synchronised batch normalisation (the global batch's statistics).
    pub sync_batchnorm: bool,
    /// With a collective: start each bucket's gradient sum during the backward pass.
    pub overlap: bool,
}

/// A trained model and what it measured.
pub struct Trained {
    /// The parameters (the best epoch's, restored by early stopping).
    pub store: ParamStore<f32>,
    /// The model.
    pub model: Sequential<f32>,
    /// Every epoch's numbers.
    pub history: History,
    /// How the run ended.
    pub outcome: Outcome,
    /// The test set's evaluation.
    pub test: Evaluation<f32>,
    /// Seconds of `fit` (training passes and per-epoch validation).
    pub wall_s: f64,
    /// Steps per epoch.
    pub steps_per_epoch: usize,
}

impl Trained {
    /// Mean seconds of a training pass over the epochs.
    pub fn train_s_per_epoch(&self) -> f64 {
        let e = &self.history.epochs;
        e.iter().map(|r| r.train_seconds).sum::<f64>() / e.len().max(1) as f64
    }

    /// Mean seconds of a validation pass over the epochs.
    pub fn eval_s_per_epoch(&self) -> f64 {
        let e = &self.history.epochs;
        e.iter().map(|r| r.eval_seconds).sum::<f64>() / e.len().max(1) as f64
    }
}

/// Trains the recipe on `data`.
pub fn train(r: &Recipe, data: &Splits, opts: RunOptions) -> Result<Trained> {
    let inputs = data.train.feature_shape().iter().product();
    let mut store = ParamStore::new();
    let sync = opts.collective.clone().filter(|_| opts.sync_batchnorm);
    let model = mlp_synced(&mut store, inputs, r, data.classes, sync);
    let mut train = match &opts.collective {
        Some(c) => DataLoader::new(&data.train, r.batch.div_ceil(c.size()))
            .with_shuffle(r.seed)
            .with_shard(c.rank(), c.size(), Uneven::Pad),
        None => DataLoader::new(&data.train, r.batch).with_shuffle(r.seed),
    };
    if r.augment {
        train = train.with_transform(
            RandomTranslate {
                max_dx: 1,
                max_dy: 1,
            },
            r.seed,
        );
    }
    let val = DataLoader::new(&data.val, r.eval_batch);
    let steps = train.batches_per_epoch();
    let (total, warm) = (r.epochs * steps, r.warmup_epochs * steps);
    let schedule = Warmup::new(warm, Cosine::new(r.lr, total.saturating_sub(warm).max(1)));
    let optimizer = AdamW::new(AdamConfig::adamw().with_weight_decay(r.weight_decay));
    let config = TrainConfig {
        epochs: r.epochs,
        seed: r.seed,
        progress: opts.progress,
        clip_grad_norm: None,
    };
    let mut trainer = Trainer::new(&model, optimizer, schedule)
        .with_config(config)
        .with_callback(
            EarlyStopping::new(Monitor::ValLoss, r.patience).with_min_delta(r.min_delta),
        );
    if let Some(dir) = &opts.dir {
        // last.ckpt and best.ckpt (the history is in them, and goes into the results
        // folder at the end).
        trainer = trainer.with_callback(
            Checkpointer::new(dir, Monitor::ValLoss, 0).with_every_steps(opts.every_steps),
        );
    }
    if let Some((log, every)) = &opts.tensorboard {
        let n = data.val.len().min(256);
        let probe = data
            .val
            .subset(&(0..n).collect::<Vec<_>>())
            .features()
            .clone();
        trainer = trainer.with_callback(
            TensorBoard::new(log)
                .with_histograms_every(*every)
                .with_activations(&model, probe),
        );
    }
    if let Some(cb) = opts.extra {
        trainer = trainer.with_callback(cb);
    }
    if let Some(c) = &opts.collective {
        trainer = trainer.with_data_parallel(&**c).with_overlap(opts.overlap);
    }
    if let Some(path) = &opts.resume {
        trainer.resume(&mut store, path)?;
    }
    let started = Instant::now();
    let outcome = trainer.fit(&mut store, &train, &val)?;
    let wall_s = started.elapsed().as_secs_f64();
    let history = trainer.history().clone();
    drop(trainer);
    let test = evaluate(
        &model,
        &store,
        &DataLoader::new(&data.test, r.eval_batch),
        &CrossEntropy,
    );
    Ok(Trained {
        store,
        model,
        history,
        outcome,
        test,
        wall_s,
        steps_per_epoch: steps,
    })
}

/// Creates the results folder `dir` (and its parents) if it is missing.
pub fn results_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// A ReLU MLP with PyTorch's default init: Flatten, then Linear layers of the given widths
/// (`widths[0]` inputs, the last the outputs) named `fc1`, `fc2`, …, ReLU between them.
pub fn relu_mlp(store: &mut ParamStore<f32>, widths: &[usize], seed: u64) -> Sequential<f32> {
    let mut rng = seeded_rng(seed);
    let mut m = Sequential::new().push(Flatten::default());
    for (i, w) in widths.windows(2).enumerate() {
        if i > 0 {
            m = m.push(Relu);
        }
        let name = format!("fc{}", i + 1);
        m = m.push(Linear::new(
            store,
            &name,
            w[0],
            w[1],
            Init::TorchDefault,
            &mut rng,
        ));
    }
    m
}

/// The exit of a training example: success, or the error on standard error after the
/// program's name and failure.
pub fn exit_code(program: &str, result: Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

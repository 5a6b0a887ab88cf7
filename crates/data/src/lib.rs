//! tapegrad-data: datasets, loaders, splits, k-fold cross-validation, augmentation and
//! readers.
//!
//! - [`Dataset`] (numbered samples: features and a class label) and [`TensorDataset`].
//! - [`DataLoader`]: batches, reshuffled each epoch by a permutation computed from the seed
//!   and the epoch alone ([`rng`]), assembled into pooled buffers, resumable at any batch,
//!   sharded between the replicas of data-parallel training ([`DataLoader::with_shard`]).
//! - [`train_test_split`] (random or stratified), [`KFold`], [`StratifiedKFold`]
//!   (scikit-learn's folds when unshuffled), [`Standardizer`] fitted on the training part.
//! - [`transform`]: seeded augmentation of image batches (flip, crop, translation, noise).
//! - [`read`]: the bundled digits data, MNIST-format IDX files, numeric CSV — errors that
//!   name the file and the line or byte, never a panic, never an allocation a header merely
//!   claims.
//!
//! Data never knows about models: a loader yields plain tensors.
//!
//! ```
//! use tapegrad_data::{read, train_test_split, DataLoader, Dataset};
//! let digits = read::digits::<f32>().unwrap().map_features(|x| x.div_scalar(16.0));
//! let split = train_test_split(digits.len(), 0.2, Some(&digits.labels()), 0).unwrap();
//! let train = digits.subset(&split.train);
//! let loader = DataLoader::new(&train, 64).with_shuffle(0);
//! let batch = loader.epoch(0).next().unwrap();
//! assert_eq!(batch.x.dims(), &[64, 1, 8, 8]);
//! assert_eq!(loader.batches_per_epoch(), 23); // 1438 samples
//! ```
#![warn(missing_docs)]

pub mod dataset;
pub mod loader;
pub mod read;
pub mod rng;
pub mod split;
pub mod standardize;
pub mod transform;

pub use dataset::{Dataset, TensorDataset};
pub use loader::{Batch, Batches, DataLoader, Shard, Uneven};
pub use split::{stratified_holdout, train_test_split, KFold, Split, StratifiedKFold};
pub use standardize::Standardizer;
pub use transform::{
    Compose, GaussianNoise, HorizontalFlip, RandomCrop, RandomTranslate, Transform,
};

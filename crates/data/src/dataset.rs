//! `Dataset`: numbered samples, each a feature tensor and a class label; `TensorDataset`
//! holds them in memory.

use tapegrad_core::{Error, Float, Result, Tensor};

/// Numbered samples: features of one fixed shape and a class label each.
///
/// A loader asks for the features of the samples of a batch one by one and writes them into
/// the batch's buffer, so a dataset never builds a tensor per sample.
pub trait Dataset<T: Float> {
    /// The number of samples.
    fn len(&self) -> usize;

    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of one sample's features (without the batch axis).
    fn feature_shape(&self) -> &[usize];

    /// Writes the features of sample `i` (row-major, `feature_shape`) into `out`.
    ///
    /// # Panics
    /// If `i ≥ len()` or `out` is not one sample long.
    fn read_features(&self, i: usize, out: &mut [T]);

    /// The class label of sample `i`.
    ///
    /// # Panics
    /// If `i ≥ len()`.
    fn label(&self, i: usize) -> usize;

    /// Every label, in order (what stratified splits and folds read).
    fn labels(&self) -> Vec<usize> {
        (0..self.len()).map(|i| self.label(i)).collect()
    }
}

/// Samples held in memory: features `[N, ...]` and labels `[N]`.
///
/// ```
/// use tapegrad_core::Tensor;
/// use tapegrad_data::{Dataset, TensorDataset};
/// let x = Tensor::<f32>::from_fn([4, 2], |i| i as f32);
/// let y = Tensor::from_vec(vec![0, 1, 0, 1], [4]);
/// let d = TensorDataset::new(x, y).unwrap();
/// assert_eq!((d.len(), d.feature_shape()), (4, &[2usize][..]));
/// let half = d.subset(&[1, 3]);
/// assert_eq!(half.labels(), vec![1, 1]);
/// ```
#[derive(Clone, Debug)]
pub struct TensorDataset<T: Float> {
    x: Tensor<T>,
    y: Tensor<usize>,
    sample: usize,
}

impl<T: Float> TensorDataset<T> {
    /// A dataset of the rows of `x` (`[N, ...]`, at least 1-d) labelled by `y` (`[N]`).
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is 0-d or `y` is not `[N]`.
    #[track_caller]
    pub fn new(x: Tensor<T>, y: Tensor<usize>) -> Result<Self> {
        if x.ndim() == 0 || y.dims() != [x.dims()[0]] {
            return Err(Error::shape(
                "TensorDataset",
                &[x.dims(), y.dims()],
                "features [N, ...] need labels [N]",
            ));
        }
        let sample = x.dims()[1..].iter().product();
        Ok(TensorDataset { x, y, sample })
    }

    /// The features `[N, ...]`.
    pub fn features(&self) -> &Tensor<T> {
        &self.x
    }

    /// The labels `[N]`.
    pub fn targets(&self) -> &Tensor<usize> {
        &self.y
    }

    /// The number of classes: one more than the largest label (0 for no samples).
    pub fn num_classes(&self) -> usize {
        self.y.as_slice().iter().max().map_or(0, |m| m + 1)
    }

    /// The samples at `indices`, in that order (copied: a split's parts are datasets of
    /// their own).
    ///
    /// # Panics
    /// If an index is out of range.
    #[track_caller]
    pub fn subset(&self, indices: &[usize]) -> TensorDataset<T> {
        let idx = Tensor::from_vec(indices.to_vec(), [indices.len()]);
        TensorDataset {
            x: self.x.index_select(0, &idx),
            y: gather_labels(&self.y, indices),
            sample: self.sample,
        }
    }

    /// The same samples with features `f(x)` (scaling, standardisation), of the same shape.
    ///
    /// # Panics
    /// If `f` changes the shape.
    #[track_caller]
    pub fn map_features(self, f: impl FnOnce(Tensor<T>) -> Tensor<T>) -> TensorDataset<T> {
        let shape = self.x.dims().to_vec();
        let x = f(self.x);
        assert_eq!(
            x.dims(),
            shape.as_slice(),
            "map_features: the shape changed"
        );
        TensorDataset { x, ..self }
    }

    /// The features reshaped per sample to `shape` (e.g. `[64]` to `[1, 8, 8]` for image
    /// transforms), the element count unchanged.
    ///
    /// # Errors
    /// [`Error::Shape`] if `shape` holds another number of elements.
    #[track_caller]
    pub fn with_feature_shape(self, shape: &[usize]) -> Result<TensorDataset<T>> {
        let mut full = vec![self.x.dims()[0]];
        full.extend_from_slice(shape);
        let x = self.x.try_with_shape(full)?;
        Ok(TensorDataset { x, ..self })
    }
}

/// `labels[indices]`.
pub(crate) fn gather_labels(labels: &Tensor<usize>, indices: &[usize]) -> Tensor<usize> {
    let y = labels.as_slice();
    Tensor::from_vec(indices.iter().map(|&i| y[i]).collect(), [indices.len()])
}

impl<T: Float> Dataset<T> for TensorDataset<T> {
    fn len(&self) -> usize {
        self.y.numel()
    }

    fn feature_shape(&self) -> &[usize] {
        &self.x.dims()[1..]
    }

    fn read_features(&self, i: usize, out: &mut [T]) {
        out.copy_from_slice(&self.x.as_slice()[i * self.sample..(i + 1) * self.sample]);
    }

    fn label(&self, i: usize) -> usize {
        self.y.as_slice()[i]
    }

    fn labels(&self) -> Vec<usize> {
        self.y.to_vec()
    }
}

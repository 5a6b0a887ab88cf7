//! Evaluation passes and ensembles: a model in evaluation mode over a loader, gradient
//! recording off; the average of several models' probabilities.

use tapegrad_core::{Float, Graph, ParamStore, Tensor};
use tapegrad_data::{DataLoader, Dataset};
use tapegrad_nn::{Forward, Module};

use crate::metrics::{predictions, ConfusionMatrix, Meter};
use crate::trainer::Loss;

/// What an evaluation pass measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation<T: Float> {
    /// Loss and accuracy over the samples.
    pub meter: Meter,
    /// Each sample's predicted class, in the loader's order.
    pub predicted: Vec<usize>,
    /// Each sample's label, in the loader's order.
    pub labels: Vec<usize>,
    /// The class probabilities (softmax of the outputs), `[N, C]`, when asked for.
    pub probabilities: Option<Tensor<T>>,
}

impl<T: Float> Evaluation<T> {
    /// The loss per sample.
    pub fn loss(&self) -> f64 {
        self.meter.loss()
    }

    /// The fraction of samples predicted right.
    pub fn accuracy(&self) -> f64 {
        self.meter.accuracy()
    }

    /// The confusion matrix over `classes` classes.
    pub fn confusion(&self, classes: usize) -> ConfusionMatrix {
        ConfusionMatrix::new(&self.predicted, &self.labels, classes)
    }
}

/// One pass over `loader` in evaluation mode on `graph` (reset before each batch).
pub(crate) fn eval_pass<T, D>(
    graph: &mut Graph<T>,
    model: &dyn Module<T>,
    store: &ParamStore<T>,
    loader: &DataLoader<'_, T, D>,
    loss: &dyn Loss<T>,
    keep_probabilities: bool,
) -> Evaluation<T>
where
    T: Float,
    D: Dataset<T> + ?Sized,
{
    let n = loader.samples_per_epoch();
    let mut out = Evaluation {
        meter: Meter::default(),
        predicted: Vec::with_capacity(n),
        labels: Vec::with_capacity(n),
        probabilities: None,
    };
    let mut probs: Vec<T> = Vec::new();
    let mut classes = 0;
    for batch in loader.epoch(0) {
        graph.reset();
        let g = &*graph;
        g.no_grad(|| {
            let mut f = Forward::eval(g, store);
            let y = model.forward(&mut f, g.constant(batch.x.clone()));
            let l = loss.loss(y, &batch.y).item().as_f64();
            let logits = y.value();
            out.meter.add(l, &logits, &batch.y);
            out.predicted.extend(predictions(&logits));
            out.labels.extend_from_slice(batch.y.as_slice());
            if keep_probabilities {
                classes = logits.dims().last().copied().unwrap_or(1);
                probs.extend_from_slice(y.softmax(-1).value().as_slice());
            }
        });
    }
    graph.reset();
    if keep_probabilities {
        out.probabilities = Some(Tensor::from_vec(probs, [out.labels.len(), classes]));
    }
    out
}

/// Evaluates `model` on every sample of `loader` (in evaluation mode: dropout off, batch
/// norm on its running statistics), with `loss` (e.g. [`tapegrad_nn::cross_entropy`]).
///
/// Use an unshuffled loader when the predictions' order matters.
pub fn evaluate<T, D>(
    model: &dyn Module<T>,
    store: &ParamStore<T>,
    loader: &DataLoader<'_, T, D>,
    loss: &dyn Loss<T>,
) -> Evaluation<T>
where
    T: Float,
    D: Dataset<T> + ?Sized,
{
    eval_pass(&mut Graph::new(), model, store, loader, loss, false)
}

/// [`evaluate`], keeping the class probabilities.
pub fn evaluate_with_probabilities<T, D>(
    model: &dyn Module<T>,
    store: &ParamStore<T>,
    loader: &DataLoader<'_, T, D>,
    loss: &dyn Loss<T>,
) -> Evaluation<T>
where
    T: Float,
    D: Dataset<T> + ?Sized,
{
    eval_pass(&mut Graph::new(), model, store, loader, loss, true)
}

/// Several models that vote by averaging their class probabilities — the k models of a
/// k-fold run, or one architecture trained from several seeds.
///
/// ```
/// use tapegrad_core::{seeded_rng, ParamStore, Tensor};
/// use tapegrad_data::{DataLoader, TensorDataset};
/// use tapegrad_nn::{Init, Linear};
/// use tapegrad_train::Ensemble;
///
/// let data = TensorDataset::new(Tensor::<f64>::rand_normal([20, 3], 0.0, 1.0, &mut seeded_rng(0)), Tensor::from_fn([20], |i| i % 2)).unwrap();
/// let (mut s1, mut s2) = (ParamStore::new(), ParamStore::new());
/// let m1 = Linear::new(&mut s1, "fc", 3, 2, Init::HeNormal, &mut seeded_rng(1));
/// let m2 = Linear::new(&mut s2, "fc", 3, 2, Init::HeNormal, &mut seeded_rng(2));
/// let report = Ensemble::new().with(&m1, &s1).with(&m2, &s2).evaluate(&DataLoader::new(&data, 8));
/// assert_eq!(report.member_accuracy.len(), 2);
/// assert_eq!(report.probabilities.dims(), &[20, 2]);
/// ```
pub struct Ensemble<'a, T: Float> {
    members: Vec<(&'a dyn Module<T>, &'a ParamStore<T>)>,
}

impl<T: Float> Default for Ensemble<'_, T> {
    fn default() -> Self {
        Ensemble {
            members: Vec::new(),
        }
    }
}

/// What an ensemble measured.
#[derive(Clone, Debug, PartialEq)]
pub struct EnsembleReport<T: Float> {
    /// Each member's accuracy alone, in the order added.
    pub member_accuracy: Vec<f64>,
    /// The accuracy of the averaged probabilities' top class.
    pub accuracy: f64,
    /// The averaged probabilities, `[N, C]`.
    pub probabilities: Tensor<T>,
    /// The ensemble's predicted classes.
    pub predicted: Vec<usize>,
    /// The labels.
    pub labels: Vec<usize>,
}

impl<'a, T: Float> Ensemble<'a, T> {
    /// No members yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a member: a model and the store holding its parameters.
    pub fn with(mut self, model: &'a dyn Module<T>, store: &'a ParamStore<T>) -> Self {
        self.members.push((model, store));
        self
    }

    /// Adds a member.
    pub fn push(&mut self, model: &'a dyn Module<T>, store: &'a ParamStore<T>) {
        self.members.push((model, store));
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member and the ensemble on every sample of `loader`.
    ///
    /// # Panics
    /// At the caller's line if the ensemble has no members or the members disagree on the
    /// number of classes.
    #[track_caller]
    pub fn evaluate<D: Dataset<T> + ?Sized>(
        &self,
        loader: &DataLoader<'_, T, D>,
    ) -> EnsembleReport<T> {
        if self.members.is_empty() {
            tapegrad_core::Error::argument("Ensemble::evaluate", "the ensemble has no members")
                .raise();
        }
        let ce = crate::trainer::CrossEntropy;
        let mut graph = Graph::new();
        let mut member_accuracy = Vec::with_capacity(self.members.len());
        let mut sum: Option<Tensor<T>> = None;
        let mut labels = Vec::new();
        for &(model, store) in &self.members {
            let e = eval_pass(&mut graph, model, store, loader, &ce, true);
            member_accuracy.push(e.accuracy());
            let p = e.probabilities.expect("asked for");
            sum = Some(match sum {
                None => p,
                Some(s) if s.dims() == p.dims() => &s + &p,
                Some(s) => tapegrad_core::Error::argument(
                    "Ensemble::evaluate",
                    format!(
                        "members give probabilities of shapes {:?} and {:?}",
                        s.dims(),
                        p.dims()
                    ),
                )
                .raise(),
            });
            labels = e.labels;
        }
        let probabilities = sum
            .expect("at least one member")
            .mul_scalar(T::from_f64(1.0 / self.members.len() as f64));
        let predicted = predictions(&probabilities);
        let right = predicted
            .iter()
            .zip(&labels)
            .filter(|(p, l)| p == l)
            .count();
        EnsembleReport {
            member_accuracy,
            accuracy: right as f64 / labels.len().max(1) as f64,
            probabilities,
            predicted,
            labels,
        }
    }
}

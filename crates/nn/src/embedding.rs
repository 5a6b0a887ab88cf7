//! `Embedding`: a lookup table of learned vectors (`{name}.weight`, `[num, dim]`, initialised
//! N(0, 1) as PyTorch).

use rand::Rng;
use tapegrad_core::{Float, ParamKey, ParamRole, ParamStore, Tensor, Var};

use crate::init::Init;
use crate::module::{Forward, Module};
use crate::per_sample::TapKind;

/// A table of `num` vectors of size `dim`.
#[derive(Clone, Debug)]
pub struct Embedding {
    weight: ParamKey,
    num: usize,
    dim: usize,
}

impl Embedding {
    /// A table initialised N(0, 1).
    #[track_caller]
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        num: usize,
        dim: usize,
        rng: &mut R,
    ) -> Self {
        let w = Init::Normal {
            mean: 0.0,
            std: 1.0,
        }
        .tensor(&[num, dim], rng);
        Embedding {
            weight: store.insert_with_role(format!("{name}.weight"), w, ParamRole::Weight),
            num,
            dim,
        }
    }

    /// The table's key.
    pub fn weight(&self) -> ParamKey {
        self.weight
    }

    /// The vectors of `indices`: shape `indices.shape() + [dim]`. Repeated indices
    /// accumulate their gradients.
    ///
    /// # Panics
    /// If an index is `≥ num`.
    #[track_caller]
    pub fn lookup<'g, T: Float>(
        &self,
        f: &mut Forward<'g, '_, T>,
        indices: &Tensor<usize>,
    ) -> Var<'g, T> {
        if let Some(&bad) = indices.as_slice().iter().find(|&&i| i >= self.num) {
            crate::fail(
                "Embedding",
                format!(
                    "index {bad} is out of range for a table of {} vectors",
                    self.num
                ),
            );
        }
        let flat = indices.with_shape([indices.numel()]);
        let mut shape = indices.dims().to_vec();
        shape.push(self.dim);
        let y = f.param(self.weight).index_select(0, &flat).reshape(shape);
        let (weight, num) = (self.weight, self.num);
        f.tap(
            || TapKind::Embedding {
                weight,
                num,
                indices: indices.clone(),
            },
            y,
            y,
        )
    }
}

impl<T: Float> Module<T> for Embedding {
    /// Looks up the indices held (as whole numbers) by `x`, a constant.
    #[track_caller]
    fn forward<'g>(&self, f: &mut Forward<'g, '_, T>, x: Var<'g, T>) -> Var<'g, T> {
        let value = x.value();
        let mut idx = Vec::with_capacity(value.numel());
        for &v in value.as_slice() {
            let i = v.as_f64();
            if !(i >= 0.0 && i.fract() == 0.0 && i < usize::MAX as f64) {
                crate::fail(
                    "Embedding",
                    format!("the input must hold whole, non-negative indices, got {i}"),
                );
            }
            idx.push(i as usize);
        }
        let idx = Tensor::from_vec(idx, value.dims());
        self.lookup(f, &idx)
    }

    fn params(&self) -> Vec<ParamKey> {
        vec![self.weight]
    }
}

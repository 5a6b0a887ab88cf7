//! Augmentation: seeded random transforms of image batches `[N, C, H, W]`, composable.
//!
//! A transform draws its random numbers from the generator it is handed; a
//! [`DataLoader`](crate::DataLoader) hands it one seeded by `(seed, epoch, batch)`, so
//! augmentation is reproducible, and resumable in the middle of an epoch.

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};
use tapegrad_core::{Error, Float, Result, StdRng, Tensor};

/// A random transform of a batch of features.
pub trait Transform<T: Float> {
    /// The transformed batch (it may reuse `x`'s memory).
    fn apply(&self, x: Tensor<T>, rng: &mut StdRng) -> Tensor<T>;

    /// Checks that samples of shape `sample` (without the batch axis) suit the transform;
    /// the loader calls it when the transform is attached.
    ///
    /// # Errors
    /// [`Error::Shape`] naming the transform and the shape.
    fn check(&self, sample: &[usize]) -> Result<()> {
        let _ = sample;
        Ok(())
    }
}

/// Transforms applied in order.
pub struct Compose<T: Float>(pub Vec<Box<dyn Transform<T>>>);

impl<T: Float> Transform<T> for Compose<T> {
    fn apply(&self, mut x: Tensor<T>, rng: &mut StdRng) -> Tensor<T> {
        for t in &self.0 {
            x = t.apply(x, rng);
        }
        x
    }

    fn check(&self, sample: &[usize]) -> Result<()> {
        self.0.iter().try_for_each(|t| t.check(sample))
    }
}

#[track_caller]
fn image_shape(op: &'static str, sample: &[usize]) -> Result<()> {
    if sample.len() != 3 {
        return Err(Error::shape(
            op,
            &[sample],
            "image transforms take samples [C, H, W] (batches [N, C, H, W])",
        ));
    }
    Ok(())
}

/// `(n, c, h, w)` of a batch.
fn dims<T: Float>(x: &Tensor<T>) -> (usize, usize, usize, usize) {
    let s = x.dims();
    assert_eq!(
        s.len(),
        4,
        "image transforms take batches [N, C, H, W], got {s:?}"
    );
    (s[0], s[1], s[2], s[3])
}

/// Mirrors each image left to right with probability `p`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HorizontalFlip {
    /// The probability of a flip.
    pub p: f64,
}

impl<T: Float> Transform<T> for HorizontalFlip {
    fn apply(&self, mut x: Tensor<T>, rng: &mut StdRng) -> Tensor<T> {
        let (n, c, h, w) = dims(&x);
        let v = x.as_mut_slice();
        for i in 0..n {
            if rng.random_bool(self.p.clamp(0.0, 1.0)) {
                for row in v[i * c * h * w..(i + 1) * c * h * w].chunks_exact_mut(w.max(1)) {
                    row.reverse();
                }
            }
        }
        x
    }

    fn check(&self, sample: &[usize]) -> Result<()> {
        image_shape("HorizontalFlip", sample)
    }
}

/// Shifts each image by a whole number of pixels, drawn uniformly from `−max..=max` along
/// each axis, filling with zeros (the ±1-pixel translation of the digits recipe).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomTranslate {
    /// The largest shift along the width.
    pub max_dx: usize,
    /// The largest shift along the height.
    pub max_dy: usize,
}

impl<T: Float> Transform<T> for RandomTranslate {
    fn apply(&self, x: Tensor<T>, rng: &mut StdRng) -> Tensor<T> {
        let (n, c, h, w) = dims(&x);
        let src = x.as_slice();
        // The shifts are drawn sample by sample as the output is written (no list of them:
        // an augmented epoch allocates nothing).
        Tensor::from_writer(x.dims(), |out| {
            for i in 0..n {
                let dx = rng.random_range(-(self.max_dx as i64)..=self.max_dx as i64) as isize;
                let dy = rng.random_range(-(self.max_dy as i64)..=self.max_dy as i64) as isize;
                // Output row `yo` is input row `yo − dy` moved by `dx` (zeros where
                // either falls outside): whole rows copied, not pixels tested.
                let (dxu, w_i) = (dx.unsigned_abs().min(w), w as isize);
                for ch in 0..c {
                    let base = (i * c + ch) * h * w;
                    for yo in 0..h {
                        let row = &mut out[base + yo * w..][..w];
                        let yi = yo as isize - dy;
                        if !(0..h as isize).contains(&yi) || dxu == w {
                            row.fill(T::zero());
                            continue;
                        }
                        let src_row = &src[base + yi as usize * w..][..w];
                        if dx >= 0 {
                            row[..dxu].fill(T::zero());
                            row[dxu..].copy_from_slice(&src_row[..(w_i - dx) as usize]);
                        } else {
                            row[..w - dxu].copy_from_slice(&src_row[dxu..]);
                            row[w - dxu..].fill(T::zero());
                        }
                    }
                }
            }
        })
    }

    fn check(&self, sample: &[usize]) -> Result<()> {
        image_shape("RandomTranslate", sample)
    }
}

/// Pads each image with `padding` zeros on every side and crops a window of `size` at a
/// uniformly drawn place (the CIFAR augmentation: `size` = the image's, padding 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomCrop {
    /// `(height, width)` of the crop.
    pub size: (usize, usize),
    /// Zeros added on each side first.
    pub padding: usize,
}

impl<T: Float> Transform<T> for RandomCrop {
    fn apply(&self, x: Tensor<T>, rng: &mut StdRng) -> Tensor<T> {
        let (n, c, h, w) = dims(&x);
        let (ch_, cw) = self.size;
        let p = self.padding;
        let (span_y, span_x) = (h + 2 * p - ch_, w + 2 * p - cw);
        let src = x.as_slice();
        Tensor::from_writer([n, c, ch_, cw], |out| {
            for i in 0..n {
                let (top, left) = (rng.random_range(0..=span_y), rng.random_range(0..=span_x));
                for k in 0..c {
                    let (si, so) = ((i * c + k) * h * w, (i * c + k) * ch_ * cw);
                    for yo in 0..ch_ {
                        let yi = (top + yo) as isize - p as isize;
                        for xo in 0..cw {
                            let xi = (left + xo) as isize - p as isize;
                            out[so + yo * cw + xo] =
                                if (0..h as isize).contains(&yi) && (0..w as isize).contains(&xi) {
                                    src[si + yi as usize * w + xi as usize]
                                } else {
                                    T::zero()
                                };
                        }
                    }
                }
            }
        })
    }

    fn check(&self, sample: &[usize]) -> Result<()> {
        image_shape("RandomCrop", sample)?;
        let (h, w) = (sample[1] + 2 * self.padding, sample[2] + 2 * self.padding);
        if self.size.0 > h || self.size.1 > w || self.size.0 == 0 || self.size.1 == 0 {
            return Err(Error::shape(
                "RandomCrop",
                &[sample],
                format!(
                    "a crop of {:?} does not fit the padded image {h} × {w}",
                    self.size
                ),
            ));
        }
        Ok(())
    }
}

/// Adds independent normal noise of standard deviation `std` to every input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GaussianNoise {
    /// The noise's standard deviation.
    pub std: f64,
}

impl<T: Float> Transform<T> for GaussianNoise {
    fn apply(&self, mut x: Tensor<T>, rng: &mut StdRng) -> Tensor<T> {
        for v in x.as_mut_slice() {
            let z: f64 = StandardNormal.sample(rng);
            *v += T::from_f64(self.std * z);
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapegrad_core::seeded_rng;

    fn img() -> Tensor<f64> {
        Tensor::from_fn([2, 1, 3, 4], |i| i as f64 + 1.0)
    }

    #[test]
    fn flips_mirror_rows_and_are_seeded() {
        let x = img();
        let y = HorizontalFlip { p: 1.0 }.apply(x.clone(), &mut seeded_rng(0));
        assert_eq!(&y.to_vec()[..4], &[4.0, 3.0, 2.0, 1.0]);
        let z = HorizontalFlip { p: 0.0 }.apply(x.clone(), &mut seeded_rng(0));
        assert_eq!(z, x);
        let a = HorizontalFlip { p: 0.5 }.apply(x.clone(), &mut seeded_rng(3));
        let b = HorizontalFlip { p: 0.5 }.apply(x, &mut seeded_rng(3));
        assert_eq!(a, b);
    }

    #[test]
    fn translation_shifts_with_zero_fill() {
        let x = Tensor::<f64>::from_fn([1, 1, 3, 3], |i| i as f64 + 1.0);
        // With a range of 0 nothing moves.
        let t = RandomTranslate {
            max_dx: 0,
            max_dy: 0,
        };
        assert_eq!(t.apply(x.clone(), &mut seeded_rng(0)), x);
        // Every ±1 shift: the sum drops by the border that falls off, never grows.
        let t = RandomTranslate {
            max_dx: 1,
            max_dy: 1,
        };
        let mut seen = std::collections::HashSet::new();
        for s in 0..50 {
            let y = t.apply(x.clone(), &mut seeded_rng(s));
            let v = y.to_vec();
            assert!(v.iter().sum::<f64>() <= 45.0);
            // Each output pixel is zero or an input pixel from one step away.
            for (k, &p) in v.iter().enumerate() {
                if p != 0.0 {
                    let src = p as usize - 1;
                    let (dy, dx) = (k / 3, k % 3);
                    assert!((src / 3).abs_diff(dy) <= 1 && (src % 3).abs_diff(dx) <= 1);
                }
            }
            seen.insert(v.iter().map(|p| *p as i64).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), 9, "all nine shifts occur");
    }

    #[test]
    fn translation_equals_the_pixel_by_pixel_definition() {
        let (n, c, h, w) = (6, 2, 4, 5);
        let x = Tensor::<f64>::from_fn([n, c, h, w], |i| i as f64 + 1.0);
        let t = RandomTranslate {
            max_dx: 2,
            max_dy: 6,
        };
        for seed in 0..20 {
            let got = t.apply(x.clone(), &mut seeded_rng(seed));
            // The same draws, in the same order: dx then dy, sample by sample.
            let mut rng = seeded_rng(seed);
            let src = x.as_slice();
            let mut want = vec![0.0; src.len()];
            for i in 0..n {
                let dx = rng.random_range(-2i64..=2) as isize;
                let dy = rng.random_range(-6i64..=6) as isize;
                for ch in 0..c {
                    for yo in 0..h {
                        for xo in 0..w {
                            let (yi, xi) = (yo as isize - dy, xo as isize - dx);
                            if (0..h as isize).contains(&yi) && (0..w as isize).contains(&xi) {
                                want[((i * c + ch) * h + yo) * w + xo] =
                                    src[((i * c + ch) * h + yi as usize) * w + xi as usize];
                            }
                        }
                    }
                }
            }
            assert_eq!(got.to_vec(), want, "seed {seed}");
        }
    }

    #[test]
    fn crops_keep_the_size_and_checks_refuse_what_does_not_fit() {
        let c = RandomCrop {
            size: (3, 4),
            padding: 1,
        };
        let y = c.apply(img(), &mut seeded_rng(1));
        assert_eq!(y.dims(), &[2, 1, 3, 4]);
        assert!(<RandomCrop as Transform<f64>>::check(&c, &[1, 3, 4]).is_ok());
        let big = RandomCrop {
            size: (9, 9),
            padding: 1,
        };
        assert!(<RandomCrop as Transform<f64>>::check(&big, &[1, 3, 4]).is_err());
        assert!(
            <HorizontalFlip as Transform<f64>>::check(&HorizontalFlip { p: 0.5 }, &[12]).is_err()
        );
        let n = GaussianNoise { std: 0.5 }
            .apply(Tensor::<f64>::zeros([1, 1, 100, 100]), &mut seeded_rng(2));
        let sd = (n.as_slice().iter().map(|v| v * v).sum::<f64>() / 1e4).sqrt();
        assert!((sd - 0.5).abs() < 0.02, "{sd}");
    }
}

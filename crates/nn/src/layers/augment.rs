//! Data augmentation for images `[batch, channels, height, width]`: random flips and
//! translations, drawn per example in training and the identity in evaluation, as Keras'
//! `RandomFlip` and `RandomTranslation` layers, and torchvision's `RandomHorizontalFlip` and
//! `RandomCrop(padding)`. The model sees a new variant of each image at every epoch, which
//! regularizes like more data: the usual remedy for a small set of photos that the model
//! learns by heart.
//!
//! Both move pixels: output pixel `(i, j)` of example `b` reads input pixel `source_b(i, j)`
//! of every channel, or is 0 where the source falls outside the image. One differentiable
//! gather serves both, and its backward adds each output's gradient to the pixel it read.

use crate::module::{Ctx, Module};
use nabla_core::{DType, Element, Error, Float, Result, Tensor};

/// Which mirror images [`RandomFlip`] draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlipMode {
    /// Left-right, with probability 1/2 (photos of things that have no handedness).
    Horizontal,
    /// Top-bottom, with probability 1/2 (aerial and microscope images).
    Vertical,
    /// Left-right and top-bottom, each with probability 1/2 on its own.
    Both,
}

impl FlipMode {
    fn name(self) -> &'static str {
        match self {
            FlipMode::Horizontal => "horizontal",
            FlipMode::Vertical => "vertical",
            FlipMode::Both => "horizontal and vertical",
        }
    }
}

/// Mirrors each image with probability 1/2 in training; the identity in evaluation.
#[derive(Debug, Clone, Copy)]
pub struct RandomFlip {
    mode: FlipMode,
}

impl RandomFlip {
    pub fn new(mode: FlipMode) -> RandomFlip {
        RandomFlip { mode }
    }
}

impl Module for RandomFlip {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let [batch, _, height, width] = images("RandomFlip", x)?;
        if !ctx.is_training() {
            return Ok(x.clone());
        }
        let rng = ctx.rng();
        let (horizontal, vertical) = match self.mode {
            FlipMode::Horizontal => (true, false),
            FlipMode::Vertical => (false, true),
            FlipMode::Both => (true, true),
        };
        let flips: Vec<(bool, bool)> = (0..batch)
            .map(|_| {
                let h = horizontal && rng.uniform() < 0.5;
                let v = vertical && rng.uniform() < 0.5;
                (h, v)
            })
            .collect();
        remap(x, |b, i, j| {
            let (h, v) = flips[b];
            let i = if v { height - 1 - i } else { i };
            let j = if h { width - 1 - j } else { j };
            Some((i, j))
        })
    }

    fn describe(&self) -> String {
        format!("RandomFlip({})", self.mode.name())
    }
}

/// Shifts each image by a whole number of pixels drawn uniformly from `[-pixels, pixels]`,
/// down and right independently, in training; the vacated border is 0 (black for pixels
/// divided by 255, the mean for standardized ones). The identity in evaluation.
#[derive(Debug, Clone, Copy)]
pub struct RandomTranslation {
    pixels: usize,
}

impl RandomTranslation {
    /// Shifts of at most `pixels` (at least 1) in each direction.
    pub fn new(pixels: usize) -> Result<RandomTranslation> {
        if pixels == 0 {
            return Err(Error::invalid(
                "RandomTranslation",
                "pixels must be at least 1",
            ));
        }
        Ok(RandomTranslation { pixels })
    }

    /// Checks that shifts of up to `pixels` keep part of a `height` x `width` image in sight
    /// (config building asks before any data flows; the forward pass asks again).
    pub fn check_fits(pixels: usize, height: usize, width: usize) -> Result<()> {
        if pixels >= height.min(width) {
            return Err(Error::invalid(
                "RandomTranslation",
                format!(
                    "a shift of up to {pixels} pixels would move a {height} x {width} image out \
                     of sight: at most {}",
                    height.min(width).saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }
}

impl Module for RandomTranslation {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let [batch, _, height, width] = images("RandomTranslation", x)?;
        Self::check_fits(self.pixels, height, width)?;
        if !ctx.is_training() {
            return Ok(x.clone());
        }
        let rng = ctx.rng();
        let k = self.pixels as isize;
        let shifts: Vec<(isize, isize)> = (0..batch)
            .map(|_| {
                let down = rng.below(2 * self.pixels + 1) as isize - k;
                let right = rng.below(2 * self.pixels + 1) as isize - k;
                (down, right)
            })
            .collect();
        remap(x, |b, i, j| {
            let (down, right) = shifts[b];
            let (i, j) = (i as isize - down, j as isize - right);
            let inside = (0..height as isize).contains(&i) && (0..width as isize).contains(&j);
            inside.then_some((i as usize, j as usize))
        })
    }

    fn describe(&self) -> String {
        format!("RandomTranslation({})", self.pixels)
    }
}

/// The dims of a batch of images, or an error naming the shape.
fn images(op: &'static str, x: &Tensor) -> Result<[usize; 4]> {
    match *x.dims() {
        [b, c, h, w] => Ok([b, c, h, w]),
        _ => Err(Error::bad_shape(
            op,
            x.shape(),
            "needs images [batch, channels, height, width]: give flat pixels their shape \
             with a reshape first",
        )),
    }
}

/// `out[b, c, i, j] = x[b, c, source(b, i, j)]`, or 0 where `source` is `None`.
fn remap(
    x: &Tensor,
    source: impl Fn(usize, usize, usize) -> Option<(usize, usize)>,
) -> Result<Tensor> {
    let [batch, channels, height, width] = images("remap", x)?;
    let plane = height * width;
    // Per example and output pixel, the input pixel it reads (shared by the channels).
    let mut sources = Vec::with_capacity(batch * plane);
    for b in 0..batch {
        for i in 0..height {
            for j in 0..width {
                sources.push(source(b, i, j).map(|(si, sj)| si * width + sj));
            }
        }
    }
    if sources
        .iter()
        .enumerate()
        .all(|(k, s)| *s == Some(k % plane))
    {
        return Ok(x.clone());
    }
    if !x.requires_grad() {
        // The usual case, the data itself: one pass of copies, nothing to record.
        return match x.dtype() {
            DType::F32 => copy_pixels::<f32>(x, channels, plane, &sources),
            DType::F64 => copy_pixels::<f64>(x, channels, plane, &sources),
            DType::I64 => Err(Error::invalid("remap", "needs float images, got i64")),
        };
    }
    // Inside a network: a gather, whose backward adds each output's gradient to its source.
    let mut index = Vec::with_capacity(batch * channels * plane);
    let mut keep = Vec::with_capacity(batch * plane);
    for example in sources.chunks_exact(plane) {
        for _ in 0..channels {
            index.extend(example.iter().map(|s| s.unwrap_or(0) as i64));
        }
        keep.extend(example.iter().map(|s| if s.is_some() { 1.0 } else { 0.0 }));
    }
    let flat = x.reshape([batch, channels, plane])?;
    let index = Tensor::from_vec(index, [batch, channels, plane])?;
    let mut out = flat.gather(2, &index)?;
    if keep.contains(&0.0) {
        let keep = Tensor::from_vec(keep, [batch, 1, plane])?.to_dtype(x.dtype())?;
        out = out.mul(&keep)?;
    }
    out.reshape([batch, channels, height, width])
}

/// [`remap`] on values that need no gradient.
fn copy_pixels<T: Float + Element>(
    x: &Tensor,
    channels: usize,
    plane: usize,
    sources: &[Option<usize>],
) -> Result<Tensor> {
    let data = x.contiguous_data::<T>()?;
    let mut out = Vec::with_capacity(data.len());
    for (images, example) in data
        .chunks_exact(channels * plane)
        .zip(sources.chunks_exact(plane))
    {
        for image in images.chunks_exact(plane) {
            out.extend(example.iter().map(|s| s.map_or(T::zero(), |s| image[s])));
        }
    }
    Tensor::from_vec(out, x.shape().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nabla_core::Rng;

    /// A batch of `n` distinct 2-channel 3x4 images.
    fn batch(n: usize) -> Tensor {
        let values: Vec<f64> = (0..n * 2 * 12).map(|v| v as f64 + 1.0).collect();
        Tensor::from_vec(values, [n, 2, 3, 4]).unwrap()
    }

    /// Example `b`, channel `c`, as rows.
    fn plane(t: &Tensor, b: usize, c: usize) -> Vec<Vec<f64>> {
        let [_, channels, h, w] = images("test", t).unwrap();
        let v = t.contiguous_data::<f64>().unwrap();
        let at = (b * channels + c) * h * w;
        (0..h)
            .map(|i| v[at + i * w..at + (i + 1) * w].to_vec())
            .collect()
    }

    /// The image shifted down by `down` and right by `right`, 0 where it came from outside.
    fn shifted(p: &[Vec<f64>], down: isize, right: isize) -> Vec<Vec<f64>> {
        let (h, w) = (p.len() as isize, p[0].len() as isize);
        (0..h)
            .map(|i| {
                (0..w)
                    .map(|j| {
                        let (si, sj) = (i - down, j - right);
                        if (0..h).contains(&si) && (0..w).contains(&sj) {
                            p[si as usize][sj as usize]
                        } else {
                            0.0
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn mirrored(p: &[Vec<f64>], horizontal: bool, vertical: bool) -> Vec<Vec<f64>> {
        let mut rows: Vec<Vec<f64>> = p.to_vec();
        if vertical {
            rows.reverse();
        }
        if horizontal {
            rows.iter_mut().for_each(|r| r.reverse());
        }
        rows
    }

    fn train(seed: u64) -> Ctx {
        Ctx::train(Rng::seed(seed))
    }

    #[test]
    fn flips_are_mirror_images_drawn_per_example() {
        let x = batch(64);
        for (mode, choices) in [
            (FlipMode::Horizontal, vec![(false, false), (true, false)]),
            (FlipMode::Vertical, vec![(false, false), (false, true)]),
            (
                FlipMode::Both,
                vec![(false, false), (true, false), (false, true), (true, true)],
            ),
        ] {
            let y = RandomFlip::new(mode).forward(&x, &mut train(3)).unwrap();
            let mut seen = vec![0; choices.len()];
            for b in 0..64 {
                // Both channels of an example get the same flip.
                let k = choices
                    .iter()
                    .position(|&(h, v)| {
                        (0..2).all(|c| plane(&y, b, c) == mirrored(&plane(&x, b, c), h, v))
                    })
                    .unwrap_or_else(|| panic!("{mode:?}: example {b} is no mirror image"));
                seen[k] += 1;
            }
            // Each choice is drawn (a miss has probability below 4 * (3/4)^64 = 4e-8).
            assert!(seen.iter().all(|&n| n > 0), "{mode:?}: {seen:?}");
        }
    }

    #[test]
    fn translations_shift_within_the_bound_and_fill_with_zeros() {
        let x = batch(200);
        let y = RandomTranslation::new(1)
            .unwrap()
            .forward(&x, &mut train(5))
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for b in 0..200 {
            let shift = (-1..=1)
                .flat_map(|d| (-1..=1).map(move |r| (d, r)))
                .find(|&(d, r)| (0..2).all(|c| plane(&y, b, c) == shifted(&plane(&x, b, c), d, r)))
                .unwrap_or_else(|| panic!("example {b} is no shift of at most 1"));
            seen.insert(shift);
        }
        assert_eq!(seen.len(), 9, "every shift is drawn: {seen:?}");
    }

    #[test]
    fn evaluation_is_the_identity_and_a_seed_repeats_its_draws() {
        let x = batch(16);
        let flip = RandomFlip::new(FlipMode::Both);
        let shift = RandomTranslation::new(2).unwrap();
        for layer in [&flip as &dyn Module, &shift] {
            let same = layer.forward(&x, &mut Ctx::eval()).unwrap();
            assert_eq!(same.to_vec::<f64>().unwrap(), x.to_vec::<f64>().unwrap());
            let a = layer.forward(&x, &mut train(7)).unwrap();
            let b = layer.forward(&x, &mut train(7)).unwrap();
            let c = layer.forward(&x, &mut train(8)).unwrap();
            assert_eq!(a.to_vec::<f64>().unwrap(), b.to_vec::<f64>().unwrap());
            assert_ne!(a.to_vec::<f64>().unwrap(), c.to_vec::<f64>().unwrap());
        }
    }

    /// The gradient of `sum(w · layer(x))` by finite differences: each output reads one input
    /// pixel or none, so the gradient is w gathered back (a sum where pixels are read twice).
    #[test]
    fn gradients_match_finite_differences() {
        let x = batch(6);
        let weights: Vec<f64> = (0..x.elem_count())
            .map(|i| ((i * 7) % 11) as f64 - 5.0)
            .collect();
        let w = Tensor::from_vec(weights, x.shape().clone()).unwrap();
        let flip = RandomFlip::new(FlipMode::Both);
        let shift = RandomTranslation::new(2).unwrap();
        for layer in [&flip as &dyn Module, &shift] {
            let f = |x: &Tensor| -> f64 {
                let y = layer.forward(x, &mut train(11)).unwrap();
                y.mul(&w)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar_f64()
                    .unwrap()
            };
            let leaf = nabla_core::Var::new(&x).unwrap();
            let y = layer.forward(&leaf.as_tensor(), &mut train(11)).unwrap();
            let loss = y.mul(&w).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            let got = grads.get(&leaf).unwrap().to_vec::<f64>().unwrap();
            let base = x.to_vec::<f64>().unwrap();
            for k in 0..base.len() {
                let at = |d: f64| {
                    let mut v = base.clone();
                    v[k] += d;
                    f(&Tensor::from_vec(v, x.shape().clone()).unwrap())
                };
                let want = (at(1e-3) - at(-1e-3)) / 2e-3;
                assert!(
                    (got[k] - want).abs() < 1e-6,
                    "{}: x[{k}] {} vs {want}",
                    layer.describe(),
                    got[k]
                );
            }
        }
    }

    /// The copy (data) and the gather (inside a network) give the same images.
    #[test]
    fn copies_and_gathers_agree() {
        let x = batch(20);
        let var = nabla_core::Var::new(&x).unwrap();
        let flip = RandomFlip::new(FlipMode::Both);
        let shift = RandomTranslation::new(2).unwrap();
        for layer in [&flip as &dyn Module, &shift] {
            let copied = layer.forward(&x, &mut train(4)).unwrap();
            let gathered = layer.forward(&var.as_tensor(), &mut train(4)).unwrap();
            assert!(!copied.requires_grad() && gathered.requires_grad());
            assert_eq!(
                copied.to_vec::<f64>().unwrap(),
                gathered.to_vec::<f64>().unwrap()
            );
        }
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_shape() {
        let flat = Tensor::from_vec(vec![0.0f32; 32], [2, 16]).unwrap();
        let e = RandomFlip::new(FlipMode::Horizontal)
            .forward(&flat, &mut train(0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[2, 16]") && e.contains("reshape"), "{e}");
        let e = RandomTranslation::new(3)
            .unwrap()
            .forward(&batch(1), &mut Ctx::eval())
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 x 4") && e.contains("at most 2"), "{e}");
        assert!(RandomTranslation::new(0).is_err());
    }
}

//! Data augmentation for images `[batch, channels, height, width]`: random flips,
//! translations, rotations and zooms, drawn per example in training and the identity in
//! evaluation, as Keras' `RandomFlip`, `RandomTranslation`, `RandomRotation` and `RandomZoom`
//! layers (torchvision's `RandomHorizontalFlip`, `RandomCrop(padding)` and `RandomAffine`). The
//! model sees a new variant of each image at every epoch, which regularizes like more data: the
//! usual remedy for a small set of photos that the model learns by heart.
//!
//! All of them move pixels: output pixel `(i, j)` of example `b` is a weighted sum of input
//! pixels of the same channel: one with weight 1 for a flip or a whole-pixel shift, the four
//! neighbours of the source position for a rotation or zoom (bilinear), none where the source
//! falls outside the image (0). One resampling serves them all: a single pass over data that
//! needs no gradient, differentiable gathers inside a network, whose backward adds each
//! output's gradient, weighted, to the pixels it read.

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

/// Rotates each image about its centre by an angle drawn uniformly from `[-degrees, degrees]`
/// in training, sampling bilinearly; corners brought in from outside are 0. The identity in
/// evaluation. Keras' `RandomRotation(degrees / 360, fill_mode="constant")`.
#[derive(Debug, Clone, Copy)]
pub struct RandomRotation {
    degrees: f64,
}

impl RandomRotation {
    /// Angles of at most `degrees`, in (0, 180].
    pub fn new(degrees: f64) -> Result<RandomRotation> {
        if !(degrees > 0.0 && degrees <= 180.0) {
            return Err(Error::invalid(
                "RandomRotation",
                format!("degrees must be in (0, 180], got {degrees}"),
            ));
        }
        Ok(RandomRotation { degrees })
    }
}

impl Module for RandomRotation {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        random_warps("RandomRotation", x, ctx, |between| Warp {
            degrees: between * self.degrees,
            scale: 1.0,
        })
    }

    fn describe(&self) -> String {
        format!("RandomRotation({}°)", self.degrees)
    }
}

/// Zooms each image about its centre by a factor drawn uniformly from `[1 - factor, 1 +
/// factor]` in training (above 1 enlarges: zooms in), sampling bilinearly; what a zoom out
/// brings in from outside is 0. The identity in evaluation. Keras'
/// `RandomZoom(-factor, fill_mode="constant")`, with height and width zoomed alike.
#[derive(Debug, Clone, Copy)]
pub struct RandomZoom {
    factor: f64,
}

impl RandomZoom {
    /// Zooms of at most `factor` either way, in (0, 1).
    pub fn new(factor: f64) -> Result<RandomZoom> {
        if !(factor > 0.0 && factor < 1.0) {
            return Err(Error::invalid(
                "RandomZoom",
                format!("factor must be in (0, 1), got {factor}"),
            ));
        }
        Ok(RandomZoom { factor })
    }
}

impl Module for RandomZoom {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        random_warps("RandomZoom", x, ctx, |between| Warp {
            degrees: 0.0,
            scale: 1.0 + between * self.factor,
        })
    }

    fn describe(&self) -> String {
        format!("RandomZoom({})", self.factor)
    }
}

/// A rotation (counter-clockwise as the image is shown, rows downwards) and a zoom about the
/// image's centre.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Warp {
    degrees: f64,
    scale: f64,
}

/// In training, each example warped by its own `draw(u)`, `u` drawn uniformly from [-1, 1];
/// in evaluation the images as they are.
fn random_warps(
    op: &'static str,
    x: &Tensor,
    ctx: &mut Ctx,
    draw: impl Fn(f64) -> Warp,
) -> Result<Tensor> {
    let batch = images(op, x)?[0];
    if !ctx.is_training() {
        return Ok(x.clone());
    }
    let rng = ctx.rng();
    let warps: Vec<Warp> = (0..batch)
        .map(|_| draw(2.0 * rng.uniform() - 1.0))
        .collect();
    warp(x, &warps)
}

/// Each example warped by its own [`Warp`]: output pixel `p` reads the input at
/// `c + R(−θ)(p − c) / s`, the inverse map, with `c` the centre, so that every output pixel
/// gets a value (bilinear, 0 outside).
fn warp(x: &Tensor, warps: &[Warp]) -> Result<Tensor> {
    let [_, _, height, width] = images("warp", x)?;
    let (cy, cx) = ((height as f64 - 1.0) / 2.0, (width as f64 - 1.0) / 2.0);
    // Per example: cos θ / s and sin θ / s.
    let maps: Vec<(f64, f64)> = warps
        .iter()
        .map(|w| {
            let (sin, cos) = w.degrees.to_radians().sin_cos();
            (cos / w.scale, sin / w.scale)
        })
        .collect();
    resample(x, |b, i, j| {
        let (cos, sin) = maps[b];
        let (dy, dx) = (i as f64 - cy, j as f64 - cx);
        // Rows grow downwards: a counter-clockwise turn on screen (90°: numpy's rot90) reads
        // (dy, dx) from dy' = cos·dy + sin·dx, dx' = −sin·dy + cos·dx.
        let y = cy + cos * dy + sin * dx;
        let x = cx - sin * dy + cos * dx;
        Taps::bilinear(y, x, height, width)
    })
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

/// The input pixels (indices within a plane) an output pixel reads and their weights: one
/// with weight 1 for a whole-pixel move, up to four for bilinear sampling, none where the
/// source falls outside the image (the pixel is 0). Slots past `len` hold `(0, 0.0)`: read
/// as a tap, pixel 0 with weight 0.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Taps {
    taps: [(usize, f64); 4],
    len: usize,
}

impl Taps {
    /// Pixel `(i, j)` of a `width`-wide image as it is, or nothing.
    fn pixel(source: Option<(usize, usize)>, width: usize) -> Taps {
        let mut t = Taps::default();
        if let Some((i, j)) = source {
            t.push(i * width + j, 1.0);
        }
        t
    }

    /// The value at the real position `(y, x)` of a `height` x `width` image by bilinear
    /// interpolation of its four neighbours, `(1−fy)(1−fx)·p₀₀ + (1−fy)fx·p₀₁ + fy(1−fx)·p₁₀ +
    /// fy·fx·p₁₁`; neighbours outside the image count as 0 (constant fill).
    fn bilinear(y: f64, x: f64, height: usize, width: usize) -> Taps {
        let mut t = Taps::default();
        let (y0, x0) = (y.floor(), x.floor());
        let (fy, fx) = (y - y0, x - x0);
        for (dy, wy) in [(0.0, 1.0 - fy), (1.0, fy)] {
            for (dx, wx) in [(0.0, 1.0 - fx), (1.0, fx)] {
                let (i, j, w) = (y0 + dy, x0 + dx, wy * wx);
                let inside = (0.0..height as f64).contains(&i) && (0.0..width as f64).contains(&j);
                if w != 0.0 && inside {
                    t.push(i as usize * width + j as usize, w);
                }
            }
        }
        t
    }

    fn push(&mut self, index: usize, weight: f64) {
        self.taps[self.len] = (index, weight);
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = &(usize, f64)> {
        self.taps[..self.len].iter()
    }
}

/// `out[b, c, i, j] = x[b, c, source(b, i, j)]`, or 0 where `source` is `None`.
fn remap(
    x: &Tensor,
    source: impl Fn(usize, usize, usize) -> Option<(usize, usize)>,
) -> Result<Tensor> {
    let width = images("remap", x)?[3];
    resample(x, |b, i, j| Taps::pixel(source(b, i, j), width))
}

/// `out[b, c, i, j] = Σ w · x[b, c, p]` over the taps `(p, w)` of `taps(b, i, j)` (shared by
/// the channels).
fn resample(x: &Tensor, taps: impl Fn(usize, usize, usize) -> Taps) -> Result<Tensor> {
    let [batch, channels, height, width] = images("resample", x)?;
    let plane = height * width;
    let mut sources = Vec::with_capacity(batch * plane);
    for b in 0..batch {
        for i in 0..height {
            for j in 0..width {
                sources.push(taps(b, i, j));
            }
        }
    }
    let unmoved = |k: usize, t: &Taps| t.len == 1 && t.taps[0] == (k % plane, 1.0);
    if sources.iter().enumerate().all(|(k, t)| unmoved(k, t)) {
        return Ok(x.clone());
    }
    if !x.requires_grad() {
        // The usual case, the data itself: one pass, nothing to record.
        return match x.dtype() {
            DType::F32 => copy_pixels::<f32>(x, channels, plane, &sources),
            DType::F64 => copy_pixels::<f64>(x, channels, plane, &sources),
            DType::I64 => Err(Error::invalid("resample", "needs float images, got i64")),
        };
    }
    // Inside a network: for each of the (at most four) taps, a gather and its weights, whose
    // backward adds each output's gradient, weighted, to the pixels it read.
    let flat = x.reshape([batch, channels, plane])?;
    let mut out: Option<Tensor> = None;
    for k in 0..sources.iter().map(|t| t.len).max().unwrap_or(0) {
        let mut index = Vec::with_capacity(batch * channels * plane);
        let mut weight = Vec::with_capacity(batch * plane);
        for example in sources.chunks_exact(plane) {
            for _ in 0..channels {
                index.extend(example.iter().map(|t| t.taps[k].0 as i64));
            }
            weight.extend(example.iter().map(|t| t.taps[k].1));
        }
        let index = Tensor::from_vec(index, [batch, channels, plane])?;
        let mut read = flat.gather(2, &index)?;
        if weight.iter().any(|&w| w != 1.0) {
            let weight = Tensor::from_vec(weight, [batch, 1, plane])?.to_dtype(x.dtype())?;
            read = read.mul(&weight)?;
        }
        out = Some(match out {
            None => read,
            Some(sum) => sum.add(&read)?,
        });
    }
    match out {
        Some(out) => out.reshape([batch, channels, height, width]),
        // No pixel reads anything: all zeros, still part of the graph.
        None => x.mul_scalar(0.0),
    }
}

/// [`resample`] on values that need no gradient.
fn copy_pixels<T: Float + Element>(
    x: &Tensor,
    channels: usize,
    plane: usize,
    sources: &[Taps],
) -> Result<Tensor> {
    let data = x.contiguous_data::<T>()?;
    let mut out = Vec::with_capacity(data.len());
    for (images, example) in data
        .chunks_exact(channels * plane)
        .zip(sources.chunks_exact(plane))
    {
        for image in images.chunks_exact(plane) {
            out.extend(example.iter().map(|t| {
                t.iter()
                    .fold(T::zero(), |sum, &(p, w)| sum + image[p] * T::from_f64(w))
            }));
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
        let rotation = RandomRotation::new(25.0).unwrap();
        let zoom = RandomZoom::new(0.3).unwrap();
        for layer in [&flip as &dyn Module, &shift, &rotation, &zoom] {
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
        let rotation = RandomRotation::new(25.0).unwrap();
        let zoom = RandomZoom::new(0.3).unwrap();
        for layer in [&flip as &dyn Module, &shift, &rotation, &zoom] {
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
        let rotation = RandomRotation::new(25.0).unwrap();
        let zoom = RandomZoom::new(0.3).unwrap();
        for layer in [&flip as &dyn Module, &shift, &rotation, &zoom] {
            let copied = layer.forward(&x, &mut train(4)).unwrap();
            let gathered = layer.forward(&var.as_tensor(), &mut train(4)).unwrap();
            assert!(!copied.requires_grad() && gathered.requires_grad());
            assert_eq!(
                copied.to_vec::<f64>().unwrap(),
                gathered.to_vec::<f64>().unwrap()
            );
        }
    }

    /// One 1-channel `n` x `n` image with distinct values.
    fn square(n: usize) -> Tensor {
        let values: Vec<f64> = (0..n * n).map(|v| v as f64 + 1.0).collect();
        Tensor::from_vec(values, [1, 1, n, n]).unwrap()
    }

    fn close(a: &[Vec<f64>], b: &[Vec<f64>]) -> bool {
        a.iter()
            .flatten()
            .zip(b.iter().flatten())
            .all(|(x, y)| (x - y).abs() < 1e-9)
    }

    #[test]
    fn quarter_and_half_turns_move_whole_pixels() {
        let x = square(5);
        let p = plane(&x, 0, 0);
        let turned = |degrees: f64| {
            let y = warp(
                &x,
                &[Warp {
                    degrees,
                    scale: 1.0,
                }],
            )
            .unwrap();
            plane(&y, 0, 0)
        };
        // numpy's rot90: out[i][j] = in[j][n - 1 - i].
        let rot90: Vec<Vec<f64>> = (0..5)
            .map(|i| (0..5).map(|j| p[j][4 - i]).collect())
            .collect();
        assert!(close(&turned(90.0), &rot90), "{:?}", turned(90.0));
        assert!(close(&turned(180.0), &mirrored(&p, true, true)));
        assert!(close(&turned(0.0), &p));
    }

    /// Bilinear sampling reproduces a linear function exactly: on the ramp `a·i + b·j + c`,
    /// each output pixel whose source lies inside holds the ramp at that source, worked out
    /// here from the rotation and zoom; the others hold a mix with the 0 outside.
    #[test]
    fn warps_sample_a_ramp_at_the_rotated_and_zoomed_source() {
        let (n, (a, b, c)) = (9usize, (0.5, -2.0, 3.0));
        let ramp: Vec<f64> = (0..n * n)
            .map(|k| a * (k / n) as f64 + b * (k % n) as f64 + c)
            .collect();
        let x = Tensor::from_vec(ramp, [1, 1, n, n]).unwrap();
        for warp_ in [
            Warp {
                degrees: 17.0,
                scale: 1.0,
            },
            Warp {
                degrees: -40.0,
                scale: 1.3,
            },
            Warp {
                degrees: 0.0,
                scale: 0.8,
            },
        ] {
            let y = plane(&warp(&x, &[warp_]).unwrap(), 0, 0);
            let (sin, cos) = warp_.degrees.to_radians().sin_cos();
            let centre = (n as f64 - 1.0) / 2.0;
            let mut inside = 0;
            for (i, row) in y.iter().enumerate() {
                for (j, &got) in row.iter().enumerate() {
                    let (dy, dx) = (i as f64 - centre, j as f64 - centre);
                    let sy = centre + (cos * dy + sin * dx) / warp_.scale;
                    let sx = centre + (-sin * dy + cos * dx) / warp_.scale;
                    let last = (n - 1) as f64;
                    if (0.0..=last).contains(&sy) && (0.0..=last).contains(&sx) {
                        inside += 1;
                        let want = a * sy + b * sx + c;
                        assert!((got - want).abs() < 1e-9, "{warp_:?} ({i}, {j})");
                    }
                }
            }
            assert!(inside > n * n / 2, "{warp_:?}: {inside}");
        }
    }

    #[test]
    fn rotations_and_zooms_vary_per_example_within_their_bounds() {
        let x = batch(32);
        let rotation = RandomRotation::new(30.0).unwrap();
        let zoom = RandomZoom::new(0.2).unwrap();
        for layer in [&rotation as &dyn Module, &zoom] {
            let y = layer.forward(&x, &mut train(9)).unwrap();
            let changed = (0..32)
                .filter(|&b| plane(&y, b, 0) != plane(&x, b, 0))
                .count();
            assert_eq!(changed, 32, "{}", layer.describe());
            // Two copies of one image get different draws.
            let twice = Tensor::concat(&[&square(6), &square(6)], 0).unwrap();
            let y = layer.forward(&twice, &mut train(2)).unwrap();
            assert_ne!(plane(&y, 0, 0), plane(&y, 1, 0), "{}", layer.describe());
        }
        assert!(RandomRotation::new(0.0).is_err() && RandomRotation::new(181.0).is_err());
        assert!(RandomZoom::new(0.0).is_err() && RandomZoom::new(1.0).is_err());
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

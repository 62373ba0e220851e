//! Feature preprocessing fitted on the training split only, then applied unchanged to validation,
//! test and prediction data, and saved with the model (serde). Imputation of missing values, then
//! one scaling: standardization `(x − μ) / σ`, min-max to `[0, 1]`, or PCA whitening
//! `z = Vₖᵀ (x − μ) / √(λ + ε)` (decorrelated, unit-variance components).

use crate::error::{Error, Result};
use crate::sequence::SequenceShape;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// f64 bytes scaled per block by [`Preprocessor::transform_f32_owned`]: large enough that
/// giving each block back costs nothing measurable, small beside any table worth freeing.
const TRANSFORM_BLOCK_BYTES: usize = 8 << 20;

/// How to fill missing values (NaN) of each column, from training statistics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Imputation {
    Mean,
    Median,
    Constant(f64),
}

/// Which scaling to fit.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// Leave the features as they are.
    #[default]
    None,
    /// Zero mean and unit variance per feature (constant features are only centred).
    Standardize,
    /// Each feature mapped to `[0, 1]` by the training min and max (constant features to 0).
    MinMax,
    /// Every feature divided by the same number (`{ divide = 255 }` maps pixels to `[0, 1]`),
    /// nothing fitted.
    Divide(f64),
    /// PCA whitening, keeping `components` directions (all when `None`), `ε` added to each
    /// eigenvalue so that near-null directions are not blown up.
    PcaWhiten {
        #[serde(default)]
        components: Option<usize>,
        #[serde(default = "default_pca_eps")]
        eps: f64,
    },
}

fn default_pca_eps() -> f64 {
    1e-5
}

/// A fitted preprocessing pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// Input width.
    pub width: usize,
    /// Fill values per column, when an imputation was fitted.
    pub fill: Option<Vec<f64>>,
    /// The fitted scaler.
    pub scaler: Scaler,
    /// For grouped sequences: the pipeline above is per channel (`width` = channels), applied
    /// to every real step; padding steps pass unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<SequenceShape>,
}

/// Whether a step is padding: every channel equals the padding value.
fn is_padding(step: &[f64], pad: f64) -> bool {
    step.iter().all(|&v| v == pad)
}

impl SequenceShape {
    /// The values of the real (not padding) steps of grouped sequences, in order.
    fn real_steps(&self, features: &[f64]) -> Vec<f64> {
        features
            .chunks(self.channels)
            .filter(|step| !is_padding(step, self.pad))
            .flatten()
            .copied()
            .collect()
    }
}

/// Fitted scaling parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Scaler {
    None,
    /// `x' = (x − shift) / scale` per feature (standardize and min-max; `divide` has one
    /// shift and scale for all, saved once).
    Affine {
        #[serde(with = "saved_per_feature")]
        shift: Vec<f64>,
        #[serde(with = "saved_per_feature")]
        scale: Vec<f64>,
    },
    /// `z = ((x − mean) · components) / scale`: `components` is `width x k` row-major.
    Pca {
        mean: Vec<f64>,
        components: Vec<f64>,
        scale: Vec<f64>,
    },
}

/// A value per feature as a run folder saves it: `{"all": v, "len": n}` when every feature has
/// the same one (`divide = 255` over 150,528 pixels), else the list; both forms read back.
mod saved_per_feature {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Saved {
        Same { all: f64, len: usize },
        Each(Vec<f64>),
    }

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        match values.first() {
            Some(&first) if values.iter().all(|v| v.to_bits() == first.to_bits()) => Saved::Same {
                all: first,
                len: values.len(),
            }
            .serialize(serializer),
            _ => values.serialize(serializer),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        Ok(
            match Saved::deserialize(deserializer).map_err(|_| {
                D::Error::custom("expected a list of numbers or {\"all\": value, \"len\": count}")
            })? {
                Saved::Same { all, len } => vec![all; len],
                Saved::Each(values) => values,
            },
        )
    }
}

impl Preprocessor {
    /// Fits imputation and scaling on training features (`rows x width`, row-major).
    pub fn fit(
        features: &[f64],
        width: usize,
        imputation: Option<Imputation>,
        scaling: Scaling,
    ) -> Result<Preprocessor> {
        if width == 0 || features.is_empty() || !features.len().is_multiple_of(width) {
            return Err(Error::Invalid(format!(
                "preprocessing: {} values do not make rows of width {width}",
                features.len()
            )));
        }
        let rows = features.len() / width;
        let column = |j: usize| features.iter().skip(j).step_by(width).copied();
        let fill = match imputation {
            None => {
                if let Some(i) = features.iter().position(|v| v.is_nan()) {
                    return Err(Error::Invalid(format!(
                        "preprocessing: missing value in training row {} column {} (choose an \
                         imputation: mean, median or constant)",
                        i / width + 1,
                        i % width + 1
                    )));
                }
                None
            }
            Some(imp) => Some(
                (0..width)
                    .map(|j| {
                        let mut present: Vec<f64> = column(j).filter(|v| !v.is_nan()).collect();
                        match imp {
                            Imputation::Constant(c) => c,
                            _ if present.is_empty() => 0.0,
                            Imputation::Mean => present.iter().sum::<f64>() / present.len() as f64,
                            Imputation::Median => {
                                present.sort_by(f64::total_cmp);
                                let m = present.len();
                                if m % 2 == 1 {
                                    present[m / 2]
                                } else {
                                    (present[m / 2 - 1] + present[m / 2]) / 2.0
                                }
                            }
                        }
                    })
                    .collect(),
            ),
        };
        let mut pre = Preprocessor {
            width,
            fill,
            scaler: Scaler::None,
            sequence: None,
        };
        let filled = pre.impute(features);
        let col = |j: usize| filled.iter().skip(j).step_by(width).copied();
        pre.scaler = match scaling {
            Scaling::None => Scaler::None,
            Scaling::Standardize => {
                let mean: Vec<f64> = (0..width)
                    .map(|j| col(j).sum::<f64>() / rows as f64)
                    .collect();
                let scale = (0..width)
                    .map(|j| {
                        let var = col(j).map(|v| (v - mean[j]).powi(2)).sum::<f64>() / rows as f64;
                        if var > 0.0 { var.sqrt() } else { 1.0 }
                    })
                    .collect();
                Scaler::Affine { shift: mean, scale }
            }
            Scaling::MinMax => {
                let min: Vec<f64> = (0..width)
                    .map(|j| col(j).fold(f64::INFINITY, f64::min))
                    .collect();
                let scale = (0..width)
                    .map(|j| {
                        let range = col(j).fold(f64::NEG_INFINITY, f64::max) - min[j];
                        if range > 0.0 { range } else { 1.0 }
                    })
                    .collect();
                Scaler::Affine { shift: min, scale }
            }
            Scaling::Divide(by) => {
                if !(by.is_finite() && by > 0.0) {
                    return Err(Error::Invalid(format!(
                        "scaling: divide needs a finite number > 0, got {by}"
                    )));
                }
                Scaler::Affine {
                    shift: vec![0.0; width],
                    scale: vec![by; width],
                }
            }
            Scaling::PcaWhiten { components, eps } => pca(&filled, rows, width, components, eps)?,
        };
        Ok(pre)
    }

    /// Fits on grouped sequences (rows of `steps · channels`, see
    /// [`SequenceSpec::group`](crate::SequenceSpec::group)): imputation and scaling statistics
    /// per channel over the real steps, padding excluded, so that every step is scaled alike.
    pub fn fit_sequences(
        features: &[f64],
        shape: SequenceShape,
        imputation: Option<Imputation>,
        scaling: Scaling,
    ) -> Result<Preprocessor> {
        if matches!(scaling, Scaling::PcaWhiten { .. }) {
            return Err(Error::Invalid(
                "scaling: pca_whiten mixes features into components, which sequences of steps \
                 do not allow: use standardize or min_max"
                    .into(),
            ));
        }
        let real = shape.real_steps(features);
        let mut pre = Preprocessor::fit(&real, shape.channels, imputation, scaling)?;
        pre.sequence = Some(shape);
        Ok(pre)
    }

    /// Output width after scaling (PCA may keep fewer components; sequences: steps · channels).
    pub fn output_width(&self) -> usize {
        if let Some(s) = self.sequence {
            return s.steps * s.channels;
        }
        self.row_output_width()
    }

    /// The features with missing values filled; borrowed when no imputation was fitted, so
    /// that fitting a large complete table does not copy it.
    fn impute<'a>(&self, features: &'a [f64]) -> Cow<'a, [f64]> {
        match &self.fill {
            None => Cow::Borrowed(features),
            Some(fill) => Cow::Owned(
                features
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| if v.is_nan() { fill[i % self.width] } else { v })
                    .collect(),
            ),
        }
    }

    /// Maps scaled rows back to the features' own units (`x = x' · scale + shift`), for
    /// values a model made (a GAN's samples). `None` where the scaling has no exact inverse:
    /// PCA whitening (it may drop directions) and grouped sequences.
    pub fn inverse_transform(&self, scaled: &[f64]) -> Option<Vec<f64>> {
        if self.sequence.is_some() || !scaled.len().is_multiple_of(self.width.max(1)) {
            return None;
        }
        match &self.scaler {
            Scaler::None => Some(scaled.to_vec()),
            Scaler::Affine { shift, scale } => Some(
                scaled
                    .iter()
                    .enumerate()
                    .map(|(i, v)| v * scale[i % self.width] + shift[i % self.width])
                    .collect(),
            ),
            Scaler::Pca { .. } => None,
        }
    }

    /// Applies the fitted pipeline to features of the same width.
    pub fn transform(&self, features: &[f64]) -> Result<Vec<f64>> {
        self.transform_as(features, |v| v)
    }

    /// [`transform`](Self::transform) with the result in f32, what a model reads: the rows
    /// are scaled one at a time straight into the output, so that a large table (MNIST's
    /// 47 M values) is not copied in f64 on the way.
    pub fn transform_f32(&self, features: &[f64]) -> Result<Vec<f32>> {
        self.transform_as(features, |v| v as f32)
    }

    /// [`transform_f32`](Self::transform_f32) of features it may free as it goes: blocks of
    /// rows are scaled from the last one back, and each block's f64 values are given back
    /// before the next block is read, so that a large table (MNIST's training rows, 340 MB in
    /// f64) is never held in f64 and f32 at once.
    pub fn transform_f32_owned(&self, features: Vec<f64>) -> Result<Vec<f32>> {
        let block_rows = TRANSFORM_BLOCK_BYTES / (self.input_width().max(1) * size_of::<f64>());
        self.transform_f32_in_blocks(features, block_rows.max(1))
    }

    fn transform_f32_in_blocks(
        &self,
        mut features: Vec<f64>,
        block_rows: usize,
    ) -> Result<Vec<f32>> {
        let (in_width, out_width) = (self.input_width(), self.output_width());
        // Malformed input, and a missing value without imputation, go through the one-block
        // path, so that the error names the first bad row, not the last block's.
        if in_width == 0
            || !features.len().is_multiple_of(in_width)
            || (self.fill.is_none() && features.iter().any(|v| v.is_nan()))
        {
            return self.transform_f32(&features);
        }
        let rows = features.len() / in_width;
        // Zeroed memory is not touched until written: pages are taken one block at a time.
        let mut out = vec![0.0f32; rows * out_width];
        let mut end = rows;
        while end > 0 {
            let start = end.saturating_sub(block_rows);
            let scaled = self.transform_f32(&features[start * in_width..])?;
            out[start * out_width..end * out_width].copy_from_slice(&scaled);
            features.truncate(start * in_width);
            features.shrink_to_fit();
            end = start;
        }
        Ok(out)
    }

    /// Values per row going in: `width`, or a sequence's steps · channels.
    fn input_width(&self) -> usize {
        match self.sequence {
            Some(s) => s.steps * s.channels,
            None => self.width,
        }
    }

    fn transform_as<T>(&self, features: &[f64], cast: impl Fn(f64) -> T) -> Result<Vec<T>> {
        let Some(shape) = self.sequence else {
            return self.transform_rows(features, cast);
        };
        if !features.len().is_multiple_of(shape.steps * shape.channels) {
            return Err(Error::Invalid(format!(
                "preprocessing: fitted on sequences of {} steps x {} channels, got {} values",
                shape.steps,
                shape.channels,
                features.len()
            )));
        }
        // The real steps go through the per-channel pipeline; padding is left as it is.
        let real = shape.real_steps(features);
        let mut scaled = self.transform_rows(&real, |v| v)?.into_iter();
        let mut out = features.to_vec();
        for step in out.chunks_mut(shape.channels) {
            if !is_padding(step, shape.pad) {
                step.iter_mut()
                    .zip(scaled.by_ref())
                    .for_each(|(v, s)| *v = s);
                if is_padding(step, shape.pad) {
                    // A real step that scaling mapped exactly onto the padding value (a value
                    // equal to the channel mean, with pad 0): moved by one f32 ulp so that the
                    // recurrent layer's mask still reads it as a step.
                    step[0] = (step[0] as f32).next_up() as f64;
                }
            }
        }
        Ok(out.into_iter().map(cast).collect())
    }

    /// The pipeline on rows of `width` values, row by row: imputation into one row's buffer,
    /// then the scaler, each value `cast` as it is written.
    fn transform_rows<T>(&self, features: &[f64], cast: impl Fn(f64) -> T) -> Result<Vec<T>> {
        let width = self.width;
        // Width 0 only comes from a hand-edited preprocessing.json: an error, not a panic.
        if width == 0 || !features.len().is_multiple_of(width) {
            return Err(Error::Invalid(format!(
                "preprocessing: fitted on {width} features per row, got {} values",
                features.len()
            )));
        }
        let rows = features.len() / width;
        let mut out = Vec::with_capacity(rows * self.row_output_width());
        let mut filled = vec![0.0; width];
        for (r, row) in features.chunks(width).enumerate() {
            for (j, (slot, &v)) in filled.iter_mut().zip(row).enumerate() {
                *slot = match (&self.fill, v.is_nan()) {
                    (_, false) => v,
                    (Some(fill), true) => fill[j],
                    (None, true) => {
                        return Err(Error::Invalid(format!(
                            "preprocessing: missing value in row {} column {} and no \
                             imputation was fitted",
                            r + 1,
                            j + 1
                        )));
                    }
                };
            }
            match &self.scaler {
                Scaler::None => out.extend(filled.iter().map(|&v| cast(v))),
                Scaler::Affine { shift, scale } => out.extend(
                    filled
                        .iter()
                        .zip(shift.iter().zip(scale))
                        .map(|(v, (shift, scale))| cast((v - shift) / scale)),
                ),
                Scaler::Pca {
                    mean,
                    components,
                    scale,
                } => {
                    let k = scale.len();
                    out.extend((0..k).map(|c| {
                        let dot: f64 = filled
                            .iter()
                            .enumerate()
                            .map(|(j, v)| (v - mean[j]) * components[j * k + c])
                            .sum();
                        cast(dot / scale[c])
                    }));
                }
            }
        }
        Ok(out)
    }

    /// Values per row out of the scaler (PCA may keep fewer than `width`).
    fn row_output_width(&self) -> usize {
        match &self.scaler {
            Scaler::Pca { scale, .. } => scale.len(),
            _ => self.width,
        }
    }
}

/// PCA whitening from the sample covariance's eigendecomposition (cyclic Jacobi).
fn pca(x: &[f64], rows: usize, width: usize, keep: Option<usize>, eps: f64) -> Result<Scaler> {
    if rows < 2 {
        return Err(Error::Invalid(
            "PCA whitening needs at least 2 training rows".into(),
        ));
    }
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(Error::Invalid(format!(
            "PCA whitening: eps must be >= 0, got {eps}"
        )));
    }
    let k = keep.unwrap_or(width);
    if k == 0 || k > width {
        return Err(Error::Invalid(format!(
            "PCA whitening: components must be in 1..={width}, got {k}"
        )));
    }
    let mean: Vec<f64> = (0..width)
        .map(|j| x.iter().skip(j).step_by(width).sum::<f64>() / rows as f64)
        .collect();
    let mut cov = vec![0.0; width * width];
    for row in x.chunks(width) {
        for a in 0..width {
            let da = row[a] - mean[a];
            for b in a..width {
                cov[a * width + b] += da * (row[b] - mean[b]);
            }
        }
    }
    for a in 0..width {
        for b in a..width {
            let v = cov[a * width + b] / (rows - 1) as f64;
            cov[a * width + b] = v;
            cov[b * width + a] = v;
        }
    }
    let (values, vectors) = symmetric_eigen(cov, width);
    let mut order: Vec<usize> = (0..width).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let mut components = vec![0.0; width * k];
    let mut scale = Vec::with_capacity(k);
    for (c, &e) in order.iter().take(k).enumerate() {
        for j in 0..width {
            components[j * k + c] = vectors[j * width + e];
        }
        scale.push((values[e].max(0.0) + eps).sqrt().max(f64::MIN_POSITIVE));
    }
    Ok(Scaler::Pca {
        mean,
        components,
        scale,
    })
}

/// Eigenvalues and eigenvectors (columns of the returned row-major `n x n` matrix) of a
/// symmetric matrix by cyclic Jacobi rotations (Golub & Van Loan §8.5), accurate to rounding;
/// O(n³) per sweep, a few seconds at n = 784.
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|p| ((p + 1)..n).map(move |q| (p, q)))
            .map(|(p, q)| a[p * n + q].powi(2))
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in (p + 1)..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scaling block by block from the tail gives the one-pass result, for blocks that divide
    /// the rows and blocks that leave a ragged first block, with PCA changing the width.
    #[test]
    fn blocks_from_the_tail_equal_one_pass() {
        let train: Vec<f64> = (0..21)
            .map(|i| ((i * 7) % 11) as f64 + 0.5 * i as f64)
            .collect();
        let mut holes = train.clone();
        holes[4] = f64::NAN;
        let scalings = [
            Scaling::Standardize,
            Scaling::PcaWhiten {
                components: Some(2),
                eps: 0.0,
            },
        ];
        for scaling in scalings {
            let pre = Preprocessor::fit(&train, 3, Some(Imputation::Mean), scaling).unwrap();
            let want = pre.transform_f32(&holes).unwrap();
            for block_rows in [1, 2, 3, 7, 100] {
                let got = pre
                    .transform_f32_in_blocks(holes.clone(), block_rows)
                    .unwrap();
                assert_eq!(got, want, "{scaling:?}, blocks of {block_rows}");
            }
        }
        // Without imputation the error names the first missing value, whichever block it is in.
        let plain = Preprocessor::fit(&train, 3, None, Scaling::Standardize).unwrap();
        let mut late = train.clone();
        late[19] = f64::NAN;
        let mut both = late.clone();
        both[4] = f64::NAN;
        for (features, first) in [(holes, "row 2 "), (both, "row 2 "), (late, "row 7 ")] {
            let err = plain.transform_f32_in_blocks(features, 2).unwrap_err();
            assert!(
                err.to_string().contains(&format!("{first}column 2")),
                "{err}"
            );
        }
    }
}

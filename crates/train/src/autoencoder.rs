//! What a report and a run record say about an autoencoder (`data.reconstruct`): examples of a
//! split beside their reconstructions (for the report's image grid), and the statistics of the
//! code, the hidden layer the input is squeezed through, which show whether a sparsity penalty
//! made it sparse.

use crate::config::{Config, LayerSpec};
use crate::error::Result;
use nabla_core::{Rng, Tensor, with_no_grad};
use nabla_data::Dataset;
use nabla_nn::layers::Sequential;
use nabla_nn::{Ctx, Module, ModuleExt};
use serde::{Deserialize, Serialize};

/// An activation counts as "near zero" when `|h| ≤ NEAR_ZERO · max|h|` over the split: a
/// threshold relative to the code's own scale, so that sigmoid and ReLU codes compare.
pub const NEAR_ZERO: f64 = 0.05;

/// Statistics of an autoencoder's code over a split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeStats {
    /// The code layer's index in `model.layers`.
    pub layer: usize,
    /// The layer (`Sigmoid`).
    pub description: String,
    /// Which split (`test` or `validation`).
    pub split: String,
    pub units: usize,
    /// Mean of `|h|` over the split's examples and the units (ρ̂ of a sigmoid code).
    pub mean_activation: f64,
    /// Fraction of the activations with `|h| ≤ NEAR_ZERO · max|h|`.
    pub near_zero: f64,
    /// Units near zero on every example of the split: silent, not sparse. A sparse code's
    /// units each fire on a few examples; an L1 penalty too strong silences whole units
    /// instead, and they carry nothing.
    #[serde(default)]
    pub silent_units: usize,
}

/// The examples of a split shown in the report: inputs, their corrupted copies (when the model
/// starts with a noise layer: a denoising autoencoder reconstructs from those), and the
/// reconstructions, each as flat preprocessed values. On labelled data, one example of each
/// class.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstructions {
    pub split: String,
    /// `[height, width]` when the inputs are square grayscale images.
    pub image: Option<[usize; 2]>,
    pub inputs: Vec<Vec<f64>>,
    pub corrupted: Option<Vec<Vec<f64>>>,
    pub outputs: Vec<Vec<f64>>,
    /// The class of each example shown, on labelled data.
    pub classes: Option<Vec<String>>,
}

/// The reconstruction error of one class's examples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassError {
    pub class: String,
    pub examples: usize,
    /// Mean squared error over the examples' values (the MSE loss, on this class only).
    pub mse: f64,
}

/// Rows per batch of [`summarize`]: its memory is a batch's layer outputs, not the split's.
const SUMMARY_BATCH: usize = 256;

/// What one evaluation-mode pass over `data` (a whole split, in batches) says about an
/// autoencoder:
/// - the code's statistics, or `None` when the model has no hidden layer before its last map.
///   The code layer is the one `train.sparsity` penalizes, or else the narrowest layer output
///   before the decoder's last linear (or convolution) map; of several that narrow, the last
///   (the activation after a linear map, not the map);
/// - each class's mean squared reconstruction error (as the test loss), in class order, or
///   `None` without labels kept in `data` or class names.
pub fn summarize(
    config: &Config,
    model: &Sequential,
    data: &Dataset,
    split: &str,
    class_names: &[String],
) -> Result<(Option<CodeStats>, Option<Vec<ClassError>>)> {
    let labels = data.labels().filter(|_| !class_names.is_empty());
    let width = |t: &Tensor| t.elem_count() / t.dims()[0].max(1);
    // Target values per example: the reconstruction's width.
    let per_example = (data.y().elem_count() / data.len().max(1)).max(1);
    // The code layer and its |h| over the split; class -> (examples, Σ squared error).
    let mut code: Option<(usize, usize, Vec<f64>)> = None;
    let mut class_sums: std::collections::BTreeMap<i64, (usize, f64)> = Default::default();
    for start in (0..data.len()).step_by(SUMMARY_BATCH) {
        let rows = SUMMARY_BATCH.min(data.len() - start);
        let (out, taps) = with_no_grad(|| {
            let mut ctx = Ctx::eval().with_taps();
            let out = model.forward(&data.x().narrow(0, start, rows)?, &mut ctx)?;
            Ok::<_, nabla_core::Error>((out, ctx.taps().to_vec()))
        })?;
        // The outputs of `model.layers[i]` (path `"i"`), in order.
        let outputs: Vec<&Tensor> = taps
            .iter()
            .filter(|(p, _)| !p.contains('.'))
            .map(|(_, t)| t)
            .collect();
        if start == 0 {
            code = code_layer(config, &outputs, width)?
                .map(|layer| (layer, width(outputs[layer]), Vec::new()));
        }
        if let Some((layer, _, values)) = &mut code {
            values.extend(outputs[*layer].to_vec_f64().iter().map(|v| v.abs()));
        }
        if let Some(labels) = &labels {
            let target = data.y().narrow(0, start, rows)?.to_vec_f64();
            let out = out.to_vec_f64();
            for ((&c, o), t) in labels[start..start + rows]
                .iter()
                .zip(out.chunks(per_example))
                .zip(target.chunks(per_example))
            {
                let entry = class_sums.entry(c).or_default();
                entry.0 += 1;
                entry.1 += o.iter().zip(t).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
            }
        }
    }
    let code = code.map(|(layer, units, values)| {
        let n = values.len().max(1) as f64;
        let max = values.iter().copied().fold(0.0, f64::max);
        let near_zero = values.iter().filter(|&&v| v <= NEAR_ZERO * max).count() as f64 / n;
        let silent_units = silent_units(&values, units, NEAR_ZERO * max);
        CodeStats {
            layer,
            description: model
                .children()
                .get(layer)
                .map_or(String::new(), |(_, m)| m.describe()),
            split: split.to_string(),
            units,
            mean_activation: values.iter().sum::<f64>() / n,
            near_zero,
            silent_units,
        }
    });
    let class_errors = labels.map(|_| {
        class_sums
            .into_iter()
            .map(|(c, (examples, squared))| ClassError {
                class: class_name(class_names, c),
                examples,
                mse: squared / (examples * per_example) as f64,
            })
            .collect()
    });
    Ok((code, class_errors))
}

/// How many of the `units` columns of `values` (rows of `|h|`, one per example) are at most
/// `near` on every row.
fn silent_units(values: &[f64], units: usize, near: f64) -> usize {
    (0..units)
        .filter(|&j| values.iter().skip(j).step_by(units).all(|&v| v <= near))
        .count()
}

/// The index in `model.layers` of the code layer (see [`summarize`]), from the layers' outputs.
fn code_layer(
    config: &Config,
    outputs: &[&Tensor],
    width: impl Fn(&Tensor) -> usize,
) -> Result<Option<usize>> {
    let layer = match &config.train.sparsity {
        Some(s) => s.layer,
        None => {
            let last_map =
                config.model.layers.iter().rposition(|l| {
                    matches!(l, LayerSpec::Linear { .. } | LayerSpec::Conv2d { .. })
                });
            let hidden = &outputs[..last_map.unwrap_or(0).min(outputs.len())];
            let Some(narrowest) = hidden.iter().map(|t| width(t)).min() else {
                return Ok(None);
            };
            hidden
                .iter()
                .rposition(|t| width(t) == narrowest)
                .expect("the narrowest is among them")
        }
    };
    if layer >= outputs.len() {
        return Err(crate::error::Error::Invalid(format!(
            "no output of layer {layer}"
        )));
    }
    Ok(Some(layer))
}

/// Examples of `data` and their reconstructions: on labelled data (`class_names` given and
/// labels kept in `data`) the first example of each class, in class order, at most `count`;
/// else the first `count` examples. A model whose first layer adds noise reconstructs a corrupted copy (noise drawn
/// with `seed`), as it was trained to.
pub fn reconstructions(
    config: &Config,
    model: &Sequential,
    data: &Dataset,
    split: &str,
    count: usize,
    class_names: &[String],
) -> Result<Reconstructions> {
    let labels = data.labels().filter(|_| !class_names.is_empty());
    let (x, classes) = match &labels {
        Some(labels) => {
            // Each class's first row, in class order.
            let mut first_rows = std::collections::BTreeMap::new();
            for (row, &c) in labels.iter().enumerate() {
                first_rows.entry(c).or_insert(row);
            }
            let firsts: Vec<(i64, usize)> = first_rows.into_iter().take(count).collect();
            let rows: Vec<usize> = firsts.iter().map(|&(_, row)| row).collect();
            let shown = data.select(&rows)?;
            let classes = firsts
                .iter()
                .map(|&(c, _)| class_name(class_names, c))
                .collect();
            (shown.x().clone(), Some(classes))
        }
        None => (data.x().narrow(0, 0, count.min(data.len()))?, None),
    };
    let noisy_first = matches!(
        config.model.layers.first(),
        Some(LayerSpec::GaussianNoise { .. } | LayerSpec::MaskingNoise { .. })
    );
    let corrupted = if noisy_first {
        let (_, noise) = &model.children()[0];
        let mut ctx = Ctx::train(Rng::seed(config.seed));
        Some(with_no_grad(|| noise.forward(&x, &mut ctx))?)
    } else {
        None
    };
    let outputs = model.predict(corrupted.as_ref().unwrap_or(&x))?;
    // Inputs, corrupted copies and reconstructions all have `width` values per example.
    let width = (x.elem_count() / x.dims()[0].max(1)).max(1);
    let rows = |t: &Tensor| -> Vec<Vec<f64>> {
        t.to_vec_f64().chunks(width).map(<[f64]>::to_vec).collect()
    };
    Ok(Reconstructions {
        split: split.to_string(),
        image: square_image(&[width]),
        inputs: rows(&x),
        corrupted: corrupted.as_ref().map(rows),
        outputs: rows(&outputs),
        classes,
    })
}

/// A class index's name, or the index itself when the names do not cover it.
fn class_name(class_names: &[String], c: i64) -> String {
    usize::try_from(c)
        .ok()
        .and_then(|c| class_names.get(c))
        .cloned()
        .unwrap_or_else(|| c.to_string())
}

/// `[height, width]` when examples of shape `example` are square grayscale images: a flat
/// `[n²]` row of pixels, or `[1, n, n]`.
pub fn square_image(example: &[usize]) -> Option<[usize; 2]> {
    match *example {
        [1, h, w] if h == w => Some([h, w]),
        [width] => {
            let side = (width as f64).sqrt().round() as usize;
            (side * side == width && width > 0).then_some([side, side])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_is_silent_only_when_near_zero_on_every_example() {
        // 3 examples x 4 units: unit 0 always 0, unit 1 fires once, unit 2 stays at the
        // threshold, unit 3 fires always.
        let values = [
            0.0, 0.0, 0.05, 1.0, //
            0.0, 0.9, 0.05, 0.5, //
            0.0, 0.0, 0.01, 0.7,
        ];
        assert_eq!(silent_units(&values, 4, 0.05), 2);
        assert_eq!(silent_units(&values, 4, 0.04), 1);
        assert_eq!(silent_units(&[], 4, 0.05), 4);
    }
}

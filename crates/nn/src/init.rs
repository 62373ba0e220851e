//! Weight initializers. The variance of a layer's outputs (forward) and of its input gradients
//! (backward) stays near that of its inputs when the weights' variance is about 1/fan: that is the
//! argument behind Xavier/Glorot (2 / (fan_in + fan_out)) and He/Kaiming (2 / fan_in for ReLU).

use nabla_core::{DType, Error, Result, Rng, Shape, Tensor};

/// Which fan a Kaiming initializer preserves the variance over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    /// Preserves the variance of activations in the forward pass (the default).
    FanIn,
    /// Preserves the variance of gradients in the backward pass.
    FanOut,
}

/// How to fill a parameter. Fans follow PyTorch: for a weight `[out, in, k...]`,
/// `fan_in = in · Πk` and `fan_out = out · Πk`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All zeros. For weights this leaves every unit of a layer identical (symmetry is never
    /// broken); meant for biases.
    Zeros,
    /// Every element `value`.
    Constant(f64),
    /// `U(low, high)`.
    Uniform { low: f64, high: f64 },
    /// `N(mean, std²)`.
    Normal { mean: f64, std: f64 },
    /// Glorot & Bengio (2010): `U(−a, a)`, `a = gain · √(6 / (fan_in + fan_out))`, i.e. variance
    /// `gain² · 2 / (fan_in + fan_out)`.
    XavierUniform { gain: f64 },
    /// Glorot & Bengio (2010): `N(0, gain² · 2 / (fan_in + fan_out))`.
    XavierNormal { gain: f64 },
    /// LeCun: `U(−a, a)` with variance `1 / fan_in` (the "1/n_in" variant of Xavier).
    LeCunUniform,
    /// LeCun: `N(0, 1 / fan_in)`.
    LeCunNormal,
    /// He et al. (2015): `U(−a, a)` with variance `gain² / fan`, `gain = √(2 / (1 + slope²))`
    /// (`slope` = the leaky ReLU's negative slope; 0 for ReLU gives `2 / fan_in`).
    KaimingUniform { negative_slope: f64, mode: FanMode },
    /// He et al. (2015): `N(0, gain² / fan)`, gain as for [`Init::KaimingUniform`].
    KaimingNormal { negative_slope: f64, mode: FanMode },
    /// Saxe et al. (2013): a (semi-)orthogonal matrix `Q` from the QR decomposition of a normal
    /// matrix, times `gain`; the weight is viewed as `[shape[0], Π rest]`.
    Orthogonal { gain: f64 },
}

impl Init {
    /// Xavier/Glorot uniform with gain 1 (Keras' default for dense layers).
    pub const XAVIER: Init = Init::XavierUniform { gain: 1.0 };
    /// He/Kaiming normal for ReLU layers, fan-in mode.
    pub const HE: Init = Init::KaimingNormal {
        negative_slope: 0.0,
        mode: FanMode::FanIn,
    };

    /// A tensor of `shape` filled by this initializer.
    pub fn tensor(&self, shape: impl Into<Shape>, dtype: DType, rng: &mut Rng) -> Result<Tensor> {
        let shape = shape.into();
        let values = self.values(&shape, rng)?;
        Tensor::from_vec(values, shape)?.to_dtype(dtype)
    }

    /// The values (row-major, in f64) this initializer draws for `shape`.
    pub fn values(&self, shape: &Shape, rng: &mut Rng) -> Result<Vec<f64>> {
        let n = shape.elem_count();
        let uniform = |a: f64, rng: &mut Rng| -> Vec<f64> {
            (0..n).map(|_| a * (2.0 * rng.uniform() - 1.0)).collect()
        };
        let normal =
            |std: f64, rng: &mut Rng| -> Vec<f64> { (0..n).map(|_| std * rng.normal()).collect() };
        Ok(match *self {
            Init::Zeros => vec![0.0; n],
            Init::Constant(c) => {
                Error::check_finite("Init::Constant", "value", c)?;
                vec![c; n]
            }
            Init::Uniform { low, high } => {
                if !(low.is_finite() && high.is_finite() && low <= high) {
                    return Err(Error::invalid(
                        "Init::Uniform",
                        format!("needs finite low <= high, got {low}, {high}"),
                    ));
                }
                (0..n).map(|_| low + (high - low) * rng.uniform()).collect()
            }
            Init::Normal { mean, std } => {
                Error::check_finite("Init::Normal", "mean", mean)?;
                check_non_negative("Init::Normal", "std", std)?;
                (0..n).map(|_| mean + std * rng.normal()).collect()
            }
            Init::XavierUniform { gain } | Init::XavierNormal { gain } => {
                check_non_negative("Init::Xavier", "gain", gain)?;
                let (fan_in, fan_out) = fans("Init::Xavier", shape)?;
                let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
                if matches!(self, Init::XavierUniform { .. }) {
                    uniform(std * 3f64.sqrt(), rng)
                } else {
                    normal(std, rng)
                }
            }
            Init::LeCunUniform | Init::LeCunNormal => {
                let (fan_in, _) = fans("Init::LeCun", shape)?;
                let std = (1.0 / fan_in as f64).sqrt();
                if matches!(self, Init::LeCunUniform) {
                    uniform(std * 3f64.sqrt(), rng)
                } else {
                    normal(std, rng)
                }
            }
            Init::KaimingUniform {
                negative_slope,
                mode,
            }
            | Init::KaimingNormal {
                negative_slope,
                mode,
            } => {
                Error::check_finite("Init::Kaiming", "negative_slope", negative_slope)?;
                let (fan_in, fan_out) = fans("Init::Kaiming", shape)?;
                let fan = if mode == FanMode::FanIn {
                    fan_in
                } else {
                    fan_out
                };
                let std = gain_leaky_relu(negative_slope) / (fan as f64).sqrt();
                if matches!(self, Init::KaimingUniform { .. }) {
                    uniform(std * 3f64.sqrt(), rng)
                } else {
                    normal(std, rng)
                }
            }
            Init::Orthogonal { gain } => {
                check_non_negative("Init::Orthogonal", "gain", gain)?;
                orthogonal(shape, gain, rng)?
            }
        })
    }
}

/// The gain of a (leaky) ReLU: `√(2 / (1 + slope²))` (√2 for ReLU).
pub fn gain_leaky_relu(negative_slope: f64) -> f64 {
    (2.0 / (1.0 + negative_slope * negative_slope)).sqrt()
}

/// The recommended gain for tanh layers (PyTorch's `calculate_gain('tanh')`): 5/3.
pub const GAIN_TANH: f64 = 5.0 / 3.0;

/// `(fan_in, fan_out)` of a weight `[out, in, k...]`; `init` names the initializer in the error
/// for other shapes (`"Init::Xavier"`).
pub fn fans(init: &'static str, shape: &Shape) -> Result<(usize, usize)> {
    let dims = shape.dims();
    if dims.len() < 2 || dims.contains(&0) {
        return Err(Error::bad_shape(
            init,
            shape,
            "needs a weight of rank >= 2 with no zero dim to compute fan_in and fan_out \
             (use Zeros, Constant, Uniform or Normal for biases)",
        ));
    }
    let receptive: usize = dims[2..].iter().product();
    Ok((dims[1] * receptive, dims[0] * receptive))
}

fn check_non_negative(op: &'static str, name: &str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            op,
            format!("{name} must be finite and >= 0, got {v}"),
        ))
    }
}

/// A `rows x cols` matrix (the weight viewed as 2-D) with orthonormal rows or columns, whichever
/// are fewer: modified Gram–Schmidt, run twice for numerical orthogonality, on a normal matrix.
/// Gram–Schmidt gives R a positive diagonal, which is the sign convention PyTorch applies to QR.
fn orthogonal(shape: &Shape, gain: f64, rng: &mut Rng) -> Result<Vec<f64>> {
    // The same shape requirement as the fan-based initializers (rank >= 2, no zero dim).
    fans("Init::Orthogonal", shape)?;
    let rows = shape.dims()[0];
    let cols = shape.elem_count() / rows;
    // Orthonormalize `few` vectors of length `long`.
    let (few, long) = (rows.min(cols), rows.max(cols));
    let mut v: Vec<Vec<f64>> = (0..few)
        .map(|_| (0..long).map(|_| rng.normal()).collect())
        .collect();
    for i in 0..few {
        for _pass in 0..2 {
            for j in 0..i {
                let dot: f64 = v[i].iter().zip(&v[j]).map(|(a, b)| a * b).sum();
                let (done, rest) = v.split_at_mut(i);
                rest[0]
                    .iter_mut()
                    .zip(&done[j])
                    .for_each(|(a, b)| *a -= dot * b);
            }
        }
        let norm = v[i].iter().map(|a| a * a).sum::<f64>().sqrt();
        if norm == 0.0 {
            return Err(Error::invalid(
                "Init::Orthogonal",
                "degenerate random matrix (draw again with another seed)",
            ));
        }
        v[i].iter_mut().for_each(|a| *a /= norm);
    }
    // v[i] are orthonormal vectors of length `long`: rows of the result when rows <= cols,
    // columns otherwise.
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[r * cols + c] = gain * if rows <= cols { v[r][c] } else { v[c][r] };
        }
    }
    Ok(out)
}

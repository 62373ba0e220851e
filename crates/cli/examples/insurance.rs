//! Logistic regression on the seeds' insurance data: did a person buy insurance, from their age
//! (and, in the second model, whether they can afford it)?
//!
//! The 15 rows are the issue's; the affordability column comes from the same public tutorial
//! dataset (codebasics' `insurance_data.csv`, columns age, affordibility, bought_insurance).
//!
//! Run: `cargo run --release -p nabla --example insurance`

use nabla::data::{Dataset, Preprocessor, Scaling};
use nabla::nn::layers::Linear;
use nabla::nn::loss::Loss;
use nabla::nn::optim::Sgd;
use nabla::prelude::*;
use nabla::train::{self, TrainConfig};

pub const AGE: [f64; 15] = [
    22., 25., 47., 52., 46., 56., 55., 60., 62., 61., 18., 28., 27., 29., 49.,
];
pub const AFFORDABLE: [f64; 15] = [1., 0., 1., 0., 1., 1., 0., 0., 1., 1., 1., 1., 0., 0., 1.];
pub const BOUGHT: [f64; 15] = [0., 0., 1., 0., 1., 1., 0., 1., 1., 1., 0., 0., 0., 0., 1.];

/// A fitted model in the original units: `P(bought) = σ(w·x + b)`.
pub struct Fitted {
    pub weights: Vec<f64>,
    pub bias: f64,
    pub train_accuracy: f64,
}

impl Fitted {
    pub fn probability(&self, x: &[f64]) -> f64 {
        let z: f64 = self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>() + self.bias;
        1.0 / (1.0 + (-z).exp())
    }
}

/// Rows of the chosen features (`with_affordability` adds the second column).
pub fn features(with_affordability: bool) -> (Vec<f64>, usize) {
    let width = if with_affordability { 2 } else { 1 };
    let mut x = Vec::new();
    for i in 0..AGE.len() {
        x.push(AGE[i]);
        if with_affordability {
            x.push(AFFORDABLE[i]);
        }
    }
    (x, width)
}

/// Fits by full-batch gradient descent on standardized inputs (f64), then maps the weights back
/// to the original units: `w = w' / σ`, `b = b' − Σ w' μ / σ`.
pub fn fit(with_affordability: bool, steps: usize) -> anyhow::Result<Fitted> {
    let (raw, width) = features(with_affordability);
    let n = AGE.len();
    let pre = Preprocessor::fit(&raw, width, None, Scaling::Standardize)?;
    let x = Tensor::from_vec(pre.transform(&raw)?, [n, width])?;
    let y = Tensor::from_vec(BOUGHT.to_vec(), [n, 1])?;
    let data = Dataset::new(x, y)?;
    let model = Linear::builder(width, 1)
        .dtype(DType::F64)
        .init(Init::Zeros)
        .build(&mut Rng::seed(0))?;
    let mut gd = Sgd::new(0.5)?;
    let config = TrainConfig {
        epochs: steps,
        batch_size: n,
        loss: Loss::BinaryCrossEntropyWithLogits { pos_weight: None },
        ..Default::default()
    };
    let history = train::fit(&model, &mut gd, &data, None, &config, &mut [])?;
    let w = model.weight().as_tensor().to_vec::<f64>()?;
    let b = model.bias().expect("bias").as_tensor().to_vec::<f64>()?[0];
    let nabla::data::preprocess::Scaler::Affine { shift, scale } = &pre.scaler else {
        unreachable!("standardization is affine")
    };
    let weights: Vec<f64> = w.iter().zip(scale).map(|(w, s)| w / s).collect();
    let bias = b - weights.iter().zip(shift).map(|(w, m)| w * m).sum::<f64>();
    Ok(Fitted {
        weights,
        bias,
        train_accuracy: history.epochs.last().expect("epochs").train["accuracy"],
    })
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    let age_only = fit(false, 2000)?;
    println!(
        "age only:   P(bought) = σ({:.4}·age {:+.4}); 50% at age {:.1}; training accuracy {:.3}",
        age_only.weights[0],
        age_only.bias,
        -age_only.bias / age_only.weights[0],
        age_only.train_accuracy
    );
    for age in [25.0, 35.0, 45.0, 55.0] {
        println!("  age {age}: P = {:.3}", age_only.probability(&[age]));
    }
    let both = fit(true, 2000)?;
    println!(
        "age + affordability: σ({:.4}·age {:+.4}·afford {:+.4}); training accuracy {:.3}",
        both.weights[0], both.weights[1], both.bias, both.train_accuracy
    );
    Ok(())
}

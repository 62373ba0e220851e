//! XOR with a 2-8-1 MLP: the classic problem no linear model solves. Tanh hidden layer, one
//! logit out, binary cross-entropy with logits, Adam, full batch.
//!
//! Run: `cargo run --release -p nabla --example xor`

use nabla::data::Dataset;
use nabla::nn::layers::{Linear, Sequential, Tanh};
use nabla::nn::loss::Loss;
use nabla::nn::optim::Adam;
use nabla::prelude::*;
use nabla::train::{self, TrainConfig};

/// The four XOR points and their labels.
pub fn data() -> Dataset {
    let x = Tensor::from_vec(vec![0f32, 0., 0., 1., 1., 0., 1., 1.], [4, 2]).unwrap();
    let y = Tensor::from_vec(vec![0f32, 1., 1., 0.], [4, 1]).unwrap();
    Dataset::new(x, y).unwrap()
}

/// Trains the 2-8-1 net; returns the predicted probabilities for the four points and the
/// final training loss.
pub fn run(seed: u64, epochs: usize) -> anyhow::Result<(Vec<f32>, f64)> {
    let mut rng = Rng::seed(seed);
    let model = Sequential::new()
        .with(Linear::new(2, 8, &mut rng)?)
        .with(Tanh)
        .with(Linear::new(8, 1, &mut rng)?);
    let mut adam = Adam::new(0.05)?;
    let config = TrainConfig {
        epochs,
        batch_size: 4,
        seed,
        loss: Loss::BinaryCrossEntropyWithLogits { pos_weight: None },
        ..Default::default()
    };
    let data = data();
    let history = train::fit(&model, &mut adam, &data, None, &config, &mut [])?;
    let probs = model.predict(data.x())?.sigmoid()?.to_vec::<f32>()?;
    Ok((probs, history.epochs.last().expect("epochs").train["loss"]))
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    let (probs, loss) = run(0, 500)?;
    println!("x1 x2 | xor | P(1)");
    for (i, p) in probs.iter().enumerate() {
        println!(" {}  {} |  {}  | {p:.4}", i / 2, i % 2, (i / 2) ^ (i % 2));
    }
    println!("final loss {loss:.2e}");
    Ok(())
}

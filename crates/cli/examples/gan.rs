//! A GAN in Rust code: a generator of 8x8 digits (32 noise values -> 128 -> 256 -> 64 pixels in
//! (0, 1)) trained against a discriminator (64 -> 256 -> 128 -> one logit), each with its own
//! Adam, on the digits shipped in `data/digits/`. After each epoch the samples of a fixed noise
//! are measured against the real digits: their diversity (near 0: mode collapse), their
//! distance to the nearest training digit, and which digits they cover. The same model as
//! `examples/digits_gan.toml` without the run folder.
//!
//! Run: `cargo run --release -p nabla --example gan [EPOCHS]`

use nabla::data::{CsvOptions, Dataset, Preprocessor, Scaling, read_csv, read_csv_with};
use nabla::nn::layers::{Dropout, LeakyRelu, Linear, Sequential, Sigmoid};
use nabla::nn::optim::Adam;
use nabla::prelude::*;
use nabla::train::History;
use nabla::train::gan::quality::RealReference;
use nabla::train::gan::{GanConfig, GanTrainer};
use std::path::Path;

fn main() -> anyhow::Result<()> {
    // Keep freed tensor buffers for the next step (glibc would return them to the kernel).
    nabla::keep_freed_buffers();
    let epochs: usize = std::env::args().nth(1).map_or(Ok(200), |a| a.parse())?;
    // Train on a rayon thread, where nabla's parallel loops start without a hand-over.
    nabla::on_pool_thread(|| train(epochs))
}

fn train(epochs: usize) -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/digits");
    let (train, schema) = read_csv(dir.join("train.csv"), &CsvOptions::default())?;
    let test = read_csv_with(dir.join("test.csv"), &schema, true)?;
    // Pixels 0..16 -> [0, 1], the range of the generator's sigmoid.
    let pre = Preprocessor::fit(&train.features, 64, None, Scaling::Divide(16.0))?;
    let pixels = |t: &nabla::data::Table| -> anyhow::Result<Tensor> {
        Ok(Tensor::from_vec(pre.transform(&t.features)?, [t.rows, 64])?.to_dtype(DType::F32)?)
    };
    let real = Dataset::new(pixels(&train)?, Tensor::zeros([train.rows], DType::I64))?;
    let labels: Vec<usize> = match &train.target {
        nabla::data::Target::Classes(c) => c.iter().map(|&k| k as usize).collect(),
        _ => anyhow::bail!("the digits have class labels"),
    };

    let mut rng = Rng::seed(0);
    let leaky = || LeakyRelu::new(0.2);
    let generator = Sequential::new()
        .with(Linear::new(32, 128, &mut rng)?)
        .with(leaky())
        .with(Linear::new(128, 256, &mut rng)?)
        .with(leaky())
        .with(Linear::new(256, 64, &mut rng)?)
        .with(Sigmoid);
    let discriminator = Sequential::new()
        .with(Linear::new(64, 256, &mut rng)?)
        .with(leaky())
        .with(Dropout::new(0.3)?)
        .with(Linear::new(256, 128, &mut rng)?)
        .with(leaky())
        .with(Linear::new(128, 1, &mut rng)?);
    // DCGAN's Adam settings for both networks.
    let adam = || Adam::with_options(2e-4, (0.5, 0.999), 1e-8, 0.0, false);
    let (mut opt_g, mut opt_d) = (adam()?, adam()?);
    let config = GanConfig {
        epochs,
        batch_size: 64,
        latent: 32,
        real_label: 0.9,
        verbose: true,
        ..GanConfig::default()
    };
    let reference = RealReference::new(real.x(), Some((&labels, 10)), Some(&pixels(&test)?), 0)?;
    let mut trainer = GanTrainer::new(
        &generator,
        &discriminator,
        &mut opt_g,
        &mut opt_d,
        &config,
        History::default(),
        Some(reference),
    )?;
    while !trainer.is_finished() {
        trainer.run_epoch(&real)?;
    }
    if let Some(q) = trainer.measure()? {
        println!(
            "{} samples: diversity {:.3}, nearest distance {:.3}, {} of 10 digits covered \
             (entropy {:.3})",
            q.samples,
            q.diversity,
            q.nearest_distance,
            q.classes_covered.unwrap_or(0),
            q.class_entropy.unwrap_or(f64::NAN)
        );
    }
    Ok(())
}

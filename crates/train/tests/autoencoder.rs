//! The denoising autoencoder against the plain one (the shipped digits configs, trained in
//! memory): given test digits with 30% of their pixels masked, it reconstructs the clean digits
//! better, which is what training on corrupted inputs is for. And the noise layer is off in
//! evaluation: on clean inputs both models are deterministic.

use nabla_core::Rng;
use nabla_nn::layers::MaskingNoise;
use nabla_nn::{Ctx, Module, ModuleExt};
use nabla_train::config::load;
use nabla_train::experiment::{Experiment, prepare};
use std::path::Path;

fn trained(example: &str) -> Experiment {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(example);
    let mut exp = prepare(&load(&path, &[]).unwrap()).unwrap();
    exp.fit().unwrap();
    exp
}

fn mse(a: &nabla_core::Tensor, b: &nabla_core::Tensor) -> f64 {
    let (a, b) = (a.to_vec_f64(), b.to_vec_f64());
    a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64
}

#[test]
fn the_denoising_autoencoder_restores_masked_digits_better_than_the_plain_one() {
    let plain = trained("digits_autoencoder.toml");
    let denoising = trained("digits_denoising_autoencoder.toml");
    let test = denoising.data.test.as_ref().unwrap();
    let clean = test.y();
    // The same corruption the denoising model trained with, drawn independently of it.
    let masked = MaskingNoise::new(0.3)
        .unwrap()
        .forward(test.x(), &mut Ctx::train(Rng::seed(12345)))
        .unwrap();
    let plain_err = mse(&plain.model.predict(&masked).unwrap(), clean);
    let denoising_err = mse(&denoising.model.predict(&masked).unwrap(), clean);
    eprintln!(
        "masked test digits, MSE to the clean ones: denoising {denoising_err:.5}, plain {plain_err:.5}"
    );
    assert!(
        denoising_err < 0.8 * plain_err,
        "masked test digits: denoising {denoising_err} vs plain {plain_err}"
    );
    // In evaluation the masking layer is the identity: the same input, the same output.
    let once = denoising.model.predict(test.x()).unwrap().to_vec_f64();
    let again = denoising.model.predict(test.x()).unwrap().to_vec_f64();
    assert_eq!(once, again);
}

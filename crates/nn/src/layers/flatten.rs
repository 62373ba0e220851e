//! `Flatten`: `[N, d1, d2, ...] -> [N, d1·d2·...]`, between convolutional and dense layers.

use crate::module::{Ctx, Module};
use nabla_core::{Error, Result, Tensor};

/// Flattens every dim after the batch dim.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flatten;

impl Module for Flatten {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        match x.rank() {
            0 => Err(Error::bad_shape("Flatten", x.shape(), "needs a batch dim")),
            1 => x.unsqueeze(1),
            _ => x.flatten(1, -1),
        }
    }
    fn describe(&self) -> String {
        "Flatten".into()
    }
}

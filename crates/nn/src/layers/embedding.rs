//! `Embedding`: a lookup table from token ids to learned vectors (the first layer of a language
//! model). Its gradient is the sum of the output gradients at each id's positions.

use crate::init::Init;
use crate::module::{Ctx, Module, VarKind};
use nabla_core::{DType, Error, Result, Rng, Tensor, Var};

/// Maps ids `[...]` (integers in `0..num_embeddings`, as i64 or as whole floats) to vectors
/// `[..., dim]`. The table is `weight: [num_embeddings, dim]` (PyTorch's name and layout),
/// initialized from N(0, 1) like PyTorch's.
pub struct Embedding {
    weight: Var,
}

impl Embedding {
    /// A table of `num_embeddings` vectors of `dim` values, N(0, 1).
    pub fn new(num_embeddings: usize, dim: usize, rng: &mut Rng) -> Result<Embedding> {
        Self::with_init(
            num_embeddings,
            dim,
            Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
            DType::F32,
            rng,
        )
    }

    /// A table drawn from `init`.
    pub fn with_init(
        num_embeddings: usize,
        dim: usize,
        init: Init,
        dtype: DType,
        rng: &mut Rng,
    ) -> Result<Embedding> {
        if num_embeddings == 0 || dim == 0 {
            return Err(Error::invalid(
                "Embedding",
                format!("num_embeddings and dim must be positive, got {num_embeddings} and {dim}"),
            ));
        }
        Ok(Embedding {
            weight: Var::new(&init.tensor([num_embeddings, dim], dtype, rng)?)?,
        })
    }

    /// The table `[num_embeddings, dim]`.
    pub fn weight(&self) -> &Var {
        &self.weight
    }

    /// How many ids the table holds.
    pub fn num_embeddings(&self) -> usize {
        self.weight.shape().dims()[0]
    }

    /// The vectors' length.
    pub fn dim(&self) -> usize {
        self.weight.shape().dims()[1]
    }

    /// The ids of `x` as i64, or an error naming the first that is not a whole number in range.
    fn ids(&self, x: &Tensor) -> Result<Tensor> {
        let n = self.num_embeddings();
        let values = x.to_vec_f64();
        let mut ids = Vec::with_capacity(values.len());
        for (i, &v) in values.iter().enumerate() {
            if !(v.fract() == 0.0 && v >= 0.0 && v < n as f64) {
                return Err(Error::bad_shape(
                    "Embedding",
                    x.shape(),
                    format!(
                        "element {i} is {v}: ids must be whole numbers in 0..{n} (the table's size)"
                    ),
                ));
            }
            ids.push(v as i64);
        }
        Tensor::from_vec(ids, [values.len()])
    }
}

impl Module for Embedding {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        let ids = self.ids(x)?;
        let mut shape = x.dims().to_vec();
        shape.push(self.dim());
        self.weight
            .as_tensor()
            .index_select(0, &ids)?
            .reshape(shape)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        f("weight", &self.weight, VarKind::Parameter);
    }

    fn describe(&self) -> String {
        format!("Embedding({}, {})", self.num_embeddings(), self.dim())
    }
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

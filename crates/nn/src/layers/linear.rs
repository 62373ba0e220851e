//! `Linear`: the affine map `y = x Wᵀ + b` of a fully connected layer.

use crate::init::Init;
use crate::module::{Ctx, Module, VarKind};
use nabla_core::{DType, Error, Result, Rng, Tensor, Var};

/// A fully connected layer: `y = x Wᵀ + b` with `W: [out, in]` (PyTorch's layout) and `b: [out]`,
/// applied to the last dim of `x: [..., in]`.
///
/// Default initialization: weight Xavier/Glorot uniform (variance `2 / (in + out)`, Keras'
/// default), bias zeros. For ReLU networks choose He: `Linear::builder(i, o).init(Init::HE)`.
pub struct Linear {
    weight: Var,
    bias: Option<Var>,
}

/// Options of a [`Linear`] layer; finish with [`LinearBuilder::build`].
#[derive(Debug, Clone)]
pub struct LinearBuilder {
    in_features: usize,
    out_features: usize,
    bias: bool,
    init: Init,
    bias_init: Init,
    dtype: DType,
}

impl LinearBuilder {
    weight_options!("[`Init::XAVIER`]");

    /// Draws the initial parameters from `rng`.
    pub fn build(self, rng: &mut Rng) -> Result<Linear> {
        if self.in_features == 0 || self.out_features == 0 {
            return Err(Error::invalid(
                "Linear",
                format!(
                    "in_features and out_features must be positive, got {} -> {}",
                    self.in_features, self.out_features
                ),
            ));
        }
        let weight = self
            .init
            .tensor([self.out_features, self.in_features], self.dtype, rng)?;
        let bias = self.make_bias(self.out_features, rng)?;
        Ok(Linear {
            weight: Var::new(&weight)?,
            bias,
        })
    }
}

impl Linear {
    /// A layer `in_features -> out_features` with the default options.
    pub fn new(in_features: usize, out_features: usize, rng: &mut Rng) -> Result<Linear> {
        Self::builder(in_features, out_features).build(rng)
    }

    /// Options for a layer `in_features -> out_features`.
    pub fn builder(in_features: usize, out_features: usize) -> LinearBuilder {
        LinearBuilder {
            in_features,
            out_features,
            bias: true,
            init: Init::XAVIER,
            bias_init: Init::Zeros,
            dtype: DType::F32,
        }
    }

    /// A layer with the given parameters (`weight: [out, in]`, `bias: [out]`).
    pub fn from_parameters(weight: &Tensor, bias: Option<&Tensor>) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::bad_shape(
                "Linear",
                weight.shape(),
                "the weight must be [out_features, in_features]",
            ));
        }
        if let Some(b) = bias
            && b.dims() != [weight.dims()[0]]
        {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                lhs: weight.shape().clone().into(),
                rhs: b.shape().clone().into(),
                reason: "the bias must be [out_features]".into(),
            });
        }
        Ok(Linear {
            weight: Var::new(weight)?,
            bias: bias.map(Var::new).transpose()?,
        })
    }

    /// The weight `[out, in]`.
    pub fn weight(&self) -> &Var {
        &self.weight
    }

    /// The bias `[out]`, if any.
    pub fn bias(&self) -> Option<&Var> {
        self.bias.as_ref()
    }

    /// Input features.
    pub fn in_features(&self) -> usize {
        self.weight.shape().dims()[1]
    }

    /// Output features.
    pub fn out_features(&self) -> usize {
        self.weight.shape().dims()[0]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor, _ctx: &mut Ctx) -> Result<Tensor> {
        let w = self.weight.as_tensor();
        if x.rank() == 0 || x.dims()[x.rank() - 1] != self.in_features() {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                lhs: x.shape().clone().into(),
                rhs: w.shape().clone().into(),
                reason: format!(
                    "the input's last dim must be in_features = {}",
                    self.in_features()
                ),
            });
        }
        // `[..., in]` is read as one `[rows, in]` matrix: one GEMM for every step of a
        // sequence (and one for the weight's gradient), not a product per batch entry.
        let leading = &x.dims()[..x.rank() - 1];
        let flat = if x.rank() > 2 {
            x.reshape([leading.iter().product(), self.in_features()])?
        } else {
            x.clone()
        };
        let y = flat.matmul(&w.t()?)?;
        let y = match &self.bias {
            Some(b) => y.add(&b.as_tensor())?,
            None => y,
        };
        if x.rank() > 2 {
            let mut shape = leading.to_vec();
            shape.push(self.out_features());
            y.reshape(shape)
        } else {
            Ok(y)
        }
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        f("weight", &self.weight, VarKind::Parameter);
        if let Some(b) = &self.bias {
            f("bias", b, VarKind::Parameter);
        }
    }

    fn describe(&self) -> String {
        format!(
            "Linear({} -> {}{})",
            self.in_features(),
            self.out_features(),
            if self.bias.is_some() { "" } else { ", no bias" }
        )
    }
    /// It maps the last dim: each step alone.
    fn runs_step_by_step(&self) -> bool {
        true
    }
}

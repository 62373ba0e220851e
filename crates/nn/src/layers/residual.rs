//! `Residual`: a skip connection `y = x + F(x)` (He et al., 2016). The identity path carries the
//! gradient past `F` unchanged (∂y/∂x = I + ∂F/∂x), so deep stacks do not starve early layers.

use crate::module::{Ctx, Module, VarKind, visit_child};
use nabla_core::{Result, Tensor, Var};

/// `y = x + block(x)`, or `y = projection(x) + block(x)` when the block changes the width.
/// Children are named `block` and `projection`.
pub struct Residual {
    block: Box<dyn Module>,
    projection: Option<Box<dyn Module>>,
}

impl Residual {
    /// A skip connection around `block`, which must keep the input's shape.
    pub fn new(block: impl Module + 'static) -> Self {
        Residual {
            block: Box::new(block),
            projection: None,
        }
    }

    /// A skip connection whose identity path goes through `projection` (e.g. a `Linear`
    /// without bias) so that it matches the block's output shape.
    pub fn with_projection(
        block: impl Module + 'static,
        projection: impl Module + 'static,
    ) -> Self {
        Residual {
            block: Box::new(block),
            projection: Some(Box::new(projection)),
        }
    }
}

impl Module for Residual {
    fn forward(&self, x: &Tensor, ctx: &mut Ctx) -> Result<Tensor> {
        let fx = ctx.child(&"block", self.block.as_ref(), x)?;
        let skip = match &self.projection {
            Some(p) => ctx.child(&"projection", p.as_ref(), x)?,
            None => x.clone(),
        };
        if skip.shape() != fx.shape() {
            return Err(nabla_core::Error::ShapeMismatch {
                op: "Residual",
                lhs: skip.shape().clone().into(),
                rhs: fx.shape().clone().into(),
                reason: "the block must keep the input's shape (or add a projection)".into(),
            });
        }
        skip.add(&fx)
    }

    fn visit(&self, f: &mut dyn FnMut(&str, &Var, VarKind)) {
        visit_child("block", self.block.as_ref(), f);
        if let Some(p) = &self.projection {
            visit_child("projection", p.as_ref(), f);
        }
    }

    fn describe(&self) -> String {
        match &self.projection {
            Some(p) => format!("Residual({} + {})", p.describe(), self.block.describe()),
            None => format!("Residual(x + {})", self.block.describe()),
        }
    }

    fn children(&self) -> Vec<(String, &dyn Module)> {
        let mut c = vec![("block".to_string(), self.block.as_ref() as &dyn Module)];
        if let Some(p) = &self.projection {
            c.push(("projection".to_string(), p.as_ref()));
        }
        c
    }
    fn runs_step_by_step(&self) -> bool {
        self.block.runs_step_by_step()
            && self
                .projection
                .as_ref()
                .is_none_or(|p| p.runs_step_by_step())
    }
}

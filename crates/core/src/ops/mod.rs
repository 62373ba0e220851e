//! Differentiable ops, by family. Each op keeps its forward and its backward side by side.

pub(crate) mod activation;
pub(crate) mod conv;
pub(crate) mod elementwise;
pub(crate) mod loss;
pub(crate) mod matmul;
pub(crate) mod norm;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod shape;

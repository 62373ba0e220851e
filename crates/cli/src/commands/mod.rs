//! One module per `nabla` subcommand.

pub mod bench;
pub mod check_grads;

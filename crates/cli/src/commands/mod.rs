//! One module per `nabla` subcommand.

pub mod bench;
pub mod check_grads;
pub mod check_optim;
pub mod doctor;
pub mod lr_find;
pub mod oracle;
pub mod train;
pub mod tune;
pub mod use_model;

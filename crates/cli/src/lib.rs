//! # nabla
//!
//! The `nabla` command line and the library facade: `use nabla::prelude::*` brings the tensor,
//! autodiff and (as they land) layer, data and training APIs into scope.

pub mod commands;

/// Keeps freed tensor buffers in the process instead of handing them back to the kernel at
/// every step. glibc serves allocations above its mmap threshold (128 KiB, raised dynamically
/// only up to the size of buffers already freed) with fresh mappings, and trims the heap when
/// its free top exceeds the trim threshold; a training step allocates and frees buffers of many
/// megabytes, so each step paid page faults and page clearing again (about a fifth of an LSTM
/// step in `nabla bench lstm`). Fixed thresholds: buffers up to 256 MiB come from the heap, and
/// up to 1 GiB of freed heap is kept for the next step (never more than the run's own peak).
///
/// The `nabla` binary calls it first thing; a program that trains with the library should do
/// the same at the start of `main`, before it starts other threads. Elsewhere than Linux with
/// glibc it does nothing.
pub fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread runs.
    unsafe {
        // Builds of glibc whose heaps are capped at 64 MiB refuse more than 32 MiB.
        if libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20) == 0 {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        }
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Everything a typical program needs.
pub mod prelude {
    pub use nabla_core::{
        Conv2dOptions, DType, Error, Grads, Pool2dOptions, Reduction, Result, Rng, Shape, Tensor,
        Var, no_grad, with_no_grad,
    };
    pub use nabla_nn::{Ctx, Init, Module, ModuleExt};
}

pub use nabla_core as core;
pub use nabla_data as data;
pub use nabla_nn as nn;
pub use nabla_train as train;

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
/// Every thread allocates from the one main heap. glibc gives other threads arenas of their
/// own, made of 64 MiB pieces that it unmaps as soon as one is free whatever the trim
/// threshold (glibc 2.36): a step run on a rayon worker, with buffers of tens of megabytes,
/// mapped and faulted in a new piece again and again (in about one run of three, the
/// character LSTM of `nabla bench lstm` took 4.5 to 11 times the page faults and lost 20–45%
/// of its speed). Training allocates a few large buffers per step, so threads seldom wait for the
/// shared heap's lock; small allocations come from glibc's per-thread caches.
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
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Runs `work` on one of rayon's pool threads and returns its result; call it from `main`
/// around the training.
///
/// nabla splits its loops over rayon's pool (convolutions, large element-wise ops, the groups
/// of a recurrence, the matrix products). Called from a thread outside the pool, each such
/// loop is handed over to the pool while the caller sleeps until it is done: a wake-up and two
/// context switches per loop, hundreds per training step, and with one worker thread the step
/// ping-pongs between two threads. On a pool thread the loop starts where it is called. The
/// results are the same bits. Measured with `nabla bench` (Zen 5, alternated with the binary
/// from before, medians): the CNN +27% on one thread and +26% on two, the MLP at batch 128
/// +37% on two threads (`bench-results/pool-thread-2026-11-24.md`).
///
/// Pool threads have Rust's 2 MiB stack unless the pool was built with more
/// (`rayon::ThreadPoolBuilder::stack_size`); the `nabla` binary gives them 8 MiB, as `main`.
pub fn on_pool_thread<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
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

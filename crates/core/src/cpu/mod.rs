//! CPU kernels. Ops (in `ops/`) check arguments, dispatch on dtype and record autograd nodes;
//! the loops that touch memory live here, so that another device can slot in behind the same ops.

pub(crate) mod conv;
pub(crate) mod fast_math;
pub(crate) mod matmul;
pub(crate) mod recurrent;
pub(crate) mod reduce;
pub(crate) mod simd_map;
pub(crate) mod strided;

/// Below this many elements an elementwise loop runs on the calling thread: waking the pool
/// costs more than the work (and the second core of these machines is often busy).
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 16;

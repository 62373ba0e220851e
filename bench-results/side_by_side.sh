#!/bin/bash
# numpy (OpenBLAS) and nabla GEMM on the same machine, alternating for ROUNDS rounds so that host
# noise hits both alike; then the per-shape median over rounds and the nabla/numpy ratio.
# Usage: bench-results/side_by_side.sh [ROUNDS [THREADS]]   (needs python3 with numpy, and a
# release build; THREADS, default 1, is given to both). The raw JSON lines are kept in $KEEP_LOG when
# it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-1}
log=${KEEP_LOG:-$(mktemp)}
: > "$log"
for r in $(seq "$rounds"); do
  echo "# round $r load=$(cut -d' ' -f1 /proc/loadavg)" >&2
  OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads python3 bench-results/np_gemm.py >> "$log"
  ./target/release/nabla bench core --threads "$threads" >> "$log"
done
python3 bench-results/summarize_gemm.py < "$log"
[ -n "${KEEP_LOG:-}" ] || rm -f "$log"

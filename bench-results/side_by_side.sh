#!/bin/bash
# numpy (OpenBLAS) and nabla GEMM on the same machine, one thread, alternating for ROUNDS rounds so
# that host noise hits both alike; then the per-shape median over rounds and the nabla/numpy ratio.
# Usage: bench-results/side_by_side.sh [ROUNDS]   (needs python3 with numpy, and a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
log=$(mktemp)
for r in $(seq "$rounds"); do
  echo "# round $r load=$(cut -d' ' -f1 /proc/loadavg)" >&2
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python3 bench-results/np_gemm.py >> "$log"
  ./target/release/nabla bench core --threads 1 >> "$log"
done
python3 bench-results/summarize_gemm.py < "$log"
rm -f "$log"

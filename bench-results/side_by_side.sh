#!/bin/bash
# numpy (OpenBLAS) and nabla GEMM, same machine, same run; 1 thread then 2 threads.
cd "$(dirname "$0")/.."
for t in 1 2; do
  echo "# threads=$t load=$(cut -d' ' -f1 /proc/loadavg)"
  OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t python3 bench-results/np_gemm.py | sed "s/^/np$t /"
  ./target/release/nabla bench core --threads $t | sed "s/^/nabla$t /"
done

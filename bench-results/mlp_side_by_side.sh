#!/bin/bash
# PyTorch (eager, 1 thread) and nabla on the peers' "mlp" and "tiny" workloads, same machine, same
# run, alternating for ROUNDS rounds. Needs the peers venv (shared/peers/setup_peers_env.sh) in
# $PEERS_PY and a release build of nabla.
# Usage: PEERS_PY=/path/to/venv/bin/python bench-results/mlp_side_by_side.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-2}
for r in $(seq "$rounds"); do
  echo "# round $r load=$(cut -d' ' -f1 /proc/loadavg)" >&2
  "$PEERS_PY" ../shared/peers/bench_peers.py --only mlp,tiny --frameworks torch --threads 1 | grep '"kind": "result"' || true
  ./target/release/nabla bench mlp --threads 1
done

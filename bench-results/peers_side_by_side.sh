#!/bin/bash
# PyTorch (eager) and nabla on the peers' training workloads, same machine, same run,
# alternating for ROUNDS rounds so that host noise hits both alike. Needs the peers venv
# (shared/peers/setup_peers_env.sh) in $PEERS_PY and a release build of nabla.
# Usage: PEERS_PY=/path/to/venv/bin/python bench-results/peers_side_by_side.sh [ROUNDS] [SUITES] [THREADS]
#   SUITES: comma list of mlp, cnn, lstm (default all); mlp includes the peers' "tiny" net, and
#   lstm the character model (bench-results/char_lstm_torch.py for PyTorch's side).
#   THREADS: given to both (default 1, as shared/peers/RESULTS.md).
# Summarize with: python3 bench-results/summarize_peers.py < OUTPUT
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
suites=${2:-mlp,cnn,lstm}
threads=${3:-1}
peers=${suites/mlp/mlp,tiny}
for r in $(seq "$rounds"); do
  echo "# round $r load=$(cut -d' ' -f1 /proc/loadavg)" >&2
  "$PEERS_PY" ../shared/peers/bench_peers.py --only "$peers" --frameworks torch --threads "$threads" | grep '"kind": "result"' || true
  if [[ ,$suites, == *,lstm,* ]]; then
    "$PEERS_PY" bench-results/char_lstm_torch.py "$threads"
  fi
  for s in ${suites//,/ }; do
    ./target/release/nabla bench "$s" --threads "$threads"
  done
done

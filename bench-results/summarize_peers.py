"""Reads JSON lines from bench_peers.py (torch) and `nabla bench mlp|cnn|lstm`; prints each
workload's median over rounds, the spread, and the nabla/torch ratio as a Markdown table."""
import json, statistics, sys

NAMES = {
    "tiny": "2-8-1 tanh XOR, SGD, batch 4",
    "mlp": "784-256-128-10 ReLU MLP, Adam, batch {batch}",
    "cnn": "CNN conv8-pool-conv16-pool-fc10, Adam, batch {batch}",
    "lstm": "LSTM in 32, hidden 128, T=50, last step -> fc10, Adam, batch {batch}",
    "gru": "GRU, same shapes as the LSTM",
    "rnn": "tanh RNN, same shapes as the LSTM",
    "char_lstm": "character LSTM: embedding 32, LSTM 256, T=100, fc63 at every step, "
    "clip 5, Adam, batch {batch}",
}
runs = {}
threads = set()
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("kind") != "result" or r["bench"] not in NAMES:
        continue
    if "threads" in r:
        threads.add(r["threads"])
    key = (list(NAMES).index(r["bench"]), r["bench"], r["config"]["batch"], r["unit"])
    runs.setdefault(key, {}).setdefault(r["framework"], []).append(r["value"])


def cell(values):
    if not values:
        return "–"
    m = statistics.median(values)
    return f"{m:,.0f} ({min(values):,.0f}–{max(values):,.0f})"


on = ", ".join(map(str, sorted(threads))) + (" thread" if threads == {1} else " threads")
print(f"| workload | unit | PyTorch eager, {on} | nabla, {on} | nabla / PyTorch |")
print("|---|---|---:|---:|---:|")
for (_, bench, batch, unit), v in sorted(runs.items()):
    t, n = v.get("torch", []), v.get("nabla", [])
    ratio = f"{statistics.median(n) / statistics.median(t):.2f}" if t and n else "–"
    print(f"| {NAMES[bench].format(batch=batch)} | {unit} | {cell(t)} | {cell(n)} | {ratio} |")
rounds = max(len(x) for v in runs.values() for x in v.values())
print(f"\nMedian over {rounds} rounds (min–max in brackets).")

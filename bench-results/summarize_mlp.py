"""Reads JSON lines from bench_peers.py (torch) and `nabla bench mlp`; prints per-workload
medians over rounds and the nabla/torch ratio as a Markdown table."""
import json, sys, statistics
runs = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r.get("kind") != "result" or r["bench"] not in ("mlp", "tiny"):
        continue
    key = (r["bench"], r["config"]["batch"])
    runs.setdefault(key, {}).setdefault(r["framework"], []).append(r["value"])
print("| workload | unit | PyTorch eager, 1 thread | nabla, 1 thread | nabla / PyTorch |")
print("|---|---|---:|---:|---:|")
for (bench, batch), v in sorted(runs.items()):
    t = statistics.median(v["torch"]); n = statistics.median(v["nabla"])
    unit = "steps/s" if bench == "tiny" else "samples/s"
    name = "2-8-1 tanh XOR, SGD, batch 4" if bench == "tiny" else f"784-256-128-10 ReLU, Adam, batch {batch}"
    print(f"| {name} | {unit} | {t:,.0f} | {n:,.0f} | {n/t:.2f} |")

"""Reads JSON lines from np_gemm.py and `nabla bench core`; prints per-shape medians and ratios."""
import json, sys, statistics
runs = {}
for line in sys.stdin:
    r = json.loads(line)
    if r.get("bench") != "gemm":
        continue
    c = r["config"]
    key = (c["m"], c["k"], c["n"], c["form"])
    runs.setdefault(key, {}).setdefault(r["framework"], []).append(r["value"])
print("| m | k | n | form | numpy GFLOP/s | nabla GFLOP/s | nabla/numpy |")
print("|---:|---:|---:|---|---:|---:|---:|")
for (m, k, n, f), v in runs.items():
    np_ = statistics.median(v["numpy"]); nb = statistics.median(v["nabla"])
    print(f"| {m} | {k} | {n} | {f} | {np_:.1f} | {nb:.1f} | {nb/np_:.2f} |")

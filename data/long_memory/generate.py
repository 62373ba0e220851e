"""Writes train.csv and test.csv: sequences of 40 standard normal values (3 decimals), each
labelled 1 when its first value is positive, else 0. Python's `random` with seed 7."""
import random

random.seed(7)
STEPS = 40
for name, rows in [("train", 1000), ("test", 400)]:
    with open(f"{name}.csv", "w") as f:
        f.write(",".join(f"x{t}" for t in range(STEPS)) + ",label\n")
        for _ in range(rows):
            xs = [random.gauss(0, 1) for _ in range(STEPS)]
            f.write(",".join(f"{v:.3f}" for v in xs) + f",{int(xs[0] > 0)}\n")

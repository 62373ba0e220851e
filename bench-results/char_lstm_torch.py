"""PyTorch's training step for `nabla bench lstm`'s char_lstm line, the same model and timing:
ids over 63 characters -> embedding 32 -> LSTM 256 (a state per step, 100 steps) -> linear 63
at every step, batch 64, cross-entropy over every step, gradients clipped at norm 5, Adam 3e-3,
cycling over 4 random batches. Timing as the peers' bench_peers.py and nabla's: 5 warm-up
steps, then 7 repeats of at least MIN_TIME seconds, the median per step. Prints one JSON line
in the peers' schema.
Usage: python bench-results/char_lstm_torch.py [THREADS [MIN_TIME]]"""
import json, sys, time
import torch
from torch import nn
from torch_char_lstm import CharLstm

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
min_time = float(sys.argv[2]) if len(sys.argv) > 2 else 0.25
torch.set_num_threads(threads)
torch.manual_seed(0)
VOCAB, BATCH, STEPS = 63, 64, 100

model = CharLstm(VOCAB)
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()
batches = [(torch.randint(VOCAB, (BATCH, STEPS)), torch.randint(VOCAB, (BATCH * STEPS,)))
           for _ in range(4)]
step_no = 0


def step():
    global step_no
    x, y = batches[step_no % len(batches)]
    step_no += 1
    loss = loss_fn(model(x).reshape(-1, VOCAB), y)
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()


for _ in range(5):
    step()
times = []
for _ in range(7):
    n, start = 0, time.perf_counter()
    while True:
        step()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
    times.append(elapsed / n)
times.sort()
median = times[len(times) // 2]
print(json.dumps({
    "bench": "char_lstm", "framework": "torch", "kind": "result", "threads": threads,
    "config": {"batch": BATCH, "vocab": VOCAB, "embedding": 32, "hidden": 256, "steps": STEPS},
    "metric": "train_throughput", "unit": "samples/s", "value": BATCH / median,
    "median_s_per_iter": median, "min_s_per_iter": times[0], "max_s_per_iter": times[-1],
}))

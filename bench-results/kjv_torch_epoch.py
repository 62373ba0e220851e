"""One epoch of the KJV character LSTM in PyTorch, shaped as examples/kjv_lstm.toml trains it in
nabla: the Old Testament's characters (sorted, one class each), the last 5% held out, windows of
100 with next-character targets, embedding 32 -> LSTM 256 (all steps) -> linear 63, Adam 3e-3,
batch 64 shuffled, gradients clipped at norm 5, then one pass over the held-out windows.
Prints the seconds of the epoch and of the validation pass, and the validation bits per char.
Usage: python bench-results/kjv_torch_epoch.py [THREADS]   (default: all cores, as nabla)"""
import math, sys, time
import torch
from torch import nn
from torch_char_lstm import CharLstm

threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
torch.set_num_threads(threads)
torch.manual_seed(0)
text = open("../shared/data/kjv/kjv_train.txt", encoding="utf-8").read()
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
ids = torch.tensor([index[c] for c in text])
valid_len = round(len(ids) * 0.05)
train_ids, valid_ids = ids[: len(ids) - valid_len], ids[len(ids) - valid_len :]

def windows(x, t=100):
    n = (len(x) - 1) // t
    return x[: n * t].view(n, t), x[1 : n * t + 1].view(n, t)

xt, yt = windows(train_ids)
xv, yv = windows(valid_ids)

model = CharLstm(len(chars))
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
loss_fn = nn.CrossEntropyLoss()
start = time.perf_counter()
order = torch.randperm(len(xt))
for b in range(0, len(xt), 64):
    idx = order[b : b + 64]
    logits = model(xt[idx])
    loss = loss_fn(logits.reshape(-1, len(chars)), yt[idx].reshape(-1))
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
train_s = time.perf_counter() - start
start = time.perf_counter()
with torch.no_grad():
    total, count = 0.0, 0
    for b in range(0, len(xv), 256):
        logits = model(xv[b : b + 256])
        total += nn.functional.cross_entropy(
            logits.reshape(-1, len(chars)), yv[b : b + 256].reshape(-1), reduction="sum").item()
        count += yv[b : b + 256].numel()
valid_s = time.perf_counter() - start
print(f"torch {torch.__version__} threads {threads}: epoch {train_s:.1f} s, validation "
      f"{valid_s:.1f} s, valid bits/char {total / count / math.log(2):.4f}")

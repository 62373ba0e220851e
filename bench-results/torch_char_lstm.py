"""The KJV character model of examples/kjv_lstm.toml in PyTorch, shared by kjv_torch_epoch.py
and char_lstm_torch.py: embedding 32 -> LSTM 256 (a state per step) -> linear over the
characters at every step."""
from torch import nn


class CharLstm(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.embed = nn.Embedding(vocab, 32)
        self.lstm = nn.LSTM(32, 256, batch_first=True)
        self.out = nn.Linear(256, vocab)

    def forward(self, x):
        h, _ = self.lstm(self.embed(x))
        return self.out(h)

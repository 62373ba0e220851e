"""Reference cases for nabla's recurrent layers, computed by PyTorch in float64.

Each case builds torch.nn.{RNN,LSTM,GRU}(batch_first=True) with seeded weights, runs a seeded
input through it, and records the output (all steps) and the gradients of
sum(output * cotangent) with respect to the input and every parameter.

Regenerate (any Python with torch):  python recurrent_cases.py > recurrent_cases.json
"""
import json
import torch

torch.set_default_dtype(torch.float64)


def case(kind, nonlinearity, layers, batch, time, inputs, hidden, seed):
    torch.manual_seed(seed)
    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind]
    extra = {"nonlinearity": nonlinearity} if kind == "rnn" else {}
    m = cls(inputs, hidden, num_layers=layers, batch_first=True, **extra)
    x = torch.randn(batch, time, inputs, requires_grad=True)
    out, _ = m(x)
    cot = torch.randn_like(out)
    (out * cot).sum().backward()
    as_list = lambda t: t.detach().reshape(-1).tolist()
    return {
        "cell": kind if kind != "rnn" else f"rnn_{nonlinearity}",
        "layers": layers,
        "input_size": inputs,
        "hidden_size": hidden,
        "x": {"shape": list(x.shape), "data": as_list(x)},
        "cotangent": as_list(cot),
        "params": {n: {"shape": list(p.shape), "data": as_list(p)} for n, p in m.named_parameters()},
        "output": {"shape": list(out.shape), "data": as_list(out)},
        "grads": {"x": as_list(x.grad), **{n: as_list(p.grad) for n, p in m.named_parameters()}},
    }


cases = [
    case("rnn", "tanh", 2, 3, 5, 4, 3, 0),
    case("rnn", "relu", 1, 2, 4, 3, 5, 1),
    case("lstm", None, 1, 3, 6, 4, 5, 2),
    case("lstm", None, 2, 2, 5, 3, 4, 3),
    case("gru", None, 1, 3, 6, 4, 5, 4),
    case("gru", None, 2, 2, 5, 3, 4, 5),
]
print(json.dumps({"generator": "torch " + torch.__version__, "cases": cases}))

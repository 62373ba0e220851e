"""Reference cases for nabla's BatchNorm1d/BatchNorm2d, computed by PyTorch in float64.

Each case builds torch.nn.BatchNorm{1,2}d with seeded affine weights, runs several training
steps (recording per step the output, the gradients of sum(output * cotangent) with respect to
the input, weight and bias, and the buffers after the step: running_mean, running_var,
num_batches_tracked), then one evaluation step on a fresh input.

Regenerate (any Python with torch):  python batchnorm_cases.py > batchnorm_cases.json
"""
import json
import torch

torch.set_default_dtype(torch.float64)


def case(kind, channels, shape, momentum, steps, seed):
    torch.manual_seed(seed)
    cls = {"1d": torch.nn.BatchNorm1d, "2d": torch.nn.BatchNorm2d}[kind]
    m = cls(channels, momentum=momentum)
    with torch.no_grad():
        m.weight.copy_(torch.randn(channels))
        m.bias.copy_(torch.randn(channels))
    as_list = lambda t: t.detach().reshape(-1).tolist()
    out = {
        "kind": kind,
        "channels": channels,
        "momentum": momentum,
        "weight": as_list(m.weight),
        "bias": as_list(m.bias),
        "shape": list(shape),
        "steps": [],
    }
    m.train()
    for step in range(steps):
        # Shifted, scaled inputs so that the running statistics move visibly.
        x = (torch.randn(*shape) * (1.5 + step) + 2.0 - step).requires_grad_(True)
        m.zero_grad()
        y = m(x)
        cot = torch.randn_like(y)
        (y * cot).sum().backward()
        out["steps"].append({
            "x": as_list(x),
            "cotangent": as_list(cot),
            "output": as_list(y),
            "grad_x": as_list(x.grad),
            "grad_weight": as_list(m.weight.grad),
            "grad_bias": as_list(m.bias.grad),
            "running_mean": as_list(m.running_mean),
            "running_var": as_list(m.running_var),
            "num_batches_tracked": int(m.num_batches_tracked.item()),
        })
    m.eval()
    x = torch.randn(*shape)
    out["eval"] = {"x": as_list(x), "output": as_list(m(x))}
    return out


cases = [
    case("2d", 3, (4, 3, 5, 5), 0.1, 3, 0),
    case("2d", 2, (3, 2, 4, 6), None, 4, 1),
    case("1d", 3, (5, 3, 4), 0.3, 2, 2),
    case("1d", 4, (6, 4), None, 3, 3),
]
print(json.dumps({"generator": "torch " + torch.__version__, "cases": cases}))

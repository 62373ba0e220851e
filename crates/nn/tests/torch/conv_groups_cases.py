"""Reference cases for nabla's grouped Conv2d, computed by PyTorch in float64.

Each case builds torch.nn.Conv2d with `groups`, seeded weights and bias, runs it on a seeded
input, and records the output and the gradients of sum(output * cotangent) with respect to the
input, the weight and the bias.

Regenerate (any Python with torch):  python conv_groups_cases.py > conv_groups_cases.json
"""
import json
import torch

torch.set_default_dtype(torch.float64)


def case(name, cin, cout, kernel, stride, padding, dilation, groups, shape, seed):
    torch.manual_seed(seed)
    m = torch.nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding,
                        dilation=dilation, groups=groups)
    x = torch.randn(*shape, requires_grad=True)
    y = m(x)
    cot = torch.randn(*y.shape)
    (y * cot).sum().backward()
    flat = lambda t: t.detach().reshape(-1).tolist()
    return {
        "name": name, "in_channels": cin, "out_channels": cout, "kernel": kernel,
        "stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
        "weight_shape": list(m.weight.shape), "weight": flat(m.weight), "bias": flat(m.bias),
        "input_shape": list(shape), "input": flat(x),
        "output_shape": list(y.shape), "output": flat(y), "cotangent": flat(cot),
        "grad_input": flat(x.grad), "grad_weight": flat(m.weight.grad),
        "grad_bias": flat(m.bias.grad),
    }


cases = [
    case("two groups", 4, 6, 3, 1, 1, 1, 2, (2, 4, 6, 5), 0),
    case("depthwise, stride 2, dilation 2", 3, 6, 2, 2, 1, 2, 3, (2, 3, 7, 6), 1),
    case("four groups, stride 2", 8, 4, 3, 2, 0, 1, 4, (3, 8, 7, 7), 2),
]
print(json.dumps({"format": "conv-groups/1", "torch": torch.__version__, "cases": cases}))

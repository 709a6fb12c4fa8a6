"""Gradient fixtures for ActivationOp (every activation) and GegluOp, and for SoftmaxOp.

Inputs x and the output gradient dy are f32; expected dx comes from torch autograd in float64 (y.backward(dy), then
x.grad), rounded to f32. GELU's references differentiate the tail-exact forms of activations.py, checked here against
autograd of F.gelu itself (which differentiates 0.5 x (1 + erf(x/√2)) and loses the far negative tail). Inputs follow
activations.py: odd sizes for every SIMD tail, each function over its own domain, and special values (zeros, tiny,
huge, around the kinks).
"""
import torch
import torch.nn.functional as F

from activations import SIZES, SPECIAL, UNARY, gelu, gelu_tanh
from common import save_fixture, seeded

SLOPE = 0.2

FUNCTIONS = {
    "gelu": (gelu, F.gelu),
    "gelu_tanh": (gelu_tanh, lambda x: F.gelu(x, approximate="tanh")),
    "silu": (F.silu, None),
    "leaky_relu": (lambda x: F.leaky_relu(x, SLOPE), None),
    "tanh": (torch.tanh, None),
}


def gradient(fn, x, dy):
    leaf = x.double().requires_grad_()
    fn(leaf).backward(dy.double())
    return leaf.grad


def activations():
    gen = seeded(311)
    tensors, meta = {}, {}
    domains = {name: (lambda gen, n: torch.rand(n, generator=gen) * 24 - 12, SPECIAL) for name in FUNCTIONS}
    domains.update({name: (sample, special) for name, (_, sample, special) in UNARY.items()})
    functions = {name: fn for name, (fn, _) in FUNCTIONS.items()}
    functions.update({name: fn for name, (fn, _, _) in UNARY.items()})
    for name, fn in functions.items():
        sample, special = domains[name]
        inputs = {f"n{n}": sample(gen, n) for n in SIZES if n < 1000}
        inputs["n257"] = sample(gen, 257)
        inputs["special"] = torch.tensor(special)
        inputs["shaped"] = sample(gen, 30).reshape(2, 3, 5)
        for case, x in inputs.items():
            dy = torch.randn(x.shape, generator=gen)
            dx = gradient(fn, x, dy)
            if case == "special":
                # Infinite gradients (sqrt at 0, log or exp beyond f32's range) are tested separately.
                finite = dx.float().isfinite()
                x, dy, dx = x[finite], dy[finite], dx[finite]
            torch_form = FUNCTIONS.get(name, (None, None))[1]
            if torch_form is not None:
                assert ((dx - gradient(torch_form, x, dy)).abs() <= 1e-12).all(), name
            tensors.update({f"{name}_{case}.x": x, f"{name}_{case}.dy": dy, f"{name}_{case}.dx": dx.float()})
            meta[f"{name}_{case}.slope"] = SLOPE if name == "leaky_relu" else 0.0
    save_fixture("activations_grad", tensors, meta)


def geglu():
    gen = seeded(312)
    tensors = {}
    for name, shape in {"h7": (5, 14), "h17": (2, 3, 34), "h257": (2, 514), "h1": (3, 2)}.items():
        x = torch.randn(*shape, generator=gen) * 3
        dy = torch.randn(*shape[:-1], shape[-1] // 2, generator=gen)

        def fn(x):
            hidden, gate = x.chunk(2, dim=-1)
            return hidden * gelu(gate)

        tensors.update({f"{name}.x": x, f"{name}.dy": dy, f"{name}.dx": gradient(fn, x, dy).float()})
    save_fixture("geglu_grad", tensors)


def softmax():
    """Rows as in softmax.py: odd lengths, huge magnitudes, -inf masks (whose gradient is 0), many rows."""
    gen = seeded(313)
    tensors = {}
    cases = {
        "len1": torch.randn(4, 1, generator=gen),
        "len7": torch.randn(3, 7, generator=gen) * 3,
        "len17": torch.randn(2, 3, 17, generator=gen) * 3,
        "len33": torch.randn(5, 33, generator=gen) * 3,
        "len1023": torch.randn(2, 1023, generator=gen) * 5,
        "huge_magnitude": torch.randn(4, 19, generator=gen) * 1e4,
        "many_rows": torch.randn(300, 24, generator=gen) * 4,
    }
    masked = torch.randn(3, 40, generator=gen) * 2
    masked[0, 5:] = float("-inf")
    masked[1, ::3] = float("-inf")
    masked[2, :39] = float("-inf")
    cases["neg_inf_mask"] = masked
    for name, x in cases.items():
        dy = torch.randn(x.shape, generator=gen)
        dx = gradient(lambda t: F.softmax(t, dim=-1), x, dy)
        tensors.update({f"{name}.x": x, f"{name}.dy": dy, f"{name}.dx": dx.float()})
    save_fixture("softmax_grad", tensors)


if __name__ == "__main__":
    activations()
    geglu()
    softmax()

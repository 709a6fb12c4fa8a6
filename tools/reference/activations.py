"""Fixtures for ActivationOp (GELU erf/tanh, SiLU, leaky ReLU, tanh; exp, log, abs, sqrt, square, sigmoid) and GegluOp.

Expected outputs: torch in float64, rounded to f32, so the tests measure the engine's own error. F.gelu computes
0.5 x (1 + erf(x/√2)) (and 0.5 x (1 + tanh u) for "tanh"), which cancels for negative x: even in float64 gelu(-8) is
5% off. The references therefore use the same functions in tail-exact form, x Φ(x) with Φ from torch.special.erfc
and x sigmoid(2u), checked against F.gelu to 1e-15 max(1, |x|). Inputs span [-12, 12] plus very large, tiny and signed-zero values; sizes 1, 7, 17, 33, 1023 reach every SIMD tail.
"""
import math

import torch
import torch.nn.functional as F

from common import save_fixture, seeded

SIZES = (1, 7, 17, 33, 1023)
SPECIAL = [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.3, -0.3, 0.6249, 0.6251, -0.6251, 3.0, -3.0, 9.0, -9.0,
           12.0, -12.0, 30.0, -30.0, 87.0, -87.0, 100.0, -100.0, 1e4, -1e4]


def assert_same_function(exact, torch_form, x):
    """The two forms differ only by float64 rounding: under 1e-15 relative to max(1, |x|)."""
    assert ((exact - torch_form).abs() <= 1e-15 * x.abs().clamp(min=1)).all()


def gelu(x):
    exact = x * 0.5 * torch.special.erfc(-x / math.sqrt(2.0))
    assert_same_function(exact, F.gelu(x), x)
    return exact


def gelu_tanh(x):
    exact = x * torch.sigmoid(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
    assert_same_function(exact, F.gelu(x, approximate="tanh"), x)
    return exact


FUNCTIONS = {
    "gelu": lambda x, slope: gelu(x),
    "gelu_tanh": lambda x, slope: gelu_tanh(x),
    "silu": lambda x, slope: F.silu(x),
    "leaky_relu": lambda x, slope: F.leaky_relu(x, slope),
    "tanh": lambda x, slope: torch.tanh(x),
}


def main():
    gen = seeded(301)
    tensors, meta = {}, {}
    for fn_name, fn in FUNCTIONS.items():
        slope = 0.2 if fn_name == "leaky_relu" else 0.0
        inputs = {f"n{n}": (torch.rand(n, generator=gen) * 24 - 12) for n in SIZES}
        inputs["special"] = torch.tensor(SPECIAL)
        inputs["shaped"] = torch.randn(2, 3, 5, generator=gen) * 4
        for case, x in inputs.items():
            name = f"{fn_name}_{case}"
            tensors[f"{name}.x"] = x
            tensors[f"{name}.out"] = fn(x.double(), slope).float()
            meta[f"{name}.slope"] = slope
    # One tensor larger than a parallel block, so the work is split across threads.
    x = torch.randn(20000, generator=gen) * 5
    tensors["silu_parallel.x"] = x
    tensors["silu_parallel.out"] = F.silu(x.double()).float()
    meta["silu_parallel.slope"] = 0.0
    for name, shape in {"geglu_h7": (5, 14), "geglu_h17": (2, 3, 34), "geglu_h1023": (2, 2046), "geglu_h1": (3, 2)}.items():
        x = torch.randn(*shape, generator=gen) * 3
        hidden, gate = x.double().chunk(2, dim=-1)
        tensors[f"{name}.x"] = x
        tensors[f"{name}.out"] = (hidden * gelu(gate)).float()
    save_fixture("activations", tensors, meta)


# The unary functions the training losses use, each over its own domain: log and sqrt over positive numbers (tiny to
# huge), exp where it stays finite, the rest over [-12, 12]. Special values avoid infinite results, which the tests
# check separately.
UNARY = {
    "exp": (torch.exp, lambda gen, n: torch.rand(n, generator=gen) * 24 - 12,
            [0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.5, -0.5, 30.0, -30.0, 80.0, -80.0, 88.0, -87.0]),
    "log": (torch.log, lambda gen, n: torch.exp(torch.rand(n, generator=gen) * 60 - 30),
            [1.0, 1.0000001, 0.99999994, 0.5, 2.0, 1e-30, 1e-38, 1e-44, 3.0e38, 0.7071067, 0.7071068, 1e4, 1e-6]),
    "abs": (torch.abs, lambda gen, n: torch.rand(n, generator=gen) * 24 - 12, [0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, 1e30]),
    "sqrt": (torch.sqrt, lambda gen, n: torch.exp(torch.rand(n, generator=gen) * 60 - 30),
             [0.0, 1.0, 2.0, 0.25, 1e-30, 1e-44, 3.0e38, 1e4, 1e-6]),
    "square": (torch.square, lambda gen, n: torch.rand(n, generator=gen) * 24 - 12,
               [0.0, -0.0, 1e-30, -1e-30, 3.0, -3.0, 1e18, -1e18]),
    "sigmoid": (torch.sigmoid, lambda gen, n: torch.rand(n, generator=gen) * 24 - 12,
                [0.0, -0.0, 1e-6, -1e-6, 3.0, -3.0, 17.0, -17.0, 30.0, -30.0, 87.0, -87.0, 100.0, -100.0]),
}


def unary():
    gen = seeded(302)
    tensors = {}
    for fn_name, (fn, sample, special) in UNARY.items():
        inputs = {f"n{n}": sample(gen, n) for n in SIZES}
        inputs["special"] = torch.tensor(special)
        inputs["shaped"] = sample(gen, 30).reshape(2, 3, 5)
        for case, x in inputs.items():
            tensors[f"{fn_name}_{case}.x"] = x
            tensors[f"{fn_name}_{case}.out"] = fn(x.double()).float()
    save_fixture("unary_activations", tensors)


if __name__ == "__main__":
    main()
    unary()

"""Gradient fixture of a composite transformer feed-forward block, for autograd across op boundaries:

    y = x + linear(geglu(linear(layer_norm(x), w1, b1)), w2, b2)

(diffusers' BasicTransformerBlock feed-forward with its residual). Inputs and dy are f32; the expected output and the
gradients of x and of every parameter come from torch autograd in float64 (y.backward(dy)), rounded to f32.
"""
import torch
import torch.nn.functional as F

from activations import gelu
from common import save_fixture, seeded


def main():
    gen = seeded(401)
    batch, tokens, dim, hidden = 2, 5, 8, 12
    inputs = {
        "x": torch.randn(batch, tokens, dim, generator=gen),
        "ln_weight": torch.randn(dim, generator=gen) * 0.3 + 1,
        "ln_bias": torch.randn(dim, generator=gen) * 0.3,
        "w1": torch.randn(2 * hidden, dim, generator=gen) / dim ** 0.5,
        "b1": torch.randn(2 * hidden, generator=gen) * 0.1,
        "w2": torch.randn(dim, hidden, generator=gen) / hidden ** 0.5,
        "b2": torch.randn(dim, generator=gen) * 0.1,
    }
    dy = torch.randn(batch, tokens, dim, generator=gen)
    leaves = {k: v.double().requires_grad_() for k, v in inputs.items()}
    p = leaves
    normed = F.layer_norm(p["x"], (dim,), p["ln_weight"], p["ln_bias"], 1e-5)
    projected = F.linear(normed, p["w1"], p["b1"])
    value, gate = projected.chunk(2, dim=-1)
    y = p["x"] + F.linear(value * gelu(gate), p["w2"], p["b2"])
    y.backward(dy.double())
    tensors = {f"block.{k}": v for k, v in inputs.items()}
    tensors["block.dy"] = dy
    tensors["block.y"] = y.detach().float()
    tensors.update({f"block.d{k}": v.grad.float() for k, v in leaves.items()})
    save_fixture("transformer_block_grad", tensors, {"block.eps": repr(1e-5)})


if __name__ == "__main__":
    main()

"""Gradient fixtures for GroupNormOp (with and without the fused SiLU), LayerNormOp and RmsNormOp.

Inputs x, weight, bias and the output gradient dy are f32. Expected gradients come from torch autograd in float64
(out.backward(dy), then .grad of x, weight and bias), rounded to f32, so the tests measure the engine's own f32 error.
Cases cover every optional parameter, odd sizes (SIMD tails), one group, 32 groups over 64 channels, inputs without
spatial dims, a large mean, and row counts that are not a multiple of the 32-row chunks of the parameter gradients.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def randn(gen, *shape, scale=1.0, offset=0.0):
    return torch.randn(*shape, generator=gen) * scale + offset


def autograd(fn, dy, **inputs):
    """float64 gradients of fn(**inputs) seeded with dy, for every input that is not None."""
    leaves = {k: v.double().requires_grad_() for k, v in inputs.items() if v is not None}
    out = fn(**{k: leaves.get(k) for k in inputs})
    out.backward(dy.double())
    return {k: v.grad.float() for k, v in leaves.items()}


def store(tensors, name, inputs, dy, grads):
    for key, value in inputs.items():
        if value is not None:
            tensors[f"{name}.{key}"] = value
    tensors[f"{name}.dy"] = dy
    for key, value in grads.items():
        tensors[f"{name}.d{key}"] = value


def group_norm():
    gen = seeded(111)
    tensors, meta = {}, {}
    cases = [
        # name, shape, groups, eps, weight, bias, silu, offset
        ("nchw", (2, 6, 5, 7), 3, 1e-5, True, True, False, 0.0),
        ("nchw_silu", (1, 8, 3, 11), 4, 1e-5, True, True, True, 0.0),
        ("groups32_c64_silu", (2, 64, 3, 5), 32, 1e-6, True, True, True, 0.0),
        ("groups32_c64", (1, 64, 2, 3), 32, 1e-5, True, True, False, 0.0),
        ("one_group_odd", (2, 3, 33), 1, 1e-5, True, True, False, 0.0),
        ("one_group_silu", (1, 5, 7, 3), 1, 1e-5, True, True, True, 0.0),
        ("no_affine", (2, 4, 17), 2, 1e-5, False, False, False, 0.0),
        ("no_affine_silu", (2, 4, 9), 2, 1e-5, False, False, True, 0.0),
        ("weight_only", (2, 6, 7), 3, 1e-5, True, False, False, 0.0),
        ("bias_only_silu", (2, 6, 7), 6, 1e-5, False, True, True, 0.0),
        ("no_spatial_dims", (3, 6), 3, 1e-5, True, True, False, 0.0),
        ("five_dims_silu", (1, 4, 3, 5, 2), 2, 1e-5, True, True, True, 0.0),
        ("large_mean", (2, 4, 9, 9), 2, 1e-5, True, True, False, 1000.0),
        ("single_element_groups", (2, 4, 1), 4, 1e-3, True, True, False, 0.0),
    ]
    for name, shape, groups, eps, has_w, has_b, silu, offset in cases:
        x = randn(gen, *shape, scale=2.0, offset=offset)
        w = randn(gen, shape[1], scale=0.5, offset=1.0) if has_w else None
        b = randn(gen, shape[1], scale=0.5) if has_b else None
        dy = randn(gen, *shape)

        def fn(x, weight, bias):
            if weight is None and bias is not None:
                # torch 1.13's group_norm backward fails with a bias but no weight; a constant weight of ones is the same.
                weight = torch.ones(x.shape[1], dtype=x.dtype)
            out = F.group_norm(x, groups, weight, bias, eps)
            return F.silu(out) if silu else out

        inputs = {"x": x, "weight": w, "bias": b}
        store(tensors, name, inputs, dy, autograd(fn, dy, **inputs))
        meta.update({f"{name}.groups": groups, f"{name}.eps": repr(eps), f"{name}.silu": silu})
    save_fixture("group_norm_grad", tensors, meta)


def layer_norm():
    gen = seeded(112)
    tensors, meta = {}, {}
    cases = [
        # name, shape, eps, weight, bias, offset
        ("affine_7", (3, 7), 1e-5, True, True, 0.0),
        ("affine_33", (2, 5, 33), 1e-6, True, True, 0.0),
        ("plain_1023", (2, 1023), 1e-5, False, False, 0.0),
        ("width_one", (3, 1), 1e-5, True, True, 0.0),
        ("weight_only_17", (2, 17), 1e-5, True, False, 0.0),
        ("bias_only_16", (5, 16), 1e-5, False, True, 0.0),
        ("large_mean_64", (4, 64), 1e-5, True, True, 500.0),
        ("many_rows", (100, 40), 1e-5, True, True, 0.0),
    ]
    for name, shape, eps, has_w, has_b, offset in cases:
        d = shape[-1]
        x = randn(gen, *shape, scale=3.0, offset=offset)
        w = randn(gen, d, scale=0.5, offset=1.0) if has_w else None
        b = randn(gen, d, scale=0.5) if has_b else None
        dy = randn(gen, *shape)
        inputs = {"x": x, "weight": w, "bias": b}
        grads = autograd(lambda x, weight, bias: F.layer_norm(x, (d,), weight, bias, eps), dy, **inputs)
        store(tensors, name, inputs, dy, grads)
        meta[f"{name}.eps"] = repr(eps)
    save_fixture("layer_norm_grad", tensors, meta)


def rms_norm():
    """T5LayerNorm: x * rsqrt(mean(x^2) + eps) * weight (torch 1.13 has no F.rms_norm; this is T5's own formula)."""
    gen = seeded(113)
    tensors, meta = {}, {}
    cases = [("d7", (3, 7), 1e-6), ("d33", (2, 4, 33), 1e-6), ("d1023", (2, 1023), 1e-5),
             ("d1", (1, 1), 1e-6), ("d17_small_values", (3, 17), 1e-6), ("many_rows", (100, 40), 1e-6)]
    for name, shape, eps in cases:
        x = randn(gen, *shape, scale=1e-3 if "small" in name else 2.0)
        w = randn(gen, shape[-1], scale=0.3, offset=1.0)
        dy = randn(gen, *shape)
        inputs = {"x": x, "weight": w}
        grads = autograd(lambda x, weight: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight, dy, **inputs)
        store(tensors, name, inputs, dy, grads)
        meta[f"{name}.eps"] = repr(eps)
    save_fixture("rms_norm_grad", tensors, meta)


if __name__ == "__main__":
    group_norm()
    layer_norm()
    rms_norm()

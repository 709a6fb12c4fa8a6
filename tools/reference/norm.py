"""Fixtures for GroupNormOp, LayerNormOp and RmsNormOp.

Inputs are f32; expected outputs come from torch.nn.functional evaluated in float64 and rounded to f32, so the
tests measure the engine's own f32 error. Odd sizes (1, 7, 17, 33, 1023) reach every SIMD tail.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def randn(gen, *shape, scale=1.0, offset=0.0):
    return torch.randn(*shape, generator=gen) * scale + offset


def group_norm():
    gen = seeded(101)
    tensors, meta = {}, {}
    cases = [
        # name, shape, groups, eps, weight, bias, silu, offset
        ("nchw", (2, 6, 5, 7), 3, 1e-5, True, True, False, 0.0),
        ("nchw_silu", (1, 8, 3, 11), 4, 1e-5, True, True, True, 0.0),
        ("unet_like_silu", (1, 64, 17, 12), 32, 1e-6, True, True, True, 0.0),
        ("one_spatial_dim", (2, 4, 17), 2, 1e-5, False, False, False, 0.0),
        ("no_spatial_dims", (3, 6), 3, 1e-5, True, True, False, 0.0),
        ("five_dims", (1, 4, 3, 5, 2), 2, 1e-5, True, True, True, 0.0),
        ("one_group_tail", (2, 3, 1023), 1, 1e-5, True, True, False, 0.0),
        ("weight_only", (2, 6, 33), 3, 1e-5, True, False, False, 0.0),
        ("bias_only", (2, 6, 7), 6, 1e-5, False, True, True, 0.0),
        ("large_mean", (2, 4, 9, 9), 2, 1e-5, True, True, False, 1000.0),
        ("single_element_groups", (2, 4, 1), 4, 1e-3, True, True, False, 0.0),
    ]
    for name, shape, groups, eps, has_w, has_b, silu, offset in cases:
        x = randn(gen, *shape, scale=2.0, offset=offset)
        w = randn(gen, shape[1], scale=0.5, offset=1.0) if has_w else None
        b = randn(gen, shape[1], scale=0.5) if has_b else None
        out = F.group_norm(x.double(), groups, w.double() if has_w else None, b.double() if has_b else None, eps)
        if silu:
            out = F.silu(out)
        tensors[f"{name}.x"] = x
        if has_w:
            tensors[f"{name}.weight"] = w
        if has_b:
            tensors[f"{name}.bias"] = b
        tensors[f"{name}.out"] = out.float()
        meta.update({f"{name}.groups": groups, f"{name}.eps": repr(eps), f"{name}.silu": silu})
    save_fixture("group_norm", tensors, meta)


def layer_norm():
    gen = seeded(102)
    tensors, meta = {}, {}
    cases = [
        # name, shape, eps, weight, bias, offset
        ("affine_7", (3, 7), 1e-5, True, True, 0.0),
        ("affine_33", (2, 5, 33), 1e-6, True, True, 0.0),
        ("plain_1023", (4, 1023), 1e-5, False, False, 0.0),
        ("width_one", (3, 1), 1e-5, True, True, 0.0),
        ("weight_only_17", (2, 17), 1e-5, True, False, 0.0),
        ("bias_only_16", (5, 16), 1e-5, False, True, 0.0),
        ("large_mean_64", (4, 64), 1e-5, True, True, 500.0),
        ("many_rows", (300, 40), 1e-5, True, True, 0.0),
    ]
    for name, shape, eps, has_w, has_b, offset in cases:
        d = shape[-1]
        x = randn(gen, *shape, scale=3.0, offset=offset)
        w = randn(gen, d, scale=0.5, offset=1.0) if has_w else None
        b = randn(gen, d, scale=0.5) if has_b else None
        out = F.layer_norm(x.double(), (d,), w.double() if has_w else None, b.double() if has_b else None, eps)
        tensors[f"{name}.x"] = x
        if has_w:
            tensors[f"{name}.weight"] = w
        if has_b:
            tensors[f"{name}.bias"] = b
        tensors[f"{name}.out"] = out.float()
        meta[f"{name}.eps"] = repr(eps)
    save_fixture("layer_norm", tensors, meta)


def rms_norm():
    """T5LayerNorm: x * rsqrt(mean(x^2) + eps) * weight (torch 1.13 has no F.rms_norm; this is T5's own formula)."""
    gen = seeded(103)
    tensors, meta = {}, {}
    cases = [("d7", (3, 7), 1e-6), ("d33", (2, 4, 33), 1e-6), ("d1023", (2, 1023), 1e-5),
             ("d1", (1, 1), 1e-6), ("d17_small_values", (3, 17), 1e-6), ("many_rows", (300, 40), 1e-6)]
    for name, shape, eps in cases:
        scale = 1e-3 if "small" in name else 2.0
        x = randn(gen, *shape, scale=scale)
        w = randn(gen, shape[-1], scale=0.3, offset=1.0)
        xd = x.double()
        out = xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + eps) * w.double()
        tensors.update({f"{name}.x": x, f"{name}.weight": w, f"{name}.out": out.float()})
        meta[f"{name}.eps"] = repr(eps)
    save_fixture("rms_norm", tensors, meta)


if __name__ == "__main__":
    group_norm()
    layer_norm()
    rms_norm()

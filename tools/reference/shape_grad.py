"""Gradient fixtures for the data-movement family: adaptive average pooling (1-D on any axis, 2-D; bins that do not
divide evenly, overlap, or repeat inputs), nearest 2x upsampling, zero padding, concat, and the embedding table (ids
repeated, rows unused).

Each case stores the inputs, an output gradient dy and torch autograd's input gradients (grad_common.autograd, float64).
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded
from grad_common import autograd


def pool1d(x, axis, size):
    """F.adaptive_avg_pool1d applied to any axis (torch pools the last one)."""
    moved = x.movedim(axis, -1)
    flat = moved.reshape(-1, 1, moved.shape[-1])
    return F.adaptive_avg_pool1d(flat, size).reshape(*moved.shape[:-1], size).movedim(-1, axis)


def single_input(gen, cases):
    """Fixture tensors and metadata of cases (name, x shape, function of x, metadata)."""
    tensors, meta = {}, {}
    for name, shape, fn, params in cases:
        x = torch.randn(shape, generator=gen)
        dy, (dx,) = autograd(fn, [x], gen)
        tensors.update({f"{name}.x": x, f"{name}.dy": dy, f"{name}.dx": dx})
        meta.update({f"{name}.{key}": value for key, value in params.items()})
    return tensors, meta


def adaptive_avg_pool(gen):
    cases = [(name, shape, lambda x, axis=axis, size=size: pool1d(x, axis, size), {"kind": "1d", "axis": axis, "size": size})
             for name, shape, axis, size in [
                 ("last_7to3", (2, 3, 7), -1, 3),  # bins of 3, 3 and 3 overlapping inputs 2 and 4
                 ("last_3to7", (2, 3, 3), -1, 7),  # more bins than inputs: every input in several bins
                 ("mid_10to4", (2, 10, 3), 1, 4),
                 ("axis0_5to2", (5, 2, 3), 0, 2),
                 ("to_one", (3, 11), -1, 1),
             ]]
    cases += [(name, shape, lambda x, h=out_h, w=out_w: F.adaptive_avg_pool2d(x, (h, w)), {"kind": "2d", "out_h": out_h, "out_w": out_w})
              for name, shape, out_h, out_w in [
                  ("nchw_7x5_to_3x2", (2, 3, 7, 5), 3, 2),
                  ("mixed_5x6_to_7x4", (1, 2, 5, 6), 7, 4),  # H grows, W shrinks
                  ("wide_3x9_to_2x4", (2, 3, 9), 2, 4),
              ]]
    return single_input(gen, cases)


def concat(gen):
    tensors, meta = {}, {}
    for name, axis, shapes in [
        ("axis1_with_empty", 1, [(2, 1, 5), (2, 4, 5), (2, 0, 5), (2, 2, 5)]),
        ("last", -1, [(2, 3, 1), (2, 3, 4)]),
        ("axis0", 0, [(1, 3), (2, 3)]),
    ]:
        parts = [torch.randn(s, generator=gen) for s in shapes]
        dy, grads = autograd(lambda *p, axis=axis: torch.cat(p, dim=axis), parts, gen)
        for i, (part, grad) in enumerate(zip(parts, grads)):
            tensors[f"{name}.part{i}"] = part
            tensors[f"{name}.dpart{i}"] = grad
        tensors[f"{name}.dy"] = dy
        meta[f"{name}.axis"] = axis
        meta[f"{name}.parts"] = len(parts)
    return tensors, meta


def embedding(gen):
    tensors, meta = {}, {}
    for name, vocab, dim, ids in [
        ("repeats_i64", 6, 4, torch.tensor([[3, 0, 3, 5], [3, 1, 0, 3]])),  # row 3 four times, rows 2 and 4 unused
        ("i32_1d", 10, 3, torch.tensor([9, 2, 2, 7, 0, 2, 9], dtype=torch.int32)),
        ("ids_3d", 5, 17, torch.randint(0, 5, (2, 3, 2), generator=gen)),
    ]:
        table = torch.randn(vocab, dim, generator=gen)
        dy, (_, dtable) = autograd(lambda i, t: F.embedding(i.long(), t), [ids, table], gen, differentiable=[False, True])
        tensors.update({f"{name}.ids": ids, f"{name}.table": table, f"{name}.dy": dy, f"{name}.dtable": dtable})
        meta[f"{name}.ids_dtype"] = "i32" if ids.dtype == torch.int32 else "i64"
    return tensors, meta


if __name__ == "__main__":
    gen = seeded(41)
    save_fixture("adaptive_avg_pool_grad", *adaptive_avg_pool(gen))
    save_fixture("upsample_grad", *single_input(gen, [
        ("nchw", (2, 3, 3, 4), lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), {}),
        ("w1", (1, 2, 5, 1), lambda x: F.interpolate(x, scale_factor=2, mode="nearest"), {}),
    ]))
    pads = {"all_sides": ((1, 2, 4, 5), (2, 3, 1, 4)), "vae_down": ((2, 3, 5, 4), (0, 1, 0, 1)),
            "rows_only": ((3, 3, 2), (0, 0, 2, 0))}
    save_fixture("pad_grad", *single_input(gen, [
        (name, shape, lambda x, pad=pad: F.pad(x, pad), {"pad": ",".join(map(str, pad))}) for name, (shape, pad) in pads.items()
    ]))
    save_fixture("concat_grad", *concat(gen))
    save_fixture("embedding_grad", *embedding(gen))

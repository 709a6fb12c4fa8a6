"""Fixtures for the data-movement family: nearest 2x upsampling, adaptive average pooling, concat, strided views
(permute / slice / reshape through the copy kernel), embedding lookup and the diffusers sinusoidal timestep embedding.

Every expected output comes from torch's own ops: torch.nn.functional for upsampling, pooling and embedding,
torch.cat / permute / narrow / reshape for the views, and the diffusers formula written in torch ops for timesteps.
"""
import math

import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def upsample():
    g = seeded(1)
    tensors, meta = {}, {}
    # W sizes cover the 16-, 8- and 4-wide vector bodies and their scalar tails.
    for case, shape in [("basic", (2, 3, 5, 7)), ("wide", (1, 4, 3, 29)), ("w1", (1, 2, 4, 1)), ("w64", (2, 2, 3, 64))]:
        x = torch.randn(shape, generator=g)
        tensors[f"{case}.x"] = x
        tensors[f"{case}.out"] = F.interpolate(x, scale_factor=2, mode="nearest")
    # 16-bit inputs: nearest only copies values, so upsampling the f32 widening and rounding back is exact.
    for case, dtype in [("f16", torch.float16), ("bf16", torch.bfloat16)]:
        x = torch.randn((1, 3, 4, 19), generator=g).to(dtype)
        tensors[f"{case}.x"] = x
        tensors[f"{case}.out"] = F.interpolate(x.float(), scale_factor=2, mode="nearest").to(dtype)
    save_fixture("upsample", tensors, meta)


def adaptive_avg_pool():
    g = seeded(2)
    tensors, meta = {}, {}

    def pool1d(case, shape, axis, size):
        x = torch.randn(shape, generator=g)
        moved = x.movedim(axis, -1)
        flat = moved.reshape(-1, 1, moved.shape[-1])
        out = F.adaptive_avg_pool1d(flat, size).reshape(*moved.shape[:-1], size).movedim(-1, axis)
        tensors[f"{case}.x"] = x
        tensors[f"{case}.out"] = out
        meta[f"{case}.kind"] = "1d"
        meta[f"{case}.axis"] = axis
        meta[f"{case}.size"] = size

    def pool2d(case, shape, out_h, out_w):
        x = torch.randn(shape, generator=g)
        tensors[f"{case}.x"] = x
        tensors[f"{case}.out"] = F.adaptive_avg_pool2d(x, (out_h, out_w))
        meta[f"{case}.kind"] = "2d"
        meta[f"{case}.out_h"] = out_h
        meta[f"{case}.out_w"] = out_w

    pool1d("last_7to3", (2, 3, 7), -1, 3)
    pool1d("last_3to7", (2, 3, 3), -1, 7)
    pool1d("last_320to1024", (1, 3, 320), 2, 1024)
    pool1d("last_1000to7", (2, 1000), 1, 7)
    pool1d("mid_256to77", (1, 256, 45), 1, 77)
    pool1d("mid_4096to77", (1, 4096, 3), -2, 77)
    pool1d("axis0_5to9", (5, 3, 4), 0, 9)
    pool1d("same_size_1d", (2, 6, 3), 1, 6)
    pool1d("to_one", (3, 11), -1, 1)
    # 2-D: the two pooled dims of [B, 4096, 320] -> [B, 77, 1024] (too big to store whole) as separate cases, and
    # shapes where pooling W first or H first leaves the smaller intermediate.
    pool2d("h4096to77", (1, 4096, 2), 77, 5)
    pool2d("w320to1024", (1, 5, 320), 3, 1024)
    pool2d("w4096to77", (1, 2, 4096), 7, 77)
    pool2d("nchw_7x5_to_3x7", (2, 3, 7, 5), 3, 7)
    pool2d("same_size_2d", (1, 2, 4, 4), 4, 4)
    save_fixture("adaptive_avg_pool", tensors, meta)


def concat():
    g = seeded(3)
    tensors, meta = {}, {}

    def case(name, axis, shapes, dtype=torch.float32):
        parts = [torch.randn(s, generator=g) * 100 for s in shapes]
        parts = [p.to(dtype) for p in parts]
        for i, p in enumerate(parts):
            tensors[f"{name}.part{i}"] = p
        tensors[f"{name}.out"] = torch.cat(parts, dim=axis)
        meta[f"{name}.axis"] = axis
        meta[f"{name}.parts"] = len(parts)

    case("axis0", 0, [(2, 3, 4), (1, 3, 4), (3, 3, 4)])
    case("axis1_with_empty", 1, [(2, 1, 5), (2, 4, 5), (2, 0, 5), (2, 2, 5)])
    case("last", 2, [(2, 3, 1), (2, 3, 7), (2, 3, 2)])
    case("negative_axis", -2, [(3, 2, 6), (3, 5, 6)])
    case("single", 1, [(2, 3)])
    case("many", 3, [(1, 2, 2, i + 1) for i in range(9)])
    case("i32", 1, [(2, 3), (2, 5)], torch.int32)
    case("i64", 0, [(2, 3), (4, 3)], torch.int64)
    case("f16", 1, [(2, 3, 5), (2, 2, 5)], torch.float16)
    case("bf16", 2, [(2, 3, 5), (2, 3, 1)], torch.bfloat16)
    save_fixture("concat", tensors, meta)


def permute_slice():
    """Chains of views; "<case>.ops" spells them as 'permute:0,2,3,1;slice:axis,start,length;reshape:2,-1'."""
    g = seeded(4)
    tensors, meta = {}, {}

    def apply(x, ops):
        for op in ops.split(";"):
            kind, args = op.split(":")
            values = [int(v) for v in args.split(",")]
            if kind == "permute":
                x = x.permute(*values)
            elif kind == "slice":
                x = x.narrow(values[0], values[1], values[2])
            elif kind == "reshape":
                x = x.reshape(*values)
            else:
                raise ValueError(kind)
        return x.contiguous()

    def case(name, shape, ops, dtype=torch.float32):
        x = torch.randn(shape, generator=g).to(dtype)
        tensors[f"{name}.x"] = x
        tensors[f"{name}.out"] = apply(x, ops)
        meta[f"{name}.ops"] = ops

    small = (2, 3, 4, 5)
    case("nchw_to_nhwc", small, "permute:0,2,3,1")
    case("reverse", small, "permute:3,2,1,0")
    case("heads", small, "permute:0,2,1,3")
    case("outer_swap", small, "permute:1,0,2,3")
    case("scramble", small, "permute:3,1,0,2")
    for axis, (start, length) in enumerate([(1, 1), (1, 2), (0, 3), (2, 3)]):
        case(f"slice_axis{axis}", small, f"slice:{axis},{start},{length}")
    case("slice_then_permute", small, "slice:1,1,2;permute:3,2,1,0")
    case("permute_then_reshape", small, "permute:0,2,1,3;reshape:2,4,15")
    case("slice_then_reshape", small, "slice:3,1,3;reshape:6,-1")
    case("last_element_column", small, "slice:3,4,1;reshape:2,3,4;permute:2,0,1")
    # Big enough for several transpose tiles with ragged edges on both sides.
    case("big_nchw_to_nhwc", (1, 37, 9, 11), "permute:0,2,3,1")
    case("big_transpose", (2, 70, 67), "permute:0,2,1")
    case("big_heads", (2, 33, 4, 24), "permute:0,2,1,3")
    case("f16_transpose", (3, 40, 21), "permute:2,0,1", torch.float16)
    case("i32_transpose", (19, 23), "permute:1,0", torch.int32)
    case("i64_transpose", (5, 17, 3), "permute:1,2,0", torch.int64)
    save_fixture("permute_slice", tensors, meta)


def embedding():
    g = seeded(5)
    tensors, meta = {}, {}

    def case(name, vocab, dim, ids_shape, id_dtype, table_dtype=torch.float32):
        table = torch.randn((vocab, dim), generator=g).to(table_dtype)
        ids = torch.randint(0, vocab, ids_shape, generator=g)
        flat = ids.view(-1)
        if flat.numel() >= 2:  # the first and last rows are the classic off-by-one traps
            flat[0], flat[-1] = 0, vocab - 1
        tensors[f"{name}.ids"] = ids.to(id_dtype)
        tensors[f"{name}.table"] = table
        tensors[f"{name}.out"] = F.embedding(ids, table.float()).to(table_dtype)

    case("i64_2d", 11, 7, (2, 5), torch.int64)
    case("i32_1d", 50, 33, (3,), torch.int32)
    case("i32_3d", 9, 64, (2, 3, 2), torch.int32)
    case("f16_table", 9, 6, (4,), torch.int64, torch.float16)
    save_fixture("embedding", tensors, meta)


def timestep_reference(timesteps, dim, flip_sin_to_cos, shift, scale=1.0, max_period=10000):
    """diffusers' get_timestep_embedding, written out in torch ops from its published formula."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(0, half, dtype=torch.float32)
    exponent = exponent / (half - shift)
    args = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    args = scale * args
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


def timestep_embedding():
    tensors, meta = {}, {}

    def case(name, timesteps, dim, flip, shift, scale=1.0, max_period=10000):
        tensors[f"{name}.t"] = timesteps
        tensors[f"{name}.out"] = timestep_reference(timesteps, dim, flip, shift, scale, max_period)
        meta.update({f"{name}.dim": dim, f"{name}.flip": flip, f"{name}.shift": shift,
                     f"{name}.scale": scale, f"{name}.max_period": max_period})

    steps = torch.tensor([0.0, 1.0, 999.0, 500.5, 37.0, 0.25], dtype=torch.float32)
    case("dim320_flip_shift0", steps, 320, True, 0)
    case("dim320_noflip_shift1", steps, 320, False, 1)
    case("odd_dim_flip_shift1", steps, 7, True, 1)
    case("odd_dim_noflip_shift0", steps[:3], 33, False, 0)
    case("dim1_padding_only", steps[:2], 1, True, 0)
    case("scale_and_period", steps, 16, True, 0.5, scale=2.0, max_period=1000)
    save_fixture("timestep_embedding", tensors, meta)


if __name__ == "__main__":
    upsample()
    adaptive_avg_pool()
    concat()
    permute_slice()
    embedding()
    timestep_embedding()

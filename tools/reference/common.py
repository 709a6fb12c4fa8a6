"""Shared helpers for the PyTorch reference scripts that write test fixtures.

Fixtures are safetensors files (written here with struct + json, no extra package) holding named inputs and
expected outputs; string metadata carries op parameters. Run scripts with Debian's python3 (python3-torch 1.13).
"""
import json
import os
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float16"): "F16",
    np.dtype("int32"): "I32",
    np.dtype("int64"): "I64",
}


def seeded(seed):
    """A torch generator with a fixed seed, so fixtures regenerate bit-identically."""
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def _as_numpy(value):
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            return value.view(torch.int16).numpy().view(np.uint16), "BF16"
        value = value.detach().contiguous().numpy()
    value = np.ascontiguousarray(value)
    if value.dtype == np.float64:
        value = value.astype(np.float32)
    if value.dtype == np.bool_:
        value = value.astype(np.int32)
    return value, _DTYPES[value.dtype]


def save_fixture(name, tensors, meta=None):
    """Writes tests/fixtures/<name>.safetensors. `tensors`: name -> torch/numpy array; `meta`: name -> str()-able."""
    header = {}
    if meta:
        header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    blobs = []
    offset = 0
    for key, value in tensors.items():
        array, dtype = _as_numpy(value)
        data = array.tobytes()
        header[key] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    os.makedirs(FIXTURES, exist_ok=True)
    path = os.path.join(FIXTURES, name + ".safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print(f"wrote {os.path.relpath(path, ROOT)} ({offset} bytes of tensors)")

"""Philox4x32-10 reference: Random123 known-answer vectors and the engine's (seed, index) -> value mapping.

A plain-Python Philox4x32-10 (checked against Random123's kat_vectors before anything is written) produces raw
words for chosen counters and keys, and the stream mapping documented in src/MeLFusion.Native/Runtime/Philox.cs:
key = seed split in 32-bit halves, element n in block n // 4 (counter = block split in halves, 0, 0), lane n % 4;
uniform = (2 * (raw >> 9) + 1) * 2**-24; normal = Box-Muller on lane pairs in float64, rounded to float32.
numpy.random.Philox is the 4x64 variant, so it cannot serve as a reference for 4x32.
"""
import math

import numpy as np

from common import save_fixture

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF

# Random123 1.14 tests/kat_vectors, the three "philox4x32 10" lines: counter (4 words), key (2 words), expected.
KAT = [
    ([0x00000000] * 4, [0x00000000] * 2, [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    ([0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344], [0xA4093822, 0x299F31D0],
     [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]),
]


def philox4x32_10(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(10):
        if r:
            k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
        p0, p1 = M0 * c0, M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & MASK, p1 & MASK, ((p0 >> 32) ^ c3 ^ k1) & MASK, p0 & MASK
    return [c0, c1, c2, c3]


def stream_block(seed, block):
    return philox4x32_10([block & MASK, block >> 32, 0, 0], [seed & MASK, seed >> 32])


def uniform(raw):
    return (2 * (raw >> 9) + 1) * 2.0 ** -24


def stream(seed, offset, count):
    raw, uni, normal = [], [], []
    for n in range(offset, offset + count):
        words = stream_block(seed, n // 4)
        lane = n % 4
        first = lane & ~1
        radius = math.sqrt(-2.0 * math.log(uniform(words[first])))
        angle = 2.0 * math.pi * uniform(words[first + 1])
        raw.append(words[lane])
        uni.append(uniform(words[lane]))
        normal.append(radius * (math.cos(angle) if lane % 2 == 0 else math.sin(angle)))
    return (np.array(raw, dtype=np.uint32).view(np.int32), np.array(uni, dtype=np.float32),
            np.array(normal, dtype=np.float64).astype(np.float32))


def words(values):
    return np.array(values, dtype=np.uint32).view(np.int32)


def main():
    for counter, key, expected in KAT:
        got = philox4x32_10(counter, key)
        assert got == expected, f"Philox reference fails Random123 KAT {counter} {key}: {got}"

    tensors, meta = {}, {}
    tensors["kat.counter"] = words([c for c, _, _ in KAT])
    tensors["kat.key"] = words([k for _, k, _ in KAT])
    tensors["kat.expected"] = words([e for _, _, e in KAT])

    rng = np.random.default_rng(20240601)
    counters = rng.integers(0, 2 ** 32, size=(6, 4), dtype=np.uint64).tolist()
    keys = rng.integers(0, 2 ** 32, size=(6, 2), dtype=np.uint64).tolist()
    tensors["random.counter"] = words(counters)
    tensors["random.key"] = words(keys)
    tensors["random.expected"] = words([philox4x32_10(c, k) for c, k in zip(counters, keys)])

    # Streams: odd offsets and lengths (partial blocks at both ends); one that crosses block 2**32 (counter word 1).
    for name, seed, offset, count in [("small", 42, 3, 1001), ("wide_seed", 0x0123456789ABCDEF, 5, 37),
                                      ("high_block", 7, 4 * 2 ** 32 - 6, 13)]:
        raw, uni, normal = stream(seed, offset, count)
        tensors[f"{name}.raw"] = raw
        tensors[f"{name}.uniform"] = uni
        tensors[f"{name}.normal"] = normal
        meta[f"{name}.seed"] = seed
        meta[f"{name}.offset"] = offset
    save_fixture("philox", tensors, meta)


if __name__ == "__main__":
    main()

"""Zero padding fixtures from torch.nn.functional.pad."""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded

seeded(8)
cases = {"vae_down": ((2, 3, 7, 5), (0, 1, 0, 1)), "all_sides": ((1, 2, 4, 9), (2, 3, 1, 4)), "none": ((3, 5, 2), (0, 0, 0, 0)),
         "rows_only": ((1, 1, 3, 3), (0, 0, 2, 0))}
tensors, meta = {}, {}
for name, (shape, pad) in cases.items():
    x = torch.randn(*shape)
    tensors[f"{name}.x"] = x
    tensors[f"{name}.y"] = F.pad(x, pad)
    meta[f"{name}.pad"] = ",".join(map(str, pad))
save_fixture("pad", tensors, meta)

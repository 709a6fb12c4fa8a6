"""PyTorch zip checkpoints (torch.save) for the restricted unpickler, with the expected tensors, plus a hostile one."""
import collections
import os

import torch

from common import FIXTURES, save_fixture, seeded

seeded(3)
out_dir = os.path.join(FIXTURES, "checkpoints")
os.makedirs(out_dir, exist_ok=True)

base = torch.randn(6, 5)
state = collections.OrderedDict()
state["conv.weight"] = torch.randn(3, 4)
state["conv.bias"] = torch.randn(5).half()
state["norm.weight"] = torch.randn(2, 2).bfloat16()
state["norm.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
state["proj.weight_t"] = base.t()                  # strided view of a shared storage
state["proj.rows"] = base[2:4]                      # offset view of the same storage
state["alpha"] = torch.nn.Parameter(torch.zeros(1, 1) + 0.25)
state["empty"] = torch.zeros(0, 3)
checkpoint = {"model": state, "epoch": 3, "optimizer": {"lr": 0.1, "betas": (0.9, 0.999), "names": ["a", "b"]}}
torch.save(checkpoint, os.path.join(out_dir, "nested.pt"))

expected = {}
for name, tensor in state.items():
    if tensor.dtype != torch.int64:
        expected["model." + name] = tensor.detach().float().contiguous()
save_fixture("checkpoints", expected)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


torch.save({"weight": torch.ones(2), "payload": Evil()}, os.path.join(out_dir, "evil.pt"))

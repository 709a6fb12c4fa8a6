"""torch.clamp fixtures, NaN and infinities included."""
import torch

from common import save_fixture, seeded

seeded(12)
x = torch.randn(3, 37) * 40
x[0, 0], x[0, 1], x[0, 2] = float("nan"), float("inf"), -float("inf")
save_fixture("clamp", {"logvar.x": x, "logvar.y": x.clamp(-30.0, 20.0), "unit.x": x[1:], "unit.y": x[1:].clamp(-1.0, 1.0)},
             {"logvar.min": -30.0, "logvar.max": 20.0, "unit.min": -1.0, "unit.max": 1.0})

"""Gradient fixture of HiFi-GAN's building blocks (weight norm folded), from torch autograd in float64:

- resblock_*: residual block type 1 (hifigan.ResBlock1): per dilation d,
  x = conv1d(leaky_relu(conv1d_d(leaky_relu(x, 0.1)), 0.1)) + x.
- upsample_*: one upsampling stage, conv_transpose1d(leaky_relu(x, 0.1)) with stride u, padding (k - u) // 2.

Each case holds x, every weight under its generator checkpoint name (resblocks.0.*, ups.0.*), dy, y and the
gradients d<name> of x and of every weight and bias for y.backward(dy). Inputs are f32; the reference runs in float64.
Every leaky-ReLU input lies at least MARGIN from 0, 100 times the f32 error of the engine's intermediates (a few
1e-7 of values of order 1), so rounding cannot flip a branch.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded
from hifigan import LRELU, ResBlock1

MARGIN = 1e-4


def check_margin(name, values):
    smallest = min(v.abs().min().item() for v in values)
    assert smallest > MARGIN, f"{name}: a leaky-ReLU input is {smallest:.2e} from its kink; pick another seed"


def resblock_case(gen, prefix, batch, channels, length, kernel, dilations):
    block = ResBlock1(channels, kernel, dilations)
    params = {f"{prefix}.{k}": torch.randn(v.shape, generator=gen) * (0.5 / (channels * kernel) ** 0.5 if v.dim() > 1 else 0.2)
              for k, v in block.state_dict().items()}
    x = torch.randn(batch, channels, length, generator=gen)
    leaves = {k: v.double().requires_grad_() for k, v in {"x": x, **params}.items()}

    kinks = []
    h = leaves["x"]
    for d, dilation in enumerate(dilations):
        p = lambda part: (leaves[f"{prefix}.convs{part}.{d}.weight"], leaves[f"{prefix}.convs{part}.{d}.bias"])
        kinks.append(h)
        w1, b1 = p(1)
        inner = F.conv1d(F.leaky_relu(h, LRELU), w1, b1, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        kinks.append(inner)
        w2, b2 = p(2)
        h = F.conv1d(F.leaky_relu(inner, LRELU), w2, b2, padding=(kernel - 1) // 2) + h
    check_margin(prefix, kinks)
    # The functional form above is hifigan.ResBlock1 itself.
    block.load_state_dict({k[len(prefix) + 1:]: v for k, v in params.items()})
    with torch.no_grad():
        assert torch.allclose(block.double()(x.double()), h, rtol=0, atol=1e-12)
    return finish({"x": x, **params}, leaves, h, gen)


def upsample_case(gen, batch, cin, length, rate, kernel):
    weight = torch.randn(cin, cin // 2, kernel, generator=gen) * (1.0 / (cin * kernel / rate) ** 0.5)
    params = {"ups.0.weight": weight, "ups.0.bias": torch.randn(cin // 2, generator=gen) * 0.2}
    x = torch.randn(batch, cin, length, generator=gen)
    leaves = {k: v.double().requires_grad_() for k, v in {"x": x, **params}.items()}
    check_margin(f"upsample u{rate} k{kernel}", [leaves["x"]])
    y = F.conv_transpose1d(F.leaky_relu(leaves["x"], LRELU), leaves["ups.0.weight"], leaves["ups.0.bias"],
                           stride=rate, padding=(kernel - rate) // 2)
    return finish({"x": x, **params}, leaves, y, gen)


def finish(inputs, leaves, y, gen):
    dy = torch.randn(*y.shape, generator=gen)
    y.backward(dy.double())
    tensors = dict(inputs)
    tensors["dy"] = dy
    tensors["y"] = y.detach().float()
    tensors.update({f"d{k}": v.grad.float() for k, v in leaves.items()})
    return tensors


def main():
    gen = seeded(77)
    cases, meta = {}, {}
    for name, (batch, channels, length, kernel, dilations) in {
        "resblock_k3": (2, 4, 24, 3, [1, 3, 5]),
        "resblock_k7": (1, 3, 20, 7, [1, 3, 5]),
    }.items():
        cases[name] = resblock_case(gen, "resblocks.0", batch, channels, length, kernel, dilations)
        meta.update({f"{name}.channels": channels, f"{name}.kernel": kernel, f"{name}.dilations": ",".join(map(str, dilations))})
    # (k - u) odd in u5_k16 (AudioLDM's first stage): the output is one sample longer than L·u.
    for name, (batch, cin, length, rate, kernel) in {
        "upsample_u5_k11": (2, 8, 6, 5, 11),
        "upsample_u5_k16": (1, 8, 5, 5, 16),
        "upsample_u2_k4": (2, 4, 7, 2, 4),
    }.items():
        cases[name] = upsample_case(gen, batch, cin, length, rate, kernel)
        meta.update({f"{name}.in_channels": cin, f"{name}.rate": rate, f"{name}.kernel": kernel})
    tensors = {f"{case}.{k}": v for case, values in cases.items() for k, v in values.items()}
    meta.update({f"{case}.params": ",".join(k for k in values if k.startswith(("resblocks.", "ups.")))
                 for case, values in cases.items()})
    save_fixture("hifigan_grad", tensors, meta)


if __name__ == "__main__":
    main()

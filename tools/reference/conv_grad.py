"""Reference gradients of the convolution family from torch autograd, and of a diffusers ResnetBlock2D built on them.

Per case: the op's inputs, an output gradient "dy", and the gradients torch gives for every input after y.backward(dy)
("dx", "dweight", "dbias"; the residual's gradient is dy itself). Autograd runs in float64 on the float32-exact inputs,
so the expected values carry no float32 rounding of their own. Inputs of a fused leaky-ReLU are kept at least 0.05
from 0, where its derivative jumps. Parameters go into the metadata as "<case>.<param>" as in conv.py.

Cases cover 3x3 and 1x1 kernels, stride 1 and 2 (3 for conv1d), padding wider than the halo, dilation, odd sizes,
trailing input rows a stride skips (their gradient is 0), bias, residual (and the HiFi-GAN residual that is x
itself), leaky input with slopes 0 (ReLU), 0.01, 0.1, 0.2, output padding, and a reduction long enough that the CUDA
weight gradient is cut into several slices.
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded
from unet import ResnetBlock2D


def weight(*shape, fan_in):
    return torch.randn(*shape, dtype=torch.float64) / fan_in ** 0.5


def away_from_zero(x):
    """x with every |value| at least 0.05: a finite leaky-ReLU derivative holds in a neighbourhood of each input."""
    sign = torch.where(x < 0, -torch.ones_like(x), torch.ones_like(x))
    return torch.where(x.abs() < 0.05, 0.05 * sign, x)


def f32(t):
    """Rounds to float32 and back, so the float64 reference sees exactly the fixture's values."""
    return t.float().double()


def record(tensors, name, inputs, dy, grads):
    for key, value in inputs.items():
        if value is not None:
            tensors[f"{name}.{key}"] = value
    tensors[f"{name}.dy"] = dy
    for key, value in grads.items():
        if value is not None:
            tensors[f"{name}.d{key}"] = value


def run(inputs, forward, dy):
    """torch autograd of forward(**inputs) seeded with dy; returns the gradient of every non-None input."""
    leaves = {k: (v.clone().requires_grad_(True) if v is not None else None) for k, v in inputs.items()}
    y = forward(**leaves)
    y.backward(dy)
    return y, {k: (v.grad if v is not None else None) for k, v in leaves.items()}


def conv2d_cases(tensors, meta):
    # name: (n, cin, cout, h, w, kh, kw, stride, padding, bias, residual)
    cases = {
        "k3_bias_res": (2, 5, 6, 7, 6, 3, 3, 1, 1, True, True),
        "k3_wide": (1, 19, 17, 6, 5, 3, 3, 1, 1, True, False),
        "k3_s2": (2, 4, 5, 9, 7, 3, 3, 2, 1, True, False),  # UNet downsampler, odd size
        "k3_s2_skipped": (1, 3, 4, 8, 10, 3, 3, 2, 0, False, True),  # row 7 and column 9 read by no window
        "k3_p2": (1, 3, 2, 5, 6, 3, 3, 1, 2, False, False),  # padding wider than the halo
        "k1": (2, 6, 5, 4, 5, 1, 1, 1, 0, True, True),  # pointwise: plain GEMMs
        "k1_s2_p1": (1, 4, 3, 7, 7, 1, 1, 2, 1, False, False),
        "k2x3": (1, 3, 4, 6, 7, 2, 3, 1, 1, True, False),  # rectangular kernel
        "k5_s2_p2": (1, 2, 3, 9, 8, 5, 5, 2, 2, True, True),
        "k3_sliced": (2, 3, 4, 16, 17, 3, 3, 1, 1, True, False),  # 544 positions: several CUDA slices
    }
    for seed, (name, (n, cin, cout, h, w, kh, kw, stride, padding, bias, residual)) in enumerate(cases.items()):
        seeded(400 + seed)
        x = f32(torch.randn(n, cin, h, w, dtype=torch.float64))
        inputs = {
            "x": x,
            "weight": f32(weight(cout, cin, kh, kw, fan_in=cin * kh * kw)),
            "bias": f32(torch.randn(cout, dtype=torch.float64)) if bias else None,
        }
        ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
        if residual:
            inputs["residual"] = f32(torch.randn(n, cout, ho, wo, dtype=torch.float64))
        dy = f32(torch.randn(n, cout, ho, wo, dtype=torch.float64))

        def forward(x, weight, bias, residual=None):
            y = F.conv2d(x, weight, bias, stride=stride, padding=padding)
            return y if residual is None else y + residual

        _, grads = run(inputs, forward, dy)
        grads.pop("residual", None)
        record(tensors, f"conv2d_{name}", inputs, dy, grads)
        meta[f"conv2d_{name}.stride"] = stride
        meta[f"conv2d_{name}.padding"] = padding


def conv1d_cases(tensors, meta):
    # name: (n, cin, cout, length, k, stride, padding, dilation, slope, bias, residual: True, False or "x")
    cases = {
        "hifi_dil3": (2, 6, 6, 23, 3, 1, 3, 3, 0.1, True, True),  # HiFi-GAN resblock conv
        "residual_is_x": (1, 5, 5, 21, 5, 1, 4, 2, 0.1, True, "x"),  # xt = conv(lrelu(x)) + x
        "k7_dil5": (1, 5, 4, 41, 7, 1, 15, 5, 0.1, True, False),
        "stride2": (1, 4, 5, 19, 4, 2, 1, 1, 0.01, True, False),
        "stride3_dil2_skipped": (1, 3, 4, 27, 3, 3, 0, 2, 0.0, False, True),  # slope 0 is ReLU; x[26] unread
        "k1": (2, 5, 6, 17, 1, 1, 0, 1, None, True, True),  # pointwise: plain GEMMs
        "k1_slope": (1, 5, 3, 9, 1, 1, 0, 1, 0.2, False, False),
        "post": (1, 8, 1, 31, 7, 1, 3, 1, 0.01, True, False),  # conv_post: one output channel
        "long": (2, 3, 4, 300, 5, 1, 2, 1, 0.1, True, False),  # 600 positions: several CUDA slices
    }
    for seed, (name, (n, cin, cout, length, k, stride, padding, dilation, slope, bias, residual)) in enumerate(cases.items()):
        seeded(500 + seed)
        x = torch.randn(n, cin, length, dtype=torch.float64)
        x = f32(away_from_zero(x) if slope is not None else x)
        inputs = {
            "x": x,
            "weight": f32(weight(cout, cin, k, fan_in=cin * k)),
            "bias": f32(torch.randn(cout, dtype=torch.float64)) if bias else None,
        }
        out_length = (length + 2 * padding - dilation * (k - 1) - 1) // stride + 1
        if residual is True:
            inputs["residual"] = f32(torch.randn(n, cout, out_length, dtype=torch.float64))
        dy = f32(torch.randn(n, cout, out_length, dtype=torch.float64))

        residual_is_x = residual == "x"

        def forward(x, weight, bias, residual=None):
            a = x if slope is None else F.leaky_relu(x, slope)
            y = F.conv1d(a, weight, bias, stride=stride, padding=padding, dilation=dilation)
            if residual_is_x:
                return y + x
            return y if residual is None else y + residual

        _, grads = run(inputs, forward, dy)
        grads.pop("residual", None)
        record(tensors, f"conv1d_{name}", inputs, dy, grads)
        meta[f"conv1d_{name}.stride"] = stride
        meta[f"conv1d_{name}.padding"] = padding
        meta[f"conv1d_{name}.dilation"] = dilation
        meta[f"conv1d_{name}.slope"] = "none" if slope is None else slope
        meta[f"conv1d_{name}.residual_is_x"] = residual_is_x


def conv_transpose1d_cases(tensors, meta):
    # name: (n, cin, cout, length, k, stride, padding, output_padding, slope, bias)
    cases = {
        "hifi_k16_s8": (2, 6, 5, 9, 16, 8, 4, 0, 0.1, True),  # HiFi-GAN upsampler
        "k4_s2_op1": (1, 5, 3, 8, 4, 2, 1, 1, None, False),
        "k3_s4_op2": (1, 4, 5, 7, 3, 4, 0, 2, None, True),  # kernel shorter than stride
        "k5_s1": (1, 6, 4, 10, 5, 1, 2, 0, 0.2, True),
        "k11_s5_p7": (1, 3, 5, 6, 11, 5, 7, 0, 0.01, True),  # padding beyond one tap period
        "k2_s3_op2": (2, 7, 3, 5, 2, 3, 0, 2, 0.0, False),
    }
    for seed, (name, (n, cin, cout, length, k, stride, padding, output_padding, slope, bias)) in enumerate(cases.items()):
        seeded(600 + seed)
        x = torch.randn(n, cin, length, dtype=torch.float64)
        x = f32(away_from_zero(x) if slope is not None else x)
        inputs = {
            "x": x,
            "weight": f32(weight(cin, cout, k, fan_in=cin * k // stride)),
            "bias": f32(torch.randn(cout, dtype=torch.float64)) if bias else None,
        }
        out_length = (length - 1) * stride - 2 * padding + k + output_padding
        dy = f32(torch.randn(n, cout, out_length, dtype=torch.float64))

        def forward(x, weight, bias):
            a = x if slope is None else F.leaky_relu(x, slope)
            return F.conv_transpose1d(a, weight, bias, stride=stride, padding=padding, output_padding=output_padding)

        _, grads = run(inputs, forward, dy)
        record(tensors, f"convt1d_{name}", inputs, dy, grads)
        meta[f"convt1d_{name}.stride"] = stride
        meta[f"convt1d_{name}.padding"] = padding
        meta[f"convt1d_{name}.output_padding"] = output_padding
        meta[f"convt1d_{name}.slope"] = "none" if slope is None else slope


def resnet_block_case(tensors, meta):
    """unet.py's ResnetBlock2D (diffusers semantics: GN+SiLU, conv3x3, + time_emb_proj(SiLU(temb)), GN+SiLU,
    conv3x3, 1x1 shortcut as the channels change), its input, time embedding and every parameter differentiated."""
    seeded(700)
    n, cin, cout, h, w, temb_dim, groups, eps = 2, 8, 12, 5, 7, 10, 4, 1e-5
    block = ResnetBlock2D(cin, cout, temb_dim, groups, eps).double()
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(f32(p + 0.1 * torch.randn_like(p)))  # norm affines away from their 1 / 0 defaults
    x = f32(torch.randn(n, cin, h, w, dtype=torch.float64)).requires_grad_(True)
    temb = f32(torch.randn(n, temb_dim, dtype=torch.float64)).requires_grad_(True)
    y = block(x, temb)
    dy = f32(torch.randn_like(y))
    y.backward(dy)
    tensors["resnet.x"] = x.detach()
    tensors["resnet.temb"] = temb.detach()
    tensors["resnet.dy"] = dy
    tensors["resnet.y"] = y.detach()
    tensors["resnet.dx"] = x.grad
    tensors["resnet.dtemb"] = temb.grad
    for key, p in block.named_parameters():
        tensors[f"resnet.{key}"] = p.detach()
        tensors[f"resnet.d{key}"] = p.grad
    meta["resnet.groups"] = groups
    meta["resnet.eps"] = eps


if __name__ == "__main__":
    tensors, meta = {}, {}
    conv2d_cases(tensors, meta)
    conv1d_cases(tensors, meta)
    conv_transpose1d_cases(tensors, meta)
    resnet_block_case(tensors, meta)
    save_fixture("conv_grad", tensors, meta)

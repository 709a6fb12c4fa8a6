"""Reference fixtures for the convolution family: conv2d, conv1d and conv_transpose1d from torch.nn.functional.

Odd channel counts and odd spatial sizes throughout, so SIMD tails, partial Winograd tiles and border padding are
all exercised. Weights are scaled by 1/sqrt(fan-in) so outputs stay O(1) and tolerances mean the same for every case.
Parameters go into the metadata as "<case>.<param>"; "<case>.slope" is the fused input leaky-ReLU slope ("none": no activation).
"""
import torch
import torch.nn.functional as F

from common import save_fixture, seeded


def weight(*shape, fan_in):
    return torch.randn(*shape) / fan_in ** 0.5


def conv2d_fixture():
    tensors, meta = {}, {}
    # name: (n, cin, cout, h, w, kh, kw, stride, padding, bias, residual)
    cases = {
        "wino_bias_res": (1, 27, 29, 11, 9, 3, 3, 1, 1, True, True),  # Winograd, partial tiles both ways
        "wino_batch_pad0": (2, 24, 25, 10, 13, 3, 3, 1, 0, False, False),  # Winograd, no padding, batch 2
        "wino_pad2": (1, 25, 24, 6, 5, 3, 3, 1, 2, True, False),  # Winograd, padding larger than the halo
        "wino_few_out": (1, 20, 3, 7, 9, 3, 3, 1, 1, True, True),  # Winograd down to a few channels (UNet conv_out)
        "k3_small": (2, 3, 5, 7, 6, 3, 3, 1, 1, True, False),  # few channels: im2col
        "k3_s2": (2, 7, 6, 13, 10, 3, 3, 2, 1, True, False),  # UNet downsampler
        "k3_s2_wide": (1, 26, 24, 9, 12, 3, 3, 2, 1, False, True),  # stride 2 with many channels: im2col
        "k1": (2, 9, 11, 5, 7, 1, 1, 1, 0, True, True),  # plain GEMM
        "k1_s2_p1": (1, 6, 5, 7, 9, 1, 1, 2, 1, False, False),
        "k5_p2": (1, 5, 4, 8, 6, 5, 5, 1, 2, False, True),
        "k2x3": (1, 4, 3, 6, 7, 2, 3, 1, 1, True, False),  # rectangular kernel
    }
    for seed, (name, (n, cin, cout, h, w, kh, kw, stride, padding, bias, residual)) in enumerate(cases.items()):
        seeded(100 + seed)
        x = torch.randn(n, cin, h, w)
        wt = weight(cout, cin, kh, kw, fan_in=cin * kh * kw)
        b = torch.randn(cout) if bias else None
        y = F.conv2d(x, wt, b, stride=stride, padding=padding)
        tensors[f"{name}.x"] = x
        tensors[f"{name}.weight"] = wt
        if bias:
            tensors[f"{name}.bias"] = b
        if residual:
            r = torch.randn_like(y)
            tensors[f"{name}.residual"] = r
            y = y + r
        tensors[f"{name}.y"] = y
        meta[f"{name}.stride"] = stride
        meta[f"{name}.padding"] = padding
        meta[f"{name}.slope"] = "none"
    save_fixture("conv2d", tensors, meta)


def conv1d_fixture():
    tensors, meta = {}, {}
    # name: (n, cin, cout, length, k, stride, padding, dilation, slope, bias, residual: True, False or "x")
    cases = {
        "hifi_res": (2, 13, 13, 29, 3, 1, 3, 3, 0.1, True, True),  # HiFi-GAN resblock conv, dilation 3
        "k7_dil5": (1, 10, 10, 37, 7, 1, 15, 5, 0.1, True, False),
        "k11": (1, 9, 7, 23, 11, 1, 5, 1, None, False, False),
        "stride2": (1, 6, 5, 19, 4, 2, 1, 1, 0.01, True, False),
        "post": (1, 8, 1, 31, 7, 1, 3, 1, 0.01, True, False),  # conv_post: one output channel
        "k1": (2, 5, 6, 17, 1, 1, 0, 1, None, True, True),  # plain GEMM
        "k1_slope": (1, 5, 3, 9, 1, 1, 0, 1, 0.2, False, True),
        "short": (1, 4, 3, 5, 5, 1, 0, 1, None, True, False),  # one output position
        "stride3_dil2": (1, 3, 4, 26, 3, 3, 2, 2, 0.0, False, True),  # slope 0 is ReLU
        "residual_is_x": (1, 11, 11, 21, 5, 1, 4, 2, 0.1, True, "x"),  # HiFi-GAN: xt = conv(lrelu(x)) + x
        "few_out_dil_res": (1, 7, 2, 150, 5, 1, 4, 2, 0.1, True, True),  # few output channels: direct kernel
        "few_out_plain": (2, 5, 3, 141, 3, 1, 1, 1, None, False, False),
    }
    for seed, (name, (n, cin, cout, length, k, stride, padding, dilation, slope, bias, residual)) in enumerate(cases.items()):
        seeded(200 + seed)
        x = torch.randn(n, cin, length)
        wt = weight(cout, cin, k, fan_in=cin * k)
        b = torch.randn(cout) if bias else None
        xin = x if slope is None else F.leaky_relu(x, slope)
        y = F.conv1d(xin, wt, b, stride=stride, padding=padding, dilation=dilation)
        tensors[f"{name}.x"] = x
        tensors[f"{name}.weight"] = wt
        if bias:
            tensors[f"{name}.bias"] = b
        meta[f"{name}.residual_is_x"] = residual == "x"
        if residual == "x":
            y = y + x
        elif residual:
            r = torch.randn_like(y)
            tensors[f"{name}.residual"] = r
            y = y + r
        tensors[f"{name}.y"] = y
        meta[f"{name}.stride"] = stride
        meta[f"{name}.padding"] = padding
        meta[f"{name}.dilation"] = dilation
        meta[f"{name}.slope"] = "none" if slope is None else slope
    save_fixture("conv1d", tensors, meta)


def conv_transpose1d_fixture():
    tensors, meta = {}, {}
    # name: (n, cin, cout, length, k, stride, padding, output_padding, slope, bias)
    cases = {
        "hifi_k16_s8": (2, 12, 7, 9, 16, 8, 4, 0, 0.1, True),  # HiFi-GAN upsampler: padding (k-u)//2
        "k16_s5": (1, 9, 6, 11, 16, 5, 5, 0, 0.1, True),  # the benchmark's geometry, small
        "k4_s2_op1": (1, 5, 3, 8, 4, 2, 1, 1, None, False),
        "k3_s4": (1, 4, 5, 7, 3, 4, 0, 2, None, True),  # kernel shorter than stride: phases with no taps
        "k5_s1": (1, 6, 4, 10, 5, 1, 2, 0, 0.2, True),  # stride 1: an ordinary correlation
        "k11_s5_p7": (1, 3, 5, 6, 11, 5, 7, 0, None, True),  # padding beyond one tap period
        "k2_s3_op2": (2, 7, 3, 5, 2, 3, 0, 2, 0.1, False),
    }
    for seed, (name, (n, cin, cout, length, k, stride, padding, output_padding, slope, bias)) in enumerate(cases.items()):
        seeded(300 + seed)
        x = torch.randn(n, cin, length)
        wt = weight(cin, cout, k, fan_in=cin * k // stride)
        b = torch.randn(cout) if bias else None
        xin = x if slope is None else F.leaky_relu(x, slope)
        y = F.conv_transpose1d(xin, wt, b, stride=stride, padding=padding, output_padding=output_padding)
        tensors[f"{name}.x"] = x
        tensors[f"{name}.weight"] = wt
        if bias:
            tensors[f"{name}.bias"] = b
        tensors[f"{name}.y"] = y
        meta[f"{name}.stride"] = stride
        meta[f"{name}.padding"] = padding
        meta[f"{name}.output_padding"] = output_padding
        meta[f"{name}.slope"] = "none" if slope is None else slope
    save_fixture("conv_transpose1d", tensors, meta)


if __name__ == "__main__":
    conv2d_fixture()
    conv1d_fixture()
    conv_transpose1d_fixture()

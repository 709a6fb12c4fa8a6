"""Tiny HiFi-GAN (resblock 1) in PyTorch with random weights under the real checkpoint names, and its output."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import save_fixture, seeded

LRELU = 0.1


class ResBlock1(nn.Module):
    def __init__(self, channels, kernel, dilations):
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2)
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2) for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU)), LRELU))
            x = xt + x
        return x


class Generator(nn.Module):
    def __init__(self, mels, rates, kernels, initial, rb_kernels, rb_dilations):
        super().__init__()
        self.conv_pre = nn.Conv1d(mels, initial, 7, padding=3)
        self.ups = nn.ModuleList(nn.ConvTranspose1d(initial >> i, initial >> (i + 1), k, u, padding=(k - u) // 2)
                                 for i, (u, k) in enumerate(zip(rates, kernels)))
        self.resblocks = nn.ModuleList(ResBlock1(initial >> (i + 1), k, d)
                                       for i in range(len(rates)) for k, d in zip(rb_kernels, rb_dilations))
        self.conv_post = nn.Conv1d(initial >> len(rates), 1, 7, padding=3)
        self.kernels = len(rb_kernels)

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU))
            xs = sum(self.resblocks[i * self.kernels + j](x) for j in range(self.kernels))
            x = xs / self.kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))  # default slope 0.01, as AudioLDM


def main():
    seeded(21)
    config = dict(mels=8, rates=[5, 2, 2], kernels=[11, 4, 4], initial=32, rb_kernels=[3, 7], rb_dilations=[[1, 3, 5], [1, 3, 5]])
    model = Generator(**config).eval()
    mel = torch.randn(2, 8, 13)
    with torch.no_grad():
        audio = model(mel)
    tensors = {k: v for k, v in model.state_dict().items()}
    tensors["input.mel"] = mel
    tensors["expected.audio"] = audio
    save_fixture("hifigan", tensors, {k: ",".join(map(str, v)) if isinstance(v, list) and not isinstance(v[0], list)
                                      else str(v) for k, v in config.items()})


if __name__ == "__main__":
    main()

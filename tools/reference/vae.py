"""Tiny LDM-style AutoencoderKL (AudioLDM / latent-diffusion naming) with random weights, its encoder moments and
decoder output. Written from the LDM architecture: GroupNorm(32, eps 1e-6), swish, right/bottom-padded stride-2
downsampling, nearest upsampling, single-head mid attention with 1x1-conv projections."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from common import save_fixture, seeded


GROUPS = 32


def norm(c):
    return nn.GroupNorm(GROUPS, c, eps=1e-6)


class ResnetBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class AttnBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = norm(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)
        k = k.reshape(b, c, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)
        v = v.reshape(b, c, hh * ww)
        h = torch.bmm(v, w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(h)


class Down(nn.Module):
    pass


class Encoder(nn.Module):
    def __init__(self, cin, ch, mult, blocks, z):
        super().__init__()
        self.conv_in = nn.Conv2d(cin, ch, 3, padding=1)
        self.down = nn.ModuleList()
        c = ch
        for i, m in enumerate(mult):
            level = Down()
            level.block = nn.ModuleList()
            for _ in range(blocks):
                level.block.append(ResnetBlock(c, ch * m))
                c = ch * m
            if i != len(mult) - 1:
                level.downsample = Down()
                level.downsample.conv = nn.Conv2d(c, c, 3, stride=2)
            self.down.append(level)
        self.mid = Down()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)
        self.norm_out, self.conv_out = norm(c), nn.Conv2d(c, 2 * z, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for level in self.down:
            for b in level.block:
                h = b(h)
            if hasattr(level, "downsample"):
                h = level.downsample.conv(F.pad(h, (0, 1, 0, 1)))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(F.silu(self.norm_out(h)))


class Decoder(nn.Module):
    def __init__(self, cout, ch, mult, blocks, z):
        super().__init__()
        c = ch * mult[-1]
        self.conv_in = nn.Conv2d(z, c, 3, padding=1)
        self.mid = Down()
        self.mid.block_1, self.mid.attn_1, self.mid.block_2 = ResnetBlock(c, c), AttnBlock(c), ResnetBlock(c, c)
        self.up = nn.ModuleList([Down() for _ in mult])
        for i in reversed(range(len(mult))):
            level = self.up[i]
            level.block = nn.ModuleList()
            for _ in range(blocks + 1):
                level.block.append(ResnetBlock(c, ch * mult[i]))
                c = ch * mult[i]
            if i != 0:
                level.upsample = Down()
                level.upsample.conv = nn.Conv2d(c, c, 3, padding=1)
        self.norm_out, self.conv_out = norm(c), nn.Conv2d(c, cout, 3, padding=1)

    def forward(self, z):
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for i in reversed(range(len(self.up))):
            for b in self.up[i].block:
                h = b(h)
            if hasattr(self.up[i], "upsample"):
                h = self.up[i].upsample.conv(F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    def __init__(self, cin, ch, mult, blocks, z):
        super().__init__()
        self.encoder, self.decoder = Encoder(cin, ch, mult, blocks, z), Decoder(cin, ch, mult, blocks, z)
        self.quant_conv, self.post_quant_conv = nn.Conv2d(2 * z, 2 * z, 1), nn.Conv2d(z, z, 1)


def main():
    global GROUPS
    GROUPS = 4
    seeded(31)
    SCALE = 0.9227914214134216
    vae = AutoencoderKL(cin=1, ch=8, mult=[1, 2], blocks=1, z=4).eval()
    with torch.no_grad():
        for p in vae.parameters():  # keep activations O(1) through the stack
            p.mul_(0.5)
        mel = torch.randn(2, 1, 12, 10)
        moments = vae.quant_conv(vae.encoder(mel))
        mean, logvar = moments.chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        scaled = torch.randn(2, 4, 6, 5)
        decoded = vae.decoder(vae.post_quant_conv(scaled / SCALE))
    tensors = dict(vae.state_dict())
    tensors.update({"input.mel": mel, "expected.mean": mean, "expected.logvar": logvar, "input.latent": scaled,
                    "expected.decoded": decoded})
    save_fixture("vae", tensors, {"scale": SCALE, "groups": GROUPS})


if __name__ == "__main__":
    main()

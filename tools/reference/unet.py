"""Reference UNet2DConditionModel (diffusers 0.15 semantics) with MeLFusion's visual synapse, and its fixtures.

Written from diffusers' module semantics (resnet.py, attention.py, transformer_2d.py, unet_2d_blocks.py,
embeddings.py, unet_2d_condition.py) and the MeLFusion fork's changes (spec §1.3), not copied:
- `attention_head_dim` is the NUMBER OF HEADS of a block (diffusers 0.15 passes it as `attn_num_head_channels` to
  `Transformer2DModel(heads, channels // heads)`); the mid block uses the last entry, up blocks the reversed list.
- ResnetBlock2D: GN(eps 1e-5) -> SiLU -> conv3x3 -> + time_emb_proj(SiLU(temb))[:, :, None, None] -> GN -> SiLU
  -> conv3x3; a 1x1 conv_shortcut when channels change.
- Transformer2DModel: GN(eps 1e-6) -> proj_in (Linear on tokens, or 1x1 conv before flattening) -> one
  BasicTransformerBlock (LN eps 1e-5; self-attention, cross-attention with the key padding mask as an additive
  (1 - mask) * -10000 bias, GEGLU feed-forward with erf GELU) -> proj_out -> + residual.
- Synapse: the image UNet returns every up-block attn2 output after to_out[0] (before its residual add); the music
  UNet mixes a feature S into the text states of up-block attn2 before to_k / to_v:
  f = (2 sigmoid(alpha) - 1) / 5, S pooled to [L, Dctx] (2-D adaptive average pool when both dims differ, else 1-D
  on the differing dim), E' = (1 - f) E + f S.

Fixtures (weights stored as F16-exact values, the reference runs in float64, expected outputs are F32):
- unet_music: a Tango-like tiny UNet (linear projections, key padding mask) under the prefix "unet." with MF alphas
  on every attention (nonzero on up-block attn2). Cases: text-only; features of every pooling branch injected;
  the image UNet's taps injected (end to end).
- unet_image: an SD-1.5-like tiny UNet (1x1-conv projections, no mask), unprefixed, with its taps and output.
- unet_tango_weights.json: name -> shape of every tensor of the full-size Tango UNet (prefix "unet.").
"""
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from common import FIXTURES, save_fixture, seeded

SYNAPSE_RHO = 5.0


def timestep_embedding(timesteps, dim, flip_sin_to_cos, freq_shift, max_period=10000):
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32) / (half - freq_shift)
    args = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, channels, dim):
        super().__init__()
        self.linear_1 = nn.Linear(channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        return shortcut + h


def adaptive_pool_to(s, tokens, channels):
    """MF's pooling of an image feature S [B, N, C] to the text states' [B, tokens, channels]."""
    n, c = s.shape[1], s.shape[2]
    if n != tokens and c != channels:
        return nn.AdaptiveAvgPool2d((tokens, channels))(s)
    if n != tokens:
        return nn.AdaptiveAvgPool1d(tokens)(s.transpose(1, 2)).transpose(1, 2)
    if c != channels:
        return nn.AdaptiveAvgPool1d(channels)(s)
    return s


class Attention(nn.Module):
    def __init__(self, query_dim, context_dim, heads, head_dim, with_alpha):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.scale = head_dim ** -0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])
        self.alpha = nn.Parameter(torch.zeros(1, 1)) if with_alpha else None

    def forward(self, x, context=None, mask=None, external=None):
        context = x if context is None else context
        if external is not None:
            f = (2 * torch.sigmoid(self.alpha) - 1) / SYNAPSE_RHO
            pooled = adaptive_pool_to(external, context.shape[1], context.shape[2])
            context = (1 - f) * context + f * pooled
        b, n, _ = x.shape
        m = context.shape[1]
        q = self.to_q(x).view(b, n, self.heads, -1).transpose(1, 2)
        k = self.to_k(context).view(b, m, self.heads, -1).transpose(1, 2)
        v = self.to_v(context).view(b, m, self.heads, -1).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if mask is not None:
            scores = scores + ((1 - mask.to(scores.dtype)) * -10000.0)[:, None, None, :]
        out = torch.matmul(scores.softmax(dim=-1), v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out[1](self.to_out[0](out))


class GEGLU(nn.Module):
    def __init__(self, dim, inner):
        super().__init__()
        self.proj = nn.Linear(dim, 2 * inner)

    def forward(self, x):
        hidden, gate = self.proj(x).chunk(2, dim=-1)
        return hidden * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.ModuleList([GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim)])

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, context_dim, heads, with_alpha):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, dim, heads, dim // heads, with_alpha)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, context_dim, heads, dim // heads, with_alpha)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context, mask, external, taps):
        x = self.attn1(self.norm1(x)) + x
        cross = self.attn2(self.norm2(x), context, mask, external)
        taps.append(cross)
        x = cross + x
        return self.ff(self.norm3(x)) + x


class Transformer2DModel(nn.Module):
    def __init__(self, channels, context_dim, heads, groups, linear_projection, with_alpha):
        super().__init__()
        self.linear_projection = linear_projection
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        make = (lambda: nn.Linear(channels, channels)) if linear_projection else (lambda: nn.Conv2d(channels, channels, 1))
        self.proj_in = make()
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(channels, context_dim, heads, with_alpha)])
        self.proj_out = make()

    def forward(self, x, context, mask, external, taps):
        b, c, h, w = x.shape
        residual = x
        x = self.norm(x)
        if self.linear_projection:
            x = self.proj_in(x.permute(0, 2, 3, 1).reshape(b, h * w, c))
        else:
            x = self.proj_in(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        for block in self.transformer_blocks:
            x = block(x, context, mask, external, taps)
        if self.linear_projection:
            x = self.proj_out(x).reshape(b, h, w, c).permute(0, 3, 1, 2)
        else:
            x = self.proj_out(x.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous())
        return x + residual


class Downsample2D(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (cross=True) or DownBlock2D."""

    def __init__(self, cin, cout, temb, layers, groups, eps, cross, context_dim, heads, linear, with_alpha, downsample):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers))
        if cross:
            self.attentions = nn.ModuleList(Transformer2DModel(cout, context_dim, heads, groups, linear, with_alpha)
                                            for _ in range(layers))
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(cout)]) if downsample else None

    def forward(self, x, temb, context, mask):
        skips = []
        for i, resnet in enumerate(self.resnets):
            x = resnet(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context, mask, None, [])
            skips.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            skips.append(x)
        return x, skips


class MidBlock(nn.Module):
    def __init__(self, channels, temb, groups, eps, context_dim, heads, linear, with_alpha):
        super().__init__()
        self.resnets = nn.ModuleList(ResnetBlock2D(channels, channels, temb, groups, eps) for _ in range(2))
        self.attentions = nn.ModuleList([Transformer2DModel(channels, context_dim, heads, groups, linear, with_alpha)])

    def forward(self, x, temb, context, mask):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, context, mask, None, [])
        return self.resnets[1](x, temb)


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D (cross=True) or UpBlock2D."""

    def __init__(self, cin, cout, prev, temb, layers, groups, eps, cross, context_dim, heads, linear, with_alpha, upsample):
        super().__init__()
        self.resnets = nn.ModuleList(
            ResnetBlock2D((prev if i == 0 else cout) + (cin if i == layers - 1 else cout), cout, temb, groups, eps)
            for i in range(layers))
        if cross:
            self.attentions = nn.ModuleList(Transformer2DModel(cout, context_dim, heads, groups, linear, with_alpha)
                                            for _ in range(layers))
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if upsample else None

    def forward(self, x, skips, temb, context, mask, externals, taps):
        for i, resnet in enumerate(self.resnets):
            x = resnet(torch.cat([x, skips.pop()], dim=1), temb)
            if self.attentions is not None:
                attention_taps = []
                external = externals.get(i) if externals else None
                x = self.attentions[i](x, context, mask, external, attention_taps)
                taps[i] = attention_taps[0]
        if self.upsamplers is not None:
            x = self.upsamplers[0](x)
        return x


class UNet2DConditionModel(nn.Module):
    def __init__(self, in_channels, out_channels, block_out_channels, layers_per_block, down_block_types,
                 up_block_types, attention_head_dim, cross_attention_dim, use_linear_projection, norm_num_groups,
                 norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0, upcast_attention=False, with_alpha=False):
        super().__init__()
        del upcast_attention  # scores are float64 here anyway
        self.flip_sin_to_cos, self.freq_shift = flip_sin_to_cos, freq_shift
        channels0 = block_out_channels[0]
        temb = 4 * channels0
        heads = attention_head_dim if isinstance(attention_head_dim, list) else [attention_head_dim] * len(block_out_channels)
        self.conv_in = nn.Conv2d(in_channels, channels0, 3, padding=1)
        self.time_embedding = TimestepEmbedding(channels0, temb)
        count = len(block_out_channels)
        common = dict(groups=norm_num_groups, eps=norm_eps, context_dim=cross_attention_dim,
                      linear=use_linear_projection, with_alpha=with_alpha)
        self.down_blocks = nn.ModuleList(
            DownBlock(block_out_channels[max(i - 1, 0)], block_out_channels[i], temb, layers_per_block,
                      cross=kind == "CrossAttnDownBlock2D", heads=heads[i], downsample=i < count - 1, **common)
            for i, kind in enumerate(down_block_types))
        self.mid_block = MidBlock(block_out_channels[-1], temb, heads=heads[-1], **common)
        rev_channels, rev_heads = block_out_channels[::-1], heads[::-1]
        self.up_blocks = nn.ModuleList(
            UpBlock(rev_channels[min(i + 1, count - 1)], rev_channels[i], rev_channels[max(i - 1, 0)], temb,
                    layers_per_block + 1, cross=kind == "CrossAttnUpBlock2D", heads=rev_heads[i], upsample=i < count - 1,
                    **common)
            for i, kind in enumerate(up_block_types))
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, channels0, eps=norm_eps)
        self.conv_out = nn.Conv2d(channels0, out_channels, 3, padding=1)

    def forward(self, sample, timesteps, context, mask=None, externals=None):
        """Returns the prediction and the taps {(up block, attention): attn2 output}."""
        temb = self.time_embedding(timestep_embedding(timesteps, self.conv_in.out_channels, self.flip_sin_to_cos,
                                                      self.freq_shift).to(sample.dtype))
        x = self.conv_in(sample)
        skips = [x]
        for block in self.down_blocks:
            x, block_skips = block(x, temb, context, mask)
            skips += block_skips
        x = self.mid_block(x, temb, context, mask)
        taps = {}
        for i, block in enumerate(self.up_blocks):
            block_taps = {}
            externals_i = {j: s for (b, j), s in externals.items() if b == i} if externals else None
            x = block(x, skips, temb, context, mask, externals_i, block_taps)
            taps.update({(i, j): t for j, t in block_taps.items()})
        return self.conv_out(F.silu(self.conv_norm_out(x))), taps


def f16_exact_(model, gen, gain=1.0):
    """Random weights (unit-variance scaled by fan-in) rounded to float16 values; norms near identity."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("alpha"):
                continue
            if p.dim() == 1 and ("norm" in name):
                value = (1.0 + 0.2 * torch.randn(p.shape, generator=gen)) if name.endswith("weight") else 0.2 * torch.randn(p.shape, generator=gen)
            elif p.dim() == 1:
                value = 0.2 * torch.randn(p.shape, generator=gen)
            else:
                fan_in = p[0].numel()
                value = gain * torch.randn(p.shape, generator=gen) / math.sqrt(fan_in)
            p.copy_(value.half().float())


def state(model, prefix):
    return {prefix + k: v.detach().half() for k, v in model.state_dict().items()}


def as_f32(outputs):
    return {k: v.detach().float() for k, v in outputs.items()}


TINY_MUSIC = dict(in_channels=4, out_channels=4, block_out_channels=[12, 16, 16], layers_per_block=1,
                  down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
                  up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
                  attention_head_dim=[3, 2, 4], cross_attention_dim=12, use_linear_projection=True, norm_num_groups=4,
                  upcast_attention=True)
TINY_IMAGE = dict(TINY_MUSIC, in_channels=3, out_channels=3, attention_head_dim=2, use_linear_projection=False,
                  upcast_attention=False)

TANGO = dict(in_channels=8, out_channels=8, block_out_channels=[320, 640, 1280, 1280], layers_per_block=2,
             down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
             up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, attention_head_dim=[5, 10, 20, 20],
             cross_attention_dim=1024, use_linear_projection=True, norm_num_groups=32, upcast_attention=True)


def tango_weight_shapes():
    """Names and shapes of the full Tango UNet (prefix unet.) without initialising 866M parameters."""
    saved = {cls: cls.reset_parameters for cls in (nn.Linear, nn.Conv2d, nn.GroupNorm, nn.LayerNorm)}
    for cls in saved:
        cls.reset_parameters = lambda self: None
    try:
        model = UNet2DConditionModel(**TANGO)
    finally:
        for cls, reset in saved.items():
            cls.reset_parameters = reset
    return {"unet." + k: list(v.shape) for k, v in model.state_dict().items()}


def main():
    gen = seeded(2024)
    batch, tokens = 2, 5
    music = UNet2DConditionModel(**TINY_MUSIC, with_alpha=True).eval()
    image = UNet2DConditionModel(**TINY_IMAGE).eval()
    f16_exact_(music, gen)
    f16_exact_(image, gen)
    # MF alphas: up-block attn2 alphas trained away from 0; every other alpha stays at its initial 0.
    alphas = {}
    with torch.no_grad():
        for i, block in enumerate(music.up_blocks):
            if block.attentions is None:
                continue
            for j, attention in enumerate(block.attentions):
                a = torch.tensor([[2.5, -1.75, 3.0, -2.25][len(alphas) % 4]])
                attention.transformer_blocks[0].attn2.alpha.copy_(a)
                alphas[(i, j)] = a
    music, image = music.double(), image.double()

    sample = torch.randn(batch, 4, 8, 4, generator=gen).double()
    image_sample = torch.randn(batch, 3, 4, 4, generator=gen).double()
    timesteps = torch.tensor([981.0, 40.0]).double()
    context = torch.randn(batch, tokens, 12, generator=gen).double()
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int32)
    # One synthetic feature per pooling branch: channels only, tokens only (fewer tokens than L: bins repeat),
    # neither, and both (more channels, fewer tokens).
    synthetic = {(1, 0): torch.randn(batch, tokens, 20, generator=gen).double(),
                 (1, 1): torch.randn(batch, 3, 12, generator=gen).double(),
                 (2, 0): torch.randn(batch, tokens, 12, generator=gen).double(),
                 (2, 1): torch.randn(batch, 11, 30, generator=gen).double()}

    with torch.no_grad():
        text_only, _ = music(sample, timesteps, context, mask)
        injected, _ = music(sample, timesteps, context, mask, synthetic)
        image_out, taps = image(image_sample, timesteps, context)
        end_to_end, _ = music(sample, timesteps, context, mask, taps)

    music_tensors = state(music, "unet.")
    music_tensors.update(as_f32({
        "input.sample": sample, "input.timestep": timesteps, "input.context": context,
        "text_only.out": text_only, "injected.out": injected, "end_to_end.out": end_to_end}))
    music_tensors["input.mask"] = mask
    music_tensors.update(as_f32({f"injected.feature_{b}_{j}": s for (b, j), s in synthetic.items()}))
    save_fixture("unet_music", music_tensors, {"config": json.dumps(TINY_MUSIC)})

    image_tensors = state(image, "")
    image_tensors.update(as_f32({"input.sample": image_sample, "expected.out": image_out}))
    image_tensors.update(as_f32({f"expected.tap_{b}_{j}": t for (b, j), t in taps.items()}))
    save_fixture("unet_image", image_tensors, {"config": json.dumps(TINY_IMAGE)})

    path = os.path.join(FIXTURES, "unet_tango_weights.json")
    with open(path, "w") as f:
        json.dump(tango_weight_shapes(), f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

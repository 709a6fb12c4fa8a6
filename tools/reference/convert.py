"""Tiny fake checkpoints under the real naming of every source the converter reads, and the tensors it must produce.

Sources (tests/fixtures/conversion/):
- tango_main.bin: Tango's AudioDiffusion state dict (torch.save): unet.* (diffusers UNet2DConditionModel names) and
  text_encoder.* (HF T5EncoderModel: shared.weight plus its tied alias encoder.embed_tokens.weight);
- melfusion_main.bin: the same with MeLFusion's alpha [1, 1] on every attention (attn1 and attn2 of every block);
- tango_vae.bin: AudioLDM's LDM AutoencoderKL names plus vocoder.* (HiFi-GAN, weight norm removed);
- sd_unet.safetensors: a diffusers SD UNet; sd_ckpt.pth: MeLFusion's {'unet_state_dict': ...} with alphas;
- sd_vae.safetensors / sd_vae_legacy.safetensors: a diffusers AutoencoderKL with the current (to_q, ..., to_out.0)
  and the older (query, ..., proj_attn) mid-attention names, Linear [C, C] projections;
- flan_t5.safetensors: HF T5ForConditionalGeneration (shared, encoder, decoder, lm_head);
- jik876_generator.pt: {'generator': state dict} of a HiFi-GAN built with torch.nn.utils.weight_norm (weight_g,
  weight_v); parametrized_generator.pt: the same under torch parametrization names (original0 = g, original1 = v);
- speecht5_vocoder.safetensors: diffusers SpeechT5HifiGan (upsampler.{i}, mean, scale).
Expected (tests/fixtures/conversion/expected_<part>.safetensors): engine names, f32; the image UNet's is
sd_unet.safetensors itself (its names are the engine's). The vocoder's expected weights
are torch.nn.utils.remove_weight_norm's; vocoder_forward.safetensors holds a mel and the weight-normed generator's
audio for it.

diffusers and transformers are not installed: UNet, VAE and T5 names are generated from their module structure
(spec section 4); the HiFi-GAN is built from torch modules so weight norm comes from torch itself.
"""
import collections
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import remove_weight_norm, weight_norm

from common import FIXTURES, save_fixture, seeded

OUT = os.path.join(FIXTURES, "conversion")
os.makedirs(OUT, exist_ok=True)
seeded(41)

T5 = dict(vocab=200, d_model=8, d_kv=4, heads=3, layers=2, d_ff=10, buckets=8)
UNET = dict(channels=[4, 8], layers=1, heads=2, cross=6)
MUSIC_VAE = dict(cin=1, ch=4, mult=[1, 2], blocks=1, z=2)
IMAGE_VAE = dict(cin=3, ch=4, mult=[1, 2, 2], blocks=1, z=2)
HIFIGAN = dict(mels=4, rates=[2, 2], kernels=[4, 4], initial=16, rb_kernels=[3, 5], rb_dilations=[[1, 3], [1, 2]])


def rand(*shape):
    return torch.randn(*shape) * 0.5


def t5_encoder(c):
    """HF T5EncoderModel state dict: the embedding under shared.weight and its tied alias (same storage)."""
    d, inner, ff = c["d_model"], c["heads"] * c["d_kv"], c["d_ff"]
    s = collections.OrderedDict()
    s["shared.weight"] = rand(c["vocab"], d)
    s["encoder.embed_tokens.weight"] = s["shared.weight"]
    for i in range(c["layers"]):
        b = f"encoder.block.{i}.layer."
        for p in "qkv":
            s[f"{b}0.SelfAttention.{p}.weight"] = rand(inner, d)
        s[f"{b}0.SelfAttention.o.weight"] = rand(d, inner)
        if i == 0:
            s[f"{b}0.SelfAttention.relative_attention_bias.weight"] = rand(c["buckets"], c["heads"])
        s[f"{b}0.layer_norm.weight"] = 1 + rand(d) * 0.1
        s[f"{b}1.DenseReluDense.wi_0.weight"] = rand(ff, d)
        s[f"{b}1.DenseReluDense.wi_1.weight"] = rand(ff, d)
        s[f"{b}1.DenseReluDense.wo.weight"] = rand(d, ff)
        s[f"{b}1.layer_norm.weight"] = 1 + rand(d) * 0.1
    s["encoder.final_layer_norm.weight"] = 1 + rand(d) * 0.1
    return s


def unet(c, cin, alphas):
    """diffusers 0.15 UNet2DConditionModel names: [CrossAttnDownBlock2D, DownBlock2D] / [UpBlock2D, CrossAttnUpBlock2D],
    linear projections; with alphas, MeLFusion's fork adds alpha [1, 1] to every attention."""
    ch, layers, cross = c["channels"], c["layers"], c["cross"]
    c0, temb = ch[0], 4 * ch[0]
    s = collections.OrderedDict()

    def conv(name, cout, cin_, k):
        s[name + ".weight"], s[name + ".bias"] = rand(cout, cin_, k, k), rand(cout)

    def linear(name, cout, cin_, bias=True):
        s[name + ".weight"] = rand(cout, cin_)
        if bias:
            s[name + ".bias"] = rand(cout)

    def norm(name, n):
        s[name + ".weight"], s[name + ".bias"] = 1 + rand(n) * 0.1, rand(n)

    def resnet(name, cin_, cout):
        norm(name + ".norm1", cin_)
        conv(name + ".conv1", cout, cin_, 3)
        linear(name + ".time_emb_proj", cout, temb)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin_ != cout:
            conv(name + ".conv_shortcut", cout, cin_, 1)

    def attention(name, cq, ckv):
        for p, cols in (("to_q", cq), ("to_k", ckv), ("to_v", ckv)):
            linear(f"{name}.{p}", cq, cols, bias=False)
        linear(name + ".to_out.0", cq, cq)
        if alphas:
            s[name + ".alpha"] = rand(1, 1)

    def transformer(name, cc):
        norm(name + ".norm", cc)
        linear(name + ".proj_in", cc, cc)
        b = name + ".transformer_blocks.0"
        norm(b + ".norm1", cc)
        attention(b + ".attn1", cc, cc)
        norm(b + ".norm2", cc)
        attention(b + ".attn2", cc, cross)
        norm(b + ".norm3", cc)
        linear(b + ".ff.net.0.proj", 8 * cc, cc)
        linear(b + ".ff.net.2", cc, 4 * cc)
        linear(name + ".proj_out", cc, cc)

    conv("conv_in", c0, cin, 3)
    linear("time_embedding.linear_1", temb, c0)
    linear("time_embedding.linear_2", temb, temb)
    out = c0
    for i, cout in enumerate(ch):
        for j in range(layers):
            resnet(f"down_blocks.{i}.resnets.{j}", out if j == 0 else cout, cout)
            if i == 0:
                transformer(f"down_blocks.{i}.attentions.{j}", cout)
        out = cout
        if i < len(ch) - 1:
            conv(f"down_blocks.{i}.downsamplers.0.conv", cout, cout, 3)
    resnet("mid_block.resnets.0", ch[-1], ch[-1])
    transformer("mid_block.attentions.0", ch[-1])
    resnet("mid_block.resnets.1", ch[-1], ch[-1])
    rev = list(reversed(ch))
    out = rev[0]
    for i in range(len(ch)):
        prev, out, inp = out, rev[i], rev[min(i + 1, len(ch) - 1)]
        for j in range(layers + 1):
            skip = inp if j == layers else out
            resnet(f"up_blocks.{i}.resnets.{j}", (prev if j == 0 else out) + skip, out)
            if i > 0:
                transformer(f"up_blocks.{i}.attentions.{j}", out)
        if i < len(ch) - 1:
            conv(f"up_blocks.{i}.upsamplers.0.conv", out, out, 3)
    norm("conv_norm_out", c0)
    conv("conv_out", cin, c0, 3)
    return s


def ldm_vae(c):
    """LDM AutoencoderKL names (AudioLDM / latent-diffusion), as the engine reads them."""
    ch, mult, blocks, z = c["ch"], c["mult"], c["blocks"], c["z"]
    s = collections.OrderedDict()

    def conv(name, cout, cin_, k):
        s[name + ".weight"], s[name + ".bias"] = rand(cout, cin_, k, k), rand(cout)

    def norm(name, n):
        s[name + ".weight"], s[name + ".bias"] = 1 + rand(n) * 0.1, rand(n)

    def resnet(name, cin_, cout):
        norm(name + ".norm1", cin_)
        conv(name + ".conv1", cout, cin_, 3)
        norm(name + ".norm2", cout)
        conv(name + ".conv2", cout, cout, 3)
        if cin_ != cout:
            conv(name + ".nin_shortcut", cout, cin_, 1)

    def mid(name, cc):
        resnet(name + ".block_1", cc, cc)
        norm(name + ".attn_1.norm", cc)
        for p in ("q", "k", "v", "proj_out"):
            conv(f"{name}.attn_1.{p}", cc, cc, 1)
        resnet(name + ".block_2", cc, cc)

    conv("encoder.conv_in", ch, c["cin"], 3)
    cc = ch
    for i, m in enumerate(mult):
        for j in range(blocks):
            resnet(f"encoder.down.{i}.block.{j}", cc, ch * m)
            cc = ch * m
        if i != len(mult) - 1:
            conv(f"encoder.down.{i}.downsample.conv", cc, cc, 3)
    mid("encoder.mid", cc)
    norm("encoder.norm_out", cc)
    conv("encoder.conv_out", 2 * z, cc, 3)
    conv("quant_conv", 2 * z, 2 * z, 1)
    conv("post_quant_conv", z, z, 1)
    cc = ch * mult[-1]
    conv("decoder.conv_in", cc, z, 3)
    mid("decoder.mid", cc)
    for i in reversed(range(len(mult))):
        for j in range(blocks + 1):
            resnet(f"decoder.up.{i}.block.{j}", cc, ch * mult[i])
            cc = ch * mult[i]
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", cc, cc, 3)
    norm("decoder.norm_out", cc)
    conv("decoder.conv_out", c["cin"], cc, 3)
    return s


def diffusers_vae_name(name, levels, legacy):
    """LDM name -> diffusers AutoencoderKL name (diffusers' convert_from_ckpt renames, spec section 4.3)."""
    p = name.split(".")
    attn_new = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
    attn_old = {"norm": "group_norm", "q": "query", "k": "key", "v": "value", "proj_out": "proj_attn"}
    resnet = {"nin_shortcut": "conv_shortcut"}
    if p[0] not in ("encoder", "decoder"):
        return name
    side, rest = p[0], p[1:]
    if rest[0] == "norm_out":
        rest = ["conv_norm_out"] + rest[1:]
    elif rest[0] == "down":
        if rest[2] == "block":
            rest = ["down_blocks", rest[1], "resnets", rest[3], resnet.get(rest[4], rest[4])] + rest[5:]
        else:
            rest = ["down_blocks", rest[1], "downsamplers", "0"] + rest[3:]
    elif rest[0] == "up":
        i = str(levels - 1 - int(rest[1]))
        if rest[2] == "block":
            rest = ["up_blocks", i, "resnets", rest[3], resnet.get(rest[4], rest[4])] + rest[5:]
        else:
            rest = ["up_blocks", i, "upsamplers", "0"] + rest[3:]
    elif rest[0] == "mid":
        if rest[1].startswith("block_"):
            rest = ["mid_block", "resnets", str(int(rest[1][-1]) - 1), resnet.get(rest[2], rest[2])] + rest[3:]
        else:
            rest = ["mid_block", "attentions", "0", (attn_old if legacy else attn_new)[rest[2]]] + rest[3:]
    return ".".join([side] + rest)


def diffusers_vae(ldm, levels, legacy):
    out = collections.OrderedDict()
    for name, t in ldm.items():
        if ".attn_1." in name and name.endswith(".weight") and t.dim() == 4:
            t = t[:, :, 0, 0]  # diffusers' attention projections are Linear [C, C]
        out[diffusers_vae_name(name, levels, legacy)] = t
    return out


class ResBlock1(nn.Module):
    def __init__(self, channels, kernel, dilations):
        super().__init__()
        self.convs1 = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel, dilation=d, padding=d * (kernel - 1) // 2))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2))
                                    for _ in dilations)

    def forward(self, x):
        for c1, c2 in zip(self.convs1, self.convs2):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, 0.1)), 0.1))
        return x


class Generator(nn.Module):
    """jik876's HiFi-GAN generator (resblock 1): every convolution under torch.nn.utils.weight_norm."""

    def __init__(self, mels, rates, kernels, initial, rb_kernels, rb_dilations):
        super().__init__()
        self.conv_pre = weight_norm(nn.Conv1d(mels, initial, 7, padding=3))
        self.ups = nn.ModuleList(weight_norm(nn.ConvTranspose1d(initial >> i, initial >> (i + 1), k, u, padding=(k - u) // 2))
                                 for i, (u, k) in enumerate(zip(rates, kernels)))
        self.resblocks = nn.ModuleList(ResBlock1(initial >> (i + 1), k, d)
                                       for i in range(len(rates)) for k, d in zip(rb_kernels, rb_dilations))
        self.conv_post = weight_norm(nn.Conv1d(initial >> len(rates), 1, 7, padding=3))
        self.kernels = len(rb_kernels)

    def forward(self, x):
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, 0.1))
            x = sum(self.resblocks[i * self.kernels + j](x) for j in range(self.kernels)) / self.kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))

    def remove_weight_norm(self):
        for m in self.modules():
            if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
                remove_weight_norm(m)


def bin_path(name):
    return os.path.join(OUT, name)


def expected(part, tensors):
    save_fixture(f"conversion/expected_{part}", {k: v.contiguous() for k, v in tensors.items()})


# Text encoder: Tango's main bin (T5EncoderModel, tied alias) and HF FLAN-T5 (full model, no alias).
t5 = t5_encoder(T5)
t5_plain = collections.OrderedDict((k, v) for k, v in t5.items() if k != "encoder.embed_tokens.weight")
expected("text_encoder", t5_plain)
flan = collections.OrderedDict(t5_plain)
d, inner = T5["d_model"], T5["heads"] * T5["d_kv"]
flan["decoder.block.0.layer.0.SelfAttention.q.weight"] = rand(inner, d)
flan["decoder.block.0.layer.1.EncDecAttention.k.weight"] = rand(inner, d)
flan["decoder.final_layer_norm.weight"] = rand(d)
flan["lm_head.weight"] = rand(T5["vocab"], d)
save_fixture("conversion/flan_t5", flan)

# Music UNet: Tango (no alphas) and MeLFusion (alpha on every attention; only up-block attn2 alphas are kept).
seeded(42)
music_unet_alphas = unet(UNET, 8, alphas=True)
music_unet = collections.OrderedDict((k, v) for k, v in music_unet_alphas.items() if not k.endswith(".alpha"))
expected("music_unet", collections.OrderedDict(
    (k, v) for k, v in music_unet_alphas.items() if not k.endswith(".alpha") or (k.startswith("up_blocks.") and ".attn2." in k)))
main = collections.OrderedDict([("unet." + k, v) for k, v in music_unet.items()] + [("text_encoder." + k, v) for k, v in t5.items()])
torch.save(main, bin_path("tango_main.bin"))
mf = collections.OrderedDict([("unet." + k, v) for k, v in music_unet_alphas.items()] + [("text_encoder." + k, v) for k, v in t5.items()])
torch.save(mf, bin_path("melfusion_main.bin"))

# Image UNet: diffusers safetensors, and MeLFusion's sd_ckpt.pth wrapping a state dict with (unused) alphas.
seeded(43)
image_unet_alphas = unet(UNET, 4, alphas=True)
image_unet = collections.OrderedDict((k, v) for k, v in image_unet_alphas.items() if not k.endswith(".alpha"))
save_fixture("conversion/sd_unet", image_unet)
torch.save({"unet_state_dict": image_unet_alphas}, bin_path("sd_ckpt.pth"))

# HiFi-GAN: weight-normed generator (jik876 and parametrization names); torch's remove_weight_norm gives the plain
# weights that Tango's VAE bin and diffusers' SpeechT5HifiGan hold.
seeded(44)
generator = Generator(**HIFIGAN).eval()
normed = collections.OrderedDict((k, v.detach().clone()) for k, v in generator.state_dict().items())
torch.save({"generator": normed}, bin_path("jik876_generator.pt"))
torch.save(collections.OrderedDict(
    (k.replace(".weight_g", ".parametrizations.weight.original0").replace(".weight_v", ".parametrizations.weight.original1"), v)
    for k, v in normed.items()), bin_path("parametrized_generator.pt"))
mel = torch.randn(1, HIFIGAN["mels"], 5)
with torch.no_grad():
    audio = generator(mel)
generator.remove_weight_norm()
plain = collections.OrderedDict((k, v.detach().clone()) for k, v in generator.state_dict().items())
expected("vocoder", plain)
save_fixture("conversion/vocoder_forward", {"input.mel": mel, "expected.audio": audio})
speecht5 = collections.OrderedDict((k.replace("ups.", "upsampler.", 1) if k.startswith("ups.") else k, v) for k, v in plain.items())
speecht5["mean"] = torch.zeros(HIFIGAN["mels"])
speecht5["scale"] = torch.ones(HIFIGAN["mels"])
save_fixture("conversion/speecht5_vocoder", speecht5)

# Music VAE: Tango's VAE bin holds the LDM autoencoder and the plain vocoder.
seeded(45)
music_vae = ldm_vae(MUSIC_VAE)
expected("music_vae", music_vae)
torch.save(collections.OrderedDict(list(music_vae.items()) + [("vocoder." + k, v) for k, v in plain.items()]),
           bin_path("tango_vae.bin"))

# Image VAE: diffusers AutoencoderKL, current and older attention names.
seeded(46)
image_vae = ldm_vae(IMAGE_VAE)
expected("image_vae", image_vae)
save_fixture("conversion/sd_vae", diffusers_vae(image_vae, len(IMAGE_VAE["mult"]), legacy=False))
save_fixture("conversion/sd_vae_legacy", diffusers_vae(image_vae, len(IMAGE_VAE["mult"]), legacy=True))

for f in sorted(os.listdir(OUT)):
    size = os.path.getsize(os.path.join(OUT, f))
    assert size < 300_000, f"{f} is {size} bytes"
    print(f"{f}: {size} bytes")

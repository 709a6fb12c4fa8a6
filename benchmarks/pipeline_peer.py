#!/usr/bin/python3
"""PyTorch peer of MusicPipeline (src/MeLFusion.Native/Pipelines/MusicPipeline.cs) for timing one generation.

Loads the SAME weights directory as the engine (model.json, the per-part safetensors, spiece.model) into the
reference models of tools/reference/ and runs the same work with torch 1.13 on 2 threads under no_grad:
T5 on ["", prompt]; with an image: resize to image_size, VAE encode (mean) x scale, DDIM inversion with the image
UNet (SD 2.1 DDIM inverse, v-prediction, leading spacing, steps_offset 1, conditioned on the prompt alone); the
DDPM music loop (SD 2.1 schedule, v-prediction, leading spacing, no offset) with classifier-free guidance over a
batch of 2, the image UNet's up-block attn2 taps fed into the music UNet through the synapse at every step; then
the music VAE decoder and the HiFi-GAN vocoder. Noise is torch's, not Philox: the values differ from the engine's,
the shapes and the work do not. Writes the same JSON as `melfusion generate --timings-json`.

    /usr/bin/python3 benchmarks/pipeline_peer.py --text "..." [--image PNG] [--steps 25] [--seconds 10.24] \
        [--timings-json out.json]
"""
import argparse
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools", "reference"))
import hifigan as hifigan_ref  # noqa: E402
import t5 as t5_ref  # noqa: E402
import unet as unet_ref  # noqa: E402
import vae as vae_ref  # noqa: E402

TRAIN_TIMESTEPS = 1000
_NUMPY_DTYPES = {"F32": np.float32, "F16": np.float16, "I32": np.int32, "I64": np.int64}


def read_safetensors(path):
    """name -> float32 tensor, with only the standard library and numpy (the safetensors package is not installed)."""
    with open(path, "rb") as f:
        data = f.read()
    header_size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + header_size])
    body = memoryview(data)[8 + header_size:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = entry["data_offsets"]
        if entry["dtype"] == "BF16":
            bits = np.frombuffer(body[start:end], dtype=np.uint16).astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(body[start:end], dtype=_NUMPY_DTYPES[entry["dtype"]])
        tensors[name] = torch.from_numpy(array.astype(np.float32).reshape(entry["shape"]))
    return tensors


def load_module(module, weights, part):
    """Loads a part's weights; only the synapse alphas the checkpoint leaves out (they stay 0) may be missing."""
    own = module.state_dict()
    for name, value in weights.items():
        if name in own and own[name].shape != value.shape and own[name].numel() == value.numel():
            weights[name] = value.reshape(own[name].shape)
    missing, unexpected = module.load_state_dict(weights, strict=False)
    missing = [m for m in missing if not m.endswith(".alpha")]
    if missing or unexpected:
        raise SystemExit(f"{part}: weights do not fit the reference model (missing {missing[:5]}, unexpected {unexpected[:5]})")
    return module.eval()


def unet_from_config(c, with_alpha):
    return unet_ref.UNet2DConditionModel(
        in_channels=c["in_channels"], out_channels=c["out_channels"], block_out_channels=c["block_out_channels"],
        layers_per_block=c["layers_per_block"], down_block_types=c["down_block_types"],
        up_block_types=c["up_block_types"], attention_head_dim=c["attention_heads"],
        cross_attention_dim=c["cross_attention_dim"], use_linear_projection=c["use_linear_projection"],
        norm_num_groups=c["norm_groups"], norm_eps=c["norm_eps"], flip_sin_to_cos=c["flip_sin_to_cos"],
        freq_shift=c["freq_shift"], with_alpha=with_alpha)


def vae_from_config(c):
    vae_ref.GROUPS = c["groups"]  # the reference reads its group count from this module global
    return vae_ref.AutoencoderKL(cin=c["in_channels"], ch=c["base_channels"], mult=c["channel_multipliers"],
                                 blocks=c["res_blocks"], z=c["latent_channels"])


class Model:
    def __init__(self, weights_dir):
        with open(os.path.join(weights_dir, "model.json")) as f:
            self.config = c = json.load(f)
        part = lambda name: read_safetensors(os.path.join(weights_dir, name + ".safetensors"))  # noqa: E731
        text = c["text_encoder"]
        self.t5_config = dict(heads=text["heads"], d_kv=text["key_value_dim"], layers=text["layers"],
                              buckets=text["relative_buckets"], max_distance=text["relative_max_distance"],
                              eps=text["epsilon"])
        self.t5_weights = part("text_encoder")
        self.tokenizer = spm.SentencePieceProcessor(model_file=os.path.join(weights_dir, "spiece.model"))
        self.music_unet = load_module(unet_from_config(c["music_unet"], True), part("music_unet"), "music_unet")
        self.image_unet = load_module(unet_from_config(c["image_unet"], False), part("image_unet"), "image_unet")
        self.music_vae = load_module(vae_from_config(c["music_vae"]), part("music_vae"), "music_vae")
        self.image_vae = load_module(vae_from_config(c["image_vae"]), part("image_vae"), "image_vae")
        v = c["vocoder"]
        self.vocoder = load_module(hifigan_ref.Generator(
            v["mel_channels"], v["upsample_rates"], v["upsample_kernel_sizes"], v["upsample_initial_channel"],
            v["resblock_kernel_sizes"], v["resblock_dilations"]), part("vocoder"), "vocoder")

    def encode_text(self, prompts):
        """T5 tokenization as the engine's: pieces (at most max_text_tokens - 1), EOS, pad id 0 to the longest."""
        limit = self.config["max_text_tokens"]
        tokens = [self.tokenizer.encode(p)[:limit - 1] + [self.tokenizer.eos_id()] for p in prompts]
        length = max(len(t) for t in tokens)
        ids = torch.zeros(len(prompts), length, dtype=torch.long)
        mask = torch.zeros(len(prompts), length, dtype=torch.long)
        for row, t in enumerate(tokens):
            ids[row, :len(t)] = torch.tensor(t)
            mask[row, :len(t)] = 1
        return t5_ref.encoder(self.t5_weights, ids, mask, self.t5_config), mask


def sd21_alphas_cumprod():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


def leading_timesteps(steps, offset):
    ratio = TRAIN_TIMESTEPS // steps
    return [i * ratio + offset for i in range(steps)], ratio


def v_to_x0_eps(sample, v, alpha_cumprod):
    a, s = math.sqrt(alpha_cumprod), math.sqrt(1.0 - alpha_cumprod)
    return a * sample - s * v, a * v + s * sample


def ddim_invert(model, latent, text, mask, steps, alphas):
    """SD 2.1 DDIM inverse (set_alpha_to_one false); returns the trajectory [(timestep, latent)] from t = 0."""
    timesteps, ratio = leading_timesteps(steps, offset=1)
    trajectory = [(0, latent)]
    for t in timesteps:
        prediction, _ = model.image_unet(latent, torch.tensor([float(t)]), text, mask)
        source = min(t - ratio, TRAIN_TIMESTEPS - 1)
        x0, eps = v_to_x0_eps(latent, prediction, float(alphas[source] if source >= 0 else alphas[0]))
        target = float(alphas[t])
        latent = math.sqrt(target) * x0 + math.sqrt(1.0 - target) * eps
        trajectory.append((t, latent))
    return trajectory


def ddpm_step(v, t, ratio, sample, alphas, generator):
    """diffusers' DDPMScheduler.step (v-prediction, fixed_small variance, no clipping)."""
    prev = t - ratio
    a_t, a_prev = float(alphas[t]), float(alphas[prev]) if prev >= 0 else 1.0
    x0, _ = v_to_x0_eps(sample, v, a_t)
    current_alpha = a_t / a_prev
    current_beta = 1.0 - current_alpha
    mean = (math.sqrt(a_prev) * current_beta / (1.0 - a_t)) * x0 + (math.sqrt(current_alpha) * (1.0 - a_prev) / (1.0 - a_t)) * sample
    if t == 0:
        return mean
    variance = max((1.0 - a_prev) / (1.0 - a_t) * current_beta, 1e-20)
    return mean + math.sqrt(variance) * torch.randn(sample.shape, generator=generator)


def latent_frames(config, seconds):
    mel_frames = math.ceil(seconds * config["mel_frames_per_second"])
    factor = config["music_vae"]["downsampling"] * config["music_unet"]["downsample_factor"]
    return (mel_frames + factor - 1) // factor * config["music_unet"]["downsample_factor"]


def image_pixels(path, size):
    """RGB resized to size x size (antialiased bilinear), in [-1, 1], [1, 3, size, size]."""
    picture = Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR)
    array = np.asarray(picture, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def generate(model, prompt, image_path, seconds, steps, guidance, inversion_steps, seed):
    c = model.config
    generator = torch.Generator().manual_seed(seed)
    stages = []
    clock = time.perf_counter()

    def lap(stage):
        nonlocal clock
        now = time.perf_counter()
        stages.append((stage, now - clock))
        clock = now

    text, mask = model.encode_text(["", prompt])
    lap("text encoder")

    frames, bins = latent_frames(c, seconds), c["vocoder"]["mel_channels"] // c["music_vae"]["downsampling"]
    latent = torch.randn(1, c["music_unet"]["in_channels"], frames, bins, generator=generator)  # init sigma 1
    alphas = sd21_alphas_cumprod()
    trajectory = None
    if image_path is not None:
        moments = model.image_vae.quant_conv(model.image_vae.encoder(image_pixels(image_path, c["image_size"])))
        image_latent = moments.chunk(2, dim=1)[0] * c["image_vae"]["scale_factor"]
        trajectory = ddim_invert(model, image_latent, text[1:], mask[1:], inversion_steps, alphas)
        lap("image encode + DDIM inversion")

    timesteps, ratio = leading_timesteps(steps, offset=0)
    for t in reversed(timesteps):
        taps = None
        if trajectory is not None:
            image_t, image_x = min(trajectory, key=lambda entry: abs(entry[0] - t))
            # The image UNet sees the T5 states without a mask, as the engine (and the released code) calls it.
            _, taps = model.image_unet(torch.cat([image_x, image_x]), torch.tensor([float(image_t)] * 2), text)
        prediction, _ = model.music_unet(torch.cat([latent, latent]), torch.tensor([float(t)] * 2), text, mask, taps)
        unconditional, conditional = prediction.chunk(2)
        guided = unconditional + guidance * (conditional - unconditional)
        latent = ddpm_step(guided, t, ratio, latent, alphas, generator)
    lap("diffusion")

    vae = c["music_vae"]
    mel = model.music_vae.decoder(model.music_vae.post_quant_conv(latent / vae["scale_factor"]))  # [1, 1, time, mels]
    lap("vae decoder")
    audio = model.vocoder(mel[:, 0].transpose(1, 2)).flatten()
    lap("vocoder")
    samples = min(audio.numel(), round(seconds * c["sample_rate"]))
    return audio[:samples], stages


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", required=True)
    parser.add_argument("--image")
    parser.add_argument("--seconds", type=float, default=10.24)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--guidance", type=float, default=3.0)
    parser.add_argument("--inversion-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default=os.path.join(ROOT, "weights"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timings-json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = Model(args.weights)
    with torch.no_grad():
        audio, stages = generate(model, args.text, args.image, args.seconds, args.steps, args.guidance,
                                 args.inversion_steps, args.seed)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB
    total = sum(s for _, s in stages)
    diffusion = dict(stages)["diffusion"]
    for stage, seconds in stages:
        print(f"{stage:32s} {seconds:8.3f} s")
    print(f"{'total':32s} {total:8.3f} s   ({audio.numel() / model.config['sample_rate']:.2f} s of audio, "
          f"peak RSS {peak_mib:.0f} MiB)")
    if args.timings_json:
        with open(args.timings_json, "w") as f:
            json.dump({"device": f"pytorch {torch.__version__} cpu, {args.threads} threads", "steps": args.steps,
                       "audio_seconds": audio.numel() / model.config["sample_rate"], "image": args.image is not None,
                       "synapse": "Paper", "stages": dict(stages), "unet_step": diffusion / args.steps,
                       "total": total, "peak_rss_mib": peak_mib}, f, indent=2)


if __name__ == "__main__":
    main()

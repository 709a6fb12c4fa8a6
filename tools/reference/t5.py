"""A T5 encoder (as HF T5EncoderModel, FLAN-T5 flavour: gated-GELU feed-forward) written from the standard T5
formulas, tiny and with random weights under the real checkpoint names; its hidden states for a padded batch of
prompts tokenized with the test SentencePiece model; and the relative-position bucket function on its own.

transformers is not installed, so the model is spelled out here; every formula follows modeling_t5.py:
- T5LayerNorm: x * rsqrt(mean(x^2) + eps) * weight, variance in f32, no mean subtraction, no bias;
- attention: no 1/sqrt(d) scaling; the bidirectional bucketed relative-position bias of layer 0 is shared by all
  layers, and the key padding mask enters as (1 - mask) * finfo(f32).min added to that bias;
- feed-forward: wo(gelu_new(wi_0 x) * wi_1 x), gelu_new the tanh approximation.
"""
import math
import os

import numpy as np
import sentencepiece as spm
import torch
import torch.nn.functional as F

from common import FIXTURES, save_fixture, seeded

CONFIG = dict(vocab=200, d_model=40, d_kv=12, heads=4, layers=3, d_ff=72, buckets=32, max_distance=128, eps=1e-6)


def relative_position_bucket(relative_position, num_buckets=32, max_distance=128):
    """HF T5Attention._relative_position_bucket with bidirectional=True, line for line."""
    relative_buckets = 0
    num_buckets //= 2
    relative_buckets += (relative_position > 0).to(torch.long) * num_buckets
    relative_position = torch.abs(relative_position)
    max_exact = num_buckets // 2
    is_small = relative_position < max_exact
    relative_position_if_large = max_exact + (
        torch.log(relative_position.float() / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).to(torch.long)
    relative_position_if_large = torch.min(
        relative_position_if_large, torch.full_like(relative_position_if_large, num_buckets - 1))
    relative_buckets += torch.where(is_small, relative_position, relative_position_if_large)
    return relative_buckets


def layer_norm(x, weight, eps):
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def encoder(w, ids, mask, c):
    batch, length = ids.shape
    heads, d_kv = c["heads"], c["d_kv"]
    x = F.embedding(ids, w["shared.weight"])

    context = torch.arange(length)[:, None]
    memory = torch.arange(length)[None, :]
    buckets = relative_position_bucket(memory - context, c["buckets"], c["max_distance"])
    rel = w["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    position_bias = F.embedding(buckets, rel).permute(2, 0, 1).unsqueeze(0)
    extended_mask = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    position_bias = position_bias + extended_mask

    def split(t):
        return t.view(batch, length, heads, d_kv).transpose(1, 2)

    for i in range(c["layers"]):
        p = f"encoder.block.{i}.layer."
        h = layer_norm(x, w[p + "0.layer_norm.weight"], c["eps"])
        q = split(F.linear(h, w[p + "0.SelfAttention.q.weight"]))
        k = split(F.linear(h, w[p + "0.SelfAttention.k.weight"]))
        v = split(F.linear(h, w[p + "0.SelfAttention.v.weight"]))
        scores = torch.matmul(q, k.transpose(3, 2)) + position_bias
        attn = torch.softmax(scores.float(), dim=-1).type_as(scores)
        out = torch.matmul(attn, v).transpose(1, 2).contiguous().view(batch, length, heads * d_kv)
        x = x + F.linear(out, w[p + "0.SelfAttention.o.weight"])

        h = layer_norm(x, w[p + "1.layer_norm.weight"], c["eps"])
        gated = gelu_new(F.linear(h, w[p + "1.DenseReluDense.wi_0.weight"])) * F.linear(h, w[p + "1.DenseReluDense.wi_1.weight"])
        x = x + F.linear(gated, w[p + "1.DenseReluDense.wo.weight"])
    return layer_norm(x, w["encoder.final_layer_norm.weight"], c["eps"])


def random_weights(c):
    """HF's T5 initialisation scales, with norm weights and the position bias spread out so that both matter."""
    d, inner, ff = c["d_model"], c["heads"] * c["d_kv"], c["d_ff"]

    def randn(*shape, std):
        return torch.randn(*shape) * std

    w = {"shared.weight": randn(c["vocab"], d, std=1.0)}
    for i in range(c["layers"]):
        p = f"encoder.block.{i}.layer."
        w[p + "0.SelfAttention.q.weight"] = randn(inner, d, std=(d * c["d_kv"]) ** -0.5)
        w[p + "0.SelfAttention.k.weight"] = randn(inner, d, std=d ** -0.5)
        w[p + "0.SelfAttention.v.weight"] = randn(inner, d, std=d ** -0.5)
        w[p + "0.SelfAttention.o.weight"] = randn(d, inner, std=inner ** -0.5)
        if i == 0:
            w[p + "0.SelfAttention.relative_attention_bias.weight"] = randn(c["buckets"], c["heads"], std=1.0)
        w[p + "0.layer_norm.weight"] = 1.0 + randn(d, std=0.2)
        w[p + "1.DenseReluDense.wi_0.weight"] = randn(ff, d, std=d ** -0.5)
        w[p + "1.DenseReluDense.wi_1.weight"] = randn(ff, d, std=d ** -0.5)
        w[p + "1.DenseReluDense.wo.weight"] = randn(d, ff, std=ff ** -0.5)
        w[p + "1.layer_norm.weight"] = 1.0 + randn(d, std=0.2)
    w["encoder.final_layer_norm.weight"] = 1.0 + randn(d, std=0.2)
    return w


def main():
    seeded(55)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(FIXTURES, "tokenizer", "spiece.model"))
    assert sp.get_piece_size() == CONFIG["vocab"]
    prompts = [
        "A calm jazz piece with piano and double bass.",
        "An energetic electronic track: a bright synthesizer arpeggio over punchy drums and a deep bass line at 128 BPM.",
        "",
    ]
    # T5 tokenization: pieces, then EOS; padding="longest" with pad id 0 and mask 0.
    tokenized = [sp.encode(p) + [sp.eos_id()] for p in prompts]
    length = max(len(t) for t in tokenized)
    ids = torch.zeros(len(prompts), length, dtype=torch.long)
    mask = torch.zeros(len(prompts), length, dtype=torch.long)
    for row, tokens in enumerate(tokenized):
        ids[row, :len(tokens)] = torch.tensor(tokens)
        mask[row, :len(tokens)] = 1

    weights = random_weights(CONFIG)
    with torch.no_grad():
        hidden = encoder(weights, ids, mask, CONFIG)

    relative = torch.arange(-200, 201)
    tensors = dict(weights)
    tensors["input.ids"] = ids.to(torch.int32)
    tensors["input.mask"] = mask.to(torch.int32)
    tensors["expected.hidden"] = hidden
    tensors["buckets.relative_position"] = relative.to(torch.int32)
    tensors["buckets.t5"] = relative_position_bucket(relative, 32, 128).to(torch.int32)
    tensors["buckets.small"] = relative_position_bucket(relative, 10, 20).to(torch.int32)
    meta = {k: v for k, v in CONFIG.items()}
    meta.update({f"prompt{i}": p for i, p in enumerate(prompts)})
    meta["prompts"] = len(prompts)
    save_fixture("t5", tensors, meta)
    print("sequence length", length, "hidden std", float(hidden.std()))


if __name__ == "__main__":
    main()

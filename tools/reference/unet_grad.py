"""Gradient fixture of a whole tiny music UNet with MeLFusion's visual synapse (unet.UNet2DConditionModel), for the
engine's autograd through UNet2DConditionModel with trainable alphas.

The model: two levels (a cross-attention down block, a plain down block; a plain up block, a cross-attention up block
with two attentions), linear projections, a key padding mask, and synapse features on both up-block attentions
(one pooled in 2-D, one over tokens only) mixed in through nonzero alphas. The loss is the diffusion training loss
(Losses.WeightedMse): per example the mean squared error between the prediction and a target v, weighted by w_b,
averaged over the batch. Expected: torch autograd in float64 of that loss with respect to every parameter the model
uses (the alphas included) and to the noisy sample.

Eight channels per level: with four, the layer norms over four channels of a token amplify rounding so much that torch's
own float32 gradients differ from float64 by 2e-4 of their scale (with eight, by under 1e-5).

Weights are F16-exact (stored as F16 under the prefix "unet."), inputs f32; gradients are stored as "grad.<name>".
Alphas of attentions without a synapse feature take no part in the forward pass and are left out.
"""
import json

import torch

from common import save_fixture, seeded
from unet import UNet2DConditionModel, f16_exact_

TINY = dict(in_channels=2, out_channels=2, block_out_channels=[8, 8], layers_per_block=1,
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"], up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
            attention_head_dim=[2, 2], cross_attention_dim=6, use_linear_projection=True, norm_num_groups=2,
            upcast_attention=True)
ALPHAS = {(1, 0): 2.5, (1, 1): -1.75}


def weighted_mse(prediction, target, weights):
    batch = prediction.shape[0]
    per_example = ((prediction - target) ** 2).reshape(batch, -1)
    return (per_example.sum(dim=1) * weights).sum() / per_example.numel()


def main():
    gen = seeded(4242)
    batch, tokens = 2, 5
    model = UNet2DConditionModel(**TINY, with_alpha=True)
    f16_exact_(model, gen)
    with torch.no_grad():
        for (block, attention), alpha in ALPHAS.items():
            model.up_blocks[block].attentions[attention].transformer_blocks[0].attn2.alpha.fill_(alpha)
    model = model.double()

    inputs = {
        "sample": torch.randn(batch, 2, 6, 4, generator=gen),
        "timestep": torch.tensor([981.0, 40.0]),
        "context": torch.randn(batch, tokens, 6, generator=gen),
        "target": torch.randn(batch, 2, 6, 4, generator=gen),
        "weight": torch.tensor([0.75, 1.5]),
        "feature_1_0": torch.randn(batch, 7, 10, generator=gen),
        "feature_1_1": torch.randn(batch, 3, 6, generator=gen),
    }
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.int32)
    x = {k: v.double() for k, v in inputs.items()}
    sample = x["sample"].requires_grad_()
    externals = {(1, 0): x["feature_1_0"], (1, 1): x["feature_1_1"]}
    prediction, _ = model(sample, x["timestep"], x["context"], mask, externals)
    loss = weighted_mse(prediction, x["target"], x["weight"])
    loss.backward()

    used = {name: p for name, p in model.named_parameters() if p.grad is not None}
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert all(name.endswith(".alpha") for name in unused), unused
    tensors = {"unet." + name: p.detach().half() for name, p in used.items()}
    tensors.update({f"input.{k}": v for k, v in inputs.items()})
    tensors["input.mask"] = mask
    tensors["expected.loss"] = loss.detach().float().reshape(1)
    tensors["grad.input.sample"] = sample.grad.float()
    tensors.update({"grad.unet." + name: p.grad.float() for name, p in used.items()})
    save_fixture("unet_grad", tensors, {"config": json.dumps(TINY)})


if __name__ == "__main__":
    main()

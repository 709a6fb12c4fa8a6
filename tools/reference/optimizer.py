"""Fixtures for the optimizer ops: torch.optim.AdamW steps with clip_grad_norm_ and transformers-style learning rate
schedules, an EMA of weights, and Σ x².

The schedule lambdas are transformers' get_constant_schedule_with_warmup, get_linear_schedule_with_warmup and
get_cosine_schedule_with_warmup (transformers is not installed; the formulas are copied from its optimization.py), run
through torch's LambdaLR exactly as transformers builds them.
"""
import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from common import save_fixture, seeded

PARAMETER_SHAPES = [(4, 5), (7,), (2, 3, 3)]
STEPS = 5
SCHEDULE_STEPS = 16


def constant_with_warmup(num_warmup_steps):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1.0, num_warmup_steps))
        return 1.0
    return lr_lambda


def linear_with_warmup(num_warmup_steps, num_training_steps):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        return max(0.0, float(num_training_steps - current_step) / float(max(1, num_training_steps - num_warmup_steps)))
    return lr_lambda


def cosine_with_warmup(num_warmup_steps, num_training_steps, num_cycles=0.5):
    def lr_lambda(current_step):
        if current_step < num_warmup_steps:
            return float(current_step) / float(max(1, num_warmup_steps))
        progress = float(current_step - num_warmup_steps) / float(max(1, num_training_steps - num_warmup_steps))
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))
    return lr_lambda


SCHEDULES = {
    "constant": lambda warmup, training, cycles: constant_with_warmup(warmup),
    "linear": lambda warmup, training, cycles: linear_with_warmup(warmup, training),
    "cosine": lambda warmup, training, cycles: cosine_with_warmup(warmup, training, cycles),
}


def meta_float(value):
    """Metadata text C#'s double.Parse reads (it spells infinity 'Infinity')."""
    return "Infinity" if value == math.inf else repr(value)


def adamw_case(gen, name, *, peak, schedule, warmup, training, cycles, betas, eps, weight_decay, max_grad_norm,
               grad_scales):
    params = [torch.randn(*shape, generator=gen).requires_grad_() for shape in PARAMETER_SHAPES]
    initial = torch.cat([p.detach().reshape(-1) for p in params])
    optimizer = torch.optim.AdamW(params, lr=peak, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    scheduler = LambdaLR(optimizer, SCHEDULES[schedule](warmup, training, cycles))
    grads, weights, first, second, rates, norms = [], [], [], [], [], []
    for step in range(STEPS):
        flat = torch.randn(initial.numel(), generator=gen) * grad_scales[step]
        grads.append(flat)
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].reshape(p.shape).clone()
            offset += p.numel()
        norms.append(flat.double().norm().item())
        if max_grad_norm != math.inf:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
        weights.append(torch.cat([p.detach().reshape(-1) for p in params]))
        first.append(torch.cat([optimizer.state[p]["exp_avg"].reshape(-1) for p in params]))
        second.append(torch.cat([optimizer.state[p]["exp_avg_sq"].reshape(-1) for p in params]))
    clipped = [step for step, norm in enumerate(norms) if norm > max_grad_norm]
    if max_grad_norm != math.inf:
        assert 0 < len(clipped) < STEPS, f"{name}: want clipped and unclipped steps, norms {norms}"
    tensors = {
        f"{name}.initial": initial,
        f"{name}.grads": torch.stack(grads),
        f"{name}.lr": torch.tensor(rates, dtype=torch.float64),
        f"{name}.weights": torch.stack(weights),
        f"{name}.m": torch.stack(first),
        f"{name}.v": torch.stack(second),
    }
    meta = {
        f"{name}.peak": meta_float(peak),
        f"{name}.kind": schedule,
        f"{name}.warmup": warmup,
        f"{name}.training": training,
        f"{name}.cycles": meta_float(cycles),
        f"{name}.beta1": meta_float(betas[0]),
        f"{name}.beta2": meta_float(betas[1]),
        f"{name}.eps": meta_float(eps),
        f"{name}.weight_decay": meta_float(weight_decay),
        f"{name}.max_grad_norm": meta_float(max_grad_norm),
        f"{name}.clipped_steps": ",".join(map(str, clipped)),
    }
    return tensors, meta


def adamw_cases(gen):
    tensors, meta = {}, {}
    # Gradient norms ~6.7 x scale against a max norm of 1: steps 1 and 3 are clipped, 0, 2 and 4 are not.
    for t, m in [
        adamw_case(gen, "clipped", peak=1e-2, schedule="cosine", warmup=2, training=6, cycles=0.5, betas=(0.9, 0.999),
                   eps=1e-8, weight_decay=0.1, max_grad_norm=1.0, grad_scales=[0.05, 1.0, 0.1, 2.0, 0.02]),
        adamw_case(gen, "unclipped", peak=3e-2, schedule="linear", warmup=1, training=5, cycles=0.5, betas=(0.8, 0.95),
                   eps=1e-6, weight_decay=0.0, max_grad_norm=math.inf, grad_scales=[1.0, 0.3, 3.0, 0.01, 1.0]),
        adamw_case(gen, "constant", peak=5e-3, schedule="constant", warmup=0, training=0, cycles=0.5,
                   betas=(0.95, 0.99), eps=1e-8, weight_decay=0.02, max_grad_norm=2.0,
                   grad_scales=[0.1, 0.5, 1.0, 0.2, 2.0]),
    ]:
        tensors.update(t)
        meta.update(m)
    return tensors, meta


def schedule_cases():
    tensors, meta = {}, {}
    # name: (kind, peak, warmup, training, cycles); evaluated past the end of training, as LambdaLR would be.
    for name, (kind, peak, warmup, training, cycles) in {
        "constant_plain": ("constant", 1e-3, 0, 0, 0.5),
        "constant_warmup": ("constant", 2e-4, 3, 0, 0.5),
        "linear_warmup": ("linear", 1e-3, 3, 10, 0.5),
        "linear_plain": ("linear", 5e-4, 0, 7, 0.5),
        "cosine_warmup": ("cosine", 1e-3, 3, 10, 0.5),
        "cosine_plain": ("cosine", 3e-4, 0, 12, 0.5),
        "cosine_cycles": ("cosine", 1e-3, 2, 9, 1.5),
    }.items():
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=peak)
        scheduler = LambdaLR(optimizer, SCHEDULES[kind](warmup, training, cycles))
        rates = []
        for _ in range(SCHEDULE_STEPS):
            rates.append(scheduler.get_last_lr()[0])
            optimizer.step()
            scheduler.step()
        tensors[f"{name}.lr"] = torch.tensor(rates, dtype=torch.float64)
        meta.update({f"{name}.kind": kind, f"{name}.peak": meta_float(peak), f"{name}.warmup": warmup,
                     f"{name}.training": training, f"{name}.cycles": meta_float(cycles)})
    return tensors, meta


def ema_cases(gen):
    tensors, meta = {}, {}
    for name, decay in {"slow": 0.999, "fast": 0.75}.items():
        ema = torch.randn(37, generator=gen)
        weights = torch.randn(3, 37, generator=gen)
        tensors[f"{name}.initial"] = ema.clone()
        tensors[f"{name}.weights"] = weights
        expected = []
        for w in weights:
            ema.mul_(decay).add_(w, alpha=1 - decay)
            expected.append(ema.clone())
        tensors[f"{name}.out"] = torch.stack(expected)
        meta[f"{name}.decay"] = meta_float(decay)
    return tensors, meta


def sum_of_squares_cases(gen):
    tensors = {}
    for name, shape in {"vector": (3001,), "matrix": (17, 23), "single": (1,)}.items():
        x = torch.randn(*shape, generator=gen) * 3
        tensors[f"{name}.x"] = x
        tensors[f"{name}.out"] = (x.double() ** 2).sum().reshape(1).float()
    return tensors


if __name__ == "__main__":
    gen = seeded(31)
    tensors, meta = adamw_cases(gen)
    save_fixture("adamw", tensors, meta)
    tensors, meta = schedule_cases()
    save_fixture("lr_schedules", tensors, meta)
    tensors, meta = ema_cases(gen)
    save_fixture("ema_update", tensors, meta)
    save_fixture("sum_of_squares", sum_of_squares_cases(gen))

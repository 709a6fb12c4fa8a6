"""Diffusion scheduler reference: diffusers' DDPM, DDIM, DDIM-inverse and DPM-Solver++(2M) math, re-derived in torch.

Written from the formulas (DDPM eq. 7, DDIM eq. 12, DPM-Solver++ 2M midpoint) with diffusers' conventions: f32
schedule tensors (torch.linspace, torch.cumprod), f32 scalar arithmetic on 0-d tensors, numpy timestep grids. Nothing
here is shared with the C# code. Writes tests/fixtures/schedulers.safetensors:
  sched_<kind>.*           betas and alphas_cumprod of the three beta schedules
  ts_<n>.timesteps         timestep grids (meta: scheduler, spacing, offset, steps)
  inputs.*                 one sample / model output / noise triple shared by the single-step cases
  step_<n>.expected        one step (meta: scheduler, prediction, steps, timestep, offset, eta, set_alpha_to_one)
  loop_<n>.*               full sampling loops with the fake model m(x) = 0.1 x + c
  inversion_<pred>.*       DDIM inversion then DDIM sampling, 10 steps each, SD 2.1 config
  forward.*, min_snr.*, cfg.*   add_noise / velocity, Min-SNR-5 weights, classifier-free guidance
"""
import math

import numpy as np
import torch

from common import save_fixture, seeded

T = 1000
SIZE = 105  # 3 x 5 x 7: odd, so nothing divides evenly


def betas_for(kind, start, end):
    if kind == "linear":
        return torch.linspace(start, end, T, dtype=torch.float32)
    if kind == "scaled_linear":
        return torch.linspace(start ** 0.5, end ** 0.5, T, dtype=torch.float32) ** 2

    def alpha_bar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    return torch.tensor([min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999) for i in range(T)], dtype=torch.float32)


SD21 = torch.cumprod(1.0 - betas_for("scaled_linear", 0.00085, 0.012), dim=0)
ONE = torch.tensor(1.0)


# ---- timestep grids (numpy, as diffusers builds them) ----

def trailing(n):
    # diffusers: np.arange(T, 0, -T/n).round() - 1; the float arange can add a spurious last element, keep n.
    return (np.arange(T, 0, -T / n).round().astype(np.int64) - 1)[:n]


def grid(scheduler, spacing, n, offset):
    if scheduler in ("ddpm", "ddim", "inverse"):
        if spacing == "leading":
            ts = (np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64) + offset
        elif spacing == "linspace":
            ts = np.linspace(0, T - 1, n).round()[::-1].astype(np.int64)
        else:
            ts = trailing(n)
        return ts[::-1].copy() if scheduler == "inverse" else ts.copy()
    if spacing == "linspace":
        return np.linspace(0, T - 1, n + 1).round()[::-1][:-1].astype(np.int64).copy()
    if spacing == "leading":
        return (np.arange(0, n + 1) * (T // (n + 1))).round()[::-1][:-1].astype(np.int64).copy() + offset
    return trailing(n)


# ---- prediction conversions ----

def original_and_noise(prediction, m, x, alpha_prod):
    beta_prod = 1 - alpha_prod
    if prediction == "epsilon":
        return (x - beta_prod ** 0.5 * m) / alpha_prod ** 0.5, m
    if prediction == "sample":
        return m, (x - alpha_prod ** 0.5 * m) / beta_prod ** 0.5
    return alpha_prod ** 0.5 * x - beta_prod ** 0.5 * m, alpha_prod ** 0.5 * m + beta_prod ** 0.5 * x


# ---- steps ----

def ddpm_step(prediction, n, m, t, x, noise):
    prev = t - T // n
    a_t, a_prev = SD21[t], SD21[prev] if prev >= 0 else ONE
    b_t, b_prev = 1 - a_t, 1 - a_prev
    cur_a = a_t / a_prev
    cur_b = 1 - cur_a
    x0, _ = original_and_noise(prediction, m, x, a_t)
    out = (a_prev ** 0.5 * cur_b / b_t) * x0 + (cur_a ** 0.5 * b_prev / b_t) * x
    if t > 0:
        out = out + torch.clamp(b_prev / b_t * cur_b, min=1e-20) ** 0.5 * noise
    return out


def ddim_step(prediction, n, m, t, x, noise, eta, set_alpha_to_one):
    prev = t - T // n
    a_t = SD21[t]
    a_prev = SD21[prev] if prev >= 0 else (ONE if set_alpha_to_one else SD21[0])
    x0, eps = original_and_noise(prediction, m, x, a_t)
    variance = ((1 - a_prev) / (1 - a_t)) * (1 - a_t / a_prev)
    std = eta * variance ** 0.5
    out = a_prev ** 0.5 * x0 + (1 - a_prev - std ** 2) ** 0.5 * eps
    if eta > 0:
        out = out + std * noise
    return out


def inverse_step(prediction, n, m, t, x, set_alpha_to_one):
    source = min(t - T // n, T - 1)
    a_source = SD21[source] if source >= 0 else (ONE if set_alpha_to_one else SD21[0])
    a_target = SD21[t]
    x0, eps = original_and_noise(prediction, m, x, a_source)
    return a_target ** 0.5 * x0 + (1 - a_target) ** 0.5 * eps


class DpmSolver2M:
    """dpmsolver++, order 2, midpoint, lower_order_final; sigmas in diffusers' (1 - a)/a parametrisation."""

    def __init__(self, prediction, spacing, n, offset, final_sigma="zero", lower_order_final=True):
        self.prediction, self.final_sigma, self.lower_order_final = prediction, final_sigma, lower_order_final
        self.timesteps = grid("dpm", spacing, n, offset)
        all_sigmas = np.array(((1 - SD21) / SD21) ** 0.5)
        sigmas = np.interp(self.timesteps, np.arange(0, len(all_sigmas)), all_sigmas)
        last = 0.0 if final_sigma == "zero" else float(((1 - SD21[0]) / SD21[0]) ** 0.5)
        self.sigmas = torch.from_numpy(np.concatenate([sigmas, [last]]).astype(np.float32))
        self.outputs = [None, None]
        self.lower_order_nums = 0
        self.index = 0

    def alpha_sigma(self, i):
        alpha = 1 / ((self.sigmas[i] ** 2 + 1) ** 0.5)
        return alpha, self.sigmas[i] * alpha

    def step(self, m, t, x):
        assert self.timesteps[self.index] == t
        n = len(self.timesteps)
        final = self.index == n - 1 and (self.final_sigma == "zero" or (self.lower_order_final and n < 15))
        alpha_s, sigma_s = self.alpha_sigma(self.index)
        if self.prediction == "epsilon":
            x0 = (x - sigma_s * m) / alpha_s
        elif self.prediction == "sample":
            x0 = m
        else:
            x0 = alpha_s * x - sigma_s * m
        self.outputs = [self.outputs[1], x0]
        alpha_t, sigma_t = self.alpha_sigma(self.index + 1)
        lam_t = torch.log(alpha_t) - torch.log(sigma_t)
        lam_s = torch.log(alpha_s) - torch.log(sigma_s)
        h = lam_t - lam_s
        if self.lower_order_nums < 1 or final:
            out = (sigma_t / sigma_s) * x - (alpha_t * (torch.exp(-h) - 1.0)) * x0
        else:
            alpha_s1, sigma_s1 = self.alpha_sigma(self.index - 1)
            lam_s1 = torch.log(alpha_s1) - torch.log(sigma_s1)
            r0 = (lam_s - lam_s1) / h
            d0, d1 = x0, (1.0 / r0) * (x0 - self.outputs[0])
            out = (sigma_t / sigma_s) * x - (alpha_t * (torch.exp(-h) - 1.0)) * d0 \
                - 0.5 * (alpha_t * (torch.exp(-h) - 1.0)) * d1
        self.lower_order_nums = min(self.lower_order_nums + 1, 2)
        self.index += 1
        return out


def fake_model(x, c):
    return 0.1 * x + c


def main():
    g = seeded(1234)
    tensors, meta = {}, {}

    for kind, start, end in [("linear", 0.0001, 0.02), ("scaled_linear", 0.00085, 0.012), ("squaredcos_cap_v2", 0, 0)]:
        betas = betas_for(kind, start, end)
        tensors[f"sched_{kind}.betas"] = betas
        tensors[f"sched_{kind}.alphas_cumprod"] = torch.cumprod(1.0 - betas, dim=0)
        meta.update({f"sched_{kind}.kind": kind, f"sched_{kind}.start": start, f"sched_{kind}.end": end})

    # Grids: every scheduler x spacing x a few step counts, with and without steps_offset. 20 and 16 exercise numpy's
    # round-half-to-even (linspace 499.5 -> 500, trailing 937.5 -> 938).
    k = 0
    for scheduler in ("ddpm", "ddim", "inverse", "dpm"):
        for spacing in ("leading", "linspace", "trailing"):
            if scheduler == "inverse" and spacing == "linspace":
                continue
            for n in (1, 3, 7, 10, 16, 20, 50, 200, 999):
                for offset in ((0, 1) if spacing == "leading" else (0,)):
                    timesteps = grid(scheduler, spacing, n, offset)
                    if timesteps.max() >= T:  # an offset past the last training step; the C# side rejects it
                        continue
                    tensors[f"ts_{k}.timesteps"] = timesteps.astype(np.int32)
                    meta.update({f"ts_{k}.scheduler": scheduler, f"ts_{k}.spacing": spacing,
                                 f"ts_{k}.offset": offset, f"ts_{k}.steps": n})
                    k += 1

    sample = torch.randn(SIZE, generator=g)
    model_output = torch.randn(SIZE, generator=g)
    noise = torch.randn(SIZE, generator=g)
    tensors.update({"inputs.sample": sample, "inputs.model_output": model_output, "inputs.noise": noise})

    k = 0

    def describe(case, params):
        # Every case names every scheduler option, diffusers' SD 2.1 defaults where a case leaves one out.
        full = dict(spacing="leading", offset=0, eta=0.0, set_alpha_to_one=False, final_sigma="zero",
                    lower_order_final=True)
        full.update(params)
        meta.update({f"{case}.{name}": value for name, value in full.items()})

    def add_step(expected, **params):
        nonlocal k
        tensors[f"step_{k}.expected"] = expected
        describe(f"step_{k}", params)
        k += 1

    for prediction in ("epsilon", "v_prediction", "sample"):
        # DDPM, 50 steps of the music config (offset 0): first, middle, the t = 1..stride corner and t = 0 (no noise).
        for t in (980, 500, 20, 0):
            add_step(ddpm_step(prediction, 50, model_output, t, sample, noise),
                     scheduler="ddpm", prediction=prediction, steps=50, timestep=t)
        # DDPM with steps_offset 1: t = 1 steps to t' < 0 (ᾱ' = 1, variance clamped to 1e-20).
        add_step(ddpm_step(prediction, 50, model_output, 1, sample, noise),
                 scheduler="ddpm", prediction=prediction, steps=50, timestep=1)
        for eta in (0.0, 0.7):
            for set_alpha_to_one in (False, True):
                for t in (981, 461, 1):
                    add_step(ddim_step(prediction, 50, model_output, t, sample, noise, eta, set_alpha_to_one),
                             scheduler="ddim", prediction=prediction, steps=50, timestep=t, eta=eta,
                             set_alpha_to_one=set_alpha_to_one)
        for set_alpha_to_one in (False, True):
            for t in (1, 501, 981):
                if prediction == "sample" and set_alpha_to_one and t == 1:
                    continue  # from ᾱ = 1 there is no noise to recover: ε = (x - x0) / 0
                add_step(inverse_step(prediction, 50, model_output, t, sample, set_alpha_to_one),
                         scheduler="inverse", prediction=prediction, steps=50, timestep=t,
                         set_alpha_to_one=set_alpha_to_one)

    c = 0.3 * torch.randn(SIZE, generator=g)
    x_init = torch.randn(SIZE, generator=g)
    tensors.update({"loop.c": c, "loop.x_init": x_init})
    k = 0

    def add_loop(name, timesteps, step, steps_noise=None, **params):
        nonlocal k
        x = x_init.clone()
        for i, t in enumerate(timesteps):
            x = step(fake_model(x, c), int(t), x, None if steps_noise is None else steps_noise[i])
        tensors[f"loop_{k}.expected"] = x
        if steps_noise is not None:
            tensors[f"loop_{k}.noise"] = steps_noise
        describe(f"loop_{k}", dict(params, scheduler=name))
        k += 1

    for prediction in ("epsilon", "v_prediction"):
        steps_noise = torch.randn(10, SIZE, generator=g)
        add_loop("ddpm", grid("ddpm", "leading", 10, 0),
                 lambda m, t, x, z: ddpm_step(prediction, 10, m, t, x, z), steps_noise,
                 prediction=prediction, steps=10, offset=0)
        add_loop("ddim", grid("ddim", "leading", 10, 1),
                 lambda m, t, x, z: ddim_step(prediction, 10, m, t, x, z, 0.0, False),
                 prediction=prediction, steps=10, offset=1, eta=0.0, set_alpha_to_one=False)
        add_loop("ddim", grid("ddim", "trailing", 10, 0),
                 lambda m, t, x, z: ddim_step(prediction, 10, m, t, x, z, 1.0, True), steps_noise,
                 prediction=prediction, steps=10, offset=0, eta=1.0, set_alpha_to_one=True, spacing="trailing")
        for n, spacing, final_sigma, lower_order_final in ((10, "linspace", "zero", True), (20, "linspace", "zero", True),
                                                           (10, "leading", "sigma_min", True),
                                                           (10, "trailing", "sigma_min", False)):
            solver = DpmSolver2M(prediction, spacing, n, 1, final_sigma, lower_order_final)
            add_loop("dpm", solver.timesteps, lambda m, t, x, z, s=solver: s.step(m, t, x),
                     prediction=prediction, steps=n, offset=1, spacing=spacing, final_sigma=final_sigma,
                     lower_order_final=lower_order_final)

    # DDIM inversion of a "clean latent" then DDIM sampling back, SD 2.1 config, 10 steps each.
    for prediction in ("epsilon", "v_prediction"):
        x0 = torch.randn(SIZE, generator=g)
        x = x0.clone()
        for t in grid("inverse", "leading", 10, 1):
            x = inverse_step(prediction, 10, fake_model(x, c), int(t), x, False)
        inverted = x.clone()
        for t in grid("ddim", "leading", 10, 1):
            x = ddim_step(prediction, 10, fake_model(x, c), int(t), x, None, 0.0, False)
        tensors.update({f"inversion_{prediction}.x0": x0, f"inversion_{prediction}.inverted": inverted,
                        f"inversion_{prediction}.reconstructed": x})

    original = torch.randn(SIZE, generator=g)
    for t in (0, 377, 999):
        a = SD21[t]
        tensors[f"forward_{t}.noisy"] = a ** 0.5 * original + (1 - a) ** 0.5 * noise
        tensors[f"forward_{t}.velocity"] = a ** 0.5 * noise - (1 - a) ** 0.5 * original
    tensors["forward.original"] = original

    # Tango's compute_snr and Min-SNR weighting (gamma 5): min(snr, 5) / snr.
    timesteps = torch.tensor([0, 1, 100, 250, 400, 500, 750, 999])
    alpha, sigma = SD21[timesteps] ** 0.5, (1.0 - SD21[timesteps]) ** 0.5
    snr = (alpha / sigma) ** 2
    tensors["min_snr.timesteps"] = timesteps
    tensors["min_snr.weights"] = torch.stack([snr, 5.0 * torch.ones_like(snr)], dim=1).min(dim=1)[0] / snr

    uncond, cond = torch.randn(SIZE, generator=g), torch.randn(SIZE, generator=g)
    tensors.update({"cfg.uncond": uncond, "cfg.cond": cond, "cfg.expected": uncond + 3.0 * (cond - uncond)})
    meta["cfg.scale"] = 3.0

    save_fixture("schedulers", tensors, meta)


if __name__ == "__main__":
    main()

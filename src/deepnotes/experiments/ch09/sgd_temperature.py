"""Mini-batch noise makes SGD a Langevin sampler whose temperature grows with ``lr / B``.

Notes 9.1. Each example ``i`` has energy ``e_i(x) = (x^2 - 1)^2 + a_i x`` with data ``a_i``
of mean 0 and variance ``sigma^2`` (half ``+sigma``, half ``-sigma``), so the full loss is the
symmetric double well ``E(x) = (x^2 - 1)^2`` and a mini-batch of ``B`` examples (drawn with
replacement) sees ``E'(x)`` plus noise of variance ``sigma^2 / B``. SGD with step ``lr`` is then
the Langevin update with ``s = lr sigma / sqrt(B)``, i.e. temperature
``T = s^2 / (2 lr) = lr sigma^2 / (2 B)`` (:func:`deepnotes.optim.sgd_temperature`).

Many independent SGD chains run for every ``(lr, B)`` of a grid (one parameter group per
setting of :class:`deepnotes.optim.SGD`); the temperature of their final states is fitted by
maximum likelihood under ``exp(-E/T)``. Claims (thresholds fixed beforehand):

- the fitted ``T`` is proportional to ``lr / B``: the log-log slope is within 0.1 of 1;
- it matches ``lr sigma^2 / (2 B)`` within 15% at every setting (the Euler step at
  ``lr * E''(1) = 0.08`` inflates the variance by ~4%; the 4000-chain estimate has ~2% error).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.optim import (
    SGD,
    double_well,
    double_well_grad,
    fit_gibbs_temperature,
    gibbs_density,
    sgd_temperature,
)

SLOPE_ERROR_MAX = 0.1
REL_ERROR_MAX = 0.15
LOG_EVERY = 100


@dataclass(frozen=True)
class Config:
    lrs: tuple[float, ...] = (0.0025, 0.005, 0.01)
    batch_sizes: tuple[int, ...] = (8, 32)
    sigma: float = 35.77708764  # sqrt(1280): T from 0.05 to 0.8 over the grid
    n_data: int = 1000
    chains: int = 4000
    steps: int = 2000


class ChainGroups(nn.Module):
    """One vector of independent chains per ``(lr, B)`` setting, started uniform on [-2, 2]."""

    def __init__(self, settings: int, chains: int, generator: torch.Generator) -> None:
        super().__init__()
        self.x = nn.ParameterList(
            nn.Parameter(torch.rand(chains, generator=generator, dtype=torch.float64) * 4 - 2)
            for _ in range(settings))


def run(cfg: Config, ctx) -> Result:
    if cfg.n_data % 2:
        raise ValueError(f"n_data must be even (half +sigma, half -sigma), got {cfg.n_data}")
    settings = list(itertools.product(cfg.lrs, cfg.batch_sizes))
    data = torch.full((cfg.n_data,), cfg.sigma, dtype=torch.float64)
    data[cfg.n_data // 2:] = -cfg.sigma  # mean 0, variance sigma^2 exactly
    variance = data.var(correction=0).item()

    chains = ChainGroups(len(settings), cfg.chains, ctx.rng("start"))
    opt = SGD([{"params": [x], "lr": lr} for x, (lr, _) in zip(chains.x, settings, strict=True)],
              lr=cfg.lrs[0])
    for step in ctx.steps(cfg.steps, track={"model": chains, "optimizer": opt},
                          log_every=LOG_EVERY):
        # One stream per step: a resumed run draws the same batches without saved state.
        batch_gen = ctx.rng("batches", step)
        for x, (_, batch) in zip(chains.x, settings, strict=True):
            idx = torch.randint(0, cfg.n_data, (cfg.chains * batch,), generator=batch_gen)
            noise = data.index_select(0, idx).view(cfg.chains, batch).mean(1)  # (chains,)
            x.grad = double_well_grad(x.detach()) + noise  # mini-batch gradient
        opt.step()
        if ctx.due(step):
            with torch.no_grad():
                ctx.log(step, **{f"mean_energy_lr{lr}_b{b}": double_well(x).mean().item()
                                 for x, (lr, b) in zip(chains.x, settings, strict=True)})

    predicted, fitted = [], []
    for x, (lr, batch) in zip(chains.x, settings, strict=True):
        predicted.append(sgd_temperature(lr, variance, batch))
        fitted.append(fit_gibbs_temperature(x.detach(), double_well, -4.0, 4.0))
    ratio = torch.tensor([lr / b for lr, b in settings], dtype=torch.float64)
    fit_t = torch.tensor(fitted, dtype=torch.float64)
    design = torch.stack([torch.ones_like(ratio), ratio.log()], 1)  # (settings, 2)
    slope = torch.linalg.lstsq(design, fit_t.log().unsqueeze(1)).solution[1, 0].item()
    rel_errors = [abs(f / p - 1.0) for f, p in zip(fitted, predicted, strict=True)]

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    axes[0].loglog(ratio, fit_t, "o", label="fitted T of the SGD chains")
    line = torch.linspace(ratio.min().item() * 0.8, ratio.max().item() * 1.25, 50)
    axes[0].loglog(line, line * variance / 2, "k--", label="lr sigma^2 / (2B)")
    axes[0].set(xlabel="lr / B", ylabel="temperature",
                title=f"effective temperature, slope {slope:.3f}")
    axes[0].legend(fontsize=8)
    full = torch.linspace(-4, 4, 8001, dtype=torch.float64)
    shown = full.abs() <= 2.0
    for x, (lr, b), t in zip(chains.x, settings, predicted, strict=True):
        if lr != max(cfg.lrs):
            continue
        line, = axes[1].plot(full[shown], gibbs_density(double_well(full), t, 8 / 8000)[shown])
        axes[1].hist(x.detach().numpy(), bins=80, range=(-2, 2), density=True, alpha=0.35,
                     color=line.get_color(), label=f"lr={lr}, B={b}: T={t:.2f}")
    axes[1].set(xlabel="x", ylabel="density", title="SGD samples (bars) vs exp(-E/T) (lines)")
    axes[1].legend(fontsize=8)
    ctx.figure(fig, "sgd_temperature")

    metrics = {"slope": slope, "max_relative_error": max(rel_errors),
               "gradient_noise_variance": variance}
    for (lr, b), p, f in zip(settings, predicted, fitted, strict=True):
        metrics[f"T_predicted_lr{lr}_b{b}"] = p
        metrics[f"T_fitted_lr{lr}_b{b}"] = f
    return Result(
        metrics=metrics,
        claims=[
            Claim("slope_error",
                  "The effective temperature of SGD is proportional to lr / B (log-log slope "
                  "within 0.1 of 1).", abs(slope - 1.0), "<", SLOPE_ERROR_MAX, source="project"),
            Claim("max_relative_error",
                  "It equals lr sigma^2 / (2B) within 15% at every (lr, B).",
                  max(rel_errors), "<", REL_ERROR_MAX, source="project"),
        ],
    )


EXPERIMENT = experiment(
    name="sgd-noise-temperature",
    sections=("9.1",),
    claim="Mini-batch SGD behaves like Langevin dynamics with temperature lr sigma^2 / (2B): "
          "larger steps and smaller batches mean a hotter, noisier search.",
    presets={"smoke": Config(lrs=(0.005, 0.01), chains=500, steps=400),
             "quick": Config(),
             "full": Config(lrs=(0.00125, 0.0025, 0.005, 0.01), batch_sizes=(4, 8, 16, 32, 64),
                            sigma=math.sqrt(1280.0), chains=20000, steps=8000)},
    run=run,
    quick_seconds=6.0,
)

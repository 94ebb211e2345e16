"""beta-VAE and KL annealing: where posterior collapse sets in (notes 7.2.1, project addition).

The notes' loss weighs reconstruction and KL equally. Weighting the KL by ``beta``
(Higgins et al. 2017) trades reconstruction for a posterior closer to the prior; past some
``beta`` latent units stop carrying information: their posterior equals the prior for every
image (KL 0, ``Cov_x E[z_u|x]`` ~ 0), the *posterior collapse* of those units. KL annealing
(Bowman et al. 2016: the KL weight ramped linearly from 0 to ``beta`` over the first half of
training) is the usual remedy.

Over the grid ``BETAS`` (fixed before the run), without and with annealing, the same
pytorch/examples VAE (784-400-20) is trained on the first 10,000 training images for 15
epochs (285 steps of batch 512, Adam 3e-3, bf16 autocast) and measured on the first 2,000
test images: active units (Burda et al., threshold 0.01), the KL per latent dimension
(figure), total KL and reconstruction BCE (grey levels, nats per image).
``collapse_onset_beta_<mode>`` is the smallest beta of the grid at which half or more of the
units active at the smallest beta are inactive; ``full_collapse_beta_<mode>`` the
smallest with no active unit (0: none in the grid).

Quick tier on an Intel Xeon (Sapphire Rapids class, AMX), 2 threads: 10 models of 285 steps
at ~5.5 ms per step. Calibration: with 3 epochs at batch 128 (234 steps) no unit had collapsed
yet even at beta = 16 (19 of 20 active): collapse develops with training. At batch 512, lr
3e-3, active units after 100/200/300/400 steps were 20/20/18/12 at beta = 4 and 19/19/7/5 at
beta = 16 (20 throughout at beta = 1). The onset measured here is that of this short
training; longer training (the full tier, or vae-fashion's 13 of 20 active at beta = 1)
switches off more units.

Quick tier, seed 0 (17.5 s): active units at beta = 1, 2, 4, 8, 16 were 20, 18, 16, 10, 3
without annealing (onset, half the units off, at beta = 8) and 20, 20, 18, 13, 13 with it
(no onset in the grid): annealing delays the collapse.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from deepnotes.autoencoders import gaussian_kl_per_dim, grey_neg_elbo, posterior_means
from deepnotes.data import load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.metrics.likelihood import active_units
from deepnotes.zoo import vae_fashion

BETAS = (1.0, 2.0, 4.0, 8.0, 16.0)  # the grid, fixed before the run
MODES = ("plain", "anneal")
ACTIVITY_THRESHOLD = 0.01  # Burda et al. 2016


@dataclass(frozen=True)
class Config(vae_fashion.Recipe):
    epochs: float = 15.0
    batch_size: int = 512
    lr: float = 3e-3
    bf16: bool = True
    train_first: int = 10000
    test_first: int = 2000
    anneal_fraction: float = 0.5  # KL weight ramped over this fraction of the steps
    log_every: int = 50


def _tag(beta: float) -> str:
    return f"{beta:g}".replace(".", "p")


def run(cfg: Config, ctx) -> Result:
    x_train, _ = load_fashion_mnist("train", first=cfg.train_first or None)
    x_test_u8, _ = load_fashion_mnist("test", first=cfg.test_first or None)
    x_test = vae_fashion.prepare(x_test_u8)
    steps = max(1, round(cfg.epochs * (len(x_train) // cfg.batch_size)))
    metrics: dict[str, float] = {"latent": cfg.latent, "train_images": len(x_train),
                                 "test_images": len(x_test), "steps_per_model": steps}
    kl_dims: dict[tuple[str, float], np.ndarray] = {}
    active: dict[tuple[str, float], int] = {}
    for mode in MODES:
        for i, beta in enumerate(BETAS):
            recipe = dataclasses.replace(
                cfg, beta=beta,
                anneal_steps=round(cfg.anneal_fraction * steps) if mode == "anneal" else 0)
            model = vae_fashion.train(ctx, recipe, x_train, phase=f"{mode}-b{i}")
            mu, log_var = posterior_means(model, x_test)
            count, _ = active_units(mu, ACTIVITY_THRESHOLD)
            grey = grey_neg_elbo(model, x_test, generator=ctx.rng(f"eval-{mode}", i))
            kl_dims[mode, beta] = np.sort(gaussian_kl_per_dim(mu, log_var).numpy())[::-1]
            active[mode, beta] = count
            tag = f"b{_tag(beta)}_{mode}"
            metrics[f"active_units_{tag}"] = count
            metrics[f"kl_{tag}"] = grey["kl"]
            metrics[f"rec_{tag}"] = grey["rec"]
            metrics[f"kl_dims_above_0p01_{tag}"] = int((kl_dims[mode, beta] > 0.01).sum())
    for mode in MODES:
        base = active[mode, BETAS[0]]
        onset = [b for b in BETAS if active[mode, b] <= base / 2]
        full = [b for b in BETAS if active[mode, b] == 0]
        metrics[f"collapse_onset_beta_{mode}"] = onset[0] if onset else 0.0
        metrics[f"full_collapse_beta_{mode}"] = full[0] if full else 0.0
    _figures(ctx, cfg, kl_dims, active)
    top, one = BETAS[-1], 1.0
    return Result(metrics=metrics, claims=[
        Claim("beta_switches_off_units", f"Without annealing, the beta = {top:g} VAE has fewer "
              f"active latent units than the beta = 1 VAE (difference of counts < 0).",
              active["plain", top] - active["plain", one], "<", 0, source="project"),
        Claim("beta_lowers_kl", f"Without annealing, the test KL at beta = {top:g} is below "
              f"the KL at beta = 1 (difference in nats < 0).",
              metrics[f"kl_b{_tag(top)}_plain"] - metrics["kl_b1_plain"], "<", 0,
              source="project"),
    ])


def _figures(ctx, cfg, kl_dims, active) -> None:
    fig = Figure(figsize=(10.5, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, mode in zip(axes[:2], MODES, strict=True):
        image = np.stack([kl_dims[mode, b] for b in BETAS])
        shown = ax.imshow(np.log10(np.maximum(image, 1e-4)), aspect="auto", cmap="viridis",
                          vmin=-4, vmax=1)
        ax.set(yticks=range(len(BETAS)), yticklabels=[f"{b:g}" for b in BETAS],
               xlabel="latent unit (sorted by KL)", ylabel="beta",
               title=f"log10 KL per unit, {mode}")
    fig.colorbar(shown, ax=axes[1])
    for mode in MODES:
        axes[2].plot(BETAS, [active[mode, b] for b in BETAS], "o-", label=mode)
    axes[2].set(xscale="log", xlabel="beta", ylabel="active units", ylim=(-0.5, cfg.latent + 0.5),
                title="active units (Cov > 0.01)")
    axes[2].legend()
    ctx.figure(fig, "beta_collapse")


EXPERIMENT = experiment(
    name="vae-beta",
    sections=("7.2.1",),
    claim="Weighting the VAE's KL by beta > 1 switches latent units off (posterior collapse); "
          "the grid shows where, with and without KL annealing.",
    presets={
        "smoke": Config(epochs=1.0, batch_size=128, lr=1e-3, bf16=False, train_first=1000,
                        test_first=300, log_every=2),
        "quick": Config(),
        "full": Config(epochs=50.0, train_first=0, test_first=0),
    },
    run=run,
    quick_seconds=18.0,
)

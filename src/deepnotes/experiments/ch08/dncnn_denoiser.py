"""A DnCNN denoiser trained on the training photographs, for Plug-and-Play and RED (notes 8.15).

The notes' v-step ``argmin_v λ/2‖ṽ − v‖² + β s(v)`` "is in itself a denoising problem", so
any good Gaussian denoiser can stand in for the prior. This experiment trains the small
DnCNN of :mod:`deepnotes.restoration.denoisers` (residual learning, conv-BN-ReLU, a
noise-level input channel; σ uniform in [1, 40]/255) on patches of the ``TRAIN_PHOTOS`` of
:mod:`deepnotes.data.photos` only, saves it as the zoo artifact ``dncnn-denoiser``, and
compares it on centred crops of the test photos (σ = 25/255, grey) with the classical
denoisers of scikit-image: TV (Chambolle) and non-local means, each given the true σ and
its best parameter on a grid of ``grid`` values (an oracle choice, which favours the
baselines).

Quick tier calibrated on an Intel Xeon (Sapphire Rapids class, AMX), 2 threads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.data.photos import load_photo
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.metrics.generative import psnr, ssim
from deepnotes.restoration.classical import nlm_denoise, tv_denoise
from deepnotes.restoration.degradations import Denoising
from deepnotes.restoration.denoisers import as_denoiser
from deepnotes.zoo import dncnn

# Fixed before the first quick run.
MIN_GAIN_DB = {"smoke": -100.0, "quick": 6.0, "full": 8.0}  # PSNR(DnCNN) − PSNR(noisy), camera
MIN_MARGIN_OVER_TV_DB = {"smoke": -100.0, "quick": 0.0, "full": 0.5}  # PSNR(DnCNN) − PSNR(TV)
TV_WEIGHTS_PER_SIGMA = (0.4, 3.0)  # TV weight grid, in units of σ (geometric)
NLM_H_FACTORS = (0.4, 1.2)  # NLM h grid, in units of σ (linear)


@dataclass(frozen=True)
class Config(dncnn.Recipe):
    test_photos: tuple[str, ...] = ("camera", "astronaut", "coffee")
    crop: int = 128
    sigma_test: float = 25.0 / 255
    grid: int = 8  # values of TV's weight and of NLM's h searched (each)


def _denoise_all(cfg: Config, ctx, model) -> tuple[dict[str, float], dict]:
    denoise = as_denoiser(model)
    tv_grid = np.geomspace(*TV_WEIGHTS_PER_SIGMA, cfg.grid) * cfg.sigma_test
    nlm_grid = np.linspace(*NLM_H_FACTORS, cfg.grid)
    metrics: dict[str, float] = {}
    shown = {}
    per_method: dict[str, list[float]] = {"noisy": [], "dncnn": [], "tv": [], "nlm": []}
    tv_scores = np.zeros((len(cfg.test_photos), cfg.grid))
    nlm_scores = np.zeros_like(tv_scores)
    images = {}
    for i, name in enumerate(cfg.test_photos):
        clean = load_photo(name, cfg.crop, grey=True, split="test")
        noisy = Denoising().observe(clean.double(), cfg.sigma_test, ctx.rng("noise", i)).float()
        with torch.no_grad():
            out = denoise(noisy, cfg.sigma_test).clamp(0, 1)
        images[name] = (clean, noisy, out)
        for j, w in enumerate(tv_grid):
            tv_scores[i, j] = psnr(clean[0], tv_denoise(noisy, float(w))[0].clamp(0, 1),
                                   data_range=1.0)
        for j, h in enumerate(nlm_grid):
            nlm_scores[i, j] = psnr(clean[0], nlm_denoise(noisy, cfg.sigma_test, float(h))[0]
                                    .clamp(0, 1), data_range=1.0)
        per_method["noisy"].append(psnr(clean[0], noisy[0].clamp(0, 1), data_range=1.0))
        per_method["dncnn"].append(psnr(clean[0], out[0], data_range=1.0))
        metrics[f"ssim_dncnn_{name}"] = ssim(clean[0], out[0], data_range=1.0)
        metrics[f"ssim_noisy_{name}"] = ssim(clean[0], noisy[0].clamp(0, 1), data_range=1.0)
    # One parameter per baseline for all photos: the best mean PSNR on its grid.
    best_tv, best_nlm = int(tv_scores.mean(0).argmax()), int(nlm_scores.mean(0).argmax())
    per_method["tv"] = tv_scores[:, best_tv].tolist()
    per_method["nlm"] = nlm_scores[:, best_nlm].tolist()
    metrics["tv_weight"] = float(tv_grid[best_tv])
    metrics["nlm_h_factor"] = float(nlm_grid[best_nlm])
    for method, values in per_method.items():
        for name, value in zip(cfg.test_photos, values, strict=True):
            metrics[f"psnr_{method}_{name}"] = float(value)
        metrics[f"psnr_{method}_mean"] = float(np.mean(values))
    for name in cfg.test_photos:
        clean, noisy, out = images[name]
        shown[name] = (clean, noisy, out, tv_denoise(noisy, metrics["tv_weight"]).clamp(0, 1),
                       nlm_denoise(noisy, cfg.sigma_test, metrics["nlm_h_factor"]).clamp(0, 1))
    return metrics, shown


def run(cfg: Config, ctx) -> Result:
    model = dncnn.train(ctx, cfg)
    with ctx.untimed():
        metrics, shown = _denoise_all(cfg, ctx, model)
    metrics["train_patches_seen"] = float(cfg.steps * cfg.batch_size)
    metrics["parameters"] = float(sum(p.numel() for p in model.parameters()))
    first = cfg.test_photos[0]
    gain = metrics[f"psnr_dncnn_{first}"] - metrics[f"psnr_noisy_{first}"]
    margin = metrics[f"psnr_dncnn_{first}"] - metrics[f"psnr_tv_{first}"]
    metrics["gain_db"], metrics["margin_over_tv_db"] = gain, margin
    metrics["margin_over_nlm_db"] = metrics[f"psnr_dncnn_{first}"] - metrics[f"psnr_nlm_{first}"]
    dncnn.save(ctx, model, cfg, {k: v for k, v in metrics.items() if k.startswith("psnr_")})
    _figure(ctx, shown, cfg, metrics)
    sigma255 = cfg.sigma_test * 255
    claims = [
        Claim("dncnn_denoises", f"The DnCNN trained on the training photos only raises the PSNR "
              f"of the {cfg.crop}x{cfg.crop} {first} crop at sigma = {sigma255:.0f}/255 by at "
              f"least {MIN_GAIN_DB[ctx.tier]:g} dB.", gain, ">=", MIN_GAIN_DB[ctx.tier],
              source="project"),
        Claim("dncnn_beats_tv", f"On {first} it beats TV denoising with its best weight on a "
              f"{cfg.grid}-value grid by at least {MIN_MARGIN_OVER_TV_DB[ctx.tier]:g} dB.",
              margin, ">=", MIN_MARGIN_OVER_TV_DB[ctx.tier], source="project"),
    ]
    return Result(metrics=metrics, claims=claims)


def _figure(ctx, shown, cfg: Config, metrics) -> None:
    titles = ("clean", "noisy", "DnCNN", "TV", "NLM")
    keys = (None, "noisy", "dncnn", "tv", "nlm")
    fig = Figure(figsize=(2.2 * len(titles), 2.3 * len(shown)))
    axes = np.atleast_2d(fig.subplots(len(shown), len(titles)))
    for row, (name, images) in zip(axes, shown.items(), strict=True):
        for ax, image, title, key in zip(row, images, titles, keys, strict=True):
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=1)
            label = title if key is None else f"{title} {metrics[f'psnr_{key}_{name}']:.2f} dB"
            ax.set(title=label, xticks=[], yticks=[])
            ax.title.set_fontsize(8)
    fig.suptitle(f"denoising at sigma = {cfg.sigma_test * 255:.0f}/255 (test photos)")
    ctx.figure(fig, "denoising")
    steps, values = ctx.series("psnr")
    if steps:
        fig = Figure(figsize=(5, 3.2))
        ax = fig.subplots()
        ax.plot(steps, values)
        ax.set(xlabel="step", ylabel="noise-prediction PSNR (dB, batch)",
               title="DnCNN training on training-photo patches")
        ctx.figure(fig, "training")


EXPERIMENT = experiment(
    name="dncnn-denoiser",
    sections=("8.15",),
    claim="A small DnCNN trained on other photographs denoises the test photos better than TV: "
          "the denoiser that Plug-and-Play and RED plug in.",
    presets={
        "smoke": Config(steps=3, batch_size=4, patch=16, features=8, depth=3,
                        photos=("chelsea", "coins"), test_photos=("camera",), crop=32, grid=2,
                        log_every=1),
        "quick": Config(),
        "full": Config(steps=4000, features=32, depth=8, patch=40, crop=256, grid=12),
    },
    run=run,
    produces=(dncnn.NAME,),
    quick_seconds=28.0,
    flagship=True,  # a restoration flagship of 8.15 (DESIGN lists DIP among them)
    max_threads=2,
)

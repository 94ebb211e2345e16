"""GAN inversion: what the DCGAN cannot see (notes 8.7.2; Bau et al. 2019).

The generator is the zoo's ``dcgan-fashion`` (frozen, eval mode). An encoder
(:class:`deepnotes.generative.inversion.LatentEncoder`) learns to invert it on its own samples,
``min ||E(G(z)) - z||^2``; then for each target image ``z`` is optimized by Adam on the mean
squared pixel error ``||G(z) - x||^2`` (images in [-1, 1]), starting at ``E(x)`` or at a random
draw of N(0, I). Targets: ``targets`` samples of G (whose true ``z*`` is known, so they can be
recovered exactly) and as many training images.

Measured: the per-image error after 0, 10, 30 and ``inversion_steps`` steps for each target set
and start; the fraction of G's samples recovered (error below ``RECOVERED_MSE``); the
relative latent distance ``||z - z*|| / ||z*||`` on G's samples. The notes' point: a
training image that lies outside G's range keeps an error no number of steps removes, while
G's own samples are recovered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.generative.dcgan import from_uint8
from deepnotes.generative.inversion import LatentEncoder, encoder_loss, invert
from deepnotes.zoo import gan_fashion

GENERATOR = gan_fashion.NAMES["non-saturating"]
# Fixed before the run.
RECOVERED_MSE = 0.005  # per-pixel MSE in [-1, 1] units (RMS 0.07, 3.5% of the range)
MIN_RECOVERED = {"smoke": 0.0, "quick": 0.5, "full": 0.8}  # share of G's samples recovered
MIN_TRAIN_TO_SAMPLE_ERROR = 1.0  # training images are reconstructed worse than G's samples


@dataclass(frozen=True)
class Config:
    encoder_steps: int = 600
    batch_size: int = 128
    lr: float = 1e-3
    targets: int = 64  # G samples, and as many training images
    inversion_steps: int = 100
    inversion_lr: float = 0.05
    log_every: int = 50


def _record(steps: int) -> tuple[int, ...]:
    return tuple(sorted({0, min(10, steps), min(30, steps), steps}))


def run(cfg: Config, ctx) -> Result:
    generator, _ = gan_fashion.load(GENERATOR, ctx.tier)  # recorded with its sha256
    generator.eval()
    latent = generator.latent
    x_train, _ = load_fashion_mnist("train", first=cfg.targets)

    ctx.manual_seed("init-encoder")
    encoder = LatentEncoder(latent)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=cfg.lr)
    for step in ctx.steps(cfg.encoder_steps, track={"encoder": encoder, "optimizer": optimizer},
                          phase="encoder", log_every=cfg.log_every):
        z = torch.randn(cfg.batch_size, latent, generator=ctx.rng("encoder-z", step))
        loss = encoder_loss(encoder, generator, z)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        ctx.log(step, phase="encoder", loss=loss.item())
    encoder.eval()

    z_true = torch.randn(cfg.targets, latent, generator=ctx.rng("target-z"))
    with torch.no_grad():
        targets = {"samples": generator(z_true), "train": from_uint8(x_train)}
        starts = {name: {"encoder": encoder(x),
                         "random": torch.randn(len(x), latent, generator=ctx.rng("start", i))}
                  for i, (name, x) in enumerate(targets.items())}
    record = _record(cfg.inversion_steps)
    metrics: dict[str, float] = {"targets": cfg.targets, "latent": latent}
    curves, final_z, errors_at = {}, {}, {}
    for name, x in targets.items():
        for start, z0 in starts[name].items():
            z, errors = invert(generator, x, z0, cfg.inversion_steps, cfg.inversion_lr, record)
            curves[(name, start)] = [float(errors[k].mean()) for k in record]
            errors_at[(name, start)] = errors[cfg.inversion_steps]
            final_z[(name, start)] = z
            for k in record:
                metrics[f"mse_{name}_{start}_step{k}"] = float(errors[k].mean())
    for start in ("encoder", "random"):
        err = errors_at[("samples", start)]
        metrics[f"recovered_{start}"] = float((err < RECOVERED_MSE).double().mean())
        metrics[f"latent_rel_error_{start}"] = float(
            ((final_z[("samples", start)] - z_true).norm(dim=1) / z_true.norm(dim=1)).mean())
    ratio = (metrics[f"mse_train_encoder_step{cfg.inversion_steps}"]
             / metrics[f"mse_samples_encoder_step{cfg.inversion_steps}"])
    metrics["train_to_sample_error"] = ratio
    early = min(10, cfg.inversion_steps)
    metrics["encoder_start_gain"] = (metrics[f"mse_samples_random_step{early}"]
                                     - metrics[f"mse_samples_encoder_step{early}"])
    _figures(ctx, generator, targets, final_z, record, curves)

    claims = [
        Claim("samples_recovered", f"Starting at E(x), {cfg.inversion_steps} Adam steps on z "
              f"recover at least {MIN_RECOVERED[ctx.tier]:.0%} of G's own samples (pixel MSE < "
              f"{RECOVERED_MSE:g}).", metrics["recovered_encoder"], ">=",
              MIN_RECOVERED[ctx.tier], source="project"),
        Claim("encoder_start_helps", f"After {early} steps the encoder's start E(x) leaves a "
              "smaller error on G's samples than a random start: random - encoder MSE > 0.",
              metrics["encoder_start_gain"], ">", 0.0, source="project"),
        Claim("training_images_outside_range", "Training images are reconstructed worse than "
              "G's own samples (what GAN inversion reveals, 8.7.2): MSE(train) / MSE(samples) "
              f"> {MIN_TRAIN_TO_SAMPLE_ERROR:g}.", ratio, ">", MIN_TRAIN_TO_SAMPLE_ERROR),
    ]
    return Result(metrics=metrics, claims=claims)


def _grid(images: torch.Tensor) -> np.ndarray:
    rows = images.reshape(-1, 8, 28, 28).permute(0, 2, 1, 3)
    return rows.reshape(-1, 8 * 28).numpy()


@torch.no_grad()
def _figures(ctx, generator, targets, final_z, record, curves) -> None:
    fig = Figure(figsize=(8, 6))
    axes = fig.subplots(2, 1)
    for ax, name in zip(axes, ("samples", "train"), strict=True):
        shown = torch.cat([targets[name][:8], generator(final_z[(name, "encoder")][:8])])
        ax.imshow(_grid(shown.squeeze(1)), cmap="gray", vmin=-1, vmax=1)
        ax.set(title=f"{name}: targets (top) and G(z) after inversion from E(x) (bottom)",
               xticks=[], yticks=[])
    ctx.figure(fig, "reconstructions")

    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    for (name, start), values in curves.items():
        ax.plot(record, values, "o-" if start == "encoder" else "s--",
                label=f"{name}, start {start}")
    ax.axhline(RECOVERED_MSE, color="k", ls=":", label="recovered below")
    ax.set(xlabel="Adam steps on z", ylabel="mean pixel MSE", yscale="log",
           title="inversion error against steps")
    ax.legend(fontsize=7)
    ctx.figure(fig, "error_curves")


EXPERIMENT = experiment(
    name="gan-inversion",
    sections=("8.7.2",),
    claim="Inverting the DCGAN recovers its own samples but not the training images: they lie "
          "outside its range.",
    presets={
        "smoke": Config(encoder_steps=6, batch_size=16, targets=8, inversion_steps=5,
                        log_every=2),
        "quick": Config(),
        "full": Config(encoder_steps=3000, targets=256, inversion_steps=500),
    },
    run=run,
    requires=(GENERATOR,),
    quick_seconds=20.0,
    single_process=True,
)

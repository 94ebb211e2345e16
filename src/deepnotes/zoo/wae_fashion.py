"""The Fashion-MNIST WAE of notes 7.3: build, train, save and load by name.

:class:`deepnotes.autoencoders.wae.WAE` (MLP 784-400-latent, the VAE's architecture with one
code) trained on grey levels in [0, 1] with the squared error summed over pixels plus
``lam`` times a penalty on the aggregate posterior (``penalty``: ``"mmd"``, ``"gan"``, or
``"none"`` for the plain auto-encoder), Adam, batches sliced from in-memory uint8 tensors,
the same step count and schedule as :mod:`deepnotes.zoo.vae_fashion` for equal ``epochs`` and
``batch_size``.

``wae-fashion`` publishes the WAE-MMD as artifact ``NAME`` (chapter 8's FID table uses it);
consumers call :func:`load`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from deepnotes.autoencoders.wae import (
    WAE,
    LatentDiscriminator,
    latent_discriminator_loss,
    latent_encoder_penalty,
    sample_prior,
    squared_error,
    wae_mmd_penalty,
)
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact
from deepnotes.zoo.vae_fashion import prepare

NAME = "wae-fashion"
PENALTIES = ("none", "mmd", "gan")


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe of the WAE (an experiment's config supplies them)."""

    hidden: int = 400
    latent: int = 8
    epochs: float = 10.0
    batch_size: int = 256
    lr: float = 1e-3
    cosine: bool = True
    bf16: bool = False
    log_every: int = 50


def _cosine(steps: int, on: bool):
    return (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps))) if on else (
        lambda s: 1.0)


def train(ctx: Any, recipe: Recipe, x_train: torch.Tensor, penalty: str, lam: float,
          phase: str = "train", lr: float | None = None) -> WAE:
    """Train one WAE in a ``ctx.steps`` loop; returns the plain model.

    ``penalty="gan"`` also trains a :class:`LatentDiscriminator` (Adam, half the learning
    rate, as Tolstikhin et al.), one discriminator step per encoder-decoder step.
    """
    if penalty not in PENALTIES:
        raise ValueError(f"penalty must be one of {PENALTIES}, got {penalty!r}")
    lr = recipe.lr if lr is None else lr
    fabric = ctx.fabric
    batches = ctx.batches(x_train, batch_size=recipe.batch_size, stream=phase)
    steps = max(1, round(recipe.epochs * batches.steps_per_epoch))
    ctx.manual_seed(f"init-{phase}")
    plain = WAE(hidden=recipe.hidden, latent=recipe.latent)
    optimizer = torch.optim.Adam(plain.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _cosine(steps, recipe.cosine))
    model, optimizer = fabric.setup(plain, optimizer)
    track: dict[str, Any] = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    if penalty == "gan":
        disc = LatentDiscriminator(recipe.latent)
        d_opt = torch.optim.Adam(disc.parameters(), lr=lr / 2, betas=(0.5, 0.999))
        d_sched = torch.optim.lr_scheduler.LambdaLR(d_opt, _cosine(steps, recipe.cosine))
        disc, d_opt = fabric.setup(disc, d_opt)
        track.update(discriminator=disc, d_optimizer=d_opt, d_scheduler=d_sched)
    for step in ctx.steps(steps, track=track, phase=phase, log_every=recipe.log_every):
        (xb,) = batches.batch(step)
        xb = fabric.to_device(prepare(xb))
        z_prior = sample_prior(len(xb), recipe.latent, ctx.rng(f"prior-{phase}", step),
                               device=xb.device)
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=recipe.bf16):
            logits, z = model(xb)
        rec = squared_error(logits, xb).mean()
        logs = {}
        if penalty == "mmd":
            pen = wae_mmd_penalty(z, z_prior)
        elif penalty == "gan":
            d_loss = latent_discriminator_loss(disc, z, z_prior)
            d_opt.zero_grad(set_to_none=True)
            fabric.backward(d_loss)
            d_opt.step()
            d_sched.step()
            logs["d_loss"] = d_loss.item()
            pen = latent_encoder_penalty(disc, z)  # on the updated adversary
        else:
            pen = rec.new_zeros(())
        loss = rec + lam * pen
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, loss=loss.item(), rec=rec.item(), penalty=pen.item(), **logs)
    return plain


@torch.no_grad()
def objective(model: WAE, x: torch.Tensor, penalty: str, lam: float,
              generator: torch.Generator, batch_size: int = 1000) -> float:
    """Validation value of the training objective, ``mean c + lam * MMD`` (the MMD on each
    batch of ``batch_size`` against as many prior draws). For ``"gan"`` and ``"none"`` the
    selection uses ``mean c + lam * MMD`` as well: the adversary's value is not comparable
    across runs, the MMD is."""
    model.eval()
    rec, pens = 0.0, []
    for i in range(0, len(x), batch_size):
        logits, z = model(x[i:i + batch_size])
        rec += float(squared_error(logits, x[i:i + batch_size]).double().sum())
        if len(z) >= 2:
            pens.append(float(wae_mmd_penalty(z, sample_prior(len(z), model.latent, generator))))
    weight = lam if penalty != "none" else 0.0
    return rec / len(x) + weight * (sum(pens) / max(len(pens), 1))


def save(ctx: Any, model: WAE, metrics: dict[str, float]) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)``."""
    save_artifact(ctx, NAME, model, architecture=model.architecture, metrics=metrics,
                  extra={"input": "grey levels in [0, 1], (N, 784) = uint8 / 255",
                         "decoder": "logits of pixel means (sigmoid gives the image)",
                         "prior": "N(0, I)", "penalty": "mmd"})


def load(tier: str) -> tuple[WAE, Artifact]:
    """The trained WAE of ``tier`` in eval mode and its artifact (recorded in the run)."""
    return load_model(NAME, tier)

"""The Fashion-MNIST VAE of notes 7.2: build, train, save and load by name.

pytorch/examples' VAE (MLP 784-400-20, ReLU, Adam 1e-3) as :class:`deepnotes.autoencoders.VAE`,
trained on grey levels in [0, 1] with its objective (binary cross-entropy summed over pixels
plus the KL, per image, averaged over the batch; Adam is invariant to that scale), batches
sliced from in-memory uint8 tensors. Options: ``beta`` (a beta-VAE) and ``anneal_steps``
(the KL weight ramped linearly from 0). Speed choices are measured in
``benchmarks/bench_vae.py`` (``benchmarks/README.md``).

``vae-fashion`` trains and publishes it as artifact ``NAME`` at its tier (chapter 8 reuses
it as an FID baseline and as a generative prior); consumers call :func:`load`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from deepnotes.autoencoders import VAE, kl_weight, neg_elbo_terms
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAME = "vae-fashion"


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe of the VAE (an experiment's config supplies them)."""

    hidden: int = 400
    latent: int = 20
    epochs: float = 10.0
    batch_size: int = 128
    lr: float = 1e-3
    cosine: bool = False  # cosine decay of the learning rate to 0 over the run
    beta: float = 1.0  # weight of the KL (1: the ELBO)
    anneal_steps: int = 0  # linear KL warm-up over this many steps (0: none)
    bf16: bool = False  # bfloat16 autocast in training (evaluation is float32)
    log_every: int = 50


def prepare(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> grey levels ``(N, 784)`` in [0, 1]."""
    return x.reshape(len(x), -1).float().div_(255.0)


def train(ctx: Any, recipe: Recipe, x_train: torch.Tensor, phase: str = "train") -> VAE:
    """Train the VAE per ``recipe`` in a ``ctx.steps`` loop; returns the plain model."""
    fabric = ctx.fabric
    batches = ctx.batches(x_train, batch_size=recipe.batch_size, stream=phase)
    steps = max(1, round(recipe.epochs * batches.steps_per_epoch))
    ctx.manual_seed(f"init-{phase}")
    plain = VAE(hidden=recipe.hidden, latent=recipe.latent)
    optimizer = torch.optim.Adam(plain.parameters(), lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, (lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
        if recipe.cosine else (lambda s: 1.0))
    model, optimizer = fabric.setup(plain, optimizer)
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    for step in ctx.steps(steps, track=track, phase=phase, log_every=recipe.log_every):
        (xb,) = batches.batch(step)
        xb = fabric.to_device(prepare(xb))
        weight = kl_weight(step, recipe.beta, recipe.anneal_steps)
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=recipe.bf16):
            rec, kl, _, _ = neg_elbo_terms(model, xb, ctx.rng(f"eps-{phase}", step))
        loss = (rec + weight * kl).mean()
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, loss=loss.item(), rec=rec.mean().item(),
                kl=kl.mean().item(), kl_weight=weight)
    return plain


def save(ctx: Any, model: VAE, metrics: dict[str, float]) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)``."""
    save_artifact(ctx, NAME, model, architecture=model.architecture, metrics=metrics,
                  extra={"input": "grey levels in [0, 1], (N, 784) = uint8 / 255",
                         "decoder": "Bernoulli logits"})


def load(tier: str) -> tuple[VAE, Artifact]:
    """The trained VAE of ``tier`` in eval mode and its artifact (recorded in the run)."""
    return load_model(NAME, tier)

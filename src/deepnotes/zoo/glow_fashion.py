"""The Fashion-MNIST Glow of notes 8.11: train, score, sample, save and load by name.

:class:`deepnotes.generative.flows.Glow` on single-channel 28x28 images (squeezed 28 -> 14 ->
7: two levels, ``depth`` flow steps each, LU 1x1 convolutions, bounded affine couplings, a
learned prior at the split) after RealNVP's logit transform (``logit`` = alpha), trained by
maximum likelihood on uniformly dequantized pixels (``n_bits`` bits; fresh noise each step
from the run's streams): Adam with a linear warm-up, gradients clipped, float32 (bf16 autocast
measured only ~10% faster per step and costs the log-det's precision).

``glow-fashion`` trains and publishes it as artifact ``NAME`` at its tier; chapter 8's FID
table calls :func:`load` and :func:`sample` (images in [0, 1], the grey levels ``k / 255`` of
the uint8 pixels whose dequantization bins hold the flow's samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from deepnotes.generative.flows import Glow, bits_per_dim_bits, dequantize_bits, to_levels
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAME = "glow-fashion"


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe of the flow (an experiment's config supplies them)."""

    levels: int = 2
    depth: int = 8  # flow steps per level (Glow's K)
    hidden: int = 64  # channels of each coupling's network
    lu: bool = True
    bound: float = 2.0  # |log s| < bound in each coupling
    logit: float = 0.05  # RealNVP's alpha (0: inputs x - 0.5)
    n_bits: int = 8
    steps: int = 450
    batch_size: int = 64
    lr: float = 3e-3
    warmup: int = 50  # steps of linear learning-rate warm-up
    clip: float = 50.0  # gradient-norm clipping
    log_every: int = 25


def build(recipe: Recipe) -> Glow:
    return Glow(1, 28, recipe.levels, recipe.depth, recipe.hidden, recipe.lu, recipe.bound,
                recipe.logit)


def prepare(images: torch.Tensor, n_bits: int = 8, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> dequantized values ``(N, 1, 28, 28)`` in [0, 1) (float32)."""
    return dequantize_bits(images, n_bits, generator).float().unsqueeze(1)


def train(ctx: Any, recipe: Recipe, x_train: torch.Tensor, phase: str = "train",
          state: dict[str, Any] | None = None) -> Glow:
    """Maximum likelihood (mean bits/dim) in a ``ctx.steps`` loop; returns the model on CPU.

    The first batch initializes every ActNorm (data-dependent); the flags are buffers, so a
    resumed run restores them with the weights and does not initialize again."""
    device = ctx.fabric.device
    batches = ctx.batches(x_train, batch_size=recipe.batch_size, stream=phase)
    ctx.manual_seed(f"init-{phase}")
    model = build(recipe).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(recipe.warmup, 1)))
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    d = model.num_dims
    for step in ctx.steps(recipe.steps, track=track, phase=phase, state=state,
                          log_every=recipe.log_every):
        (xb,) = batches.batch(step)
        x = prepare(xb, recipe.n_bits, ctx.rng(f"dequantize-{phase}", step)).to(device)
        loss = bits_per_dim_bits(model.log_prob_unit(x), d, recipe.n_bits).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, bits_per_dim=loss.item(), grad_norm=float(grad_norm))
    return model.cpu().eval()


@torch.no_grad()
def bits_per_dim(model: Glow, images: torch.Tensor, n_bits: int = 8,
                 generator: torch.Generator | None = None, batch_size: int = 500
                 ) -> torch.Tensor:
    """Bits/dim ``(N,)`` of uint8 images under ``model``, one dequantization draw each."""
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = prepare(images[i:i + batch_size], n_bits, generator).to(device)
        out.append(bits_per_dim_bits(model.log_prob_unit(x), model.num_dims, n_bits).cpu())
    return torch.cat(out)


@torch.no_grad()
def sample(model: Glow, n: int, temperature: float = 1.0,
           generator: torch.Generator | None = None, n_bits: int = 8, batch_size: int = 1000
           ) -> torch.Tensor:
    """``n`` samples at ``temperature``: images ``(N, 1, 28, 28)`` in [0, 1], the grey levels
    ``k / 255`` (``round(x * 255)`` gives the uint8 pixels). Eval mode; mode restored."""
    was = model.training
    model.eval()
    try:
        parts = [to_levels(model.sample(min(batch_size, n - i), temperature, generator).cpu(),
                           n_bits) for i in range(0, n, batch_size)]
    finally:
        model.train(was)
    return torch.cat(parts).float() / 255.0


def save(ctx: Any, model: Glow, metrics: dict[str, float], n_bits: int = 8) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)``."""
    save_artifact(ctx, NAME, model, architecture=model.architecture, metrics=metrics,
                  extra={"input": "dequantized pixels (x + u) / 2^n_bits in [0, 1), "
                                  "(N, 1, 28, 28); log_prob_unit gives log p in nats",
                         "n_bits": n_bits,
                         "sample": "deepnotes.zoo.glow_fashion.sample: images in [0, 1]"})


def load(tier: str) -> tuple[Glow, Artifact]:
    """The trained flow of ``tier`` in eval mode and its artifact (recorded in the run).
    Its ActNorm layers come back initialized (the flag is in the weights)."""
    return load_model(NAME, tier)

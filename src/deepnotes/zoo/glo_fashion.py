"""GLO and GLANN generators of Fashion-MNIST (notes 8.12, 8.13): save, load and sample by name.

``glann-fashion`` (:mod:`deepnotes.experiments.ch08.glann_fashion`) trains both and publishes
them as artifacts at its tier:

* ``glo-fashion``: :class:`deepnotes.generative.glo.GLOSampler`, GLO's DCGAN generator with
  the full-covariance Gaussian fitted to its codes (draws projected onto the codes' sphere);
* ``glann-fashion``: :class:`deepnotes.generative.glo.GLANNSampler`, the IMLE mapper from
  noise to codes followed by the same generator.

Both take noise ``N(0, I)`` of ``model.noise_dim`` dimensions; :func:`sample` draws it from the
caller's generator and returns images in [0, 1] of shape ``(N, 1, 28, 28)`` (generator in
eval mode: BatchNorm running statistics).
"""

from __future__ import annotations

from typing import Any

import torch

from deepnotes.generative.glo import GLANNSampler, GLOSampler, to_unit_interval
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAMES = {"glo": "glo-fashion", "glann": "glann-fashion"}


def save(ctx: Any, name: str, model: GLOSampler | GLANNSampler,
         metrics: dict[str, float]) -> None:
    """Publish ``model`` as artifact ``(name, ctx.tier)``."""
    if name not in NAMES.values():
        raise ValueError(f"name must be one of {sorted(NAMES.values())}, got {name!r}")
    save_artifact(ctx, name, model, architecture=model.architecture, metrics=metrics,
                  extra={"output": "images (N, 1, 28, 28) in [-1, 1] (tanh); "
                                   "deepnotes.zoo.glo_fashion.sample gives [0, 1]",
                         "noise": f"N(0, I), {model.noise_dim}-d"})


def load(name: str, tier: str) -> tuple[GLOSampler | GLANNSampler, Artifact]:
    """A trained sampler (``glo-fashion`` or ``glann-fashion``) in eval mode and its artifact
    (recorded in the run)."""
    if name not in NAMES.values():
        raise ValueError(f"name must be one of {sorted(NAMES.values())}, got {name!r}")
    return load_model(name, tier)


@torch.no_grad()
def sample(model: GLOSampler | GLANNSampler, n: int, generator: torch.Generator,
           batch: int = 1000) -> torch.Tensor:
    """``n`` samples in [0, 1], ``(n, 1, 28, 28)`` float32, noise from ``generator`` (CPU),
    in eval mode (the mode is restored)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    was = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        parts = []
        for i in range(0, n, batch):
            noise = torch.randn(min(batch, n - i), model.noise_dim, generator=generator)
            parts.append(to_unit_interval(model(noise.to(device))).cpu())
        return torch.cat(parts) if parts else torch.zeros(0, 1, 28, 28)
    finally:
        model.train(was)

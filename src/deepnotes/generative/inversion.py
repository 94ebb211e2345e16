"""GAN inversion (notes 8.7.2, "What GAN cannot see"; Bau et al. 2019): find ``z`` with
``G(z) ~ x``.

Two ingredients, both math only:

* :class:`LatentEncoder`: a small CNN ``E: x -> z`` trained on the generator's own samples to
  regress the latent that made them, ``min_E E_z ||E(G(z)) - z||^2`` (:func:`encoder_loss`);
* :func:`invert`: gradient descent on ``||G(z) - x||^2`` (mean over pixels) over ``z`` alone,
  with G frozen in eval mode, from a given start (``E(x)`` or a random draw), recording the
  reconstruction error after chosen step counts. Each image's ``z`` is optimized
  independently (the loss is a sum over images; Adam's updates are per coordinate).

An image that G can produce is recovered (error ~0); one that lies outside G's range, like
many training images of a generator that dropped modes or details, keeps an error that no
number of steps removes: that gap is what inversion reveals about G.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LatentEncoder(nn.Module):
    """Images ``(N, 1, 28, 28)`` in [-1, 1] -> latents ``(N, latent)``."""

    def __init__(self, latent: int = 64, width: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, latent))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def encoder_loss(encoder: nn.Module, generator: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """``mean ||E(G(z)) - z||^2`` with G fixed (no gradient reaches it)."""
    with torch.no_grad():
        x = generator(z)
    return (encoder(x) - z).square().sum(1).mean()


def reconstruction_error(generator: nn.Module, z: torch.Tensor, x: torch.Tensor
                         ) -> torch.Tensor:
    """Per-image mean squared pixel error ``(N,)`` of ``G(z)`` against ``x``."""
    return (generator(z) - x).square().flatten(1).mean(1)


def invert(generator: nn.Module, x: torch.Tensor, z0: torch.Tensor, steps: int,
           lr: float = 0.05, record: Sequence[int] = ()) -> tuple[torch.Tensor, dict]:
    """Optimize ``z`` from ``z0`` so that ``G(z)`` matches ``x``; G is frozen in eval mode.

    Returns ``(z, errors)`` with ``errors[k]`` the per-image error ``(N,)`` after ``k`` steps
    for every ``k`` in ``record`` (``0``: at the start).
    """
    if steps < 0 or any(k < 0 or k > steps for k in record):
        raise ValueError(f"record must lie in [0, steps={steps}], got {tuple(record)}")
    was = generator.training
    generator.eval()
    params = list(generator.parameters())
    needs = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        z = z0.detach().clone().requires_grad_()
        optimizer = torch.optim.Adam([z], lr=lr)
        errors: dict[int, torch.Tensor] = {}
        for step in range(steps + 1):
            error = reconstruction_error(generator, z, x)
            if step in record:
                errors[step] = error.detach().clone()
            if step == steps:
                break
            optimizer.zero_grad(set_to_none=True)
            error.sum().backward()
            optimizer.step()
        return z.detach(), errors
    finally:
        for p, n in zip(params, needs, strict=True):
            p.requires_grad_(n)
        generator.train(was)

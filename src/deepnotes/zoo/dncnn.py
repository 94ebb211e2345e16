"""The DnCNN denoiser of notes 8.15 (Plug-and-Play, RED): train, save and load by name.

:class:`deepnotes.restoration.denoisers.DnCNN` trained by :func:`train` on Gaussian-noise
patches of the training photographs only (``TRAIN_PHOTOS``; the test photos never).
``dncnn-denoiser`` publishes it as artifact ``NAME`` at its tier; consumers call
:func:`load` with their own tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.data.photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo
from deepnotes.restoration.denoisers import DnCNN, sample_patches
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAME = "dncnn-denoiser"

__all__ = ["NAME", "Recipe", "load", "save", "train", "training_images"]


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe (an experiment's config supplies it)."""

    features: int = 24
    depth: int = 6
    steps: int = 1200
    batch_size: int = 16
    patch: int = 32
    lr: float = 2e-3
    sigma_min: float = 1.0 / 255
    sigma_max: float = 40.0 / 255
    photos: tuple[str, ...] = TRAIN_PHOTOS
    log_every: int = 25


def training_images(photos: tuple[str, ...]) -> list[torch.Tensor]:
    """The grey training photographs ``(1, H, W)``; a test photo is refused."""
    leaked = sorted(set(photos) & set(TEST_PHOTOS))
    if leaked:
        raise ValueError(f"denoisers never train on test photos, got {leaked}")
    if not photos:
        raise ValueError("need at least one training photo")
    return [load_photo(name, grey=True, split="train") for name in photos]


def train(ctx: Any, recipe: Recipe, phase: str = "train") -> DnCNN:
    """Train the DnCNN on Gaussian noise (σ uniform in [sigma_min, sigma_max]) over patches of
    ``recipe.photos`` (training photos only) with Adam and a cosine schedule; MSE on the
    predicted noise. Returns the model in eval mode."""
    images = training_images(recipe.photos)
    ctx.manual_seed(f"init-{phase}")
    model = DnCNN(1, recipe.features, recipe.depth)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, recipe.steps)
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    model.train()
    for step in ctx.steps(recipe.steps, track=track, phase=phase, log_every=recipe.log_every):
        g = ctx.rng(f"patches-{phase}", step)
        clean = sample_patches(images, recipe.batch_size, recipe.patch, g)
        sigma = recipe.sigma_min + (recipe.sigma_max - recipe.sigma_min) * torch.rand(
            recipe.batch_size, generator=g)
        noise = torch.randn(clean.shape, generator=g) * sigma.reshape(-1, 1, 1, 1)
        loss = F.mse_loss(model.residual(clean + noise, sigma), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, loss=loss.item(),
                psnr=float(-10 * torch.log10(loss.detach().clamp_min(1e-12))))
    model.eval()
    return model



def save(ctx: Any, model: DnCNN, recipe: Recipe, metrics: dict[str, float]) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)`` with the noise range it knows."""
    save_artifact(ctx, NAME, model, architecture=model.architecture, metrics=metrics,
                  extra={"sigma_range": [recipe.sigma_min, recipe.sigma_max],
                         "photos": list(recipe.photos), "scale": "[0, 1]"})


def load(tier: str) -> tuple[DnCNN, Artifact]:
    """The trained DnCNN of ``tier`` in eval mode and its artifact (recorded in the run)."""
    model, artifact = load_model(NAME, tier)
    leaked = set(artifact.extra["photos"]) & set(TEST_PHOTOS)
    if leaked:
        raise ValueError(f"artifact {NAME!r} ({tier}) was trained on test photos {leaked}")
    return model, artifact

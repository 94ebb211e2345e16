"""The DnCNN denoiser of notes 8.15 (Plug-and-Play, RED): train, save and load by name.

:class:`deepnotes.restoration.denoisers.DnCNN` trained by
:func:`deepnotes.restoration.denoisers.train` on Gaussian-noise patches of the training
photographs only (``TRAIN_PHOTOS``; the test photos never). ``dncnn-denoiser`` publishes it
as artifact ``NAME`` at its tier; consumers call :func:`load` with their own tier.
"""

from __future__ import annotations

from typing import Any

from deepnotes.data.photos import TEST_PHOTOS
from deepnotes.restoration.denoisers import DnCNN, Recipe, train
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAME = "dncnn-denoiser"

__all__ = ["NAME", "Recipe", "load", "save", "train"]


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

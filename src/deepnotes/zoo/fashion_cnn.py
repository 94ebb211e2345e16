"""The Fashion-MNIST CNN of notes 4.2: build, train, save and load by name.

The network is :class:`deepnotes.conv.FashionCNN`, trained with SGD + Nesterov momentum, a
one-cycle learning rate and label smoothing, batches sliced from in-memory uint8 tensors.
Speed choices, each measured (``benchmarks/bench_cnn.py``, ``benchmarks/README.md``):
channels_last memory format and bfloat16 autocast in training (weights, optimizer and
BatchNorm statistics stay fp32; evaluation is fp32).

``cnn-fashion`` trains and publishes it as artifact ``NAME`` at its tier; consumers call
:func:`load` with their own tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.conv import FashionCNN
from deepnotes.data import FASHION_MEAN, FASHION_STD, standardize_images
from deepnotes.nn.augment import horizontal_flip, random_crop
from deepnotes.zoo.artifacts import Artifact, load_model, save_artifact

NAME = "cnn-fashion"


@dataclass(frozen=True)
class Recipe:
    """Architecture and training recipe of the CNN (an experiment's config supplies them)."""

    channels: tuple[int, ...] = (32, 64)
    convs_per_stage: int = 1
    global_pool: bool = False
    epochs: float = 5.0
    batch_size: int = 128
    lr: float = 0.1  # peak of the one-cycle schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    warmup: float = 0.25  # fraction of steps spent warming up
    crop_padding: int = 0  # random-crop augmentation (0: none)
    flip: bool = False  # random horizontal flips
    channels_last: bool = True
    bf16: bool = True  # bfloat16 autocast in training (evaluation is float32)
    log_every: int = 25


def prepare(x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> standardized float ``(N, 1, 28, 28)``."""
    return standardize_images(x, FASHION_MEAN, FASHION_STD, channels_last=channels_last)


def build(recipe: Recipe, total_steps: int):
    """The CNN, its SGD-Nesterov optimizer and one-cycle schedule: ``(model, opt, sched)``.
    Initialization draws from torch's global generator (seed it first)."""
    model = FashionCNN(recipe.channels, recipe.convs_per_stage, recipe.global_pool)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                nesterov=True, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr,
                                                    total_steps=total_steps,
                                                    pct_start=recipe.warmup)
    return model, optimizer, scheduler


def augment(x: torch.Tensor, recipe: Recipe, generator: torch.Generator) -> torch.Tensor:
    """Random crops (shifts up to ``crop_padding`` pixels) and flips of uint8 images."""
    if recipe.crop_padding:
        x = random_crop(x, recipe.crop_padding, generator)
    if recipe.flip:
        x = horizontal_flip(x, generator)
    return x


def loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, recipe: Recipe
         ) -> torch.Tensor:
    """Label-smoothed cross-entropy, forward under bfloat16 autocast when ``recipe.bf16``."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=recipe.bf16):
        return F.cross_entropy(model(x), y, label_smoothing=recipe.label_smoothing)


def train(ctx: Any, recipe: Recipe, x_train: torch.Tensor, y_train: torch.Tensor,
          phase: str = "train") -> FashionCNN:
    """Train the CNN per ``recipe`` in a ``ctx.steps`` loop; returns the plain model."""
    fabric = ctx.fabric
    batches = ctx.batches(x_train, y_train, batch_size=recipe.batch_size, stream=phase)
    steps = max(1, round(recipe.epochs * batches.steps_per_epoch))
    ctx.manual_seed(f"init-{phase}")
    plain, optimizer, scheduler = build(recipe, steps)
    model, optimizer = fabric.setup(plain, optimizer)
    track = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    for step in ctx.steps(steps, track=track, phase=phase, log_every=recipe.log_every):
        xb, yb = batches.batch(step)
        # One generator per step: a resumed run draws the same augmentations.
        xb = augment(xb, recipe, ctx.rng(f"augment-{phase}", step))
        xb, yb = fabric.to_device((prepare(xb, recipe.channels_last), yb))
        value = loss(model, xb, yb, recipe)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(value)
        optimizer.step()
        scheduler.step()
        ctx.log(step, phase=phase, loss=value.item(), lr=scheduler.get_last_lr()[0])
    return plain


def save(ctx: Any, model: FashionCNN, metrics: dict[str, float]) -> None:
    """Publish ``model`` as artifact ``(NAME, ctx.tier)``."""
    save_artifact(ctx, NAME, model, architecture=model.architecture, metrics=metrics,
                  extra={"normalization": {"mean": FASHION_MEAN, "std": FASHION_STD}})


def load(tier: str) -> tuple[FashionCNN, Artifact]:
    """The trained CNN of ``tier`` in eval mode and its artifact (recorded in the run)."""
    model, artifact = load_model(NAME, tier)
    norm = artifact.extra["normalization"]
    if (norm["mean"], norm["std"]) != (FASHION_MEAN, FASHION_STD):
        raise ValueError(f"artifact {NAME!r} ({tier}) was trained with normalization {norm}, "
                         f"this code uses mean {FASHION_MEAN}, std {FASHION_STD}; rebuild it")
    return model, artifact

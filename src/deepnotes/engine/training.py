"""The one small training helper for classifier-style loops, and evaluation.

Loops that do not fit (GANs, per-image optimization, ...) write their own ~40 lines from the
same parts: ``ctx.fabric.setup``, ``ctx.steps``, ``ctx.log``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from deepnotes.data.batches import Batches, eval_batches

Prepare = Callable[[torch.Tensor], torch.Tensor]


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def fit(
    ctx: Any,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Batches,
    steps: int,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
    prepare: Prepare = _identity,
    scheduler: Any = None,
    phase: str = "train",
    log_every: int = 25,
    extra_loss: Callable[[torch.nn.Module], torch.Tensor] | None = None,
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """Train ``model`` for ``steps`` mini-batches; returns the Fabric-wrapped model/optimizer.

    Args:
        ctx: the run's :class:`~deepnotes.engine.run.RunContext`.
        batches: step-addressed batches ``(x, y)``; under DDP built with the fabric's rank.
        prepare: per-batch input conversion (uint8 -> normalized float, augmentation).
        extra_loss: a penalty added to the data loss (e.g. an L2 weight penalty).
    Returns:
        ``(model, optimizer)`` as set up by Fabric.
    """
    fabric = ctx.fabric
    model, optimizer = fabric.setup(model, optimizer)
    track: dict[str, Any] = {"model": model, "optimizer": optimizer}
    if scheduler is not None:
        track["scheduler"] = scheduler
    model.train()
    for step in ctx.steps(steps, track=track, phase=phase, log_every=log_every):
        x, y = batches.batch(step)
        x, y = fabric.to_device((prepare(x), y))
        loss = loss_fn(model(x), y)
        if extra_loss is not None:
            loss = loss + extra_loss(model)
        optimizer.zero_grad(set_to_none=True)
        fabric.backward(loss)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        ctx.log(step, phase=phase, loss=loss.item())  # raises on NaN/Inf, naming the step
    return model, optimizer


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    prepare: Prepare = _identity,
    batch_size: int = 2048,
    device: torch.device | str | None = None,
) -> dict[str, float]:
    """Mean cross-entropy and accuracy of a classifier over ``(x, y)``."""
    was_training = model.training
    model.eval()
    device = device or next(model.parameters()).device
    total_loss, correct, n = 0.0, 0, 0
    for xb, yb in eval_batches(x, y, batch_size=batch_size):
        xb, yb = prepare(xb).to(device), yb.to(device)
        logits = model(xb).float()
        total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(dim=1) == yb).sum().item()
        n += len(yb)
    model.train(was_training)
    return {"loss": total_loss / n, "accuracy": correct / n}

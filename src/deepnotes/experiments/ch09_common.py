"""Shared pieces of the chapter-9 experiments: Fashion-MNIST subsets as float matrices, an MLP.

Images are converted once to normalized float32 rows ``(N, 784)`` (train mean/std), so the
training loops only slice rows: on a 2-core CPU that is cheaper than converting every batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def fashion_matrices(n_train: int, n_test: int, seed: int) -> dict[str, Any]:
    """A seeded random subset of Fashion-MNIST, flattened and standardized.

    Args:
        n_train: training examples drawn (without replacement) from the 60k training split.
        n_test: test examples (the first ``n_test`` of the 10k test split).
        seed: seeds the training subset.
    Returns:
        dict with ``x_train (n_train, 784) float32``, ``y_train (n_train,) int64``,
        ``x_test``, ``y_test`` and ``data`` (a description for the run summary).
    """
    from deepnotes.data import FASHION_MEAN, FASHION_STD, load_fashion_mnist

    images, labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    if not 1 <= n_train <= len(labels):
        raise ValueError(f"n_train must be in [1, {len(labels)}], got {n_train}")
    if not 1 <= n_test <= len(test_labels):
        raise ValueError(f"n_test must be in [1, {len(test_labels)}], got {n_test}")
    idx = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n_train]

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float().div_(255.0).sub_(FASHION_MEAN).div_(FASHION_STD)  # (N, 784)

    return {
        "x_train": prepare(images.index_select(0, idx)),
        "y_train": labels.index_select(0, idx),
        "x_test": prepare(test_images[:n_test]),
        "y_test": test_labels[:n_test].clone(),
        "data": {"name": "Fashion-MNIST", "train": n_train, "test": n_test,
                 "subset": f"{n_train} training images drawn with seed {seed}"
                           if n_train < len(labels) else "full training split"},
    }


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """``Linear -> ReLU -> ... -> Linear`` with the given widths (input first, logits last)."""
    if len(sizes) < 2:
        raise ValueError(f"sizes must list >= 2 widths, got {sizes}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


@torch.no_grad()
def mean_loss_and_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           batch_size: int = 4096) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` over all of ``(x, y)`` (kept on the CPU;
    chunks go to the model's device)."""
    device = next(model.parameters()).device
    total, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        logits = model(x[start:start + batch_size].to(device)).float()
        yb = y[start:start + batch_size].to(device)
        total += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return total / len(y), correct / len(y)


def fabric_batches(ctx, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """:class:`deepnotes.data.Batches` for this rank of the run's Fabric (seeded by the run)."""
    from deepnotes.data import Batches

    fabric = ctx.fabric
    return Batches(x, y, batch_size=batch_size, seed=ctx.seed, rank=fabric.global_rank,
                   world_size=fabric.world_size)


def steps_to_target(steps: list[int], values: list[float], target: float, budget: int
                    ) -> tuple[int, bool]:
    """First logged step (counted from 1) whose value is <= ``target``; ``(budget, False)`` if none.

    Using the budget when the target is not reached makes a "fewer steps than" comparison
    conservative for the method that did reach it.
    """
    for step, value in zip(steps, values, strict=True):
        if value <= target:
            return step + 1, True
    return budget, False

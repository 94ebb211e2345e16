"""Fashion-MNIST subsets as standardized float matrices ``(N, 784)``, for MLP experiments.

Images are converted once to normalized float32 rows (training-set mean and std, see
:func:`deepnotes.data.standardize_images`), so a training loop only slices rows: on a 2-core
CPU that is cheaper than converting every batch.

The training subset is drawn uniformly without replacement by the caller's generator (a
named random stream of the run); the test subset is the first ``n_test`` images. Each split
is recorded once in the run's provenance, saying how it is a subset.
"""

from __future__ import annotations

import torch

from deepnotes.data.images import load_fashion_mnist, standardize_images
from deepnotes.engine import provenance


def fashion_matrices(n_train: int, n_test: int, generator: torch.Generator,
                     drawn_by: str = "a seeded generator") -> dict[str, torch.Tensor]:
    """A random training subset and the first test images of Fashion-MNIST, flattened and
    standardized.

    Args:
        n_train: training examples drawn without replacement from the 60k training split
            (all 60k, in a random order, for 60000).
        n_test: the first ``n_test`` of the 10k test images (0: none; the test split is then
            not loaded).
        generator: draws the training subset, e.g. ``ctx.rng("subset")``.
        drawn_by: what ``generator`` is, for the provenance record (e.g.
            ``"random stream 'subset' of seed 0"``).
    Returns:
        ``x_train (n_train, 784) float32``, ``y_train (n_train,) int64``, ``x_test
        (n_test, 784)``, ``y_test (n_test,)``.
    """
    with provenance.collecting() as inner:  # re-recorded below as the subset it is
        images, labels = load_fashion_mnist("train")
    if not 1 <= n_train <= len(labels):
        raise ValueError(f"n_train must be in [1, {len(labels)}], got {n_train}")
    if n_test < 0:
        raise ValueError(f"n_test must be >= 0, got {n_test}")
    idx = torch.randperm(len(labels), generator=generator)[:n_train]
    subset = (None if n_train == len(labels) else
              f"{n_train} of {len(labels)} drawn uniformly without replacement by {drawn_by}")
    for record in inner["data"]:  # the split loaded (or its substitute) as a whole
        how = "; ".join(part for part in (record["subset"], subset) if part) or None
        provenance.record_data(record["name"], record["split"], n_train, subset=how,
                               substitute=record["substitute"], path=record["path"],
                               sha256=record["sha256"])
    out = {"x_train": standardize_images(images.index_select(0, idx), flatten=True),
           "y_train": labels.index_select(0, idx)}
    if n_test:
        test_images, test_labels = load_fashion_mnist("test", first=n_test)
        if n_test > len(test_labels):
            raise ValueError(f"n_test must be at most {len(test_labels)}, got {n_test}")
        out["x_test"] = standardize_images(test_images, flatten=True)
        out["y_test"] = test_labels
    else:
        out["x_test"] = torch.empty(0, images[0].numel())
        out["y_test"] = torch.empty(0, dtype=torch.int64)
    return out


__all__ = ["fashion_matrices"]

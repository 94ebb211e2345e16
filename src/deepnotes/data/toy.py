"""Small datasets that need no files: scikit-learn's 8x8 digits and 2-D toy sets."""

from __future__ import annotations

import math

import numpy as np
import torch

from deepnotes.engine import provenance

TABLES = ("breast_cancer", "wine", "iris")


def load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 8x8 digits: ``(images float32 (1797, 8, 8) in [0, 1], labels int64)``."""
    from sklearn.datasets import load_digits as _sk_digits

    bunch = _sk_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32) / 16.0)
    provenance.record_data("scikit-learn 8x8 digits", "all", len(images),
                           path="sklearn.datasets.load_digits()")
    return images, torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))


def load_table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """One of scikit-learn's small tables (``breast_cancer``, ``wine``, ``iris``):
    ``(features float64 (N, D), labels int64 (N,))``."""
    if name not in TABLES:
        raise ValueError(f"unknown table {name!r}; expected one of {list(TABLES)}")
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    provenance.record_data(f"scikit-learn {name.replace('_', ' ')}", "all", len(bunch.target),
                           path=f"sklearn.datasets.load_{name}()")
    return (np.asarray(bunch.data, dtype=np.float64),
            np.asarray(bunch.target, dtype=np.int64))


def _check_n(n: int) -> None:
    if n < 1:
        raise ValueError(f"n must be a positive number of points, got {n}")


def make_moons(n: int, noise: float = 0.1, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles with Gaussian noise: ``(x (n, 2), labels (n,))``."""
    _check_n(n)
    n0 = n // 2
    t = torch.rand(n, generator=generator) * math.pi
    upper = torch.stack([torch.cos(t[:n0]), torch.sin(t[:n0])], dim=1)
    lower = torch.stack([1 - torch.cos(t[n0:]), 0.5 - torch.sin(t[n0:])], dim=1)
    x = torch.cat([upper, lower]) + noise * torch.randn(n, 2, generator=generator)
    y = torch.cat([torch.zeros(n0, dtype=torch.long), torch.ones(n - n0, dtype=torch.long)])
    return x.float(), y


def make_blobs(n: int, centers: int | torch.Tensor = 3, std: float = 1.0,
               generator: torch.Generator | None = None, box: float = 10.0
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Isotropic Gaussian blobs. ``centers``: a count (drawn uniformly in [-box, box]^2) or a
    ``(k, 2)`` tensor."""
    _check_n(n)
    if isinstance(centers, int):
        if centers < 1:
            raise ValueError(f"centers must be >= 1, got {centers}")
        centers = (torch.rand(centers, 2, generator=generator) * 2 - 1) * box
    centers = torch.as_tensor(centers, dtype=torch.float32)
    y = torch.randint(len(centers), (n,), generator=generator)
    x = centers[y] + std * torch.randn(n, 2, generator=generator)
    return x, y


def ring_centers(modes: int = 8, radius: float = 2.0) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return (radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)).float()


def make_ring(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A ring of ``modes`` Gaussians (the GAN mode-collapse benchmark): ``(x, mode index)``."""
    _check_n(n)
    if modes < 1:
        raise ValueError(f"modes must be >= 1, got {modes}")
    return make_blobs(n, ring_centers(modes, radius), std=std, generator=generator)

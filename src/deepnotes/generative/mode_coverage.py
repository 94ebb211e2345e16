"""Mode coverage of samples from a mixture with known centers (the ring-of-Gaussians test of
GAN mode collapse, notes 8.7.2; Metz et al. 2017, Srivastava et al. 2017).

A sample is *high quality* when it lies within ``radius_stds`` standard deviations of its
nearest center; a mode is *covered* when at least ``min_fraction`` of all samples are
high-quality samples of that mode. With 8 equal modes a perfect generator puts 1/8 of its
samples on each.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class ModeCoverage(NamedTuple):
    """``modes_covered`` (int), ``high_quality`` (fraction of samples), ``counts`` ``(K,)``
    high-quality samples per mode."""

    modes_covered: int
    high_quality: float
    counts: torch.Tensor


def mode_coverage(samples: torch.Tensor, centers: torch.Tensor, std: float,
                  radius_stds: float = 3.0, min_fraction: float = 0.01) -> ModeCoverage:
    """Count the modes that ``samples`` cover.

    Args:
        samples: ``(N, d)`` generated points.
        centers: ``(K, d)`` mode centers.
        std: the modes' standard deviation.
        radius_stds: a sample within ``radius_stds * std`` of its nearest center is high quality.
        min_fraction: a mode is covered when it gets at least this fraction of the N samples.
    Returns:
        :class:`ModeCoverage`.
    """
    if samples.dim() != 2 or centers.dim() != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"samples (N, d) and centers (K, d) must share d; got "
                         f"{tuple(samples.shape)} and {tuple(centers.shape)}")
    if len(samples) == 0 or len(centers) == 0:
        raise ValueError("need at least one sample and one center")
    if not samples.isfinite().all():
        raise ValueError("samples contain NaN or Inf")
    distance = torch.cdist(samples.double(), centers.double())  # (N, K)
    nearest_distance, nearest = distance.min(dim=1)
    good = nearest_distance <= radius_stds * std
    counts = torch.bincount(nearest[good], minlength=len(centers))
    covered = int((counts >= min_fraction * len(samples)).sum())
    return ModeCoverage(covered, good.double().mean().item(), counts)


__all__ = ["ModeCoverage", "mode_coverage"]

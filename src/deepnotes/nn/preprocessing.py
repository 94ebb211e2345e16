"""Standardization of inputs (notes sec. 2.6.1): ``X -> (X - mean(X)) / std(X)`` per feature.

The statistics are **fitted on the training set only** and then applied unchanged to any
other split; fitting on the test set would leak it into the model.
"""

from __future__ import annotations

import torch


class Standardizer:
    """Per-feature standardization ``(x - mean) / std`` with statistics from a training set.

    ``std`` is the population standard deviation (divide by n), as in scikit-learn's
    ``StandardScaler``; a feature that is constant in training gets ``std = 1`` (it is only
    centred) instead of producing a division by zero.

    Args:
        dim: the example dimension(s) the statistics are taken over (default 0: a
            ``(n, d)`` table gives ``d`` means; ``(0, 2, 3)`` gives per-channel image stats).
    Attributes (after :meth:`fit`):
        mean, std: tensors that broadcast against the input.
    """

    def __init__(self, dim: int | tuple[int, ...] = 0) -> None:
        self.dim = (dim,) if isinstance(dim, int) else tuple(dim)
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self._ndim: int | None = None

    def fit(self, x: torch.Tensor) -> Standardizer:
        """Compute mean and std of ``x`` (float) over :attr:`dim`; returns ``self``."""
        if not x.is_floating_point():
            raise ValueError(f"standardize float data; got {x.dtype} (convert with .float())")
        if x.dim() <= max(self.dim) or x.shape[self.dim[0]] < 1:
            raise ValueError(f"cannot take statistics over dims {self.dim} of shape "
                             f"{tuple(x.shape)}")
        self.mean = x.mean(dim=self.dim, keepdim=True)
        std = x.std(dim=self.dim, keepdim=True, correction=0)
        self.std = torch.where(std > 0, std, torch.ones_like(std))
        self._ndim = x.dim()
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the fitted statistics to ``x`` (same trailing shape as the training data)."""
        if self.mean is None or self.std is None:
            raise ValueError("call fit() on the training data before transform()")
        if x.dim() != self._ndim or any(
            a != b for d, (a, b) in enumerate(zip(x.shape, self.mean.shape, strict=True))
            if d not in self.dim
        ):
            raise ValueError(f"x of shape {tuple(x.shape)} does not match the fitted feature "
                             f"shape {tuple(self.mean.shape)}")
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def fit_transform(self, x: torch.Tensor) -> torch.Tensor:
        return self.fit(x).transform(x)

    def inverse_transform(self, z: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`transform`: ``z * std + mean``."""
        if self.mean is None or self.std is None:
            raise ValueError("call fit() before inverse_transform()")
        return z * self.std.to(z.device) + self.mean.to(z.device)


__all__ = ["Standardizer"]

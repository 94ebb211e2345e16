"""The PCA-Gaussian baseline generator: the FID floor every chapter-8 generator must beat.

Fit ``x ~ N(mu, Sigma)`` restricted to the principal subspace that keeps a share
``variance_kept`` (default 95%) of the variance: with ``Sigma = V diag(lambda) V^T`` (eigenvalues
in decreasing order) keep the smallest ``k`` with ``sum_{i<=k} lambda_i >= variance_kept *
sum_i lambda_i``; in those coordinates the Gaussian is ``z ~ N(0, diag(lambda_1..k))``, and a
sample is decoded as ``x = mu + z V_k^T``. It is a linear-Gaussian model (probabilistic PCA
without the isotropic noise): it reproduces the data's mean and its top-k covariance exactly,
and nothing non-Gaussian. Math only: the caller clamps and quantizes the decoded pixels.
"""

from __future__ import annotations

import torch


class PCAGaussian:
    """Gaussian in the PCA space that keeps ``variance_kept`` of the variance.

    After :meth:`fit`: ``mean (D,)``, ``components (k, D)`` (orthonormal rows), ``variances
    (k,)`` (the kept eigenvalues), ``explained (float)`` (their share of the total).
    """

    def __init__(self, variance_kept: float = 0.95) -> None:
        if not 0 < variance_kept <= 1:
            raise ValueError(f"variance_kept must be in (0, 1], got {variance_kept}")
        self.variance_kept = variance_kept
        self.mean = self.components = self.variances = None
        self.explained = float("nan")

    def fit(self, x: torch.Tensor) -> PCAGaussian:
        """Fit to data ``(N, D)`` (float64 inside); returns self."""
        if x.ndim != 2 or len(x) < 2:
            raise ValueError(f"expected data (N >= 2, D), got {tuple(x.shape)}")
        x = x.double()
        self.mean = x.mean(0)
        centred = x - self.mean
        cov = centred.T @ centred / (len(x) - 1)  # (D, D)
        eigvals, eigvecs = torch.linalg.eigh(cov)  # ascending
        eigvals, eigvecs = eigvals.flip(0).clamp_min(0), eigvecs.flip(1)
        share = eigvals.cumsum(0) / eigvals.sum()
        k = int(torch.searchsorted(share, torch.tensor(self.variance_kept, dtype=share.dtype))
                ) + 1
        k = min(k, len(eigvals))
        self.components, self.variances = eigvecs[:, :k].T.contiguous(), eigvals[:k]
        self.explained = float(share[k - 1])
        return self

    @property
    def num_components(self) -> int:
        self._check_fitted()
        return len(self.variances)

    def _check_fitted(self) -> None:
        if self.mean is None:
            raise ValueError("PCAGaussian: call fit(x) first")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """PCA coordinates ``(N, k)`` of data ``(N, D)``."""
        self._check_fitted()
        return (x.double() - self.mean) @ self.components.T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Data ``(N, D)`` from PCA coordinates ``(N, k)``."""
        self._check_fitted()
        return self.mean + z.double() @ self.components

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` decoded samples ``(n, D)``, float64."""
        self._check_fitted()
        z = torch.randn(n, len(self.variances), generator=generator, dtype=torch.float64)
        return self.decode(z * self.variances.sqrt())

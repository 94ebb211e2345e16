"""Distances between samples and between Gaussians (notes 7.3, 8.9).

* :func:`mmd_unbiased`: the unbiased estimator of the squared maximum mean discrepancy with
  the inverse multiquadratic kernel ``k(x, y) = C / (C + ||x - y||^2)`` (Tolstikhin et al.,
  WAE, 2018; ``C = 2 d sigma^2`` for a prior N(0, sigma^2 I) in ``d`` dimensions). The
  U-statistic drops the diagonal of the within-sample kernel matrices, so for two samples of
  one distribution its expectation is exactly 0 and single estimates may be negative.
  WAE-MMD (chapter 7) and KID (chapter 8) both use it.
* :func:`frechet_distance`: ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``, the
  squared 2-Wasserstein distance between two Gaussians, in float64. The trace of the square
  root comes from a **symmetric** eigendecomposition: with ``S1 = L L^T`` (Cholesky),
  ``L^T S2 L`` is symmetric positive semi-definite and has the eigenvalues of ``S1 S2``, so no
  ``scipy.linalg.sqrtm`` and no complex parts. Where a covariance is singular (fewer samples
  than dimensions) the other one is factored, or, both singular, ``S1^1/2 S2 S1^1/2`` is
  formed with a symmetric square root; the round-off of the true zero eigenvalues is then
  floored.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


def squared_distances(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``||x_i - y_j||^2`` as ``(n, m)``, from inner products (clamped at 0 against round-off):
    one matrix product, whose backward is several times faster than ``torch.cdist``'s."""
    return ((x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :] - 2.0 * x @ y.T).clamp_min(0.0)


def imq_kernel(x: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
    """Inverse multiquadratic kernel matrix ``C / (C + ||x_i - y_j||^2)``, ``(n, m)``."""
    if scale <= 0:
        raise ValueError(f"imq_kernel: scale C must be > 0, got {scale}")
    return scale / (scale + squared_distances(x, y))


def _check_samples(x: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"{name}: expected two (n, d) and (m, d) samples with the same d, got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"{name}: the unbiased estimator needs at least 2 points per sample, "
                         f"got {len(x)} and {len(y)}")


def mmd_unbiased(x: torch.Tensor, y: torch.Tensor, scales: float | tuple[float, ...] = 1.0
                 ) -> torch.Tensor:
    """Unbiased squared MMD between samples ``x (n, d)`` and ``y (m, d)``, IMQ kernel.

    ``scales``: one ``C`` or several (the kernels are summed, as the WAE paper does over
    ``C in {0.1, 0.2, 0.5, 1, 2, 5, 10} * 2 d sigma^2``). Differentiable in both samples.
    """
    _check_samples(x, y, "mmd_unbiased")
    n, m = len(x), len(y)
    scales = (scales,) if isinstance(scales, (int, float)) else tuple(scales)
    if any(c <= 0 for c in scales):
        raise ValueError(f"mmd_unbiased: every scale C must be > 0, got {scales}")
    # Three distance matrices once (products, not cdist: 3x faster with the backward of a
    # WAE batch), then the kernel of each scale; k(x, x) = C / C = 1 on every diagonal.
    dxx, dyy, dxy = squared_distances(x, x), squared_distances(y, y), squared_distances(x, y)
    total = x.new_zeros(())
    for c in scales:
        total = total + (((c / (c + dxx)).sum() - n) / (n * (n - 1))
                         + ((c / (c + dyy)).sum() - m) / (m * (m - 1))
                         - 2 * (c / (c + dxy)).mean())
    return total


def mmd_unbiased_kernel(x: torch.Tensor, y: torch.Tensor,
                        kernel: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
                        ) -> torch.Tensor:
    """The U-statistic of :func:`mmd_unbiased` for any kernel (KID's polynomial one):
    ``mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j)``."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"expected (n >= 2, d) and (m >= 2, d) samples, got {tuple(x.shape)} "
                         f"and {tuple(y.shape)}")
    n, m = len(x), len(y)
    kxx, kyy = kernel(x, x), kernel(y, y)
    return ((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
            + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kernel(x, y).mean())


def _as_float64(a) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def gaussian_moments(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (``N - 1`` denominator) of ``(N, d)`` features, in float64."""
    f = _as_float64(features)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"gaussian_moments: expected (N >= 2, d) features, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def _psd_eigenvalues(w: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with round-off removed: those below ``d * eps * max`` are
    0 (their square roots would otherwise add noise of order sqrt(eps) to the trace)."""
    floor = len(w) * np.finfo(np.float64).eps * max(float(w.max(initial=0.0)), 0.0)
    return np.where(w > floor, w, 0.0)


def _cholesky(s: np.ndarray) -> np.ndarray | None:
    """The lower Cholesky factor of a positive definite ``s``, or None where it is singular."""
    try:
        return np.linalg.cholesky(s)
    except np.linalg.LinAlgError:
        return None


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(_psd_eigenvalues(w))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Fréchet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2).

    float64 throughout; accepts numpy arrays or tensors; covariances may be singular.
    """
    mu1, mu2 = _as_float64(mu1).reshape(-1), _as_float64(mu2).reshape(-1)
    s1, s2 = _as_float64(sigma1), _as_float64(sigma2)
    d = len(mu1)
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"frechet_distance: expected means (d,) and covariances (d, d) with "
                         f"one d, got {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}")
    l1, l2 = _cholesky(s1), _cholesky(s2)
    if l1 is not None:  # S1 = L L^T: L^T S2 L is PSD with the eigenvalues of S1 S2
        inner = l1.T @ s2 @ l1
    elif l2 is not None:  # tr sqrt(S1 S2) = tr sqrt(S2 S1): factor the full-rank one
        inner = l2.T @ s1 @ l2
    else:
        r1 = _sqrt_psd(s1)
        inner = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    # Both full rank: every eigenvalue is real signal, only round-off negatives are clipped.
    # One singular: its true zero eigenvalues come out as round-off and are floored (their
    # square roots would add ~sqrt(eps) each).
    eig = np.clip(eig, 0.0, None) if l1 is not None and l2 is not None else _psd_eigenvalues(eig)
    tr_sqrt = float(np.sqrt(eig).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)


def emd_assignment(x, y) -> float:
    """Exact earth mover's distance (W1, Euclidean ground cost) between two equal-size samples
    ``x (n, d)`` and ``y (n, d)`` with uniform weights ``1/n`` (notes Def. 8.17.1).

    Between two uniform empirical measures of the same size the optimal transport plan can be
    taken to be a permutation (Birkhoff-von Neumann: the extreme points of the doubly
    stochastic matrices are permutation matrices), so W1 is the optimal assignment's mean cost:
    ``scipy.optimize.linear_sum_assignment`` on the ``(n, n)`` distance matrix, float64. Exact;
    ``O(n^3)``, meant for small samples (a few thousand points).
    """
    a, b = _as_float64(x), _as_float64(y)
    if a.ndim == 1:
        a, b = a[:, None], b.reshape(-1, 1)
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape or len(a) == 0:
        raise ValueError(f"emd_assignment: expected two non-empty (n, d) samples of one shape, "
                         f"got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("emd_assignment: samples contain NaN or Inf")
    cost = cdist(a, b)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())

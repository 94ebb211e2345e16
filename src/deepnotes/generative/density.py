"""Kernel density estimation (notes sec. 8.1, Parzen windows) and the choice of bandwidth.

    f_h(x) = 1/(n h^d) sum_i K((x - x_i) / h)

with a radial kernel ``K(u) = k(|u|) / c_d`` normalized so that ``int K = 1`` (sklearn's
normalizations, any dimension ``d``): gaussian ``exp(-r^2/2)``, tophat ``1[r < 1]``, linear
``(1 - r) 1[r < 1]``, epanechnikov ``(1 - r^2) 1[r < 1]``. ``score_samples`` returns
``log f_h(x)`` as :class:`sklearn.neighbors.KernelDensity` does (``-inf`` outside the support
of a compact kernel).

Bandwidth. The notes choose ``h`` by the mean integrated squared error
``MISE(h) = E int (f_h - f)^2``. On data the unknown ``f`` is replaced by least-squares
cross-validation (Rudemo 1982, Bowman 1984), an unbiased estimate of ``MISE(h) - int f^2``:

    LSCV(h) = int f_h^2 - 2/n sum_i f_{h,-i}(x_i),

``f_{h,-i}`` leaving ``x_i`` out. The other criterion is the held-out log-likelihood over
K folds (what ``GridSearchCV(KernelDensity(), ...)`` maximizes). On a known density the
``oracle`` bandwidth minimizes the true integrated squared error ``ISE(h) = int (f_h - f)^2``.

scipy's :class:`scipy.stats.gaussian_kde` uses a different convention: its ``bw_method``
is a *factor* that multiplies the data's covariance, kernel covariance
``= factor^2 * cov(x, ddof=1)``. In 1-D, sklearn's ``bandwidth=h`` equals scipy's
``bw_method = h / std(x, ddof=1)`` (:func:`scipy_factor`); in d-D scipy's kernel is
anisotropic, so the two agree only on whitened data. Likewise sklearn's
``bandwidth="scott"`` is the bare factor ``n^(-1/(d+4))``, not scaled by the data's spread.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

KERNELS = ("gaussian", "tophat", "linear", "epanechnikov")


def _as_points(x, name: str = "x") -> torch.Tensor:
    """(n, d) float64 from a tensor or array; a 1-D input is n points in one dimension."""
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (n, d) with n >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values")
    return x


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (m, n) by differences, not the ``|a|^2 + |b|^2 - 2ab`` matmul
    form, which loses digits and moves points across a compact kernel's edge."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _check_kernel(kernel: str) -> None:
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def log_kernel_norm(kernel: str, d: int) -> float:
    """``log int k(|u|) du`` over R^d (sklearn's ``_log_kernel_norm`` without the ``h^d``)."""
    _check_kernel(kernel)
    log_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)  # unit d-ball volume
    return {"gaussian": 0.5 * d * math.log(2 * math.pi),
            "tophat": log_ball,
            "linear": log_ball - math.log(d + 1),
            "epanechnikov": log_ball + math.log(2 / (d + 2))}[kernel]


def log_profile(kernel: str, r: torch.Tensor) -> torch.Tensor:
    """``log k(r)`` of the unnormalized kernel at scaled distances ``r = |u| / h``."""
    _check_kernel(kernel)
    if kernel == "gaussian":
        return -0.5 * r ** 2
    inside = r < 1  # sklearn's strict inequality: a point at distance h gets weight 0
    value = {"tophat": torch.ones_like(r), "linear": 1 - r,
             "epanechnikov": 1 - r ** 2}[kernel]
    return torch.where(inside, value.clamp_min(1e-300).log(), torch.full_like(r, -math.inf))


class KernelDensity:
    """Parzen-window density estimate with sklearn's interface (``fit``, ``score_samples``).

    Args:
        bandwidth: ``h > 0``, the same in every direction.
        kernel: one of :data:`KERNELS`.
    """

    def __init__(self, bandwidth: float = 1.0, kernel: str = "gaussian") -> None:
        _check_kernel(kernel)
        if not (isinstance(bandwidth, int | float) and bandwidth > 0 and math.isfinite(bandwidth)):
            raise ValueError(f"bandwidth must be a positive number, got {bandwidth!r}")
        self.bandwidth = float(bandwidth)
        self.kernel = kernel
        self.x: torch.Tensor | None = None

    def fit(self, x) -> KernelDensity:
        """Store the samples ``x`` of shape (n, d) (or (n,))."""
        self.x = _as_points(x)
        return self

    def score_samples(self, x, chunk: int = 4096) -> torch.Tensor:
        """``log f_h(x)`` at query points ``x`` (m, d) -> (m,), float64."""
        if self.x is None:
            raise ValueError("call fit(x) before score_samples")
        q = _as_points(x)
        n, d = self.x.shape
        if q.shape[1] != d:
            raise ValueError(f"query points have dimension {q.shape[1]}, fitted data {d}")
        log_c = math.log(n) + log_kernel_norm(self.kernel, d) + d * math.log(self.bandwidth)
        out = [torch.logsumexp(log_profile(self.kernel, _distances(block, self.x)
                                           / self.bandwidth), dim=1) - log_c  # (b,)
               for block in q.split(chunk)]
        return torch.cat(out)

    def score(self, x) -> float:
        """Total log-likelihood ``sum log f_h(x)`` (sklearn's ``score``, GridSearchCV's scorer)."""
        return float(self.score_samples(x).sum())


def kfold_slices(n: int, folds: int) -> list[slice]:
    """Contiguous folds as ``sklearn.model_selection.KFold(folds)`` (no shuffle) makes them."""
    if not 2 <= folds <= n:
        raise ValueError(f"need 2 <= folds <= n, got folds={folds}, n={n}")
    sizes = [n // folds + (1 if k < n % folds else 0) for k in range(folds)]
    starts = [sum(sizes[:k]) for k in range(folds)]
    return [slice(s, s + size) for s, size in zip(starts, sizes, strict=True)]


def cv_log_likelihood(x, bandwidths: Sequence[float], kernel: str = "gaussian",
                      folds: int = 5) -> torch.Tensor:
    """Mean over folds of the held-out total log-likelihood, one value per bandwidth:
    ``GridSearchCV(KernelDensity(kernel=kernel), {"bandwidth": bandwidths}, cv=folds)``'s
    ``cv_results_["mean_test_score"]``."""
    x = _as_points(x)
    scores = torch.zeros(len(bandwidths), dtype=torch.float64)
    for part in kfold_slices(len(x), folds):
        keep = torch.ones(len(x), dtype=torch.bool)
        keep[part] = False
        for b, h in enumerate(bandwidths):
            scores[b] += KernelDensity(h, kernel).fit(x[keep]).score(x[part]) / folds
    return scores


def _self_convolution(kernel: str, t: torch.Tensor, d: int) -> torch.Tensor:
    """``(K * K)(t)`` of the normalized kernel at distances ``t`` (gaussian: any d; the
    compact kernels: d = 1)."""
    if kernel == "gaussian":
        return torch.exp(-t ** 2 / 4) / (4 * math.pi) ** (d / 2)  # N(0, 2 I)
    if d != 1:
        raise ValueError(f"LSCV for the {kernel} kernel is implemented in 1-D only, got d={d}")
    s = (2 - t).clamp_min(0)
    if kernel == "tophat":
        return s / 4
    if kernel == "linear":
        return torch.where(t <= 1, 2 / 3 - t ** 2 + t ** 3 / 2, s ** 3 / 6)
    return 3 / 160 * s ** 3 * (t ** 2 + 6 * t + 4)  # epanechnikov


def lscv_score(x, bandwidth: float, kernel: str = "gaussian") -> float:
    """Least-squares cross-validation ``int f_h^2 - 2/n sum_i f_{h,-i}(x_i)`` (smaller is
    better; its expectation is ``MISE(h) - int f^2`` for a sample of n - 1 points)."""
    x = _as_points(x)
    n, d = x.shape
    if n < 2:
        raise ValueError(f"LSCV needs at least 2 points, got {n}")
    h = float(bandwidth)
    dist = _distances(x, x)  # (n, n)
    square = _self_convolution(kernel, dist / h, d).sum() / (n ** 2 * h ** d)
    k = torch.exp(log_profile(kernel, dist / h) - log_kernel_norm(kernel, d)) / h ** d
    leave_one_out = (k.sum(1) - k.diagonal()) / (n - 1)  # (n,)
    return float(square - 2 * leave_one_out.mean())


def _first_best(values: torch.Tensor, bandwidths: Sequence[float], largest: bool) -> float:
    # the first of tied optima, as GridSearchCV ranks ties
    target = values.max() if largest else values.min()
    return float(bandwidths[int(torch.nonzero(values == target)[0])])


def select_bandwidth_cv(x, bandwidths: Sequence[float], kernel: str = "gaussian",
                        folds: int = 5) -> float:
    """The bandwidth of largest cross-validated log-likelihood (first on ties)."""
    return _first_best(cv_log_likelihood(x, bandwidths, kernel, folds), bandwidths, True)


def select_bandwidth_lscv(x, bandwidths: Sequence[float], kernel: str = "gaussian") -> float:
    """The bandwidth of smallest LSCV, the data's estimate of the notes' MSE criterion."""
    values = torch.tensor([lscv_score(x, h, kernel) for h in bandwidths])
    return _first_best(values, bandwidths, False)


def integrated_squared_error(kde: KernelDensity, density: Callable[[torch.Tensor], torch.Tensor],
                             grid: torch.Tensor, cell_volume: float) -> float:
    """``int (f_h - f)^2`` by the midpoint rule on ``grid`` (m, d) of cells ``cell_volume``;
    ``density`` maps (m, d) points to ``f`` (m,)."""
    grid = _as_points(grid, "grid")
    return float(((kde.score_samples(grid).exp() - density(grid)) ** 2).sum() * cell_volume)


def scipy_factor(bandwidth: float, x) -> float:
    """scipy ``gaussian_kde(x, bw_method=factor)`` with the same 1-D Gaussian kernel as
    ``KernelDensity(bandwidth)``: ``factor = h / std(x, ddof=1)``."""
    x = _as_points(x)
    if x.shape[1] != 1:
        raise ValueError("the scalar mapping holds in 1-D only; whiten d-D data first")
    return float(bandwidth / x[:, 0].std(correction=1))


@dataclass(frozen=True)
class GaussianMixture:
    """Isotropic Gaussian mixture ``f = sum_k w_k N(mu_k, s_k^2 I)``: a known density whose
    ISE against a Gaussian KDE is exact (products of Gaussians integrate in closed form).

    Args:
        weights: (K,) summing to one. means: (K, d). stds: (K,) positive.
    """

    weights: tuple[float, ...]
    means: tuple[tuple[float, ...], ...]
    stds: tuple[float, ...]

    def __post_init__(self) -> None:
        k = len(self.weights)
        if not (len(self.means) == len(self.stds) == k) or k == 0:
            raise ValueError(f"need as many weights, means and stds, got {k}, "
                             f"{len(self.means)}, {len(self.stds)}")
        if abs(sum(self.weights) - 1) > 1e-9 or min(self.stds) <= 0:
            raise ValueError("weights must sum to 1 and stds be positive")

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f64 = torch.float64
        return (torch.tensor(self.weights, dtype=f64), torch.tensor(self.means, dtype=f64),
                torch.tensor(self.stds, dtype=f64))

    @staticmethod
    def _log_normal(sq_dist: torch.Tensor, var: torch.Tensor, d: int) -> torch.Tensor:
        return -0.5 * sq_dist / var - 0.5 * d * torch.log(2 * math.pi * var)

    def log_prob(self, x) -> torch.Tensor:
        """``log f(x)`` for x (m, d) -> (m,)."""
        w, mu, s = self._tensors()
        x = _as_points(x)
        sq = _distances(x, mu) ** 2  # (m, K)
        return torch.logsumexp(w.log() + self._log_normal(sq, s ** 2, mu.shape[1]), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n draws (n, d), float64."""
        w, mu, s = self._tensors()
        k = torch.multinomial(w, n, replacement=True, generator=generator)
        noise = torch.randn(n, mu.shape[1], generator=generator, dtype=torch.float64)
        return mu[k] + s[k, None] * noise

    def ise_gaussian_kde(self, x, bandwidth: float) -> float:
        """Exact ``int (f_h - f)^2`` for the Gaussian-kernel KDE of samples x (n, d)."""
        w, mu, s = self._tensors()
        x = _as_points(x)
        n, d = x.shape
        h2 = torch.tensor(float(bandwidth) ** 2, dtype=torch.float64)
        kde_sq = self._log_normal(_distances(x, x) ** 2, 2 * h2, d).exp().sum() / n ** 2
        cross = (w * self._log_normal(_distances(x, mu) ** 2, h2 + s ** 2, d).exp()).sum() / n
        var = s[:, None] ** 2 + s[None, :] ** 2  # (K, K)
        f_sq = (w[:, None] * w[None, :] * self._log_normal(_distances(mu, mu) ** 2, var, d)
                .exp()).sum()
        return float(kde_sq - 2 * cross + f_sq)

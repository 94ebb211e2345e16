"""Sampling from distributions one can sample from (notes sec. 8.4, remark "Sampling
Distribution"): everything starts from ``u ~ U([0, 1))`` (``torch.rand``).

* Uniform on a box: independent coordinates, ``P(x, y, z) = U(x) U(y) U(z)``.
* Gaussian by the central limit theorem: the *standardized* sum of n uniforms,
  ``(sum_i u_i - n/2) / sqrt(n/12)``, tends to N(0, 1). Its CDF is the Irwin-Hall CDF, so
  the error ``sup_x |F_n(x) - Phi(x)|`` is computed exactly (:func:`clt_sup_error`); it falls
  like 1/n for uniforms (zero skewness) and like 1/sqrt(n) for a skewed base (exponential,
  Berry-Esseen rate). The CLT needs a finite variance: the mean of n Cauchy draws is Cauchy
  for every n.
* Gaussian exactly by Box-Muller (Box and Muller 1958):
  ``z1 = sqrt(-2 log u1) cos(2 pi u2)``, ``z2 = sqrt(-2 log u1) sin(2 pi u2)``, independent
  N(0, 1); a full covariance ``Sigma = L L^T`` by ``mu + L z`` (not only diagonal ones).
* Any 1-D distribution by the inverse CDF: ``x = F^{-1}(u)``. Closed forms for exponential,
  Cauchy, Laplace, logistic, Rayleigh and Pareto; a tabulated ``F`` (cumulative trapezoid
  of a density on a grid, inverted by linear interpolation) for any density.

Every sampler takes a ``torch.Generator`` and returns float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from scipy.stats import gamma, irwinhall, norm

F64 = torch.float64


def _check_generator(generator) -> None:
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def uniform(shape: tuple[int, ...], generator: torch.Generator, low: float = 0.0,
            high: float = 1.0) -> torch.Tensor:
    """``U([low, high))`` draws of ``shape``; a trailing dimension is a uniform box."""
    _check_generator(generator)
    if not high > low:
        raise ValueError(f"need high > low, got low={low}, high={high}")
    return low + (high - low) * torch.rand(shape, generator=generator, dtype=F64)


def clt_gaussian(shape: tuple[int, ...], n_terms: int, generator: torch.Generator) -> torch.Tensor:
    """Approximate N(0, 1): the standardized sum of ``n_terms`` uniforms (mean n/2, var n/12)."""
    if n_terms < 1:
        raise ValueError(f"n_terms must be >= 1, got {n_terms}")
    u = uniform((*shape, n_terms), generator)
    return (u.sum(-1) - n_terms / 2) / math.sqrt(n_terms / 12)


def clt_sup_error(n_terms: int, base: str = "uniform", points: int = 4001) -> float:
    """Kolmogorov distance ``sup_x |F_n(x) - Phi(x)|`` of the standardized sum of n i.i.d.
    draws from ``base`` ("uniform": Irwin-Hall; "exponential": Gamma(n)), on a grid of
    ``points`` in [-6, 6] (the exact CDFs, no sampling)."""
    x = torch.linspace(-6, 6, points, dtype=F64).numpy()
    if base == "uniform":
        f_n = irwinhall(n_terms).cdf(n_terms / 2 + x * math.sqrt(n_terms / 12))
    elif base == "exponential":
        f_n = gamma(n_terms).cdf(n_terms + x * math.sqrt(n_terms))
    else:
        raise ValueError(f"base must be 'uniform' or 'exponential', got {base!r}")
    return float(abs(f_n - norm.cdf(x)).max())


def box_muller(n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` pairs of independent N(0, 1) draws, shape (n, 2)."""
    u1 = 1 - uniform((n,), generator)  # in (0, 1]: log(u1) is finite
    u2 = uniform((n,), generator)
    radius = torch.sqrt(-2 * torch.log(u1))
    angle = 2 * math.pi * u2
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)


def gaussian(n: int, mean: torch.Tensor, cov: torch.Tensor,
             generator: torch.Generator) -> torch.Tensor:
    """N(mean, cov) draws (n, d) as ``mean + L z`` with ``cov = L L^T`` (Cholesky), z from
    Box-Muller: any positive-definite covariance, not only a diagonal one."""
    mean = torch.as_tensor(mean, dtype=F64)
    cov = torch.as_tensor(cov, dtype=F64)
    d = mean.shape[0]
    if cov.shape != (d, d):
        raise ValueError(f"cov must be ({d}, {d}) for a mean of length {d}, got {tuple(cov.shape)}")
    chol = torch.linalg.cholesky(cov)  # raises on a covariance that is not positive definite
    z = box_muller((n * d + 1) // 2, generator).reshape(-1)[: n * d].reshape(n, d)
    return mean + z @ chol.T


# Inverse CDFs F^{-1}(u) of distributions with closed forms, u in [0, 1).
def _exponential(u, rate=1.0):
    return -torch.log1p(-u) / rate


def _cauchy(u, loc=0.0, scale=1.0):
    return loc + scale * torch.tan(math.pi * (u - 0.5))


def _laplace(u, loc=0.0, scale=1.0):
    c = u - 0.5
    return loc - scale * torch.sign(c) * torch.log1p(-2 * c.abs())


def _logistic(u, loc=0.0, scale=1.0):
    return loc + scale * (torch.log(u) - torch.log1p(-u))


def _rayleigh(u, scale=1.0):
    return scale * torch.sqrt(-2 * torch.log1p(-u))


def _pareto(u, shape=3.0, scale=1.0):
    return scale * (1 - u) ** (-1 / shape)


INVERSE_CDFS: dict[str, Callable[..., torch.Tensor]] = {
    "exponential": _exponential, "cauchy": _cauchy, "laplace": _laplace,
    "logistic": _logistic, "rayleigh": _rayleigh, "pareto": _pareto,
}


def inverse_cdf_sample(inverse_cdf: Callable[[torch.Tensor], torch.Tensor], n: int,
                       generator: torch.Generator) -> torch.Tensor:
    """``F^{-1}(u)`` for ``n`` uniforms: a draw from the distribution whose CDF is F (notes:
    ``P(z < F^{-1}(u) < z + eps) = P(F(z) < u < F(z + eps)) ~ eps p(z)``)."""
    u = uniform((n,), generator)
    return inverse_cdf(u.clamp_min(torch.finfo(F64).tiny))  # u = 0 would be -inf for some


def sample(distribution: str, n: int, generator: torch.Generator, **params: float) -> torch.Tensor:
    """``n`` draws by inversion from a named distribution of :data:`INVERSE_CDFS` with its
    parameters (e.g. ``sample("laplace", 1000, g, loc=0, scale=2)``)."""
    if distribution not in INVERSE_CDFS:
        raise ValueError(f"distribution must be one of {sorted(INVERSE_CDFS)}, got "
                         f"{distribution!r}")
    return inverse_cdf_sample(lambda u: INVERSE_CDFS[distribution](u, **params), n, generator)


def tabulated_inverse_cdf(density: Callable[[torch.Tensor], torch.Tensor], low: float,
                          high: float, points: int = 20001
                          ) -> Callable[[torch.Tensor], torch.Tensor]:
    """``F^{-1}`` of any 1-D density on [low, high], the notes' two steps done numerically:
    ``F`` by the cumulative trapezoid rule on a grid (normalized to end at 1), ``F^{-1}`` by
    linear interpolation of the grid against ``F``. ``density`` maps (m,) to (m,) >= 0."""
    if not (high > low and points >= 2):
        raise ValueError(f"need high > low and points >= 2, got {low}, {high}, {points}")
    grid = torch.linspace(low, high, points, dtype=F64)
    p = torch.as_tensor(density(grid), dtype=F64)
    if p.shape != grid.shape or (p < 0).any() or not torch.isfinite(p).all():
        raise ValueError("density must return finite non-negative values of the grid's shape")
    cdf = torch.cat([torch.zeros(1, dtype=F64),
                     torch.cumulative_trapezoid(p, grid)])  # (points,)
    if cdf[-1] <= 0:
        raise ValueError("density integrates to zero on [low, high]")
    cdf = cdf / cdf[-1]

    def inverse(u: torch.Tensor) -> torch.Tensor:
        idx = torch.searchsorted(cdf, u, right=True).clamp(1, points - 1)
        c0, c1 = cdf[idx - 1], cdf[idx]
        t = torch.where(c1 > c0, (u - c0) / (c1 - c0), torch.zeros_like(u))
        return grid[idx - 1] + t * (grid[idx] - grid[idx - 1])

    return inverse

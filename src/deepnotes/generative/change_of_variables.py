"""The density of a transformed variable (notes sec. 8.5): for ``x = M(z)``, M invertible
and differentiable from R^n onto R^n,

    p_x(x) = |det J_{M^{-1}}(x)| p_z(M^{-1}(x)) = p_z(z) / |det J_M(z)|,  z = M^{-1}(x).

The absolute value is of the determinant (the notes print ``det|J|``; the determinant of the
entrywise absolute Jacobian is a different number, zero for a 45-degree rotation scaled by
sqrt(2)). The log-determinant either comes in closed form from the map
(:meth:`Affine.inverse_log_det` and friends) or from autograd: the Jacobian of ``M^{-1}`` by
``torch.func.jacrev`` per point and ``torch.linalg.slogdet`` (:func:`autograd_log_density`),
the general route normalizing flows (notes 8.11) avoid by construction.

A histogram of ``M(z)`` draws checks the formula empirically: :func:`bin_masses` integrates
the formula over each bin, :func:`histogram_chi_square` compares counts with those masses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from scipy.stats import chisquare

F64 = torch.float64


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` summed over the last dimension: (n, d) -> (n,)."""
    return -0.5 * (z ** 2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


@dataclass(frozen=True)
class Affine:
    """``x = A z + b`` with invertible A (d, d); ``log|det J_{M^{-1}}| = -log|det A|``."""

    A: torch.Tensor
    b: torch.Tensor

    def __post_init__(self) -> None:
        d = self.b.shape[0]
        if self.A.shape != (d, d):
            raise ValueError(f"A must be ({d}, {d}) for b of length {d}, got {tuple(self.A.shape)}")
        if torch.linalg.det(self.A.to(F64)).abs() < 1e-12:
            raise ValueError("A is singular: the map is not invertible")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.A.T + self.b  # (n, d)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.solve(self.A, (x - self.b).unsqueeze(-1)).squeeze(-1)

    def inverse_log_det(self, x: torch.Tensor) -> torch.Tensor:
        return -torch.linalg.slogdet(self.A).logabsdet.expand(x.shape[:-1])


@dataclass(frozen=True)
class Sinh:
    """Elementwise ``x = loc + scale sinh(z)``: heavy tails from a Gaussian (any d);
    ``d asinh(y)/dy = 1 / sqrt(1 + y^2)`` per coordinate."""

    loc: float = 0.0
    scale: float = 1.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.loc + self.scale * torch.sinh(z)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return torch.asinh((x - self.loc) / self.scale)

    def inverse_log_det(self, x: torch.Tensor) -> torch.Tensor:
        y = (x - self.loc) / self.scale
        return (-0.5 * torch.log1p(y ** 2) - math.log(self.scale)).sum(-1)


@dataclass(frozen=True)
class Coupling2D:
    """An affine coupling (the building block of RealNVP/Glow, notes 8.11) in 2-D:
    ``x1 = z1``, ``x2 = z2 exp(a z1) + c sin(z1)``; inverse ``z2 = (x2 - c sin x1) exp(-a x1)``,
    so ``log|det J_{M^{-1}}(x)| = -a x1`` (a triangular Jacobian)."""

    a: float = 0.5
    c: float = 1.5

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z1, z2 = z[..., 0], z[..., 1]
        return torch.stack([z1, z2 * torch.exp(self.a * z1) + self.c * torch.sin(z1)], -1)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[..., 0], x[..., 1]
        return torch.stack([x1, (x2 - self.c * torch.sin(x1)) * torch.exp(-self.a * x1)], -1)

    def inverse_log_det(self, x: torch.Tensor) -> torch.Tensor:
        return -self.a * x[..., 0]


def log_density(x: torch.Tensor, bijection, log_pz: Callable[[torch.Tensor], torch.Tensor]
                ) -> torch.Tensor:
    """``log p_x(x) = log p_z(M^{-1}(x)) + log|det J_{M^{-1}}(x)|`` with the map's closed-form
    log-determinant; x (n, d) -> (n,)."""
    return log_pz(bijection.inverse(x)) + bijection.inverse_log_det(x)


def inverse_jacobians(x: torch.Tensor, inverse: Callable[[torch.Tensor], torch.Tensor]
                      ) -> torch.Tensor:
    """``J_{M^{-1}}(x_i)`` for every row by autograd: (n, d) -> (n, d, d)."""
    if x.dim() != 2:
        raise ValueError(f"x must be (n, d), got {tuple(x.shape)}")
    return torch.func.vmap(torch.func.jacrev(inverse))(x)


def autograd_log_density(x: torch.Tensor, inverse: Callable[[torch.Tensor], torch.Tensor],
                         log_pz: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """The same density with the log-determinant from autograd's Jacobian and ``slogdet``;
    ``inverse`` must map one point (d,) to (d,) (it is vmapped)."""
    jac = inverse_jacobians(x, inverse)  # (n, d, d)
    return log_pz(inverse(x)) + torch.linalg.slogdet(jac).logabsdet


def bin_masses(log_density_fn: Callable[[torch.Tensor], torch.Tensor],
               edges: Sequence[torch.Tensor], sub: int = 4) -> torch.Tensor:
    """Probability of each histogram bin under a density: midpoint rule with ``sub`` points
    per bin and dimension. ``edges``: one increasing (B_k + 1,) tensor per dimension;
    returns a (B_1, ..., B_d) tensor."""
    offsets = (torch.arange(sub, dtype=F64) + 0.5) / sub  # (sub,)
    points, widths = [], []
    for e in edges:
        e = e.to(F64)
        width = e[1:] - e[:-1]  # (B,)
        points.append((e[:-1, None] + offsets[None, :] * width[:, None]).reshape(-1))
        widths.append((width / sub).repeat_interleave(sub))
    d = len(edges)
    grid = torch.cartesian_prod(*points).reshape(-1, d)  # (prod B_k sub, d)
    volume = torch.cartesian_prod(*widths).reshape(-1, d).prod(-1)
    mass = (log_density_fn(grid).exp() * volume).reshape(
        [n for e in edges for n in (len(e) - 1, sub)])  # (B_1, sub, ..., B_d, sub)
    return mass.sum(dim=tuple(range(1, 2 * d, 2)))


def histogram_counts(samples: torch.Tensor, edges: Sequence[torch.Tensor]) -> torch.Tensor:
    """Counts of ``samples`` (n, d) in the bins given by ``edges`` (outside ones dropped)."""
    counts, _ = torch.histogramdd(samples.to(F64), bins=[e.to(F64) for e in edges])
    return counts


def histogram_chi_square(samples: torch.Tensor, masses: torch.Tensor,
                         edges: Sequence[torch.Tensor], min_expected: float = 5.0
                         ) -> tuple[float, float]:
    """Pearson chi-square of the histogram against ``n * masses``: bins expecting fewer than
    ``min_expected`` draws and everything outside the edges are pooled into one cell.
    Returns ``(statistic, p_value)``."""
    n = samples.shape[0]
    observed = histogram_counts(samples, edges).reshape(-1)
    expected = n * masses.reshape(-1)
    keep = expected >= min_expected
    if keep.sum() < 2:
        raise ValueError("fewer than two bins expect enough draws; use more samples")
    obs = torch.cat([observed[keep], (n - observed[keep].sum()).reshape(1)])
    exp = torch.cat([expected[keep], (n - expected[keep].sum()).clamp_min(1e-12).reshape(1)])
    exp = exp * (n / exp.sum())  # masses integrate to ~1; absorb the quadrature error
    result = chisquare(obs.numpy(), exp.numpy())
    return float(result.statistic), float(result.pvalue)

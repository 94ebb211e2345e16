"""Test functions for optimizers: an ill-conditioned quadratic, Rosenbrock, a double well.

All take a batch of points and return one value per point, so one call can evaluate many
independent chains or runs at once.
"""

from __future__ import annotations

import torch


def rosenbrock(xy: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    """Rosenbrock's banana ``f(x, y) = (a - x)^2 + b (y - x^2)^2``; minimum 0 at ``(a, a^2)``.

    Args:
        xy: points, shape ``(..., 2)``.
    Returns:
        values, shape ``(...)``.
    """
    if xy.shape[-1] != 2:
        raise ValueError(f"rosenbrock expects points of shape (..., 2), got {tuple(xy.shape)}")
    x, y = xy[..., 0], xy[..., 1]
    return (a - x) ** 2 + b * (y - x**2) ** 2


def rosenbrock_grad(xy: torch.Tensor, a: float = 1.0, b: float = 100.0) -> torch.Tensor:
    """Gradient of :func:`rosenbrock`: ``(-2(a - x) - 4 b x (y - x^2), 2 b (y - x^2))``."""
    if xy.shape[-1] != 2:
        raise ValueError(f"rosenbrock_grad expects shape (..., 2), got {tuple(xy.shape)}")
    x, y = xy[..., 0], xy[..., 1]
    r = y - x**2
    return torch.stack([-2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r], dim=-1)


def double_well(x: torch.Tensor, tilt: float = 0.0) -> torch.Tensor:
    """``E(x) = (x^2 - 1)^2 + tilt * x``: two wells near ``x = -1, 1``, barrier ~1 at ``x = 0``.

    A positive ``tilt`` lowers the left well, so the two wells hold unequal mass.
    Shape-preserving (elementwise).
    """
    return (x**2 - 1.0) ** 2 + tilt * x


def double_well_grad(x: torch.Tensor, tilt: float = 0.0) -> torch.Tensor:
    """``E'(x) = 4 x (x^2 - 1) + tilt`` (elementwise)."""
    return 4.0 * x * (x**2 - 1.0) + tilt


class Quadratic:
    """``f(x) = 1/2 x^T A x`` with ``A = Q diag(lambda) Q^T`` of a chosen condition number.

    The eigenvalues are spaced geometrically from ``1 / condition_number`` to ``1`` and the
    eigenbasis ``Q`` is a random rotation (unless ``rotate=False``), so the ill-conditioning
    is not aligned with the coordinate axes that AdaGrad and Adam rescale.

    Args:
        dim: dimension ``d``.
        condition_number: ``kappa = lambda_max / lambda_min`` (>= 1).
        rotate: random eigenbasis; ``False`` keeps ``A`` diagonal.
        generator: seeds the rotation.
        dtype: of ``A``.
    """

    def __init__(self, dim: int, condition_number: float, rotate: bool = True,
                 generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1, got {dim}")
        if condition_number < 1:
            raise ValueError(f"condition_number must be >= 1, got {condition_number}")
        self.eigenvalues = torch.logspace(
            -torch.log10(torch.tensor(float(condition_number))).item(), 0.0, dim, dtype=dtype)
        if rotate:
            q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator, dtype=dtype))
            q = q * torch.sign(torch.diagonal(r))  # a uniformly random rotation (Haar)
        else:
            q = torch.eye(dim, dtype=dtype)
        self.A = q @ torch.diag(self.eigenvalues) @ q.T  # (d, d)
        self.L = float(self.eigenvalues.max())
        self.mu = float(self.eigenvalues.min())

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Values at points ``x`` of shape ``(..., d)``; returns shape ``(...)``."""
        return 0.5 * torch.einsum("...i,ij,...j->...", x, self.A.to(x.dtype), x)

    def heavy_ball_parameters(self) -> tuple[float, float]:
        """Polyak's optimal ``(lr, momentum)`` for this quadratic.

        ``lr = 4 / (sqrt(L) + sqrt(mu))^2``,
        ``momentum = ((sqrt(L) - sqrt(mu)) / (sqrt(L) + sqrt(mu)))^2``: the error then shrinks
        like ``((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^t`` instead of gradient descent's
        ``((kappa - 1) / (kappa + 1))^t``.
        """
        sl, sm = self.L**0.5, self.mu**0.5
        return 4.0 / (sl + sm) ** 2, ((sl - sm) / (sl + sm)) ** 2

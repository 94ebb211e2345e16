"""Gradient descent with Gaussian noise as a sampler: the (unadjusted) Langevin algorithm.

Notes 9.1. The overdamped Langevin equation with temperature ``T``::

    dx = -grad E(x) dt + sqrt(2 T) dW          (W a standard Wiener process)

has the stationary (Gibbs) density ``p(x) ~ exp(-E(x) / T)``. Its Euler-Maruyama step with
time step ``lr`` is noisy gradient descent (Roberts & Tweedie 1996; Welling & Teh 2011)::

    x <- x - lr * grad E(x) + s * xi,           xi ~ N(0, I),   s = sqrt(2 * lr * T)

so noise of standard deviation ``s`` per step means ``T = s^2 / (2 lr)``. The notes write
``exp(-E / sigma^2)`` for ``dx/dt = -grad E + eta(t)`` without saying what ``sigma`` is: with
white noise of intensity ``<eta(t) eta(t')> = sigma^2 delta(t - t')`` the density is
``exp(-2 E / sigma^2)``, i.e. ``T = sigma^2 / 2`` (docs/ERRATA.md).

Mini-batch SGD is the same recursion with the gradient noise of the batch: if one example's
gradient has variance ``sigma_g^2`` around the full gradient, a batch of ``B`` (drawn with
replacement) has ``sigma_g^2 / B``, so ``s = lr * sigma_g / sqrt(B)`` and the effective
temperature is ``T = lr * sigma_g^2 / (2 B)``: it grows with ``lr / B`` (Mandt, Hoffman & Blei
2017; Jastrzebski et al. 2017).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

from deepnotes.optim._common import (
    GroupwiseOptimizer,
    by_device_and_dtype,
    check_nonnegative,
)


def langevin_temperature(lr: float, noise_std: float) -> float:
    """``T = s^2 / (2 lr)``: the temperature of ``x <- x - lr grad E + s xi``."""
    lr = check_nonnegative("lr", lr)
    if lr == 0.0:
        raise ValueError("lr must be > 0 to define a temperature, got 0")
    return check_nonnegative("noise_std", noise_std) ** 2 / (2.0 * lr)


def sgd_temperature(lr: float, gradient_variance: float, batch_size: int) -> float:
    """``T = lr * sigma_g^2 / (2 B)``: effective temperature of mini-batch SGD.

    Args:
        lr: step size.
        gradient_variance: ``sigma_g^2``, variance of one example's gradient about the mean.
        batch_size: ``B`` (examples drawn independently, with replacement).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return check_nonnegative("lr", lr) * check_nonnegative(
        "gradient_variance", gradient_variance) / (2.0 * batch_size)


def gibbs_density(energy: torch.Tensor, temperature: float, dx: float) -> torch.Tensor:
    """``exp(-E/T) / Z`` on an evenly spaced 1-D grid (``Z`` by the rectangle rule).

    Args:
        energy: ``E`` on the grid, shape ``(n,)``.
        temperature: ``T > 0``.
        dx: grid spacing.
    Returns:
        density values, shape ``(n,)``, summing to ``1 / dx``.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p = -(energy - energy.min()) / temperature  # shift for stability
    p = torch.exp(log_p)
    return p / (p.sum() * dx)


class Langevin(GroupwiseOptimizer):
    """Unadjusted Langevin algorithm: ``x <- x - lr * g + sqrt(2 lr T) * xi``.

    Args:
        params: parameters or parameter groups.
        lr: time step ``lr`` (> 0).
        temperature: ``T`` (>= 0); 0 is plain gradient descent.
        generator: optional ``torch.Generator`` for the noise (on the parameters' device);
            ``None`` uses the global RNG (which run checkpoints save and restore).
        foreach: fused ``torch._foreach_*`` kernels per device/dtype bucket.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        temperature: float,
        generator: torch.Generator | None = None,
        foreach: bool = True,
    ) -> None:
        if check_nonnegative("lr", lr) == 0.0:
            raise ValueError("lr must be > 0 for Langevin dynamics, got 0")
        defaults = dict(lr=float(lr), temperature=check_nonnegative("temperature", temperature),
                        foreach=bool(foreach))
        super().__init__(params, defaults)
        self.generator = generator

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor]) -> None:
        """One noisy gradient step of one group's parameters that have a gradient."""
        lr, T = group["lr"], group["temperature"]
        noise_std = math.sqrt(2.0 * lr * T)
        noise = [torch.randn(p.shape, dtype=p.dtype, device=p.device,
                             generator=self.generator) for p in params]
        if group["foreach"]:
            for x, g, xi in by_device_and_dtype(params, grads, noise):
                torch._foreach_add_(x, g, alpha=-lr)
                torch._foreach_add_(x, xi, alpha=noise_std)
        else:
            for x, g, xi in zip(params, grads, noise, strict=True):
                x.add_(g, alpha=-lr).add_(xi, alpha=noise_std)


def fit_gibbs_temperature(
    samples: torch.Tensor,
    energy: Callable[[torch.Tensor], torch.Tensor],
    low: float,
    high: float,
    grid_points: int = 4001,
    bounds: tuple[float, float] = (1e-3, 1e3),
) -> float:
    """Maximum-likelihood ``T`` of 1-D samples under ``p_T(x) = exp(-E(x)/T) / Z(T)``.

    ``Z(T)`` is integrated on ``grid_points`` points of ``[low, high]`` (which must hold
    essentially all the mass); the negative log-likelihood
    ``mean(E(x))/T + log Z(T)`` is minimized over ``log T`` within ``bounds``.

    Args:
        samples: shape ``(n,)``.
        energy: elementwise ``E``.
    Returns:
        the fitted temperature.
    """
    from scipy.optimize import minimize_scalar

    if samples.ndim != 1 or samples.numel() < 2:
        raise ValueError(f"samples must be 1-D with >= 2 values, got shape {tuple(samples.shape)}")
    x = samples.detach().to(torch.float64)
    grid = torch.linspace(low, high, grid_points, dtype=torch.float64)
    e_grid = energy(grid)
    e_min = float(e_grid.min())
    mean_energy = float(energy(x).mean()) - e_min
    e_grid = e_grid - e_min
    dx = (high - low) / (grid_points - 1)

    def nll(log_t: float) -> float:
        t = math.exp(log_t)
        log_z = float(torch.logsumexp(-e_grid / t, dim=0)) + math.log(dx)
        return mean_energy / t + log_z

    found = minimize_scalar(nll, bounds=(math.log(bounds[0]), math.log(bounds[1])),
                            method="bounded", options={"xatol": 1e-6})
    return math.exp(found.x)

"""Universal approximation with one hidden layer (notes section 3.1).

Cybenko (1989): for a continuous sigmoidal ``sigma`` the sums

    f(x) = sum_i alpha_i sigma(w_i x + b_i)

are dense in C([0, 1]) under the sup norm ``d(f, g) = sup_x |f(x) - g(x)|``. Hornik (1991)
extends this to every bounded *non-constant* ``sigma``.

Two ways to build such an ``f`` are implemented:

* :func:`fit_sigmoid_readout` -- the hidden layer is drawn at random once (centres uniform in
  [0, 1], slopes log-uniform) and only the output layer ``(alpha, c)`` is fitted, by linear
  least squares. Using the first ``width`` of one fixed draw makes the models nested, so the
  training error cannot grow with width.
* :func:`staircase_net` -- the constructive proof: the notes' relu difference
  ``relu(W x + b_1) - relu(W x + b_2)`` with ``b_1 - b_2 = 1`` and ``W > 0`` is a bounded
  sigmoidal ramp (0 far left, 1 far right); a sum of ramps is a staircase. For an
  L-Lipschitz ``g``, the staircase with N cells that takes the value ``g(m_k)`` at the cell
  midpoints and ramps of width ``delta <= 1/N`` centred on the cell edges has
  ``sup |f - g| <= L / N`` on [0, 1] (each ``f(x)`` is a convex combination of values of
  ``g`` at midpoints within ``1/N`` of ``x``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from deepnotes.theory.relu_net import ScalarReluNet


def relu_ramp(x: torch.Tensor, center: float, delta: float) -> torch.Tensor:
    """``relu((x - c)/delta + 1/2) - relu((x - c)/delta - 1/2)``: 0 left of ``c - delta/2``,
    1 right of ``c + delta/2``, linear between (the notes' relu-difference sigmoid)."""
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    z = (x - center) / delta
    return torch.relu(z + 0.5) - torch.relu(z - 0.5)


def random_sigmoid_layer(width: int, generator: torch.Generator,
                         slope_range: tuple[float, float] = (1.0, 300.0),
                         dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """A random hidden layer ``(w, b)``, each ``(width,)``: ``sigma(w x + b)`` switches at a
    centre uniform in [0, 1] with a slope ``|w|`` log-uniform in ``slope_range`` and a random
    sign."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    lo, hi = slope_range
    if not 0 < lo <= hi:
        raise ValueError(f"slope_range must satisfy 0 < lo <= hi, got {slope_range}")
    center = torch.rand(width, generator=generator, dtype=dtype)
    log_slope = math.log(lo) + (math.log(hi) - math.log(lo)) * torch.rand(
        width, generator=generator, dtype=dtype)
    sign = torch.where(torch.rand(width, generator=generator) < 0.5, -1.0, 1.0).to(dtype)
    w = sign * log_slope.exp()
    return w, -w * center


def sigmoid_features(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sigma(w_i x + b_i)``: x ``(N,)``, w and b ``(width,)`` -> ``(N, width)``."""
    return torch.sigmoid(x[:, None] * w[None, :] + b[None, :])


def fit_sigmoid_readout(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                        b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares output layer ``(alpha (width,), c ())`` of ``sum alpha_i sigma(.) + c``.

    Minimises ``sum_k (f(x_k) - y_k)^2`` (SVD-based LAPACK ``gelsd``: singular values below
    ``1e-12`` of the largest are dropped, so near-duplicate units do not blow the weights up;
    the QR-based ``gelsy`` truncates far more crudely here, 1e-1 instead of 1e-11 at width
    128 on ``sin(2 pi x)``).
    """
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must both be (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    phi = torch.cat([sigmoid_features(x, w, b), torch.ones_like(x)[:, None]], dim=1)
    sol = torch.linalg.lstsq(phi, y[:, None], rcond=1e-12, driver="gelsd").solution[:, 0]
    return sol[:-1], sol[-1]


def sigmoid_net(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, alpha: torch.Tensor,
                c: torch.Tensor) -> torch.Tensor:
    """``f(x) = sum_i alpha_i sigma(w_i x + b_i) + c`` for x ``(N,)`` -> ``(N,)``."""
    return sigmoid_features(x, w, b) @ alpha + c


def sup_error(f: torch.Tensor, g: torch.Tensor) -> float:
    """``max_k |f_k - g_k|`` on a grid (a lower estimate of the sup norm)."""
    return (f - g).abs().max().item()


def staircase_net(g: Callable[[float], float], cells: int, delta: float | None = None,
                  dtype: torch.dtype = torch.float64) -> ScalarReluNet:
    """A one-hidden-layer relu net approximating ``g`` on [0, 1] by a staircase of ramps.

        f(x) = g(m_1) + sum_{k=1}^{N-1} (g(m_{k+1}) - g(m_k)) ramp(x; k/N, delta),

    with midpoints ``m_k = (k - 1/2)/N``; each ramp is two relu units, ``2(N - 1)`` in all.

    Args:
        g: the target, a function of a float.
        cells: N >= 1.
        delta: ramp width, default ``1/(2N)``; the ``L/N`` bound needs ``delta <= 1/N``.
    """
    if cells < 1:
        raise ValueError(f"cells must be >= 1, got {cells}")
    delta = 1.0 / (2 * cells) if delta is None else delta
    if delta <= 0:
        raise ValueError(f"delta must be > 0, got {delta}")
    mids = [g((k - 0.5) / cells) for k in range(1, cells + 1)]
    w_in, b_in, w_out = [], [], []
    for k in range(1, cells):
        jump, c = mids[k] - mids[k - 1], k / cells
        # ramp = relu(x/delta - c/delta + 1/2) - relu(x/delta - c/delta - 1/2)
        w_in += [[1 / delta], [1 / delta]]
        b_in += [-c / delta + 0.5, -c / delta - 0.5]
        w_out += [jump, -jump]
    if not w_in:
        w_in, b_in, w_out = [[0.0]], [0.0], [0.0]
    return ScalarReluNet([w_in, [w_out]], [b_in, [mids[0]]], dtype=dtype)

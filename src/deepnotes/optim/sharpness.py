"""Keskar et al.'s sharpness of a minimum: the worst relative loss increase in a small box.

Notes 9.2; Keskar, Mudigere, Nocedal, Smelyanskiy & Tang (ICLR 2017), Metric 2.1. For
parameters ``x`` with loss ``f(x)`` and the box

    C_eps = { delta : |delta_i| <= eps * (|x_i| + 1) for every coordinate i }

the sharpness is ``100 * (max_{delta in C_eps} f(x + delta) - f(x)) / (1 + f(x))``.
(The notes print ``max L(x+y) / (1 + L(x))`` without subtracting ``L(x)`` or the 100.)

Keskar et al. solve the inner maximization with L-BFGS-B in the full space. Here it is
projected steepest ascent for the box's (weighted max-norm) geometry: from a uniformly random
start inside the box (at an exact minimum the gradient is zero and an ascent from
``delta = 0`` would never move), ``steps`` updates
``delta <- clip(delta + step_fraction * w * sign(grad f), -w, w)`` with ``w = eps (|x| + 1)``,
keeping the largest loss seen. It is a lower bound on the true maximum, as is any local
ascent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch


class Sharpness(NamedTuple):
    """Result of :func:`keskar_sharpness`: the metric and the two losses it compares."""

    sharpness: float  # 100 * (max_loss - loss) / (1 + loss)
    loss: float  # f(x)
    max_loss: float  # the largest f(x + delta) found in the box


def keskar_sharpness(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    eps: float,
    steps: int = 20,
    step_fraction: float = 0.25,
    generator: torch.Generator | None = None,
) -> Sharpness:
    """Keskar sharpness of ``loss_fn`` at the current ``params`` (restored exactly afterwards).

    Args:
        loss_fn: computes the scalar loss ``f`` from the current values of ``params``
            (e.g. the training loss over a fixed set of examples, model in eval mode).
        params: the parameters ``x`` (tensors with ``requires_grad=True``).
        eps: box size ``epsilon`` (> 0), e.g. 1e-3 or 5e-4 as in the paper.
        steps: projected ascent steps (>= 1); each costs one forward and backward pass.
        step_fraction: each step moves ``step_fraction`` of the box half-width per coordinate.
        generator: seeds the random start (CPU generator; ``None``: global RNG).
    Returns:
        :class:`Sharpness` ``(sharpness, loss, max_loss)``.
    """
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 < step_fraction <= 1:
        raise ValueError(f"step_fraction must be in (0, 1], got {step_fraction}")
    params = list(params)
    if not params or not all(p.requires_grad for p in params):
        raise ValueError("params must be a non-empty list of tensors with requires_grad=True")
    origin = [p.detach().clone() for p in params]
    width = [eps * (x.abs() + 1.0) for x in origin]  # box half-widths w
    delta = [(2.0 * torch.rand(x.shape, generator=generator, dtype=x.dtype) - 1.0).to(x.device)
             * w for x, w in zip(origin, width, strict=True)]  # uniform in the box
    try:
        with torch.no_grad():
            loss = float(loss_fn())  # f(x)
        max_loss = loss
        for _ in range(steps):
            with torch.no_grad():
                for p, x, d in zip(params, origin, delta, strict=True):
                    p.copy_(x + d)
            value = loss_fn()  # f(x + delta)
            max_loss = max(max_loss, float(value.detach()))
            grads = torch.autograd.grad(value, params)
            with torch.no_grad():
                for w, d, g in zip(width, delta, grads, strict=True):
                    d.add_(step_fraction * w * torch.sign(g))
                    d.copy_(torch.maximum(torch.minimum(d, w), -w))  # project onto the box
        with torch.no_grad():
            for p, x, d in zip(params, origin, delta, strict=True):
                p.copy_(x + d)
            max_loss = max(max_loss, float(loss_fn()))
    finally:
        with torch.no_grad():
            for p, x in zip(params, origin, strict=True):
                p.copy_(x)
    return Sharpness(100.0 * (max_loss - loss) / (1.0 + loss), loss, max_loss)

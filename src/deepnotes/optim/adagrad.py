"""AdaGrad: per-coordinate step sizes from the accumulated squared gradients.

Notes 9.3.3; Duchi, Hazan & Singer (2011). For every coordinate ``k``::

    G_k <- G_k + g_k^2                      (sum over *all* past steps)
    theta_k <- theta_k - lr * g_k / (sqrt(G_k) + eps)

Coordinates that have seen large gradients take small steps and vice versa. Because ``G`` only
grows, the effective step ``lr / (sqrt(G_k) + eps)`` never increases; that is what the regret
bound of Duchi et al. rests on. This is ``torch.optim.Adagrad`` (``lr_decay=0``).

Two readings of the notes are available as explicit options (docs/ERRATA.md):

- ``eps_inside_sqrt=True``: ``g / sqrt(eps + G)`` as the notes write it (torch, and Duchi et
  al.'s ``delta I + diag(G)^{1/2}``, put ``eps`` outside the root). Both are safe; they differ
  in how small gradients are scaled.
- ``window=t``: sum only the last ``t`` squared gradients, the notes' "time window of t steps".
  That is not AdaGrad: the effective step can grow again once large gradients leave the window
  (it behaves like RMSProp with a box window). Kept for comparison, per-tensor and slower.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from deepnotes.optim._common import (
    GroupwiseOptimizer,
    by_device_and_dtype,
    check_nonnegative,
)


class AdaGrad(GroupwiseOptimizer):
    """AdaGrad as a ``torch.optim.Optimizer``, matching ``torch.optim.Adagrad``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate ``eta`` (>= 0).
        eps: ``epsilon`` added to the root (>= 0), guards division by ~0.
        weight_decay: L2 coefficient added to the gradient (>= 0).
        initial_accumulator_value: starting value of ``G`` (>= 0).
        eps_inside_sqrt: use the notes' ``sqrt(eps + G)`` instead of ``sqrt(G) + eps``.
        window: if set, ``G`` sums only the last ``window`` squared gradients (the notes'
            window; not AdaGrad, see the module docstring).
        foreach: fused ``torch._foreach_*`` kernels per device/dtype bucket (ignored when
            ``window`` is set).

    State per parameter: ``step`` (int), ``sum`` (``G``), and with a window
    ``squared_gradients`` of shape ``(window, *param.shape)`` (a ring buffer).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        eps: float = 1e-10,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps_inside_sqrt: bool = False,
        window: int | None = None,
        foreach: bool = True,
    ) -> None:
        if window is not None and (isinstance(window, bool) or not isinstance(window, int)
                                   or window < 1):
            raise ValueError(f"window must be None (all steps) or an int >= 1, got {window!r}")
        defaults = dict(
            lr=check_nonnegative("lr", lr),
            eps=check_nonnegative("eps", eps),
            weight_decay=check_nonnegative("weight_decay", weight_decay),
            initial_accumulator_value=check_nonnegative(
                "initial_accumulator_value", initial_accumulator_value),
            eps_inside_sqrt=bool(eps_inside_sqrt),
            window=window,
            foreach=bool(foreach),
        )
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor]) -> None:
        """The AdaGrad update of one group's parameters that have a gradient."""
        window = group["window"]
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["sum"] = torch.full_like(p, group["initial_accumulator_value"],
                                               memory_format=torch.preserve_format)
                if window is not None:
                    state["squared_gradients"] = torch.zeros(
                        (window, *p.shape), dtype=p.dtype, device=p.device)
            state["step"] += 1
        kwargs = dict(lr=group["lr"], eps=group["eps"], weight_decay=group["weight_decay"],
                      eps_inside_sqrt=group["eps_inside_sqrt"])
        if window is not None:
            _adagrad_window(params, grads, [self.state[p] for p in params],
                            initial=group["initial_accumulator_value"], **kwargs)
            return
        sums = [self.state[p]["sum"] for p in params]
        update = adagrad_foreach if group["foreach"] else adagrad_single
        update(params, grads, sums, **kwargs)


def adagrad_single(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    sums: list[torch.Tensor],
    *,
    lr: float,
    eps: float,
    weight_decay: float,
    eps_inside_sqrt: bool,
) -> None:
    """The AdaGrad update tensor by tensor (reference path; see :class:`AdaGrad`)."""
    for theta, g, G in zip(params, grads, sums, strict=True):
        if weight_decay != 0.0:
            g = g.add(theta, alpha=weight_decay)
        G.addcmul_(g, g)  # G <- G + g^2
        denom = G.add(eps).sqrt_() if eps_inside_sqrt else G.sqrt().add_(eps)
        theta.addcdiv_(g, denom, value=-lr)


def adagrad_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    sums: list[torch.Tensor],
    *,
    lr: float,
    eps: float,
    weight_decay: float,
    eps_inside_sqrt: bool,
) -> None:
    """The same update as :func:`adagrad_single`, each device/dtype bucket in fused kernels."""
    for theta, g, G in by_device_and_dtype(params, grads, sums):
        if weight_decay != 0.0:
            g = torch._foreach_add(g, theta, alpha=weight_decay)
        torch._foreach_addcmul_(G, g, g)
        if eps_inside_sqrt:
            denom = torch._foreach_add(G, eps)
            torch._foreach_sqrt_(denom)
        else:
            denom = torch._foreach_sqrt(G)
            torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(theta, g, denom, value=-lr)


def _adagrad_window(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    states: list[dict[str, Any]],
    *,
    initial: float,
    lr: float,
    eps: float,
    weight_decay: float,
    eps_inside_sqrt: bool,
) -> None:
    """The notes' windowed variant: ``G`` = initial + the last ``window`` squared gradients."""
    for theta, g, state in zip(params, grads, states, strict=True):
        if weight_decay != 0.0:
            g = g.add(theta, alpha=weight_decay)
        history = state["squared_gradients"]  # (window, *theta.shape), a ring buffer
        history[(state["step"] - 1) % history.shape[0]] = g * g
        # Re-summing (rather than adding the new and subtracting the oldest) keeps G exact
        # and never lets rounding drive it below zero.
        G = state["sum"]
        torch.sum(history, dim=0, out=G)
        G.add_(initial)
        denom = G.add(eps).sqrt_() if eps_inside_sqrt else G.sqrt().add_(eps)
        theta.addcdiv_(g, denom, value=-lr)

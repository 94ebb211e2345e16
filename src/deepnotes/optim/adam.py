"""Adam: momentum on the gradient, AdaGrad-like scaling by a running second moment.

Notes 9.3.4; Kingma & Ba (2015), Algorithm 1. At step ``t = 1, 2, ...`` with gradient ``g``::

    m <- beta1 * m + (1 - beta1) * g            v <- beta2 * v + (1 - beta2) * g^2
    m_hat = m / (1 - beta1^t)                   v_hat = v / (1 - beta2^t)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)

``m`` and ``v`` start at zero, so early on they are biased towards zero by exactly the factor
``1 - beta^t``; dividing by it makes ``m_hat`` an unbiased estimate of ``E[g]`` for stationary
gradients. The notes divide by ``1 - beta1`` and ``1 - beta2`` (no power ``t``):
``notes_bias_correction=True`` reproduces that; it over-scales ``m`` by up to ``1/(1-beta1)``
and ``v`` by up to ``1/(1-beta2)`` once ``t`` is large (docs/ERRATA.md).
The default matches ``torch.optim.Adam`` (``amsgrad=False``, L2 ``weight_decay`` on ``g``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from deepnotes.optim._common import (
    GroupwiseOptimizer,
    by_device_and_dtype,
    check_nonnegative,
    check_unit_interval,
)


class Adam(GroupwiseOptimizer):
    """Adam as a ``torch.optim.Optimizer``, matching ``torch.optim.Adam``.

    Args:
        params: parameters or parameter groups.
        lr: learning rate ``eta`` (>= 0).
        betas: ``(beta1, beta2)``, each in [0, 1): decay of the first and second moments.
        eps: added to ``sqrt(v_hat)`` (>= 0).
        weight_decay: L2 coefficient added to the gradient (>= 0).
        notes_bias_correction: divide by ``1 - beta`` instead of ``1 - beta^t`` (the notes).
        foreach: fused ``torch._foreach_*`` kernels per device/dtype bucket; ``False`` loops
            tensor by tensor.

    State per parameter: ``step`` (int ``t``), ``exp_avg`` (``m``), ``exp_avg_sq`` (``v``).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        notes_bias_correction: bool = False,
        foreach: bool = True,
    ) -> None:
        if len(tuple(betas)) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        beta1, beta2 = betas
        defaults = dict(
            lr=check_nonnegative("lr", lr),
            betas=(check_unit_interval("beta1", beta1), check_unit_interval("beta2", beta2)),
            eps=check_nonnegative("eps", eps),
            weight_decay=check_nonnegative("weight_decay", weight_decay),
            notes_bias_correction=bool(notes_bias_correction),
            foreach=bool(foreach),
        )
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor]) -> None:
        """The Adam update of one group's parameters that have a gradient."""
        for p in params:
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["step"] += 1
        update = adam_foreach if group["foreach"] else adam_single
        update(params, grads,
               [self.state[p]["exp_avg"] for p in params],
               [self.state[p]["exp_avg_sq"] for p in params],
               [self.state[p]["step"] for p in params],
               lr=group["lr"], betas=group["betas"], eps=group["eps"],
               weight_decay=group["weight_decay"],
               notes_bias_correction=group["notes_bias_correction"])


def bias_corrections(
    step: int, betas: tuple[float, float], notes: bool = False
) -> tuple[float, float]:
    """``(1 - beta1^t, 1 - beta2^t)``, or the notes' ``(1 - beta1, 1 - beta2)``."""
    beta1, beta2 = betas
    if notes:
        return 1.0 - beta1, 1.0 - beta2
    return 1.0 - beta1**step, 1.0 - beta2**step


def adam_single(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[int],
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    notes_bias_correction: bool,
) -> None:
    """The Adam update tensor by tensor (reference path; see :class:`Adam`)."""
    beta1, beta2 = betas
    for theta, g, m, v, t in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
        if weight_decay != 0.0:
            g = g.add(theta, alpha=weight_decay)
        m.lerp_(g, 1.0 - beta1)  # m <- beta1*m + (1-beta1)*g
        v.mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
        c1, c2 = bias_corrections(t, betas, notes_bias_correction)
        # lr * m_hat / (sqrt(v_hat) + eps) = (lr / c1) * m / (sqrt(v) / sqrt(c2) + eps)
        denom = v.sqrt().div_(math.sqrt(c2)).add_(eps)
        theta.addcdiv_(m, denom, value=-lr / c1)


def adam_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    exp_avg_sqs: list[torch.Tensor],
    steps: list[int],
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
    weight_decay: float,
    notes_bias_correction: bool,
) -> None:
    """The same update as :func:`adam_single`, each device/dtype bucket in fused kernels."""
    beta1, beta2 = betas
    for theta, g, m, v, t in by_device_and_dtype(params, grads, exp_avgs, exp_avg_sqs, steps):
        if weight_decay != 0.0:
            g = torch._foreach_add(g, theta, alpha=weight_decay)
        torch._foreach_lerp_(m, g, 1.0 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, value=1.0 - beta2)
        corrections = [bias_corrections(s, betas, notes_bias_correction) for s in t]
        denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, [math.sqrt(c2) for _, c2 in corrections])
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(theta, m, denom, [-lr / c1 for c1, _ in corrections])

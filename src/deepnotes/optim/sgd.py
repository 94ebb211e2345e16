"""Stochastic gradient descent with optional (heavy-ball or Nesterov) momentum.

Plain SGD (notes 9.1, 2.5.2):  ``theta <- theta - lr * g``  with ``g`` the mini-batch gradient.

Momentum (notes 9.3.1; Polyak 1964, Sutskever et al. 2013). The notes write the update in
*parameter units*::

    delta <- alpha * delta - lr * g          theta <- theta + delta                 (notes form)

torch (and this class by default) keeps the buffer in *gradient units*::

    b <- mu * b + g                          theta <- theta - lr * b                (torch form)

With a constant learning rate the two are the same sequence (``delta = -lr * b``); they differ
only when ``lr`` changes between steps (a schedule rescales the whole remembered velocity in the
torch form, only the new gradient in the notes form). ``notes_velocity=True`` selects the notes
form. The notes' one-line summary ``theta = theta - alpha*delta + lr*g`` has both signs flipped
(it climbs the loss); see docs/ERRATA.md.

Nesterov momentum (torch's formulation): ``theta <- theta - lr * (g + mu * b)`` after updating
``b``. Weight decay adds ``weight_decay * theta`` to ``g`` (an L2 penalty, as in torch.optim.SGD).
Dampening is always 0, as in the notes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from deepnotes.optim._common import (
    GroupwiseOptimizer,
    by_device_and_dtype,
    check_nonnegative,
    check_unit_interval,
)


class SGD(GroupwiseOptimizer):
    """SGD with momentum; a ``torch.optim.Optimizer`` matching ``torch.optim.SGD`` (dampening 0).

    Args:
        params: parameters or parameter groups.
        lr: learning rate ``eta`` (>= 0).
        momentum: ``mu`` (``alpha`` in the notes), in [0, 1); 0 is plain SGD.
        weight_decay: L2 coefficient added to the gradient (>= 0).
        nesterov: Nesterov's look-ahead form (needs ``momentum > 0``).
        notes_velocity: keep the velocity in parameter units, ``delta <- mu*delta - lr*g``
            (the notes' two-line form); equal to the default for a constant ``lr``.
        foreach: update each device/dtype bucket of tensors with fused ``torch._foreach_*``
            kernels; ``False`` loops tensor by tensor (same numbers, slower for many tensors).

    State per parameter: ``momentum_buffer`` (torch form, gradient units) or ``velocity`` (notes
    form, parameter units), created on the first step of a parameter that has a gradient.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        notes_velocity: bool = False,
        foreach: bool = True,
    ) -> None:
        defaults = dict(
            lr=check_nonnegative("lr", lr),
            momentum=check_unit_interval("momentum", momentum),
            weight_decay=check_nonnegative("weight_decay", weight_decay),
            nesterov=bool(nesterov),
            notes_velocity=bool(notes_velocity),
            foreach=bool(foreach),
        )
        if nesterov and defaults["momentum"] == 0.0:
            raise ValueError("nesterov=True needs momentum > 0, got momentum=0")
        if nesterov and notes_velocity:
            raise ValueError("nesterov=True and notes_velocity=True cannot be combined; pick one")
        super().__init__(params, defaults)

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor]) -> None:
        """The SGD/momentum update of one group's parameters that have a gradient."""
        buffers = None
        if group["momentum"] != 0.0:
            key = "velocity" if group["notes_velocity"] else "momentum_buffer"
            for p in params:
                if key not in self.state[p]:
                    # Zero start: the first step gives b = g (torch form) or
                    # delta = -lr * g (notes form), exactly as with no history.
                    self.state[p][key] = torch.zeros_like(
                        p, memory_format=torch.preserve_format)
            buffers = [self.state[p][key] for p in params]
        update = sgd_foreach if group["foreach"] else sgd_single
        update(params, grads, buffers, lr=group["lr"], momentum=group["momentum"],
               weight_decay=group["weight_decay"], nesterov=group["nesterov"],
               notes_velocity=group["notes_velocity"])


def sgd_single(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    buffers: list[torch.Tensor] | None,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    nesterov: bool,
    notes_velocity: bool,
) -> None:
    """The SGD/momentum update, one tensor at a time (reference path; see :class:`SGD`)."""
    for i, (theta, g) in enumerate(zip(params, grads, strict=True)):
        if weight_decay != 0.0:
            g = g.add(theta, alpha=weight_decay)
        if buffers is None:
            theta.add_(g, alpha=-lr)
            continue
        b = buffers[i]
        if notes_velocity:
            b.mul_(momentum).add_(g, alpha=-lr)  # delta <- alpha*delta - lr*g
            theta.add_(b)
            continue
        b.mul_(momentum).add_(g)  # b <- mu*b + g
        step_direction = g.add(b, alpha=momentum) if nesterov else b
        theta.add_(step_direction, alpha=-lr)


def sgd_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    buffers: list[torch.Tensor] | None,
    *,
    lr: float,
    momentum: float,
    weight_decay: float,
    nesterov: bool,
    notes_velocity: bool,
) -> None:
    """The same update as :func:`sgd_single`, each device/dtype bucket in fused kernels."""
    lists = (params, grads) if buffers is None else (params, grads, buffers)
    for bucket in by_device_and_dtype(*lists):
        theta, g = bucket[0], bucket[1]
        if weight_decay != 0.0:
            g = torch._foreach_add(g, theta, alpha=weight_decay)
        if buffers is None:
            torch._foreach_add_(theta, g, alpha=-lr)
            continue
        b = bucket[2]
        torch._foreach_mul_(b, momentum)
        if notes_velocity:
            torch._foreach_add_(b, g, alpha=-lr)
            torch._foreach_add_(theta, b)
            continue
        torch._foreach_add_(b, g)
        step_direction = torch._foreach_add(g, b, alpha=momentum) if nesterov else b
        torch._foreach_add_(theta, step_direction, alpha=-lr)

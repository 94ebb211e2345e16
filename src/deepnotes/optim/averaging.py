"""Averaged SGD: SGD that also keeps the running mean of its iterates (Polyak-Ruppert).

Notes 9.3.2; Polyak & Juditsky (1992), Ruppert (1988). After every SGD step ``t`` past
``start``, the average of the iterates ``theta_{start+1}, ..., theta_t`` is updated in place::

    n <- n + 1,     theta_bar <- theta_bar + (theta_t - theta_bar) / n

which is the arithmetic mean ``theta_bar = (1/n) sum_i theta_i`` without storing the iterates.
SGD itself keeps moving ``theta``; the average is what one evaluates or keeps at the end.
:meth:`AveragedSGD.swap_average` exchanges ``theta`` and ``theta_bar`` in place (exactly:
plain copies), :meth:`AveragedSGD.averaged` does so for the length of a ``with`` block.

Unlike ``torch.optim.ASGD`` (a decaying step size with a different averaging schedule) this is
the plain arithmetic mean the notes describe, on top of :class:`deepnotes.optim.SGD`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from deepnotes.optim._common import by_device_and_dtype
from deepnotes.optim.sgd import SGD


class AveragedSGD(SGD):
    """SGD (optionally with momentum) plus the running arithmetic mean of its iterates.

    Args:
        params, lr, momentum, weight_decay, nesterov, foreach: as in :class:`~deepnotes.optim.SGD`.
        start: number of initial steps whose iterates are left out of the average (burn-in);
            the average covers the iterates after steps ``start + 1, start + 2, ...``.

    State per parameter: ``step`` (int, steps taken), ``n_averaged`` (int) and ``average``
    (tensor like the parameter, present once ``step > start``), plus SGD's momentum buffer.
    A parameter without a gradient in a step is not stepped and not averaged in that step.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        start: int = 0,
        foreach: bool = True,
    ) -> None:
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start must be an int >= 0 (steps before averaging), got {start!r}")
        super().__init__(params, lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov, foreach=foreach)
        self.defaults["start"] = start  # also for groups added later by add_param_group
        for group in self.param_groups:
            group.setdefault("start", start)
        # A mutable holder, so that Fabric's optimizer wrapper (which forwards attribute reads
        # to this object but keeps its own __dict__) sees the same flag.
        self._swap = {"active": False}

    @property
    def is_swapped(self) -> bool:
        """True while the parameters hold the average (between two :meth:`swap_average` calls)."""
        return self._swap["active"]

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """An SGD step, then fold the new iterates into the running mean."""
        if self.is_swapped:
            raise RuntimeError("AveragedSGD.step() while the averaged parameters are swapped in; "
                               "call swap_average() again (or leave the averaged() block) first")
        return super().step(closure)

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor]) -> None:
        super()._update_group(group, params, grads)
        theta, theta_bar, weights = [], [], []
        for p in params:
            state = self.state[p]
            state["step"] = state.get("step", 0) + 1
            if state["step"] <= group["start"]:
                continue
            n = state.get("n_averaged", 0) + 1
            state["n_averaged"] = n
            if n == 1:
                state["average"] = p.detach().clone(memory_format=torch.preserve_format)
                continue
            theta.append(p)
            theta_bar.append(state["average"])
            weights.append(1.0 / n)
        if group["foreach"]:
            for t, tb, w in by_device_and_dtype(theta, theta_bar, weights):
                torch._foreach_lerp_(tb, t, w)  # theta_bar += (theta - theta_bar) / n
        else:
            for t, tb, w in zip(theta, theta_bar, weights, strict=True):
                tb.lerp_(t, w)

    @torch.no_grad()
    def swap_average(self) -> None:
        """Exchange each parameter with its running average, in place (call again to undo).

        Raises ``RuntimeError`` if no parameter has an average yet (fewer than ``start + 1``
        steps taken).
        """
        pairs = [(p, self.state[p]["average"]) for group in self.param_groups
                 for p in group["params"] if "average" in self.state.get(p, {})]
        if not pairs:
            raise RuntimeError("AveragedSGD has no averaged iterate yet: take more than `start` "
                               "steps before swapping in the average")
        for theta, theta_bar in pairs:
            current = theta.detach().clone()
            theta.copy_(theta_bar)
            theta_bar.copy_(current)
        self._swap["active"] = not self._swap["active"]

    @contextmanager
    def averaged(self) -> Iterator[None]:
        """``with opt.averaged():`` evaluate with the averaged parameters, then swap back."""
        self.swap_average()
        try:
            yield
        finally:
            self.swap_average()

    def state_dict(self) -> dict[str, Any]:
        if self.is_swapped:
            raise RuntimeError("AveragedSGD.state_dict() while the average is swapped in would "
                               "save the two copies exchanged; swap back first")
        return super().state_dict()

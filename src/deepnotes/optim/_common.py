"""Shared plumbing of the chapter-9 optimizers: argument checks, gathering, grouping.

Every optimizer here works the same way inside ``step`` (:class:`GroupwiseOptimizer`): gather
the parameters that have a gradient (skipping those without one, rejecting sparse ones), split
them into lists that share a device and dtype, and apply the update to each list at once with
``torch._foreach_*`` ops (``foreach=True``) or tensor by tensor (``foreach=False``, the
readable reference path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch.optim import Optimizer


def check_nonnegative(name: str, value: float) -> float:
    """Return ``float(value)`` or raise ``ValueError`` if it is negative or not finite."""
    value = float(value)
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return value


def check_unit_interval(name: str, value: float) -> float:
    """Return ``float(value)`` or raise ``ValueError`` unless ``0 <= value < 1``."""
    value = float(value)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def params_with_grads(
    group: dict[str, Any], optimizer_name: str
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The parameters of ``group`` that have a gradient, and those gradients.

    Parameters whose ``.grad`` is ``None`` are skipped (they took no part in the loss).
    A sparse gradient raises ``ValueError``: these updates are written for dense tensors.
    """
    params, grads = [], []
    for p in group["params"]:
        if p.grad is None:
            continue
        if p.grad.is_sparse:
            raise ValueError(
                f"{optimizer_name} expects dense gradients, got a sparse gradient for a parameter "
                f"of shape {tuple(p.shape)}; use torch.optim.SparseAdam or a dense embedding "
                f"(sparse=False)"
            )
        params.append(p)
        grads.append(p.grad)
    return params, grads


def by_device_and_dtype(
    *lists: Sequence[torch.Tensor],
) -> Iterator[tuple[list[torch.Tensor], ...]]:
    """Split parallel lists into sub-lists whose first list shares one device and dtype.

    ``torch._foreach_*`` kernels fuse work only across tensors of one device and dtype, so
    each sub-list becomes one batch of fused kernels. Order inside a sub-list is preserved.
    """
    buckets: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(lists[0]):
        buckets.setdefault((t.device, t.dtype), []).append(i)
    for indices in buckets.values():
        yield tuple([lst[i] for i in indices] for lst in lists)


class GroupwiseOptimizer(Optimizer):
    """A ``torch.optim.Optimizer`` whose ``step`` updates each parameter group's parameters
    that have a gradient with ``_update_group(group, params, grads)``, the one method a
    subclass writes (the update rule itself)."""

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params, grads = params_with_grads(group, type(self).__name__)
            if params:
                self._update_group(group, params, grads)
        return loss

    def _update_group(self, group: dict[str, Any], params: list[torch.Tensor],
                      grads: list[torch.Tensor]) -> None:
        raise NotImplementedError

"""Regularizers of notes sec. 2.6.2: inverted dropout and L1/L2 weight penalties.

Dropout (Srivastava et al. 2014), inverted form: in training each *unit* (activation) is kept
with probability ``1 - p`` and the kept ones are scaled by ``1 / (1 - p)``, so
``E[dropout(x)] = x`` and evaluation is the identity. (The notes say "zero out some randomly
chosen weights"; dropping weights is DropConnect, Wan et al. 2013. Dropout drops units.)

Penalties (the notes' ``lambda sum_i |W_i|^k``, ``k in {1, 2}``) are **added** to the data loss:

    L = ||X w - y||_2^2 + lambda sum_i |w_i|^k

Erratum (sec. 2.6.2): the notes write ``- lambda sum_i |W_i|^k``. Subtracting the penalty
rewards large weights: for ``k = 2`` and ``lambda`` above the smallest eigenvalue of ``X^T X``
the objective is unbounded below and gradient descent diverges. Decided by
``tests/test_nn_regularization.py::test_penalty_must_be_added_not_subtracted``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def _check_p(p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    return p


def dropout(x: torch.Tensor, p: float = 0.5, training: bool = True,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Inverted dropout: zero each entry with probability ``p``, scale survivors by ``1/(1-p)``.

    Args:
        x: any shape.
        p: drop probability.
        training: if False, return ``x`` unchanged.
        generator: a CPU ``torch.Generator`` for the mask (default: the global RNG).
    Returns:
        tensor of ``x``'s shape.
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=generator, dtype=torch.float32) >= p  # (x.shape)
    return x * keep.to(device=x.device, dtype=x.dtype) / (1.0 - p)


class Dropout(nn.Module):
    """Module form of :func:`dropout` (active in ``train()`` mode only).

    Args:
        p: drop probability (torch's argument name).
        generator: optional CPU generator for reproducible masks.
    """

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training, self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def weight_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters with >= 2 dimensions (weight matrices and kernels, not biases or BN)."""
    return [p for p in module.parameters() if p.dim() >= 2]


def _stack_check(parameters: Iterable[torch.Tensor]) -> list[torch.Tensor]:
    params = list(parameters)
    if not params:
        raise ValueError("no parameters given to the penalty")
    return params


def l1_penalty(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_i |w_i|`` over every entry of every tensor (multiply by lambda and add)."""
    return sum(p.abs().sum() for p in _stack_check(parameters))


def l2_penalty(parameters: Iterable[torch.Tensor]) -> torch.Tensor:
    """``sum_i w_i^2`` over every entry of every tensor (multiply by lambda and add).

    With plain SGD, adding ``lambda * l2_penalty`` equals ``weight_decay = 2 lambda``.
    """
    return sum((p * p).sum() for p in _stack_check(parameters))


__all__ = ["dropout", "Dropout", "weight_parameters", "l1_penalty", "l2_penalty"]

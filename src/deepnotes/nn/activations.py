"""Activation functions of notes sec. 2.3.1, written out, with their derivatives.

    sigmoid(x) = 1 / (1 + e^{-x})            sigmoid'(x) = sigmoid(x) (1 - sigmoid(x))
    relu(x)    = max(0, x)                   relu'(x)    = 1[x > 0]   (0 at x = 0, as torch)
    tanh(x)                                  tanh'(x)    = 1 - tanh(x)^2
    softmax(x)_i = e^{x_i} / sum_j e^{x_j}

Each function is built from elementary torch ops so autograd differentiates it; the explicit
derivatives (``*_derivative``, functions of the pre-activation ``z``) are what the manual
back-propagation of :mod:`deepnotes.nn.backprop` uses instead of autograd.

Numerical stability: ``sigmoid`` only ever exponentiates ``-|x|`` (never overflows, and no
``0 * inf`` reaches the backward pass); ``softmax``/``log_softmax`` subtract the row maximum,
which changes nothing mathematically because softmax is invariant to adding a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Logistic function ``1 / (1 + exp(-x))``, elementwise, stable for any finite or inf x."""
    # e = exp(-|x|) in (0, 1]: no overflow. Written with `where` rather than abs() so that the
    # derivative at x = 0 is right (d|x|/dx there is taken as 0 by autograd).
    e = torch.exp(torch.where(x >= 0, -x, x))
    return torch.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z: torch.Tensor) -> torch.Tensor:
    """``sigmoid'(z) = sigmoid(z) (1 - sigmoid(z))``."""
    s = sigmoid(z)
    return s * (1.0 - s)


def relu(x: torch.Tensor) -> torch.Tensor:
    """Rectified linear unit ``max(0, x)``, elementwise (``relu(-inf) = 0``, NaN propagates)."""
    # `x <= 0` is False for NaN, so NaN passes through as in torch.relu.
    return torch.where(x <= 0, torch.zeros((), dtype=x.dtype, device=x.device), x)


def relu_derivative(z: torch.Tensor) -> torch.Tensor:
    """``1[z > 0]``; the sub-gradient at 0 is taken as 0, like ``torch.relu``."""
    return (z > 0).to(z.dtype)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic tangent (torch's kernel; not in the notes, offered for the MLP)."""
    return torch.tanh(x)


def tanh_derivative(z: torch.Tensor) -> torch.Tensor:
    """``1 - tanh(z)^2``."""
    t = torch.tanh(z)
    return 1.0 - t * t


def identity(x: torch.Tensor) -> torch.Tensor:
    """No non-linearity: ``phi(x) = x`` (sec. 2.3: the network collapses to one affine map)."""
    return x


def identity_derivative(z: torch.Tensor) -> torch.Tensor:
    """``1`` everywhere."""
    return torch.ones_like(z)


def _check_dim(x: torch.Tensor, dim: int) -> None:
    if x.dim() == 0:
        raise ValueError("softmax needs at least one dimension, got a scalar")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim {dim} out of range for a tensor of shape {tuple(x.shape)}")


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log softmax(x)`` along ``dim``: ``x_i - m - log sum_j exp(x_j - m)``, ``m = max x``."""
    _check_dim(x, dim)
    m = x.amax(dim=dim, keepdim=True).detach()  # shift invariance: no gradient needed
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    shifted = x - m
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Normalized exponentials ``e^{x_i} / sum_j e^{x_j}`` along ``dim`` (rows sum to 1)."""
    _check_dim(x, dim)
    m = x.amax(dim=dim, keepdim=True).detach()
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    e = torch.exp(x - m)  # the largest entry becomes e^0 = 1: no overflow
    return e / e.sum(dim=dim, keepdim=True)


class Activation(NamedTuple):
    """An elementwise activation and its derivative as a function of the pre-activation."""

    fn: Callable[[torch.Tensor], torch.Tensor]
    derivative: Callable[[torch.Tensor], torch.Tensor]
    # torch's fused kernel computing the same function (parity-tested): several times faster
    # on CPU than the written-out form, whose where/exp build extra tensors for autograd.
    kernel: Callable[[torch.Tensor], torch.Tensor]


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(sigmoid, sigmoid_derivative, torch.sigmoid),
    "relu": Activation(relu, relu_derivative, torch.relu),
    "tanh": Activation(tanh, tanh_derivative, torch.tanh),
    "identity": Activation(identity, identity_derivative, identity),
}


def get_activation(name: str | None) -> Activation:
    """Look up an elementwise activation by name; ``None`` means ``"identity"``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    key = "identity" if name is None else name
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {list(ACTIVATIONS)} "
                         f"or None")
    return ACTIVATIONS[key]


__all__ = [
    "sigmoid", "sigmoid_derivative", "relu", "relu_derivative", "tanh", "tanh_derivative",
    "identity", "identity_derivative", "softmax", "log_softmax", "Activation", "ACTIVATIONS",
    "get_activation",
]

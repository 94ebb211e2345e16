"""Rosenblatt's perceptron learning rule (notes sec. 2.1) and Novikoff's mistake bound.

Rule (notes): start from ``w_0 = 0``; while some example has ``y_i <x_i, w_t> <= 0`` update

    w_{t+1} = w_t + y_i x_i.

The bias is handled by appending a constant 1 to every input (``x~ = (x, 1)``, ``w~ = (w, b)``),
so the rule above is applied unchanged to ``x~``.

Novikoff (1962): if some unit vector ``u`` separates the data with margin
``gamma = min_i y_i <u, x~_i> > 0`` and ``R = max_i ||x~_i||``, the rule makes at most
``(R / gamma)^2`` updates, whatever the order of the examples.

Erratum (sec. 2.1): one update adds ``y_i^2 <x_i, x_i> = ||x_i||^2`` (not ``||x_i||``) to
``y_i <x_i, w>``, and this alone does not make the loop stop: an update can break other
examples. Termination needs linear separability (Novikoff's bound); on XOR the rule never
stops. Decided by ``tests/test_nn_perceptron.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class PerceptronResult(NamedTuple):
    """Outcome of :meth:`Perceptron.fit`.

    Attributes:
        updates: number of updates ``w <- w + y_i x_i`` made (the notes' ``t``).
        converged: a full pass over the data made no update (all ``y_i <x_i, w> > 0``).
        epochs: passes over the data done (the last one is the clean pass if converged).
    """

    updates: int
    converged: bool
    epochs: int


def _augment(x: np.ndarray, fit_intercept: bool) -> np.ndarray:
    return np.hstack([x, np.ones((x.shape[0], 1))]) if fit_intercept else x


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    x_np = torch.as_tensor(x).detach().cpu().double().numpy()
    y_np = torch.as_tensor(y).detach().cpu().double().numpy()
    if x_np.ndim != 2:
        raise ValueError(f"x must have shape (n, d), got {x_np.shape}")
    if y_np.shape != (x_np.shape[0],):
        raise ValueError(f"y must have shape ({x_np.shape[0]},), got {y_np.shape}")
    if not np.isin(y_np, (-1.0, 1.0)).all():
        raise ValueError("perceptron labels must be -1 or +1 (map 0/1 labels with 2 * y - 1)")
    if not np.isfinite(x_np).all():
        raise ValueError("x contains NaN or inf")
    return x_np, y_np


class Perceptron:
    """The perceptron classifier ``h(x) = sign(<w, x> + b)`` trained by the notes' rule.

    Args:
        fit_intercept: learn a bias ``b`` (as the last coordinate of ``w~``).
        max_epochs: passes over the data before giving up (non-separable data never stops).
    Attributes:
        weight: ``(d,)`` float64 tensor after :meth:`fit`.
        bias: float.
    """

    def __init__(self, fit_intercept: bool = True, max_epochs: int = 1000) -> None:
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
        self.fit_intercept = fit_intercept
        self.max_epochs = max_epochs
        self.weight: torch.Tensor | None = None
        self.bias = 0.0

    def fit(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
            ) -> PerceptronResult:
        """Run the rule from ``w = 0``.

        Args:
            x: ``(n, d)`` inputs.
            y: ``(n,)`` labels in ``{-1, +1}``.
            generator: if given, visit the examples in a fresh random order every epoch;
                otherwise in index order.
        Returns:
            :class:`PerceptronResult`.
        """
        x_np, y_np = _check_xy(x, y)
        x_aug = _augment(x_np, self.fit_intercept)  # (n, d+1)
        n = x_aug.shape[0]
        w = np.zeros(x_aug.shape[1])
        updates = 0
        converged = False
        epoch = 0
        for epoch in range(1, self.max_epochs + 1):  # noqa: B007 (epoch is reported)
            order = (torch.randperm(n, generator=generator).tolist() if generator is not None
                     else range(n))
            mistakes = 0
            for i in order:
                if y_np[i] * (x_aug[i] @ w) <= 0:
                    w += y_np[i] * x_aug[i]
                    mistakes += 1
            updates += mistakes
            if mistakes == 0:
                converged = True
                break
        self._set(w)
        return PerceptronResult(updates=updates, converged=converged, epochs=epoch)

    def _set(self, w: np.ndarray) -> None:
        if self.fit_intercept:
            self.weight, self.bias = torch.from_numpy(w[:-1].copy()), float(w[-1])
        else:
            self.weight, self.bias = torch.from_numpy(w.copy()), 0.0

    def decision_function(self, x: torch.Tensor) -> torch.Tensor:
        """``<w, x> + b`` for ``(n, d)`` inputs -> ``(n,)``."""
        if self.weight is None:
            raise ValueError("call fit() before decision_function()")
        return torch.as_tensor(x).double() @ self.weight + self.bias

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """``sign(<w, x> + b)`` in ``{-1, +1}`` (a score of exactly 0 counts as a mistake in
        training, and is mapped to -1 here)."""
        return torch.where(self.decision_function(x) > 0, 1.0, -1.0).double()


class NovikoffBound(NamedTuple):
    """Radius ``R = max ||x~_i||``, margin ``gamma = min_i y_i <u, x~_i>`` (unit ``u``) and
    ``bound = (R / gamma)^2``."""

    radius: float
    margin: float
    bound: float


def novikoff_bound(x: torch.Tensor, y: torch.Tensor, separator: torch.Tensor,
                   fit_intercept: bool = True) -> NovikoffBound:
    """Novikoff's bound on the perceptron's updates given a separating vector.

    Any separator gives a valid bound; the maximum-margin one gives the smallest.

    Args:
        x: ``(n, d)`` inputs; y: ``(n,)`` labels in ``{-1, +1}``.
        separator: ``(d + 1,)`` vector ``(w, b)`` if ``fit_intercept`` else ``(d,)``; it is
            normalized to unit length here, in the same augmented space the rule runs in.
    Raises:
        ValueError: the vector does not separate the data (margin <= 0).
    """
    x_np, y_np = _check_xy(x, y)
    x_aug = _augment(x_np, fit_intercept)
    u = torch.as_tensor(separator).detach().double().numpy().reshape(-1)
    if u.shape != (x_aug.shape[1],):
        raise ValueError(f"separator must have {x_aug.shape[1]} entries (weights"
                         f"{' + bias' if fit_intercept else ''}), got {u.shape[0]}")
    norm = float(np.linalg.norm(u))
    if norm == 0:
        raise ValueError("separator is the zero vector")
    margin = float((y_np * (x_aug @ u)).min() / norm)
    if margin <= 0:
        raise ValueError(f"separator does not separate the data (margin {margin:.3g} <= 0)")
    radius = float(np.linalg.norm(x_aug, axis=1).max())
    return NovikoffBound(radius=radius, margin=margin, bound=(radius / margin) ** 2)


__all__ = ["Perceptron", "PerceptronResult", "NovikoffBound", "novikoff_bound"]

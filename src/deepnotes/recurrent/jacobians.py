"""Products of per-step Jacobians: why gradients through time vanish or explode (notes 5.4).

For a recurrence ``s_t = F(s_{t-1}, x_t)`` the chain rule gives the state-to-state Jacobian over
a span of ``k = T - t`` steps as a product, newest factor on the left::

    ds_T/ds_t = J_T J_{T-1} ... J_{t+1},        J_s = dF/ds_{s-1} at (s_{s-1}, x_s).

For the tanh Elman network ``h_s = tanh(a_s)``, ``a_s = W_hh h_{s-1} + W_ih x_s + b``::

    J_s = diag(tanh'(a_s)) W_hh = diag(1 - h_s^2) W_hh.

Two bounds follow from ``||AB|| <= ||A|| ||B||`` (spectral norm) and ``0 < tanh' <= 1``::

    log ||ds_T/ds_t|| <= sum_{s=t+1}^T log ||J_s|| <= k log ||W_hh||_2,

so the growth rate per step of the product is at most the mean log-norm of the factors, which is
at most ``log ||W_hh||_2``. In the linear regime (``tanh' ~ 1``) the product is ``W_hh^k``, whose
norm grows like ``rho(W_hh)^k`` (Gelfand's formula) with ``rho <= ||W_hh||_2``: the spectral
radius decides vanishing (``rho < 1``) or exploding (``rho > 1``); Pascanu, Mikolov & Bengio
(2013), "On the difficulty of training recurrent neural networks".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor


def spectral_radius(weight: Tensor) -> float:
    """``max |lambda_i(W)|`` of a square matrix."""
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(f"spectral_radius expects a square matrix, got {tuple(weight.shape)}")
    return float(torch.linalg.eigvals(weight).abs().max())


def rescale_spectral_radius(weight: Tensor, rho: float) -> Tensor:
    """``W * rho / rho(W)``: the same eigenvectors, spectral radius exactly ``rho``."""
    if rho <= 0:
        raise ValueError(f"rho must be positive, got {rho}")
    current = spectral_radius(weight)
    if current == 0:
        raise ValueError("cannot rescale a matrix whose spectral radius is 0 (nilpotent)")
    return weight * (rho / current)


def random_orthogonal(n: int, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> Tensor:
    """A Haar-random orthogonal ``(n, n)`` matrix (QR of a Gaussian, signs fixed by R's
    diagonal); every eigenvalue and singular value has modulus 1."""
    a = torch.randn(n, n, generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(a)
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


class ElmanRun(NamedTuple):
    h: Tensor  # (T, H): h_1..h_T
    jacobians: Tensor  # (T, H, H): J_s = diag(1 - h_s^2) W_hh, s = 1..T


def elman_jacobians(u: Tensor, weight_hh: Tensor, h_0: Tensor | None = None) -> ElmanRun:
    """Run ``h_s = tanh(W_hh h_{s-1} + u_s)`` and return the states and per-step Jacobians.

    ``u_s = W_ih x_s + b`` is the input drive (only its value matters for ``J_s``).

    Args:
        u: ``(T, H)`` input drive.
        weight_hh: ``(H, H)``.
        h_0: ``(H,)`` initial state (zeros if omitted).
    """
    if u.dim() != 2 or weight_hh.shape != (u.shape[1], u.shape[1]):
        raise ValueError(f"expected u (T, H) and weight_hh (H, H), got {tuple(u.shape)} and "
                         f"{tuple(weight_hh.shape)}")
    h = u.new_zeros(u.shape[1]) if h_0 is None else h_0
    states = []
    for u_s in u:
        h = torch.tanh(weight_hh @ h + u_s)  # (H,)
        states.append(h)
    hs = torch.stack(states)  # (T, H)
    return ElmanRun(hs, (1 - hs ** 2).unsqueeze(-1) * weight_hh)  # diag(tanh') W_hh


def trajectory(step: Callable[[Tensor, Tensor], Tensor], xs: Tensor, s_0: Tensor) -> Tensor:
    """Run ``s_t = step(x_t, s_{t-1})`` and return the states ``s_0..s_{T-1}`` that the steps
    start from, ``(T, S)``: the input :func:`step_jacobians` needs."""
    states, s = [], s_0
    for x in xs:
        states.append(s)
        s = step(x, s)
    return torch.stack(states)


def step_jacobians(step: Callable[[Tensor, Tensor], Tensor], xs: Tensor,
                   states: Tensor) -> Tensor:
    """Jacobians ``dF/ds`` of a recurrence ``s_t = step(x_t, s_{t-1})`` along a trajectory,
    by autograd (any cell: LSTM with ``s = [h, c]``, a residual RNN, ...).

    Args:
        step: ``(x (D,), s (S,)) -> s' (S,)``.
        xs: ``(T, D)`` inputs ``x_1..x_T``.
        states: ``(T, S)`` the states ``s_0..s_{T-1}`` the steps start from.
    Returns:
        ``(T, S, S)``: ``J_t = ds_t/ds_{t-1}``.
    """
    if xs.shape[0] != states.shape[0]:
        raise ValueError(f"xs and states need the same length, got {xs.shape[0]} and "
                         f"{states.shape[0]}")
    return torch.func.vmap(torch.func.jacrev(step, argnums=1))(xs, states)


def product_norms(jacobians: Tensor, rows: slice = slice(None),
                  cols: slice = slice(None)) -> Tensor:
    """Spectral norms of ``ds_T/ds_{T-k} = J_T ... J_{T-k+1}`` for ``k = 1..T``.

    ``rows``/``cols`` pick a block of each product (e.g. ``dc_T/dc_t`` of an LSTM's ``[h, c]``
    state): the block of the product, not the product of blocks.

    Args:
        jacobians: ``(T, S, S)``, ``J_1..J_T``.
    Returns:
        ``(T,)``: entry ``k - 1`` is ``||(J_T ... J_{T-k+1})[rows, cols]||_2``.
    """
    if jacobians.dim() != 3 or jacobians.shape[1] != jacobians.shape[2]:
        raise ValueError(f"expected (T, S, S) Jacobians, got {tuple(jacobians.shape)}")
    product = torch.eye(jacobians.shape[1], dtype=jacobians.dtype)
    norms = []
    for j in jacobians.flip(0):  # J_T first: the product grows to the right, into the past
        product = product @ j
        norms.append(torch.linalg.matrix_norm(product[rows, cols], ord=2))
    return torch.stack(norms)


def step_log_norms(jacobians: Tensor) -> Tensor:
    """``log ||J_s||_2`` for each step: ``(T, S, S) -> (T,)``."""
    return torch.linalg.matrix_norm(jacobians, ord=2).log()


def fitted_slope(log_norms: Tensor) -> float:
    """Least-squares slope of ``log ||ds_T/ds_{T-k}||`` against ``k = 1..K`` (``(K,)`` or
    ``(N, K)``, averaged over the rows first)."""
    y = log_norms.reshape(-1, log_norms.shape[-1]).mean(0).double()
    k = torch.arange(1, y.numel() + 1, dtype=torch.float64)
    kc = k - k.mean()
    return float((kc * (y - y.mean())).sum() / (kc ** 2).sum())


def submultiplicative_gap(jacobians: Tensor) -> float:
    """``max_k [log ||J_T ... J_{T-k+1}|| - sum_{s>T-k} log ||J_s||]``: never above 0 (up to
    round-off), since the norm of a product is at most the product of the norms."""
    logs = product_norms(jacobians).log()
    bound = step_log_norms(jacobians).flip(0).cumsum(0)
    return float((logs - bound).max())

"""Information theory for discrete distributions: entropy, cross-entropy, KL and JS divergence.

Notes chapter 1 (sec. 1.1). For distributions ``p`` and ``q`` over the same finite set,

    H(p)       = - sum_x p(x) log p(x)
    H(p, q)    = - sum_x p(x) log q(x)
    D(p || q)  =   sum_x p(x) log(p(x) / q(x))          = H(p, q) - H(p)
    JSD(p, q)  = 1/2 D(p || m) + 1/2 D(q || m),  m = (p + q) / 2

Every function reduces over the **last** dimension, so a ``(..., K)`` batch of distributions
gives a ``(...,)`` tensor. ``base=2`` gives bits (the notes' default), ``base=math.e`` nats.
Conventions: ``0 log 0 = 0``; ``p(x) > 0`` where ``q(x) = 0`` makes ``H(p, q)`` and
``D(p || q)`` infinite. Inputs that are not probability vectors (negative entries, NaN, rows
not summing to 1 within a tolerance, mismatched shapes) raise ``ValueError``.

The ``*_from_logits`` helpers take unnormalized log-probabilities (``q = softmax(logits)``)
and never form ``q`` explicitly, so they stay finite and differentiable for extreme logits.
"""

from __future__ import annotations

import math

import torch

Tensorish = torch.Tensor | list | tuple | float


def _as_float_tensor(x: Tensorish, name: str) -> torch.Tensor:
    t = torch.as_tensor(x)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if t.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the outcomes), got a scalar")
    if t.shape[-1] == 0:
        raise ValueError(f"{name} has an empty last dimension; expected K >= 1 outcomes")
    return t


def _sum_tolerance(dtype: torch.dtype) -> float:
    # Rows summed in float32 carry rounding of order K * eps; 1e-4 leaves room for that.
    return 1e-6 if dtype == torch.float64 else 1e-4


def check_distribution(p: Tensorish, name: str = "p") -> torch.Tensor:
    """Return ``p`` as a float tensor after checking it is a batch of probability vectors.

    Args:
        p: ``(..., K)`` non-negative entries, each row summing to 1 (within 1e-6 in float64,
            1e-4 otherwise).
        name: used in error messages.
    Returns:
        ``p`` as a floating tensor of the same shape.
    Raises:
        ValueError: NaN/negative entries or a row whose sum is not 1.
    """
    t = _as_float_tensor(p, name)
    with torch.no_grad():
        if torch.isnan(t).any():
            raise ValueError(f"{name} contains NaN; expected probabilities in [0, 1]")
        if (t < 0).any():
            raise ValueError(f"{name} has negative entries (min {t.min().item():.3g}); "
                             f"expected probabilities >= 0")
        sums = t.sum(dim=-1)
        worst = (sums - 1).abs().max().item()
        if not worst <= _sum_tolerance(t.dtype):
            raise ValueError(f"{name} rows must sum to 1 over the last dimension; the worst row "
                             f"is off by {worst:.3g} (shape {tuple(t.shape)})")
    return t


def _check_base(base: float) -> float:
    base = float(base)
    if not (base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base must be positive, finite and != 1 (2 for bits, e for nats), "
                         f"got {base}")
    return math.log(base)


def _check_same_shape(p: torch.Tensor, q: torch.Tensor, names: str = "p and q") -> None:
    if p.shape != q.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(p.shape)} and "
                         f"{tuple(q.shape)}")


def entropy(p: Tensorish, base: float = 2.0) -> torch.Tensor:
    """Shannon entropy ``H(p) = -sum p log p`` (notes Def. 1.1.1).

    Args:
        p: ``(..., K)`` probability vectors.
        base: logarithm base (2: bits, e: nats).
    Returns:
        ``(...,)`` entropies, ``0 <= H(p) <= log_base K``.
    """
    log_base = _check_base(base)
    p = check_distribution(p, "p")
    return -torch.xlogy(p, p).sum(dim=-1) / log_base


def cross_entropy(p: Tensorish, q: Tensorish, base: float = 2.0) -> torch.Tensor:
    """Cross-entropy ``H(p, q) = -sum p log q`` (notes Def. 1.1.2); ``inf`` where q misses p.

    Args:
        p: ``(..., K)`` target probabilities.
        q: ``(..., K)`` model probabilities, same shape as ``p``.
        base: logarithm base.
    Returns:
        ``(...,)`` cross-entropies, ``>= H(p)``.
    """
    log_base = _check_base(base)
    p, q = check_distribution(p, "p"), check_distribution(q, "q")
    _check_same_shape(p, q)
    return -torch.xlogy(p, q).sum(dim=-1) / log_base


def kl_divergence(p: Tensorish, q: Tensorish, base: float = 2.0) -> torch.Tensor:
    """Kullback-Leibler divergence ``D(p || q) = sum p log(p / q)`` (notes sec. 1.1).

    Args:
        p: ``(..., K)`` probabilities.
        q: ``(..., K)`` probabilities, same shape as ``p``.
        base: logarithm base.
    Returns:
        ``(...,)`` divergences, ``>= 0``, ``0`` iff ``p == q``, ``inf`` if some ``q = 0 < p``.
    """
    log_base = _check_base(base)
    p, q = check_distribution(p, "p"), check_distribution(q, "q")
    _check_same_shape(p, q)
    # xlogy(p, p) - xlogy(p, q): 0 where p = 0, +inf where q = 0 < p.
    terms = torch.xlogy(p, p) - torch.xlogy(p, q)
    # Rounding can leave a tiny negative total for p ~ q; the divergence is >= 0 exactly.
    return terms.sum(dim=-1).clamp_min(0.0) / log_base


def js_divergence(p: Tensorish, q: Tensorish, base: float = 2.0) -> torch.Tensor:
    """Jensen-Shannon divergence ``1/2 D(p || m) + 1/2 D(q || m)``, ``m = (p + q) / 2``.

    Symmetric, finite, and at most ``log_base 2`` (1 bit).

    Args:
        p, q: ``(..., K)`` probabilities of the same shape.
        base: logarithm base.
    Returns:
        ``(...,)`` divergences in ``[0, log_base 2]``.
    """
    log_base = _check_base(base)
    p, q = check_distribution(p, "p"), check_distribution(q, "q")
    _check_same_shape(p, q)
    m = 0.5 * (p + q)
    # m > 0 wherever p > 0 or q > 0, so neither KL term can be infinite.
    d_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(dim=-1)
    d_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(dim=-1)
    return (0.5 * (d_pm + d_qm)).clamp(0.0, math.log(2.0)) / log_base


def _check_logits(logits: Tensorish) -> torch.Tensor:
    t = _as_float_tensor(logits, "logits")
    if torch.isnan(t).any() or (t == math.inf).any():
        raise ValueError("logits contain NaN or +inf; expected finite values (or -inf for an "
                         "outcome of probability 0)")
    return t


def _plogq(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    # p * log q with the convention 0 * log 0 = 0 (log q may be -inf where p = 0). The -inf is
    # replaced before the product so that no 0 * inf reaches the backward pass either.
    safe_log_q = torch.where(p > 0, log_q, torch.zeros((), dtype=log_q.dtype))
    return p * safe_log_q


def entropy_from_logits(logits: Tensorish, base: float = 2.0) -> torch.Tensor:
    """Entropy of ``softmax(logits)`` over the last dimension.

    Args:
        logits: ``(..., K)`` unnormalized log-probabilities.
        base: logarithm base.
    Returns:
        ``(...,)`` entropies.
    """
    log_base = _check_base(base)
    logits = _check_logits(logits)
    log_q = torch.log_softmax(logits, dim=-1)
    return -_plogq(log_q.exp(), log_q).sum(dim=-1) / log_base


def cross_entropy_from_logits(p: Tensorish, logits: Tensorish, base: float = 2.0
                              ) -> torch.Tensor:
    """Cross-entropy ``H(p, softmax(logits))``; the classification loss of notes sec. 2.4.2.

    Args:
        p: ``(..., K)`` target probabilities (one-hot rows give ``-log q_label``).
        logits: ``(..., K)`` model logits, same shape as ``p``.
        base: logarithm base.
    Returns:
        ``(...,)`` cross-entropies.
    """
    log_base = _check_base(base)
    p, logits = check_distribution(p, "p"), _check_logits(logits)
    _check_same_shape(p, logits, "p and logits")
    return -_plogq(p, torch.log_softmax(logits, dim=-1)).sum(dim=-1) / log_base


def kl_divergence_from_logits(p: Tensorish, logits: Tensorish, base: float = 2.0
                              ) -> torch.Tensor:
    """``D(p || softmax(logits))`` over the last dimension.

    Args:
        p: ``(..., K)`` probabilities.
        logits: ``(..., K)`` logits of ``q``.
        base: logarithm base.
    Returns:
        ``(...,)`` divergences.
    """
    log_base = _check_base(base)
    p, logits = check_distribution(p, "p"), _check_logits(logits)
    _check_same_shape(p, logits, "p and logits")
    log_q = torch.log_softmax(logits, dim=-1)
    terms = torch.xlogy(p, p) - _plogq(p, log_q)
    return terms.sum(dim=-1).clamp_min(0.0) / log_base


__all__ = [
    "check_distribution", "entropy", "cross_entropy", "kl_divergence", "js_divergence",
    "entropy_from_logits", "cross_entropy_from_logits", "kl_divergence_from_logits",
]

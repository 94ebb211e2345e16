"""Attention as a soft table look-up (notes 6.2): score functions, masking, soft and hard read-out.

Given a query ``q``, keys ``k_i`` and values ``v_i``, attention computes a score ``d_i`` per key,
turns the scores into weights ``alpha = softmax(d)`` and reads the table:

* soft attention: ``v_out = sum_i alpha_i v_i`` (the expectation of ``v`` under ``alpha``);
* hard attention: ``v_out = v_j`` with ``j ~ Categorical(alpha)`` (Show, Attend and Tell), which
  is not differentiable in ``j``; :func:`hard_attention` returns ``log alpha_j`` for REINFORCE.

Score functions (``query`` ``(B, Q, d_q)`` or ``(B, d_q)``; ``keys`` ``(B, N, d_k)``):

* :class:`DotProductScore`: ``d_i = <k_i, q>``;
* :class:`ScaledDotProductScore`: ``d_i = <k_i, q> / sqrt(d_k)``;
* :class:`AdditiveScore` (Bahdanau): ``d_i = w^T tanh(W [k_i, q])``, written as
  ``w^T tanh(W_k k_i + W_q q)`` (the two column blocks of ``W``, so keys are projected once);
* :class:`BilinearScore`: ``d_i = <W_K k_i, W_Q q> / sqrt(d_s)`` with ``d_s`` the projected width.

The scaling (erratum 6.2 in ``docs/ERRATA.md``): the notes divide by ``sqrt(N)`` with ``N`` "the
size of the table", and in the matrix form divide the *output* ``V^T softmax(Kq)`` by it. The
scale belongs inside the softmax and ``N`` is the key *dimension* ``d_k``: for keys and query
with unit-variance independent entries, ``<k, q>`` has variance ``d_k``, so dividing by
``sqrt(d_k)`` keeps the logits at unit scale whatever the width (Vaswani et al., 2017, sec.
3.2.1). The number of keys does not change the scale of a logit, and dividing the output by a
constant after the softmax only shrinks the read-out. ``tests/attention/test_scores.py``
measures both.

Masks follow ``torch.nn.MultiheadAttention``: a boolean mask is True where a key is masked out.
Masked keys get exactly zero weight, and a query whose keys are all masked returns weights (and
an output) of zeros instead of the NaN a plain softmax over ``-inf`` gives.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn


def _as_queries(query: Tensor) -> tuple[Tensor, bool]:
    """``(B, d)`` -> ``(B, 1, d)``, remembering to squeeze the query axis on the way out."""
    if query.dim() == 2:
        return query.unsqueeze(1), True
    if query.dim() == 3:
        return query, False
    raise ValueError(f"query must be (B, d_q) or (B, Q, d_q); got shape {tuple(query.shape)}")


def _check_keys(keys: Tensor, query: Tensor) -> None:
    if keys.dim() != 3 or keys.shape[0] != query.shape[0]:
        raise ValueError(f"keys must be (B, N, d_k) with the query's batch size "
                         f"{query.shape[0]}; got shape {tuple(keys.shape)}")


class DotProductScore(nn.Module):
    """``d_i = <k_i, q>``; needs ``d_k == d_q``."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        q, single = _as_queries(query)
        _check_keys(keys, q)
        if keys.shape[-1] != q.shape[-1]:
            raise ValueError(f"dot-product scores need keys and queries of one width; got "
                             f"d_k={keys.shape[-1]}, d_q={q.shape[-1]} (use BilinearScore)")
        scores = q @ keys.transpose(1, 2)  # (B, Q, N)
        return scores.squeeze(1) if single else scores


class ScaledDotProductScore(DotProductScore):
    """``d_i = <k_i, q> / sqrt(d_k)``: unit-scale logits whatever the key width."""

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        return super().forward(query, keys) / math.sqrt(keys.shape[-1])


class AdditiveScore(nn.Module):
    """``d_i = w^T tanh(W_k k_i + W_q q)`` (Bahdanau et al., 2015; notes 6.2 and 6.2.1).

    Args:
        query_dim, key_dim: widths of ``q`` and ``k_i``.
        hidden_dim: rows of ``W`` (the width inside the tanh).
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Linear(key_dim, hidden_dim, bias=False)  # W_k
        self.query_proj = nn.Linear(query_dim, hidden_dim)  # W_q (and the bias of W)
        self.w = nn.Linear(hidden_dim, 1, bias=False)

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        q, single = _as_queries(query)
        _check_keys(keys, q)
        scores = self.from_projected(q, self.key_proj(keys))  # (B, Q, N)
        return scores.squeeze(1) if single else scores

    def from_projected(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        """Scores from ``W_k k_i`` computed once: a decoder that queries the same keys at every
        step projects them once (``self.key_proj(keys)``) instead of once per step.

        query ``(B, Q, d_q)``, projected_keys ``(B, N, H)`` -> ``(B, Q, N)``.
        """
        hidden = torch.tanh(projected_keys.unsqueeze(1)  # (B, 1, N, H)
                            + self.query_proj(query).unsqueeze(2))  # (B, Q, 1, H)
        return self.w(hidden).squeeze(-1)


class BilinearScore(nn.Module):
    """``d_i = <W_K k_i, W_Q q> / sqrt(d_s)``: keys and queries may differ in width.

    Args:
        query_dim, key_dim: widths of ``q`` and ``k_i``.
        score_dim: ``d_s``, the width both are projected to.
        scaled: divide by ``sqrt(d_s)`` (default); False gives the plain bilinear form.
    """

    def __init__(self, query_dim: int, key_dim: int, score_dim: int, scaled: bool = True):
        super().__init__()
        self.key_proj = nn.Linear(key_dim, score_dim, bias=False)  # W_K
        self.query_proj = nn.Linear(query_dim, score_dim, bias=False)  # W_Q
        self.scale = 1 / math.sqrt(score_dim) if scaled else 1.0

    def forward(self, query: Tensor, keys: Tensor) -> Tensor:
        q, single = _as_queries(query)
        _check_keys(keys, q)
        scores = self.query_proj(q) @ self.key_proj(keys).transpose(1, 2) * self.scale
        return scores.squeeze(1) if single else scores


def masked_softmax(scores: Tensor, mask: Tensor | None = None) -> Tensor:
    """``alpha = softmax(scores)`` over the last axis, with masked keys at exactly zero.

    Args:
        scores: ``(..., N)``.
        mask: boolean, broadcastable to ``scores`` (a key-padding mask ``(B, N)`` is expanded
            over the query axis of ``(B, Q, N)`` scores); True means masked out.
    Returns:
        ``alpha`` of the scores' shape; each row sums to 1, or is all zeros where every key of
        the row is masked.
    """
    if mask is None:
        return torch.softmax(scores, dim=-1)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be boolean (True = masked out, as in "
                         f"torch.nn.MultiheadAttention); got dtype {mask.dtype}")
    if mask.dim() == 2 and scores.dim() == 3:
        mask = mask.unsqueeze(1)  # (B, 1, N): the same keys are padding for every query
    try:
        mask = mask.expand_as(scores)
    except RuntimeError:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to scores of "
                         f"shape {tuple(scores.shape)}") from None
    # A finite fill keeps fully masked rows finite; zeroing afterwards makes masked weights
    # exact zeros (exp(-1e4) would otherwise leave ~1e-4343 only in float64).
    filled = scores.masked_fill(mask, torch.finfo(scores.dtype).min)
    alpha = torch.softmax(filled, dim=-1).masked_fill(mask, 0.0)
    return alpha


class AttentionOutput(NamedTuple):
    output: Tensor  # (B, [Q,] d_v): sum_i alpha_i v_i
    alpha: Tensor  # (B, [Q,] N): the attention weights


class Attention(nn.Module):
    """Soft attention over a table: ``v_out = sum_i alpha_i v_i`` with ``alpha`` from ``score``.

    Args:
        score: a score module, e.g. :class:`AdditiveScore`.
    Forward:
        query ``(B, d_q)`` or ``(B, Q, d_q)``, keys ``(B, N, d_k)``, values ``(B, N, d_v)``,
        ``key_padding_mask`` ``(B, N)`` boolean (True = padding, gets zero weight).
    """

    def __init__(self, score: nn.Module) -> None:
        super().__init__()
        self.score = score

    def forward(self, query: Tensor, keys: Tensor, values: Tensor,
                key_padding_mask: Tensor | None = None) -> AttentionOutput:
        if values.dim() != 3 or values.shape[:2] != keys.shape[:2]:
            raise ValueError(f"values must be (B, N, d_v) with the keys' (B, N) = "
                             f"{tuple(keys.shape[:2])}; got shape {tuple(values.shape)}")
        scores = self.score(query, keys)
        if key_padding_mask is not None and key_padding_mask.shape != keys.shape[:2]:
            raise ValueError(f"key_padding_mask must be (B, N) = {tuple(keys.shape[:2])}; got "
                             f"{tuple(key_padding_mask.shape)}")
        alpha = masked_softmax(scores, key_padding_mask)
        if alpha.dim() == 2:
            return AttentionOutput((alpha.unsqueeze(1) @ values).squeeze(1), alpha)
        return AttentionOutput(alpha @ values, alpha)  # (B, Q, N) @ (B, N, d_v)


class HardAttentionOutput(NamedTuple):
    output: Tensor  # (B, [Q,] d_v): the sampled value v_j
    index: Tensor  # (B, [Q]): j ~ Categorical(alpha)
    log_prob: Tensor  # (B, [Q]): log alpha_j, for the REINFORCE gradient


def hard_attention(alpha: Tensor, values: Tensor,
                   generator: torch.Generator | None = None) -> HardAttentionOutput:
    """Read one value, drawn according to ``alpha`` (hard attention, Show, Attend and Tell).

    The draw has no gradient; train the weights with REINFORCE: the gradient of
    ``E_j[R]`` is ``E_j[(R - b) * d log alpha_j]`` with a baseline ``b`` that lowers its
    variance. ``log_prob`` carries ``d log alpha_j``.

    Args:
        alpha: ``(B, N)`` or ``(B, Q, N)`` weights (rows sum to 1).
        values: ``(B, N, d_v)``.
        generator: the random stream of the draw.
    """
    if alpha.shape[-1] != values.shape[1] or alpha.shape[0] != values.shape[0]:
        raise ValueError(f"alpha {tuple(alpha.shape)} and values {tuple(values.shape)} must "
                         f"share the batch size and the number of keys N")
    flat = alpha.reshape(-1, alpha.shape[-1])
    index = torch.multinomial(flat.detach().float(), 1, generator=generator)  # (B*Q, 1)
    log_prob = torch.log(flat.gather(1, index).clamp_min(torch.finfo(flat.dtype).tiny))
    index = index.view(alpha.shape[:-1])
    batch = torch.arange(values.shape[0], device=values.device)
    if alpha.dim() == 2:
        output = values[batch, index]  # (B, d_v)
    else:
        output = values[batch[:, None], index]  # (B, Q, d_v)
    return HardAttentionOutput(output, index, log_prob.view(alpha.shape[:-1]))

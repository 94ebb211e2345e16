"""Multi-head attention (notes 6.2.2) and self-attention (6.2.3), with torch's interface.

    MultiHead(Q, K, V) = Concat(head_1, ..., head_h) W_O,
    head_i = Attention(Q W_{i,Q}, K W_{i,K}, V W_{i,V}),
    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V,   d_k = embed_dim / num_heads.

:class:`MultiheadAttention` has the arguments, parameters (names and shapes) and forward of
``torch.nn.MultiheadAttention``, so ``ours.load_state_dict(theirs.state_dict())`` works and the
two agree in float64 (``tests/attention/test_multihead.py``): the h query projections
``W_{i,Q}`` are the rows ``[0, E)`` of ``in_proj_weight`` (head i owns rows
``[i d_k, (i+1) d_k)``), the keys' ``[E, 2E)``, the values' ``[2E, 3E)``; ``out_proj`` is W_O.
Self-attention is the call with ``query = key = value = x``.

Masks are torch's: a boolean ``key_padding_mask`` (N, S) or ``attn_mask`` (L, S) or
(N * num_heads, L, S) is **True where attention is not allowed** (masked out); a float mask is
added to the scores (``-inf`` masks out).

**One deliberate difference from torch: a query row with every key masked out** (a padded
query in a causal decoder, an all-padding sequence) has attention weights 0 and attends to
nothing: the weighted sum of the values is the empty sum, 0, so the layer's output there is
``out_proj(0) = out_proj.bias`` (zero when ``bias=False``, and at initialization). Torch
returns NaN for that row's output and weights (softmax of a row of ``-inf``), and the NaN
reaches every gradient that touches the row. Here the softmax of such a row is never taken
with ``-inf`` inside it, so neither the forward nor the backward pass sees a NaN.

Two paths compute the same function:

* the written-out path (default): scores, masked softmax, weighted sum, as above; it is the
  one that returns weights;
* the fused path (``fused=True``): ``torch.nn.functional.scaled_dot_product_attention``, used
  when ``need_weights=False`` (it does not return the weights; with ``need_weights=True`` the
  written-out path runs, as torch does). The two agree to rounding
  (``test_fused_path_agrees_with_the_written_out_path``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _as_additive(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask (True = masked out) as 0 / -inf; a float mask as given."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    return mask.to(dtype)


def softmax_with_empty_rows(scores: torch.Tensor, dim: int = -1) -> tuple[torch.Tensor,
                                                                          torch.Tensor]:
    """``softmax(scores)`` along ``dim`` where a row of only ``-inf`` gives zeros, not NaN.

    Returns ``(weights, empty)``: ``empty`` (same shape, size 1 along ``dim``) is True for the
    rows with nothing to attend to. The empty rows are set to 0 *before* the softmax (so no
    ``-inf - (-inf)`` is ever computed, in the forward or the backward pass) and their weights
    to 0 after it; their gradient is then exactly 0.
    """
    empty = torch.isneginf(scores).all(dim=dim, keepdim=True)
    weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=dim)
    return weights.masked_fill(empty, 0.0), empty


class MultiheadAttention(nn.Module):
    """``torch.nn.MultiheadAttention`` written out (no ``kdim``/``vdim``, ``add_bias_kv`` or
    ``add_zero_attn``), with zeros for fully masked query rows (module docstring).

    Args:
        embed_dim: model width E (queries, keys and values all have it).
        num_heads: h; E must be divisible by h, each head has d_k = E / h.
        dropout: dropout on the attention weights during training.
        bias: biases on the input and output projections.
        batch_first: inputs and outputs are (N, L, E) instead of (L, N, E).
        fused: compute the output with ``F.scaled_dot_product_attention`` when
            ``need_weights=False`` (a plain attribute: it can be switched on a built module).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 batch_first: bool = False, *, fused: bool = False,
                 device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be a positive multiple of "
                             f"num_heads ({num_heads})")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        factory = {"device": device, "dtype": dtype}
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first, self.fused = dropout, batch_first, fused
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim, **factory))
        if bias:
            self.in_proj_bias = nn.Parameter(torch.empty(3 * embed_dim, **factory))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias, **factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Torch's initialization: Xavier-uniform input projections, zero biases."""
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            nn.init.zeros_(self.in_proj_bias)
            nn.init.zeros_(self.out_proj.bias)

    # ------------------------------------------------------------------ helpers
    def _heads(self, x: torch.Tensor, weight: torch.Tensor,
               bias: torch.Tensor | None) -> torch.Tensor:
        """(N, L, E) -> projected and split into heads, (N, h, L, d_k)."""
        n, length, _ = x.shape
        return F.linear(x, weight, bias).view(n, length, self.num_heads,
                                              self.head_dim).transpose(1, 2)

    def _mask(self, n: int, length: int, source: int, key_padding_mask: torch.Tensor | None,
              attn_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
        """Both masks as one additive (N, h, L, S) (or broadcastable) float mask, or None."""
        total = None
        if attn_mask is not None:
            mask = _as_additive(attn_mask, dtype)
            if mask.dim() == 2:
                if mask.shape != (length, source):
                    raise ValueError(f"attn_mask must be ({length}, {source}), got "
                                     f"{tuple(mask.shape)}")
                mask = mask.view(1, 1, length, source)
            elif mask.dim() == 3:
                if mask.shape != (n * self.num_heads, length, source):
                    raise ValueError(f"attn_mask must be ({n * self.num_heads}, {length}, "
                                     f"{source}), got {tuple(mask.shape)}")
                mask = mask.view(n, self.num_heads, length, source)
            else:
                raise ValueError(f"attn_mask must be 2-D or 3-D, got {mask.dim()}-D")
            total = mask
        if key_padding_mask is not None:
            if key_padding_mask.shape != (n, source):
                raise ValueError(f"key_padding_mask must be ({n}, {source}), got "
                                 f"{tuple(key_padding_mask.shape)}")
            padding = _as_additive(key_padding_mask, dtype).view(n, 1, 1, source)
            total = padding if total is None else total + padding
        return total

    # ------------------------------------------------------------------ forward
    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attention of ``query`` (L, N, E) over ``key``/``value`` (S, N, E) (batch first:
        (N, L, E), (N, S, E); unbatched: (L, E), (S, E)).

        Returns ``(output, weights)``: output shaped like ``query``; weights (N, L, S)
        averaged over the heads, (N, h, L, S) with ``average_attn_weights=False`` (no N when
        unbatched), or None with ``need_weights=False``.

        ``is_causal`` is torch's hint that ``attn_mask`` is the causal mask (it must be
        given too): the fused path then calls SDPA with ``is_causal=True`` and no mask
        tensor when there is no ``key_padding_mask`` (faster, and nothing n x n is stored).
        """
        if is_causal and attn_mask is None:
            raise ValueError("is_causal is a hint that attn_mask is the causal mask; pass "
                             "attn_mask too")
        unbatched = query.dim() == 2
        if unbatched:
            query, key, value = (t.unsqueeze(0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        n, length, _ = query.shape
        source = key.shape[1]
        e = self.embed_dim
        w, b = self.in_proj_weight, self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        q = self._heads(query, w[:e], bq)  # (N, h, L, d_k)
        k = self._heads(key, w[e:2 * e], bk)  # (N, h, S, d_k)
        v = self._heads(value, w[2 * e:], bv)  # (N, h, S, d_k)
        mask = self._mask(n, length, source, key_padding_mask, attn_mask, q.dtype)
        p = self.dropout if self.training else 0.0
        weights = None
        if self.fused and not need_weights:
            if is_causal and key_padding_mask is None and length == source:
                out = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            else:
                boolean = all(m is None or m.dtype == torch.bool
                              for m in (key_padding_mask, attn_mask))
                out = self._fused(q, k, v, mask, p, boolean)
        else:
            scores = (q * (1.0 / math.sqrt(self.head_dim))) @ k.transpose(-2, -1)  # (N,h,L,S)
            empty = None
            if mask is None:
                weights = torch.softmax(scores, dim=-1)
            else:
                # As softmax_with_empty_rows, but autograd keeps one (L, S) tensor per head
                # (the softmax output) instead of two: an empty row is set to 0 before the
                # softmax and its *output* (not its weights) to 0 after the weighted sum.
                scores = scores + mask
                empty = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (N, h, L, 1)
                weights = torch.softmax(scores.masked_fill(empty, 0.0), dim=-1)
            if p > 0:
                weights = F.dropout(weights, p=p)
            out = weights @ v  # (N, h, L, d_k)
            if empty is not None:
                out = out.masked_fill(empty, 0.0)  # an empty row attends to nothing: 0
                if need_weights:
                    weights = weights.masked_fill(empty, 0.0)
        out = self.out_proj(out.transpose(1, 2).reshape(n, length, e))
        if need_weights:
            weights = weights.mean(dim=1) if average_attn_weights else weights
            if unbatched:
                weights = weights.squeeze(0)
        else:
            weights = None
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    @staticmethod
    def _fused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None,
               p: float, boolean: bool) -> torch.Tensor:
        """``F.scaled_dot_product_attention`` with this module's mask convention.

        ``mask`` is the additive form of the caller's masks (0 allowed, -inf masked out);
        ``boolean`` says whether the caller's masks were all boolean.
        """
        if mask is None:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        # The mask stays broadcastable, (1|N, 1|h, 1|L, S): SDPA's CPU kernel takes a
        # broadcast mask as it is, but an expanded boolean (N, h, L, S) one sends it to a
        # path that materializes and stores n x n per head (2x slower, 10x the memory).
        masked_out = torch.isneginf(mask)  # nn.MultiheadAttention's convention: True = masked
        empty = masked_out.all(dim=-1, keepdim=True)  # (., ., L, 1): nothing to attend to
        if boolean:
            # SDPA reads a boolean attn_mask the other way round from nn.MultiheadAttention:
            # True means "may attend" (SDPA fills the False entries with -inf). Passing our
            # mask as it is would attend exactly where the caller masked out, hence the
            # inversion. An empty row is opened to every key (so no kernel takes a softmax of
            # only -inf) and its output is set to 0 below, as on the written-out path.
            attn = ~masked_out | empty
        else:
            attn = mask.masked_fill(empty, 0.0)  # a float mask is additive in both APIs
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn, dropout_p=p)
        return out.masked_fill(empty, 0.0)

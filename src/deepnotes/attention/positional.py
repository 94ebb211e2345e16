"""Sinusoidal positional encoding (notes 6.3.1, figure 6.2; Vaswani et al. 2017, 3.5).

    PE(pos, 2i)     = sin(pos / base^(2i / d_model)),
    PE(pos, 2i + 1) = cos(pos / base^(2i / d_model)),   base = 10000.

The notes print base 10^5; the paper (and every reference implementation) uses 10^4 = 10000,
the default here (erratum; ``base`` is an argument for those who want the notes' value).

Why sines and cosines: for every offset k there is one fixed linear map M_k, the same at
every position, with PE(pos + k) = M_k PE(pos). Each pair (sin, cos) at frequency
w_i = base^(-2i / d_model) turns by the angle k w_i:

    [sin((pos+k) w)]   [ cos(k w)  sin(k w)] [sin(pos w)]
    [cos((pos+k) w)] = [-sin(k w)  cos(k w)] [cos(pos w)],

so M_k is block diagonal with 2x2 rotations (:func:`shift_matrix`), and attention can read
relative positions with a linear map of the encodings.
"""

from __future__ import annotations

import math

import torch
from torch import nn

BASE = 10000.0  # Vaswani et al. 2017; the notes print 10^5 (erratum)


def _frequencies(d_model: int, base: float, dtype: torch.dtype) -> torch.Tensor:
    if d_model <= 0 or d_model % 2:
        raise ValueError(f"d_model must be a positive even number, got {d_model}")
    return torch.exp(torch.arange(0, d_model, 2, dtype=dtype) * (-math.log(base) / d_model))


def sinusoidal_encoding(length: int, d_model: int, base: float = BASE, offset: int = 0,
                        dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The (length, d_model) table of PE(pos, :) for pos = offset, ..., offset + length - 1."""
    w = _frequencies(d_model, base, dtype)  # (d/2,)
    pos = torch.arange(offset, offset + length, dtype=dtype).unsqueeze(1)  # (length, 1)
    pe = torch.empty(length, d_model, dtype=dtype)
    pe[:, 0::2] = torch.sin(pos * w)
    pe[:, 1::2] = torch.cos(pos * w)
    return pe


def shift_matrix(k: int, d_model: int, base: float = BASE,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """M_k (d_model, d_model), block-diagonal rotations: PE(pos + k) = M_k PE(pos) for
    every pos (as column vectors; for a table of rows, ``pe @ M_k.T``)."""
    angle = k * _frequencies(d_model, base, dtype)  # (d/2,)
    m = torch.zeros(d_model, d_model, dtype=dtype)
    idx = torch.arange(0, d_model, 2)
    m[idx, idx] = torch.cos(angle)
    m[idx, idx + 1] = torch.sin(angle)
    m[idx + 1, idx] = -torch.sin(angle)
    m[idx + 1, idx + 1] = torch.cos(angle)
    return m


class SinusoidalPositionalEncoding(nn.Module):
    """Adds PE to a batch of embeddings (N, L, d_model) (or (L, d_model)), then dropout.

    Args:
        d_model: width (even).
        max_len: the longest sequence; the table is a buffer (not saved in the state dict).
        dropout: dropout after the addition (the paper uses 0.1).
        base: 10000, as in the paper.
    """

    def __init__(self, d_model: int, max_len: int = 512, dropout: float = 0.0,
                 base: float = BASE) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(max_len, d_model, base),
                             persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        length = x.shape[-2]
        if offset + length > self.pe.shape[0]:
            raise ValueError(f"sequence of {length} (offset {offset}) exceeds max_len "
                             f"{self.pe.shape[0]}")
        return self.dropout(x + self.pe[offset:offset + length].to(x.dtype))

"""``val_loss``: the one measure of every character model in deepnotes.

The mean cross-entropy, in nats per character, of the next character over the whole
validation split, scored in consecutive non-overlapping windows of ``window`` (64) input
characters, each window starting from a fresh state (an RNN) or an empty context (a GPT):

    val_loss = -(1 / N) sum_k sum_{t in window k} log p(x_{t+1} | x_{start(k)} .. x_t)

with ``N = len(ids) - 1`` predictions: window ``k`` reads ``ids[64k : 64k + 64]`` and predicts
``ids[64k + 1 : 64k + 65]``; the last window may be shorter. Every character of the split
after the first is predicted exactly once, so the figure is comparable with nanoGPT's
``estimate_loss`` at ``block_size = 64`` run over the whole split instead of random batches.

``stateful_val_loss`` scores the same predictions with the state carried from window to
window (an RNN's view of the whole split as one sequence).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Logits = Callable[[torch.Tensor], torch.Tensor]  # (B, T) ids -> (B, T, V) logits
Step = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]  # (1, T), state -> logits, state


def _check(ids: torch.Tensor, window: int) -> None:
    if ids.dim() != 1 or ids.dtype != torch.long:
        raise ValueError(f"ids must be a 1-D int64 tensor, got {ids.dtype} of shape "
                         f"{tuple(ids.shape)}")
    if len(ids) < 2:
        raise ValueError(f"need at least 2 characters to predict one, got {len(ids)}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")


@torch.no_grad()
def windowed_val_loss(logits_fn: Logits, ids: torch.Tensor, window: int = 64,
                      batch_size: int = 256) -> float:
    """``val_loss`` (module docstring) of a model given as ``logits_fn``.

    Args:
        logits_fn: maps a batch of windows ``(B, T)`` (each from a fresh state) to next-char
            logits ``(B, T, V)``.
        ids: the validation split, int64 ``(N + 1,)``.
        window: input characters per window.
        batch_size: windows scored per call.
    Returns:
        Mean nats per predicted character.
    """
    _check(ids, window)
    n_pred = len(ids) - 1
    full = n_pred // window
    total = 0.0
    inputs = ids[:full * window].view(full, window)  # (full, window)
    targets = ids[1:full * window + 1].view(full, window)
    for start in range(0, full, batch_size):
        x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
        logits = logits_fn(x).float()  # (B, window, V)
        total += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum").item()
    rest = n_pred - full * window
    if rest:
        x, y = ids[full * window:n_pred][None], ids[full * window + 1:][None]  # (1, rest)
        total += F.cross_entropy(logits_fn(x).float()[0], y[0], reduction="sum").item()
    return total / n_pred


@torch.no_grad()
def stateful_val_loss(step_fn: Step, ids: torch.Tensor, window: int = 64,
                      state: Any = None) -> float:
    """The same predictions as :func:`windowed_val_loss`, with the state carried through the
    split: ``step_fn(x (1, T), state) -> (logits (1, T, V), state)``, ``state=None`` first."""
    _check(ids, window)
    n_pred = len(ids) - 1
    total = 0.0
    for start in range(0, n_pred, window):
        end = min(start + window, n_pred)
        logits, state = step_fn(ids[start:end][None], state)
        total += F.cross_entropy(logits.float()[0], ids[start + 1:end + 1],
                                 reduction="sum").item()
    return total / n_pred


def bits_per_char(nats: float) -> float:
    """Nats per character -> bits per character."""
    return nats / math.log(2)

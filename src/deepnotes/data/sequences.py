"""Synthetic sequence tasks that need memory over a chosen number of steps.

Both are generated on demand from a ``torch.Generator`` (the same generator state gives the
same data), and both let an experiment turn one knob, the lag, to see where a model's memory
ends (chapter 5: vanishing gradients, LSTM and GRU).
"""

from __future__ import annotations

import torch

BLANK = 0  # the copy task's blank token; symbols are 1..symbols


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")


def adding_problem(n: int, length: int, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """The adding problem (Hochreiter & Schmidhuber 1997, in the form of Le et al. 2015).

    Each sequence has two channels: values drawn uniformly from [0, 1), and a marker that is 1
    at exactly two steps, one in the first half (``t < length // 2``) and one in the second,
    0 elsewhere. The target is the sum of the two marked values, so a model must keep the
    first marked value in memory for up to ``length`` steps (many-to-one).

    Trivial baseline: predicting the mean, 1.0, whatever the input, gives MSE = Var(U + V)
    = 2/12 = 1/6 ≈ 0.167. A model "solves" the task when its MSE is well below that.

    Returns:
        ``(inputs float32 (n, length, 2), targets float32 (n, 1))``; channel 0 holds the
        values, channel 1 the markers.
    """
    _check_positive(n=n)
    if length < 2:
        raise ValueError(f"length must be at least 2 (one marker in each half), got {length}")
    half = length // 2
    values = torch.rand(n, length, generator=generator)
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, length, (n,), generator=generator)
    rows = torch.arange(n)
    markers = torch.zeros(n, length)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = (values[rows, first] + values[rows, second]).unsqueeze(1)
    return torch.stack([values, markers], dim=2), targets


def copy_task(n: int, lag: int, symbols: int = 8, generator: torch.Generator | None = None,
              length: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Recall at a given lag: output at step t what the input was at step t - lag.

    The input is ``length`` random symbols (ids ``1..symbols``) followed by ``lag`` blanks
    (id :data:`BLANK` = 0); the target is ``lag`` blanks followed by the same symbols, i.e.
    the input delayed by ``lag`` steps (many-to-many, ``T = length + lag`` steps). The first
    ``lag`` targets are blanks, trivially right; the recall positions ``targets[:, lag:]``
    are what measures memory. A memoryless model can do no better there than chance:
    cross-entropy ``log(symbols)`` nats, accuracy ``1 / symbols``.

    Returns:
        ``(inputs int64 (n, length + lag), targets int64 (n, length + lag))``, ids in
        ``0..symbols`` (a vocabulary of ``symbols + 1``).
    """
    _check_positive(n=n, symbols=symbols, length=length)
    if lag < 0:
        raise ValueError(f"lag must be >= 0, got {lag}")
    sequence = torch.randint(1, symbols + 1, (n, length), generator=generator)
    blanks = torch.full((n, lag), BLANK, dtype=torch.int64)
    return torch.cat([sequence, blanks], dim=1), torch.cat([blanks, sequence], dim=1)

"""Helpers shared by the chapter-4 experiments."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (``n <= 0``: leave the runner's setting).

    For tiny tensors (smoke tiers, 32 x 32 matrices) thread synchronization costs more than
    the arithmetic: on a busy 2-core machine two threads made such steps 10-25x slower.
    """
    previous = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

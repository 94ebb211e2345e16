"""Run small models on one CPU thread.

Measured on the 2-core development machine while other jobs ran (load average ~7): one
training step of a 64-128-128-128-10 MLP on a batch of 64 took 51 ms with 2 intra-op threads
and 1.7 ms with 1. For the small networks of chapters 1-2 the per-op threading overhead
dominates (and under contention threads wait on each other), so their experiments declare
``max_threads=1`` (the runner applies it and records it in config.json); the numbers do not
depend on the thread count beyond float summation order. ``one_thread`` is for a part of an
experiment that runs on tiny tensors.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Set ``torch.set_num_threads(1)`` inside the block and restore the previous value after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

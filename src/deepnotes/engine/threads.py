"""How many intra-op threads a run uses, and a block on one thread.

Two measurements set the rules (2-core development machine):

* Small models lose to thread synchronization: one training step of a 64-128-128-128-10 MLP
  on a batch of 64 took 51 ms with 2 intra-op threads and 1.7 ms with 1 while other jobs ran
  (load average ~7). Their experiments declare ``max_threads=1``.
* Threads must follow the *free* cores: with one other busy process an MLP step took 5.7 ms
  with 1 thread and 357 ms with 2 (torch's threads wait for a descheduled partner at every
  op). So the default samples the idle cores from ``/proc/stat`` before a run; the choice is
  recorded in config.json and reused on resume (thread count can change the last bits of
  reductions).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

import torch


def idle_cores(seconds: float = 0.25) -> float | None:
    """Cores left idle by everything else on the machine, sampled from /proc/stat (Linux)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def default_threads(world_size: int = 1) -> int:
    """Intra-op threads per process: ``$DEEPNOTES_THREADS``, else the cores that are idle now."""
    env = os.environ.get("DEEPNOTES_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"DEEPNOTES_THREADS must be a positive integer, got {env!r}")
        return int(env)
    cores = os.cpu_count() or 1
    idle = idle_cores()
    free = cores if idle is None else min(cores, max(1, int(idle + 0.3)))
    return max(1, free // world_size)


def run_threads(max_threads: int | None, cfg: Any, world_size: int = 1) -> int:
    """The threads of a run: the config's ``threads`` field if it is > 0, else
    :func:`default_threads` capped at ``max_threads`` (the experiment's cap; ``None``: none)."""
    pinned = getattr(cfg, "threads", 0)
    if pinned:
        return pinned
    threads = default_threads(world_size)
    return min(threads, max_threads) if max_threads else threads


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Set ``torch.set_num_threads(1)`` inside the block and restore the previous value after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

"""The one timer of the benchmarks that time a step: run as ``python benchmarks/NAME.py``,
they import it from this folder."""

from __future__ import annotations

import time
from collections.abc import Callable


def ms_per_call(fn: Callable[[], object], steps: int) -> float:
    """Milliseconds per call of ``fn`` over ``steps`` calls, after one warm-up call (oneDNN
    builds its kernels on first use)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps * 1000

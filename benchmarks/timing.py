"""What the benchmarks share: the one step timer and the CPU name every figure records. Run as
``python benchmarks/NAME.py``, they import it from this folder."""

from __future__ import annotations

import platform
import subprocess
import time
from collections.abc import Callable


def cpu_model() -> str:
    """lscpu's model name, with " (AMX)" where the CPU has AMX units."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        name = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
        return name + (" (AMX)" if "amx" in out else "")
    except Exception:  # noqa: BLE001 - informative only
        return platform.processor() or "unknown CPU"


def ms_per_call(fn: Callable[[], object], steps: int) -> float:
    """Milliseconds per call of ``fn`` over ``steps`` calls, after one warm-up call (oneDNN
    builds its kernels on first use)."""
    fn()
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t0) / steps * 1000

"""Progress display: a tqdm bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Show ``desc``, the step, ETA and the running loss.

    On a terminal it is a tqdm bar; when stderr is a file or pipe (CI, logs) it prints one
    plain line every ``every_seconds`` so logs stay readable.
    """

    def __init__(self, total: int, initial: int = 0, desc: str = "", enabled: bool = True,
                 every_seconds: float = 10.0) -> None:
        self.total = total
        self.n = initial
        self.desc = desc
        self.enabled = enabled
        self.every_seconds = every_seconds
        self._loss: float | None = None
        self._t0 = time.monotonic()
        self._n0 = initial
        self._last_print = self._t0
        self._bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, leave=False,
                             dynamic_ncols=True)

    def update(self, loss: float | None = None) -> None:
        self.n += 1
        if loss is not None:
            # Exponential running mean: a readable number on a noisy mini-batch loss.
            self._loss = loss if self._loss is None else 0.9 * self._loss + 0.1 * loss
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            if self._loss is not None:
                self._bar.set_postfix(loss=f"{self._loss:.4f}", refresh=False)
            return
        now = time.monotonic()
        if now - self._last_print >= self.every_seconds or self.n == self.total:
            self._last_print = now
            rate = (self.n - self._n0) / max(now - self._t0, 1e-9)
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            loss = f" loss {self._loss:.4f}" if self._loss is not None else ""
            print(f"[{self.desc}] step {self.n}/{self.total}{loss} "
                  f"({rate:.1f} it/s, eta {eta:.0f}s)", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

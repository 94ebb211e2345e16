"""Many one-hidden-layer relu nets of different widths, evaluated and trained as one module.

Model j computes

    f_j(x) = sum_{i in units(j)} a_i relu(w_i x + b_i) + c_j,

a shallow net with ``width_j`` units; each unit has a single breakpoint ``-b_i / w_i``, so
``f_j`` has at most ``width_j + 1`` linear pieces (notes section 3.2, Lemma 3.2.1). All units of
all models live in flat vectors grouped by width, so one step trains every
(target, width, restart) at once without padding: the cost is the total number of units.

:func:`sawtooth_lower_bound_width` is the matching lower bound used as a check: a function
with fewer than ``2^(T-1)`` breakpoints in (0, 1) has sup distance at least 1/2 from
``hat^T`` on [0, 1] (a counting argument in the style of Telgarsky 2016, see the function).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class ShallowReluBank(nn.Module):
    """A bank of shallow relu nets ``R -> R``.

    Args:
        widths: the width of each model, ``(M,)`` positive ints.
        generator: seeds the initialisation.
        lo, hi: the input interval; initial breakpoints are uniform on it.
        dtype: parameter dtype.

    Initialisation: ``w_i = +-1`` (random sign), breakpoint ``-b_i/w_i ~ U(lo, hi)``,
    output weights 0 (set them with :meth:`fit_readout` before training).
    """

    def __init__(self, widths: Sequence[int], generator: torch.Generator, lo: float = 0.0,
                 hi: float = 1.0, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if not widths or any(int(w) < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths}")
        if not lo < hi:
            raise ValueError(f"need lo < hi, got {lo}, {hi}")
        self.widths = [int(w) for w in widths]
        units = sum(self.widths)
        sign = torch.where(torch.rand(units, generator=generator) < 0.5, -1.0, 1.0)
        knot = lo + (hi - lo) * torch.rand(units, generator=generator)
        self.w = nn.Parameter(sign.to(dtype))
        self.b = nn.Parameter((-sign * knot).to(dtype))
        self.a = nn.Parameter(torch.zeros(units, dtype=dtype))
        self.c = nn.Parameter(torch.zeros(len(self.widths), dtype=dtype))
        # Units are stored model by model in order of increasing width, so the models of one
        # width form a dense (models, width) block: forward is a few dense ops, no scatter.
        self.order = sorted(range(len(self.widths)), key=lambda j: self.widths[j])
        self.groups: list[tuple[int, int, int]] = []  # (first unit, models, width)
        self.start = [0] * len(self.widths)
        unit = 0
        for j in self.order:
            w = self.widths[j]
            if self.groups and self.groups[-1][2] == w:
                first, count, _ = self.groups[-1]
                self.groups[-1] = (first, count + 1, w)
            else:
                self.groups.append((unit, 1, w))
            self.start[j] = unit
            unit += w
        inverse = torch.empty(len(self.widths), dtype=torch.long)
        inverse[torch.tensor(self.order)] = torch.arange(len(self.widths))
        self.register_buffer("inverse", inverse, persistent=False)  # sorted row of each model

    @property
    def models(self) -> int:
        return len(self.widths)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(w_i x + b_i)`` for x ``(N,)`` -> ``(U, N)``."""
        return torch.relu(self.w[:, None] * x[None, :] + self.b[:, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``(N,)`` -> outputs ``(M, N)``."""
        if x.ndim != 1:
            raise ValueError(f"expected inputs of shape (N,), got {tuple(x.shape)}")
        rows = []
        for first, count, width in self.groups:
            span = slice(first, first + count * width)
            w = self.w[span].view(count, width, 1)
            b = self.b[span].view(count, width, 1)
            a = self.a[span].view(count, 1, width)
            h = torch.relu(w * x + b)  # (count, width, N)
            rows.append(torch.bmm(a, h).squeeze(1))  # (count, N)
        return torch.cat(rows)[self.inverse] + self.c[:, None]

    @torch.no_grad()
    def fit_readout(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Set each model's ``(a, c)`` to the least-squares fit of its targets.

        Truncated SVD (``gelsd``): directions below ``1e-6`` of the largest singular value are
        dropped. Without that, units with nearly coincident breakpoints get output weights of
        order 1e4 whose differences cancel; Adam's first steps on the breakpoints (float32)
        then blow the fit up (seen at width 128 on ``hat^4``).

        Args:
            x: ``(N,)`` inputs; y: ``(M, N)`` targets, one row per model.
        """
        if y.shape != (self.models, x.shape[0]):
            raise ValueError(f"y must be ({self.models}, {x.shape[0]}), got {tuple(y.shape)}")
        h = self.hidden(x).double()  # (U, N)
        ones = torch.ones(x.shape[0], 1, dtype=torch.float64)
        for j, width in enumerate(self.widths):
            start = self.start[j]
            phi = torch.cat([h[start:start + width].T, ones], dim=1)  # (N, width + 1)
            sol = torch.linalg.lstsq(phi, y[j].double()[:, None], rcond=1e-6,
                                     driver="gelsd").solution[:, 0]
            self.a[start:start + width] = sol[:-1].to(self.a.dtype)
            self.c[j] = sol[-1].to(self.c.dtype)


def sawtooth_lower_bound_width(T: int) -> int:
    """Fewest units a shallow relu net needs for ``sup_[0,1] |f - hat^T| < 1/2``: ``2^(T-1)``.

    ``hat^T`` alternates 0, 1, 0, ... at ``z_k = k / 2^T``. If ``|f - hat^T| < 1/2`` at those
    points then ``f(z_{k-1}) < 1/2 < f(z_k) > ...``: on each window ``(z_{k-1}, z_{k+1})``,
    ``k = 1..2^T - 1``, ``f`` goes down-up or up-down, which an affine function cannot, so
    every window holds a breakpoint. A point lies in at most two windows, so ``f`` has at least
    ``(2^T - 1)/2`` breakpoints, i.e. ``2^(T-1)`` units (one breakpoint per unit).
    """
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    return 2 ** (T - 1)

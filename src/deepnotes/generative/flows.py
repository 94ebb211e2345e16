"""Glow (Kingma & Dhariwal 2018; notes 8.11): a normalizing flow of invertible layers with
exact log-likelihood, and the bits-per-dimension it is scored in.

Direction. Every layer maps *data towards latent* (the normalizing direction, the notes'
``M^{-1}``): ``forward(x) -> (y, log_det)`` with ``log_det = log|det dy/dx|`` per example
``(N,)``, and ``inverse(y) -> x``. The whole flow ``f = f_K o ... o f_1`` gives

    log p_x(x) = log p_z(f(x)) + sum_k log|det df_k/dh_{k-1}|,     h_0 = x, h_K = z,

a **plus** sign for Jacobians of the data-to-latent layers, equivalently a **minus** sign for
those of the generative layers ``M = f^{-1}`` (``log|det dM/dz| = -log|det df/dx|``). The
notes' last line (``sum_k log|det dh_{k-1}/dh_k| + log p(M^{-1}(x))`` with ``h_0 = z``) agrees;
their line before it (``log P_z(z) - sum_k log det(dh_{k-1}/dh_k)``) has the sign flipped
(see docs/ERRATA.md, 8.11; decided in ``tests/generative/test_flows.py``).

Layers (the table of notes Fig. 8.5):

* :class:`ActNorm`: ``y = (x + b) * exp(log s)`` per channel, ``log_det = H W sum(log s)``,
  initialized from the first batch it sees (zero mean, unit variance per channel). The
  ``initialized`` flag is a **buffer**: it is in the ``state_dict``, so a loaded checkpoint
  keeps its trained ``b, s`` instead of re-initializing them on its first batch.
* :class:`InvConv1x1`: ``y = W x`` at every pixel; ``log_det = H W log|det W|`` by
  ``slogdet`` (plain) or, LU-parameterized ``W = P L (U + diag(sign(s) exp(log|s|)))``,
  ``H W sum(log|s|)`` (``O(C)`` instead of ``O(C^3)``; inverse by triangular solves).
* :class:`AffineCoupling`: ``x_a, x_b = split(x)``, ``(log s, t) = NN(x_b)``,
  ``y_a = s * x_a + t``, ``y_b = x_b``; the scale is bounded, ``log s = B tanh(r / B)``
  (a raw ``exp`` of an unbounded output is the usual source of NaNs), and the network's last
  convolution starts at zero, so every coupling starts as the identity.
* :func:`squeeze` / :func:`unsqueeze`: ``(C, H, W) <-> (4C, H/2, W/2)``, volume preserving.
* :class:`Split`: the multi-scale architecture's factoring out of half the channels, with a
  learned conditional prior ``z_out ~ N(mu(h), sigma(h)^2)``; written as the bijection
  ``(h, z_out) -> (h, (z_out - mu) / sigma)``, ``log_det = -sum log sigma``, so the whole
  :class:`Glow` is a bijection ``R^D -> R^D`` onto a standard normal.

:class:`Glow` works on any ``(C, H, W)`` with ``H, W`` divisible by ``2^levels``:
single-channel 28x28 Fashion-MNIST squeezes 28 -> 14 -> 7 (two levels, D = 784).
Sampling with temperature ``T`` draws every latent from ``N(0, T^2 I)``.

Scores: :func:`dequantize_bits` and :func:`bits_per_dim_bits` (``n_bits`` an option) wrap
:func:`deepnotes.metrics.generative.dequantize` / ``bits_per_dim`` (8 bits);
``bpd = (-log p(x~) + D log 2^n_bits) / (D ln 2)``. :class:`PixelHistogram` is the
independent-per-pixel baseline: a smoothed 2^n_bits-bin histogram per pixel.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from deepnotes.metrics.generative import bits_per_dim, dequantize

LOG_2PI = math.log(2 * math.pi)


# --- dequantization and bits per dimension ---------------------------------------------------
def reduce_bits(images: torch.Tensor, n_bits: int = 8) -> torch.Tensor:
    """uint8 pixels -> their top ``n_bits`` bits, integers in ``0 .. 2^n_bits - 1`` (uint8)."""
    if images.dtype != torch.uint8:
        raise ValueError(f"expected uint8 pixels, got {images.dtype}")
    if not 1 <= n_bits <= 8:
        raise ValueError(f"n_bits must be in 1..8, got {n_bits}")
    return images >> (8 - n_bits)


def dequantize_bits(images: torch.Tensor, n_bits: int = 8,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 pixels -> ``(x_n + u) / 2^n_bits`` in [0, 1), ``x_n`` the top ``n_bits`` bits and
    ``u ~ U[0, 1)`` (float64): :func:`deepnotes.metrics.generative.dequantize` at 8 bits."""
    return dequantize(reduce_bits(images, n_bits), generator) * 2.0 ** (8 - n_bits)


def bits_per_dim_bits(log_density: torch.Tensor, num_dims: int, n_bits: int = 8
                      ) -> torch.Tensor:
    """``(-log p(x~) + D log 2^n_bits) / (D ln 2)`` per example, ``log p(x~)`` in nats of the
    density on [0, 1)^D of :func:`dequantize_bits`' values (8 bits: ``bits_per_dim``)."""
    return bits_per_dim(log_density, num_dims) - (8 - n_bits)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` summed over every dimension but the first: ``(N, ...) -> (N,)``."""
    return -0.5 * (z.flatten(1).square().sum(1) + z[0].numel() * LOG_2PI)


class PixelHistogram:
    """Independent-per-pixel model: pixel ``i`` takes level ``k`` with probability
    ``(count_ik + alpha) / (N + 2^n_bits alpha)`` (additive smoothing), uniform within the
    level's bin. Its log density is that of the dequantized values, so :func:`bits_per_dim_bits`
    scores it like a flow."""

    def __init__(self, alpha: float = 1.0, n_bits: int = 8) -> None:
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha, self.n_bits = float(alpha), n_bits
        self.log_p: torch.Tensor | None = None  # (levels, D)

    def fit(self, images: torch.Tensor) -> PixelHistogram:
        levels = 2 ** self.n_bits
        x = reduce_bits(images, self.n_bits).reshape(len(images), -1).long()  # (N, D)
        counts = torch.zeros(levels, x.shape[1], dtype=torch.float64)
        counts.scatter_add_(0, x, torch.ones_like(x, dtype=torch.float64))
        self.log_p = ((counts + self.alpha) / (len(x) + levels * self.alpha)).log()
        return self

    def log_density(self, images: torch.Tensor) -> torch.Tensor:
        """``log p(x~)`` (nats) of the dequantized images, ``(N,)``: the level's log
        probability plus ``log 2^n_bits`` per pixel (the bin's width is ``2^-n_bits``)."""
        if self.log_p is None:
            raise RuntimeError("PixelHistogram.fit first")
        x = reduce_bits(images, self.n_bits).reshape(len(images), -1).long()
        picked = self.log_p.gather(0, x)  # (N, D): log_p[x_ij, j]
        return picked.sum(1) + x.shape[1] * self.n_bits * math.log(2)

    def bits_per_dim(self, images: torch.Tensor) -> torch.Tensor:
        d = images[0].numel()
        return bits_per_dim_bits(self.log_density(images), d, self.n_bits)


# --- layers ----------------------------------------------------------------------------------
def _per_example(value: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return value.expand(x.shape[0]) if value.ndim == 0 else value


def bounded_log_scale(raw: torch.Tensor, bound: float) -> torch.Tensor:
    """``B tanh(raw / B)``: the identity near 0 (slope 1), ``|log s| < B`` everywhere."""
    return bound * torch.tanh(raw / bound)


class ActNorm(nn.Module):
    """``y = (x + b) * exp(log s)`` per channel; data-dependent init on the first batch."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``b, s`` so that ``y`` has zero mean and unit variance per channel on ``x``."""
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True) if x[:, 0].numel() > 1 else torch.ones_like(mean)
        self.loc.copy_(-mean)
        self.log_scale.copy_(-(std + 1e-6).log())
        self.initialized.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not bool(self.initialized):
            self.initialize(x)
        y = (x + self.loc) * self.log_scale.exp()
        log_det = x.shape[2] * x.shape[3] * self.log_scale.sum()
        return y, _per_example(log_det, x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * (-self.log_scale).exp() - self.loc


class InvConv1x1(nn.Module):
    """Invertible 1x1 convolution ``y = W x`` (a ``C x C`` matrix at every pixel).

    ``lu=False``: ``W`` is the parameter, ``log|det W|`` by ``torch.linalg.slogdet``.
    ``lu=True``: ``W = P L (U + diag(sign_s * exp(log_s)))`` with ``P`` a fixed permutation,
    ``L`` unit lower and ``U`` strictly upper triangular; ``log|det W| = sum(log_s)``.
    ``weight`` (default: a random rotation from torch's global generator) sets ``W``; both
    forms built from one ``weight`` compute the same function.
    """

    def __init__(self, channels: int, lu: bool = True, weight: torch.Tensor | None = None
                 ) -> None:
        super().__init__()
        self.channels, self.lu = channels, lu
        if weight is None:
            weight = torch.linalg.qr(torch.randn(channels, channels))[0]
        if weight.shape != (channels, channels):
            raise ValueError(f"weight must be ({channels}, {channels}), got {tuple(weight.shape)}")
        if not lu:
            self.weight = nn.Parameter(weight.clone())
            return
        p, lower, upper = torch.linalg.lu(weight)
        s = upper.diagonal()
        self.register_buffer("perm", p.clone())
        self.register_buffer("sign_s", s.sign())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.register_buffer("eye", torch.eye(channels))
        self.lower = nn.Parameter(lower.clone())
        self.upper = nn.Parameter(upper.triu(1).clone())
        self.log_s = nn.Parameter(s.abs().log().clone())

    def _factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        lower = self.lower * self.lower_mask + self.eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return lower, upper

    def matrix(self) -> torch.Tensor:
        """``W`` (C, C)."""
        if not self.lu:
            return self.weight
        lower, upper = self._factors()
        return self.perm @ lower @ upper

    def inverse_matrix(self) -> torch.Tensor:
        """``W^{-1}``: ``torch.linalg.inv`` (plain), or ``U^{-1} L^{-1} P^T`` by triangular
        solves (LU)."""
        if not self.lu:
            return torch.linalg.inv(self.weight)
        lower, upper = self._factors()
        l_inv = torch.linalg.solve_triangular(lower, self.eye, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(upper, l_inv, upper=True) @ self.perm.T

    def log_abs_det(self) -> torch.Tensor:
        """``log|det W|``: ``slogdet`` (plain) or ``sum(log_s)`` (LU)."""
        return self.log_s.sum() if self.lu else torch.linalg.slogdet(self.weight)[1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.matrix()
        y = F.conv2d(x, w.view(self.channels, self.channels, 1, 1))
        return y, _per_example(x.shape[2] * x.shape[3] * self.log_abs_det(), x)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        w_inv = self.inverse_matrix()
        return F.conv2d(y, w_inv.view(self.channels, self.channels, 1, 1))


def _zero_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, padding=1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class AffineCoupling(nn.Module):
    """``y_a = exp(log s) * x_a + t``, ``y_b = x_b``, ``(log s, t) = NN(x_b)``.

    ``x_a`` are the first ``C // 2`` channels, ``x_b`` the rest. NN: 3x3 conv, ReLU, 1x1 conv,
    ReLU, 3x3 conv initialized at zero (the layer starts as the identity). The network need
    not be invertible (ReLU is fine inside it): only the coupling is inverted.
    ``log s = bound * tanh(raw / bound)``.
    """

    def __init__(self, channels: int, hidden: int = 64, bound: float = 2.0) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"a coupling needs >= 2 channels (squeeze first), got {channels}")
        self.ca, self.cb, self.bound = channels // 2, channels - channels // 2, float(bound)
        self.net = nn.Sequential(
            nn.Conv2d(self.cb, hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
            _zero_conv(hidden, 2 * self.ca))

    def _scale_shift(self, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.net(xb)
        raw, t = h[:, :self.ca], h[:, self.ca:]
        return bounded_log_scale(raw, self.bound), t

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa, xb = x[:, :self.ca], x[:, self.ca:]
        log_s, t = self._scale_shift(xb)
        ya = xa * log_s.exp() + t
        return torch.cat([ya, xb], 1), log_s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        ya, yb = y[:, :self.ca], y[:, self.ca:]
        log_s, t = self._scale_shift(yb)
        return torch.cat([(ya - t) * (-log_s).exp(), yb], 1)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W) -> (N, 4C, H/2, W/2)``: each 2x2 block of a channel becomes 4 channels."""
    n, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"squeeze needs even H and W, got {h}x{w}")
    x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`squeeze`."""
    n, c, h, w = y.shape
    x = y.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // 4, 2 * h, 2 * w)


class Squeeze(nn.Module):
    """:func:`squeeze` as a layer (``log_det = 0``)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return squeeze(x), x.new_zeros(x.shape[0])

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return unsqueeze(y)


class Split(nn.Module):
    """``(h, z) -> (h, (z - mu(h)) / sigma(h))``: the first ``keep`` channels ``h`` continue,
    the rest are factored out under the learned prior ``N(mu(h), sigma(h)^2)`` (a zero-
    initialized 3x3 conv of ``h``; ``log sigma`` bounded like a coupling's scale)."""

    def __init__(self, channels: int, bound: float = 6.0) -> None:
        super().__init__()
        self.keep, self.out, self.bound = channels // 2, channels - channels // 2, float(bound)
        self.prior = _zero_conv(self.keep, 2 * self.out)

    def _moments(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.prior(h)
        return p[:, :self.out], bounded_log_scale(p[:, self.out:], self.bound)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, z = x[:, :self.keep], x[:, self.keep:]
        mean, log_std = self._moments(h)
        eps = (z - mean) * (-log_std).exp()
        return torch.cat([h, eps], 1), -log_std.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        h, eps = y[:, :self.keep], y[:, self.keep:]
        mean, log_std = self._moments(h)
        return torch.cat([h, mean + log_std.exp() * eps], 1)


class FlowStep(nn.Module):
    """One step of Glow: ActNorm -> invertible 1x1 conv -> affine coupling."""

    def __init__(self, channels: int, hidden: int = 64, lu: bool = True, bound: float = 2.0
                 ) -> None:
        super().__init__()
        self.layers = nn.ModuleList([ActNorm(channels), InvConv1x1(channels, lu=lu),
                                     AffineCoupling(channels, hidden, bound)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = x.new_zeros(x.shape[0])
        for layer in self.layers:
            x, ld = layer(x)
            log_det = log_det + ld
        return x, log_det

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


class Glow(nn.Module):
    """Multi-scale Glow on ``(in_channels, size, size)`` inputs; a bijection ``R^D -> R^D``.

    Level ``i``: squeeze, ``steps`` :class:`FlowStep`, then (all but the last level) a
    :class:`Split` that factors out half the channels. ``forward(x) -> (z, log_det)`` with
    ``z`` flat ``(N, D)`` (the factored-out parts first, then the last level's output) and
    ``log p(x) = log N(z; 0, I) + log_det`` (:meth:`log_prob`). Inputs are centred values:
    :meth:`log_prob_unit` takes values in [0, 1) (dequantized pixels) and shifts them by 0.5.
    """

    def __init__(self, in_channels: int = 1, size: int = 28, levels: int = 2, steps: int = 8,
                 hidden: int = 64, lu: bool = True, bound: float = 2.0, logit: float = 0.0
                 ) -> None:
        super().__init__()
        if size % (2 ** levels):
            raise ValueError(f"size {size} must be divisible by 2^levels = {2 ** levels} "
                             f"(pad 28x28 to 32x32 for 3 levels)")
        self.kwargs = dict(in_channels=in_channels, size=size, levels=levels, steps=steps,
                           hidden=hidden, lu=lu, bound=bound, logit=logit)
        if not 0.0 <= logit < 0.5:
            raise ValueError(f"logit alpha must be in [0, 0.5), got {logit}")
        self.alpha = float(logit)
        self.steps = nn.ModuleList()
        self.splits = nn.ModuleList()
        self.shapes: list[tuple[int, int, int]] = []  # shapes of the latent parts, in order
        c, s = in_channels, size
        for level in range(levels):
            c, s = 4 * c, s // 2
            self.steps.append(nn.ModuleList([FlowStep(c, hidden, lu, bound)
                                             for _ in range(steps)]))
            if level + 1 < levels:
                split = Split(c, bound=3 * bound)
                self.splits.append(split)
                self.shapes.append((split.out, s, s))
                c = split.keep
        self.shapes.append((c, s, s))
        self.in_shape = (in_channels, size, size)
        self.num_dims = in_channels * size * size

    @property
    def architecture(self) -> dict:
        return {"class": "deepnotes.generative.flows.Glow", "kwargs": dict(self.kwargs)}

    def layers(self) -> list[nn.Module]:
        """Every bijective layer in data-to-latent order (squeezes and splits included)."""
        out: list[nn.Module] = []
        for level, steps in enumerate(self.steps):
            out.append(Squeeze())
            for step in steps:
                out.extend(step.layers)
            if level < len(self.splits):
                out.append(self.splits[level])
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_det = x.new_zeros(x.shape[0])
        parts = []
        h = x
        for level, steps in enumerate(self.steps):
            h = squeeze(h)
            for step in steps:
                h, ld = step(h)
                log_det = log_det + ld
            if level < len(self.splits):
                split = self.splits[level]
                y, ld = split(h)
                log_det = log_det + ld
                h = y[:, :split.keep]
                parts.append(y[:, split.keep:].flatten(1))
        parts.append(h.flatten(1))
        return torch.cat(parts, 1), log_det

    def inverse(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [c * h * w for c, h, w in self.shapes]
        parts = [p.reshape(len(z), *shape)
                 for p, shape in zip(z.split(sizes, 1), self.shapes, strict=True)]
        h = parts[-1]
        for level in reversed(range(len(self.steps))):
            if level < len(self.splits):
                h = self.splits[level].inverse(torch.cat([h, parts[level]], 1))
            for step in reversed(self.steps[level]):
                h = step.inverse(h)
            h = unsqueeze(h)
        return h

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` (nats) per example of centred inputs ``(N, C, H, W)``."""
        z, log_det = self(x)
        return standard_normal_log_prob(z) + log_det

    def preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-range values -> the flow's input and the log-det of that map: ``x - 0.5``
        (``log_det = 0``), or with ``logit = alpha > 0`` RealNVP's
        ``logit(alpha + (1 - 2 alpha) x)``."""
        if not self.alpha:
            return x - 0.5, x.new_zeros(x.shape[0])
        p = self.alpha + (1 - 2 * self.alpha) * x
        log_det = (math.log(1 - 2 * self.alpha) - p.log() - (-p).log1p()).flatten(1).sum(1)
        return p.log() - (-p).log1p(), log_det

    def postprocess(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`preprocess`."""
        if not self.alpha:
            return y + 0.5
        return (torch.sigmoid(y) - self.alpha) / (1 - 2 * self.alpha)

    def log_prob_unit(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x~)`` (nats) of values ``x~`` in [0, 1) (dequantized pixels)."""
        y, log_det = self.preprocess(x)
        return self.log_prob(y) + log_det

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples in the unit range (not clipped): :meth:`postprocess` of
        ``f^{-1}(z)``, ``z ~ N(0, T^2 I)`` drawn on the CPU from ``generator``."""
        if any(not bool(m.initialized) for m in self.modules() if isinstance(m, ActNorm)):
            raise ValueError("this Glow has never seen data: its ActNorm layers initialize "
                             "from the first batch; train it, run a forward pass on data, or "
                             "load a trained state_dict before sampling")
        z = torch.randn(n, self.num_dims, generator=generator) * temperature
        p = next(self.parameters())
        return self.postprocess(self.inverse(z.to(device=p.device, dtype=p.dtype)))


def to_levels(x: torch.Tensor, n_bits: int = 8) -> torch.Tensor:
    """Unit-range values -> the uint8 pixels whose dequantization bins contain them:
    ``floor(x 2^n_bits)`` clipped to the levels, back on the 8-bit scale (``<< 8 - n_bits``)."""
    x = torch.nan_to_num(x.detach(), nan=0.0, posinf=1.0, neginf=0.0)
    levels = (x * 2 ** n_bits).floor().clamp(0, 2 ** n_bits - 1)
    return (levels * 2 ** (8 - n_bits)).to(torch.uint8)

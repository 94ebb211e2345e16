"""Deep Image Prior (notes 8.14.2; Ulyanov, Vedaldi & Lempitsky, 2018).

The prior is the range of a randomly initialized CNN ``f_θ`` fed a fixed random input ``z``:
restoring ``y = x + n`` means ``θ* = argmin_θ ‖f_θ(z) − y‖²`` and ``x̂ = f_θ*(z)``. The
network fits structure long before it fits noise, so stopping early denoises; run to the end
it reproduces the noise too (the notes' figure 8.7).

* :class:`SkipNet`: the paper's "skip" encoder-decoder. Each level downsamples by a strided
  3×3 convolution (no pooling), the decoder upsamples bilinearly (or nearest) back to the
  exact size of the level above (so odd sizes work without cropping), and a 1×1 "skip"
  branch of a few channels joins each level's input to its decoder. Reflection padding,
  batch norm and LeakyReLU(0.2) as in the paper; a sigmoid keeps the output in [0, 1].
  The widths default to 32 channels (the paper's 128 sized down for 2 CPU cores).
* :func:`make_input`: the fixed input ``z ~ U(0, 0.1)`` of ``channels × H × W``, drawn from
  the generator the caller passes (a named CPU stream), so it is the same on every device.
* :class:`DIPFit`: one DIP optimization (Adam on ``‖f_θ(z + σ_z ε_t) − y‖²``; ``σ_z`` the
  optional input-noise regularization, ``ε_t`` drawn fresh each step), with an exponential
  moving average of the *output* ``x̄_t = d x̄_{t−1} + (1 − d) f_θ(z)`` (the paper's
  "exp_weight" 0.99, started at the first output) and per-iteration curves. Its ``state``
  dict holds everything a resumed run needs besides the net and the optimizer.
* Early stopping without the clean image, :func:`discrepancy_stop`: Morozov's discrepancy
  principle with the known noise level. Stop at the first iteration where the mean squared
  residual of the averaged output to the noisy image falls to ``σ²``,
  ``‖x̄_t − y‖² / N ≤ σ²``. Why this rule: ``y − x = n`` has ``E‖n‖²/N = σ²`` (with a
  relative spread of only ``√(2/N)``, under 1.2% for a 128×128 image), so a residual below
  ``σ²`` means the output explains more than the clean image does, i.e. it has started to
  reproduce the noise. σ is known here (it is the likelihood's own parameter in 8.14.1,
  ``Denoising().observe(x, σ)``), the rule needs nothing but the loss the fit computes anyway,
  and it is exact to test. The averaged output is used because it is what DIP returns; its
  residual crosses ``σ²`` later than the raw output's. The alternative we did not pick, the
  running variance of the outputs over a window (Wang et al. 2021), needs no σ but a window
  and a patience of hundreds of iterations, longer than our quick budgets.

Everything here is free of I/O; the clean image, when given, is used for the PSNR curves only
(the oracle), never by the stopping rule.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

DEFAULT_WIDTH = 32  # channels per level (the paper: 128)
DEFAULT_SKIP = 4  # skip channels per level (the paper: 4)
DEFAULT_DEPTH = 5  # levels (the paper: 5)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2,
                     padding_mode="reflect" if kernel > 1 else "zeros")


def _block(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, kernel, stride), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


class SkipNet(nn.Module):
    """The paper's encoder-decoder with skip connections.

    Level ``i`` (input ``h_i`` with ``c_i`` channels, size ``H_i × W_i``):

    * down: ``h_{i+1} = block(block(h_i, stride 2))`` (3×3, ``down[i]`` channels);
    * skip: ``s_i = block_1×1(h_i)`` (``skip[i]`` channels, none when 0);
    * up: ``u_i = block_1×1(block_3×3(BN(concat(s_i, upsample(u_{i+1}, H_i × W_i)))))``
      with ``up[i]`` channels; the deepest level upsamples ``h_{i+1}`` itself.

    The output is ``sigmoid(conv_1×1(u_0))``. A level needs at least 2 pixels per side
    before its downsampling (reflection padding), so images need ``≥ 2^depth`` pixels a side.

    Args:
        in_channels: channels of the input ``z``.
        out_channels: channels of the image (1 grey, 3 colour).
        down, up, skip: channels per level (equal lengths: the depth).
        upsample: ``"bilinear"`` or ``"nearest"``.
    """

    def __init__(self, in_channels: int = 32, out_channels: int = 1,
                 down: Sequence[int] = (DEFAULT_WIDTH,) * DEFAULT_DEPTH,
                 up: Sequence[int] = (DEFAULT_WIDTH,) * DEFAULT_DEPTH,
                 skip: Sequence[int] = (DEFAULT_SKIP,) * DEFAULT_DEPTH,
                 upsample: str = "bilinear") -> None:
        super().__init__()
        if not (len(down) == len(up) == len(skip)) or len(down) < 1:
            raise ValueError(f"down, up and skip need one entry per level (>= 1), got "
                             f"{len(down)}, {len(up)}, {len(skip)}")
        if upsample not in ("bilinear", "nearest"):
            raise ValueError(f"upsample must be 'bilinear' or 'nearest', got {upsample!r}")
        self.depth = len(down)
        self.upsample = upsample
        self.downs = nn.ModuleList()
        self.skips = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        cin = in_channels
        for i in range(self.depth):
            self.downs.append(nn.Sequential(_block(cin, down[i], 3, stride=2),
                                            _block(down[i], down[i], 3)))
            self.skips.append(_block(cin, skip[i], 1) if skip[i] > 0 else nn.Identity())
            deeper = up[i + 1] if i + 1 < self.depth else down[i]
            joined = skip[i] + deeper
            self.norms.append(nn.BatchNorm2d(joined))
            self.ups.append(nn.Sequential(_block(joined, up[i], 3), _block(up[i], up[i], 1)))
            cin = down[i]
        self.skip_channels = tuple(int(s) for s in skip)
        self.out = nn.Conv2d(up[0], out_channels, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        side = min(z.shape[-2:])
        if side < 2 ** self.depth:
            raise ValueError(f"a depth-{self.depth} SkipNet needs inputs of at least "
                             f"{2 ** self.depth} pixels a side, got {tuple(z.shape[-2:])}")
        inputs = []
        h = z
        for down in self.downs:
            inputs.append(h)
            h = down(h)
        for i in reversed(range(self.depth)):
            h = F.interpolate(h, size=inputs[i].shape[-2:], mode=self.upsample,
                              **({"align_corners": False} if self.upsample == "bilinear"
                                 else {}))
            if self.skip_channels[i] > 0:
                h = torch.cat([self.skips[i](inputs[i]), h], dim=1)
            h = self.ups[i](self.norms[i](h))
        return torch.sigmoid(self.out(h))


def make_input(channels: int, shape: tuple[int, int], generator: torch.Generator,
               scale: float = 0.1) -> torch.Tensor:
    """The fixed DIP input ``z ~ U(0, scale)`` of shape ``(1, channels, H, W)`` (the paper's
    ``get_noise(..., 'noise', var=1/10)``), drawn on the CPU from ``generator``."""
    if channels < 1 or scale <= 0:
        raise ValueError(f"need channels >= 1 and scale > 0, got {channels}, {scale}")
    return torch.rand((1, channels, *shape), generator=generator) * scale


def discrepancy_stop(residual_mse: Sequence[float], sigma: float) -> int | None:
    """Index of the first iteration whose mean squared residual ``‖x̄_t − y‖²/N`` is at most
    ``σ²`` (Morozov's discrepancy principle; see the module docstring), ``None`` if none is."""
    if sigma <= 0:
        raise ValueError(f"the discrepancy principle needs sigma > 0, got {sigma}")
    level = sigma ** 2
    for t, value in enumerate(residual_mse):
        if value <= level:
            return t
    return None


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).pow(2).mean())


def _psnr(mse: float) -> float:
    """PSNR in dB for images in [0, 1] (data range 1) from their MSE."""
    return math.inf if mse == 0 else -10 * math.log10(mse)


class DIPFit:
    """One Deep Image Prior fit of ``target`` (the observed image ``y``, ``(1, C, H, W)``).

    Each :meth:`step` takes one Adam step on ``mean((f_θ(z') − y)²)`` with
    ``z' = z + reg_noise_std · ε`` (``ε ~ N(0, I)`` from the step's generator; ``z' = z``
    when ``reg_noise_std`` is 0), then updates the output EMA and appends to the curves in
    :attr:`state`:

    * ``mse``: the raw output's MSE to ``y`` (the loss; the paper's figure 8.6 curves);
    * ``mse_ema``: the averaged output's MSE to ``y`` (the discrepancy rule's input);
    * ``psnr``, ``psnr_ema``: PSNR (data range 1) of raw and averaged output to ``clean``,
      only when a clean image is given (the oracle; nothing else reads it);
    * ``seconds``: wall time since the fit started, cumulated over steps;
    * ``stop``: the discrepancy rule's iteration once ``sigma`` is given and it has fired,
      with ``stop_image`` the averaged output there; ``best``/``best_image``: the iteration
      and averaged output of the highest ``psnr_ema`` so far (with a clean image).

    Args:
        net: the network (its parameters are optimized in place).
        z: the fixed input ``(1, C_in, H, W)``.
        target: ``y``.
        lr: Adam's learning rate (the paper: 0.01).
        reg_noise_std: input-noise regularization ``σ_z`` (the paper: 1/30 for denoising).
        ema_decay: ``d`` of the output EMA, in [0, 1).
        clean: the clean image, for the oracle PSNR curves only.
        sigma: the known noise level of ``y``, for :func:`discrepancy_stop` (online).
        autocast: run the forward pass under CPU bf16 autocast (loss and EMA in fp32).
        channels_last: keep the input (and the net) in channels-last memory format.
    """

    def __init__(self, net: nn.Module, z: torch.Tensor, target: torch.Tensor, *,
                 lr: float = 0.01, reg_noise_std: float = 0.0, ema_decay: float = 0.99,
                 clean: torch.Tensor | None = None, sigma: float | None = None,
                 autocast: bool = False, channels_last: bool = False) -> None:
        if not 0 <= ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if reg_noise_std < 0:
            raise ValueError(f"reg_noise_std must be >= 0, got {reg_noise_std}")
        if clean is not None and clean.shape != target.shape:
            raise ValueError(f"clean {tuple(clean.shape)} and target {tuple(target.shape)} "
                             f"differ in shape")
        memory = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(memory_format=memory)
        self.z = z.contiguous(memory_format=memory)
        self.target = target.float()
        self.clean = None if clean is None else clean.float()
        self.sigma = sigma
        self.reg_noise_std = reg_noise_std
        self.ema_decay = ema_decay
        self.autocast = autocast
        self.optimizer = torch.optim.Adam(net.parameters(), lr=lr)
        self.state: dict = {"ema": torch.zeros_like(self.target), "mse": [], "mse_ema": [],
                            "psnr": [], "psnr_ema": [], "seconds": [], "stop": -1,
                            "stop_image": torch.zeros_like(self.target), "best": -1,
                            "best_image": torch.zeros_like(self.target)}

    def step(self, generator: torch.Generator | None = None) -> dict[str, float]:
        """One iteration; returns this iteration's numbers (``generator`` draws ε)."""
        t0 = time.perf_counter()
        state = self.state
        t = len(state["mse"])
        self.net.train()
        z = self.z
        if self.reg_noise_std > 0:
            if generator is None:
                raise ValueError("input-noise regularization needs a torch.Generator for its "
                                 "draws (e.g. ctx.rng('dip-input-noise', step)), so that runs "
                                 "reproduce and resume exactly")
            eps = torch.randn(z.shape, generator=generator)
            z = z + self.reg_noise_std * eps.to(z.device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            out = self.net(z)
        out = out.float()
        loss = (out - self.target).pow(2).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            out = out.detach().contiguous()
            ema = state["ema"]
            if t == 0:
                ema.copy_(out)
            else:
                ema.lerp_(out, 1 - self.ema_decay)
            row = {"mse": float(loss), "mse_ema": _mse(ema, self.target)}
            if self.clean is not None:
                row["psnr"] = _psnr(_mse(out, self.clean))
                row["psnr_ema"] = _psnr(_mse(ema, self.clean))
                if state["best"] < 0 or row["psnr_ema"] > state["psnr_ema"][state["best"]]:
                    state["best"] = t
                    state["best_image"].copy_(ema)
            if (self.sigma is not None and state["stop"] < 0
                    and discrepancy_stop([row["mse_ema"]], self.sigma) is not None):
                state["stop"] = t
                state["stop_image"].copy_(ema)
        previous = state["seconds"][-1] if state["seconds"] else 0.0
        row["seconds"] = previous + time.perf_counter() - t0
        for key, value in row.items():
            state[key].append(value)
        return row

    def run(self, steps: Iterable[int],
            generator: Callable[[int], torch.Generator] | None = None) -> DIPFit:
        """:meth:`step` for each of ``steps`` (``range(n)`` or a run context's loop);
        ``generator(step)`` gives the step's input-noise stream."""
        for step in steps:
            self.step(None if generator is None else generator(step))
        return self

    def output(self) -> torch.Tensor:
        """The current raw output ``f_θ(z)`` (no noise on ``z``; batch norm in training mode,
        normalizing by this one image's statistics as every fitting step does)."""
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16,
                                             enabled=self.autocast):
            return self.net(self.z).float()


def iterations_to_reach(curve: Sequence[float], level: float) -> int | None:
    """First index where ``curve`` is at most ``level``, ``None`` if never."""
    for t, value in enumerate(curve):
        if value <= level:
            return t
    return None

"""LTI = convolution (notes sec. 4.1): circulant matrix, direct sum and FFT agree; a learned
linear shift-equivariant map is a circulant; Example 4.1 recomputed; the difference filter
is a first-order derivative.

1. For random float64 signals the three routes to cyclic convolution (circulant matrix, the
   direct double sum, the convolution theorem via FFT) agree to round-off.
2. A dense linear layer ``W`` (n x n weights, no structure imposed) is fitted by Adam to
   input/output pairs of an unknown LTI system (cyclic convolution with a hidden kernel, plus
   noise). The fitted ``W`` is a circulant (deviation from the nearest circulant small) whose
   first column is the hidden kernel: linearity + shift-equivariance is all it takes.
3. Example 4.1: ``h(6) = f(3) g(3) = +1`` and ``h = (1, -1, 0, 0, 0, 0)``; the notes print -1
   and a matrix with the correlation orientation (docs/ERRATA.md).
4. Example 4.2: the forward difference of ``sin`` sampled with spacing ``dx`` approximates
   ``cos`` with error O(dx): halving ``dx`` halves the error. On a Fashion-MNIST image the
   horizontal and vertical difference filters are edge detectors (figure).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from deepnotes.conv import lti
from deepnotes.data import load_fashion_mnist
from deepnotes.engine.threads import one_thread
from deepnotes.experiments.base import Claim, Result, experiment

ROUNDOFF = 1e-9  # float64 agreement of the three routes (n <= 256: error ~ n * 1e-16)
CIRCULANT_TOLERANCE = 0.05  # relative Frobenius deviation of the learned map
KERNEL_TOLERANCE = 0.05  # relative error of the recovered kernel
FIRST_ORDER_RATIO = 1.8  # error(dx) / error(dx / 2) for an O(dx) method (2 in the limit)


@dataclass(frozen=True)
class Config:
    n: int = 128  # signal length for the agreement check
    trials: int = 200
    learn_n: int = 32  # size of the learned map
    learn_samples: int = 4096
    learn_steps: int = 600
    learn_batch: int = 256
    learn_lr: float = 0.02
    noise: float = 0.05
    fft_n: int = 4096  # length for the direct-vs-FFT timing
    threads: int = 0  # intra-op threads; 0 = the runner's choice (smoke: 1, tiny tensors)


def _learn_lti_map(cfg: Config, ctx) -> dict[str, float | torch.Tensor]:
    gen = ctx.rng("lti-map")
    n = cfg.learn_n
    kernel = torch.zeros(n)
    kernel[:5] = torch.tensor([0.5, 1.0, -0.75, 0.25, -0.1])  # a hidden 5-tap filter
    x = torch.randn(cfg.learn_samples, n, generator=gen)
    y = lti.fft_convolve(x, kernel) + cfg.noise * torch.randn(cfg.learn_samples, n,
                                                              generator=gen)
    layer = torch.nn.Linear(n, n, bias=False)
    torch.nn.init.zeros_(layer.weight)
    optimizer = torch.optim.Adam(layer.parameters(), lr=cfg.learn_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, cfg.learn_steps)
    for step in range(cfg.learn_steps):
        idx = torch.randint(0, cfg.learn_samples, (cfg.learn_batch,), generator=gen)
        loss = (layer(x[idx]) - y[idx]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 50 == 0 or step + 1 == cfg.learn_steps:
            ctx.log(step, phase="learn_lti", loss=loss.item())
    W = layer.weight.detach().double()
    recovered = lti.nearest_circulant_kernel(W)
    return {
        "W": W, "kernel": kernel.double(), "recovered": recovered,
        "circulant_deviation": lti.circulant_deviation(W).item(),
        "kernel_error": ((recovered - kernel.double()).norm() / kernel.norm()).item(),
    }


def _derivative_errors() -> list[tuple[float, float]]:
    rows = []
    for n in (32, 64, 128, 256):
        dx = 2 * math.pi / n
        x = torch.arange(n, dtype=torch.float64) * dx
        err = (lti.forward_difference(torch.sin(x)) / dx - torch.cos(x)).abs().max().item()
        rows.append((dx, err))
    return rows


def _timing(n: int) -> tuple[float, float]:
    f, g = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    G = lti.circulant(g)
    t0 = time.perf_counter()
    G @ f
    t1 = time.perf_counter()
    for _ in range(10):
        lti.fft_convolve(f, g)
    t2 = time.perf_counter()
    return t1 - t0, (t2 - t1) / 10


def _figures(ctx, learned, derivative, image, example):
    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 4)
    axes[0].imshow(example["notes"], cmap="coolwarm", vmin=-1, vmax=1)
    axes[0].set_title("Ex. 4.1 as printed\n(correlation matrix)")
    axes[1].imshow(example["correct"], cmap="coolwarm", vmin=-1, vmax=1)
    axes[1].set_title("circulant G[y,s] = g(y-s)")
    axes[2].imshow(learned["W"].numpy(), cmap="coolwarm")
    axes[2].set_title(f"learned dense W\n(deviation {learned['circulant_deviation']:.3f})")
    axes[3].plot(learned["kernel"].numpy(), "o-", label="hidden g")
    axes[3].plot(learned["recovered"].numpy(), "x--", label="from W")
    axes[3].set_title("kernel")
    axes[3].legend()
    ctx.figure(fig, "circulant")

    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 4)
    dxs, errs = zip(*derivative, strict=True)
    axes[0].loglog(dxs, errs, "o-", label="max |Df/dx - cos|")
    axes[0].loglog(dxs, [0.5 * d for d in dxs], "k:", label="dx / 2")
    axes[0].set_xlabel("dx")
    axes[0].legend()
    axes[0].set_title("forward difference of sin")
    axes[1].imshow(image.numpy(), cmap="gray")
    axes[1].set_title("Fashion-MNIST test image")
    axes[2].imshow((torch.roll(image, -1, 1) - image).numpy(), cmap="coolwarm")
    axes[2].set_title("f(x+1, y) - f(x, y)")
    axes[3].imshow((torch.roll(image, -1, 0) - image).numpy(), cmap="coolwarm")
    axes[3].set_title("f(x, y+1) - f(x, y)")
    for ax in axes[1:]:
        ax.axis("off")
    ctx.figure(fig, "difference_filter")


def run(cfg: Config, ctx) -> Result:
    gen = ctx.rng("signals")
    f = torch.randn(cfg.trials, cfg.n, dtype=torch.float64, generator=gen)
    g = torch.randn(cfg.trials, cfg.n, dtype=torch.float64, generator=gen)
    direct = lti.cyclic_convolve(f, g)
    by_matrix = (lti.circulant(g) @ f[..., None])[..., 0]
    by_fft = lti.fft_convolve(f, g)
    matrix_error = (by_matrix - direct).abs().max().item()
    fft_error = (by_fft - direct).abs().max().item()

    with one_thread():  # 32 x 32 weights: one thread is faster
        learned = _learn_lti_map(cfg, ctx)

    f41 = torch.tensor([0, 0, 0, 1, 0, 0], dtype=torch.float64)
    g41 = torch.tensor([0, 0, 0, 1, -1, 0], dtype=torch.float64)
    h41 = lti.cyclic_convolve(f41, g41)
    h6 = sum(f41[s].item() * g41[(6 - s) % 6].item() for s in range(6))
    example = {"notes": lti.correlation_matrix(g41).numpy(), "correct": lti.circulant(g41).numpy()}

    derivative = _derivative_errors()
    ratios = [a[1] / b[1] for a, b in zip(derivative[:-1], derivative[1:], strict=True)]
    t_matrix, t_fft = _timing(cfg.fft_n)

    images, _ = load_fashion_mnist("test", first=1)
    _figures(ctx, learned, derivative, images[0].double() / 255, example)
    return Result(
        metrics={
            "matrix_vs_direct_max_error": matrix_error,
            "fft_vs_direct_max_error": fft_error,
            "learned_circulant_deviation": learned["circulant_deviation"],
            "learned_kernel_error": learned["kernel_error"],
            "example_4_1_h6": h6,
            "example_4_1_h0": h41[0].item(),
            "example_4_1_h1": h41[1].item(),
            "derivative_error_smallest_dx": derivative[-1][1],
            "derivative_error_ratio_min": min(ratios),
            f"matrix_seconds_n{cfg.fft_n}": t_matrix,
            f"fft_seconds_n{cfg.fft_n}": t_fft,
        },
        claims=[
            Claim("routes_agree", "Circulant matrix, direct sum and FFT give the same cyclic "
                  "convolution (max abs difference, float64).",
                  max(matrix_error, fft_error), "<=", ROUNDOFF),
            Claim("learned_map_is_circulant", "A dense linear map fitted to an LTI system's "
                  "input/output pairs is a circulant (relative distance to the nearest one).",
                  learned["circulant_deviation"], "<=", CIRCULANT_TOLERANCE),
            Claim("learned_kernel", "The learned map's diagonals are the hidden kernel "
                  "(relative error).", learned["kernel_error"], "<=", KERNEL_TOLERANCE),
            Claim("example_4_1_h6", "Example 4.1 recomputed: h(6) = f(3) g(3) = +1 (the notes "
                  "print -1).", h6, ">", 0.0),
            Claim("difference_is_first_order", "The difference filter approximates the "
                  "derivative to first order: halving dx halves the error (min ratio).",
                  min(ratios), ">=", FIRST_ORDER_RATIO),
        ]
    )


EXPERIMENT = experiment(
    name="convolution-theorem",
    sections=("4.1",),
    claim="Linear shift-invariant maps are convolutions: circulant matrix = direct sum = FFT, "
          "and a learned shift-equivariant linear map is a circulant.",
    presets={
        "smoke": Config(n=32, trials=8, learn_n=16, learn_samples=512, learn_steps=40,
                        learn_batch=64, fft_n=512, threads=1),
        "quick": Config(),
        "full": Config(n=256, trials=1000, learn_n=64, learn_samples=16384, learn_steps=3000),
    },
    run=run,
    quick_seconds=10.0,
)

"""Convolution layers written out equal torch's, and their size arithmetic (notes 4.2, 8.6).

1. On Fashion-MNIST images (float64) our im2col ``conv2d`` (strides, padding, dilation,
   groups), max/avg pooling and transposed convolution give torch's values and gradients.
2. The output size ``floor((w + 2p - d(k-1) - 1)/s) + 1`` (``w - k + 1`` in the notes'
   unpadded case, sec. 4.2.2) matches torch on a grid of sizes, kernels, strides, paddings
   and dilations; the shapes of the notes' Figure 4.1 (32x32x3 -> 28x28x6 -> 24x24x10) are
   reproduced.
3. The notes' transposed-convolution example (sec. 8.6: input = kernel = [[0, 1], [2, 3]],
   stride 2) is reproduced exactly by ``conv_transpose2d`` and by ours.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.conv import functional as CF
from deepnotes.conv import layers, output_size
from deepnotes.data import FASHION_MEAN, FASHION_STD, load_fashion_mnist
from deepnotes.experiments.base import Claim, Result, experiment

PARITY_TOLERANCE = 1e-10  # float64 agreement of values and gradients
NOTES_TRANSPOSED = [[0, 0, 0, 1], [0, 0, 2, 3], [0, 2, 0, 3], [4, 6, 6, 9]]

# (C_in, C_out, kernel, stride, padding, dilation, groups)
CONV_CASES = ((1, 8, 3, 1, 1, 1, 1), (1, 6, 5, 1, 0, 1, 1), (1, 8, 3, 2, 1, 1, 1),
              (1, 4, 3, 1, 2, 2, 1), (8, 8, 3, 1, 1, 1, 8), (8, 16, (3, 5), (2, 1), (1, 2), 1, 2))
POOL_CASES = ((2, None, 0), (3, 2, 1), (3, 1, 1))


@dataclass(frozen=True)
class Config:
    images: int = 64
    threads: int = 0  # intra-op threads; 0 = the runner's choice


def _max_gap(ours, theirs, *inputs) -> float:
    """Max abs difference of outputs and of the gradients of a fixed random projection."""
    gaps = []
    results = []
    for fn in (ours, theirs):
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        probe = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(0))
        (out * probe).sum().backward()
        results.append((out.detach(), [t.grad for t in leaves]))
    (a, grads_a), (b, grads_b) = results
    gaps.append((a - b).abs().max().item())
    gaps += [(ga - gb).abs().max().item() for ga, gb in zip(grads_a, grads_b, strict=True)]
    return max(gaps)


def _parity(x: torch.Tensor, gen: torch.Generator) -> dict[str, float]:
    out = {}
    conv_gap, pool_gap = 0.0, 0.0
    for c_in, c_out, k, s, p, d, g in CONV_CASES:
        kh, kw = (k, k) if isinstance(k, int) else k
        inp = x if c_in == 1 else x.repeat(1, c_in, 1, 1) * torch.rand(
            1, c_in, 1, 1, dtype=x.dtype, generator=gen)
        w = torch.randn(c_out, c_in // g, kh, kw, dtype=x.dtype, generator=gen)
        b = torch.randn(c_out, dtype=x.dtype, generator=gen)
        conv_gap = max(conv_gap, _max_gap(
            lambda t, w_, b_, s=s, p=p, d=d, g=g: CF.conv2d(t, w_, b_, s, p, d, g),
            lambda t, w_, b_, s=s, p=p, d=d, g=g: F.conv2d(t, w_, b_, s, p, d, g), inp, w, b))
    for k, s, p in POOL_CASES:
        pool_gap = max(pool_gap,
                       _max_gap(lambda t, k=k, s=s, p=p: CF.max_pool2d(t, k, s, p),
                                lambda t, k=k, s=s, p=p: F.max_pool2d(t, k, s, p), x),
                       _max_gap(lambda t, k=k, s=s, p=p: CF.avg_pool2d(t, k, s, p),
                                lambda t, k=k, s=s, p=p: F.avg_pool2d(t, k, s, p), x))
    w = torch.randn(1, 4, 3, 3, dtype=x.dtype, generator=gen)
    out["conv2d"] = conv_gap
    out["pooling"] = pool_gap
    out["conv_transpose2d"] = _max_gap(
        lambda t, w_: CF.conv_transpose2d(t, w_, stride=2, padding=1, output_padding=1),
        lambda t, w_: F.conv_transpose2d(t, w_, stride=2, padding=1, output_padding=1), x, w)
    return out


def _size_grid() -> tuple[int, int]:
    checked = mismatches = 0
    for size, k, s, p, d in itertools.product((5, 8, 13, 28), (1, 2, 3, 5), (1, 2, 3),
                                              (0, 1, 2), (1, 2)):
        if size + 2 * p < d * (k - 1) + 1:
            continue
        torch_size = F.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s,
                              padding=p, dilation=d).shape[-1]
        mismatches += int(torch_size != output_size(size, k, s, p, d))
        checked += 1
    return checked, mismatches


def _figure(ctx, x, painted, ours) -> None:
    fig = Figure(figsize=(13, 3.2))
    axes = fig.subplots(1, 6)
    for i, ax in enumerate(axes[:4]):
        ax.imshow(painted[i].numpy(), cmap="viridis", vmin=0, vmax=9)
        ax.set_title(f"I[{i // 2},{i % 2}] * K at ({2 * (i // 2)},{2 * (i % 2)})")
    axes[4].imshow(ours.numpy(), cmap="viridis", vmin=0, vmax=9)
    axes[4].set_title("sum = CT(I, K)")
    for r, c in itertools.product(range(4), range(4)):
        axes[4].text(c, r, f"{ours[r, c].item():g}", ha="center", va="center", color="w")
    edge = torch.tensor([[[[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]]], dtype=x.dtype)
    axes[5].imshow(CF.conv2d(x[:1], edge, padding=1)[0, 0].numpy(), cmap="coolwarm")
    axes[5].set_title("own conv2d: Sobel-x")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    ctx.figure(fig, "transposed_convolution")


def run(cfg: Config, ctx) -> Result:

    images, _ = load_fashion_mnist("test", first=cfg.images)
    x = (images.double().div(255) - FASHION_MEAN).div(FASHION_STD).unsqueeze(1)
    gaps = _parity(x, ctx.rng("parity-probes"))
    checked, mismatches = _size_grid()
    fig_shapes = [tuple(t.shape[1:]) for t in _figure_4_1_shapes()]
    k = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = torch.tensor(NOTES_TRANSPOSED, dtype=torch.float32)
    torch_ct = F.conv_transpose2d(k.view(1, 1, 2, 2), k.view(1, 1, 2, 2), stride=2)[0, 0]
    ours_ct = CF.conv_transpose2d(k.view(1, 1, 2, 2), k.view(1, 1, 2, 2), stride=2)[0, 0]
    painted = torch.zeros(4, 4, 4)
    for i, j in itertools.product(range(2), range(2)):
        painted[2 * i + j, 2 * i:2 * i + 2, 2 * j:2 * j + 2] = k[i, j] * k
    transposed_error = max((torch_ct - expected).abs().max().item(),
                           (ours_ct - expected).abs().max().item(),
                           (painted.sum(0) - expected).abs().max().item())
    _figure(ctx, x, painted, ours_ct)
    worst = max(gaps.values())
    return Result(
        metrics={**{f"parity_{k_}": v for k_, v in gaps.items()},
                 "size_cases_checked": checked, "size_mismatches": mismatches,
                 "transposed_example_max_error": transposed_error,
                 "figure_4_1_ok": float(fig_shapes == [(6, 28, 28), (10, 24, 24)])},
        claims=[
            Claim("layer_parity", "Our conv2d, pooling and transposed convolution give torch's "
                  "values and gradients on Fashion-MNIST images (max abs difference, float64).",
                  worst, "<=", PARITY_TOLERANCE),
            Claim("output_size_formula", "The output-size formula matches torch on every case "
                  "of the grid (mismatches).", mismatches, "<=", 0),
            Claim("transposed_example", "The notes' 2x2 transposed-convolution example is "
                  "reproduced exactly (max abs error).", transposed_error, "<=", 0.0),
        ]
    )


@torch.no_grad()
def _figure_4_1_shapes() -> list[torch.Tensor]:
    """Notes Figure 4.1: 32x32x3 -> (5x5x3x6) -> 28x28x6 -> (5x5x6x10) -> 24x24x10."""
    h1 = layers.Conv2d(3, 6, 5)(torch.zeros(1, 3, 32, 32))
    h2 = layers.Conv2d(6, 10, 5)(torch.relu(h1))
    return [h1, h2]


EXPERIMENT = experiment(
    name="conv-arithmetic",
    sections=("4.2", "8.6"),
    claim="Convolution, pooling and transposed convolution written out equal torch's, with "
          "output size floor((w + 2p - d(k-1) - 1)/s) + 1; the notes' transposed-convolution "
          "example is exact.",
    presets={"smoke": Config(images=4, threads=1), "quick": Config(), "full": Config(images=512)},
    run=run,
    quick_seconds=5.0,
)

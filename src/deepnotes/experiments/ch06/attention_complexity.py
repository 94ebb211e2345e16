"""The complexity table of 6.3, measured: cost per layer, sequential operations and maximum
path length of self-attention, an RNN and a convolution (notes 6.3; Vaswani et al. 2017,
table 1).

Per-layer cost (:mod:`deepnotes.attention.complexity`): FLOPs of one forward pass counted by
``torch.utils.flop_counter`` and the numbers autograd stores for backward, over grids of the
sequence length n and the width d; the log-log slopes are fitted by least squares. These are
counts, not timings: they are the same on every machine (wall time is in
``benchmarks/bench_attention.py``). The counts are exactly 4 n^2 d (attention core: Q K^T and
the weighted sum of V), 8 n d^2 + 4 n^2 d (the layer with its four projections), 4 n d^2 (Elman
RNN, d -> d) and 2 k n d^2 (conv1d, d -> d channels, kernel k), so the slopes are:

* attention core: 2 in n, 1 in d (the notes' O(n^2 d));
* RNN: 1 in n, 2 in d (O(n d^2)); convolution: 1 in n, 2 in d, 1 in k (O(k n d^2));
* the full attention layer: about 1 in n while n << d (the projections dominate) and about 2
  when n >> d: the n^2 term dominates only when n > d (here beyond n = 2d; against the RNN
  the attention core costs the same FLOPs at n = d exactly, cheaper below, dearer above).

Stored for backward (project, the notes give no memory figures): the core keeps the n x n
softmax, slope 2 in n; the RNN keeps O(n d), slope 1.

Sequential operations and maximum path length come from each layer's dependency graph by
breadth-first search (:func:`~deepnotes.attention.complexity.max_path_length`), not from
formulas: attention 1 and 1, RNN n and n, convolution 1 and, in a stack, ceil((n-1)/(k-1))
layers with contiguous kernels (O(n/k)) but ceil(log_k n) with dilations k^l (O(log_k n)).
The notes' O(log_k n) holds for *dilated* convolutions only (the paper's table says so; a plain
stack needs O(n/k)): erratum.

Thresholds, fixed before the run: a slope within :data:`SLOPE_TOL` of its exponent; the
regime slopes below :data:`SHORT_SLOPE_MAX` (n <= d/8) and above :data:`LONG_SLOPE_MIN`
(n >= 16 d); graph quantities exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.figure import Figure

from deepnotes.attention.complexity import (
    layer_cost,
    loglog_slope,
    max_path_length,
    sequential_operations,
)
from deepnotes.experiments.base import Claim, Result, experiment

SLOPE_TOL = 0.05  # exact counts give exact slopes; 0.05 leaves room for lower-order terms
SHORT_SLOPE_MAX = 1.2  # the full layer while n <= d / 8: linear in n
LONG_SLOPE_MIN = 1.8  # the full layer once n >= 16 d: quadratic in n
CROSSOVER_RANGE = (0.5, 2.0)  # n / d where the attention core's FLOPs reach the RNN's


@dataclass(frozen=True)
class Config:
    n_grid: tuple[int, ...] = (64, 128, 256, 512, 1024)  # lengths at width d_small
    d_small: int = 16  # n >> d for the n-slopes
    d_grid: tuple[int, ...] = (16, 32, 64, 128)  # widths at length n_for_d
    n_for_d: int = 64
    d_large: int = 256  # width for the n << d regime (n in short_grid)
    short_grid: tuple[int, ...] = (8, 16, 32)
    kernel: int = 3
    kernel_grid: tuple[int, ...] = (3, 5, 7, 9)
    path_grid: tuple[int, ...] = (9, 16, 27, 50, 81, 128, 243)  # n for the dependency graphs


def _ceil_log(n: int, k: int) -> int:
    """Smallest L with k^L >= n (the notes' log_k n, rounded up), in integers."""
    layers, reach = 0, 1
    while reach < n:
        layers, reach = layers + 1, reach * k
    return layers


def measure(cfg: Config) -> tuple[dict[str, float], dict[str, list]]:
    m: dict[str, float] = {}
    series: dict[str, list] = {}
    for layer in ("attention-core", "attention-layer", "rnn", "conv"):
        key = layer.replace("-", "_")
        by_n = [layer_cost(layer, n, cfg.d_small, cfg.kernel) for n in cfg.n_grid]
        by_d = [layer_cost(layer, cfg.n_for_d, d, cfg.kernel) for d in cfg.d_grid]
        series[key] = [c["flops"] for c in by_n]
        m[f"{key}_flops_slope_n"] = loglog_slope(cfg.n_grid, series[key])
        m[f"{key}_flops_slope_d"] = loglog_slope(cfg.d_grid, [c["flops"] for c in by_d])
        saved = [c["saved"] for c in by_n]
        m[f"{key}_saved_slope_n"] = loglog_slope(cfg.n_grid, saved)
        m[f"{key}_saved_slope_n_long"] = loglog_slope(cfg.n_grid[-2:], saved[-2:])
    by_k = [layer_cost("conv", cfg.n_for_d, cfg.d_small, k)["flops"] for k in cfg.kernel_grid]
    m["conv_flops_slope_k"] = loglog_slope(cfg.kernel_grid, by_k)
    short = [layer_cost("attention-layer", n, cfg.d_large)["flops"] for n in cfg.short_grid]
    m["attention_layer_flops_slope_n_short"] = loglog_slope(cfg.short_grid, short)
    longest = cfg.n_grid[-2:]  # the two longest sequences at d_small
    m["attention_layer_flops_slope_n_long"] = loglog_slope(
        longest, series["attention_layer"][-2:])
    m["long_over_d"] = float(min(longest) / cfg.d_small)
    m["short_over_d"] = float(max(cfg.short_grid) / cfg.d_large)
    # where does the attention core catch up with the RNN, and with its own projections?
    d = cfg.n_for_d
    lengths = range(d // 8, 8 * d + 1, max(1, d // 8))
    m["core_reaches_rnn_at_n_over_d"] = next(
        n for n in lengths
        if layer_cost("attention-core", n, d)["flops"] >= layer_cost("rnn", n, d)["flops"]) / d
    m["core_reaches_projections_at_n_over_d"] = next(
        n for n in lengths
        if 2 * layer_cost("attention-core", n, d)["flops"]
        >= layer_cost("attention-layer", n, d)["flops"]) / d
    # dependency graphs
    k = cfg.kernel
    for graph in ("attention", "rnn", "conv", "dilated"):
        seq = [sequential_operations(graph, n, k) for n in cfg.path_grid]
        path = [max_path_length(graph, n, k) for n in cfg.path_grid]
        series[f"{graph}_path"] = path
        series[f"{graph}_seq"] = seq
        m[f"{graph}_seq_ops_max"] = float(max(seq))
        m[f"{graph}_path_max"] = float(max(path))
        m[f"{graph}_path_slope_n"] = loglog_slope(cfg.path_grid, path)
    n_max = max(cfg.path_grid)
    m["rnn_seq_ops_minus_n_max"] = float(max(abs(s - n) for s, n in zip(
        series["rnn_seq"], cfg.path_grid, strict=True)))
    m["rnn_path_minus_n_max"] = float(max(abs(p - n) for p, n in zip(
        series["rnn_path"], cfg.path_grid, strict=True)))
    m["dilated_path_minus_ceil_log_k_max"] = float(max(abs(p - _ceil_log(n, k)) for p, n in zip(
        series["dilated_path"], cfg.path_grid, strict=True)))
    m["conv_path_minus_n_over_k_max"] = float(max(
        abs(p - math.ceil((n - 1) / (k - 1)))
        for p, n in zip(series["conv_path"], cfg.path_grid, strict=True)))
    m[f"conv_path_at_n{n_max}"] = float(series["conv_path"][-1])
    m[f"dilated_path_at_n{n_max}"] = float(series["dilated_path"][-1])
    return m, series


def plot_flops(series: dict[str, list], cfg: Config) -> Figure:
    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.subplots()
    labels = {"attention_core": "attention core (4 n² d)",
              "attention_layer": "attention layer (+ projections)",
              "rnn": "Elman RNN (4 n d²)", "conv": f"conv1d k={cfg.kernel} (2 k n d²)"}
    for (key, label), marker in zip(labels.items(), "osd^", strict=True):
        ax.plot(cfg.n_grid, series[key], marker=marker, label=label)
    ax.set(xscale="log", yscale="log", xlabel=f"sequence length n (d = {cfg.d_small})",
           ylabel="FLOPs (flop_counter, forward)", title="cost per layer")
    ax.legend(fontsize=7)
    return fig


def plot_paths(series: dict[str, list], cfg: Config) -> Figure:
    fig = Figure(figsize=(5.2, 3.6))
    ax = fig.subplots()
    labels = {"attention": "self-attention", "rnn": "RNN",
              "conv": f"conv stack, k={cfg.kernel}", "dilated": f"dilated conv, k={cfg.kernel}"}
    for (key, label), marker in zip(labels.items(), "osd^", strict=True):
        ax.plot(cfg.path_grid, series[f"{key}_path"], marker=marker, label=label)
    ax.set(xscale="log", yscale="log", xlabel="sequence length n",
           ylabel="max path length (BFS, edges)",
           title="first position to last (dependency graph)")
    ax.legend(fontsize=7)
    return fig


def _slope(name: str, statement: str, value: float, exponent: float,
           source: str = "notes") -> Claim:
    return Claim(name, f"{statement} (fitted log-log slope {exponent:g} within {SLOPE_TOL}).",
                 abs(value - exponent), "<=", SLOPE_TOL, source=source)


def claims(m: dict[str, float]) -> list[Claim]:
    return [
        _slope("attention_core_flops_quadratic_in_n", "Self-attention FLOPs grow as n^2 "
               "(n >> d)", m["attention_core_flops_slope_n"], 2.0),
        _slope("attention_core_flops_linear_in_d", "Self-attention FLOPs grow as d",
               m["attention_core_flops_slope_d"], 1.0),
        _slope("rnn_flops_linear_in_n", "RNN FLOPs grow as n", m["rnn_flops_slope_n"], 1.0),
        _slope("rnn_flops_quadratic_in_d", "RNN FLOPs grow as d^2", m["rnn_flops_slope_d"], 2.0),
        _slope("conv_flops_linear_in_n", "Convolution FLOPs grow as n",
               m["conv_flops_slope_n"], 1.0),
        _slope("conv_flops_quadratic_in_d", "Convolution FLOPs grow as d^2",
               m["conv_flops_slope_d"], 2.0),
        _slope("conv_flops_linear_in_k", "Convolution FLOPs grow as k",
               m["conv_flops_slope_k"], 1.0),
        Claim("attention_layer_linear_in_n_when_n_below_d",
              "With its projections, the attention layer's FLOPs grow about linearly in n "
              "while n <= d/8 (fitted slope).",
              m["attention_layer_flops_slope_n_short"], "<", SHORT_SLOPE_MAX, source="project"),
        Claim("attention_layer_quadratic_in_n_when_n_above_d",
              "The n^2 term dominates once n >= 16 d (fitted slope of the full layer).",
              m["attention_layer_flops_slope_n_long"], ">", LONG_SLOPE_MIN, source="project"),
        Claim("attention_core_reaches_rnn_flops_near_n_equals_d",
              f"The attention core's FLOPs reach the RNN's at n/d in {CROSSOVER_RANGE}: "
              "attention is the cheaper layer when n < d.",
              m["core_reaches_rnn_at_n_over_d"], "<=", CROSSOVER_RANGE[1], source="project"),
        Claim("attention_core_below_rnn_flops_when_n_below_d",
              f"... and not before n/d = {CROSSOVER_RANGE[0]} (lower end).",
              m["core_reaches_rnn_at_n_over_d"], ">=", CROSSOVER_RANGE[0], source="project"),
        Claim("attention_core_stores_n_squared",
              "For backward the attention core stores the n x n weights besides Q, K, V: "
              "stored numbers grow as n^2 once n >= 16 d (slope over the two longest n).",
              m["attention_core_saved_slope_n_long"], ">", LONG_SLOPE_MIN, source="project"),
        Claim("rnn_stores_linear_in_n",
              f"The RNN stores O(n d) for backward (slope 1 in n within {SLOPE_TOL}).",
              abs(m["rnn_saved_slope_n"] - 1.0), "<=", SLOPE_TOL, source="project"),
        Claim("attention_one_sequential_operation",
              "Self-attention: one sequential operation at every n (dependency graph).",
              m["attention_seq_ops_max"], "<=", 1.0),
        Claim("conv_one_sequential_operation",
              "Convolution: one sequential operation at every n (dependency graph).",
              m["conv_seq_ops_max"], "<=", 1.0),
        Claim("rnn_n_sequential_operations",
              "RNN: n sequential operations (max |longest chain - n| over the grid).",
              m["rnn_seq_ops_minus_n_max"], "<=", 0.0),
        Claim("attention_path_length_one",
              "Self-attention: maximum path length 1 at every n (BFS).",
              m["attention_path_max"], "<=", 1.0),
        Claim("rnn_path_length_n",
              "RNN: maximum path length n (max |BFS path - n| over the grid).",
              m["rnn_path_minus_n_max"], "<=", 0.0),
        Claim("dilated_conv_path_length_log_k_n",
              "A stack of dilated convolutions (dilation k^l) connects the first and last "
              "positions in ceil(log_k n) layers (max |BFS path - ceil(log_k n)|): the notes' "
              "O(log_k n), which holds for dilated convolutions.",
              m["dilated_path_minus_ceil_log_k_max"], "<=", 0.0),
        Claim("plain_conv_path_length_n_over_k",
              "A plain stack of kernel-k convolutions needs ceil((n-1)/(k-1)) layers, O(n/k), "
              "not O(log_k n) (max |BFS path - ceil((n-1)/(k-1))|).",
              m["conv_path_minus_n_over_k_max"], "<=", 0.0, source="project"),
        _slope("plain_conv_path_linear_in_n", "The plain stack's path length grows as n",
               m["conv_path_slope_n"], 1.0, source="project"),
    ]


def run(cfg: Config, ctx) -> Result:
    if cfg.kernel < 2 or min(cfg.path_grid) < 2 or len(cfg.n_grid) < 2:
        raise ValueError("kernel >= 2, path lengths >= 2, at least two lengths in n_grid")
    metrics, series = measure(cfg)
    ctx.figure(plot_flops(series, cfg), "flops_against_n")
    ctx.figure(plot_paths(series, cfg), "path_length_against_n")
    return Result(metrics=metrics, claims=claims(metrics))


EXPERIMENT = experiment(
    name="attention-complexity",
    sections=("6.3",),
    claim="Counted FLOPs give self-attention n^2 d against the RNN's n d^2 and the "
          "convolution's k n d^2 (fitted slopes), attention's n^2 term dominating only when "
          "n > d; dependency graphs give 1 / n / 1 sequential operations and path lengths "
          "1 / n / log_k n, the last for dilated convolutions only (a plain stack needs n/k).",
    presets={
        "smoke": Config(n_grid=(64, 128, 256, 512), d_grid=(16, 32, 64),
                        path_grid=(9, 16, 27, 50, 81)),
        "quick": Config(),
        "full": Config(n_grid=(64, 128, 256, 512, 1024, 2048), d_grid=(16, 32, 64, 128, 256),
                       path_grid=(9, 16, 27, 50, 81, 128, 243, 500, 729)),
    },
    run=run,
    quick_seconds=2.0,
    max_threads=1,
)

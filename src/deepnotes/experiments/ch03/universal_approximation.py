"""Universal approximation: one hidden sigmoid layer fits continuous functions on [0, 1].

Notes sec. 3.1 (Cybenko 1989; Hornik 1991). Two parts:

1. Sigmoid nets ``f(x) = sum_i alpha_i sigma(w_i x + b_i) + c`` of growing width fitted to
   three continuous targets: ``sin(2 pi x)`` (smooth), ``|x - 1/2|`` (a kink) and ``sqrt(x)``
   (continuous, not Lipschitz at 0). Fitting method: the hidden layer is random and fixed
   (switch points uniform on [0, 1], slopes log-uniform in [1, 300], random sign) and the
   output layer is the exact least-squares fit on a grid; a width uses the first ``width``
   units of one draw, so the models are nested. Reported: the sup error on a 10x finer grid,
   median over ``draws`` independent draws.
2. The constructive proof with the notes' relu difference ``relu(Wx + b_1) - relu(Wx + b_2)``:
   with ``W > 0`` and ``b_1 - b_2 = 1`` it is a ramp from 0 to 1 (bounded, sigmoidal); a sum
   of N - 1 ramps is a staircase whose sup error for an L-Lipschitz target is at most
   ``L / N`` (see :func:`deepnotes.theory.staircase_net`). Checked on ``sin(2 pi x)``
   (``L = 2 pi``) and ``|x - 1/2|`` (``L = 1``).

Claims (thresholds fixed before running): the sup error at the largest width is at most a
tenth of that at the smallest for every target; the error falls with width (Spearman
correlation <= -0.8 for every target); the staircase never exceeds ``L/N``; the relu
difference is sigmoidal.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from fractions import Fraction

import torch
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.theory import (
    fit_sigmoid_readout,
    random_sigmoid_layer,
    relu_network_function,
    relu_ramp,
    sigmoid_net,
    staircase_net,
    sup_error,
)

RATIO_MAX = 0.1  # sup error(largest width) / sup error(smallest width)
SPEARMAN_MAX = -0.8  # rank correlation of width and sup error
STAIRCASE_BOUND = 1.0  # sup error * N / L: the theorem's bound itself

TARGETS = {
    "sine": (lambda x: torch.sin(2 * math.pi * x), 2 * math.pi),
    "kink": (lambda x: (x - 0.5).abs(), 1.0),
    "sqrt": (lambda x: x.clamp(min=0).sqrt(), math.inf),  # not Lipschitz
}


@dataclass(frozen=True)
class Config:
    targets: tuple[str, ...] = ("sine", "kink", "sqrt")
    widths: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 256)
    draws: int = 3
    train_points: int = 1024
    eval_points: int = 10001
    slope_min: float = 1.0
    slope_max: float = 300.0
    cells: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)


def _ramp_violations() -> int:
    """Check, exactly, that ``relu(Wx + b_1) - relu(Wx + b_2)`` with ``W > 0``,
    ``b_1 - b_2 = 1`` is a bounded sigmoidal: flat tails at 0 (left) and 1 (right), never
    decreasing, values in [0, 1]. The function is built as a relu net and analysed in rational
    arithmetic, so float rounding cannot blur the answer. Returns the number of violations."""
    W, b2 = Fraction(5), Fraction(-3, 2)  # centre 0.4, ramp width 1/5
    ramp = relu_network_function([[[W], [W]], [[1, -1]]], [[b2 + 1, b2], [0]])
    checks = [
        ramp.slope_left == 0 and ramp(-10**9) == 0,  # sigma(-inf) = 0
        ramp.slope_right == 0 and ramp(10**9) == 1,  # sigma(+inf) = 1
        all(s >= 0 for s in ramp.slopes()),  # monotone
        all(0 <= v <= 1 for v in ramp.values),  # bounded (extremes sit at knots or tails)
    ]
    return sum(not ok for ok in checks)


def run(cfg: Config, ctx) -> Result:
    unknown = [t for t in cfg.targets if t not in TARGETS]
    if unknown or not cfg.targets:
        raise ValueError(f"targets must be among {list(TARGETS)}, got {cfg.targets}")
    if len(cfg.widths) < 2:
        raise ValueError(f"need at least two widths, got {cfg.widths}")
    widths = sorted(cfg.widths)
    x_train = torch.linspace(0, 1, cfg.train_points, dtype=torch.float64)
    x_eval = torch.linspace(0, 1, cfg.eval_points, dtype=torch.float64)

    errors: dict[str, list[list[float]]] = {}  # target -> per width, per draw
    fits: dict[str, dict[int, torch.Tensor]] = {}
    for name in cfg.targets:
        g, _ = TARGETS[name]
        errors[name] = [[] for _ in widths]
        for draw in range(cfg.draws):
            # The same draws for every target; nested widths within a draw.
            w_all, b_all = random_sigmoid_layer(widths[-1], ctx.rng("hidden-layer", draw),
                                                (cfg.slope_min, cfg.slope_max))
            for i, width in enumerate(widths):
                w, b = w_all[:width], b_all[:width]
                alpha, c = fit_sigmoid_readout(x_train, g(x_train), w, b)
                f = sigmoid_net(x_eval, w, b, alpha, c)
                errors[name][i].append(sup_error(f, g(x_eval)))
                if draw == 0:
                    fits.setdefault(name, {})[width] = f
        for i, width in enumerate(widths):
            ctx.log(width, phase=name, sup_error=statistics.median(errors[name][i]))

    median = {n: [statistics.median(e) for e in errors[n]] for n in cfg.targets}
    ratios = {n: median[n][-1] / median[n][0] for n in cfg.targets}
    spearman = {n: float(spearmanr(widths, median[n]).statistic) for n in cfg.targets}

    stair_rows = []
    lipschitz = [n for n in cfg.targets if math.isfinite(TARGETS[n][1])]
    for name in lipschitz:
        g, L = TARGETS[name]
        g_eval = g(x_eval)
        for N in cfg.cells:
            net = staircase_net(lambda v, g=g: g(torch.tensor(v, dtype=torch.float64)).item(), N)
            with torch.no_grad():
                err = sup_error(net(x_eval), g_eval)
            stair_rows.append({"target": name, "N": N, "err": err, "ratio": err * N / L,
                               "units": net.hidden_units})
            ctx.log(N, phase=f"staircase_{name}", sup_error=err, bound=L / N)
    worst_stair = max((r["ratio"] for r in stair_rows), default=0.0)
    ramp_bad = _ramp_violations()

    fig = Figure(figsize=(11, 8))
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    show = [w for w in (widths[0], 8, widths[-1]) if w in widths]
    for k, name in enumerate(cfg.targets):
        g, _ = TARGETS[name]
        ax.plot(x_eval, g(x_eval) + 2.2 * k, "k-", lw=2.5, alpha=0.3)
        for i, w in enumerate(show):
            ax.plot(x_eval, fits[name][w] + 2.2 * k, lw=1, color=f"C{i}",
                    label=f"width {w}" if k == 0 else None)
    ax.set(title="sigmoid nets (least-squares output layer); targets in grey", xlabel="x")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    for name in cfg.targets:
        lo = [min(e) for e in errors[name]]
        hi = [max(e) for e in errors[name]]
        ax.loglog(widths, median[name], "o-", ms=3,
                  label=f"{name} (Spearman {spearman[name]:.2f})")
        ax.fill_between(widths, lo, hi, alpha=0.2)
    ax.set(title=f"sup error vs width (median, band over {cfg.draws} draws)",
           xlabel="hidden units", ylabel="sup error on [0, 1]")
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    xr = torch.linspace(-0.2, 1.2, 1401, dtype=torch.float64)
    ax.plot(xr, relu_ramp(xr, 0.5, 0.4), label="relu((x-c)/d+1/2) - relu((x-c)/d-1/2)")
    ax.plot(xr, torch.sigmoid(10 * (xr - 0.5)), "--", label="sigmoid(10(x - 1/2))")
    if "sine" in lipschitz:
        net = staircase_net(lambda v: math.sin(2 * math.pi * v), 8)
        with torch.no_grad():
            ax.plot(xr, net(xr), lw=1, label="staircase of 7 ramps (N = 8) for sin")
        ax.plot(xr, torch.sin(2 * math.pi * xr), "k:", lw=1)
    ax.set(title="the relu-difference ramp and a staircase", xlabel="x")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    for name in lipschitz:
        rows = [r for r in stair_rows if r["target"] == name]
        (line,) = ax.loglog([r["N"] for r in rows], [r["err"] for r in rows], "o-", ms=3,
                            label=f"{name}: measured")
        ax.loglog([r["N"] for r in rows], [TARGETS[name][1] / r["N"] for r in rows], ":",
                  color=line.get_color(), label=f"{name}: bound L/N")
    ax.set(title="staircase sup error vs cells N", xlabel="N", ylabel="sup error")
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.figure(fig, "universal_approximation")

    metrics = {"worst_ratio": max(ratios.values()), "worst_spearman": max(spearman.values()),
               "staircase_worst_error_times_N_over_L": worst_stair,
               "ramp_violations": float(ramp_bad)}
    for name in cfg.targets:
        metrics[f"{name}_sup_error_w{widths[0]}"] = median[name][0]
        metrics[f"{name}_sup_error_w{widths[-1]}"] = median[name][-1]
        metrics[f"{name}_spearman"] = spearman[name]
    return Result(
        metrics=metrics,
        claims=[
            Claim("sup_error_ratio", f"For every target the sup error at width {widths[-1]} "
                  f"is at most {RATIO_MAX} of that at width {widths[0]} (worst ratio).",
                  max(ratios.values()), "<=", RATIO_MAX),
            Claim("sup_error_falls_with_width", "The sup error falls with width: Spearman "
                  "correlation of width and error (worst target).", max(spearman.values()),
                  "<=", SPEARMAN_MAX),
            Claim("staircase_within_L_over_N", "The relu-ramp staircase with N cells stays "
                  "within L/N of an L-Lipschitz target (worst sup error * N / L).",
                  worst_stair, "<=", STAIRCASE_BOUND, source="project"),
            Claim("relu_difference_sigmoidal", "relu(Wx + b1) - relu(Wx + b2) with W > 0, "
                  "b1 - b2 = 1 is monotone, bounded in [0, 1], 0 at -inf and 1 at +inf "
                  "(violations).", ramp_bad, "<=", 0),
        ],
    )


EXPERIMENT = experiment(
    name="universal-approximation",
    sections=("3.1",),
    claim="One hidden sigmoid layer approximates continuous functions on [0, 1] with sup "
          "error falling as the width grows; relu differences build a staircase within L/N.",
    presets={"smoke": Config(widths=(2, 8, 32), draws=1, train_points=256, eval_points=2001,
                             cells=(1, 4, 16)),
             "quick": Config(),
             "full": Config(widths=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), draws=10,
                            train_points=4096, eval_points=100001,
                            cells=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))},
    run=run,
    quick_seconds=2.0,
    max_threads=1,
)

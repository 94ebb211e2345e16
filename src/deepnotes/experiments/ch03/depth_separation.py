"""Depth separation: shallow relu nets need exponentially many units to fit ``hat^T``.

Notes sec. 3.2 (Example 3.1; Telgarsky, "Benefits of depth in neural networks", COLT 2016).
Targets: ``hat^T`` on [0, 1] for each T (``2^T`` linear pieces). For every T and width w,
``restarts`` one-hidden-layer relu nets are trained (all at once, see
:class:`deepnotes.theory.ShallowReluBank`): breakpoints drawn uniformly on [0, 1], the output
layer set by least squares, then Adam on the mean squared error over a uniform grid with a
cosine learning-rate decay. The measure is the best sup error over the restarts on a fine
dyadic grid (float64), the norm of the notes' section 3.1.

"Width needed" for T is the smallest width on the grid whose best sup error is below
``EPS = 1/4``; when no width reaches it, the largest width is used (the true value is larger,
so the fitted growth is underestimated, never inflated). Claims:

* ``log2(width needed)`` grows with slope >= 0.8 per unit of T (exponential growth; the
  theory says 1: no net with fewer than ``2^(T-1)`` units gets below 1/2);
* that lower bound is respected by every trained net (a counting theorem, so this checks the
  measurement);
* with the deep net's budget (``3T`` units) the best shallow net stays above ``EPS`` at the
  largest T, while the deep net with T layers of 3 units is exact (error 0).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.theory import (
    ShallowReluBank,
    deep_hat_net,
    hat,
    iterate,
    sawtooth_lower_bound_width,
)

EPS = 0.25  # sup-error target; half the 1/2 barrier of the lower bound
SLOPE_MIN = 0.8  # log2(width needed) per unit of T; theory: 1
LOWER_BOUND_ERROR = 0.5 - 1e-9  # nets below 2^(T-1) units cannot beat 1/2 (float64 slack)


@dataclass(frozen=True)
class Config:
    compositions: tuple[int, ...] = (1, 2, 3, 4)
    widths: tuple[int, ...] = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
    restarts: int = 3
    steps: int = 1500
    lr: float = 0.01
    train_points: int = 129  # uniform grid on [0, 1]; (points - 1) must be a multiple of 2^T
    eval_bits: int = 12  # sup error on k / 2^eval_bits


def _width_needed(best: dict[tuple[int, int], float], T: int, widths) -> tuple[int, bool]:
    for w in sorted(widths):
        if best[T, w] < EPS:
            return w, True
    return max(widths), False


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys on xs."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def run(cfg: Config, ctx) -> Result:
    Ts = sorted(cfg.compositions)
    if len(Ts) < 2 or Ts[0] < 1:
        raise ValueError(f"need at least two compositions T >= 1, got {cfg.compositions}")
    if (cfg.train_points - 1) % 2 ** Ts[-1] or cfg.eval_bits < Ts[-1]:
        raise ValueError(f"train_points - 1 must be a multiple of 2^{Ts[-1]} and eval_bits >= "
                         f"{Ts[-1]} so the peaks of hat^T lie on both grids")
    combos = [(T, w, r) for T in Ts for w in cfg.widths for r in range(cfg.restarts)]
    bank = ShallowReluBank([w for _, w, _ in combos], ctx.rng("breakpoints"))
    x = torch.linspace(0, 1, cfg.train_points)  # (N,)
    targets = torch.stack([iterate(hat, x, T) for T, _, _ in combos])  # (M, N)
    bank.fit_readout(x, targets)
    opt = torch.optim.Adam(bank.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.steps)
    for step in ctx.steps(cfg.steps, track={"model": bank, "optimizer": opt,
                                            "scheduler": sched}, log_every=25):
        # Sum over models of each model's mean squared error: the models do not interact.
        loss = ((bank(x) - targets) ** 2).mean(dim=1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        ctx.log(step, loss=loss.item() / bank.models)

    x_eval = torch.arange(2 ** cfg.eval_bits + 1, dtype=torch.float64) / 2 ** cfg.eval_bits
    bank64 = copy.deepcopy(bank).double()
    with torch.no_grad():
        out = bank64(x_eval)  # (M, G)
        truth = {T: iterate(hat, x_eval, T) for T in Ts}
        sup = [(out[j] - truth[T]).abs().max().item() for j, (T, _, _) in enumerate(combos)]
        rms = [(out[j] - truth[T]).pow(2).mean().sqrt().item()
               for j, (T, _, _) in enumerate(combos)]
        deep_err = {T: (deep_hat_net(T)(x_eval) - truth[T]).abs().max().item() for T in Ts}
    best, best_rms, best_idx = {}, {}, {}
    for j, (T, w, _) in enumerate(combos):
        if sup[j] < best.get((T, w), math.inf):
            best[T, w], best_rms[T, w], best_idx[T, w] = sup[j], rms[j], j

    needed = {T: _width_needed(best, T, cfg.widths) for T in Ts}
    slope = _slope([float(T) for T in Ts], [math.log2(needed[T][0]) for T in Ts])
    below = [best[T, w] for T in Ts for w in cfg.widths if w < sawtooth_lower_bound_width(T)]
    min_below = min(below) if below else 1.0
    T_max = Ts[-1]
    budget = 3 * T_max
    at_budget = [best[T_max, w] for w in cfg.widths if w <= budget]
    shallow_at_budget = min(at_budget) if at_budget else math.nan

    fig = Figure(figsize=(15, 4))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.plot(x_eval, truth[T_max], "k-", lw=2.5, alpha=0.35, label=f"$\\hat h^{T_max}$")
    with torch.no_grad():
        ax1.plot(x_eval, deep_hat_net(T_max)(x_eval), "k:", lw=1,
                 label=f"deep: {T_max} layers x 3 units")
    for w in (budget, needed[T_max][0]):
        w = max((v for v in cfg.widths if v <= w), default=cfg.widths[0])
        ax1.plot(x_eval, out[best_idx[T_max, w]], lw=1,
                 label=f"shallow, {w} units (sup err {best[T_max, w]:.2f})")
    ax1.set(title=f"fitting $\\hat h^{T_max}$ on [0, 1]", xlabel="x")
    ax1.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    for T in Ts:
        ax2.semilogx(cfg.widths, [best[T, w] for w in cfg.widths], "o-", ms=3, label=f"T={T}")
    ax2.axhline(EPS, c="gray", ls="--", lw=0.8, label=f"target {EPS}")
    ax2.axhline(0.5, c="gray", ls=":", lw=0.8, label="lower-bound barrier 1/2")
    ax2.set(title=f"best sup error of trained shallow nets ({cfg.restarts} restarts)",
            xlabel="hidden units", ylabel="sup error on [0, 1]")
    ax2.legend(fontsize=7)
    ax3.semilogy(Ts, [needed[T][0] for T in Ts], "o-",
                 label=f"trained: width for sup err < {EPS}")
    ax3.semilogy(Ts, [sawtooth_lower_bound_width(T) for T in Ts], "v--",
                 label="lower bound $2^{T-1}$ (for < 1/2)")
    ax3.semilogy(Ts, [2 ** T + 1 for T in Ts], "^--", label="exact shallow $2^T + 1$ (on R)")
    ax3.semilogy(Ts, [3 * T for T in Ts], "s-", label="exact deep $3T$")
    for T in Ts:
        if not needed[T][1]:
            ax3.annotate("not reached", (T, needed[T][0]), fontsize=7)
    ax3.set(title=f"units needed (fitted log2 slope {slope:.2f})", xlabel="T",
            ylabel="hidden units", yscale="log", xticks=Ts)
    ax3.legend(fontsize=7)
    ctx.figure(fig, "depth_separation")

    steps_logged, losses = ctx.series("loss")
    fig = Figure(figsize=(5, 3.5))
    ax = fig.subplots()
    ax.semilogy(steps_logged, losses)
    ax.set(title="mean training MSE over all shallow nets", xlabel="step", ylabel="MSE")
    ctx.figure(fig, "training_loss")

    metrics = {"width_growth_slope": slope, "min_sup_error_below_lower_bound": min_below,
               "shallow_sup_error_at_deep_budget": shallow_at_budget,
               "deep_sup_error_max": max(deep_err.values()),
               "censored_compositions": float(sum(not ok for _, ok in needed.values())),
               "models_trained": float(len(combos))}
    for T in Ts:
        metrics[f"width_needed_T{T}"] = float(needed[T][0])
        metrics[f"best_sup_error_T{T}_w{cfg.widths[-1]}"] = best[T, cfg.widths[-1]]
        metrics[f"best_rms_error_T{T}_w{cfg.widths[-1]}"] = best_rms[T, cfg.widths[-1]]
    return Result(
        metrics=metrics,
        claims=[
            Claim("width_growth_slope", f"The width a trained shallow net needs to fit hat^T "
                  f"to sup error < {EPS} grows exponentially: fitted log2(width) rises by at "
                  f"least {SLOPE_MIN} per unit of T.", slope, ">=", SLOPE_MIN),
            Claim("lower_bound_respected", "No shallow net with fewer than 2^(T-1) units gets "
                  "below sup error 1/2 (smallest such error; a counting theorem).",
                  min_below, ">=", LOWER_BOUND_ERROR, source="project"),
            Claim("shallow_error_at_deep_budget", f"With the deep net's budget of 3T = "
                  f"{budget} units, the best shallow net stays at sup error >= {EPS} on "
                  f"hat^{T_max}, while T layers of 3 units are exact.", shallow_at_budget, ">=",
                  EPS),
            Claim("deep_net_exact", "The deep net with T layers of 3 relus equals hat^T on "
                  "the dyadic grid (max abs error over T).", max(deep_err.values()), "<=", 0.0),
        ],
    )


EXPERIMENT = experiment(
    name="depth-separation",
    sections=("3.2",),
    claim="A one-hidden-layer relu net needs a number of units exponential in T to fit the "
          "T-fold composed hat, which T layers of 3 relus compute exactly.",
    presets={"smoke": Config(compositions=(1, 2, 3), widths=(1, 2, 4, 8, 16), restarts=1,
                             steps=100, train_points=65, eval_bits=9),
             "quick": Config(),
             "full": Config(compositions=(1, 2, 3, 4, 5, 6),
                            widths=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256,
                                    384, 512),
                            restarts=4, steps=8000, lr=0.005, train_points=513,
                            eval_bits=14)},
    run=run,
    quick_seconds=6.0,
    max_threads=1,
)

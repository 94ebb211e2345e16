"""The 3-neuron training problem: an exact decision procedure and its exponential work.

Notes sec. 3.3 (Blum & Rivest 1992). The exact procedure of
:func:`deepnotes.theory.three_neuron.decide` (every split of the negatives between the two
hidden units, one LP per side) is

1. checked for correctness: against an independent brute force (every pair of halfspace
   labellings x every threshold output function) on random tiny instances, and on instances
   whose answer is known (XOR: yes; 3-bit parity: no; alternating points on a line: no;
   planted AND-of-halfspaces labels: yes; the hard family below: no);
2. run on a family of unsolvable instances in {0, 1}^n with ``2n + 2`` points (O(n)
   samples, as in the theorem), where it must try all ``2^n`` splits per orientation. The
   claim is on the number of LPs it solves, which does not depend on the machine; the wall
   seconds are reported as metrics only (no claim is made about time).

This *illustrates*, and does not prove, NP-hardness: one exponential algorithm says nothing
about all algorithms, and NP-hardness is a statement about worst cases under P != NP.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from deepnotes.engine.streams import stream_seed
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.theory.three_neuron import (
    decide,
    decide_brute_force,
    hard_instance,
    parity_instance,
    planted_instance,
    separate,
)

NOT_A_PROOF = ("illustrates, does not prove, NP-hardness: an exact exponential-time procedure "
               "on tiny instances; Blum & Rivest (1992) prove NP-completeness by reduction")
SLOPE_MIN = 0.5  # log2(LPs solved) per added dimension (the split count doubles: slope 1)


@dataclass(frozen=True)
class Config:
    dims: tuple[int, ...] = (3, 4, 5, 6, 7, 8)
    instances_per_dim: int = 2
    random_checks: int = 20  # tiny random instances checked against brute force
    max_check_points: int = 6


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return (sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
            / sum((x - mx) ** 2 for x in xs))


def _random_tiny_instance(kind: int, max_points: int, rng: np.random.Generator):
    """Random labels on distinct points: on a line (kind 0), on the parabola ``(t, t^2)``
    (kind 1, convex position) or on a 4x4 grid (kind 2). Random labels on a line are
    unsolvable when they change sign three or more times (probability 1/2 for 6 points), so
    both answers occur; lines are drawn twice as often for that reason."""
    m = int(rng.integers(min(5, max_points), max_points + 1))
    t = np.sort(rng.choice(10, size=m, replace=False)).astype(np.float64)
    if kind == 0:
        x = t[:, None]
    elif kind == 1:
        x = np.stack([t, t ** 2], axis=1)
    else:
        cells = rng.choice(16, size=m, replace=False)
        x = np.stack([cells // 4, cells % 4], axis=1).astype(np.float64)
    return x, rng.choice([-1, 1], m)


def _known_instances(rng: np.random.Generator):
    """(name, points, labels, expected answer)."""
    line = np.arange(5.0)[:, None]
    cases = [
        ("xor", *parity_instance(2), True),
        ("parity3", *parity_instance(3), False),
        ("line +-+-+", line, np.array([1, -1, 1, -1, 1]), False),
        ("line +-+-", line[:4], np.array([1, -1, 1, -1]), False),
        ("line +-+", line[:3], np.array([1, -1, 1]), True),
    ]
    for k in range(3):
        x, y, _ = planted_instance(5, 12, rng)
        cases.append((f"planted {k}", x, y, True))
    for n in (3, 4):
        cases.append((f"hard n={n}", *hard_instance(n, rng), False))
    return cases


def _numpy_rng(ctx, name: str) -> np.random.Generator:
    """A numpy generator on the run's named random stream ``name``."""
    return np.random.default_rng(stream_seed(ctx.seed, name))


def run(cfg: Config, ctx) -> Result:
    if len(cfg.dims) < 2 or min(cfg.dims) < 3:
        raise ValueError(f"need at least two dims, each >= 3, got {cfg.dims}")
    separate(np.zeros((1, 1)), np.ones((1, 1)))  # warm up scipy before timing anything

    known = _known_instances(_numpy_rng(ctx, "known-instances"))
    wrong_names = []
    for k, (name, x, y, expected) in enumerate(known):
        correct = decide(x, y).solvable == expected
        if not correct:
            wrong_names.append(name)
        ctx.log(k, phase="known", correct=float(correct))
    known_wrong = len(wrong_names)

    disagreements, solvable_count = 0, 0
    rng = _numpy_rng(ctx, "random-checks")
    for k in range(cfg.random_checks):
        x, y = _random_tiny_instance((0, 0, 1, 2)[k % 4], cfg.max_check_points, rng)
        exact = decide(x, y).solvable
        agree = exact == decide_brute_force(x, y)
        solvable_count += int(exact)
        disagreements += int(not agree)
        ctx.log(k, phase="brute_force", agree=float(agree))

    rows = []
    rng = _numpy_rng(ctx, "hard-instances")
    for n in cfg.dims:
        for i in range(cfg.instances_per_dim):
            x, y = hard_instance(n, rng)
            t0 = time.perf_counter()  # a reported metric of this one machine, not a claim
            d = decide(x, y)
            seconds = time.perf_counter() - t0
            rows.append({"n": n, "points": len(x), "negatives": int((y == -1).sum()),
                         "seconds": seconds, "lp_calls": d.lp_calls, "splits": d.splits,
                         "solvable": d.solvable})
            ctx.log(n * 100 + i, phase="runtime", seconds=seconds, lp_calls=d.lp_calls)
    dims = sorted(set(cfg.dims))
    med_time = [statistics.median(r["seconds"] for r in rows if r["n"] == n) for n in dims]
    med_lps = [statistics.median(r["lp_calls"] for r in rows if r["n"] == n) for n in dims]
    time_slope = _slope([float(n) for n in dims], [math.log2(t) for t in med_time])
    lp_slope = _slope([float(n) for n in dims], [math.log2(c) for c in med_lps])
    hard_solved = sum(r["solvable"] for r in rows)

    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy([r["n"] for r in rows], [r["seconds"] for r in rows], "o", alpha=0.5,
                 label="instances")
    ax1.semilogy(dims, med_time, "-", label=f"median (log2 slope {time_slope:.2f} per n)")
    ax1.set(xlabel="dimension n (2n + 2 points in {0,1}^n)", ylabel="seconds (log scale)",
            title="exact 3-neuron decision: runtime (this machine; no claim)")
    ax1.legend(fontsize=8)
    ax2.semilogy(dims, med_lps, "s-", label=f"LPs solved (log2 slope {lp_slope:.2f})")
    ax2.semilogy(dims, [2 ** (n + 1) for n in dims], "k:", label="splits tried: $2 \\cdot 2^n$")
    ax2.set(xlabel="dimension n", ylabel="count (log scale)",
            title="work (machine-independent; the claim)")
    ax2.legend(fontsize=8)
    fig.suptitle("Exponential work of one exact procedure: this illustrates, does not "
                 "prove, NP-hardness\n(Blum & Rivest 1992 prove NP-completeness by reduction)",
                 fontsize=10)
    fig.tight_layout()
    ctx.figure(fig, "three_neuron_runtime")

    metrics = {"runtime_log2_slope": time_slope, "lp_calls_log2_slope": lp_slope,
               "known_answers_wrong": float(known_wrong),
               "brute_force_disagreements": float(disagreements),
               "random_checks_solvable": float(solvable_count),
               "hard_instances_reported_solvable": float(hard_solved),
               "known_instances": float(len(known))}
    for n, t, c in zip(dims, med_time, med_lps, strict=True):
        metrics[f"median_seconds_n{n}"] = t
        metrics[f"median_lp_calls_n{n}"] = float(c)
    return Result(
        metrics=metrics,
        claims=[
            Claim("known_answers_wrong", f"The exact procedure answers all {len(known)} "
                  f"instances with known answers correctly (number wrong"
                  f"{': ' + ', '.join(wrong_names) if wrong_names else ''}).", known_wrong,
                  "<=", 0, source="project"),
            Claim("brute_force_disagreements", f"It agrees with an independent brute force on "
                  f"{cfg.random_checks} random tiny instances (number of disagreements).",
                  disagreements, "<=", 0, source="project"),
            Claim("lp_calls_log2_slope", f"The number of LPs it solves on unsolvable instances "
                  f"grows exponentially with the dimension: log2(count) rises by >= "
                  f"{SLOPE_MIN} per unit of n. This {NOT_A_PROOF}.", lp_slope, ">=",
                  SLOPE_MIN, source="project"),
        ],
    )


EXPERIMENT = experiment(
    name="three-neuron-training",
    sections=("3.3",),
    claim="Deciding whether a 3-neuron threshold network fits labelled points: an exact "
          "procedure is correct on known instances and the LPs it solves grow exponentially "
          "with n (an illustration, not a proof, of NP-hardness).",
    presets={"smoke": Config(dims=(3, 4, 5), instances_per_dim=1, random_checks=3,
                             max_check_points=5),
             "quick": Config(),
             "full": Config(dims=(3, 4, 5, 6, 7, 8, 9, 10, 11), instances_per_dim=5,
                            random_checks=200)},
    run=run,
    quick_seconds=4.0,
)

"""The perceptron rule converges on separable data within Novikoff's bound, and never on XOR.

Notes sec. 2.1. Three checks:

1. separable 2-D data built with a known margin (points closer than ``margin`` to a fixed line
   are removed), for several margins, and the Iris setosa/versicolor pair (real data,
   linearly separable): the rule stops, and its number of updates is at most
   ``(R / gamma)^2`` (Novikoff 1962), with ``gamma`` the margin of a maximum-margin separator
   found by a linear SVM (any separator gives a valid bound; the SVM's is the tightest we can
   get), measured in the same augmented space ``x~ = (x, 1)`` the rule runs in;
2. the four XOR points: no pass over the data is ever clean within a large epoch budget
   (no line separates them, so the rule cannot stop).

Random streams: ``"data"`` (index = margin number) builds each synthetic set, ``"order"``
(index = set number; XOR the last) shuffles the visiting order of each fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.data import load_table
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import Perceptron, novikoff_bound

NOVIKOFF_RATIO_MAX = 1.0  # updates / (R/gamma)^2: the theorem's bound itself
XOR_CONVERGED_MAX = 0.5  # 1 = the XOR run converged, 0 = it did not


@dataclass(frozen=True)
class Config:
    n_points: int = 400
    margins: tuple[float, ...] = (0.4, 0.2, 0.1, 0.05, 0.025)
    max_epochs: int = 20_000
    xor_epochs: int = 10_000
    shuffle: bool = True  # visit examples in a new random order every pass


def _separable_points(n: int, margin: float, generator: torch.Generator):
    """Uniform points in [-1, 1]^2 labelled by a random line, none closer than ``margin``."""
    angle = 2 * math.pi * torch.rand((), generator=generator, dtype=torch.float64)
    u = torch.stack([torch.cos(angle), torch.sin(angle)])
    b = 0.2
    kept: list[torch.Tensor] = []
    while sum(len(k) for k in kept) < n:
        x = 2 * torch.rand(4 * n, 2, generator=generator, dtype=torch.float64) - 1
        kept.append(x[(x @ u + b).abs() >= margin])
    x = torch.cat(kept)[:n]
    y = torch.sign(x @ u + b)
    return x, y, torch.cat([u, torch.tensor([b], dtype=torch.float64)])


def _svm_separator(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Approximately maximum-margin (w, b): hard-margin linear SVM on x~ = (x, 1)."""
    from sklearn.svm import LinearSVC  # heavy optional import (~1 s): only when this runs

    x_aug = np.hstack([x.numpy(), np.ones((len(x), 1))])
    svm = LinearSVC(C=1e5, loss="hinge", fit_intercept=False, max_iter=200_000, tol=1e-8)
    svm.fit(x_aug, y.numpy())
    return torch.from_numpy(svm.coef_[0].copy())


def _check(name, x, y, design_sep, cfg, order):
    perceptron = Perceptron(max_epochs=cfg.max_epochs)
    result = perceptron.fit(x, y, generator=order)
    svm = novikoff_bound(x, y, _svm_separator(x, y))
    row = {"name": name, "n": len(x), "updates": result.updates, "epochs": result.epochs,
           "converged": result.converged, "radius": svm.radius, "gamma": svm.margin,
           "bound": svm.bound, "perceptron": perceptron}
    if design_sep is not None:
        row["bound_design"] = novikoff_bound(x, y, design_sep).bound
    return row


def run(cfg: Config, ctx) -> Result:
    def order(index: int) -> torch.Generator | None:
        return ctx.rng("order", index) if cfg.shuffle else None

    rows = []
    for i, margin in enumerate(cfg.margins):
        x, y, sep = _separable_points(cfg.n_points, margin, ctx.rng("data", i))
        rows.append(_check(f"synthetic margin {margin}", x, y, sep, cfg, order(i)))
        rows[-1]["points"] = (x, y)
    features, labels = load_table("iris")
    pair = labels < 2  # setosa (0) vs versicolor (1): linearly separable
    x_iris = torch.from_numpy(features[pair]).double()
    y_iris = torch.from_numpy(2.0 * labels[pair] - 1)
    rows.append(_check("iris setosa/versicolor", x_iris, y_iris, None, cfg,
                       order(len(cfg.margins))))

    xor_x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    xor_y = torch.tensor([-1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    xor = Perceptron(max_epochs=cfg.xor_epochs).fit(xor_x, xor_y, generator=order(len(rows)))

    for i, row in enumerate(rows):
        ctx.log(i, phase="separable", updates=row["updates"], bound=row["bound"],
                converged=float(row["converged"]))
    worst_ratio = max(r["updates"] / r["bound"] for r in rows)
    all_converged = float(all(r["converged"] for r in rows))

    fig = Figure(figsize=(10.5, 4))
    ax1, ax2 = fig.subplots(1, 2)
    example = rows[len(cfg.margins) - 1]  # the smallest margin: the boundary its fit found
    x, y = example["points"]
    ax1.scatter(x[:, 0].numpy(), x[:, 1].numpy(), c=y.numpy(), cmap="coolwarm", s=8)
    line = torch.linspace(-1, 1, 2, dtype=torch.float64)
    w, b = example["perceptron"].weight, example["perceptron"].bias
    ax1.plot(line.numpy(), (-(w[0] * line + b) / w[1]).numpy(), "k-",
             label="perceptron boundary")
    ax1.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal",
            title=f"separable data, margin {cfg.margins[-1]}")
    ax1.legend(loc="lower left", fontsize=8)
    bounds = [r["bound"] for r in rows]
    ax2.loglog(bounds, [r["updates"] for r in rows], "o", label="updates made")
    lo, hi = min(bounds) / 2, max(bounds) * 2
    ax2.loglog([lo, hi], [lo, hi], "k--", lw=0.8, label="Novikoff bound $(R/\\gamma)^2$")
    for r in rows:
        ax2.annotate(r["name"].replace("synthetic ", ""), (r["bound"], r["updates"]),
                     fontsize=7)
    ax2.set(xlabel="$(R/\\gamma)^2$ from the SVM separator", ylabel="perceptron updates",
            title=f"XOR: {'converged' if xor.converged else 'no clean pass'} in "
                  f"{xor.epochs} epochs ({xor.updates} updates)")
    ax2.legend(fontsize=8)
    ctx.figure(fig, "perceptron")

    metrics = {"worst_updates_over_bound": worst_ratio, "separable_converged": all_converged,
               "xor_converged": float(xor.converged), "xor_updates": float(xor.updates),
               "xor_epochs": float(xor.epochs), "synthetic_points": float(cfg.n_points),
               "iris_points": float(pair.sum())}
    for r in rows:
        key = r["name"].replace(" ", "_").replace("/", "_")
        metrics[f"{key}_updates"] = float(r["updates"])
        metrics[f"{key}_bound"] = r["bound"]
        if "bound_design" in r:  # the looser bound from the line the data was built with
            metrics[f"{key}_bound_design"] = r["bound_design"]
    return Result(
        metrics=metrics,
        claims=[
            Claim("separable_converged", "On every linearly separable set the rule reaches a "
                  "pass without mistakes (1 = all converged).", all_converged, ">=", 1.0),
            Claim("updates_over_novikoff_bound", "The number of updates never exceeds "
                  "(R/gamma)^2 (worst ratio over the separable sets).", worst_ratio, "<=",
                  NOVIKOFF_RATIO_MAX, source="project"),
            Claim("xor_converged", f"On XOR the rule never makes a clean pass within "
                  f"{cfg.xor_epochs} epochs (1 = converged).", float(xor.converged), "<",
                  XOR_CONVERGED_MAX, source="project"),
        ],
    )


EXPERIMENT = experiment(
    name="perceptron",
    sections=("2.1",),
    claim="The perceptron rule converges on separable data within Novikoff's bound "
          "(R/gamma)^2 updates and never converges on XOR.",
    presets={"smoke": Config(n_points=100, margins=(0.2,), xor_epochs=500),
             "quick": Config(),
             "full": Config(n_points=2000, margins=(0.4, 0.2, 0.1, 0.05, 0.025, 0.0125),
                            max_epochs=200_000, xor_epochs=100_000)},
    run=run,
    quick_seconds=1.0,
    max_threads=1,
)

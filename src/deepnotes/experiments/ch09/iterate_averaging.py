"""Averaged SGD: late in training the averaged iterate's loss fluctuates far less.

Notes 9.3.2 (Polyak & Juditsky 1992). Softmax regression on Fashion-MNIST (a convex problem,
so the iterates have one basin to average in) is trained with constant-step SGD on small
mini-batches. With a constant step the last iterate never settles: it keeps bouncing around
the minimum at a noise level set by ``lr / B``. :class:`deepnotes.optim.AveragedSGD` keeps the
mean of the iterates after ``start``; averaging many noisy iterates cancels the noise.

Every ``eval_every`` steps of the last ``window`` fraction of the run the training loss (on
``n_eval`` fixed training examples) of the last iterate and of the average are measured.
Claims (thresholds fixed beforehand):

- the variance of the averaged iterate's loss over that window is below half that of the
  last iterate (theory: the average of ``n`` weakly correlated iterates has ``O(1/n)`` of
  the variance; ``n`` is in the hundreds here);
- its mean loss over the window is lower (ratio below 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data.matrices import fashion_matrices
from deepnotes.engine import evaluate
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import MLP
from deepnotes.optim import AveragedSGD

VARIANCE_RATIO_MAX = 0.5
MEAN_RATIO_MAX = 1.0


@dataclass(frozen=True)
class Config:
    n_train: int = 20000
    n_eval: int = 5000
    n_test: int = 10000
    steps: int = 3000
    batch: int = 16
    lr: float = 0.05
    start_fraction: float = 0.5  # average the iterates after this fraction of the steps
    window: float = 0.25  # measure over the last quarter of the run
    eval_every: int = 20


def run(cfg: Config, ctx) -> Result:
    if not 0 < cfg.window <= 1 - cfg.start_fraction:
        raise ValueError(f"window must be in (0, 1 - start_fraction], got {cfg.window}")
    data = fashion_matrices(cfg.n_train, cfg.n_test, ctx.rng("subset"),
                            drawn_by=f"random stream 'subset' of seed {ctx.seed}")
    x_eval, y_eval = data["x_train"][: cfg.n_eval], data["y_train"][: cfg.n_eval]
    batches = ctx.batches(data["x_train"], data["y_train"], batch_size=cfg.batch)
    fabric = ctx.fabric
    ctx.manual_seed("init")
    model = MLP((784, 10))  # softmax regression
    start = int(cfg.start_fraction * cfg.steps)
    model, opt = fabric.setup(model, AveragedSGD(model.parameters(), lr=cfg.lr, start=start))
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt},
                          log_every=cfg.eval_every):
        xb, yb = fabric.to_device(batches.batch(step))
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        fabric.backward(loss)
        opt.step()
        values = {"loss": loss.item()}
        if ctx.due(step):
            with ctx.untimed():
                values["last_loss"] = evaluate(model, x_eval, y_eval)["loss"]
                if step + 1 > start:
                    with opt.averaged():
                        values["average_loss"] = evaluate(model, x_eval, y_eval)["loss"]
        ctx.log(step, **values)

    steps_last, last_losses = ctx.series("last_loss")
    steps_avg, avg_losses = ctx.series("average_loss")
    window_start = cfg.steps * (1 - cfg.window)
    last_w = torch.tensor([v for s, v in zip(steps_last, last_losses, strict=True)
                           if s + 1 > window_start], dtype=torch.float64)
    avg_w = torch.tensor([v for s, v in zip(steps_avg, avg_losses, strict=True)
                          if s + 1 > window_start], dtype=torch.float64)
    variance_ratio = (avg_w.var() / last_w.var()).item()
    mean_ratio = (avg_w.mean() / last_w.mean()).item()
    last_test = evaluate(model, data["x_test"], data["y_test"])["accuracy"]
    with opt.averaged():
        avg_test = evaluate(model, data["x_test"], data["y_test"])["accuracy"]

    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.plot([s + 1 for s in steps_last], last_losses, label="last iterate", lw=1)
    ax.plot([s + 1 for s in steps_avg], avg_losses, label="average of iterates", lw=2)
    ax.axvspan(window_start, cfg.steps, color="0.9", label="measured window")
    ax.axvline(start, color="k", ls=":", lw=0.8)
    lo = min(min(avg_losses), min(last_losses[len(last_losses) // 4:]))
    ax.set(xlabel="step", ylabel="training loss (nats)",
           ylim=(0.95 * lo, 1.05 * last_w.max().item()),
           title=f"constant-step SGD, lr={cfg.lr}, B={cfg.batch}: variance ratio "
                 f"{variance_ratio:.2g}")
    ax.legend(fontsize=8)
    ctx.figure(fig, "iterate_averaging")

    return Result(
        metrics={"variance_ratio": variance_ratio, "mean_ratio": mean_ratio,
                 "last_loss_std": last_w.std().item(), "average_loss_std": avg_w.std().item(),
                 "last_loss_mean": last_w.mean().item(), "average_loss_mean": avg_w.mean().item(),
                 "last_test_accuracy": last_test, "average_test_accuracy": avg_test,
                 "window_points": float(len(last_w))},
        claims=[
            Claim("variance_ratio",
                  "Late in constant-step SGD, the averaged iterate's training loss varies less "
                  "than half as much as the last iterate's.",
                  variance_ratio, "<", VARIANCE_RATIO_MAX),
            Claim("mean_ratio", "... and is lower on average over the same window.",
                  mean_ratio, "<", MEAN_RATIO_MAX, source="project"),
        ],
    )


EXPERIMENT = experiment(
    name="iterate-averaging",
    sections=("9.3.2",),
    claim="Averaging the SGD iterates removes most of the late-training noise: the averaged "
          "iterate's loss has lower variance (and lower mean) than the last iterate's.",
    presets={"smoke": Config(n_train=1000, n_eval=500, n_test=500, steps=200, eval_every=10),
             "quick": Config(),
             "full": Config(n_train=60000, n_eval=10000, steps=30000, eval_every=100)},
    run=run,
    quick_seconds=2.0,
)

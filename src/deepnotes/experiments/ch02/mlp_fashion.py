"""A multi-layer perceptron classifies Fashion-MNIST (notes 2.2-2.5).

The workhorse of chapter 2: the notes' MLP (``deepnotes.nn.MLP``) trained with mini-batch
gradient descent on the full 60k/10k Fashion-MNIST split, batches drawn by index slicing from
uint8 tensors kept in memory. The claim: a plain MLP reaches at least 89% test accuracy at
the quick tier, 90% at the full tier (the levels the issue set; the notes give no number).
The smoke tier keeps the quick tier's 89%: it trains for one epoch on 2048 images, so its
claim is expected to fail, which says exactly that.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data import load_fashion_mnist, standardize_images
from deepnotes.engine import evaluate, fit
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import MLP

TARGET_ACCURACY = {"smoke": 0.89, "quick": 0.89, "full": 0.90}
LOG_EVERY = 50
TRAIN_EVAL = 10_000  # training images whose accuracy is reported


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (256, 256)
    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    train_subset: int = 0  # 0 = all 60000 training images, else the first N


def prepare(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 28, 28) -> standardized float (B, 784)."""
    return standardize_images(x, flatten=True)


def run(cfg: Config, ctx) -> Result:
    x_train, y_train = load_fashion_mnist("train", first=cfg.train_subset or None)
    x_test, y_test = load_fashion_mnist("test")
    batches = ctx.batches(x_train, y_train, batch_size=cfg.batch_size, stream="batches")
    steps = cfg.epochs * batches.steps_per_epoch

    ctx.manual_seed("init")
    model = MLP([784, *cfg.hidden, 10], activation="relu", fused=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # One-cycle schedule: warm up then anneal to ~0; the fastest reliable recipe we measured.
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=steps)

    def loss_fn(logits, y):
        return F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)

    model, _ = fit(ctx, model, optimizer, batches, steps, loss_fn=loss_fn, prepare=prepare,
                   scheduler=scheduler, log_every=LOG_EVERY)

    device = ctx.fabric.device
    test = evaluate(model, x_test, y_test, prepare=prepare, device=device)
    train = evaluate(model, x_train[:TRAIN_EVAL], y_train[:TRAIN_EVAL], prepare=prepare,
                     device=device)
    n_params = sum(p.numel() for p in model.parameters())

    fig = Figure(figsize=(5, 3.2))
    ax = fig.subplots()
    steps_logged, losses = ctx.series("loss")
    ax.plot(steps_logged, losses, lw=1)
    ax.set(xlabel="step", ylabel="training loss (cross-entropy)", yscale="log",
           title=f"MLP {'-'.join(map(str, [784, *cfg.hidden, 10]))}: "
                 f"test accuracy {test['accuracy']:.2%}")
    ctx.figure(fig, "training_loss")

    target = TARGET_ACCURACY[ctx.tier]
    return Result(
        metrics={
            "test_accuracy": test["accuracy"],
            "test_loss": test["loss"],
            "train_accuracy_10k": train["accuracy"],
            "steps": steps,
            "parameters": n_params,
        },
        claims=[
            Claim("test_accuracy", f"An MLP reaches at least {target:.1%} test accuracy on "
                  "Fashion-MNIST.", test["accuracy"], ">=", target, source="project"),
        ],
    )


EXPERIMENT = experiment(
    name="mlp-fashion",
    sections=("2.2", "2.3", "2.5"),
    claim="A multi-layer perceptron trained by mini-batch gradient descent (AdamW, one-cycle "
          "learning rate) classifies Fashion-MNIST with at least 89% test accuracy.",
    presets={
        "smoke": Config(hidden=(64,), epochs=1, batch_size=128, train_subset=2048),
        "quick": Config(),
        "full": Config(hidden=(1024, 1024), epochs=30, weight_decay=5e-4, label_smoothing=0.1),
    },
    run=run,
    quick_seconds=7.0,
    flagship=True,
)

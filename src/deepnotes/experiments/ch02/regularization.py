"""Each regularizer narrows the train/test gap on a small training set (notes sec. 2.6.2).

An MLP (784-128-128-10, ReLU) is trained on only 1000 Fashion-MNIST images until it fits
them, five times with the same initialization, data order and budget:

- ``baseline``: cross-entropy only;
- ``l2``: ``+ lambda sum W^2`` over the weight matrices (added: see the sign erratum in
  :mod:`deepnotes.nn.regularization`);
- ``dropout``: inverted dropout with ``p`` after each hidden layer;
- ``augmentation``: every batch randomly translated (zero-padded crop), mirrored and given
  Gaussian pixel noise;
- ``batchnorm``: BatchNorm1d after each hidden linear layer.

The gap is the test cross-entropy minus the training cross-entropy (both on clean images in
eval mode; the empirical risk of Def. 2.4.1 measured on unseen vs seen data). Claim, per
regularizer: its gap is below ``MAX_GAP_RATIO`` times the baseline's. Accuracy gaps are
reported too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from deepnotes.experiments.base import Claim, Experiment, Result

MAX_GAP_RATIO = 0.9  # a regularizer must cut the baseline's loss gap by at least 10 %
VARIANTS = ("baseline", "l2", "dropout", "augmentation", "batchnorm")


@dataclass(frozen=True)
class Config:
    n_train: int = 1000
    n_test: int = 10_000
    hidden: tuple[int, ...] = (128, 128)
    steps: int = 400
    batch_size: int = 100
    lr: float = 1e-3
    l2_lambda: float = 1e-3
    dropout_p: float = 0.5
    crop_padding: int = 2
    noise_std: float = 0.1
    log_every: int = 25


class Net(nn.Module):
    """MLP on flattened 28x28 images with optional BatchNorm and dropout per hidden layer."""

    def __init__(self, hidden: tuple[int, ...], dropout_p: float = 0.0,
                 batchnorm: bool = False) -> None:
        super().__init__()
        from deepnotes.nn import BatchNorm1d, Dropout

        layers: list[nn.Module] = [nn.Flatten()]
        n_in = 28 * 28
        for width in hidden:
            layers.append(nn.Linear(n_in, width))
            if batchnorm:
                layers.append(BatchNorm1d(width))
            layers.append(nn.ReLU())
            if dropout_p > 0:
                layers.append(Dropout(dropout_p))
            n_in = width
        layers.append(nn.Linear(n_in, 10))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (N, 10) logits


def _normalize(x_uint8: torch.Tensor) -> torch.Tensor:
    from deepnotes.data import FASHION_MEAN, FASHION_STD

    return (x_uint8.float() / 255.0 - FASHION_MEAN) / FASHION_STD


def _augment(x_uint8: torch.Tensor, step: int, cfg: Config, seed: int) -> torch.Tensor:
    from deepnotes.nn import gaussian_noise, horizontal_flip, random_crop

    # A generator per step makes the augmentation a pure function of the step: exact resume.
    g = torch.Generator().manual_seed(seed * 1_000_003 + step)
    x = random_crop(x_uint8, cfg.crop_padding, g)
    x = horizontal_flip(x, g)
    return gaussian_noise(x, cfg.noise_std, g)


def _train_variant(ctx, variant: str, cfg: Config, batches) -> nn.Module:
    from deepnotes.nn import l2_penalty, weight_parameters

    torch.manual_seed(ctx.seed)
    model = Net(cfg.hidden, dropout_p=cfg.dropout_p if variant == "dropout" else 0.0,
                batchnorm=variant == "batchnorm")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    model, opt = ctx.fabric.setup(model, opt)
    model.train()
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt}, phase=variant):
        xb, yb = batches.batch(step)
        if variant == "augmentation":
            xb = _augment(xb, step, cfg, ctx.seed)
        xb, yb = ctx.fabric.to_device((_normalize(xb), yb))
        data_loss = nn.functional.cross_entropy(model(xb), yb)
        loss = data_loss
        if variant == "l2":
            loss = loss + cfg.l2_lambda * l2_penalty(weight_parameters(model))
        opt.zero_grad(set_to_none=True)
        ctx.fabric.backward(loss)
        opt.step()
        if step % cfg.log_every == 0 or step + 1 == cfg.steps:
            ctx.log(step, phase=variant, loss=data_loss.item())
    return model


def run(cfg: Config, ctx) -> Result:
    import matplotlib.pyplot as plt

    from deepnotes.data import Batches, load_fashion_mnist
    from deepnotes.engine import evaluate

    x_all, y_all = load_fashion_mnist("train")
    pick = torch.randperm(len(x_all), generator=ctx.generator(1))[: cfg.n_train]
    x_train, y_train = x_all[pick], y_all[pick]
    x_test, y_test = load_fashion_mnist("test")
    x_test, y_test = x_test[: cfg.n_test], y_test[: cfg.n_test]
    batches = Batches(x_train, y_train, batch_size=cfg.batch_size, seed=ctx.seed)

    results = {}
    for variant in VARIANTS:
        model = _train_variant(ctx, variant, cfg, batches)
        train = evaluate(model, x_train, y_train, prepare=_normalize)
        test = evaluate(model, x_test, y_test, prepare=_normalize)
        results[variant] = {"train_loss": train["loss"], "test_loss": test["loss"],
                            "train_accuracy": train["accuracy"],
                            "test_accuracy": test["accuracy"],
                            "loss_gap": test["loss"] - train["loss"],
                            "accuracy_gap": train["accuracy"] - test["accuracy"]}

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

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
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

    fig, ax = plt.subplots(figsize=(6, 4))
    for variant in names:
        steps, values = ctx.series("loss", phase=variant)
        ax.semilogy(steps, values, label=variant)
    ax.set(xlabel="step", ylabel="training mini-batch cross-entropy", title="training curves")
    ax.legend()
    ctx.figure(fig, "regularization_curves")

    return Result(
        metrics=metrics,
        claims=claims,
        data={"name": "Fashion-MNIST", "train": int(len(x_train)), "test": int(len(x_test))},
    )


EXPERIMENT = Experiment(
    name="regularization",
    sections=("2.6",),
    claim="Each regularizer (L2 penalty, dropout, augmentation, BatchNorm) narrows the "
          "train/test gap on a small training set.",
    config=Config,
    presets={"smoke": Config(n_train=200, n_test=1000, hidden=(64,), steps=20),
             "quick": Config(),
             "full": Config(hidden=(512, 512), steps=3000)},
    run=run,
    max_threads=1,
    module=__name__,
    test="tests/test_experiments_ch01_02.py",
)

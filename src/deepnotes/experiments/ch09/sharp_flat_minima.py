"""Large batches find sharper minima (Keskar et al. 2017): sharpness and generalization gap.

Notes 9.2. The same Fashion-MNIST MLP, from the same initial weights, is trained with Adam
(as in the paper) for the same number of epochs with a small batch (128) and a large batch
(10% of the training set). For each solution ``x`` it measures

- Keskar's sharpness: ``100 * (max_{delta in C_eps} f(x + delta) - f(x)) / (1 + f(x))`` over
  the box ``|delta_i| <= eps (|x_i| + 1)``, ``f`` the training loss, for eps = 1e-3 and 5e-4;
  the maximum is sought by projected sign-gradient ascent
  (:func:`deepnotes.optim.keskar_sharpness`, ``sharpness_steps`` steps from a random point of
  the box; the paper used L-BFGS-B), on ``n_sharpness`` training examples;
- the generalization gap: training accuracy minus test accuracy.

Claims (thresholds fixed before the runs, from the paper's direction of effect):
the large-batch solution is sharper at both eps (ratio LB / SB above 1), and its generalization
gap is larger (difference LB - SB above 0). The numbers are reported whatever they turn out to
be; at the quick tier the models are small and trained briefly.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from deepnotes.experiments.base import Claim, Experiment, Result

SHARPNESS_RATIO_MIN = 1.0
GAP_DIFFERENCE_MIN = 0.0


@dataclass(frozen=True)
class Config:
    n_train: int = 10000
    n_test: int = 10000
    hidden: tuple[int, ...] = (128,)
    epochs: int = 20
    small_batch: int = 128
    large_fraction: float = 0.1  # large batch = this fraction of the training set
    lr: float = 1e-3
    epsilons: tuple[float, ...] = (1e-3, 5e-4)
    sharpness_steps: int = 10
    n_sharpness: int = 2000
    log_every: int = 20


def _train(cfg: Config, ctx, model, batch_size: int, data, phase: str) -> torch.nn.Module:
    """Adam for ``cfg.epochs`` epochs at ``batch_size``; returns the Fabric-wrapped model."""
    from deepnotes.experiments.ch09_common import fabric_batches
    from deepnotes.optim import Adam

    fabric = ctx.fabric
    batches = fabric_batches(ctx, data["x_train"], data["y_train"], batch_size)
    steps = cfg.epochs * batches.steps_per_epoch
    model, opt = fabric.setup(model, Adam(model.parameters(), lr=cfg.lr))
    for step in ctx.steps(steps, track={"model": model, "optimizer": opt}, phase=phase):
        xb, yb = fabric.to_device(batches.batch(step))
        loss = torch.nn.functional.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        fabric.backward(loss)
        opt.step()
        if step % cfg.log_every == 0 or step + 1 == steps:
            ctx.log(step, phase=phase, loss=loss.item(), epoch=step / batches.steps_per_epoch)
    return model


def run(cfg: Config, ctx) -> Result:
    import matplotlib.pyplot as plt

    from deepnotes.experiments.ch09_common import fashion_matrices, mean_loss_and_accuracy, mlp
    from deepnotes.optim import keskar_sharpness

    data = fashion_matrices(cfg.n_train, cfg.n_test, ctx.seed)
    large_batch = max(1, round(cfg.large_fraction * cfg.n_train))
    batch_sizes = {"small": cfg.small_batch, "large": large_batch}
    torch.manual_seed(ctx.seed)
    initial = mlp((784, *cfg.hidden, 10))
    device = ctx.fabric.device
    x_sharp = data["x_train"][: cfg.n_sharpness].to(device)
    y_sharp = data["y_train"][: cfg.n_sharpness].to(device)

    results: dict[str, dict[str, float]] = {}
    for name, batch in batch_sizes.items():
        model = copy.deepcopy(initial)  # the same network and the same start
        model = _train(cfg, ctx, model, batch, data, phase=f"train-{name}")
        model.eval()
        train_loss, train_acc = mean_loss_and_accuracy(model, data["x_train"], data["y_train"])
        test_loss, test_acc = mean_loss_and_accuracy(model, data["x_test"], data["y_test"])
        row = {"batch": batch, "train_loss": train_loss, "train_accuracy": train_acc,
               "test_loss": test_loss, "test_accuracy": test_acc,
               "gap": train_acc - test_acc}
        params = list(model.parameters())
        for k, eps in enumerate(cfg.epsilons):
            found = keskar_sharpness(
                lambda m=model: torch.nn.functional.cross_entropy(m(x_sharp).float(), y_sharp),
                params, eps=eps, steps=cfg.sharpness_steps, generator=ctx.generator(100 + k))
            row[f"sharpness_eps{eps:g}"] = found.sharpness
        results[name] = row

    metrics: dict[str, float] = {}
    for name, row in results.items():
        metrics.update({f"{name}_{key}": value for key, value in row.items()})
    claims = []
    for eps in cfg.epsilons:
        ratio = (results["large"][f"sharpness_eps{eps:g}"]
                 / max(results["small"][f"sharpness_eps{eps:g}"], 1e-12))
        metrics[f"sharpness_ratio_eps{eps:g}"] = ratio
        claims.append(Claim(f"sharpness_ratio_eps{eps:g}",
                            f"The large-batch minimum is sharper than the small-batch one "
                            f"(Keskar sharpness, eps={eps:g}).", ratio, ">", SHARPNESS_RATIO_MIN))
    gap_difference = results["large"]["gap"] - results["small"]["gap"]
    metrics["gap_difference"] = gap_difference
    claims.append(Claim("gap_difference",
                        "The large-batch model has the larger generalization gap "
                        "(train minus test accuracy).", gap_difference, ">", GAP_DIFFERENCE_MIN))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name in batch_sizes:
        _, epochs = ctx.series("epoch", phase=f"train-{name}")
        _, losses = ctx.series("loss", phase=f"train-{name}")
        axes[0].plot(epochs, losses, label=f"{name} batch ({batch_sizes[name]})")
    axes[0].set(xlabel="epoch", ylabel="mini-batch loss", yscale="log", title="training")
    axes[0].legend(fontsize=8)
    labels = [f"eps={eps:g}" for eps in cfg.epsilons] + ["gap (acc, %)"]
    width = 0.38
    for i, name in enumerate(batch_sizes):
        row = results[name]
        values = [row[f"sharpness_eps{eps:g}"] for eps in cfg.epsilons] + [100 * row["gap"]]
        axes[1].bar([j + (i - 0.5) * width for j in range(len(values))], values, width,
                    label=f"{name} batch")
    axes[1].set_xticks(range(len(labels)), labels)
    axes[1].set(title="Keskar sharpness and generalization gap")
    axes[1].legend(fontsize=8)
    ctx.figure(fig, "sharp_flat_minima")

    return Result(metrics=metrics, claims=claims,
                  data={**data["data"], "sharpness_examples": cfg.n_sharpness,
                        "sharpness_ascent_steps": cfg.sharpness_steps})


EXPERIMENT = Experiment(
    name="sharp-flat-minima",
    sections=("9.2",),
    claim="Large-batch training converges to sharper minima (Keskar sharpness) with a larger "
          "generalization gap than small-batch training.",
    config=Config,
    presets={"smoke": Config(n_train=1280, n_test=1000, hidden=(32,), epochs=2,
                             n_sharpness=500, sharpness_steps=3),
             "quick": Config(),
             "full": Config(n_train=60000, hidden=(512, 512), epochs=100, n_sharpness=10000,
                            sharpness_steps=50, log_every=100)},
    run=run,
    module=__name__,
    test="tests/test_experiments_ch09.py",
)

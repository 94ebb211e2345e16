"""Large batches find sharper minima (Keskar et al. 2017): sharpness and generalization gap.

Notes 9.2. The same Fashion-MNIST MLP, from the same initial weights, is trained with Adam
(as in the paper) with a small batch (128) and a large batch (10% of the training set), each
until its loss on the whole training subset first reaches the same target (``TARGET_LOSS``,
fixed per tier before any run), as Keskar et al. compare solutions at equal training loss and
not after equal epochs. The training loss is evaluated every ``eval_every`` steps; the budget
is a step cap (``max_steps``) per batch size, and whether each run reached the target within
it is recorded (and checked). For each solution ``x`` it then measures

- Keskar's sharpness: ``100 * (max_{delta in C_eps} f(x + delta) - f(x)) / (1 + f(x))`` over
  the box ``|delta_i| <= eps (|x_i| + 1)``, ``f`` the training loss, for eps = 1e-3 and 5e-4;
  the maximum is sought by projected sign-gradient ascent
  (:func:`deepnotes.optim.keskar_sharpness`, ``sharpness_steps`` steps from a random point of
  the box; the paper used L-BFGS-B), on ``n_sharpness`` training examples;
- the generalization gap: training accuracy minus test accuracy.

Claims (thresholds fixed before the runs, from the paper's direction of effect):
the large-batch solution is sharper at both eps (ratio LB / SB above 1), and its generalization
gap is larger (difference LB - SB above 0); both runs reached the target loss (else the
comparison is not at equal loss). The numbers are reported whatever they turn out to be; at
the quick tier the models are small and the target loss is far from zero.

Resume: the stop decision is a function of the step and the weights (both restored exactly);
``ctx.end_phase()`` ends the loop at the target and checkpoints it as finished, so a resumed
run skips the phase with the weights at the target and ``reached_step`` restored.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data.matrices import fashion_matrices
from deepnotes.engine import evaluate
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import MLP
from deepnotes.optim import Adam, keskar_sharpness

SHARPNESS_RATIO_MIN = 1.0
GAP_DIFFERENCE_MIN = 0.0
# Cross-entropy (nats) on the whole training subset at which each batch size stops.
TARGET_LOSS = {"smoke": 0.6, "quick": 0.3, "full": 0.05}


@dataclass(frozen=True)
class Config:
    n_train: int = 10000
    n_test: int = 10000
    hidden: tuple[int, ...] = (128,)
    max_steps: int = 3000  # step cap of each batch size
    eval_every: int = 20  # steps between evaluations of the training loss (the stop test)
    small_batch: int = 128
    large_fraction: float = 0.1  # large batch = this fraction of the training set
    lr: float = 1e-3
    epsilons: tuple[float, ...] = (1e-3, 5e-4)
    sharpness_steps: int = 10
    n_sharpness: int = 2000


def _train_to_target(cfg: Config, ctx, model: torch.nn.Module, batch_size: int,
                     data: dict[str, torch.Tensor], name: str, target: float):
    """Adam at ``batch_size`` until the training loss is <= ``target`` or ``cfg.max_steps``.

    Returns the Fabric-wrapped model, the steps taken, whether the target was reached and the
    steps per epoch.
    """
    fabric = ctx.fabric
    phase = f"train-{name}"
    x_train, y_train = data["x_train"], data["y_train"]
    batches = ctx.batches(x_train, y_train, batch_size=batch_size, stream=f"batches-{name}")
    model, opt = fabric.setup(model, Adam(model.parameters(), lr=cfg.lr))
    state = {"reached_step": 0}  # checkpointed: 0 until the target is reached
    for step in ctx.steps(cfg.max_steps, track={"model": model, "optimizer": opt},
                          phase=phase, state=state, log_every=cfg.eval_every):
        xb, yb = fabric.to_device(batches.batch(step))
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        fabric.backward(loss)
        opt.step()
        values = {"loss": loss.item(), "epoch": (step + 1) / batches.steps_per_epoch}
        if ctx.due(step, phase):
            with ctx.untimed():
                values["train_loss"] = evaluate(model, x_train, y_train)["loss"]
            if values["train_loss"] <= target:
                state["reached_step"] = step + 1
                ctx.end_phase()  # checkpointed as finished, at the target's weights
        ctx.log(step, phase=phase, **values)
    reached = bool(state["reached_step"])
    steps = state["reached_step"] if reached else cfg.max_steps
    return model, steps, reached, batches.steps_per_epoch


def run(cfg: Config, ctx) -> Result:
    target = TARGET_LOSS[ctx.tier]
    data = fashion_matrices(cfg.n_train, cfg.n_test, ctx.rng("subset"),
                            drawn_by=f"random stream 'subset' of seed {ctx.seed}")
    large_batch = max(1, round(cfg.large_fraction * cfg.n_train))
    batch_sizes = {"small": cfg.small_batch, "large": large_batch}
    ctx.manual_seed("init")
    initial = MLP((784, *cfg.hidden, 10), fused=True)
    device = ctx.fabric.device
    x_sharp = data["x_train"][: cfg.n_sharpness].to(device)
    y_sharp = data["y_train"][: cfg.n_sharpness].to(device)

    results: dict[str, dict[str, float]] = {}
    per_epoch: dict[str, int] = {}
    for name, batch in batch_sizes.items():
        model = copy.deepcopy(initial)  # the same network and the same start
        model, steps, reached, per_epoch[name] = _train_to_target(cfg, ctx, model, batch, data,
                                                                  name, target)
        train = evaluate(model, data["x_train"], data["y_train"])
        test = evaluate(model, data["x_test"], data["y_test"])
        row = {"batch": batch, "steps": steps, "reached_target": float(reached),
               "epochs": steps / per_epoch[name],
               "train_loss": train["loss"], "train_accuracy": train["accuracy"],
               "test_loss": test["loss"], "test_accuracy": test["accuracy"],
               "gap": train["accuracy"] - test["accuracy"]}
        model.eval()
        params = list(model.parameters())
        for k, eps in enumerate(cfg.epsilons):
            found = keskar_sharpness(
                lambda m=model: F.cross_entropy(m(x_sharp).float(), y_sharp),
                params, eps=eps, steps=cfg.sharpness_steps,
                generator=ctx.rng("sharpness-start", k))
            row[f"sharpness_eps{eps:g}"] = found.sharpness
        results[name] = row

    metrics: dict[str, float] = {"target_loss": target}
    for name, row in results.items():
        metrics.update({f"{name}_{key}": value for key, value in row.items()})
    both_reached = min(results["small"]["reached_target"], results["large"]["reached_target"])
    claims = [Claim("both_reached_target",
                    f"Both batch sizes reached the training loss {target:g} within "
                    f"{cfg.max_steps} steps, so they are compared at equal training loss "
                    f"(1 = both).", both_reached, ">=", 1.0, source="project")]
    for eps in cfg.epsilons:
        ratio = (results["large"][f"sharpness_eps{eps:g}"]
                 / max(results["small"][f"sharpness_eps{eps:g}"], 1e-12))
        metrics[f"sharpness_ratio_eps{eps:g}"] = ratio
        claims.append(Claim(f"sharpness_ratio_eps{eps:g}",
                            f"At equal training loss the large-batch minimum is sharper than "
                            f"the small-batch one (Keskar sharpness, eps={eps:g}).", ratio, ">",
                            SHARPNESS_RATIO_MIN))
    gap_difference = results["large"]["gap"] - results["small"]["gap"]
    metrics["gap_difference"] = gap_difference
    claims.append(Claim("gap_difference",
                        "At equal training loss the large-batch model has the larger "
                        "generalization gap (train minus test accuracy).", gap_difference, ">",
                        GAP_DIFFERENCE_MIN))

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for name in batch_sizes:
        steps_logged, losses = ctx.series("train_loss", phase=f"train-{name}")
        axes[0].plot([(s + 1) / per_epoch[name] for s in steps_logged], losses,
                     label=f"{name} batch ({batch_sizes[name]}): "
                           f"{results[name]['steps']:.0f} steps")
    axes[0].axhline(target, color="k", lw=0.6, ls="--", label=f"target {target:g}")
    axes[0].set(xlabel="epoch", ylabel="training-set loss (nats)", yscale="log",
                title="training to the same loss")
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

    metrics["sharpness_examples"] = float(min(cfg.n_sharpness, cfg.n_train))
    return Result(metrics=metrics, claims=claims)


EXPERIMENT = experiment(
    name="sharp-flat-minima",
    sections=("9.2",),
    claim="Trained to the same training loss, large-batch training ends in sharper minima "
          "(Keskar sharpness) with a larger generalization gap than small-batch training.",
    presets={"smoke": Config(n_train=1280, n_test=1000, hidden=(32,), max_steps=150,
                             eval_every=10, large_fraction=0.5, n_sharpness=500,
                             sharpness_steps=3),
             "quick": Config(),
             "full": Config(n_train=60000, hidden=(512, 512), max_steps=30000, eval_every=100,
                            n_sharpness=10000, sharpness_steps=50)},
    run=run,
    quick_seconds=4.0,
)

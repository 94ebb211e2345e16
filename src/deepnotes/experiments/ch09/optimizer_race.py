"""Optimizer race: SGD, momentum, averaged SGD, AdaGrad and Adam on three landscapes.

Notes 9.3. Each optimizer of :mod:`deepnotes.optim` runs the same number of steps from the
same start on

1. an ill-conditioned quadratic ``1/2 x^T A x`` (d = 50, condition number 100, random
   eigenbasis; exact gradients),
2. Rosenbrock's banana from ``(-1.2, 1)`` (exact gradients),
3. a Fashion-MNIST MLP (784-128-10, mini-batches of 128, cross-entropy).

It records the loss against the step (for averaged SGD: the loss *of the average*) and the
first step at which each reaches a fixed target (module constants; the MLP's per tier).
Learning rates are the textbook ones: ``1/L``
for SGD on the quadratic and Polyak's heavy-ball tuning for momentum; the usual defaults
elsewhere (config). Averaging covers the second half of each run.

Claims (thresholds fixed from theory before the runs):
- quadratic: heavy-ball momentum needs at most half the steps of gradient descent
  (theory: ``~sqrt(kappa)`` vs ``~kappa`` steps per digit, a ratio near 1/10 at kappa = 100);
- MLP: momentum 0.9 at the same learning rate needs at most half the steps of SGD (its steady
  step is ``lr / (1 - 0.9) = 10 lr``).
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
from deepnotes.optim import SGD, AdaGrad, Adam, AveragedSGD, Quadratic, rosenbrock, rosenbrock_grad
from deepnotes.optim.targets import steps_to_target

OPTIMIZERS = ("sgd", "momentum", "averaged", "adagrad", "adam")
QUADRATIC_RATIO_MAX = 0.5  # heavy-ball / GD steps to target on kappa = 100
MLP_RATIO_MAX = 0.5  # momentum 0.9 / SGD steps to target at equal lr
QUADRATIC_TARGET = 1e-6  # f / f(x0)
ROSENBROCK_TARGET = 1e-4  # f
MLP_TARGET = {"smoke": 0.6, "quick": 0.6, "full": 0.4}  # training-set cross-entropy (nats)


@dataclass(frozen=True)
class Config:
    quadratic_steps: int = 400
    rosenbrock_steps: int = 2500
    rosenbrock_lrs: tuple[float, ...] = (1e-3, 1e-3, 1e-3, 0.1, 0.02)  # in OPTIMIZERS order
    mlp_steps: int = 400
    mlp_batch: int = 128
    mlp_hidden: int = 128
    mlp_lrs: tuple[float, ...] = (0.02, 0.02, 0.02, 0.02, 1e-3)  # in OPTIMIZERS order
    mlp_eval_every: int = 20
    n_train: int = 10000
    n_eval: int = 5000  # training examples on which the mlp loss curve is measured
    adagrad_lr_quadratic: float = 0.5
    adam_lr_quadratic: float = 0.05
    momentum: float = 0.9


def _make(name: str, params, lr: float, momentum: float, steps: int):
    if name == "sgd":
        return SGD(params, lr=lr)
    if name == "momentum":
        return SGD(params, lr=lr, momentum=momentum)
    if name == "averaged":
        return AveragedSGD(params, lr=lr, start=steps // 2)
    if name == "adagrad":
        return AdaGrad(params, lr=lr)
    return Adam(params, lr=lr)


def _current(opt, param: torch.Tensor) -> torch.Tensor:
    """The iterate to score: the running average for averaged SGD once it exists."""
    state = opt.state.get(param, {})
    return state["average"] if "average" in state else param.detach()


def _quadratic(cfg: Config, ctx) -> dict[str, list[float]]:
    q = Quadratic(50, 100.0, generator=ctx.rng("quadratic-basis"))
    x0 = torch.randn(50, generator=ctx.rng("quadratic-start"), dtype=torch.float64)
    f0 = q(x0).item()
    hb_lr, hb_momentum = q.heavy_ball_parameters()
    lrs = {"sgd": 1 / q.L, "momentum": hb_lr, "averaged": 1 / q.L,
           "adagrad": cfg.adagrad_lr_quadratic, "adam": cfg.adam_lr_quadratic}
    curves = {}
    for name in OPTIMIZERS:
        x = x0.clone().requires_grad_()
        opt = (SGD([x], lr=hb_lr, momentum=hb_momentum) if name == "momentum"
               else _make(name, [x], lrs[name], 0.0, cfg.quadratic_steps))
        curve = []
        for _ in range(cfg.quadratic_steps):
            x.grad = q.A @ x.detach()  # exact gradient of 1/2 x^T A x
            opt.step()
            curve.append(q(_current(opt, x)).item() / f0)
        curves[name] = curve
    return curves


def _rosenbrock(cfg: Config) -> tuple[dict[str, list[float]], dict[str, torch.Tensor]]:
    curves, paths = {}, {}
    for name, lr in zip(OPTIMIZERS, cfg.rosenbrock_lrs, strict=True):
        x = torch.tensor([-1.2, 1.0], dtype=torch.float64, requires_grad=True)
        opt = _make(name, [x], lr, cfg.momentum, cfg.rosenbrock_steps)
        path = torch.empty(cfg.rosenbrock_steps + 1, 2, dtype=torch.float64)
        path[0] = x.detach()
        for t in range(cfg.rosenbrock_steps):
            x.grad = rosenbrock_grad(x.detach())
            opt.step()
            path[t + 1] = _current(opt, x)
        curves[name], paths[name] = rosenbrock(path[1:]).tolist(), path
    return curves, paths


def _mlp(cfg: Config, ctx, data) -> None:
    fabric = ctx.fabric
    x_train, y_train = data["x_train"], data["y_train"]
    x_eval, y_eval = x_train[: cfg.n_eval], y_train[: cfg.n_eval]
    batches = ctx.batches(x_train, y_train, batch_size=cfg.mlp_batch)  # the same for all
    sizes = (784, cfg.mlp_hidden, 10)
    ctx.manual_seed("init")
    initial = MLP(sizes, fused=True).state_dict()
    for name, lr in zip(OPTIMIZERS, cfg.mlp_lrs, strict=True):
        model = MLP(sizes, fused=True)
        model.load_state_dict(initial)  # every optimizer starts from the same weights
        opt = _make(name, model.parameters(), lr, cfg.momentum, cfg.mlp_steps)
        model, opt = fabric.setup(model, opt)
        phase = f"mlp-{name}"
        for step in ctx.steps(cfg.mlp_steps, track={"model": model, "optimizer": opt},
                              phase=phase, log_every=cfg.mlp_eval_every):
            xb, yb = fabric.to_device(batches.batch(step))
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            fabric.backward(loss)
            opt.step()
            values = {"loss": loss.item()}
            if ctx.due(step, phase):
                with ctx.untimed():
                    if name == "averaged" and step + 1 > cfg.mlp_steps // 2:
                        with opt.averaged():
                            values["train_loss"] = evaluate(model, x_eval, y_eval)["loss"]
                    else:
                        values["train_loss"] = evaluate(model, x_eval, y_eval)["loss"]
            ctx.log(step, phase=phase, **values)


def run(cfg: Config, ctx) -> Result:
    if len(cfg.rosenbrock_lrs) != len(OPTIMIZERS) or len(cfg.mlp_lrs) != len(OPTIMIZERS):
        raise ValueError(f"rosenbrock_lrs and mlp_lrs need one value per optimizer {OPTIMIZERS}")
    mlp_target = MLP_TARGET[ctx.tier]
    data = fashion_matrices(cfg.n_train, 0, ctx.rng("subset"),
                            drawn_by=f"random stream 'subset' of seed {ctx.seed}")
    quad = _quadratic(cfg, ctx)
    rosen, paths = _rosenbrock(cfg)
    _mlp(cfg, ctx, data)

    metrics: dict[str, float] = {}
    table = {}
    for name in OPTIMIZERS:
        q_steps, q_hit = steps_to_target(list(range(cfg.quadratic_steps)), quad[name],
                                         QUADRATIC_TARGET, cfg.quadratic_steps)
        r_steps, r_hit = steps_to_target(list(range(cfg.rosenbrock_steps)), rosen[name],
                                         ROSENBROCK_TARGET, cfg.rosenbrock_steps)
        m_x, m_y = ctx.series("train_loss", phase=f"mlp-{name}")
        m_steps, m_hit = steps_to_target(m_x, m_y, mlp_target, cfg.mlp_steps)
        table[name] = (q_steps, q_hit, r_steps, r_hit, m_steps, m_hit)
        metrics.update({
            f"quadratic_steps_{name}": q_steps, f"quadratic_reached_{name}": float(q_hit),
            f"rosenbrock_steps_{name}": r_steps, f"rosenbrock_reached_{name}": float(r_hit),
            f"mlp_steps_{name}": m_steps, f"mlp_reached_{name}": float(m_hit),
            f"quadratic_final_{name}": quad[name][-1], f"rosenbrock_final_{name}": rosen[name][-1],
            f"mlp_final_train_loss_{name}": m_y[-1],
        })
    quad_ratio = metrics["quadratic_steps_momentum"] / metrics["quadratic_steps_sgd"]
    mlp_ratio = metrics["mlp_steps_momentum"] / metrics["mlp_steps_sgd"]
    metrics["quadratic_momentum_over_sgd"] = quad_ratio
    metrics["mlp_target"] = mlp_target
    metrics["mlp_momentum_over_sgd"] = mlp_ratio

    fig = Figure(figsize=(20, 4.2))
    axes = fig.subplots(1, 4)
    for name in OPTIMIZERS:
        axes[0].semilogy(range(1, cfg.quadratic_steps + 1), quad[name], label=name)
        axes[1].semilogy(range(1, cfg.rosenbrock_steps + 1), rosen[name], label=name)
        m_x, m_y = ctx.series("train_loss", phase=f"mlp-{name}")
        axes[2].plot([s + 1 for s in m_x], m_y, label=name)
    axes[0].axhline(QUADRATIC_TARGET, color="k", lw=0.6, ls="--")
    axes[1].axhline(ROSENBROCK_TARGET, color="k", lw=0.6, ls="--")
    axes[2].axhline(mlp_target, color="k", lw=0.6, ls="--")
    axes[0].set(title="quadratic, kappa=100: f / f(x0)", xlabel="step", ylim=(1e-14, None))
    axes[1].set(title="Rosenbrock: f", xlabel="step")
    axes[2].set(title="Fashion-MNIST MLP: training loss", xlabel="step", ylabel="nats")
    grid = torch.linspace(-2, 2, 300, dtype=torch.float64)
    gx, gy = torch.meshgrid(grid, grid + 1, indexing="xy")
    axes[3].contour(gx, gy, torch.log10(rosenbrock(torch.stack([gx, gy], -1)) + 1e-3),
                    levels=20, cmap="Greys", linewidths=0.5)
    for name in OPTIMIZERS:
        axes[3].plot(paths[name][:, 0], paths[name][:, 1], lw=1, label=name)
    axes[3].plot([1], [1], "k*", ms=10)
    axes[3].set(title="Rosenbrock paths (averaged: the average)", xlim=(-2, 2), ylim=(-1, 3))
    for ax in axes[:3]:
        ax.legend(fontsize=8)
    ctx.figure(fig, "optimizer_race")

    fig = Figure(figsize=(7, 2.2))
    ax = fig.subplots()
    ax.axis("off")
    rows = [[name] + [f"{s}{'' if hit else '+'}" for s, hit in
                      zip(table[name][::2], table[name][1::2], strict=True)]
            for name in OPTIMIZERS]
    ax.table(cellText=rows, colLabels=["optimizer", "quadratic", "Rosenbrock", "MLP"],
             loc="center")
    ax.set_title("steps to target ('+': not reached within the budget)")
    ctx.figure(fig, "steps_to_target")

    return Result(
        metrics=metrics,
        claims=[
            Claim("quadratic_momentum_over_sgd",
                  "On a quadratic with condition number 100, heavy-ball momentum reaches the "
                  "target in at most half the steps of gradient descent.",
                  quad_ratio, "<=", QUADRATIC_RATIO_MAX),
            Claim("mlp_momentum_over_sgd",
                  "On the Fashion-MNIST MLP, momentum 0.9 reaches the target training loss in "
                  "at most half the steps of SGD at the same learning rate.",
                  mlp_ratio, "<=", MLP_RATIO_MAX),
        ],
    )


EXPERIMENT = experiment(
    name="optimizer-race",
    sections=("9.3", "9.3.1", "9.3.2", "9.3.3", "9.3.4"),
    claim="Momentum converges in far fewer steps than plain SGD on ill-conditioned problems; "
          "AdaGrad and Adam adapt per-coordinate step sizes.",
    presets={
        "smoke": Config(quadratic_steps=100, rosenbrock_steps=100, mlp_steps=30,
                        mlp_eval_every=10, n_train=1000, n_eval=500),
        "quick": Config(),
        "full": Config(quadratic_steps=1000, rosenbrock_steps=20000, mlp_steps=5000,
                       mlp_eval_every=50, n_train=60000, n_eval=10000),
    },
    run=run,
    quick_seconds=4.0,
)

"""Without a non-linearity a deep MLP is one affine map (notes sec. 2.2-2.3).

A 4-layer MLP with identity activations is trained on the 8x8 digits; its layers are then
multiplied out into a single ``(W, b)`` (:func:`deepnotes.nn.compose_affine`) and the two
are compared on the held-out digits, in float64 and in float32. As a control, the same
architecture with ReLU is trained the same way and the best affine map (least squares) is
fitted to *its* outputs: a non-linear net is not affine, so that fit leaves a visible
residual.

Random streams: ``"split"`` (train/test permutation), ``"init"`` (both nets start from the
same weights), ``"batches"`` (both see the same mini-batches).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from deepnotes.data import load_digits
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import MLP, compose_affine

MAX_ERR_FLOAT64 = 1e-10  # max |deep(x) - (W x + b)|, float64: a few hundred roundings of 1e-16
MAX_REL_ERR_FLOAT32 = 1e-5  # same in float32, relative to max |output| (eps32 = 1.2e-7)
MIN_RELU_AFFINE_RESIDUAL = 1e-2  # relative RMS residual of the best affine fit to a relu net
LOG_EVERY = 10


@dataclass(frozen=True)
class Config:
    hidden: tuple[int, ...] = (128, 128, 128)
    steps: int = 300
    batch_size: int = 64
    lr: float = 0.05
    n_train: int = 1400


def _train(ctx, model, x, y, cfg, phase):
    """Mini-batch SGD with momentum on cross-entropy, in float32."""
    batches = ctx.batches(x, y, batch_size=cfg.batch_size, stream="batches")
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt}, phase=phase,
                          log_every=LOG_EVERY):
        xb, yb = batches.batch(step)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ctx.log(step, phase=phase, loss=loss.item())


def _relative_affine_residual(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """RMS residual of the least-squares affine fit outputs ~ inputs A + c, relative to the
    RMS of the centred outputs (0: exactly affine)."""
    design = torch.cat([inputs, torch.ones(len(inputs), 1, dtype=inputs.dtype)], dim=1)
    # gelsd (SVD) copes with the all-zero pixel columns of the digits; the default gelsy
    # returned a zero solution on this rank-deficient design.
    coef = torch.linalg.lstsq(design, outputs, driver="gelsd").solution
    residual = outputs - design @ coef
    return (residual.norm() / (outputs - outputs.mean(0)).norm()).item()


def run(cfg: Config, ctx) -> Result:
    images, labels = load_digits()
    perm = torch.randperm(len(images), generator=ctx.rng("split"))
    x = images.flatten(1)[perm]  # (1797, 64) float32
    y = labels[perm]
    x_train, y_train = x[: cfg.n_train], y[: cfg.n_train]
    x_test, y_test = x[cfg.n_train :], y[cfg.n_train :]
    sizes = [64, *cfg.hidden, 10]

    ctx.manual_seed("init")
    linear32 = MLP(sizes, activation=None)
    _train(ctx, linear32, x_train, y_train, cfg, "linear")
    with torch.no_grad():
        W32, b32 = compose_affine(linear32)
        deep32 = linear32(x_test)
        err32 = ((deep32 - (x_test @ W32.T + b32)).abs().max() / deep32.abs().max()).item()
        # the same trained weights in float64: only rounding separates the two sides
        linear = MLP(sizes, activation=None).double()
        linear.load_state_dict({k: v.double() for k, v in linear32.state_dict().items()})
        x_test = x_test.double()
        W, b = compose_affine(linear)
        deep = linear(x_test)
        flat = x_test @ W.T + b
        err64 = (deep - flat).abs().max().item()
        agree = (deep.argmax(1) == flat.argmax(1)).double().mean().item()
        acc_linear = (flat.argmax(1) == y_test).double().mean().item()
        linear_residual = _relative_affine_residual(x_test, deep)

    ctx.manual_seed("init")  # the same initial weights as the linear net
    relu = MLP(sizes, activation="relu")
    _train(ctx, relu, x_train, y_train, cfg, "relu")
    with torch.no_grad():
        relu_out = relu.double()(x_test)
        relu_residual = _relative_affine_residual(x_test, relu_out)
        acc_relu = (relu_out.argmax(1) == y_test).double().mean().item()
        design = torch.cat([x_test, torch.ones(len(x_test), 1, dtype=x_test.dtype)], 1)
        relu_affine = design @ torch.linalg.lstsq(design, relu_out, driver="gelsd").solution

    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(deep.flatten().numpy(), flat.flatten().numpy(), s=3)
    ax1.set(xlabel=f"{len(sizes) - 1}-layer linear MLP output", ylabel="collapsed $Wx+b$ output",
            title=f"identity activations: max |diff| = {err64:.1e}")
    ax2.scatter(relu_out.flatten().numpy(), relu_affine.flatten().numpy(), s=3, color="C1")
    ax2.set(xlabel=f"{len(sizes) - 1}-layer ReLU MLP output", ylabel="best affine fit",
            title=f"ReLU: relative residual {relu_residual:.2f}")
    for ax in (ax1, ax2):
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ctx.figure(fig, "linear_collapse")

    return Result(
        metrics={"max_abs_error_float64": err64, "max_rel_error_float32": err32,
                 "prediction_agreement": agree, "linear_test_accuracy": acc_linear,
                 "relu_test_accuracy": acc_relu, "linear_affine_residual": linear_residual,
                 "relu_affine_residual": relu_residual, "train_examples": float(len(x_train)),
                 "test_examples": float(len(x_test))},
        claims=[
            Claim("max_abs_error_float64", "The trained deep linear MLP and the single affine "
                  "map made of its weights give the same outputs (float64).", err64, "<",
                  MAX_ERR_FLOAT64),
            Claim("max_rel_error_float32", "The same holds in float32 up to rounding "
                  "(max error relative to the largest output).", err32, "<",
                  MAX_REL_ERR_FLOAT32, source="project"),
            Claim("relu_affine_residual", "With ReLU the same architecture is not affine: "
                  "the best affine fit leaves a relative residual.", relu_residual, ">",
                  MIN_RELU_AFFINE_RESIDUAL),
        ],
    )


EXPERIMENT = experiment(
    name="linear-collapse",
    sections=("2.2", "2.3"),
    claim="Without a non-linearity a deep MLP collapses to one affine map.",
    presets={"smoke": Config(hidden=(32, 32), steps=20),
             "quick": Config(),
             "full": Config(hidden=(256, 256, 256, 256), steps=2000)},
    run=run,
    quick_seconds=1.0,
    max_threads=1,
)

"""Minimizing cross-entropy over a categorical model reaches the maximum-likelihood estimate.

Notes sec. 1.1.1: maximizing the average log-likelihood ``1/m sum_i log q(x_i)`` is minimizing
the cross-entropy ``H(p^, q)`` between the empirical distribution ``p^`` of the data and the
model ``q``. For a categorical model with free logits, ``q = softmax(theta)``, the minimizer
is ``q = p^`` (the empirical frequencies, which is the MLE), because
``H(p^, q) = H(p^) + D(p^ || q)`` and ``D >= 0`` with equality only at ``q = p^``.

Data: the 17 grey levels (0..16) of every pixel of scikit-learn's 8x8 digits (115k pixel
values at the quick tier): a real, very non-uniform categorical distribution. The model is
trained by plain gradient descent on the average negative log-likelihood of the samples,
``1/m sum_i -log q(x_i)``, evaluated by grouping equal samples, ``-sum_k (n_k / m) log q_k``
(the same number; the per-sample form is recomputed at the end as a check). ``p^`` itself
only enters afterwards, to see where the model went.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from deepnotes import info
from deepnotes.data import load_digits
from deepnotes.experiments.base import Claim, Result, experiment

MAX_ABS_GAP = 1e-4  # |q - p^| per outcome: far below any frequency of the data (>= 1e-3)
MAX_KL_BITS = 1e-6  # D(p^ || q) in bits at the end
LEVELS = 17  # grey levels 0..16 of the digits
LOG_EVERY = 5


@dataclass(frozen=True)
class Config:
    n_images: int = 1797  # digits images whose pixels form the sample
    steps: int = 400
    lr: float = 5.0  # below 2 / lambda_max of the Hessian diag(q) - q q^T (<= 1/2 here)


class Categorical(nn.Module):
    """``q = softmax(theta)`` over K outcomes, theta initialized at random."""

    def __init__(self, k: int, generator: torch.Generator) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.randn(k, generator=generator, dtype=torch.float64))

    def log_q(self) -> torch.Tensor:
        return torch.log_softmax(self.theta, dim=0)  # (K,)


def run(cfg: Config, ctx) -> Result:
    images, _ = load_digits()
    x = (images[: cfg.n_images] * 16).round().long().flatten()  # (n_images * 64,) in 0..16
    counts = torch.bincount(x, minlength=LEVELS).double()  # n_k, (K,)
    p_hat = counts / x.numel()  # empirical frequencies

    model = Categorical(LEVELS, ctx.rng("init"))
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt},
                          log_every=LOG_EVERY):
        nll = -(counts * model.log_q()).sum() / x.numel()  # 1/m sum_i -log q(x_i), nats
        opt.zero_grad(set_to_none=True)
        nll.backward()
        opt.step()
        if ctx.due(step):
            with torch.no_grad():
                q = model.log_q().exp()
                ctx.log(step, loss=nll.item(), kl_bits=info.kl_divergence(p_hat, q).item(),
                        max_abs_gap=(q - p_hat).abs().max().item())

    with torch.no_grad():
        q = model.log_q().exp()
        gap = (q - p_hat).abs().max().item()
        kl = info.kl_divergence(p_hat, q).item()
        ce = info.cross_entropy(p_hat, q).item()
        h = info.entropy(p_hat).item()
        # the loss as a sum over the individual samples, to check the grouped form
        grouped = -(counts * model.log_q()).sum() / x.numel()
        per_sample_diff = abs((-model.log_q()[x].mean() - grouped).item())

    fig = Figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    grid = torch.arange(LEVELS).double()
    ax1.bar((grid - 0.2).numpy(), p_hat.numpy(), width=0.4, label="empirical $\\hat p$ (MLE)")
    ax1.bar((grid + 0.2).numpy(), q.numpy(), width=0.4, label="softmax($\\theta$) after GD")
    ax1.set(xlabel="grey level of a digits pixel", ylabel="probability", yscale="log",
            title="categorical model fitted by minimizing cross-entropy")
    ax1.legend()
    steps, kls = ctx.series("kl_bits")
    ax2.semilogy(steps, [max(v, 1e-18) for v in kls])
    ax2.axhline(MAX_KL_BITS, color="k", ls="--", lw=0.8, label="claim threshold")
    ax2.set(xlabel="gradient step", ylabel="$D(\\hat p\\,||\\,q)$ [bits] = CE - H",
            title="distance to the MLE")
    ax2.legend()
    ctx.figure(fig, "categorical_mle")

    return Result(
        metrics={"max_abs_gap": gap, "kl_bits": kl, "cross_entropy_bits": ce,
                 "entropy_bits": h, "images": float(min(cfg.n_images, len(images))),
                 "samples": float(x.numel()), "per_sample_vs_grouped_nll": per_sample_diff},
        claims=[
            Claim("max_abs_gap", "Gradient descent on the cross-entropy ends at the empirical "
                  "frequencies (max |q - p^| over the 17 outcomes).", gap, "<", MAX_ABS_GAP),
            Claim("kl_bits", "At the end the cross-entropy equals the entropy of the data "
                  "(D(p^ || q) in bits).", kl, "<", MAX_KL_BITS),
        ],
    )


EXPERIMENT = experiment(
    name="cross-entropy-mle",
    sections=("1.1",),
    claim="Minimizing cross-entropy over a categorical model reaches the maximum-likelihood "
          "estimate, the empirical frequencies.",
    presets={"smoke": Config(n_images=100, steps=60),
             "quick": Config(),
             "full": Config(steps=3000)},
    run=run,
    quick_seconds=4.0,
    max_threads=1,
)

"""The mini-batch gradient is an unbiased estimate of the full gradient (notes sec. 2.5.2).

For ``L = 1/N sum_i l_i`` and a batch ``B`` drawn uniformly without replacement,
``g_B = 1/|B| sum_{i in B} grad l_i`` has ``E[g_B] = grad L`` and

    E ||g_B - grad L||^2 = tr(Sigma) / |B| * (N - |B|) / (N - 1),

``Sigma`` the covariance of the per-example gradients: the variance falls like ``1/|B|`` (the
last factor, finite-population correction, is >= 0.93 for the sizes used here).

Measured on the 8x8 digits (N = 1797) with a 64-32-10 ReLU MLP at its initial weights, in
float64: every per-example gradient is computed once (``torch.func.vmap(grad)``, checked
against autograd of the full loss); for each batch size ``K`` random batches are drawn and
their gradients averaged exactly as the notes' formula says.

Claims (thresholds fixed here): the fitted slope of log variance against log batch size is
within 0.1 of -1; for every batch size the distance between the mean of the ``K`` batch
gradients and the full gradient is below 3 standard errors ``sqrt(E||g_B - grad L||^2 / K)``
(an unbiased estimator gives about 1; a bias would grow with ``sqrt(K)``).

Random streams: ``"init"`` (the weights), ``"draws"`` (index = batch-size number: the ``K``
batches of that size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch.func import functional_call, grad, vmap

from deepnotes.data import load_digits
from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.nn import MLP

SLOPE_TOLERANCE = 0.1  # |fitted slope - (-1)|
MAX_BIAS_IN_STD_ERRORS = 3.0  # ||mean_k g_B - grad L|| / sqrt(tr Cov(g_B) / K)


@dataclass(frozen=True)
class Config:
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    draws: int = 1000  # mini-batches per batch size (K)
    hidden: int = 32
    n_examples: int = 1797


def _per_example_gradients(model, x, y):
    """``(N, P)`` matrix of per-example gradients of the cross-entropy, in parameter order."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, xi, yi):
        logits = functional_call(model, p, (xi[None],))  # (1, C)
        return F.cross_entropy(logits, yi[None])

    per = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    return torch.cat([per[k].flatten(1) for k in params], dim=1)


def run(cfg: Config, ctx) -> Result:
    images, labels = load_digits()
    x = images.flatten(1).double()[: cfg.n_examples]
    y = labels[: cfg.n_examples]
    n = len(x)
    if max(cfg.batch_sizes) > n:
        raise ValueError(f"batch sizes up to {max(cfg.batch_sizes)} need >= that many examples")
    ctx.manual_seed("init")
    model = MLP([64, cfg.hidden, 10], activation="relu").double()

    G = _per_example_gradients(model, x, y)  # (N, P)
    full = G.mean(0)  # (P,): the notes' grad L
    autograd_full = torch.cat([g.flatten() for g in torch.autograd.grad(
        F.cross_entropy(model(x), y), list(model.parameters()))])
    check = ((full - autograd_full).abs().max() / autograd_full.abs().max()).item()
    trace_sigma = ((G - full) ** 2).sum(1).mean().item()  # tr Sigma (population)

    rows = []
    for i, b in enumerate(cfg.batch_sizes):
        k = cfg.draws
        idx = torch.multinomial(torch.ones(k, n, dtype=torch.float64), b,
                                generator=ctx.rng("draws", i))  # (K, b), without replacement
        # g_B = 1/b sum_{i in B} grad l_i for every draw at once: a sparse (K, N) average
        # matrix times the (N, P) per-example gradients.
        rows_idx = torch.arange(k).repeat_interleave(b)
        avg = torch.sparse_coo_tensor(torch.stack([rows_idx, idx.flatten()]),
                                      torch.full((k * b,), 1.0 / b, dtype=torch.float64),
                                      (k, n), check_invariants=True)
        g_b = torch.sparse.mm(avg, G)  # (K, P)
        mean = g_b.mean(0)
        variance = ((g_b - full) ** 2).sum(1).mean().item()  # E||g_B - grad L||^2
        bias = (mean - full).norm().item()
        std_error = math.sqrt(variance / k)
        theory = trace_sigma / b * (n - b) / (n - 1)
        rows.append({"b": b, "variance": variance, "theory": theory, "bias": bias,
                     "z": bias / std_error,
                     "along": g_b @ (full / full.norm())})  # component along grad L, (K,)
        ctx.log(i, phase="batch_size", batch_size=b, variance=variance, theory=theory,
                bias_in_std_errors=bias / std_error)

    log_b = torch.log(torch.tensor([r["b"] for r in rows], dtype=torch.float64))
    log_v = torch.log(torch.tensor([r["variance"] for r in rows], dtype=torch.float64))
    slope = (((log_b - log_b.mean()) * (log_v - log_v.mean())).sum()
             / ((log_b - log_b.mean()) ** 2).sum()).item()
    worst_z = max(r["z"] for r in rows)
    worst_theory = max(abs(r["variance"] / r["theory"] - 1) for r in rows)

    fig = Figure(figsize=(10.5, 4))
    ax1, ax2 = fig.subplots(1, 2)
    bs = [r["b"] for r in rows]
    ax1.loglog(bs, [r["variance"] for r in rows], "o", label="measured")
    ax1.loglog(bs, [r["theory"] for r in rows], "k--", lw=0.8,
               label="tr$\\Sigma$/B (N-B)/(N-1)")
    ax1.set(xlabel="batch size B", ylabel="E||g_B - grad L||^2",
            title=f"variance ~ B^{slope:.3f}")
    ax1.legend()
    for r in rows[:: max(1, len(rows) // 4)]:
        ax2.hist(r["along"].numpy(), bins=40, histtype="step", density=True,
                 label=f"B = {r['b']}")
    ax2.axvline(full.norm().item(), color="k", lw=1, label="||grad L||")
    ax2.set(xlabel="component of $g_B$ along grad L", ylabel="density",
            title=f"mini-batch estimates; worst bias = {worst_z:.2f} std. errors")
    ax2.legend(fontsize=8)
    ctx.figure(fig, "minibatch_gradient")

    metrics = {"variance_slope": slope, "worst_bias_in_std_errors": worst_z,
               "worst_relative_deviation_from_theory": worst_theory,
               "per_example_vs_autograd": check, "trace_sigma": trace_sigma,
               "parameters": float(G.shape[1]), "examples": float(n)}
    for r in rows:
        metrics[f"variance_b{r['b']}"] = r["variance"]
    return Result(
        metrics=metrics,
        claims=[
            Claim("variance_slope_error", "The variance of the mini-batch gradient falls like "
                  "1/B: |fitted log-log slope + 1|.", abs(slope + 1), "<=", SLOPE_TOLERANCE,
                  source="project"),
            Claim("bias_in_std_errors", "The mean of many mini-batch gradients equals the "
                  "full gradient within noise (worst distance over batch sizes, in standard "
                  "errors).", worst_z, "<", MAX_BIAS_IN_STD_ERRORS),
        ],
    )


EXPERIMENT = experiment(
    name="minibatch-gradient",
    sections=("2.5",),
    claim="The mini-batch gradient is an unbiased estimate of the full gradient, with "
          "variance falling like 1/batch size.",
    presets={"smoke": Config(batch_sizes=(1, 4, 16, 64), draws=100, n_examples=500),
             "quick": Config(),
             "full": Config(batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256), draws=10_000)},
    run=run,
    quick_seconds=2.0,
    max_threads=1,
)

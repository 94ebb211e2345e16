"""The Elman RNN's gradient by hand, two ways, against autograd, and what each costs (5.3).

For a tanh Elman RNN with a linear read-out and a squared error, the gradient of the loss
with respect to ``W_ih, W_hh, b`` is computed three times in float64: by autograd, by the
notes' forward-in-time recursion (real-time recurrent learning, :func:`deepnotes.recurrent.
rtrl`) and by reverse-mode back-propagation through time (:func:`deepnotes.recurrent.bptt`),
for sequence lengths ``T`` in ``lengths``. Their costs come from
:func:`deepnotes.recurrent.gradient_costs`, counted from the code (multiplications and the
numbers kept between steps): machine-independent, so they can be claimed; the wall times are
metrics only. The notes' remark "for large T this gets extremely long" is the reason BPTT is
the one everybody runs: its multiplications per step are about ``3H^2 + 2HD`` against RTRL's
``H^2 P``, at the price of storing ``T H`` states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.recurrent import ElmanParams, bptt, elman_forward, gradient_costs, rtrl
from deepnotes.recurrent.gradients import readout_squared_error

MAX_REL_DIFF = 1e-10  # float64 agreement with autograd
MIN_COST_RATIO = 10.0  # RTRL multiplications over BPTT's, at the smallest T


@dataclass(frozen=True)
class Config:
    hidden: int = 16
    inputs: int = 8
    outputs: int = 3
    lengths: tuple[int, ...] = (8, 16, 32, 64)


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-300)).item()


def measure(cfg: Config, ctx) -> dict[str, float]:
    H, D, O = cfg.hidden, cfg.inputs, cfg.outputs
    g = ctx.rng("network")
    params = ElmanParams(*(torch.randn(*shape, generator=g, dtype=torch.float64) * scale
                           for shape, scale in (((H, D), 0.5), ((H, H), 0.9 / H ** 0.5),
                                                ((H,), 0.1), ((H,), 0.1))))
    w_out = torch.randn(O, H, generator=g, dtype=torch.float64)
    b_out = torch.zeros(O, dtype=torch.float64)
    out: dict[str, float] = {}
    worst = 0.0
    for T in cfg.lengths:
        gen = ctx.rng("sequence", T)
        x = torch.randn(T, D, generator=gen, dtype=torch.float64)
        target = torch.randn(T, O, generator=gen, dtype=torch.float64)
        h_0 = torch.zeros(H, dtype=torch.float64)
        leaves = [p.clone().requires_grad_(True) for p in params]
        h = elman_forward(x, h_0, ElmanParams(*leaves))
        loss = readout_squared_error(h, w_out, b_out, target).loss
        reference = torch.autograd.grad(loss, leaves)
        grad_h = readout_squared_error(h.detach(), w_out, b_out, target).grad_h
        for name, method in (("rtrl", rtrl), ("bptt", bptt)):
            t0 = time.perf_counter()
            got = method(x, h_0, params, grad_h)
            out[f"{name}_seconds_T{T}"] = time.perf_counter() - t0
            diff = max(_relative(a, b) for a, b in zip(got[:4], reference, strict=True))
            out[f"{name}_rel_diff_T{T}"] = diff
            worst = max(worst, diff)
        costs = gradient_costs(T, H, D)
        out[f"rtrl_multiply_adds_T{T}"] = costs.rtrl.multiply_adds
        out[f"bptt_multiply_adds_T{T}"] = costs.bptt.multiply_adds
        out[f"rtrl_stored_T{T}"] = costs.rtrl.stored
        out[f"bptt_stored_T{T}"] = costs.bptt.stored
    out["max_rel_diff"] = worst
    first, last = cfg.lengths[0], cfg.lengths[-1]
    out["cost_ratio"] = out[f"rtrl_multiply_adds_T{first}"] / out[f"bptt_multiply_adds_T{first}"]
    out["rtrl_memory_growth"] = out[f"rtrl_stored_T{last}"] - out[f"rtrl_stored_T{first}"]
    out["bptt_memory_per_step"] = ((out[f"bptt_stored_T{last}"] - out[f"bptt_stored_T{first}"])
                                   / (last - first))
    return out


def plot(ctx, cfg: Config, m: dict[str, float]) -> None:
    fig = Figure(figsize=(10, 3.4))
    ax_time, ax_memory = fig.subplots(1, 2)
    for name, style in (("rtrl", "o-"), ("bptt", "s-")):
        ax_time.loglog(cfg.lengths, [m[f"{name}_multiply_adds_T{T}"] for T in cfg.lengths],
                       style, label=name.upper())
        ax_memory.plot(cfg.lengths, [m[f"{name}_stored_T{T}"] for T in cfg.lengths], style,
                       label=name.upper())
    ax_time.set(xlabel="sequence length T", ylabel="multiplications",
                title=f"cost of dL/dtheta (H={cfg.hidden}, D={cfg.inputs})")
    ax_memory.set(xlabel="sequence length T", ylabel="numbers kept between steps",
                  title="memory")
    ax_time.legend()
    ax_memory.legend()
    ctx.figure(fig, "gradient_costs")


def run(cfg: Config, ctx) -> Result:
    m = measure(cfg, ctx)
    plot(ctx, cfg, m)
    return Result(metrics=m, claims=[
        Claim("max_rel_diff", "The notes' forward recursion (RTRL) and reverse-mode BPTT both "
              "give autograd's gradient (max relative difference, float64, every T).",
              m["max_rel_diff"], "<=", MAX_REL_DIFF, source="project"),
        Claim("cost_ratio", "The forward recursion needs far more multiplications than BPTT "
              "(ratio at the shortest T; 'for large T this gets extremely long').",
              m["cost_ratio"], ">=", MIN_COST_RATIO),
        Claim("rtrl_memory_growth", "RTRL's memory does not grow with T (numbers kept, longest "
              "minus shortest T), BPTT's grows by H per step.", m["rtrl_memory_growth"], "<=",
              0, source="project"),
    ])


EXPERIMENT = experiment(
    name="bptt-by-hand",
    sections="5.3",
    claim="The Elman RNN's gradient derived by hand forward in time (the notes' recursion) and "
          "backward in time (BPTT) equals autograd's; BPTT costs far fewer operations.",
    presets={"smoke": Config(hidden=4, inputs=3, lengths=(3, 6)), "quick": Config(),
             "full": Config(hidden=32, lengths=(8, 16, 32, 64, 128))},
    run=run,
    quick_seconds=3.0,
    max_threads=1,
)

"""One-to-many (notes 5.2.1): one input at t = 0, a sequence out.

An Elman RNN (tanh, torch's fused ``nn.RNN``) reads an integer ``n`` in ``0..255`` once, as a
one-hot vector at ``t = 0`` (zeros at ``t = 1..7``), and emits at every step ``t`` one logit
for the binary digit ``t`` of ``n``, most significant first::

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh),   x_0 = onehot(n), x_{t>0} = 0,
    p(digit_t = 1) = sigmoid(w_o . h_t + b_o),           t = 0..7.

After ``t = 0`` the network runs on its own state: the whole sequence is decoded from what the
first step wrote into ``h``. It is trained (Adam, binary cross-entropy, all 256 integers in every
step) and scored on all 256 integers. Held-out integers would test nothing: with a one-hot input
the column of ``W_ih`` of an integer never seen gets no gradient, so its code stays at the
initialization; the task is decoding a fixed code into a sequence, not generalization.

The other two architectures of 5.2.1: ``char-lm`` is many-to-many (a prediction at every input
position); the adding-problem experiment is many-to-one (one output after the whole sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from deepnotes.experiments.base import Claim, Result, experiment

BITS = 8
# Share of 0..255 with all 8 digits right (chance: 1/256). Smoke: 30 steps, well above chance.
MIN_SEQUENCE_ACCURACY = {"smoke": 0.95, "quick": 0.95, "full": 0.99}  # smoke: a shape check


@dataclass(frozen=True)
class Config:
    hidden: int = 64
    steps: int = 300
    lr: float = 1e-2
    threads: int = 0


def binary_digits_task(bits: int = BITS) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs ``(2^bits, bits, 2^bits)``: the one-hot of ``n`` at ``t = 0``, zeros after; targets
    ``(2^bits, bits)``: the binary digits of ``n``, most significant first."""
    n = torch.arange(2 ** bits)
    x = torch.zeros(2 ** bits, bits, 2 ** bits)  # (N, T, N)
    x[:, 0] = torch.eye(2 ** bits)
    shifts = torch.arange(bits - 1, -1, -1)  # MSB first
    digits = (n.unsqueeze(1) >> shifts) & 1  # (N, T)
    return x, digits.float()


class OneToMany(nn.Module):
    """Elman RNN + per-step linear readout to one digit logit: ``(N, T, D) -> (N, T)``."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size, nonlinearity="tanh", batch_first=True)
        self.readout = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(x)  # (N, T, H)
        return self.readout(h).squeeze(-1)  # (N, T)


# ----------------------------------------------------------------------------- measure
def train(cfg: Config, ctx, x: torch.Tensor, y: torch.Tensor) -> OneToMany:
    ctx.manual_seed("init")
    model = OneToMany(x.shape[-1], cfg.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt}, log_every=10):
        loss = nn.functional.binary_cross_entropy_with_logits(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.log(step, loss=loss.item())
    return model


@torch.no_grad()
def score(model: OneToMany, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    correct = (model(x) > 0).float() == y  # (N, T)
    return {"sequence_accuracy": float(correct.all(1).float().mean()),
            "digit_accuracy": float(correct.float().mean()),
            **{f"digit{t}_accuracy": float(correct[:, t].float().mean())
               for t in range(y.shape[1])}}


# ----------------------------------------------------------------------------- plot
def plot(ctx, scores: dict[str, float]) -> None:
    fig = Figure(figsize=(9, 3.2))
    loss_ax, digit_ax = fig.subplots(1, 2)
    loss_ax.semilogy(*ctx.series("loss"))
    loss_ax.set(xlabel="step", ylabel="binary cross-entropy", title="training (all 256)")
    digit_ax.bar(range(BITS), [scores[f"digit{t}_accuracy"] for t in range(BITS)])
    digit_ax.set(xlabel="output step t (digit, MSB first)", ylabel="accuracy", ylim=(0, 1.02),
                 title=f"sequence accuracy {scores['sequence_accuracy']:.3f}")
    ctx.figure(fig, "one_to_many")


def run(cfg: Config, ctx) -> Result:
    x, y = binary_digits_task()
    model = train(cfg, ctx, x, y)
    scores = score(model, x, y)
    plot(ctx, scores)
    target = MIN_SEQUENCE_ACCURACY[ctx.tier]
    return Result(metrics=scores, claims=[
        Claim("sequence_accuracy", f"From one one-hot input at t = 0 the Elman RNN emits all "
              f"8 binary digits of the integer right for at least {target:.0%} of 0..255.",
              scores["sequence_accuracy"], ">=", target, source="project")])


EXPERIMENT = experiment(
    name="one-to-many",
    sections=("5.2.1", "5.2"),
    claim="One-to-many: an Elman RNN given an integer once, at t = 0, emits its 8 binary digits "
          "as a sequence (all right for >= 95% of 0..255 at the quick tier).",
    presets={
        "smoke": Config(hidden=32, steps=30, threads=1),
        "quick": Config(),
        "full": Config(hidden=128, steps=1000),
    },
    run=run,
    quick_seconds=2.0,  # measured 1.2 s (2 threads, load average ~2.6)
    max_threads=2,
)

"""Long-range memory: the adding problem at growing lags for the Elman RNN, LSTM and GRU
(notes 5.2, 5.4, 5.4.1, 5.4.2).

The many-to-one architecture of 5.2.1: a recurrent layer reads a sequence of T steps, each
step a value u_t ~ U[0, 1) and a marker m_t (1 at one step in each half, else 0), and a
linear head reads the prediction from the last hidden state, y_hat = w^T h_T + b. The target
is the sum of the two marked values (:func:`deepnotes.data.sequences.adding_problem`), so
the first marked value must survive up to T steps. 5.4 says why that is hard for the Elman
RNN (the gradient is a product of T - t Jacobians and vanishes) and 5.4.1 / 5.4.2 introduce
the LSTM and GRU to keep it alive.

Fixed before the run:

* trivial baseline: predict the mean 1.0 whatever the input, MSE = Var(U + V) = 1/6 ≈ 0.167
  (measured on the validation set as ``baseline_mse``);
* "solves": validation MSE below :data:`SOLVED_MSE` = 0.01, under 1/16 of the baseline;
* "stays at the baseline": validation MSE at least :data:`BASELINE_FRACTION` = 0.5 of 1/6;
* claims: LSTM and GRU solve the task at every lag; the Elman RNN stays at the baseline at
  the longest lag.

Protocol, the same for the three models: torch's fused ``nn.RNN`` (tanh) / ``nn.LSTM`` /
``nn.GRU``, hidden sizes 66 / 32 / 37 so the parameter counts are near equal (4,687 / 4,641 /
4,589 with the head), Adam at each learning rate of :data:`LEARNING_RATES` (fixed grid),
gradient clipping at norm 1, batches of fresh sequences per step from stream
``("adding", step)`` (the same sequences for every model and rate at a given lag), a fixed
validation set of :data:`VAL_SIZE` sequences per lag from stream ``("adding-validation",
lag)``. Each (model, lag, rate) trains at most ``steps`` steps; at step 0, at every
``check_every``-th step and at the last the validation MSE is measured, and the phase ends
once it is below :data:`SOLVED_MSE` (the budget is a maximum: a model that has solved the
task does not need the rest). The best rate per model and lag is the one with the lowest
final validation MSE.

Quick tier: lags 20, 40, 80, at most 800 steps of 64 sequences per phase, 18 phases, about
55 s on 2 cores (the GRU is the slow one per step: torch has no fused CPU kernel for
it, so it runs about 3x slower than the LSTM).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from matplotlib.figure import Figure
from torch import nn

from deepnotes.data.sequences import adding_problem
from deepnotes.experiments.base import Claim, Result, experiment

BASELINE_MSE = 1.0 / 6.0  # predict 1.0: Var(U + V) for two independent U[0, 1)
SOLVED_MSE = 0.01
BASELINE_FRACTION = 0.5
LEARNING_RATES = (3e-3, 1e-2)  # Adam; the grid is fixed before running
CLIP_NORM = 1.0
VAL_SIZE = 1000
# Var((S - 1)^2) for S = U + V triangular on [0, 2]: E[X^4] - E[X^2]^2 = 1/15 - 1/36.
BASELINE_SD = math.sqrt(1 / 15 - 1 / 36) / math.sqrt(VAL_SIZE)
KINDS = ("rnn", "lstm", "gru")
LAYERS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
HIDDEN = {"rnn": 66, "lstm": 32, "gru": 37}  # near-equal parameter counts (~4.6k)
LABELS = {"rnn": "Elman (tanh)", "lstm": "LSTM", "gru": "GRU"}


@dataclass(frozen=True)
class Config:
    lags: tuple[int, ...] = (20, 40, 80)  # sequence lengths T, growing
    steps: int = 800  # the most steps per (model, lag, learning rate)
    batch_size: int = 64
    check_every: int = 100  # validation MSE (and the solved test) at every check_every-th step


class ManyToOne(nn.Module):
    """A recurrent layer read once at the end: y_hat = w^T h_T + b (5.2.1, many-to-one).

    Args:
        kind: ``"rnn"`` (Elman, tanh), ``"lstm"`` or ``"gru"``.
        hidden_size: width of h_t.
    """

    def __init__(self, kind: str, hidden_size: int, input_size: int = 2) -> None:
        super().__init__()
        if kind not in LAYERS:
            raise ValueError(f"kind must be one of {list(LAYERS)}, got {kind!r}")
        self.rnn = LAYERS[kind](input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # (B, T, H)
        return self.head(out[:, -1])  # (B, 1): read from h_T only


def validation_mse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return nn.functional.mse_loss(model(x), y).item()


# ----------------------------------------------------------------------------- measure
def train_one(ctx, cfg: Config, kind: str, lag: int, lr: float,
              x_val: torch.Tensor, y_val: torch.Tensor) -> tuple[float, int]:
    """Train one model at one lag and rate; return (final validation MSE, steps used)."""
    ctx.manual_seed(f"init-{kind}")  # the same initial weights at every lag and rate
    model = ManyToOne(kind, HIDDEN[kind])
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    phase = f"{kind}-T{lag}-lr{lr:.0e}"  # e.g. "lstm-T40-lr1e-02"
    state = {"steps_used": cfg.steps, "val_mse": float("nan")}
    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": optimizer},
                          phase=phase, state=state, log_every=cfg.check_every):
        x, y = adding_problem(cfg.batch_size, lag, ctx.rng("adding", step))  # (B, T, 2), (B, 1)
        loss = nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), CLIP_NORM)
        optimizer.step()
        if ctx.due(step, phase):  # steps 0, check_every, 2 check_every, ... and the last
            with ctx.untimed():
                mse = validation_mse(model, x_val, y_val)
            ctx.log(step, phase=phase, loss=loss.item(), val_mse=mse)
            if mse < SOLVED_MSE:
                state["steps_used"] = step + 1
                ctx.end_phase()
        else:
            ctx.log(step, phase=phase, loss=loss.item())
    return validation_mse(model, x_val, y_val), int(state["steps_used"])


def measure(ctx, cfg: Config) -> dict[str, float]:
    metrics: dict[str, float] = {}
    baselines = []
    for kind in KINDS:
        metrics[f"{kind}_parameters"] = sum(
            p.numel() for p in ManyToOne(kind, HIDDEN[kind]).parameters())
    for lag in cfg.lags:
        x_val, y_val = adding_problem(VAL_SIZE, lag, ctx.rng("adding-validation", lag))
        baselines.append(nn.functional.mse_loss(torch.ones_like(y_val), y_val).item())
        for kind in KINDS:
            runs = {lr: train_one(ctx, cfg, kind, lag, lr, x_val, y_val)
                    for lr in LEARNING_RATES}
            best = min(LEARNING_RATES, key=lambda lr: runs[lr][0])
            metrics[f"{kind}_T{lag}_val_mse"] = runs[best][0]
            metrics[f"{kind}_T{lag}_lr"] = best
            metrics[f"{kind}_T{lag}_steps"] = runs[best][1]
    metrics["baseline_mse"] = baselines[0]  # predict 1.0, on the first lag's validation set
    return metrics


# ----------------------------------------------------------------------------- plot
def plot(metrics: dict[str, float], lags: tuple[int, ...]) -> Figure:
    fig = Figure(figsize=(5.2, 3.4))
    ax = fig.subplots()
    for kind, marker in zip(KINDS, "osd", strict=True):
        ax.plot(lags, [metrics[f"{kind}_T{lag}_val_mse"] for lag in lags], marker=marker,
                label=f"{LABELS[kind]} ({int(metrics[f'{kind}_parameters'])} params)")
    ax.axhline(BASELINE_MSE, color="k", ls=":", label="predict 1.0: MSE 1/6")
    ax.axhline(SOLVED_MSE, color="gray", ls="--", lw=1, label=f"solved: MSE < {SOLVED_MSE}")
    ax.set(xlabel="sequence length T (lag up to T)", ylabel="validation MSE", yscale="log",
           xticks=list(lags), title="adding problem (best rate; a run stops once solved)")
    ax.legend(fontsize=7)
    return fig


# ----------------------------------------------------------------------------- claims
def claims(metrics: dict[str, float], lags: tuple[int, ...]) -> list[Claim]:
    found = [Claim("baseline_mse_sampling_error",
                   "Predicting 1.0 on the validation set scores MSE 1/6 within four standard "
                   "errors (|baseline - 1/6|).",
                   abs(metrics["baseline_mse"] - BASELINE_MSE), "<=", 4 * BASELINE_SD,
                   source="project")]
    for kind in ("lstm", "gru"):
        for lag in lags:
            found.append(Claim(
                f"{kind}_solves_T{lag}",
                f"The {LABELS[kind]} solves the adding problem at T = {lag}: validation MSE "
                f"below {SOLVED_MSE} (the baseline is 1/6).",
                metrics[f"{kind}_T{lag}_val_mse"], "<", SOLVED_MSE))
    longest = max(lags)
    found.append(Claim(
        f"rnn_at_baseline_T{longest}",
        f"At T = {longest} the Elman RNN, with the same budget and rate search, stays at the "
        f"trivial baseline: validation MSE at least {BASELINE_FRACTION} x 1/6.",
        metrics[f"rnn_T{longest}_val_mse"], ">=", BASELINE_FRACTION * BASELINE_MSE))
    return found


def run(cfg: Config, ctx) -> Result:
    if not cfg.lags or any(lag < 2 for lag in cfg.lags):
        raise ValueError(f"lags must be sequence lengths >= 2, got {cfg.lags}")
    metrics = measure(ctx, cfg)
    ctx.figure(plot(metrics, cfg.lags), "mse_against_lag")
    return Result(metrics=metrics, claims=claims(metrics, cfg.lags))


EXPERIMENT = experiment(
    name="long-range-memory",
    sections=("5.2", "5.4", "5.4.1", "5.4.2"),
    claim="On the adding problem at growing lags, LSTM and GRU solve the task (validation MSE "
          "< 0.01) while the Elman RNN, with the same parameters, steps and learning-rate "
          "search, stays at the trivial baseline MSE 1/6 at the longest lag.",
    presets={
        "smoke": Config(lags=(4, 8), steps=30, batch_size=16, check_every=10),
        "quick": Config(),
        "full": Config(lags=(25, 50, 100, 200), steps=3000, check_every=200),
    },
    run=run,
    quick_seconds=55.0,
    flagship=True,
    max_threads=2,
)

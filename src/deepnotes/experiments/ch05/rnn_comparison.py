"""Gated cells model text better than the Elman RNN at the same size and budget (notes 5.4).

Elman (tanh), LSTM and GRU character models on the Shakespeare plays
(:mod:`deepnotes.zoo.char_lm`), at equal parameter count (the LSTM's width sets the count,
the others' widths are solved for it), the same truncated-BPTT recipe and number of steps,
and the same learning-rate search: every model is trained at every rate of ``LR_GRID`` and
keeps its best by ``val_loss`` on the first half of the validation split. The claims compare
``val_loss`` on the second half, which no choice has seen. The grid, the budget and the split
were fixed before the first run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from matplotlib.figure import Figure

from deepnotes.experiments.base import Claim, Result, experiment
from deepnotes.zoo import char_lm

LR_GRID = (2e-3, 6e-3)
CELLS = ("rnn", "lstm", "gru")


@dataclass(frozen=True)
class Config(char_lm.Recipe):
    hidden: int = 192  # the LSTM's width; it sets the parameter count
    embed: int = 32
    batch_size: int = 64
    steps: int = 300
    corpus: str = "shakespeare"
    val_chars: int = 0  # 0: the whole validation split


def run(cfg: Config, ctx) -> Result:
    vocab, train_ids, val_ids = char_lm.corpus_splits(cfg.corpus, cfg.val_chars)
    select, held_out = val_ids[:len(val_ids) // 2], val_ids[len(val_ids) // 2:]
    target = char_lm.parameter_count("lstm", len(vocab), cfg.embed, cfg.hidden)
    metrics: dict[str, float] = {"lstm_target_parameters": target}
    search: dict[str, list[float]] = {}
    for cell in CELLS:
        hidden = char_lm.hidden_for(cell, target, len(vocab), cfg.embed)
        metrics[f"{cell}_hidden"] = hidden
        metrics[f"{cell}_parameters"] = char_lm.parameter_count(cell, len(vocab), cfg.embed,
                                                                 hidden)
        best = None
        search[cell] = []
        for i, lr in enumerate(LR_GRID):
            recipe = dataclasses.replace(cfg, cell=cell, hidden=hidden, lr=lr)
            model = char_lm.train(ctx, recipe, len(vocab), train_ids, phase=f"{cell}-lr{i}")
            loss = char_lm.val_loss(model, select, bf16=cfg.bf16)
            search[cell].append(loss)
            if best is None or loss < best[0]:
                best = (loss, lr, model)
        metrics[f"{cell}_best_lr"] = best[1]
        metrics[f"{cell}_val_loss"] = char_lm.val_loss(best[2], held_out, bf16=cfg.bf16)
    plot(ctx, search)
    return Result(metrics=metrics, claims=[
        Claim(f"{cell}_minus_rnn", f"At {target} parameters and the same budget and search, "
              f"the {cell.upper()} reaches a lower val_loss than the Elman RNN (difference, "
              f"nats per character, on held-out validation text).",
              metrics[f"{cell}_val_loss"] - metrics["rnn_val_loss"], "<", 0.0)
        for cell in ("lstm", "gru")])


def plot(ctx, search: dict[str, list[float]]) -> None:
    fig = Figure(figsize=(9, 3.4))
    ax_curves, ax_search = fig.subplots(1, 2)
    for cell in CELLS:
        best = min(range(len(LR_GRID)), key=lambda i: search[cell][i])
        ax_curves.plot(*ctx.series("loss", phase=f"{cell}-lr{best}"), lw=1, label=cell)
        ax_search.plot(LR_GRID, search[cell], "o-", label=cell)
    ax_curves.set(xlabel="step", ylabel="training chunk loss (nats/char)",
                  title="best learning rate of each cell")
    ax_search.set(xscale="log", xlabel="learning rate", ylabel="val_loss (selection half)",
                  title="the same search for every cell")
    ax_curves.legend()
    ax_search.legend()
    ctx.figure(fig, "rnn_comparison")


EXPERIMENT = experiment(
    name="rnn-comparison",
    sections=("5.2", "5.4.1", "5.4.2"),
    claim="At equal parameter count, steps and learning-rate search, LSTM and GRU character "
          "models reach a lower validation loss than the Elman RNN.",
    presets={
        "smoke": Config(hidden=32, embed=8, batch_size=8, seq_len=16, steps=12,
                        val_chars=3000),
        "quick": Config(),
        "full": Config(hidden=512, embed=64, batch_size=128, steps=3000),
    },
    run=run,
    quick_seconds=60.0,
    flagship=True,
)

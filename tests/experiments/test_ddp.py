"""Two CPU processes (DDP over gloo): the ranks see different shards of every batch, and a
NaN loss on one rank stops both cleanly with the run's NonFiniteLoss."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from matplotlib.figure import Figure

from deepnotes.engine.run import NonFiniteLoss
from deepnotes.experiments.base import Claim, Experiment, Result
from deepnotes.experiments.runner import run_experiment


@dataclass(frozen=True)
class Config:
    steps: int = 6
    nan_rank: int = -1  # the rank whose loss becomes NaN at step 3 (-1: none)


def run_shards(cfg: Config, ctx) -> Result:
    fabric = ctx.fabric
    batches = ctx.batches(torch.arange(64), batch_size=8)
    model = fabric.setup_module(torch.nn.Linear(1, 1))
    overlaps, covered = 0, 0
    for step in ctx.steps(cfg.steps, track={"model": model}):
        (idx,) = batches.batch(step)
        loss = model(idx.float()[:, None]).pow(2).mean()
        if fabric.global_rank == cfg.nan_rank and step == 3:
            loss = loss * float("nan")
        fabric.backward(loss)
        ctx.log(step, loss=loss.item())
        gathered = fabric.all_gather(idx)  # (world, per-rank batch)
        mine, other = set(gathered[0].tolist()), set(gathered[1].tolist())
        overlaps += len(mine & other)
        covered += len(mine | other)
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1])
    ctx.figure(fig, "nothing")
    return Result(metrics={"overlaps": overlaps, "covered": covered},
                  claims=[Claim("overlaps", "Ranks never share an example of a batch.",
                                overlaps, "<=", 0, source="project")])


SHARDS = Experiment(name="ddp-shards", sections=("9.3",), claim="shards", config=Config,
                    presets={t: Config() for t in ("smoke", "quick", "full")}, run=run_shards,
                    module=__name__, test=__file__)


def test_ranks_see_disjoint_shards_that_cover_each_batch(tmp_path):
    _, summary = run_experiment(SHARDS, tier="smoke", out=tmp_path, devices=2,
                                accelerator="cpu")
    assert summary["metrics"]["overlaps"] == 0
    assert summary["metrics"]["covered"] == 6 * 8  # every example of every global batch


@pytest.mark.parametrize("rank", [0, 1])
def test_nan_on_one_rank_stops_every_rank(tmp_path, rank):
    with pytest.raises(NonFiniteLoss, match=rf"NaN/Inf loss on rank\(s\) \[{rank}\] at step 3"):
        run_experiment(SHARDS, tier="smoke", out=tmp_path, devices=2, accelerator="cpu",
                       overrides=[f"nan_rank={rank}"])

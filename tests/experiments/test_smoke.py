"""Every registered experiment at the smoke tier: a well-formed summary, saved as written,
with claims that can be read, figures that were drawn, and the data it read recorded by the
loaders. Chapter test modules check what each experiment's claims say; this module checks
what all of them share."""

from __future__ import annotations

import json
import math

import pytest

from deepnotes.experiments.base import SOURCES, TIERS
from deepnotes.experiments.registry import REGISTRY


def check_summary_shape(summary: dict) -> None:
    """The exact shape later tooling reads."""
    assert set(summary) == {"experiment", "sections", "tier", "seed", "overrides", "data",
                            "artifacts", "metrics", "claims", "samples", "wall_seconds"}
    assert isinstance(summary["experiment"], str) and summary["tier"] in TIERS
    assert all(isinstance(s, str) for s in summary["sections"]) and summary["sections"]
    assert isinstance(summary["seed"], int) and isinstance(summary["overrides"], list)
    for record in summary["data"]:
        assert set(record) == {"name", "split", "size", "subset", "substitute", "path",
                               "sha256"}, record
        assert record["size"] > 0
    for record in summary["artifacts"]:
        assert set(record) == {"name", "tier", "sha256"} and len(record["sha256"]) == 64
    assert summary["metrics"] and all(isinstance(k, str) and isinstance(v, float)
                                      for k, v in summary["metrics"].items())
    assert summary["claims"], "every experiment checks at least one claim"
    for c in summary["claims"]:
        assert set(c) == {"name", "statement", "value", "op", "threshold", "holds", "source"}
        assert c["op"] in ("<", "<=", ">", ">=") and isinstance(c["holds"], bool)
        assert c["source"] in SOURCES
        assert not math.isnan(c["value"]), c
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in summary["samples"].items())
    assert isinstance(summary["wall_seconds"], int | float)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_smoke_run_is_well_formed(name, smoke_runs):
    run_dir, summary = smoke_runs(name)
    check_summary_shape(summary)
    assert summary["experiment"] == name and summary["tier"] == "smoke"
    assert summary["overrides"] == []
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    figures = list((run_dir / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 5000 for f in figures), figures
    exp = REGISTRY[name]
    assert sorted({a["name"] for a in summary["artifacts"]}) == sorted(exp.requires)
    if list((run_dir / "checkpoints").glob("*.ckpt")):  # it trained in ctx.steps loops
        assert summary["metrics"]["train_seconds"] > 0

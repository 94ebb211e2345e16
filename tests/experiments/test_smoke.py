"""Every registered experiment at the smoke tier: a well-formed summary, saved as written,
with claims that can be read and figures that were drawn. Chapter test modules check what
each experiment's claims say; this module checks what all of them share."""

from __future__ import annotations

import json
import math

import pytest

from deepnotes.experiments.base import TIERS
from deepnotes.experiments.registry import REGISTRY


def check_summary_shape(summary: dict) -> None:
    """The exact shape later tooling reads (issue 2)."""
    assert set(summary) == {"experiment", "sections", "tier", "seed", "data", "metrics",
                            "claims", "wall_seconds"}
    assert isinstance(summary["experiment"], str) and summary["tier"] in TIERS
    assert all(isinstance(s, str) for s in summary["sections"]) and summary["sections"]
    assert isinstance(summary["seed"], int) and isinstance(summary["data"], dict)
    assert summary["metrics"] and all(isinstance(k, str) and isinstance(v, float)
                                      for k, v in summary["metrics"].items())
    assert summary["claims"], "every experiment checks at least one claim"
    for c in summary["claims"]:
        assert set(c) == {"name", "statement", "value", "op", "threshold", "holds"}
        assert c["op"] in ("<", "<=", ">", ">=") and isinstance(c["holds"], bool)
        assert not math.isnan(c["value"]), c
    assert isinstance(summary["wall_seconds"], int | float)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_smoke_run_is_well_formed(name, smoke_runs):
    run_dir, summary = smoke_runs(name)
    check_summary_shape(summary)
    assert summary["experiment"] == name and summary["tier"] == "smoke"
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    figures = list((run_dir / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 5000 for f in figures), figures

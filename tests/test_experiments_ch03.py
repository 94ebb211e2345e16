"""Chapter 3 experiments at smoke tier: summary shape, figures, and the exact claims."""

from __future__ import annotations

import json

import pytest

from deepnotes.experiments import ch03
from deepnotes.experiments.registry import REGISTRY
from deepnotes.experiments.runner import run_experiment

NAMES = [exp.name for exp in ch03.EXPERIMENTS]


def test_chapter_3_registered():
    assert NAMES == ["universal-approximation", "sawtooth-pieces", "depth-separation",
                     "three-neuron-training"]
    for name in NAMES:
        exp = REGISTRY[name]
        assert exp.test == "tests/test_experiments_ch03.py"
        assert all(s.startswith("3.") for s in exp.sections)


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_summary(name, tmp_path):
    run_dir, summary = run_experiment(name, tier="smoke", out=tmp_path)
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert set(summary) == {"experiment", "sections", "tier", "seed", "data", "metrics",
                            "claims", "wall_seconds"}
    assert summary["experiment"] == name and summary["tier"] == "smoke"
    assert summary["claims"] and all(
        set(c) == {"name", "statement", "value", "op", "threshold", "holds"}
        and isinstance(c["holds"], bool) for c in summary["claims"])
    assert all(isinstance(v, float) for v in summary["metrics"].values())
    assert list((run_dir / "figures").glob("*.png"))
    claims = {c["name"]: c for c in summary["claims"]}
    if name == "sawtooth-pieces":  # exact arithmetic: the claims hold at every tier
        assert all(c["holds"] for c in summary["claims"])
        assert summary["metrics"]["pieces_T3"] == 18.0
    if name == "three-neuron-training":
        assert "does not prove" in summary["data"]["note"]
        assert "does not prove" in claims["runtime_log2_slope"]["statement"]
        assert claims["known_answers_wrong"]["holds"]
        assert claims["brute_force_disagreements"]["holds"]
    if name == "depth-separation":
        assert claims["lower_bound_respected"]["holds"]  # a theorem: holds at any tier
        assert claims["deep_net_exact"]["holds"]
    if name == "universal-approximation":
        assert claims["staircase_within_L_over_N"]["holds"]
        assert claims["relu_difference_sigmoidal"]["holds"]

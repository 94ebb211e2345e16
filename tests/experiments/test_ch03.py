"""Chapter 3 experiments at the smoke tier: the claims that are exact hold at any budget.

Summary shape and figures of every experiment: ``test_experiments_smoke.py``.
"""

from __future__ import annotations

import pytest

from deepnotes.experiments import ch03
from deepnotes.experiments.registry import REGISTRY

NAMES = [exp.name for exp in ch03.EXPERIMENTS]


def test_chapter_3_registered():
    assert NAMES == ["universal-approximation", "sawtooth-pieces", "depth-separation",
                     "three-neuron-training"]
    for name in NAMES:
        exp = REGISTRY[name]
        assert exp.test == "tests/test_experiments_ch03.py"
        assert all(s.startswith("3.") for s in exp.sections)


@pytest.mark.parametrize("name", NAMES)
def test_exact_claims_hold_already_at_smoke(name, smoke_runs):
    """Theorems and exact constructions hold at any budget (shape: test_experiments_smoke)."""
    _, summary = smoke_runs(name)
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

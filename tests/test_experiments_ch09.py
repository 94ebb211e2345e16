"""Chapter-9 experiments at the smoke tier: well-formed summaries, figures, exact resume."""

from __future__ import annotations

import json
import math

import pytest

from deepnotes.data.images import fashion_mnist_source
from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments import ch09
from deepnotes.experiments.runner import resume_experiment, run_experiment

NEEDS_FASHION = {"optimizer-race", "sharp-flat-minima", "iterate-averaging"}
NAMES = [exp.name for exp in ch09.EXPERIMENTS]


def _skip_without_data(name: str) -> None:
    if name in NEEDS_FASHION and fashion_mnist_source() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def test_registered_in_chapter_order_with_chapter_9_sections():
    assert len(NAMES) == len(set(NAMES)) == 5
    for exp in ch09.EXPERIMENTS:
        assert all(s.startswith("9") for s in exp.sections)
        assert exp.test == "tests/test_experiments_ch09.py"


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_summary_and_figures(name, smoke_runs):
    _skip_without_data(name)
    run_dir, summary = smoke_runs(name)
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    assert summary["experiment"] == name and summary["tier"] == "smoke"
    assert summary["metrics"] and all(isinstance(v, float) for v in summary["metrics"].values())
    assert summary["claims"]
    for claim in summary["claims"]:
        assert set(claim) == {"name", "statement", "value", "op", "threshold", "holds"}
        assert isinstance(claim["holds"], bool) and not math.isnan(claim["value"])
    assert summary["data"].get("name")
    figures = list((run_dir / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 5000 for f in figures)


def test_quadratic_race_claim_holds_already_at_smoke(smoke_runs):
    """Heavy-ball momentum on kappa = 100 is ~sqrt(kappa) faster; 100 steps suffice to see it."""
    _skip_without_data("optimizer-race")
    _, summary = smoke_runs("optimizer-race")
    claim = next(c for c in summary["claims"] if c["name"] == "quadratic_momentum_over_sgd")
    assert claim["holds"] and claim["value"] < 0.5


def test_sgd_temperature_claims_hold_at_smoke(smoke_runs):
    _, summary = smoke_runs("sgd-noise-temperature")
    assert all(c["holds"] for c in summary["claims"])


def test_iterate_averaging_resumes_exactly(smoke_runs, tmp_path):
    """Interrupt mid-run (AveragedSGD state in the checkpoint), resume: identical summary."""
    _skip_without_data("iterate-averaging")
    _, reference = smoke_runs("iterate-averaging")
    with pytest.raises(RunInterrupted):
        run_experiment("iterate-averaging", tier="smoke", out=tmp_path, stop_at_step=120)
    run_dir = next((tmp_path / "iterate-averaging").iterdir())
    _, resumed = resume_experiment(run_dir)
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["claims"] == reference["claims"]

"""Chapter 1-2 experiments at the smoke tier: well-formed summaries, figures, exact resume."""

from __future__ import annotations

import json
import math

import pytest

from deepnotes.data.images import fashion_mnist_source
from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments import ch01, ch02
from deepnotes.experiments.runner import resume_experiment, run_experiment

MINE = [*ch01.EXPERIMENTS, *[e for e in ch02.EXPERIMENTS if e.name != "mlp-fashion"]]
NAMES = [exp.name for exp in MINE]
NEEDS_FASHION = {"regularization"}


def _skip_without_data(name: str) -> None:
    if name in NEEDS_FASHION and fashion_mnist_source() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")


def test_registered_with_chapter_1_and_2_sections():
    assert NAMES == ["cross-entropy-mle", "perceptron", "linear-collapse", "manual-backprop",
                     "minibatch-gradient", "standardization", "regularization"]
    for exp in MINE:
        chapter = "1" if exp in ch01.EXPERIMENTS else "2"
        assert all(s.split(".")[0] == chapter for s in exp.sections)
        assert exp.test == "tests/test_experiments_ch01_02.py"


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


@pytest.mark.parametrize("name, claims", [
    ("perceptron", ["separable_converged", "updates_over_novikoff_bound", "xor_converged"]),
    ("linear-collapse", ["max_abs_error_float64", "max_rel_error_float32"]),
    ("manual-backprop", ["max_rel_diff_vs_autograd", "symmetric_gradient_spread"]),
])
def test_exact_claims_hold_already_at_smoke(name, claims, smoke_runs):
    """Claims that are exact statements (not statistics of training) hold at any budget."""
    _, summary = smoke_runs(name)
    by_name = {c["name"]: c for c in summary["claims"]}
    for claim in claims:
        assert by_name[claim]["holds"], by_name[claim]


def test_regularization_resumes_exactly(smoke_runs, tmp_path):
    """Interrupt inside a later variant (dropout RNG, per-step augmentation), resume: same."""
    _skip_without_data("regularization")
    _, reference = smoke_runs("regularization")
    with pytest.raises(RunInterrupted):
        run_experiment("regularization", tier="smoke", out=tmp_path, stop_at_step=50)
    run_dir = next((tmp_path / "regularization").iterdir())
    _, resumed = resume_experiment(run_dir)
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["claims"] == reference["claims"]


def test_manual_backprop_resumes_exactly(smoke_runs, tmp_path):
    """Interrupt after the last check of the zero-init phase (global step 101 of 120), resume:
    the worst manual/autograd difference and symmetric spread seen before the interruption,
    in both phases, must survive it (they are kept in the checkpointed loop state)."""
    _, reference = smoke_runs("manual-backprop")
    with pytest.raises(RunInterrupted):
        run_experiment("manual-backprop", tier="smoke", out=tmp_path, stop_at_step=101)
    run_dir = next((tmp_path / "manual-backprop").iterdir())
    _, resumed = resume_experiment(run_dir)
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["claims"] == reference["claims"]

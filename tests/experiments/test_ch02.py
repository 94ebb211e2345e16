"""Chapter 1-2 experiments at the smoke tier: exact claims and exact resume.

Summary shape and figures of every experiment: ``test_experiments_smoke.py``.
"""

from __future__ import annotations

import pytest

from deepnotes.experiments import ch01, ch02

MINE = [*ch01.EXPERIMENTS, *[e for e in ch02.EXPERIMENTS if e.name != "mlp-fashion"]]
NAMES = [exp.name for exp in MINE]


def test_registered_with_chapter_1_and_2_sections():
    assert NAMES == ["cross-entropy-mle", "perceptron", "linear-collapse", "manual-backprop",
                     "minibatch-gradient", "standardization", "regularization"]
    for exp in MINE:
        chapter = "1" if exp in ch01.EXPERIMENTS else "2"
        assert all(s.split(".")[0] == chapter for s in exp.sections)
        assert exp.test == "tests/test_experiments_ch01_02.py"


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


def test_regularization_resumes_exactly(check_exact_resume):
    """Interrupt inside a later variant (dropout RNG, per-step augmentation), resume: same."""
    check_exact_resume("regularization", stop_at_step=50)


def test_manual_backprop_resumes_exactly(check_exact_resume):
    """Interrupt after the last check of the zero-init phase (global step 101 of 120), resume:
    the worst manual/autograd difference and symmetric spread seen before the interruption,
    in both phases, must survive it (they are kept in the checkpointed loop state)."""
    check_exact_resume("manual-backprop", stop_at_step=101)

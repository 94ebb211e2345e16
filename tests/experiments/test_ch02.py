"""Chapter-2 experiments at the smoke tier: exact claims and exact resume.

Summary shape and figures of every experiment: ``test_smoke.py``. The resume and SIGTERM
tests of mlp-fashion live in ``test_runner.py``.
"""

from __future__ import annotations

import pytest

from deepnotes.experiments import ch02


def test_sections_belong_to_chapter_2():
    for exp in ch02.EXPERIMENTS:
        assert all(s.split(".")[0] == "2" for s in exp.sections), (exp.name, exp.sections)


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


def test_regularization_resumes_exactly_in_the_gap_study(check_exact_resume):
    """Interrupt inside a later variant (dropout RNG, per-step augmentation), resume: same."""
    check_exact_resume("regularization", stop_at_step=50)


def test_regularization_resumes_exactly_in_the_batchnorm_study(check_exact_resume):
    """Interrupt in the first SGD run of the BatchNorm study (global step 90: the four gap
    runs take 80 at smoke), resume: its per-epoch training-loss evaluations survive (they
    are checkpointed loop state), and early-stopped runs are redone identically."""
    check_exact_resume("regularization", stop_at_step=90)


def test_manual_backprop_resumes_exactly(check_exact_resume):
    """Interrupt after the check at step 40 of the zero-init phase (global step 101 of 120), resume:
    the worst manual/autograd difference and symmetric spread seen before the interruption,
    in both phases, must survive it (they are kept in the checkpointed loop state)."""
    check_exact_resume("manual-backprop", stop_at_step=101)


def test_standardization_resumes_exactly(check_exact_resume):
    """Interrupt inside the raw-feature descent (all step sizes in one loop, weights in the
    checkpointed loop state), resume: same steps to the target and speed-up."""
    check_exact_resume("standardization", stop_at_step=100)

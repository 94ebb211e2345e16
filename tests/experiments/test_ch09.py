"""Chapter-9 experiments at the smoke tier: claims that hold already there, exact resume.

Summary shape and figures of every experiment: ``test_experiments_smoke.py``.
"""

from __future__ import annotations

from deepnotes.experiments import ch09

NAMES = [exp.name for exp in ch09.EXPERIMENTS]


def test_registered_in_chapter_order_with_chapter_9_sections():
    assert len(NAMES) == len(set(NAMES)) == 5
    for exp in ch09.EXPERIMENTS:
        assert all(s.startswith("9") for s in exp.sections)
        assert exp.test == "tests/test_experiments_ch09.py"


def test_quadratic_race_claim_holds_already_at_smoke(smoke_runs):
    """Heavy-ball momentum on kappa = 100 is ~sqrt(kappa) faster; 100 steps suffice to see it."""
    _, summary = smoke_runs("optimizer-race")
    claim = next(c for c in summary["claims"] if c["name"] == "quadratic_momentum_over_sgd")
    assert claim["holds"] and claim["value"] < 0.5


def test_sgd_temperature_claims_hold_at_smoke(smoke_runs):
    _, summary = smoke_runs("sgd-noise-temperature")
    assert all(c["holds"] for c in summary["claims"])


def test_iterate_averaging_resumes_exactly(check_exact_resume):
    """Interrupt mid-run (AveragedSGD state in the checkpoint), resume: identical summary."""
    check_exact_resume("iterate-averaging", stop_at_step=120)

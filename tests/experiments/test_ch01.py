"""Chapter-1 experiments at the smoke tier: exact statements and exact resume.

Summary shape and figures of every experiment: ``test_smoke.py``.
"""

from __future__ import annotations

from deepnotes.experiments import ch01


def test_sections_belong_to_chapter_1():
    for exp in ch01.EXPERIMENTS:
        assert all(s.split(".")[0] == "1" for s in exp.sections), (exp.name, exp.sections)


def test_grouped_loss_is_the_per_sample_loss(smoke_runs):
    """-sum_k (n_k/m) log q_k is 1/m sum_i -log q(x_i) exactly, at any budget."""
    _, summary = smoke_runs("cross-entropy-mle")
    assert summary["metrics"]["per_sample_vs_grouped_nll"] < 1e-12


def test_cross_entropy_mle_resumes_exactly(check_exact_resume):
    """Interrupt mid-descent (the KL series is logged on the loop's cadence), resume: same."""
    check_exact_resume("cross-entropy-mle", stop_at_step=31)

"""Chapter-9 experiments at the smoke tier: claims that hold already there, exact resume.

Summary shape and figures of every experiment: ``test_smoke.py``; rules: ``test_rules.py``.
"""

from __future__ import annotations

import pytest


def test_quadratic_race_claim_holds_already_at_smoke(smoke_runs):
    """Heavy-ball momentum on kappa = 100 is ~sqrt(kappa) faster; 100 steps suffice to see it:
    momentum reaches the target while gradient descent (which needs ~700 steps) is censored
    at the budget, so the ratio is an upper bound."""
    _, summary = smoke_runs("optimizer-race")
    claim = next(c for c in summary["claims"] if c["name"] == "quadratic_momentum_over_sgd")
    assert claim["holds"]
    assert summary["metrics"]["quadratic_reached_momentum"] == 1.0


def test_sgd_temperature_grows_with_lr_over_b_at_smoke(smoke_runs):
    """With 500 chains the fitted temperatures scatter by ~15% (the claims' 10% and 15% are
    for the quick tier), far less than the factor 2 between the smoke settings: their order
    is the order of lr / B."""
    _, summary = smoke_runs("sgd-noise-temperature")
    fitted = {k.removeprefix("T_fitted_"): v for k, v in summary["metrics"].items()
              if k.startswith("T_fitted_")}
    ratio = {k: float(k.split("_b")[0].removeprefix("lr")) / int(k.split("_b")[1])
             for k in fitted}
    assert len(fitted) == 4
    assert sorted(fitted, key=fitted.get) == sorted(fitted, key=ratio.get)


def test_iterate_averaging_resumes_exactly(check_exact_resume):
    """Interrupt mid-run (AveragedSGD state in the checkpoint), resume: identical summary."""
    check_exact_resume("iterate-averaging", stop_at_step=120)


def test_sharp_flat_minima_trains_both_batch_sizes_to_one_target(smoke_runs):
    """Each batch size stops at the first evaluation at or below the target (or at the cap);
    the training subset is recorded as the random subset it is."""
    run_dir, summary = smoke_runs("sharp-flat-minima")
    metrics = summary["metrics"]
    claims = {c["name"]: c for c in summary["claims"]}
    assert claims["both_reached_target"]["source"] == "project"
    for name in ("small", "large"):
        reached = metrics[f"{name}_reached_target"]
        assert reached in (0.0, 1.0)
        if reached:
            assert metrics[f"{name}_train_loss"] <= metrics["target_loss"]
            assert metrics[f"{name}_steps"] <= 150  # the smoke cap
        else:
            assert metrics[f"{name}_steps"] == 150
    train = [d for d in summary["data"] if d["split"] == "train"]
    assert len(train) == 1 and train[0]["size"] == 1280
    assert "drawn uniformly without replacement" in train[0]["subset"]


# Smoke: each phase has a cap of 150 steps; the small batch reaches its target at step 61,
# where ctx.end_phase() ends its phase, so global step 80 lies in the second phase.
@pytest.mark.parametrize("stop_at_step", [25, 80])
def test_sharp_flat_minima_resumes_exactly(check_exact_resume, stop_at_step):
    """A run interrupted before its first phase reached the target, or in the second phase
    (the first one then skipped as finished, at the target's weights), resumes to the same
    summary."""
    check_exact_resume("sharp-flat-minima", stop_at_step=stop_at_step)

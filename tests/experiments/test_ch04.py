"""Chapter-4 experiments at the smoke tier: exact claims, the CNN artifact, resume.

Summary shape and figures of every experiment: ``test_smoke.py``.
"""

import torch

from deepnotes.experiments.ch04.shift_equivariance import _pooled_prefix
from deepnotes.zoo import fashion_cnn


def test_exact_results_hold_even_at_smoke(smoke_runs):
    """Claims that are identities, not statistics, must hold at every tier."""
    _, conv = smoke_runs("convolution-theorem")
    holds = {c["name"]: c["holds"] for c in conv["claims"]}
    assert holds["routes_agree"] and holds["example_4_1_h6"]
    assert conv["metrics"]["example_4_1_h6"] == 1.0
    _, arith = smoke_runs("conv-arithmetic")
    assert all(c["holds"] for c in arith["claims"])
    _, shift = smoke_runs("shift-equivariance")
    holds = {c["name"]: c["holds"] for c in shift["claims"]}
    assert holds["circular_equivariance"] and holds["pooled_stack_equivariance"]
    assert holds["zero_padding_interior"]
    assert shift["metrics"]["equivariance_zero_pad_border"] > 1e-3  # the border does differ


def test_cnn_publishes_its_tier_and_the_shift_experiment_records_what_it_loaded(smoke_runs):
    _, cnn = smoke_runs("cnn-fashion")
    model, artifact = fashion_cnn.load("smoke")
    assert artifact.meta["experiment"] == "cnn-fashion" and artifact.tier == "smoke"
    assert artifact.metrics["test_accuracy"] == cnn["metrics"]["test_accuracy"]
    assert artifact.meta["data"] == cnn["data"]  # trained on what the run recorded
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    _, shift = smoke_runs("shift-equivariance")
    assert shift["artifacts"] == [artifact.record()]
    assert shift["metrics"]["artifact_test_accuracy"] == cnn["metrics"]["test_accuracy"]


def test_cnn_resume_is_exact(check_exact_resume):
    check_exact_resume("cnn-fashion", stop_at_step=5)


def test_pooled_prefix_stops_before_odd_sizes():
    from deepnotes.conv import FashionCNN

    _, stride = _pooled_prefix(FashionCNN((4, 4, 4)), 28)  # 28 -> 14 -> 7 | 7 is odd
    assert stride == 4
    _, stride = _pooled_prefix(FashionCNN((4, 4)), 32)
    assert stride == 4

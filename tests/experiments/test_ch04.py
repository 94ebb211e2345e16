"""Chapter-4 experiments at the smoke tier: exact claims, artifacts, resume.

Summary shape and figures of every experiment: ``test_experiments_smoke.py``.
"""

import pytest
import torch

from deepnotes import artifacts
from deepnotes.experiments import ch04
from deepnotes.experiments.runner import run_experiment
from deepnotes.experiments.shift_equivariance import _pooled_prefix


def test_chapter_4_registered_with_its_sections():
    for exp in ch04.EXPERIMENTS:
        assert exp.sections[0].startswith("4."), exp.sections  # conv-arithmetic adds 8.6
        assert exp.test == "tests/test_experiments_ch04.py"


@pytest.fixture(autouse=True)
def _isolated_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "home"))


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


def test_cnn_smoke_saves_a_loadable_artifact_in_the_run_only(tmp_path):
    run_dir, summary = run_experiment("cnn-fashion", tier="smoke", out=tmp_path / "runs")
    model, art = artifacts.load_model("cnn-fashion", root=run_dir / "artifact")
    assert art.accuracy == summary["metrics"]["test_accuracy"]
    assert art.meta["extra"]["tier"] == "smoke"
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    # The smoke tier publishes nothing to the shared folder.
    assert not (tmp_path / "home" / "artifacts").exists()


def test_cnn_publishes_under_its_name_and_shift_experiment_loads_it(tmp_path):
    run_experiment("cnn-fashion", tier="smoke", out=tmp_path / "runs",
                   overrides=["artifact=cnn-fashion-quick"])
    assert (tmp_path / "home" / "artifacts" / "cnn-fashion-quick.json").is_file()
    _, summary = run_experiment("shift-equivariance", tier="smoke", out=tmp_path / "runs",
                                overrides=["artifact=cnn-fashion", "test_size=64"])
    assert summary["data"]["artifact"] == "cnn-fashion-quick"
    assert summary["data"]["fallback"] is True


def test_missing_artifact_error_names_the_command(tmp_path):
    with pytest.raises(ValueError, match="deepnotes run cnn-fashion --tier full"):
        run_experiment("shift-equivariance", tier="smoke", out=tmp_path,
                       overrides=["artifact=cnn-fashion"])


def test_cnn_resume_is_exact(check_exact_resume):
    check_exact_resume("cnn-fashion", stop_at_step=5)


def test_pooled_prefix_stops_before_odd_sizes():
    from deepnotes.conv import FashionCNN

    _, stride = _pooled_prefix(FashionCNN((4, 4, 4)), 28)  # 28 -> 14 -> 7 | 7 is odd
    assert stride == 4
    _, stride = _pooled_prefix(FashionCNN((4, 4)), 32)
    assert stride == 4

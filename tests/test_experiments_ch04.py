"""Chapter-4 experiments at the smoke tier: well-formed summaries, figures, artifacts, resume."""

import json

import pytest
import torch

from deepnotes import artifacts
from deepnotes.experiments import ch04
from deepnotes.experiments.runner import resume_experiment, run_experiment
from deepnotes.experiments.shift_equivariance import _pooled_prefix

NAMES = [exp.name for exp in ch04.EXPERIMENTS]


@pytest.fixture(autouse=True)
def _isolated_artifacts(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("name", NAMES)
def test_smoke_summary_is_well_formed(name, tmp_path):
    run_dir, summary = run_experiment(name, tier="smoke", out=tmp_path / "runs")
    assert summary["experiment"] == name and summary["tier"] == "smoke"
    assert summary["claims"], "every experiment checks at least one claim"
    for claim in summary["claims"]:
        assert set(claim) == {"name", "statement", "value", "op", "threshold", "holds"}
        assert isinstance(claim["holds"], bool)
    assert all(isinstance(v, float) for v in summary["metrics"].values())
    assert list((run_dir / "figures").glob("*.png")), "at least one figure"
    assert json.loads((run_dir / "summary.json").read_text()) == summary


def test_exact_results_hold_even_at_smoke(tmp_path):
    """Claims that are identities, not statistics, must hold at every tier."""
    _, conv = run_experiment("convolution-theorem", tier="smoke", out=tmp_path)
    holds = {c["name"]: c["holds"] for c in conv["claims"]}
    assert holds["routes_agree"] and holds["example_4_1_h6"]
    assert conv["metrics"]["example_4_1_h6"] == 1.0
    _, arith = run_experiment("conv-arithmetic", tier="smoke", out=tmp_path)
    assert all(c["holds"] for c in arith["claims"])
    _, shift = run_experiment("shift-equivariance", tier="smoke", out=tmp_path)
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


def test_cnn_resume_is_exact(tmp_path):
    _, whole = run_experiment("cnn-fashion", tier="smoke", out=tmp_path / "a")
    run_dir = None
    with pytest.raises(Exception, match="interrupted"):
        run_experiment("cnn-fashion", tier="smoke", out=tmp_path / "b", stop_at_step=5)
    run_dir = next((tmp_path / "b" / "cnn-fashion").iterdir())
    _, resumed = resume_experiment(run_dir)
    for key in ("test_accuracy", "mlp_test_accuracy"):
        assert resumed["metrics"][key] == whole["metrics"][key]


def test_pooled_prefix_stops_before_odd_sizes():
    from deepnotes.conv import FashionCNN

    _, stride = _pooled_prefix(FashionCNN((4, 4, 4)), 28)  # 28 -> 14 -> 7 | 7 is odd
    assert stride == 4
    _, stride = _pooled_prefix(FashionCNN((4, 4)), 32)
    assert stride == 4

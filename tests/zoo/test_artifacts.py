"""Artifacts by name and tier: round trip with general metadata, tiers kept apart, atomic
files, clear errors, and the loaded (name, tier, sha256) recorded in the consumer's run."""

import json
from types import SimpleNamespace

import pytest
import torch

from deepnotes.conv import FashionCNN
from deepnotes.engine import provenance
from deepnotes.zoo import artifacts


def _tiny():
    torch.manual_seed(0)
    return FashionCNN(channels=(4, 8), convs_per_stage=1)


def _ctx(tier="smoke", is_main=True):
    return SimpleNamespace(tier=tier, is_main=is_main, experiment="cnn-fashion", seed=3,
                           config={"epochs": 2.0}, train_seconds=12.5)


def test_round_trip_with_general_metadata(tmp_path):
    model = _tiny().to(memory_format=torch.channels_last)  # non-contiguous weights save too
    model.eval()
    with provenance.collecting():
        provenance.record_data("Fashion-MNIST", "train", 512, subset="first 512 of 60000")
        meta_path = artifacts.save_artifact(_ctx(), "tiny-cnn", model,
                                            architecture=model.architecture,
                                            metrics={"test_accuracy": 0.875},
                                            extra={"normalization": {"mean": 0.25}},
                                            root=tmp_path)
    assert meta_path == tmp_path / "tiny-cnn" / "smoke.json"
    meta = json.loads(meta_path.read_text())
    assert (meta["name"], meta["tier"], meta["experiment"], meta["seed"]) == (
        "tiny-cnn", "smoke", "cnn-fashion", 3)
    assert meta["config"] == {"epochs": 2.0} and meta["metrics"] == {"test_accuracy": 0.875}
    assert meta["data"][0]["subset"] == "first 512 of 60000" and meta["version"]
    assert meta["architecture"]["class"] == "deepnotes.conv.cnn.FashionCNN"
    with provenance.collecting() as used:
        loaded, art = artifacts.load_model("tiny-cnn", "smoke", root=tmp_path)
    assert used["artifacts"] == [{"name": "tiny-cnn", "tier": "smoke", "sha256": art.sha256}]
    assert isinstance(loaded, FashionCNN) and not loaded.training
    assert art.train_seconds == 12.5  # the generative table reports each model's training time
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)
    assert sorted(p.name for p in (tmp_path / "tiny-cnn").iterdir()) == [
        "smoke.json", "smoke.safetensors"]  # no temporary files left behind


def test_tiers_are_kept_apart(tmp_path):
    full, quick = _tiny(), _tiny()
    with torch.no_grad():
        quick.classifier.bias.fill_(3.0)
    artifacts.save_artifact(_ctx("full"), "m", full, architecture=full.architecture,
                            metrics={"a": 0.9}, root=tmp_path)
    artifacts.save_artifact(_ctx("quick"), "m", quick, architecture=quick.architecture,
                            metrics={"a": 0.5}, root=tmp_path)  # never touches the full one
    assert artifacts.load_artifact("m", "full", root=tmp_path).metrics == {"a": 0.9}
    assert torch.equal(artifacts.load_artifact("m", "quick", root=tmp_path)
                       .state_dict["classifier.bias"], torch.full((10,), 3.0))
    with pytest.raises(artifacts.MissingArtifact, match="no smoke-tier artifact 'm'"):
        artifacts.load_artifact("m", "smoke", root=tmp_path)


def test_only_the_main_process_writes(tmp_path):
    model = _tiny()
    artifacts.save_artifact(_ctx(is_main=False), "m", model, architecture=model.architecture,
                            metrics={}, root=tmp_path)
    assert not (tmp_path / "m").exists()


def test_default_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPNOTES_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert artifacts.artifact_dir() == tmp_path / "cache" / "deepnotes" / "artifacts"
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "home"))
    assert artifacts.artifact_dir() == tmp_path / "home" / "artifacts"


def test_corrupted_weights_are_detected(tmp_path):
    model = _tiny()
    artifacts.save_artifact(_ctx(), "m", model, architecture=model.architecture, metrics={},
                            root=tmp_path)
    with open(tmp_path / "m" / "smoke.safetensors", "ab") as fh:
        fh.write(b"garbage")
    with pytest.raises(artifacts.MissingArtifact, match="does not match"):
        artifacts.load_artifact("m", "smoke", root=tmp_path)


def test_invalid_inputs_raise(tmp_path):
    model = _tiny()
    with pytest.raises(ValueError, match="artifact name"):
        artifacts.save_artifact(_ctx(), "../evil", model, architecture=model.architecture,
                                metrics={}, root=tmp_path)
    with pytest.raises(ValueError, match="inside deepnotes"):
        artifacts.save_artifact(_ctx(), "m", model, architecture={"class": "os.system"},
                                metrics={}, root=tmp_path)
    with pytest.raises(ValueError, match="artifact tier"):
        artifacts.load_artifact("m", "huge", root=tmp_path)


def test_a_model_trained_on_a_substitute_marks_its_consumers(tmp_path):
    model = _tiny()
    with provenance.collecting():
        provenance.record_data("MNIST", "train", 4000, substitute="Fashion-MNIST")
        artifacts.save_artifact(_ctx(), "m", model, architecture=model.architecture,
                                metrics={}, root=tmp_path)
    with provenance.collecting() as used:
        artifacts.load_artifact("m", "smoke", root=tmp_path)
    (record,) = used["data"]
    assert record["substitute"] == "Fashion-MNIST" and record["split"] == "train (artifact m)"

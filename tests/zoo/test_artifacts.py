"""Save/load of trained models by name: round trip, atomic files, clear errors."""

import json

import pytest
import torch

from deepnotes import artifacts
from deepnotes.conv import FashionCNN


def _tiny():
    torch.manual_seed(0)
    return FashionCNN(channels=(4, 8), convs_per_stage=1)


def test_round_trip_rebuilds_the_same_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path))
    model = _tiny().to(memory_format=torch.channels_last)  # non-contiguous weights save too
    model.eval()
    meta_path = artifacts.save_artifact("tiny-cnn", model, architecture=model.architecture,
                                        mean=0.25, std=0.5, accuracy=0.875,
                                        extra={"tier": "smoke"})
    assert meta_path == tmp_path / "artifacts" / "tiny-cnn.json"
    meta = json.loads(meta_path.read_text())
    assert meta["normalization"] == {"mean": 0.25, "std": 0.5}
    assert meta["architecture"]["class"] == "deepnotes.conv.cnn.FashionCNN"
    assert meta["extra"] == {"tier": "smoke"} and meta["created"]
    loaded, art = artifacts.load_model("tiny-cnn")
    assert isinstance(loaded, FashionCNN) and not loaded.training
    assert (art.name, art.accuracy, art.mean, art.std, art.is_fallback) == (
        "tiny-cnn", 0.875, 0.25, 0.5, False)
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)
    # No temporary files are left behind.
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == [
        "tiny-cnn.json", "tiny-cnn.safetensors"]


def test_missing_artifact_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path))
    with pytest.raises(ValueError, match=r"deepnotes run cnn-fashion --tier full"):
        artifacts.load_artifact("cnn-fashion")
    with pytest.raises(ValueError, match=r"cnn-fashion-quick.*--tier quick"):
        artifacts.load_model("cnn-fashion", fallbacks=("cnn-fashion-quick",))


def test_fallback_is_reported(tmp_path):
    model = _tiny()
    artifacts.save_artifact("cnn-fashion-quick", model, architecture=model.architecture,
                            mean=0.286, std=0.353, accuracy=0.9, root=tmp_path)
    _, art = artifacts.load_model("cnn-fashion", fallbacks=("cnn-fashion-quick",),
                                  root=tmp_path)
    assert art.is_fallback and art.name == "cnn-fashion-quick" and art.requested == "cnn-fashion"


def test_default_folder_and_overwrite(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPNOTES_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert artifacts.artifact_dir() == tmp_path / "cache" / "deepnotes" / "artifacts"
    model = _tiny()
    artifacts.save_artifact("m", model, architecture=model.architecture, mean=0, std=1,
                            accuracy=0.5)
    with torch.no_grad():
        model.classifier.bias.fill_(3.0)
    artifacts.save_artifact("m", model, architecture=model.architecture, mean=0, std=1,
                            accuracy=0.6)  # replaces the old one
    art = artifacts.load_artifact("m")
    assert art.accuracy == 0.6
    assert torch.equal(art.state_dict["classifier.bias"], torch.full((10,), 3.0))


def test_corrupted_weights_are_detected(tmp_path):
    model = _tiny()
    artifacts.save_artifact("m", model, architecture=model.architecture, mean=0, std=1,
                            accuracy=0.5, root=tmp_path)
    with open(tmp_path / "m.safetensors", "ab") as fh:
        fh.write(b"garbage")
    with pytest.raises(ValueError, match="does not match"):
        artifacts.load_artifact("m", root=tmp_path)


def test_invalid_inputs_raise(tmp_path):
    model = _tiny()
    with pytest.raises(ValueError, match="artifact name"):
        artifacts.save_artifact("../evil", model, architecture=model.architecture, mean=0,
                                std=1, accuracy=0.5, root=tmp_path)
    with pytest.raises(ValueError, match="inside deepnotes"):
        artifacts.save_artifact("m", model, architecture={"class": "os.system"}, mean=0,
                                std=1, accuracy=0.5, root=tmp_path)
    with pytest.raises(ValueError, match="accuracy"):
        artifacts.save_artifact("m", model, architecture=model.architecture, mean=0, std=1,
                                accuracy=91.0, root=tmp_path)

"""Checkpoints: atomic writes, old weights removed, refused pickles, a crash between writes."""

from __future__ import annotations

import pytest
import torch

from deepnotes.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def test_checkpoint_round_trip_and_old_weights_removed(tmp_path):
    w = {"model.weight": torch.randn(3, 2)}
    save_checkpoint(tmp_path, "last", 5, w, {"objects": {}, "extra": [1, 2]})
    save_checkpoint(tmp_path, "last", 9, {"model.weight": w["model.weight"] + 1}, {"objects": {}})
    weights, state = load_checkpoint(tmp_path, "last")
    assert state["step"] == 9
    assert torch.equal(weights["model.weight"], w["model.weight"] + 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last-000000009.safetensors",
                                                           "last.ckpt"]
    assert load_checkpoint(tmp_path, "other") is None


class Evil:
    def __reduce__(self):  # what a malicious pickle would do on load
        return (print, ("pwned",))


def test_foreign_pickle_refused(tmp_path):
    save_checkpoint(tmp_path, "last", 1, {"w": torch.zeros(1)}, {})
    payload = torch.load(tmp_path / "last.ckpt", weights_only=True)
    payload["evil"] = Evil()
    torch.save(payload, tmp_path / "last.ckpt")
    with pytest.raises(CheckpointError, match="refusing to load .*pickled object"):
        load_checkpoint(tmp_path, "last")


def test_corrupt_and_missing_weights(tmp_path):
    save_checkpoint(tmp_path, "last", 1, {"w": torch.zeros(1)}, {})
    (tmp_path / "last-000000001.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path, "last")
    (tmp_path / "last.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path, "last")


def test_crash_between_writes_keeps_previous_checkpoint(tmp_path, monkeypatch):
    save_checkpoint(tmp_path, "last", 1, {"w": torch.zeros(1)}, {})
    import deepnotes.engine.checkpoint as ck

    real_save = torch.save

    def dying_save(obj, path):
        real_save(obj, path)
        raise KeyboardInterrupt  # killed after the temp file, before the rename

    monkeypatch.setattr(ck.torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", 2, {"w": torch.ones(1)}, {})
    monkeypatch.setattr(ck.torch, "save", real_save)
    weights, state = load_checkpoint(tmp_path, "last")
    assert state["step"] == 1 and torch.equal(weights["w"], torch.zeros(1))
    assert not list(tmp_path.glob("*.tmp"))

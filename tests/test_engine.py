"""Engine: claims, overrides, checkpoints (atomic, refused pickles), NaN guard, exact resume."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
from lightning.fabric import Fabric

from deepnotes.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from deepnotes.engine.run import NonFiniteLoss, RunContext, RunInterrupted
from deepnotes.experiments.base import Claim, apply_overrides


def test_claim_holds_is_computed_and_can_fail():
    assert Claim("a", "s", 0.9, ">=", 0.89).holds
    assert not Claim("a", "s", 0.88, ">=", 0.89).holds
    assert not Claim("a", "s", math.nan, "<", 1.0).holds
    assert Claim("a", "s", 1.0, "<=", 1.0).holds and not Claim("a", "s", 1.0, "<", 1.0).holds
    with pytest.raises(ValueError, match="op must be one of"):
        Claim("a", "s", 1.0, "==", 1.0)
    assert Claim("a", "s", 2, ">", 1).to_dict() == {
        "name": "a", "statement": "s", "value": 2.0, "op": ">", "threshold": 1.0, "holds": True}


@dataclass(frozen=True)
class _Cfg:
    steps: int = 10
    lr: float = 0.1
    name: str = "x"
    flag: bool = False
    hidden: tuple[int, ...] = (4, 2)
    limit: int | None = None


def test_overrides_typed():
    cfg = apply_overrides(_Cfg(), ["steps=3", "lr=1e-3", "flag=true", "hidden=8,4,2",
                                   "limit=none", "name=abc"])
    assert cfg == _Cfg(steps=3, lr=1e-3, name="abc", flag=True, hidden=(8, 4, 2), limit=None)
    assert apply_overrides(_Cfg(), ["limit=5"]).limit == 5


@pytest.mark.parametrize(
    ("item", "message"),
    [("stepz=3", "unknown key 'stepz'.*Valid keys: .*steps=10"),
     ("steps=3.5", "_Cfg.steps expects int, got '3.5'.*Valid keys: .*lr=0.1"),
     ("flag=maybe", "expects bool"),
     ("steps", "not key=value")],
)
def test_overrides_rejected_with_valid_keys(item, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(_Cfg(), [item])


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


def _ctx(tmp_path, resume=False, **kw):
    fabric = Fabric(accelerator="cpu", devices=1)
    return RunContext(tmp_path, fabric, seed=0, tier="smoke", resume=resume, **kw)


def _loop(ctx, total=20, nan_at=None):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    data = torch.randn(total, 8, 3, generator=g)
    state = {"noise_sum": 0.0}
    for step in ctx.steps(total, track={"model": model, "optimizer": opt}, state=state):
        # global RNG use inside the loop must be restored on resume, too
        noise = torch.randn(1).item()
        state["noise_sum"] += noise
        loss = (model(data[step]) ** 2).mean() + 0.01 * noise
        if nan_at is not None and step == nan_at:
            loss = loss * float("nan")
        opt.zero_grad()
        loss.backward()
        opt.step()
        ctx.log(step, loss=loss.item())
    return model.weight.detach().clone(), state["noise_sum"]


def test_resume_is_exact(tmp_path):
    ref_w, ref_noise = _loop(_ctx(tmp_path / "a"))
    with pytest.raises(RunInterrupted, match="step 7/20"):
        _loop(_ctx(tmp_path / "b", stop_at_step=7))
    w, noise = _loop(_ctx(tmp_path / "b", resume=True))
    assert torch.equal(w, ref_w)
    assert noise == ref_noise
    lines = [json.loads(s) for s in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(20))


def test_signal_flag_checkpoints_and_stops(tmp_path):
    ctx = _ctx(tmp_path)
    seen = []
    with pytest.raises(RunInterrupted, match="signal 15"):
        for step in ctx.steps(10, track={}):
            seen.append(step)
            if step == 3:
                ctx.interrupt_signal = 15
    assert seen == [0, 1, 2, 3]
    _, state = load_checkpoint(tmp_path / "checkpoints", "last")
    assert state["step"] == 4


def test_nan_loss_stops_naming_step_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(NonFiniteLoss, match="became nan at step 6"):
        _loop(_ctx(tmp_path, checkpoint_seconds=0.0), nan_at=6)
    _, state = load_checkpoint(tmp_path / "checkpoints", "last")
    assert state["step"] == 6  # saved after step 5, the last finite one


def test_finished_phase_is_skipped_on_resume(tmp_path):
    _loop(_ctx(tmp_path))
    ctx = _ctx(tmp_path, resume=True)
    assert list(ctx.steps(20, track={})) == []


def test_nonfinite_weights_are_never_checkpointed(tmp_path):
    ctx = _ctx(tmp_path, checkpoint_seconds=0.0)
    model = torch.nn.Linear(2, 1)
    with pytest.raises(NonFiniteLoss, match="model.weight holds NaN/Inf before step 4"):
        for step in ctx.steps(10, track={"model": model}):
            if step == 3:
                with torch.no_grad():
                    model.weight.fill_(float("inf"))  # diverged without a logged loss
    _, state = load_checkpoint(tmp_path / "checkpoints", "last")
    assert state["step"] == 3


def test_resume_drops_rows_not_covered_by_a_checkpoint(tmp_path):
    ctx = _ctx(tmp_path, checkpoint_seconds=1e9)
    ctx.log(0, phase="setup", value=1.0)  # outside any loop: runs again on resume
    with pytest.raises(RunInterrupted):
        for step in ctx.steps(10, track={}, phase="a"):
            ctx.log(step, phase="a", loss=1.0)
            if step == 4:
                ctx.interrupt_signal = 2
    ctx.close()
    ctx = _ctx(tmp_path, resume=True)
    assert [(r["phase"], r["step"]) for r in ctx.history] == [("a", s) for s in range(5)]
    ctx.log(0, phase="setup", value=1.0)
    for step in ctx.steps(10, track={}, phase="a"):
        ctx.log(step, phase="a", loss=1.0)
    ctx.close()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["phase"] == "a"] == list(range(10))
    assert sum(r["phase"] == "setup" for r in rows) == 1


def test_phase_names_cannot_collide(tmp_path):
    ctx = _ctx(tmp_path)
    for bad in ("last", "a b", "x/y"):
        with pytest.raises(ValueError, match="phase name"):
            list(ctx.steps(1, phase=bad))


def test_final_weights_exported_and_ddp_prefix_stripped(tmp_path):
    from safetensors.torch import load_file

    fabric = Fabric(accelerator="cpu", devices=1)
    ctx = RunContext(tmp_path, fabric, seed=0, tier="smoke")
    model = fabric.setup_module(torch.nn.Linear(2, 1))
    for _ in ctx.steps(2, track={"model": model}):
        pass
    exported = load_file(str(tmp_path / "checkpoints" / "model.safetensors"))
    assert sorted(exported) == ["model.bias", "model.weight"]

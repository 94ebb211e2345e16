"""The run context: exact resume, signals, the NaN guard, phases, logging cadence, named
random streams, train_seconds."""

from __future__ import annotations

import json
import time

import pytest
import torch
from lightning.fabric import Fabric

from deepnotes.engine.checkpoint import load_checkpoint
from deepnotes.engine.run import NonFiniteLoss, RunContext, RunInterrupted
from deepnotes.engine.streams import stream_seed


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


def test_log_cadence_belongs_to_the_loop_and_the_nan_guard_sees_every_step(tmp_path):
    ctx = _ctx(tmp_path)
    for step in ctx.steps(10, track={}, phase="a", log_every=4):
        ctx.log(step, phase="a", loss=1.0)
        ctx.log(step, phase="other", value=float(step))  # not this loop's phase: every call
    assert ctx.series("loss", "a")[0] == [0, 4, 8, 9]  # every 4th and the last
    assert ctx.series("value", "other")[0] == list(range(10))
    with pytest.raises(NonFiniteLoss, match="at step 3"):
        for step in ctx.steps(10, track={}, phase="b", log_every=4):
            ctx.log(step, phase="b", loss=float("nan") if step == 3 else 1.0)


def test_named_streams_differ_by_name_index_and_seed_and_repeat_exactly(tmp_path):
    seeds = {stream_seed(s, n, i) for s in range(4) for n in ("batches", "augment", "init")
             for i in range(50)}
    assert len(seeds) == 4 * 3 * 50  # no two streams coincide
    # the old scheme's collision: seed 1 offset 0 vs seed 0 offset 7919
    assert stream_seed(1, "augment", 0) != stream_seed(0, "augment", 7919)
    assert stream_seed(7, "batches", 3) == stream_seed(7, "batches", 3)
    ctx = RunContext(tmp_path, Fabric(accelerator="cpu", devices=1), seed=5, tier="smoke")
    a = torch.rand(4, generator=ctx.rng("augment", 2))
    assert torch.equal(a, torch.rand(4, generator=ctx.rng("augment", 2)))
    assert not torch.equal(a, torch.rand(4, generator=ctx.rng("augment", 3)))
    with pytest.raises(ValueError, match="non-empty name"):
        stream_seed(0, "")


def test_train_seconds_count_loops_and_exclude_untimed_blocks(tmp_path):
    ctx = _ctx(tmp_path)
    time.sleep(0.05)  # outside any loop: not training
    for _ in ctx.steps(2, track={}):
        time.sleep(0.02)
        with ctx.untimed():
            time.sleep(0.2)  # evaluation inside the loop
    assert 0.04 <= ctx.train_seconds < 0.15


def test_batches_helper_uses_the_run_seed_and_stream(tmp_path):
    ctx = _ctx(tmp_path)
    x = torch.arange(20)
    a = ctx.batches(x, batch_size=5, stream="one")
    b = ctx.batches(x, batch_size=5, stream="two")
    assert torch.equal(a.batch(3)[0], ctx.batches(x, batch_size=5, stream="one").batch(3)[0])
    assert not all(torch.equal(a.batch(s)[0], b.batch(s)[0]) for s in range(4))


def test_end_phase_checkpoints_the_loop_as_finished(tmp_path):
    ctx = _ctx(tmp_path)
    state = {"stopped_at": -1}
    seen = []
    for step in ctx.steps(10, track={}, state=state):
        seen.append(step)
        if step == 3:
            state["stopped_at"] = step
            ctx.end_phase()
    assert seen == [0, 1, 2, 3]
    _, saved = load_checkpoint(tmp_path / "checkpoints", "last")
    assert saved["step"] == 10 and saved["state"] == {"stopped_at": 3}
    resumed = _ctx(tmp_path, resume=True)
    state = {"stopped_at": -1}
    assert list(resumed.steps(10, track={}, state=state)) == [] and state["stopped_at"] == 3
    with pytest.raises(RuntimeError, match="inside a ctx.steps loop"):
        ctx.end_phase()

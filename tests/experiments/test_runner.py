"""Whole runs through the runner and the CLI: folder layout, summary shape, exact resume after
an interruption or SIGTERM, DDP on CPU, and the registry's bookkeeping."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepnotes.cli import app
from deepnotes.data.images import fashion_mnist_source
from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments.base import TIERS
from deepnotes.experiments.registry import REGISTRY
from deepnotes.experiments.runner import resume_experiment, run_experiment

needs_fashion = pytest.mark.skipif(
    fashion_mnist_source() is None,
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["epochs=2", "train_subset=1024", "batch_size=128", "hidden=32"]
TIMING = {"train_seconds"}


def test_registry_bookkeeping():
    for name, exp in REGISTRY.items():
        assert name == exp.name and exp.sections and exp.claim
        assert (ROOT / exp.test).is_file(), f"{name}: test file {exp.test} missing"
        assert set(exp.presets) >= set(TIERS)


@needs_fashion
def test_run_folder_layout_and_summary(tmp_path):
    run_dir, summary = run_experiment("mlp-fashion", tier="smoke", out=tmp_path, overrides=TINY)
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    for name in ("config.json", "command.txt", "env.json", "metrics.jsonl",
                 "checkpoints/last.ckpt", "figures/training_loss.png"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert run_dir.parent.parent == tmp_path and run_dir.name.endswith("-s0")
    assert json.loads((run_dir / "config.json").read_text())["config"]["hidden"] == [32]


@needs_fashion
def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    _, ref = run_experiment("mlp-fashion", tier="smoke", out=tmp_path / "a", overrides=TINY)
    with pytest.raises(RunInterrupted):
        run_experiment("mlp-fashion", tier="smoke", out=tmp_path / "b", overrides=TINY,
                       stop_at_step=9)
    run_dir = next((tmp_path / "b" / "mlp-fashion").iterdir())
    assert not (run_dir / "summary.json").exists()
    _, resumed = resume_experiment(run_dir)
    strip = lambda s: {k: v for k, v in s["metrics"].items() if k not in TIMING}  # noqa: E731
    assert strip(resumed) == strip(ref)
    assert resumed["claims"] == ref["claims"]


@needs_fashion
def test_sigterm_writes_checkpoint_and_resume_finishes(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "deepnotes.cli", "run", "mlp-fashion", "--tier", "smoke",
           "--out", str(tmp_path), "epochs=400", "train_subset=512", "batch_size=128",
           "hidden=16"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    metrics = None
    while time.monotonic() < deadline:
        found = list(tmp_path.glob("mlp-fashion/*/metrics.jsonl"))
        if found and found[0].read_text().count("\n") >= 2:
            metrics = found[0]
            break
        time.sleep(0.2)
    assert metrics is not None, "run never started logging"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint written" in err and "--resume" in err
    run_dir = metrics.parent
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    result = CliRunner().invoke(app, ["run", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "summary.json").read_text())["metrics"]["steps"] == 1600


@needs_fashion
def test_sigterm_to_ddp_parent_checkpoints_in_the_workers(tmp_path):
    cmd = [sys.executable, "-m", "deepnotes.cli", "run", "mlp-fashion", "--tier", "smoke",
           "--devices", "2", "--accelerator", "cpu", "--out", str(tmp_path), "epochs=400",
           "train_subset=512", "batch_size=128", "hidden=16"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    started = False
    while time.monotonic() < deadline and not started:
        found = list(tmp_path.glob("mlp-fashion/*/metrics.jsonl"))
        started = bool(found) and found[0].read_text().count("\n") >= 2
        time.sleep(0.2)
    assert started, "run never started logging"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint written" in err
    assert list(tmp_path.glob("mlp-fashion/*/checkpoints/last.ckpt"))


@needs_fashion
def test_two_cpu_processes_ddp_match_one(tmp_path):
    over = ["epochs=3", "train_subset=4096", "batch_size=256", "hidden=64"]
    _, one = run_experiment("mlp-fashion", tier="smoke", out=tmp_path, overrides=over)
    _, two = run_experiment("mlp-fashion", tier="smoke", out=tmp_path, overrides=over,
                            devices=2, accelerator="cpu")
    a, b = one["metrics"]["test_accuracy"], two["metrics"]["test_accuracy"]
    assert abs(a - b) <= 0.005, (a, b)
    # Errors cross the process boundary with their own type (the CLI maps them to exit codes).
    with pytest.raises(RunInterrupted, match="checkpoint written"):
        run_experiment("mlp-fashion", tier="smoke", out=tmp_path, overrides=over, devices=2,
                       accelerator="cpu", stop_at_step=5)


def test_cli_rejects_bad_overrides_with_valid_keys():
    result = CliRunner().invoke(app, ["run", "mlp-fashion", "--tier", "smoke", "epochz=3"])
    assert result.exit_code == 2
    assert "unknown key 'epochz'" in result.output and "epochs=" in result.output
    result = CliRunner().invoke(app, ["run", "mlp-fashion", "epochs=two"])
    assert result.exit_code == 2 and "expects int" in result.output
    result = CliRunner().invoke(app, ["run", "no-such-experiment"])
    assert result.exit_code == 2 and "unknown experiment" in result.output
    result = CliRunner().invoke(app, ["run", "mlp-fashion", "--tier", "huge"])
    assert result.exit_code == 2 and "unknown tier" in result.output


def test_cli_resume_needs_a_run_folder(tmp_path):
    result = CliRunner().invoke(app, ["run", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.output


def test_cli_list_names_every_experiment():
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0
    for name, exp in REGISTRY.items():
        assert name in result.output and exp.test in result.output


def test_cli_data_reports_datasets():
    result = CliRunner().invoke(app, ["data"])
    assert result.exit_code == 0
    assert "Fashion-MNIST" in result.output
    assert any(line.startswith("MNIST: ") for line in result.output.splitlines())


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text().splitlines()
    start = readme.index("```bash")
    block = readme[start + 1: readme.index("```", start + 1)]
    assert len(block) == 2 and "deepnotes report" in block[0] and "pytest" in block[1]
    assert block[1] in (ROOT / ".ci" / "run").read_text()


def test_thread_choice(monkeypatch):
    from deepnotes.experiments import runner

    monkeypatch.setenv("DEEPNOTES_THREADS", "3")
    assert runner.default_threads() == 3
    monkeypatch.setenv("DEEPNOTES_THREADS", "zero")
    with pytest.raises(ValueError, match="positive integer"):
        runner.default_threads()
    monkeypatch.delenv("DEEPNOTES_THREADS")
    monkeypatch.setattr(runner, "idle_cores", lambda: 0.2)  # another job holds the cores
    assert runner.default_threads() == 1
    monkeypatch.setattr(runner, "idle_cores", lambda: 64.0)
    assert runner.default_threads() == (os.cpu_count() or 1)
    assert runner.default_threads(world_size=2) == max(1, (os.cpu_count() or 1) // 2)


def test_run_threads_applies_the_experiments_cap_and_the_configs_pin(monkeypatch):
    from deepnotes.experiments import runner
    from deepnotes.experiments.registry import get

    monkeypatch.setenv("DEEPNOTES_THREADS", "2")
    small = get("linear-collapse")  # max_threads=1: tiny matrices
    assert small.max_threads == 1
    assert runner.run_threads(small, small.presets["quick"]) == 1
    conv = get("conv-arithmetic")  # config field threads: smoke pins 1, quick leaves it
    assert runner.run_threads(conv, conv.presets["smoke"]) == 1
    assert runner.run_threads(conv, conv.presets["quick"]) == 2
    assert runner.run_threads(conv, conv.config_for("quick", ["threads=3"])) == 3


def test_a_run_records_the_threads_it_used_and_restores_the_callers(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("DEEPNOTES_THREADS", "2")
    before = torch.get_num_threads()
    run_dir, _ = run_experiment("linear-collapse", tier="smoke", out=tmp_path)
    assert json.loads((run_dir / "config.json").read_text())["threads"] == 1
    assert torch.get_num_threads() == before

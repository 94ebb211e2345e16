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

from conftest import assert_same_results
from deepnotes.cli import app
from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments.registry import REGISTRY
from deepnotes.experiments.runner import resume_experiment, run_experiment
from deepnotes.report import latest_run
from deepnotes.zoo import MissingArtifact

ROOT = Path(__file__).resolve().parents[2]
TINY = ["epochs=2", "train_subset=1024", "batch_size=128", "hidden=32"]


def test_run_folder_layout_and_summary(tmp_path):
    run_dir, summary = run_experiment("mlp-fashion", tier="smoke", out=tmp_path, overrides=TINY)
    assert json.loads((run_dir / "summary.json").read_text()) == summary
    for name in ("config.json", "command.txt", "env.json", "metrics.jsonl",
                 "checkpoints/last.ckpt", "figures/training_loss.png"):
        assert (run_dir / name).is_file(), name
    assert list(run_dir.glob("events.out.tfevents.*"))
    assert run_dir.parent.parent == tmp_path and run_dir.name.endswith("-s0")
    assert json.loads((run_dir / "config.json").read_text())["config"]["hidden"] == [32]


def test_interrupted_then_resumed_equals_uninterrupted(tmp_path):
    _, ref = run_experiment("mlp-fashion", tier="smoke", out=tmp_path / "a", overrides=TINY)
    with pytest.raises(RunInterrupted):
        run_experiment("mlp-fashion", tier="smoke", out=tmp_path / "b", overrides=TINY,
                       stop_at_step=9)
    run_dir = next((tmp_path / "b" / "mlp-fashion").iterdir())
    assert not (run_dir / "summary.json").exists()
    _, resumed = resume_experiment(run_dir)
    assert_same_results(resumed, ref)


def test_resume_accepts_the_runs_own_name_and_refuses_another(tmp_path):
    with pytest.raises(RunInterrupted):
        run_experiment("mlp-fashion", tier="smoke", out=tmp_path, overrides=TINY,
                       stop_at_step=3)
    run_dir = next((tmp_path / "mlp-fashion").iterdir())
    result = CliRunner().invoke(app, ["run", "cnn-fashion", "--resume", str(run_dir)])
    assert result.exit_code == 2 and "is a run of 'mlp-fashion'" in result.output
    result = CliRunner().invoke(app, ["run", "mlp-fashion", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "summary.json").read_text())["overrides"] == TINY


def test_overrides_are_marked_and_reuse_skips_them(tmp_path):
    run_dir, summary = run_experiment("mlp-fashion", tier="smoke", out=tmp_path,
                                      overrides=TINY)
    assert summary["overrides"] == TINY
    assert latest_run(tmp_path, "mlp-fashion", "smoke") is None
    plain_dir, plain = run_experiment("mlp-fashion", tier="smoke", out=tmp_path)
    assert plain["overrides"] == [] and latest_run(tmp_path, "mlp-fashion", "smoke") == plain_dir


def test_a_missing_artifact_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "empty-home"))
    with pytest.raises(MissingArtifact, match=r"`deepnotes run cnn-fashion --tier smoke`"):
        run_experiment("shift-equivariance", tier="smoke", out=tmp_path)


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


def test_the_synthetic_fashion_fixture_is_learnable_and_recorded(tmp_path, monkeypatch):
    """What the suite runs on where Fashion-MNIST is not installed."""
    from conftest import synthetic_fashion

    folder = synthetic_fashion(tmp_path / "synthetic", n_train=3000, n_test=500)
    monkeypatch.setenv("DEEPNOTES_DATA_DIR", str(folder))
    _, summary = run_experiment("mlp-fashion", tier="smoke", out=tmp_path / "runs")
    assert {d["path"] for d in summary["data"]} == {
        str(folder / "train-images-idx3-ubyte.gz"), str(folder / "t10k-images-idx3-ubyte.gz")}
    assert summary["metrics"]["test_accuracy"] > 0.5  # ten classes: chance is 0.1

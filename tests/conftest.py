"""Shared fixtures. Tests run on CPU with few threads; nothing here touches the network."""

from __future__ import annotations

import pytest
import torch

from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments.runner import resume_experiment, run_experiment

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

TIMING = {"train_seconds", "mlp_train_seconds"}  # wall-clock metrics: never equal twice


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """``smoke_runs(name) -> (run_dir, summary)``: each experiment once per test session at
    the smoke tier, with artifacts kept out of the user's cache. Skips an experiment whose
    data (Fashion-MNIST) is not installed."""
    out = tmp_path_factory.mktemp("runs")
    home = tmp_path_factory.mktemp("home")
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("DEEPNOTES_HOME", str(home))
                try:
                    cache[name] = run_experiment(name, tier="smoke", out=out)
                except FileNotFoundError as exc:
                    if "Fashion-MNIST" not in str(exc):
                        raise
                    pytest.skip(f"{name} needs Fashion-MNIST, which is not installed "
                                f"(apt-get install dataset-fashion-mnist)")
        return cache[name]

    return get


@pytest.fixture
def check_exact_resume(smoke_runs, tmp_path):
    """``check_exact_resume(name, stop_at_step)``: interrupt a smoke run at that step, resume
    it from its folder, and require the uninterrupted run's metrics (wall-clock ones aside)
    and claims."""

    def check(name: str, stop_at_step: int) -> None:
        _, reference = smoke_runs(name)
        with pytest.raises(RunInterrupted):
            run_experiment(name, tier="smoke", out=tmp_path, stop_at_step=stop_at_step)
        run_dir = next((tmp_path / name).iterdir())
        _, resumed = resume_experiment(run_dir)
        untimed = {k: v for k, v in reference["metrics"].items() if k not in TIMING}
        assert {k: resumed["metrics"][k] for k in untimed} == untimed
        assert resumed["claims"] == reference["claims"]

    return check

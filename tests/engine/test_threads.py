"""Thread choice: the idle cores by default, the experiment's cap, the config's pin, and what
a run records."""

from __future__ import annotations

import json
import os

import pytest

from deepnotes.engine import threads
from deepnotes.experiments.registry import get
from deepnotes.experiments.runner import run_experiment


def test_thread_choice(monkeypatch):

    monkeypatch.setenv("DEEPNOTES_THREADS", "3")
    assert threads.default_threads() == 3
    monkeypatch.setenv("DEEPNOTES_THREADS", "zero")
    with pytest.raises(ValueError, match="positive integer"):
        threads.default_threads()
    monkeypatch.delenv("DEEPNOTES_THREADS")
    monkeypatch.setattr(threads, "idle_cores", lambda: 0.2)  # another job holds the cores
    assert threads.default_threads() == 1
    monkeypatch.setattr(threads, "idle_cores", lambda: 64.0)
    assert threads.default_threads() == (os.cpu_count() or 1)
    assert threads.default_threads(world_size=2) == max(1, (os.cpu_count() or 1) // 2)


def test_run_threads_applies_the_experiments_cap_and_the_configs_pin(monkeypatch):
    monkeypatch.setenv("DEEPNOTES_THREADS", "2")
    small = get("linear-collapse")  # max_threads=1: tiny matrices
    assert small.max_threads == 1
    assert threads.run_threads(small.max_threads, small.presets["quick"]) == 1
    conv = get("conv-arithmetic")  # config field threads: smoke pins 1, quick leaves it
    assert threads.run_threads(conv.max_threads, conv.presets["smoke"]) == 1
    assert threads.run_threads(conv.max_threads, conv.presets["quick"]) == 2
    assert threads.run_threads(conv.max_threads, conv.config_for("quick", ["threads=3"])) == 3


def test_a_run_records_the_threads_it_used_and_restores_the_callers(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("DEEPNOTES_THREADS", "2")
    before = torch.get_num_threads()
    run_dir, _ = run_experiment("linear-collapse", tier="smoke", out=tmp_path)
    assert json.loads((run_dir / "config.json").read_text())["threads"] == 1
    assert torch.get_num_threads() == before

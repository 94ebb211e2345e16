"""Shared fixtures. Tests run on CPU with few threads; nothing here touches the network."""

from __future__ import annotations

import pytest
import torch

from deepnotes.experiments.runner import run_experiment

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Each experiment once at the smoke tier (shared by one test module's tests)."""
    out = tmp_path_factory.mktemp("runs")
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = run_experiment(name, tier="smoke", out=out)
        return cache[name]

    return get

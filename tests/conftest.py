"""Shared fixtures. Tests run on CPU with few threads; nothing here touches the network.

* Artifacts go to a per-session ``DEEPNOTES_HOME``, never the user's cache.
* Fashion-MNIST: the real files where they are installed; else (or with
  ``DEEPNOTES_TEST_SYNTHETIC=1``) a synthetic Fashion-MNIST-shaped IDX set with learnable
  structure (:func:`synthetic_fashion`), so every experiment's smoke run and every resume
  test executes on any machine instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from deepnotes.data.idx import write_idx
from deepnotes.data.images import fashion_mnist_source
from deepnotes.engine.run import RunInterrupted
from deepnotes.experiments.registry import REGISTRY, producers
from deepnotes.experiments.runner import resume_experiment, run_experiment

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))

def is_timing(metric: str) -> bool:
    """Wall-clock metrics (``train_seconds``, ``peak_seconds``, ``seconds_per_iteration``...)
    never come out equal twice; every other metric must."""
    return "seconds" in metric


def synthetic_fashion(folder: Path, n_train: int = 12000, n_test: int = 2000,
                      seed: int = 0) -> Path:
    """Write Fashion-MNIST-shaped IDX files (28x28 uint8, labels 0..9) into ``folder``.

    Each class is a smooth random template (sums of Gaussian bumps); an image is its class's
    template, moved by up to 2 pixels, scaled in brightness, plus pixel noise. A linear model
    separates the classes well but not perfectly, a CNN better: learnable, not trivial.
    """
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    templates = torch.zeros(10, 28, 28)
    for c in range(10):
        for _ in range(4):
            cy, cx = torch.rand(2, generator=g) * 16 + 6
            width = torch.rand(1, generator=g) * 3 + 2
            templates[c] += torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width ** 2))
        templates[c] /= templates[c].max()
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = torch.randint(10, (n,), generator=g)
        images = templates[labels]
        shifts = torch.randint(-2, 3, (n, 2), generator=g)
        images = torch.stack([torch.roll(im, (int(a), int(b)), (0, 1))
                              for im, (a, b) in zip(images, shifts, strict=True)])
        images = images * (0.6 + 0.4 * torch.rand(n, 1, 1, generator=g))
        images = (images + 0.25 * torch.rand(n, 28, 28, generator=g)).clamp(0, 1)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", (images * 255).to(torch.uint8))
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels.to(torch.uint8))
    return folder


@pytest.fixture(scope="session", autouse=True)
def _session_environment(tmp_path_factory):
    """Artifacts in a session folder; synthetic Fashion-MNIST where the real one is missing;
    one thread count for every run. Runs otherwise pick their threads from the cores idle at
    their start, and a resumed run keeps its interrupted run's: on a busy machine the
    reference run of a resume test and its interrupted twin could differ in the last bits of
    their reductions."""
    keys = ("DEEPNOTES_HOME", "DEEPNOTES_DATA_DIR", "DEEPNOTES_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["DEEPNOTES_HOME"] = str(tmp_path_factory.mktemp("home"))
    os.environ.setdefault("DEEPNOTES_THREADS", str(torch.get_num_threads()))
    if os.environ.get("DEEPNOTES_TEST_SYNTHETIC") == "1" or fashion_mnist_source() is None:
        os.environ["DEEPNOTES_DATA_DIR"] = str(
            synthetic_fashion(tmp_path_factory.mktemp("synthetic-fashion")))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """``smoke_runs(name) -> (run_dir, summary)``: each experiment once per test session at
    the smoke tier; the producers of the artifacts it requires run first."""
    out = tmp_path_factory.mktemp("runs")
    cache: dict[str, tuple] = {}
    made_by = producers(REGISTRY)

    def get(name: str):
        if name not in cache:
            for artifact in REGISTRY[name].requires:
                get(made_by[artifact].name)
            cache[name] = run_experiment(name, tier="smoke", out=out)
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
        assert_same_results(resumed, reference)

    return check


def assert_same_results(a: dict, b: dict) -> None:
    """Two summaries agree in every metric but wall-clock ones, and in every claim."""
    untimed = {k: v for k, v in b["metrics"].items() if not is_timing(k)}
    assert {k: a["metrics"].get(k) for k in untimed} == untimed
    assert a["claims"] == b["claims"]

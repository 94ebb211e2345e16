"""scripts/gpu_check.sh and gpu_check.py on a machine without a GPU: one line, exit 0; the
tolerance check, the table rows, and the CPU figures quoted from benchmarks/README.md."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
gpu_check = sys.modules.setdefault("gpu_check", importlib.util.module_from_spec(SPEC))
SPEC.loader.exec_module(gpu_check)


def test_without_a_gpu_the_script_says_so_in_one_line_and_exits_0():
    env = {**os.environ, "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and "no CUDA GPU" in lines[0], proc.stdout


def test_the_python_part_alone_also_exits_0_without_a_gpu(monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and "no CUDA GPU" in out[0]


def test_cpu_figures_are_the_ones_benchmarks_readme_states():
    text = (ROOT / "benchmarks" / "README.md").read_text()
    for name, ref in gpu_check.REFERENCE.items():
        assert ref.quote in text, f"{name}: benchmarks/README.md no longer says {ref.quote!r}"
        assert f"{ref.cpu:g}" in ref.quote and f"{ref.train_seconds:g}" in text, name


@pytest.mark.parametrize(("kind", "cpu", "value", "ok"), [
    ("accuracy", 0.9239, 0.9288, True), ("accuracy", 0.9239, 0.9185, False),
    ("loss", 1.7337, 1.7537, True), ("loss", 1.7337, 1.7100, False),
    ("elbo", 240.8, 243.2, True), ("elbo", 240.8, 238.3, False),
])
def test_tolerances_are_the_issues(kind, cpu, value, ok):
    assert gpu_check.within(kind, cpu, value) is ok


def test_rows_show_the_metric_its_change_and_the_verdict():
    summary = {"metrics": {"val_loss": 1.80, "train_seconds": 20.0}}
    config = {"steps": 1000, "batch_size": 128, "seq_len": 64}
    cells, ok = gpu_check.row("char-lm", summary, config, compare=True)
    assert not ok and cells[6] == "NO" and cells[4] == "+0.0663"
    assert cells[-1] == f"{1000 * 128 * 64 / 20:,.0f} chars/s"
    _, not_judged = gpu_check.row("char-lm", summary, config, compare=False)
    assert not_judged
    failed, ok = gpu_check.row("vae-fashion", None, None, compare=True, error="exit 1: boom")
    assert not ok and "FAILED: exit 1: boom" in failed
    table = gpu_check.markdown([cells, failed])
    assert table.count("\n") == 3 and table.startswith("| experiment |")

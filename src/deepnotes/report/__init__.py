"""Render run folders into one self-contained HTML page and a Markdown summary.

The report reads only what runs wrote (``summary.json``, ``figures/*.png``); ``build_report``
may first run the experiments to produce those folders, in the order their artifact
declarations require. Chapter titles and order come from the experiment packages.
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

from deepnotes.engine.files import write_text

NOTES_CHAPTERS = range(1, 10)  # the notes have nine chapters (NOTES_MAP.md)


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
    """Newest finished run folder of experiment ``name`` at ``tier`` under ``runs`` that ran
    with no ``key=value`` overrides (a run with overrides measured something else)."""
    best: tuple[str, Path] | None = None
    for summary in (Path(runs) / name).glob("*/summary.json"):
        try:
            data = json.loads(summary.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if data.get("tier") != tier or data.get("overrides", []) != []:
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


def _data_line(summary: dict) -> tuple[str, bool]:
    """What the run read (from the loaders' records) and whether any of it is a substitute."""
    parts, substitute = [], False
    for d in summary.get("data", []):
        text = f"{d['name']} {d['split']} ({d['size']}"
        text += f", {d['subset']})" if d.get("subset") else ")"
        if d.get("substitute"):
            substitute = True
            text = f"SUBSTITUTE for {d['substitute']}: {text}"
        parts.append(text)
    for a in summary.get("artifacts", []):
        parts.append(f"artifact {a['name']} ({a['tier']}, sha256 {a['sha256'][:12]})")
    return "; ".join(parts) or "no dataset (generated inputs)", substitute


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
        ours = (' <span class="tag">deepnotes\' addition</span>'
                if c.get("source") == "project" else "")
        rows.append(
            f'<tr><td class="verdict {cls}">{"holds" if c["holds"] else "fails"}</td>'
            f"<td>{html.escape(c['statement'])}{ours}<div class=num>{html.escape(c['name'])} = "
            f"<b>{_fmt(c['value'])}</b> {html.escape(c['op'])} {_fmt(c['threshold'])}</div>"
            f"</td></tr>")
    metrics = "".join(f"<tr><td>{html.escape(k)}</td><td class=num>{_fmt(v)}</td></tr>"
                      for k, v in summary["metrics"].items())
    data, substitute = _data_line(summary)
    banners = ""
    if substitute:
        banners += ('<p class="banner">ran on a SUBSTITUTE dataset: its numbers do not speak '
                    'for the dataset the notes use</p>')
    if summary.get("overrides"):
        banners += (f'<p class="banner">run with overrides '
                    f'<code>{html.escape(" ".join(summary["overrides"]))}</code>: not the '
                    f'{html.escape(summary["tier"])} preset</p>')
    figures = "".join(_img(p) for p in sorted((run_dir / "figures").glob("*.png")))
    samples = "".join(f"<p class=meta>{html.escape(k)}</p><pre class=sample>{html.escape(v)}</pre>"
                      for k, v in summary.get("samples", {}).items())
    if samples:
        samples = f"<details><summary>samples</summary>{samples}</details>"
    status = "good" if all_hold else "bad"
    return (
        f'<article class="card {status}">{head}{banners}'
        f'<table class="claims">{"".join(rows)}</table>'
        f'<details><summary>metrics, data, run folder</summary><table class="metrics">{metrics}'
        f"</table><p class=meta>data: {html.escape(data)}</p><p class=meta>tier "
        f"{summary['tier']}, seed {summary['seed']}, {summary['wall_seconds']:.1f}s, "
        f"<code>{html.escape(str(run_dir))}</code></p></details>{samples}<div class=figs>"
        f"{figures}</div></article>")


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
.tag{font-size:11px;background:#e7f0ff;color:#1c4f9c;border-radius:4px;padding:1px 5px;white-space:nowrap}
pre.sample{background:#f6f7f9;white-space:pre-wrap;font-size:12px}
.banner{background:#fff3bf;border-radius:4px;padding:4px 8px;margin:4px 0 8px;font-size:13px}
"""


def render(experiments: Iterable, runs: dict[str, Path | None], errors: dict[str, str],
           tier: str, out_dir: Path) -> ReportResult:
    """Write ``index.html`` and ``summary.md`` under ``out_dir`` from finished run folders."""
    from deepnotes.experiments.registry import TITLES, chapter_of

    out_dir.mkdir(parents=True, exist_ok=True)
    experiments = list(experiments)
    by_chapter: dict[int, list] = {}
    for exp in experiments:
        by_chapter.setdefault(chapter_of(exp), []).append(exp)
    result = ReportResult(html=out_dir / "index.html", markdown=out_dir / "summary.md",
                          errors=dict(errors))
    md = [f"# deepnotes report ({tier} tier)", "",
          "| section | experiment | claim | source | value | threshold | verdict |",
          "|---|---|---|---|---|---|---|"]
    body = []
    substitutes = []
    for chapter, exps in sorted(by_chapter.items()):
        exps = sorted(exps, key=lambda e: section_key(e.sections[0]))
        body.append(f"<h2>{chapter}. {html.escape(TITLES.get(chapter, ''))}</h2>"
                    f'<div class="grid">')
        for exp in exps:
            run_dir = runs.get(exp.name)
            body.append(_card(exp, run_dir, errors.get(exp.name)))
            if exp.name in errors or run_dir is None:
                md.append(f"| {', '.join(exp.sections)} | {exp.name} | did not run | | | | "
                          f"error |")
                continue
            summary = json.loads((run_dir / "summary.json").read_text())
            name = exp.name
            if _data_line(summary)[1]:
                substitutes.append(exp.name)
                name += " (SUBSTITUTE data)"
            if summary.get("overrides"):
                name += f" (overrides: {' '.join(summary['overrides'])})"
            for c in summary["claims"]:
                result.claims += 1
                result.holds += bool(c["holds"])
                statement = c["statement"].replace("|", "\\|")  # a literal | ends a cell
                source = "deepnotes" if c.get("source") == "project" else "notes"
                md.append(f"| {', '.join(exp.sections)} | {name} | {statement} | {source} | "
                          f"{_fmt(c['value'])} | {c['op']} {_fmt(c['threshold'])} | "
                          f"{'holds' if c['holds'] else 'FAILS'} |")
        body.append("</div>")
    missing = [str(n) for n in NOTES_CHAPTERS if n not in TITLES]
    stamp = time.strftime("%Y-%m-%d %H:%M")
    from deepnotes.data.images import fashion_mnist_source, mnist_source

    data_line = (f"Fashion-MNIST: {fashion_mnist_source() or 'missing'} · "
                 f"MNIST: {mnist_source()}")
    if substitutes:
        data_line += f" · SUBSTITUTE data in: {', '.join(substitutes)}"
    totals = (f'<div class="totals"><span><b>{result.holds}</b> / {result.claims} claims hold'
              f"</span><span><b>{len(experiments)}</b> experiments</span>"
              f"<span><b>{len(errors)}</b> failed to run</span></div>")
    not_yet = (f"<h2>Not yet covered</h2><p>chapters {', '.join(missing)} of the notes</p>"
               if missing else "")
    page = (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>deepnotes report</title><style>{_CSS}</style></head><body><header>"
            f"<h1>deepnotes: the notes' claims, measured</h1><p>Intro to Deep Learning (67822)"
            f" &middot; {tier} tier &middot; {stamp}</p><p>{html.escape(data_line)}</p>{totals}"
            f"</header><main>"
            f"{''.join(body)}{not_yet}</main></body></html>")
    md += ["", f"Data: {data_line.replace(' · ', '; ')}",
           "", "source: `notes` = the notes' own claim; `deepnotes` = the project's addition."]
    md += ["", f"{result.holds}/{result.claims} claims hold; {len(errors)} experiment(s) "
           f"failed to run."]
    if missing:
        md += ["", f"Not yet covered: chapters {', '.join(missing)} of the notes."]
    write_text(result.html, page)
    write_text(result.markdown, "\n".join(md) + "\n")
    return result


def _plan(tier: str, only: list[str] | None, chapters: list[int] | None,
          echo: Callable[[str], None]) -> tuple[list[str], list[str]]:
    """``(reported, prerequisites)``: the experiments to report, and the producers of the
    artifacts they need that are neither among them nor already built at ``tier``."""
    from deepnotes.experiments.registry import REGISTRY, chapter_of, get, prerequisites
    from deepnotes.zoo.artifacts import exists

    if only:
        names = [get(n).name for n in only]
    elif chapters:
        unknown = sorted(set(chapters) - {chapter_of(e) for e in REGISTRY.values()})
        if unknown:
            raise ValueError(f"no experiments for chapter(s) {unknown}; chapters with "
                             f"experiments: {sorted({chapter_of(e) for e in REGISTRY.values()})}")
        names = [n for n, e in REGISTRY.items() if chapter_of(e) in chapters]
    else:
        names = list(REGISTRY)
    extra: list[str] = []
    for artifact, producer in prerequisites(names).items():
        if exists(artifact, tier):
            continue
        echo(f"artifact {artifact!r} ({tier}) is missing: running {producer} first")
        extra.append(producer)
    return names, list(dict.fromkeys(extra))


def build_report(tier: str = "quick", only: list[str] | None = None, runs: Path = Path("runs"),
                 reports: Path = Path("reports"), reuse: bool = False, seed: int = 0,
                 echo: Callable[[str], None] = lambda m: None,
                 chapters: list[int] | None = None) -> ReportResult:
    """Run (or, with ``reuse``, find) the experiments at ``tier`` and render the report.

    Runs follow the artifact declarations (producers before consumers); ``chapters`` limits
    the report to those chapters and first builds missing artifacts they require from other
    chapters. With ``reuse`` only finished runs of ``tier`` without overrides are taken.
    """
    from deepnotes.engine.run import RunInterrupted
    from deepnotes.experiments.registry import chapter_of, get, run_order
    from deepnotes.experiments.runner import run_experiment

    names, prerequisite_runs = _plan(tier, only, chapters, echo)
    run_dirs: dict[str, Path | None] = {}
    errors: dict[str, str] = {}
    if reuse:
        for name in names:
            run_dirs[name] = latest_run(runs, name, tier)
            if run_dirs[name] is None:
                errors[name] = (f"no finished {tier} run without overrides under "
                                f"{runs}/{name}")
            else:
                echo(f"{name}: reusing {run_dirs[name]}")
        return render([get(n) for n in names], run_dirs, errors, tier, Path(reports))
    order = run_order([*prerequisite_runs, *names])
    budget = {n: get(n).quick_seconds or 0.0 for n in order}
    scale = {"smoke": 0.05, "quick": 1.0, "full": 10.0}[tier]  # full: a rough guess
    t0 = time.perf_counter()
    chapter_seconds: dict[int, float] = {}
    for i, name in enumerate(order, 1):
        elapsed = time.perf_counter() - t0
        remaining = sum(budget[n] for n in order[i - 1:]) * scale
        echo(f"[{i}/{len(order)}] {name} ({tier}) ... elapsed {elapsed:.0f}s, about "
             f"{remaining:.0f}s to go")
        t = time.perf_counter()
        try:
            run_dirs[name], summary = run_experiment(name, tier=tier, seed=seed, out=runs)
        except RunInterrupted:
            raise  # Ctrl-C stops the report, it does not skip to the next experiment
        except Exception as exc:  # a broken experiment must not hide the others
            errors[name] = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}"
            echo(f"    {name} FAILED to run: {type(exc).__name__}: {exc}")
            continue
        finally:
            chapter = chapter_of(get(name))
            chapter_seconds[chapter] = chapter_seconds.get(chapter, 0.0) + (
                time.perf_counter() - t)
        verdicts = ", ".join(("holds" if c["holds"] else "FAILS") for c in summary["claims"])
        echo(f"    {name}: {time.perf_counter() - t:.1f}s, claims: {verdicts}")
    for chapter, seconds in sorted(chapter_seconds.items()):
        echo(f"chapter {chapter}: {seconds:.1f}s")
    echo(f"all experiments: {time.perf_counter() - t0:.1f}s")
    reported = [n for n in order if n in names]
    errors = {n: e for n, e in errors.items() if n in names or n not in run_dirs}
    return render([get(n) for n in reported], run_dirs, errors, tier, Path(reports))

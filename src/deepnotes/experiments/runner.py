"""Run one experiment into a run folder: config, Fabric launch, signals, summary.json.

This is the library function behind ``deepnotes run``; tests and the report call it too.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import shlex
import signal
import sys
import time
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from deepnotes.engine.checkpoint import CheckpointError
from deepnotes.engine.run import NonFiniteLoss, RunContext, RunInterrupted, write_json
from deepnotes.experiments.base import TIERS, Experiment, Result
from deepnotes.experiments.registry import get

# Errors a user can act on; under DDP they cross the process boundary as data.
_PASSED_ON = (RunInterrupted, NonFiniteLoss, CheckpointError, ValueError, FileNotFoundError)

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


def idle_cores(seconds: float = 0.25) -> float | None:
    """Cores left idle by everything else on the machine, sampled from /proc/stat (Linux)."""
    def sample():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, total

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def default_threads(world_size: int = 1) -> int:
    """Intra-op threads per process: ``$DEEPNOTES_THREADS``, else the cores that are idle now.

    Measured on a 2-core machine with one other busy process: an MLP step took 5.7 ms with
    1 thread and 357 ms with 2 (torch's threads wait for a descheduled partner at every op).
    So threads follow the *free* cores, sampled before the run; the choice is recorded in
    config.json and reused on resume (thread count can change the last bits of reductions).
    """
    env = os.environ.get("DEEPNOTES_THREADS")
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"DEEPNOTES_THREADS must be a positive integer, got {env!r}")
        return int(env)
    cores = os.cpu_count() or 1
    idle = idle_cores()
    free = cores if idle is None else min(cores, max(1, int(idle + 0.3)))
    return max(1, free // world_size)


def run_threads(exp, cfg: Any, world_size: int = 1) -> int:
    """The intra-op threads a run of ``exp`` with ``cfg`` uses: the config's ``threads`` field
    if it is > 0, else :func:`default_threads` capped at ``exp.max_threads``."""
    pinned = getattr(cfg, "threads", 0)
    if pinned:
        return pinned
    threads = default_threads(world_size)
    return min(threads, exp.max_threads) if exp.max_threads else threads


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


def _worker(fabric, name: str, cfg_values: dict[str, Any], run_dir: str, seed: int, tier: str,
            resume: bool, stop_at_step: int | None, threads: int) -> dict[str, Any]:
    exp = get(name)
    # The config travels as a plain dict: Fabric's launcher refuses frozen dataclasses.
    cfg = config_from_dict(exp.config, cfg_values)
    caller_threads = torch.get_num_threads()  # restored after, for in-process callers
    torch.set_num_threads(threads)
    import matplotlib

    matplotlib.use("Agg")  # experiments draw into files, never onto a screen
    fabric.seed_everything(seed, verbose=False)
    ctx = RunContext(Path(run_dir), fabric, seed=seed, tier=tier, resume=resume,
                     stop_at_step=stop_at_step)

    def on_signal(signum, _frame):
        if not ctx.in_loop or ctx.interrupt_signal is not None:
            # Outside a training loop there is nothing to checkpoint; a second signal means
            # "stop now".
            raise KeyboardInterrupt
        ctx.interrupt_signal = signum

    previous = {}
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    t0 = time.perf_counter()
    try:
        result = exp.run(cfg, ctx)
    except _PASSED_ON as exc:
        if fabric.world_size > 1:
            # Spawned processes would hand the parent a ProcessRaisedException; send the
            # error back as data so the caller sees the same exception type as with 1 process.
            return {"_error": type(exc).__name__, "_message": str(exc)}
        raise
    finally:
        ctx.close()
        torch.set_num_threads(caller_threads)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    wall = time.perf_counter() - t0
    summary = make_summary(exp, tier, seed, result, wall)
    if fabric.global_rank == 0:
        write_json(Path(run_dir) / "summary.json", summary)
    return summary


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN/Inf; a metric that is not a number is written as null.
    return value if math.isfinite(value) else None


def make_summary(exp: Experiment, tier: str, seed: int, result: Result, wall: float) -> dict:
    if not isinstance(result, Result):
        raise TypeError(f"experiment {exp.name!r} returned {type(result).__name__}, not Result")
    return {
        "experiment": exp.name,
        "sections": list(exp.sections),
        "tier": tier,
        "seed": seed,
        "data": result.data,
        "metrics": {k: _finite_or_none(float(v)) for k, v in result.metrics.items()},
        "claims": [{**c.to_dict(), "value": _finite_or_none(c.value)} for c in result.claims],
        "wall_seconds": round(wall, 3),
    }


def run_experiment(
    name: str,
    tier: str = "quick",
    seed: int = 0,
    out: Path | str = "runs",
    devices: int = 1,
    precision: str = "32-true",
    overrides: Iterable[str] = (),
    accelerator: str = "auto",
    stop_at_step: int | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Run experiment ``name`` into a new folder under ``out``; returns (folder, summary)."""
    exp = get(name)
    if tier not in TIERS:
        raise ValueError(f"unknown tier {tier!r}; expected one of {list(TIERS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {list(PRECISIONS)}")
    if devices < 1:
        raise ValueError(f"devices must be >= 1, got {devices}")
    cfg = exp.config_for(tier, overrides)
    threads = run_threads(exp, cfg, devices)
    run_dir = _new_run_dir(Path(out), name, seed)
    write_json(run_dir / "config.json", {
        "experiment": name, "tier": tier, "seed": seed, "devices": devices,
        "precision": precision, "accelerator": accelerator, "overrides": list(overrides),
        "threads": threads,
        "config": dataclasses.asdict(cfg),
    })
    (run_dir / "command.txt").write_text(shlex.join(["deepnotes", *sys.argv[1:]]) + "\n"
                                         if Path(sys.argv[0]).name == "deepnotes"
                                         else f"run_experiment({name!r}, tier={tier!r}, "
                                              f"seed={seed}, overrides={list(overrides)!r})\n")
    write_json(run_dir / "env.json", _env_info(devices, precision))
    summary = _launch(name, cfg, run_dir, seed, tier, devices, precision, accelerator,
                      resume=False, stop_at_step=stop_at_step, threads=threads)
    return run_dir, summary


def resume_experiment(run_dir: Path | str, stop_at_step: int | None = None
                      ) -> tuple[Path, dict[str, Any]]:
    """Continue the interrupted run in ``run_dir`` with its saved config."""
    run_dir = Path(run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a run folder: no config.json. Pass the folder that "
                         f"'deepnotes run' printed, e.g. runs/NAME/20260101-120000-s0")
    saved = json.loads(config_path.read_text())
    exp = get(saved["experiment"])
    cfg = config_from_dict(exp.config, saved["config"])
    summary = _launch(saved["experiment"], cfg, run_dir, saved["seed"], saved["tier"],
                      saved["devices"], saved["precision"], saved.get("accelerator", "auto"),
                      resume=True, stop_at_step=stop_at_step,
                      threads=saved.get("threads") or run_threads(exp, cfg, saved["devices"]))
    return run_dir, summary


@contextlib.contextmanager
def _signals_forwarded_to_workers():
    """While DDP workers run, the parent passes SIGTERM on to them and ignores SIGINT.

    A terminal's Ctrl-C already reaches every process of the group, so the workers checkpoint
    and stop together; SIGTERM (``kill PID``, a scheduler) reaches only the parent and would
    otherwise kill it and orphan the workers without a checkpoint.
    """
    import multiprocessing
    import threading

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


def _launch(name, cfg, run_dir, seed, tier, devices, precision, accelerator, resume,
            stop_at_step, threads):
    from lightning.fabric import Fabric

    cfg = dataclasses.asdict(cfg)
    if devices > 1:
        fabric = Fabric(accelerator=accelerator, devices=devices, precision=precision,
                        strategy="ddp_spawn")
        with _signals_forwarded_to_workers():
            out = fabric.launch(_worker, name, cfg, str(run_dir), seed, tier, resume,
                                stop_at_step, threads)
        if "_error" in out:
            raise {e.__name__: e for e in _PASSED_ON}[out["_error"]](out["_message"])
        return out
    fabric = Fabric(accelerator=accelerator, devices=1, precision=precision)
    return _worker(fabric, name, cfg, str(run_dir), seed, tier, resume, stop_at_step, threads)


__all__ = ["run_experiment", "resume_experiment", "RunInterrupted", "config_from_dict"]

"""The run folder and everything a training loop needs from it.

A :class:`RunContext` is handed to every experiment's ``run(cfg, ctx)``. It owns:

* ``ctx.fabric`` -- Lightning Fabric (device, precision, data-parallel strategy);
* ``ctx.log(step, **metrics)`` -- ``metrics.jsonl`` + TensorBoard, with a NaN/Inf guard;
* ``ctx.figure(fig, name)`` -- PNGs under ``figures/``;
* ``ctx.steps(total, track=..., phase=...)`` -- the step loop: progress bar with ETA and the
  running loss, periodic and on-signal checkpoints, and exact resume.

A loop looks like::

    for step in ctx.steps(cfg.steps, track={"model": model, "optimizer": opt}):
        x, y = batches.batch(step)
        loss = ...
        ctx.log(step, loss=loss.item())

Resuming restores every tracked object, the global RNG states and the step, so the resumed
run ends with the same numbers as one never interrupted (batches are a pure function of the
step, see :mod:`deepnotes.data.batches`). A phase that already finished is skipped on resume
with its final state restored.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepnotes.engine.checkpoint import load_checkpoint, save_checkpoint, save_weights
from deepnotes.engine.progress import Progress


class RunInterrupted(Exception):
    """Raised after a checkpoint was written in response to SIGINT/SIGTERM."""


class NonFiniteLoss(FloatingPointError):
    """A logged loss became NaN or Inf; the last good checkpoint is kept."""


def _rng_state() -> dict[str, Any]:
    # Plain lists/tuples only, so the checkpoint loads with weights_only=True.
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": list(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _unwrap(module: Any) -> Any:
    # Fabric wraps modules (and DDP wraps them again); checkpoints hold the plain module, so
    # keys never carry a "module." prefix and a 1-process run can load a DDP checkpoint.
    original = getattr(module, "_original_module", None)
    if original is not None:
        return original
    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.module
    return module


_STEM = re.compile(r"^[A-Za-z0-9_-]+$")


class RunContext:
    """State and services of one run folder (see module docstring).

    Args:
        run_dir: the folder (created by the caller).
        fabric: a launched ``lightning.fabric.Fabric``.
        seed: the run's seed.
        tier: ``smoke`` / ``quick`` / ``full``.
        resume: restore from checkpoints found in ``run_dir``.
        checkpoint_seconds: wall-clock time between periodic checkpoints.
        stop_at_step: simulate an interruption after this global step (for tests); also read
            from ``$DEEPNOTES_STOP_AT_STEP``.
    """

    def __init__(
        self,
        run_dir: Path,
        fabric: Any,
        seed: int,
        tier: str,
        resume: bool = False,
        checkpoint_seconds: float = 60.0,
        stop_at_step: int | None = None,
    ) -> None:
        self.dir = Path(run_dir)
        self.fabric = fabric
        self.seed = seed
        self.tier = tier
        self.resume = resume
        self.checkpoint_seconds = checkpoint_seconds
        env_stop = os.environ.get("DEEPNOTES_STOP_AT_STEP")
        self.stop_at_step = stop_at_step if stop_at_step is not None else (
            int(env_stop) if env_stop else None)
        self.interrupt_signal: int | None = None
        self.in_loop = False  # a ctx.steps loop is running (signals are handled there)
        self.is_main = fabric.global_rank == 0
        self.figures_dir = self.dir / "figures"
        self.checkpoint_dir = self.dir / "checkpoints"
        self._global_step = 0  # counts steps over all phases, for stop_at_step
        self._writer = None
        self._metrics_file = None
        self.history: list[dict[str, Any]] = []
        if self.is_main:
            self.figures_dir.mkdir(parents=True, exist_ok=True)
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            self._open_logs()

    # ----------------------------------------------------------------- logging
    def _open_logs(self) -> None:
        path = self.dir / "metrics.jsonl"
        if self.resume and path.exists():
            rows = [json.loads(line) for line in path.read_text().splitlines() if line]
            # Everything after the last checkpoint of each loop runs again on resume, and so
            # does everything outside loops: keep only rows a checkpoint already covers.
            saved = self._checkpointed_steps()
            self.history = [r for r in rows if r["step"] < saved.get(r["phase"], 0)]
            tmp = path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in self.history))
            os.replace(tmp, path)
        self._metrics_file = open(path, "a", buffering=1)  # noqa: SIM115 (closed in close())

    def _checkpointed_steps(self) -> dict[str, int]:
        from deepnotes.engine.checkpoint import load_state_file

        steps = {}
        for ckpt in self.checkpoint_dir.glob("*.ckpt"):
            steps[self._phase_of(ckpt.stem)] = int(load_state_file(ckpt)["step"])
        return steps

    def _tensorboard(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.dir))
        return self._writer

    def log(self, step: int, phase: str = "train", **metrics: float) -> None:
        """Record scalar metrics at ``step``; a NaN/Inf in any ``*loss*`` key stops the run."""
        values = {k: float(v) for k, v in metrics.items()}
        for key, value in values.items():
            if "loss" in key and not math.isfinite(value):
                raise NonFiniteLoss(
                    f"{key} became {value} at step {step} of phase {phase!r}; the run stops here. "
                    f"The last good checkpoint in {self.checkpoint_dir} is kept. Try a smaller "
                    f"learning rate or precision=32-true."
                )
        if not self.is_main:
            return
        record = {"phase": phase, "step": int(step), **values}
        self.history.append(record)
        assert self._metrics_file is not None
        self._metrics_file.write(json.dumps(record) + "\n")
        writer = self._tensorboard()
        for key, value in values.items():
            writer.add_scalar(f"{phase}/{key}", value, step)

    def series(self, key: str, phase: str = "train") -> tuple[list[int], list[float]]:
        """The logged ``(steps, values)`` of ``key`` (survives resume: read from metrics.jsonl)."""
        rows = [r for r in self.history if r["phase"] == phase and key in r]
        return [r["step"] for r in rows], [r[key] for r in rows]

    def figure(self, fig: Any, name: str) -> Path | None:
        """Save a matplotlib figure as ``figures/<name>.png`` and close it."""
        import matplotlib.pyplot as plt

        path = self.figures_dir / f"{name}.png"
        if self.is_main:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return path if self.is_main else None

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the run's seed (``offset`` separates independent uses)."""
        return torch.Generator().manual_seed(self.seed * 7919 + offset)

    # ----------------------------------------------------------------- the loop
    def steps(
        self,
        total: int,
        track: Mapping[str, Any] | None = None,
        phase: str = "train",
        desc: str | None = None,
        state: dict[str, Any] | None = None,
    ) -> Iterator[int]:
        """Yield step numbers ``start..total-1`` with checkpointing and resume.

        Args:
            total: number of steps in this phase.
            track: name -> object with ``state_dict``/``load_state_dict`` (modules, optimizers,
                schedulers). Modules' weights go to safetensors, the rest to the ``.ckpt``.
            phase: unique name of this loop within the run (several loops per run are fine).
            state: a dict of extra plain data (numbers, lists, tensors) saved and restored in
                place, e.g. running averages kept by the loop.
        """
        track = dict(track or {})
        if phase != "train" and (phase == "last" or not _STEM.match(phase)):
            raise ValueError(f"phase name {phase!r} must be letters, digits, - and _, "
                             f"and not 'last'")
        stem = "last" if phase == "train" else phase
        start = 0
        if self.resume:
            start = self._restore(stem, track, state)
            if start >= total:
                self._global_step += total
                return
        bar = Progress(total=total, initial=start, desc=desc or phase, enabled=self.is_main)
        last_save = time.monotonic()
        self.in_loop = True
        try:
            for step in range(start, total):
                yield step
                self._global_step += 1
                bar.update(self._last_loss(phase, step))
                finished = step + 1 == total
                stop_now = self.interrupt_signal is not None or (
                    self.stop_at_step is not None and self._global_step >= self.stop_at_step
                )
                if self.fabric.world_size > 1:
                    # Every rank must stop at the same step, or one waits forever for the other.
                    stop_now = self.fabric.strategy.reduce_boolean_decision(stop_now, all=False)
                due = time.monotonic() - last_save >= self.checkpoint_seconds
                if finished or stop_now or due:
                    self._save(stem, step + 1, track, state, final=finished)
                    last_save = time.monotonic()
                if stop_now and not finished:
                    why = (f"signal {self.interrupt_signal}" if self.interrupt_signal is not None
                           else f"stop_at_step={self.stop_at_step}")
                    raise RunInterrupted(
                        f"interrupted by {why} at step {step + 1}/{total} of phase {phase!r}; "
                        f"checkpoint written. Continue with: deepnotes run --resume {self.dir}"
                    )
        finally:
            self.in_loop = False
            bar.close()

    def _last_loss(self, phase: str, step: int) -> float | None:
        if self.history and self.history[-1]["phase"] == phase and self.history[-1]["step"] == step:
            for key, value in self.history[-1].items():
                if "loss" in key:
                    return value
        return None

    def _save(self, stem: str, next_step: int, track: Mapping[str, Any], state,
              final: bool = False) -> None:
        if self.is_main:
            weights: dict[str, torch.Tensor] = {}
            others: dict[str, Any] = {}
            for name, obj in track.items():
                obj = _unwrap(obj)
                if isinstance(obj, torch.nn.Module):
                    for key, tensor in obj.state_dict().items():
                        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                            # A loop that logs every N steps can miss the NaN loss itself;
                            # never let such a state replace the last good checkpoint.
                            raise NonFiniteLoss(
                                f"{name}.{key} holds NaN/Inf before step {next_step}; the run "
                                f"stops here and keeps the last good checkpoint in "
                                f"{self.checkpoint_dir}. Try a smaller learning rate.")
                        weights[f"{name}.{key}"] = tensor
                else:
                    others[name] = obj.state_dict()
            payload = {"objects": others, "rng": _rng_state(), "state": dict(state or {})}
            save_checkpoint(self.checkpoint_dir, stem, next_step, weights, payload)
            if final and weights:
                # The finished weights alone, for export: checkpoints/model.safetensors.
                name = "model" if stem == "last" else f"{stem}-model"
                save_weights(self.checkpoint_dir / f"{name}.safetensors", weights)
        if self.fabric.world_size > 1:
            self.fabric.barrier()

    def _restore(self, stem: str, track: Mapping[str, Any], state) -> int:
        found = load_checkpoint(self.checkpoint_dir, stem)
        if found is None:
            return 0
        weights, payload = found
        for name, obj in track.items():
            obj = _unwrap(obj)
            if isinstance(obj, torch.nn.Module):
                prefix = f"{name}."
                sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
                obj.load_state_dict(sub)
            else:
                obj.load_state_dict(payload["objects"][name])
        if state is not None:
            state.update(payload.get("state", {}))
        _set_rng_state(payload["rng"])
        step = int(payload["step"])
        return step

    @staticmethod
    def _phase_of(stem: str) -> str:
        return "train" if stem == "last" else stem

    def close(self) -> None:
        if self._metrics_file is not None:
            self._metrics_file.close()
            self._metrics_file = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (temp + rename)."""
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()

"""The run folder and everything a training loop needs from it.

A :class:`RunContext` is handed to every experiment's ``run(cfg, ctx)``. It owns:

* ``ctx.fabric`` -- Lightning Fabric (device, precision, data-parallel strategy);
* ``ctx.log(step, **metrics)`` -- ``metrics.jsonl`` + TensorBoard, with a NaN/Inf guard;
  inside a ``ctx.steps`` loop of the same phase it writes every ``log_every``-th step and
  the last one (the loop's cadence), so a loop calls it on every step;
* ``ctx.figure(fig, name)`` -- PNGs under ``figures/``;
* ``ctx.steps(total, track=..., phase=...)`` -- the step loop: progress bar with ETA and the
  running loss, periodic and on-signal checkpoints, and exact resume;
* ``ctx.rng(name, index)`` -- a named random stream (:mod:`deepnotes.engine.streams`);
* ``ctx.batches(*tensors, batch_size=...)`` -- this rank's step-addressed mini-batches;
* ``ctx.train_seconds`` -- wall time spent inside ``ctx.steps`` loops, less what ran under
  ``with ctx.untimed():`` (evaluation inside a loop).

A loop looks like::

    batches = ctx.batches(x_train, y_train, batch_size=128)
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

import contextlib
import json
import math
import os
import random
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepnotes.engine.checkpoint import load_checkpoint, save_checkpoint, save_weights
from deepnotes.engine.files import write_text
from deepnotes.engine.progress import Progress
from deepnotes.engine.streams import stream_generator, stream_seed


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


def unwrap(module: Any) -> Any:
    """The plain module inside Fabric's wrapper (and DDP's): checkpoints and artifacts hold
    it, so keys never carry a ``module.`` prefix and a 1-process run loads a DDP checkpoint."""
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
        experiment, config: the experiment's name and resolved config (plain data), for the
            metadata of what the run saves.
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
        experiment: str = "",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.dir = Path(run_dir)
        self.experiment = experiment
        self.config = dict(config or {})
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
        self._loop: tuple[str, int, int] | None = None  # (phase, total, log_every) running
        self._nonfinite: str | None = None  # a NaN/Inf seen on this rank, not yet agreed on
        self._end_phase = False  # the running loop ends after this step (ctx.end_phase())
        self.train_seconds = 0.0
        self._untimed = 0.0
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
            write_text(path, "".join(json.dumps(r) + "\n" for r in self.history))
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
        """Record scalar metrics at ``step``; a NaN/Inf in any ``*loss*`` key stops the run.

        Inside a ``ctx.steps`` loop of the same ``phase`` only every ``log_every``-th step and
        the last step are written; the NaN/Inf guard looks at every call. Elsewhere every call
        is written.
        """
        values = {k: float(v) for k, v in metrics.items()}
        for key, value in values.items():
            if "loss" in key and not math.isfinite(value):
                message = (
                    f"{key} became {value} at step {step} of phase {phase!r}; the run stops here. "
                    f"The last good checkpoint in {self.checkpoint_dir} is kept. Try a smaller "
                    f"learning rate or precision=32-true."
                )
                if self.fabric.world_size > 1 and self._loop is not None:
                    # The ranks agree at the end of this step and all stop together; raising
                    # here alone would leave the others waiting in a collective forever.
                    self._nonfinite = self._nonfinite or message
                    return
                raise NonFiniteLoss(message)
        if not self.is_main or not self.due(step, phase):
            return
        record = {"phase": phase, "step": int(step), **values}
        self.history.append(record)
        assert self._metrics_file is not None
        self._metrics_file.write(json.dumps(record) + "\n")
        writer = self._tensorboard()
        for key, value in values.items():
            writer.add_scalar(f"{phase}/{key}", value, step)

    def due(self, step: int, phase: str = "train") -> bool:
        """Whether ``ctx.log(step, phase)`` would write: always outside a loop of ``phase``,
        inside it every ``log_every``-th step and the last. Compute costly metrics only then."""
        if self._loop is None or self._loop[0] != phase:
            return True
        _, total, every = self._loop
        return step % every == 0 or step + 1 == total

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

    def rng(self, name: str, index: int = 0) -> torch.Generator:
        """The named random stream ``(seed, name, index)`` of this run (see
        :mod:`deepnotes.engine.streams`); e.g. ``ctx.rng("augment", step)``."""
        return stream_generator(self.seed, name, index)

    def manual_seed(self, name: str) -> None:
        """Seed torch's global generator from stream ``name`` (for code that draws from it,
        e.g. ``nn.Module`` initialization): ``ctx.manual_seed("init")`` before building."""
        torch.manual_seed(stream_seed(self.seed, name))

    def batches(self, *tensors: torch.Tensor, batch_size: int, stream: str = "batches",
                **kwargs: Any):
        """:class:`deepnotes.data.Batches` over ``tensors`` for this rank, with epoch
        permutations from the stream ``stream`` of this run."""
        from deepnotes.data.batches import Batches

        return Batches(*tensors, batch_size=batch_size, seed=self.seed, stream=stream,
                       rank=self.fabric.global_rank, world_size=self.fabric.world_size,
                       **kwargs)

    @contextlib.contextmanager
    def untimed(self) -> Iterator[None]:
        """Exclude the block (evaluation inside a training loop) from ``train_seconds``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._untimed += time.perf_counter() - t0

    # ----------------------------------------------------------------- the loop
    def steps(
        self,
        total: int,
        track: Mapping[str, Any] | None = None,
        phase: str = "train",
        desc: str | None = None,
        state: dict[str, Any] | None = None,
        log_every: int | None = None,
    ) -> Iterator[int]:
        """Yield step numbers ``start..total-1`` with checkpointing and resume.

        Args:
            total: number of steps in this phase.
            track: name -> object with ``state_dict``/``load_state_dict`` (modules, optimizers,
                schedulers). Modules' weights go to safetensors, the rest to the ``.ckpt``.
            phase: unique name of this loop within the run (several loops per run are fine).
            state: a dict of extra plain data (numbers, lists, tensors) saved and restored in
                place, e.g. running averages kept by the loop.
            log_every: ``ctx.log`` cadence in this loop (default: about 100 rows per loop).
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
        every = log_every or max(1, total // 100)
        if every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        bar = Progress(total=total, initial=start, desc=desc or phase, enabled=self.is_main)
        last_save = time.monotonic()
        self.in_loop = True
        self._loop = (phase, total, every)
        self._end_phase = False
        t0, untimed0 = time.perf_counter(), self._untimed
        try:
            for step in range(start, total):
                yield step
                self._global_step += 1
                bar.update(self._last_loss(phase, step))
                finished = step + 1 == total or self._end_phase
                stop_now = self.interrupt_signal is not None or (
                    self.stop_at_step is not None and self._global_step >= self.stop_at_step
                )
                if self.fabric.world_size > 1:
                    stop_now = self._agree(stop_now, step, phase)
                due = time.monotonic() - last_save >= self.checkpoint_seconds
                if finished or stop_now or due:
                    # A phase ended early is saved as complete: resume skips it, restored.
                    self._save(stem, total if finished else step + 1, track, state,
                               final=finished,
                               train_seconds=self.train_seconds + self._elapsed(t0, untimed0))
                    last_save = time.monotonic()
                if finished:
                    break
                if stop_now and not finished:
                    why = (f"signal {self.interrupt_signal}" if self.interrupt_signal is not None
                           else f"stop_at_step={self.stop_at_step}")
                    raise RunInterrupted(
                        f"interrupted by {why} at step {step + 1}/{total} of phase {phase!r}; "
                        f"checkpoint written. Continue with: deepnotes run --resume {self.dir}"
                    )
        finally:
            self.train_seconds += self._elapsed(t0, untimed0)
            self.in_loop = False
            self._loop = None
            bar.close()

    def end_phase(self) -> None:
        """End the running ``ctx.steps`` loop after the current step (e.g. a loss target is
        reached): it checkpoints as finished, so a resumed run skips it with its final state.
        Decide from the step and checkpointed state only, identically on every rank."""
        if self._loop is None:
            raise RuntimeError("ctx.end_phase() is called inside a ctx.steps loop")
        self._end_phase = True

    def _agree(self, stop_now: bool, step: int, phase: str) -> bool:
        """One all-reduce per step carries both decisions that every rank must share: stop
        (a signal or stop_at_step on any rank) and a NaN/Inf loss on any rank. Otherwise one
        rank would leave the loop and the others wait for it in a collective forever."""
        world, rank = self.fabric.world_size, self.fabric.global_rank
        flags = torch.zeros(world + 1, device=self.fabric.device)
        flags[0] = float(stop_now)
        flags[1 + rank] = float(self._nonfinite is not None)
        flags = self.fabric.all_reduce(flags, reduce_op="sum")
        bad = [r for r in range(world) if flags[1 + r] > 0]
        if bad:
            self.fabric.barrier()  # every rank at this point before any unwinds (see runner)
            detail = f" Here: {self._nonfinite}" if self._nonfinite else ""
            raise NonFiniteLoss(
                f"NaN/Inf loss on rank(s) {bad} at step {step} of phase {phase!r}; all ranks "
                f"stop. The last good checkpoint in {self.checkpoint_dir} is kept.{detail}")
        return bool(flags[0] > 0)

    def _elapsed(self, t0: float, untimed0: float) -> float:
        return time.perf_counter() - t0 - (self._untimed - untimed0)

    def _last_loss(self, phase: str, step: int) -> float | None:
        if self.history and self.history[-1]["phase"] == phase and self.history[-1]["step"] == step:
            for key, value in self.history[-1].items():
                if "loss" in key:
                    return value
        return None

    def _save(self, stem: str, next_step: int, track: Mapping[str, Any], state,
              final: bool = False, train_seconds: float = 0.0) -> None:
        # Every rank checks (replicas hold the same weights), so all of them stop together.
        weights: dict[str, torch.Tensor] = {}
        others: dict[str, Any] = {}
        for name, obj in track.items():
            obj = unwrap(obj)
            if isinstance(obj, torch.nn.Module):
                for key, tensor in obj.state_dict().items():
                    if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                        # A loss guard can miss the NaN itself (a loss that is not logged);
                        # never let such a state replace the last good checkpoint.
                        raise NonFiniteLoss(
                            f"{name}.{key} holds NaN/Inf before step {next_step}; the run "
                            f"stops here and keeps the last good checkpoint in "
                            f"{self.checkpoint_dir}. Try a smaller learning rate.")
                    weights[f"{name}.{key}"] = tensor
            elif self.is_main:
                others[name] = obj.state_dict()
        if self.is_main:
            payload = {"objects": others, "rng": _rng_state(), "state": dict(state or {}),
                       "train_seconds": float(train_seconds)}
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
            obj = unwrap(obj)
            if isinstance(obj, torch.nn.Module):
                prefix = f"{name}."
                sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
                obj.load_state_dict(sub)
            else:
                obj.load_state_dict(payload["objects"][name])
        if state is not None:
            state.update(payload.get("state", {}))
        _set_rng_state(payload["rng"])
        # Phases restore in order, so the last one restored carries the total so far.
        self.train_seconds = float(payload.get("train_seconds", self.train_seconds))
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

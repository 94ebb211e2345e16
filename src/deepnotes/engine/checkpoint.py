"""Crash-safe checkpoints: safetensors for weights, a weights-only torch file for the rest.

Layout of one checkpoint ``<stem>`` inside ``checkpoints/``::

    <stem>-<step>.safetensors   weights of every tracked module (keys "<name>.<param>")
    <stem>.ckpt                 torch.save of plain containers and tensors: step, optimizer
                                states, RNG states, user state, and the weights file's name

Order of writes: the weights file first (temp + rename), then ``<stem>.ckpt`` (temp + rename),
then older weights files are removed. A crash at any point leaves the previous ``<stem>.ckpt``
pointing at a weights file that still exists, so no finished work is lost.

Loading uses ``torch.load(weights_only=True)``: a file holding a pickled object of any other
class is refused with :class:`CheckpointError`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from deepnotes.engine.files import atomic_write


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be trusted or read."""


def save_checkpoint(
    directory: Path,
    stem: str,
    step: int,
    weights: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> Path:
    """Write ``weights`` (flat name -> tensor) and ``state`` (plain data) atomically."""
    directory = Path(directory)
    weights_name = f"{stem}-{step:09d}.safetensors"
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    atomic_write(
        directory / weights_name,
        lambda tmp: save_file(tensors, tmp, metadata={"step": str(step)}),
    )
    payload = dict(state)
    payload["step"] = int(step)
    payload["weights_file"] = weights_name
    ckpt = directory / f"{stem}.ckpt"
    atomic_write(ckpt, lambda tmp: torch.save(payload, tmp))
    own = re.compile(rf"^{re.escape(stem)}-\d{{9}}\.safetensors$")
    for old in directory.glob(f"{stem}-*.safetensors"):
        if own.match(old.name) and old.name != weights_name:
            old.unlink(missing_ok=True)
    return ckpt


def save_weights(path: Path, weights: dict[str, torch.Tensor]) -> None:
    """Write weights alone as safetensors, atomically."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in weights.items()}
    atomic_write(Path(path), lambda tmp: save_file(tensors, tmp))


def load_checkpoint(directory: Path, stem: str) -> tuple[dict[str, torch.Tensor], dict] | None:
    """Return ``(weights, state)`` of ``<stem>.ckpt`` or ``None`` if there is none."""
    ckpt = Path(directory) / f"{stem}.ckpt"
    if not ckpt.exists():
        return None
    state = load_state_file(ckpt)
    weights_path = Path(directory) / str(state.get("weights_file", ""))
    if not weights_path.is_file():
        raise CheckpointError(
            f"{ckpt} names weights file {weights_path.name!r}, which is missing; "
            "the checkpoint folder was changed by hand. Start a new run instead of --resume."
        )
    try:
        weights = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read weights {weights_path}: {exc}") from exc
    return weights, state


def load_state_file(path: Path) -> dict:
    """``torch.load`` with ``weights_only=True``; foreign pickled classes are refused."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"refusing to load {path}: it contains a pickled object that is not plain data "
            f"(tensors, numbers, strings, lists, dicts). Only checkpoints written by deepnotes "
            f"can be resumed. Details: {str(exc).splitlines()[0]}"
        ) from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path} is not a deepnotes checkpoint (no 'step' entry)")
    return state

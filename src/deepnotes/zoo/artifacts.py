"""Trained models saved by name, so later experiments load them instead of retraining.

An artifact ``NAME`` is two files in the artifact folder:

* ``NAME.safetensors``: the weights (``state_dict``, contiguous tensors);
* ``NAME.json``: what is needed to use them: the architecture (a ``deepnotes`` class and its
  keyword arguments), the input normalization ``mean``/``std``, the test accuracy, the
  creation date, the SHA-256 of the weights file, and free-form ``extra`` data.

The folder is ``$DEEPNOTES_HOME/artifacts`` when ``DEEPNOTES_HOME`` is set, else
``$XDG_CACHE_HOME/deepnotes/artifacts`` (default ``~/.cache/deepnotes/artifacts``). Each file
is written to a temporary name and renamed (atomic on one file system); the JSON is written
last and names the weights' hash, so a reader never pairs metadata with half-written or
foreign weights.

Loading a missing artifact raises ``ValueError`` naming the command that builds it. There is
no silent substitution: a caller that accepts a lesser model passes ``fallbacks`` (e.g. the
quick-tier ``cnn-fashion-quick`` for ``cnn-fashion``) and the returned
:class:`Artifact` says which name was loaded, so the experiment can record it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

FORMAT_VERSION = 1

# How to build each artifact that deepnotes knows about (the error message names it).
BUILD_COMMANDS: dict[str, str] = {
    "cnn-fashion": "deepnotes run cnn-fashion --tier full",
    "cnn-fashion-quick": "deepnotes run cnn-fashion --tier quick",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def artifact_dir() -> Path:
    """The folder artifacts are saved to and loaded from (see module docstring)."""
    home = os.environ.get("DEEPNOTES_HOME")
    if home:
        return Path(home) / "artifacts"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "deepnotes" / "artifacts"


def build_command(name: str) -> str:
    """The command that creates artifact ``name``."""
    return BUILD_COMMANDS.get(name, f"the experiment that saves {name!r}")


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"artifact name must match {_NAME.pattern} (lower-case, no slashes), "
                         f"got {name!r}")


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact.

    Attributes:
        name: the name actually loaded (may be a fallback of the one asked for).
        requested: the name asked for.
        path: the weights file.
        state_dict: the weights.
        meta: the JSON metadata (``architecture``, ``normalization``, ``accuracy``,
            ``created``, ``extra`` ...).
    """

    name: str
    requested: str
    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def is_fallback(self) -> bool:
        return self.name != self.requested

    @property
    def mean(self) -> float:
        return float(self.meta["normalization"]["mean"])

    @property
    def std(self) -> float:
        return float(self.meta["normalization"]["std"])

    @property
    def accuracy(self) -> float:
        return float(self.meta["accuracy"])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _plain_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # Fabric wraps modules; save the plain module's tensors, contiguous (safetensors needs it,
    # and channels_last weights are not).
    module = getattr(model, "_forward_module", None) or getattr(model, "module", model)
    return {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}


def save_artifact(
    name: str,
    model: torch.nn.Module,
    *,
    architecture: Mapping[str, Any],
    mean: float,
    std: float,
    accuracy: float,
    extra: Mapping[str, Any] | None = None,
    root: Path | str | None = None,
) -> Path:
    """Save ``model`` as artifact ``name``; returns the JSON path.

    Args:
        name: e.g. ``"cnn-fashion"``.
        model: the trained module (a Fabric wrapper is unwrapped).
        architecture: ``{"class": "deepnotes.<module>.<Class>", "kwargs": {...}}``, enough
            to rebuild the module with :func:`load_model`.
        mean, std: the input normalization the model was trained with.
        accuracy: its test accuracy in [0, 1].
        extra: more JSON-serializable data (data set, tier, training time...).
        root: folder; default :func:`artifact_dir`.
    """
    _check_name(name)
    if "class" not in architecture or not str(architecture["class"]).startswith("deepnotes."):
        raise ValueError(f"architecture needs a 'class' inside deepnotes, got {architecture!r}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    if not std > 0:
        raise ValueError(f"std must be > 0, got {std}")
    from safetensors.torch import save_file

    folder = Path(root) if root is not None else artifact_dir()
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / f"{name}.safetensors"
    state = _plain_state(model)
    _atomic_write(weights, lambda tmp: save_file(state, str(tmp)))
    meta = {
        "name": name,
        "format": FORMAT_VERSION,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "architecture": {"class": architecture["class"],
                         "kwargs": dict(architecture.get("kwargs", {}))},
        "normalization": {"mean": float(mean), "std": float(std)},
        "accuracy": float(accuracy),
        "weights": weights.name,
        "sha256": _sha256(weights),
        "torch": torch.__version__,
        "extra": dict(extra or {}),
    }
    meta_path = folder / f"{name}.json"
    _atomic_write(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return meta_path


def _missing_message(names: Sequence[str], folder: Path) -> str:
    builds = "; ".join(f"{n!r}: `{build_command(n)}`" for n in names)
    return (f"no artifact named {' or '.join(repr(n) for n in names)} in {folder}. "
            f"Build it with {builds}. (Artifacts are looked up in $DEEPNOTES_HOME/artifacts, "
            f"else ~/.cache/deepnotes/artifacts.)")


def load_artifact(name: str, fallbacks: Sequence[str] = (), root: Path | str | None = None
                  ) -> Artifact:
    """Load artifact ``name``, else the first of ``fallbacks`` that exists.

    Raises:
        ValueError: none exists (the message names the build commands), or the weights file
            does not match the hash its JSON records.
    """
    folder = Path(root) if root is not None else artifact_dir()
    for candidate in (name, *fallbacks):
        _check_name(candidate)
        meta_path = folder / f"{candidate}.json"
        if not meta_path.is_file():
            continue
        meta = json.loads(meta_path.read_text())
        weights = folder / meta["weights"]
        if not weights.is_file() or _sha256(weights) != meta["sha256"]:
            raise ValueError(f"artifact {candidate!r}: weights file {weights} is missing or does "
                             f"not match its metadata; rebuild with `{build_command(candidate)}`")
        from safetensors.torch import load_file

        return Artifact(name=candidate, requested=name, path=weights,
                        state_dict=load_file(str(weights)), meta=meta)
    raise ValueError(_missing_message([name, *fallbacks], folder))


def load_model(name: str, fallbacks: Sequence[str] = (), root: Path | str | None = None
               ) -> tuple[torch.nn.Module, Artifact]:
    """Rebuild the module of artifact ``name`` (or a fallback), load its weights, eval mode.

    Only classes inside the ``deepnotes`` package are instantiated.

    Returns:
        ``(model, artifact)``; ``artifact.mean``/``std`` give the input normalization.
    """
    artifact = load_artifact(name, fallbacks, root)
    path = artifact.meta["architecture"]["class"]
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith("deepnotes"):
        raise ValueError(f"artifact {artifact.name!r} names class {path!r} outside deepnotes")
    cls = getattr(importlib.import_module(module_name), class_name)
    kwargs = {k: tuple(v) if isinstance(v, list) else v
              for k, v in artifact.meta["architecture"]["kwargs"].items()}
    model = cls(**kwargs)
    model.load_state_dict(artifact.state_dict)
    model.eval()
    return model, artifact

"""Trained models saved by name and tier, so later experiments load them instead of retraining.

An artifact ``(NAME, TIER)`` is two files in ``<artifact folder>/NAME/``:

* ``TIER.safetensors``: the weights (``state_dict``, contiguous tensors);
* ``TIER.json``: its metadata, the same fields for every kind of model: ``name``, ``tier``,
  the ``experiment``, ``seed`` and resolved ``config`` of the run that made it, its
  ``metrics``, the ``data`` it was trained on (the loaders' provenance), the ``architecture``
  (a ``deepnotes`` class and its keyword arguments), the deepnotes ``version``, ``torch``,
  ``created``, the ``sha256`` of the weights, and model-specific ``extra`` data (e.g. the
  input normalization).

Artifacts are keyed by tier, so a quick run never overwrites a full-tier artifact. A consumer
loads the tier it runs at (a quick run the quick model, a full run the full one): its numbers
then depend on its own tier only. The loaded ``(name, tier, sha256)`` goes into the consumer's
summary (``artifacts``) through :mod:`deepnotes.engine.provenance`; if the artifact was
trained on a substitute dataset, its data records join the consumer's, so its card says so.

The folder is ``$DEEPNOTES_HOME/artifacts`` when ``DEEPNOTES_HOME`` is set, else
``$XDG_CACHE_HOME/deepnotes/artifacts`` (default ``~/.cache/deepnotes/artifacts``). Files are
written atomically, the weights first and the JSON last, naming the weights' hash, so a reader
never pairs metadata with half-written or foreign weights. Loading a missing artifact raises
:class:`MissingArtifact` naming the command that builds it, taken from the registry.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import importlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from deepnotes.engine import provenance, unwrap
from deepnotes.engine.files import atomic_write, write_json

FORMAT_VERSION = 2
TIERS = ("smoke", "quick", "full")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class MissingArtifact(ValueError):
    """No artifact of that name and tier. The experiment runner adds the command that builds
    it (from the registry, which sits above the zoo) to the message."""

    def __init__(self, message: str, name: str, tier: str) -> None:
        super().__init__(message)
        self.name, self.tier = name, tier


def artifact_dir() -> Path:
    """The folder artifacts are saved to and loaded from (see module docstring)."""
    home = os.environ.get("DEEPNOTES_HOME")
    if home:
        return Path(home) / "artifacts"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "deepnotes" / "artifacts"


def _check(name: str, tier: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"artifact name must match {_NAME.pattern} (lower-case, no slashes), "
                         f"got {name!r}")
    if tier not in TIERS:
        raise ValueError(f"artifact tier must be one of {list(TIERS)}, got {tier!r}")


def _package_version() -> str:
    try:
        return version("deepnotes")
    except PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A loaded artifact: its weights file, weights and metadata (see module docstring)."""

    name: str
    tier: str
    path: Path
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        return self.meta["sha256"]

    @property
    def extra(self) -> dict[str, Any]:
        return self.meta["extra"]

    @property
    def metrics(self) -> dict[str, float]:
        return self.meta["metrics"]

    @property
    def train_seconds(self) -> float | None:
        """Training wall time of the producing run (``None`` for artifacts saved before it
        was recorded)."""
        value = self.meta.get("train_seconds")
        return None if value is None else float(value)

    def record(self) -> dict[str, str]:
        """What a consumer writes into its summary: name, tier, sha256."""
        return {"name": self.name, "tier": self.tier, "sha256": self.sha256}


def save_artifact(ctx: Any, name: str, model: torch.nn.Module, *,
                  architecture: Mapping[str, Any], metrics: Mapping[str, float],
                  extra: Mapping[str, Any] | None = None, root: Path | str | None = None
                  ) -> Path:
    """Save ``model`` as artifact ``(name, ctx.tier)`` with the run's metadata; returns the
    JSON path. Only the main process writes.

    Args:
        ctx: the producing run's :class:`~deepnotes.engine.RunContext` (experiment, tier,
            seed, config and the data the run loaded).
        model: the trained module (a Fabric wrapper is unwrapped).
        architecture: ``{"class": "deepnotes.<module>.<Class>", "kwargs": {...}}``, enough
            to rebuild the module with :func:`load_model`.
        metrics: the model's own measured quality (e.g. test accuracy).
        extra: model-specific JSON data (e.g. the input normalization).
        root: folder; default :func:`artifact_dir`.
    """
    _check(name, ctx.tier)
    if "class" not in architecture or not str(architecture["class"]).startswith("deepnotes."):
        raise ValueError(f"architecture needs a 'class' inside deepnotes, got {architecture!r}")
    folder = (Path(root) if root is not None else artifact_dir()) / name
    meta_path = folder / f"{ctx.tier}.json"
    if not ctx.is_main:
        return meta_path
    from safetensors.torch import save_file

    weights = folder / f"{ctx.tier}.safetensors"
    state = {k: v.detach().cpu().contiguous() for k, v in unwrap(model).state_dict().items()}
    atomic_write(weights, lambda tmp: save_file(state, str(tmp)))
    config = ctx.config
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    write_json(meta_path, {
        "name": name, "tier": ctx.tier, "format": FORMAT_VERSION,
        "experiment": ctx.experiment, "seed": ctx.seed, "config": config,
        # wall time the producing run spent training so far (its ``ctx.steps`` loops)
        "train_seconds": float(getattr(ctx, "train_seconds", 0.0)),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "data": provenance.data_records(),
        "architecture": {"class": architecture["class"],
                         "kwargs": dict(architecture.get("kwargs", {}))},
        "version": _package_version(), "torch": torch.__version__,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "weights": weights.name, "sha256": _sha256(weights),
        "extra": dict(extra or {}),
    })
    return meta_path


def _missing(name: str, tier: str, folder: Path) -> MissingArtifact:
    return MissingArtifact(
        f"no {tier}-tier artifact {name!r} in {folder} (looked up in $DEEPNOTES_HOME/artifacts, "
        f"else ~/.cache/deepnotes/artifacts; `deepnotes report` builds the ones it needs "
        f"first).", name, tier)


def exists(name: str, tier: str, root: Path | str | None = None) -> bool:
    """Whether artifact ``(name, tier)`` has been saved (its metadata file is there)."""
    _check(name, tier)
    return ((Path(root) if root is not None else artifact_dir()) / name / f"{tier}.json").is_file()


def load_artifact(name: str, tier: str, root: Path | str | None = None) -> Artifact:
    """Load artifact ``(name, tier)`` and record it in the running experiment's summary.

    Raises:
        MissingArtifact: there is none, or its weights do not match the hash its JSON records.
    """
    _check(name, tier)
    folder = (Path(root) if root is not None else artifact_dir()) / name
    meta_path = folder / f"{tier}.json"
    if not meta_path.is_file():
        raise _missing(name, tier, folder.parent)
    meta = json.loads(meta_path.read_text())
    weights = folder / meta["weights"]
    if not weights.is_file() or _sha256(weights) != meta["sha256"]:
        raise MissingArtifact(f"artifact {name!r} ({tier}): weights file {weights} is missing "
                              f"or does not match its metadata; rebuild it.", name, tier)
    from safetensors.torch import load_file

    artifact = Artifact(name=name, tier=tier, path=weights, state_dict=load_file(str(weights)),
                        meta=meta)
    provenance.record_artifact(artifact.record())
    for record in meta["data"]:
        if record["substitute"]:  # the consumer's result rests on it too: say so there
            provenance.record_data(**{**record, "split": f"{record['split']} (artifact {name})"})
    return artifact


def load_model(name: str, tier: str, root: Path | str | None = None
               ) -> tuple[torch.nn.Module, Artifact]:
    """Rebuild the module of artifact ``(name, tier)``, load its weights, eval mode.

    Only classes inside the ``deepnotes`` package are instantiated.
    """
    artifact = load_artifact(name, tier, root)
    path = artifact.meta["architecture"]["class"]
    module_name, _, class_name = path.rpartition(".")
    if not module_name.startswith("deepnotes."):
        raise ValueError(f"artifact {name!r} names class {path!r} outside deepnotes")
    cls = getattr(importlib.import_module(module_name), class_name)
    kwargs = {k: tuple(v) if isinstance(v, list) else v
              for k, v in artifact.meta["architecture"]["kwargs"].items()}
    model = cls(**kwargs)
    model.load_state_dict(artifact.state_dict)
    model.eval()
    return model, artifact

"""What a run used, recorded by the code that supplied it.

Data loaders call :func:`record_data` with the name, split, size, whether it is a subset or
a substitute, and the file's path and sha256; :func:`deepnotes.zoo.load_artifact` calls
:func:`record_artifact`. The runner collects both for the duration of a run
(:func:`collecting`) and writes them into ``summary.json`` (``data``, ``artifacts``), so no
experiment describes its data by hand and a report run on a substitute labels every card that
used it. Outside a run nothing is collected. Recording keeps lists in memory; it touches no
file.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_RECORDS: contextvars.ContextVar[dict[str, list] | None] = contextvars.ContextVar(
    "deepnotes_provenance", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[dict[str, list]]:
    """Collect every record made inside the block: ``{"data": [...], "artifacts": [...]}``."""
    records: dict[str, list] = {"data": [], "artifacts": []}
    token = _RECORDS.set(records)
    try:
        yield records
    finally:
        _RECORDS.reset(token)


def _add(kind: str, entry: dict[str, Any]) -> None:
    records = _RECORDS.get()
    if records is not None and entry not in records[kind]:
        records[kind].append(entry)


def record_data(name: str, split: str, size: int, *, subset: str | None = None,
                substitute: str | None = None, path: Path | str | None = None,
                sha256: str | None = None) -> None:
    """Record one dataset split the running experiment loaded.

    Args:
        name: e.g. ``"Fashion-MNIST"``.
        split: ``"train"``, ``"test"``, ``"all"``...
        size: number of examples supplied.
        subset: how it is a subset of the named dataset (``None``: the whole split).
        substitute: what it stands in for (``None``: it is what was asked for).
        path, sha256: the file it was read from and its hash (``None`` for generated data).
    """
    _add("data", {"name": name, "split": split, "size": int(size), "subset": subset,
                  "substitute": substitute, "path": None if path is None else str(path),
                  "sha256": sha256})


def record_artifact(entry: dict[str, str]) -> None:
    """Record a loaded artifact: ``{"name", "tier", "sha256"}``."""
    _add("artifacts", dict(entry))


def data_records() -> list[dict[str, Any]]:
    """The data records of the running experiment so far (empty outside a run)."""
    records = _RECORDS.get()
    return [] if records is None else list(records["data"])


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, mtime: float, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a file, cached per (path, mtime, size)."""
    stat = Path(path).stat()
    return _file_sha256(str(path), stat.st_mtime, stat.st_size)

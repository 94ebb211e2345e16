"""Dataset search order, the checksummed download (from a local file:// URL), fallbacks."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from deepnotes.data import images as im
from deepnotes.data import load_digits, make_blobs, make_moons, make_ring, write_idx
from deepnotes.data.toy import ring_centers
from deepnotes.engine import provenance


def _fake_dataset(folder, n_train=6, n_test=4, value=7):
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz",
                  np.full((n, 28, 28), value, dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n, dtype=np.uint8) % 10)
    return folder


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real dataset reachable: cache, DEEPNOTES_DATA and cwd point into tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DEEPNOTES_DATA", raising=False)
    monkeypatch.delenv("DEEPNOTES_DATA_DIR", raising=False)
    monkeypatch.delenv("DEEPNOTES_SUBSTITUTE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(im, "candidate_dirs", _without_system(im.candidate_dirs))
    im._read_cached.cache_clear()
    return tmp_path


def _without_system(original):
    def candidate_dirs(name, root=None):
        return [(how, d) for how, d in original(name, root) if how != "Debian package"]
    return candidate_dirs


def test_missing_fashion_lists_every_way(isolated):
    with pytest.raises(FileNotFoundError) as err:
        im.load_fashion_mnist("train")
    msg = str(err.value)
    for needle in ("apt-get install dataset-fashion-mnist", "deepnotes data --download",
                   "--data-dir", "DEEPNOTES_DATA", "user cache"):
        assert needle in msg


def test_search_order_explicit_root_wins(isolated, monkeypatch):
    _fake_dataset(isolated / "cache" / "deepnotes" / "fashion-mnist", value=1)
    env_root = isolated / "envdata"
    _fake_dataset(env_root / "fashion-mnist", value=2)
    monkeypatch.setenv("DEEPNOTES_DATA", str(env_root))
    explicit = _fake_dataset(isolated / "explicit", value=3)
    assert im.load_fashion_mnist("train", root=explicit)[0][0, 0, 0] == 3
    assert im.load_fashion_mnist("train")[0][0, 0, 0] == 2  # env before cache
    monkeypatch.delenv("DEEPNOTES_DATA")
    x, y = im.load_fashion_mnist("test")
    assert x[0, 0, 0] == 1 and x.shape == (4, 28, 28) and x.dtype == torch.uint8
    assert y.dtype == torch.int64


def test_cli_data_dir_never_serves_fashion_files_as_mnist(isolated, monkeypatch):
    folder = _fake_dataset(isolated / "fm", value=5)
    monkeypatch.setenv("DEEPNOTES_DATA_DIR", str(folder))
    assert im.load_fashion_mnist("train")[0][0, 0, 0] == 5
    assert im.mnist_source() == im.MNIST_SUBSET_NAME


def test_torchvision_layout(isolated):
    _fake_dataset(isolated / "data" / "FashionMNIST" / "raw", value=9)
    assert im.load_fashion_mnist("train")[0][0, 0, 0] == 9
    assert "torchvision" in im.fashion_mnist_source()


def test_download_checks_md5_from_local_url(isolated):
    src = _fake_dataset(isolated / "mirror")
    sums = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in src.iterdir()}
    dest = im.download_fashion_mnist(base_url=src.as_uri(), checksums=sums)
    assert dest == isolated / "cache" / "deepnotes" / "fashion-mnist"
    assert sorted(p.name for p in dest.iterdir()) == sorted(sums)
    assert im.load_fashion_mnist("train")[0].shape == (6, 28, 28)


def test_download_rejects_bad_checksum_and_leaves_nothing(isolated):
    src = _fake_dataset(isolated / "mirror")
    sums = {p.name: "0" * 32 for p in src.iterdir()}
    dest = isolated / "dl"
    with pytest.raises(ValueError, match="checksum mismatch"):
        im.download_fashion_mnist(dest=dest, base_url=src.as_uri(), checksums=sums)
    assert list(dest.iterdir()) == []


def test_published_checksums_are_the_originals():
    assert im.FASHION_MD5["train-images-idx3-ubyte.gz"] == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert len(im.FASHION_MD5) == 4


def test_mnist_subset_fallback_is_named(isolated):
    x_train, y_train = im.load_mnist("train")
    x_test, _ = im.load_mnist("test")
    assert x_train.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == torch.uint8 and y_train.dtype == torch.int64
    assert "subset" in im.mnist_source()


def test_substitution_is_opt_in_and_announced(isolated, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_SUBSTITUTE_DATA", "1")
    with pytest.warns(UserWarning, match="substituting"):
        x, _ = im.load_fashion_mnist("test")
    assert x.shape == (1000, 28, 28)
    assert im.fashion_mnist_source().startswith("SUBSTITUTE")


def test_bad_split(isolated):
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        im.load_fashion_mnist("validation")


def test_digits_and_toy_sets():
    x, y = load_digits()
    assert x.shape == (1797, 8, 8) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    g = torch.Generator().manual_seed(0)
    x, y = make_moons(101, noise=0.0, generator=g)
    assert x.shape == (101, 2) and set(y.tolist()) == {0, 1}
    # noise-free upper moon lies on the unit circle
    assert torch.allclose(x[y == 0].norm(dim=1), torch.ones(50), atol=1e-6)
    x, y = make_ring(800, modes=8, radius=2.0, std=0.0, generator=g)
    assert torch.allclose(x, ring_centers(8, 2.0)[y])
    x, y = make_blobs(50, centers=3, generator=g)
    assert x.shape == (50, 2) and y.max() < 3
    with pytest.raises(ValueError, match="positive"):
        make_moons(0)


def test_loaders_record_their_provenance(isolated):
    folder = _fake_dataset(isolated / "fm", n_train=6, n_test=4)
    with provenance.collecting() as used:
        im.load_fashion_mnist("train", root=folder)
        im.load_fashion_mnist("test", root=folder, first=3)
        load_digits()
    train, test, digits = used["data"]
    path = folder / "train-images-idx3-ubyte.gz"
    assert train == {"name": "Fashion-MNIST", "split": "train", "size": 6, "subset": None,
                     "substitute": None, "path": str(path),
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert test["size"] == 3 and test["subset"] == "first 3 of 4"
    assert digits["name"] == "scikit-learn 8x8 digits" and digits["size"] == 1797
    im.load_fashion_mnist("train", root=folder)  # outside a run: nothing is collected
    with pytest.raises(ValueError, match="positive number"):
        im.load_fashion_mnist("test", root=folder, first=0)


def test_a_substitute_says_what_it_stands_for(isolated, monkeypatch):
    monkeypatch.setenv("DEEPNOTES_SUBSTITUTE_DATA", "1")
    with provenance.collecting() as used, pytest.warns(UserWarning, match="substituting"):
        im.load_fashion_mnist("test", first=100)
    (record,) = used["data"]
    assert record["name"] == "MNIST" and record["substitute"] == "Fashion-MNIST"
    assert record["size"] == 100 and "5000-digit subset" in record["subset"]

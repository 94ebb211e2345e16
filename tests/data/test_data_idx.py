"""IDX reading: round trips and every kind of broken file gives a message naming the problem."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from deepnotes.data import read_idx, read_idx_pair, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.float32, torch.float64])
def test_round_trip(tmp_path, suffix, dtype):
    x = (torch.arange(2 * 3 * 4) * 3 - 7).reshape(2, 3, 4)
    x = x.to(dtype) if dtype != torch.uint8 else (x % 256).to(torch.uint8)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, x)
    y = read_idx(path)
    assert y.dtype == dtype and y.shape == x.shape
    assert torch.equal(x, y)


def test_known_bytes(tmp_path):
    # Hand-made file: magic 0x00000801 (uint8, 1 dim), size 3, data 7 8 9.
    path = tmp_path / "labels"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]))
    assert read_idx(path).tolist() == [7, 8, 9]


def _broken(tmp_path, data: bytes, gz: bool = False):
    path = tmp_path / ("broken.gz" if gz else "broken")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes([0, 0, 8]), "truncated IDX header"),
        (bytes([1, 2, 8, 1, 0, 0, 0, 1, 5]), "wrong magic number"),
        (bytes([0, 0, 0x42, 1, 0, 0, 0, 1, 5]), "unknown IDX type code"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2]), "truncated IDX header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "truncated IDX data"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 1, 1, 2]), "size mismatch"),
        (bytes([0, 0, 8, 0]), "0 dimensions"),
    ],
)
def test_broken_files_name_file_and_problem(tmp_path, data, message):
    path = _broken(tmp_path, data)
    with pytest.raises(ValueError, match=message) as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_truncated_gzip(tmp_path):
    raw = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 100]) + bytes(100))
    path = tmp_path / "cut.gz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="gzip stream is truncated") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match="no such IDX file"):
        read_idx(tmp_path / "nope")


def test_pair_count_mismatch(tmp_path):
    write_idx(tmp_path / "img.gz", np.zeros((5, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "lab.gz", np.zeros((4,), dtype=np.uint8))
    with pytest.raises(ValueError, match="label/image count mismatch: .*5 images.*4 labels"):
        read_idx_pair(tmp_path / "img.gz", tmp_path / "lab.gz")


def test_pair_wrong_image_rank(tmp_path):
    write_idx(tmp_path / "img", np.zeros((5, 4), dtype=np.uint8))
    write_idx(tmp_path / "lab", np.zeros((5,), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"expected uint8 images of shape \(N, H, W\)"):
        read_idx_pair(tmp_path / "img", tmp_path / "lab")

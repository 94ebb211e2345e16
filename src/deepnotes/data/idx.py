"""Reading IDX files (the MNIST / Fashion-MNIST format), gzipped or not.

Format: two zero bytes, a type code, the number of dimensions ``d``; then ``d`` big-endian
int32 sizes; then the data in row-major order, big-endian for multi-byte types.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(
                f"{path}: gzip stream is truncated or corrupt ({exc}); delete the file and "
                f"get it again"
            ) from None
    return raw


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an IDX file into a tensor (uint8 stays uint8; other types become native order).

    Raises:
        ValueError: naming the file and the problem -- wrong magic number, unknown type code,
            truncated header or data, trailing bytes, missing file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such IDX file")
    data = _read_bytes(path)
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX header ({len(data)} bytes, need at least 4)")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(
            f"{path}: wrong magic number {data[:4].hex()} (an IDX file starts with two zero "
            f"bytes, a type code and the number of dimensions); is this really an IDX file?"
        )
    code, ndim = data[2], data[3]
    if code not in _TYPES:
        raise ValueError(
            f"{path}: unknown IDX type code 0x{code:02x}; expected one of "
            f"{', '.join(f'0x{c:02x}' for c in _TYPES)}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
                         f"file has {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise ValueError(f"{path}: truncated IDX data: shape {shape} needs {expected} bytes, "
                         f"file has {got}")
    if got > expected:
        raise ValueError(f"{path}: size mismatch: shape {shape} needs {expected} bytes of data, "
                         f"file has {got} ({got - expected} extra); header and data disagree")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: str | Path, tensor: torch.Tensor | np.ndarray, compress: bool | None = None
              ) -> None:
    """Write ``tensor`` as IDX (gzip when ``path`` ends in .gz). Used by tests and tools."""
    path = Path(path)
    array = tensor.numpy() if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
    dtype = array.dtype.newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"cannot write dtype {array.dtype} as IDX; use one of "
                         f"{sorted(str(d) for d in codes)}")
    code = codes[dtype]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    payload = header + array.astype(_TYPES[code], copy=False).tobytes()
    compress = path.suffix == ".gz" if compress is None else compress
    path.write_bytes(gzip.compress(payload, compresslevel=1) if compress else payload)


def read_idx_pair(images_path: str | Path, labels_path: str | Path
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Read matching image and label files: ``(uint8 (N, H, W), int64 (N,))``."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.dtype != torch.uint8:
        raise ValueError(f"{images_path}: expected uint8 images of shape (N, H, W), got "
                         f"{images.dtype} {tuple(images.shape)}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected labels of shape (N,), got "
                         f"{tuple(labels.shape)}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"label/image count mismatch: {images_path} has {images.shape[0]} "
                         f"images but {labels_path} has {labels.shape[0]} labels")
    return images, labels.long()

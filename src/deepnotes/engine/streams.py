"""Named random streams: independent generators derived from (seed, stream name, index).

Every random draw of a run comes from a stream with a name, e.g. ``"batches"`` (epoch
permutations, index = epoch), ``"augment"`` (index = step) or ``"init"``. The generator of
``(seed, name, index)`` is seeded from ``numpy.random.SeedSequence`` with entropy
``seed`` and spawn key ``(first 128 bits of SHA-256(name), index)``, so

* two names never share a stream (the name enters as its SHA-256 digest, not a small
  number that arithmetic could hit again), and
* two seeds never share one either (``SeedSequence`` hashes the whole key; the old
  ``seed * 7919 + offset`` and ``seed * 1_000_003 + step`` schemes collided: seed 1 offset
  0 of one equals seed 0 offset 7919 of the other).

The streams are pure functions of their key: a resumed run draws exactly what an
uninterrupted one drew without saving any generator state.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch


def _name_words(name: str) -> tuple[int, ...]:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a random stream needs a non-empty name, got {name!r}")
    digest = hashlib.sha256(name.encode()).digest()
    return tuple(int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4))


def stream_seed(seed: int, name: str, index: int = 0) -> int:
    """A 63-bit seed for stream ``name`` at ``index`` of run seed ``seed``."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(*_name_words(name), index))
    return int(sequence.generate_state(1, np.uint64)[0]) >> 1  # manual_seed takes < 2**63


def stream_generator(seed: int, name: str, index: int = 0) -> torch.Generator:
    """A CPU ``torch.Generator`` for stream ``name`` at ``index`` (see module docstring)."""
    return torch.Generator().manual_seed(stream_seed(seed, name, index))

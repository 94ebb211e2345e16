"""In-memory mini-batches by index slicing with a seeded generator.

On a 2-core CPU a per-sample ``DataLoader`` costs more than the model, so datasets live in
memory as tensors and a batch is ``tensor[idx]``. The order is a pure function of
``(seed, stream, epoch)`` (a named random stream, :mod:`deepnotes.engine.streams`): batch
``step`` can be recomputed at any time, which is what makes a resumed
run bit-identical to an uninterrupted one (only the step number needs to be saved).

Under data parallelism every rank draws the same global permutation and takes its own
contiguous slice of each global batch.
"""

from __future__ import annotations

import torch

from deepnotes.engine.streams import stream_generator


class Batches:
    """Deterministic shuffled mini-batches over tensors that share their first dimension.

    Args:
        *tensors: e.g. ``images (N, ...)``, ``labels (N,)``.
        batch_size: global batch size (summed over ranks).
        seed: the run's seed.
        stream: name of the random stream of the epoch permutations (index = epoch); two
            ``Batches`` of one run that must not share an order take different names.
        shuffle: draw a new permutation every epoch; else keep the stored order.
        drop_last: drop the final incomplete batch of each epoch.
        rank, world_size: data-parallel shard of each batch.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        seed: int = 0,
        stream: str = "batches",
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not tensors:
            raise ValueError("Batches needs at least one tensor")
        n = tensors[0].shape[0]
        for t in tensors:
            if t.shape[0] != n:
                raise ValueError(
                    f"all tensors must share their first dimension; got sizes "
                    f"{[t.shape[0] for t in tensors]}"
                )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if batch_size > n and drop_last:
            raise ValueError(f"batch_size {batch_size} exceeds the {n} examples with drop_last")
        if batch_size % world_size:
            raise ValueError(
                f"batch_size {batch_size} must be divisible by the number of devices {world_size}"
            )
        self.tensors = tensors
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.stream = stream
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.rank = rank
        self.world_size = world_size
        self._cached_epoch = -1
        self._perm = torch.arange(n)

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def permutation(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        if epoch != self._cached_epoch:
            g = stream_generator(self.seed, self.stream, epoch)
            self._perm = torch.randperm(self.n, generator=g)
            self._cached_epoch = epoch
        return self._perm

    def indices(self, step: int) -> torch.Tensor:
        """Indices of this rank's part of global batch number ``step`` (counted from 0)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        idx = self.permutation(epoch)[i * self.batch_size : (i + 1) * self.batch_size]
        if self.world_size > 1:
            idx = idx.chunk(self.world_size)[self.rank] if len(idx) >= self.world_size else idx
        return idx

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        idx = self.indices(step)
        return tuple(t[idx] for t in self.tensors)

    def __iter__(self):
        """One epoch of batches (epoch 0); use :meth:`batch` for step-addressed training."""
        for step in range(self.steps_per_epoch):
            yield self.batch(step)

    def __len__(self) -> int:
        return self.steps_per_epoch


def eval_batches(*tensors: torch.Tensor, batch_size: int = 2048):
    """Consecutive, unshuffled slices for evaluation."""
    n = tensors[0].shape[0]
    for start in range(0, n, batch_size):
        yield tuple(t[start : start + batch_size] for t in tensors)


def hold_out(count: int, *tensors: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Split each of ``tensors`` (one length) into all but its last ``n`` rows and those ``n``,
    ``n = min(count, len // 5)``: a validation set of ``count`` examples that never takes more
    than a fifth of a small (smoke) set. Returns ``([train parts], [validation parts])``."""
    n = min(count, len(tensors[0]) // 5)
    if n < 1 or any(len(t) != len(tensors[0]) for t in tensors):
        raise ValueError(f"hold_out: need tensors of one length >= 5, got lengths "
                         f"{[len(t) for t in tensors]}")
    return [t[:-n] for t in tensors], [t[-n:] for t in tensors]


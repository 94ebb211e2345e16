"""Batches: deterministic per step, a permutation per epoch, DDP shards partition the batch."""

from __future__ import annotations

import pytest
import torch

from deepnotes.data import Batches


def test_epoch_is_a_permutation_and_deterministic():
    x = torch.arange(100)
    b = Batches(x, batch_size=10, seed=3)
    seen = torch.cat([b.batch(s)[0] for s in range(b.steps_per_epoch)])
    assert sorted(seen.tolist()) == list(range(100))
    again = Batches(x, batch_size=10, seed=3)
    assert torch.equal(again.batch(17)[0], b.batch(17)[0])  # addressable by step, any order
    assert not torch.equal(b.batch(0)[0], b.batch(10)[0])  # new permutation next epoch
    assert not torch.equal(Batches(x, batch_size=10, seed=4).batch(0)[0], b.batch(0)[0])


def test_shards_partition_global_batch():
    x = torch.arange(64)
    full = Batches(x, batch_size=16, seed=1)
    shards = [Batches(x, batch_size=16, seed=1, rank=r, world_size=2) for r in range(2)]
    for step in range(6):
        joined = torch.cat([s.batch(step)[0] for s in shards])
        assert torch.equal(joined, full.batch(step)[0])


def test_validation():
    with pytest.raises(ValueError, match="share their first dimension"):
        Batches(torch.zeros(3), torch.zeros(4), batch_size=1)
    with pytest.raises(ValueError, match="divisible"):
        Batches(torch.zeros(10), batch_size=5, world_size=2)
    with pytest.raises(ValueError, match="exceeds"):
        Batches(torch.zeros(10), batch_size=11)


def test_hold_out_takes_the_last_rows_and_at_most_a_fifth():
    import pytest
    import torch

    from deepnotes.data import hold_out

    x, y = torch.arange(20).view(10, 2), torch.arange(10)
    (xt, yt), (xv, yv) = hold_out(5, x, y)  # a fifth of 10 is 2 < 5
    assert torch.equal(xv, x[-2:]) and torch.equal(yt, y[:8]) and len(xt) == 8
    (xt,), (xv,) = hold_out(1, x)
    assert torch.equal(xv, x[-1:]) and len(xt) == 9
    with pytest.raises(ValueError, match="one length"):
        hold_out(1, x, y[:5])

"""Synthetic sequence tasks: the adding problem and copy at a lag (shapes and properties)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from deepnotes.data import adding_problem, copy_task
from deepnotes.data.sequences import BLANK


def test_adding_problem_shapes_and_determinism():
    x, y = adding_problem(5, 12, torch.Generator().manual_seed(0))
    assert x.shape == (5, 12, 2) and y.shape == (5, 1)
    assert x.dtype == y.dtype == torch.float32
    x2, y2 = adding_problem(5, 12, torch.Generator().manual_seed(0))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    with pytest.raises(ValueError, match="at least 2"):
        adding_problem(5, 1)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 16), length=st.integers(2, 40), seed=st.integers(0, 2**31))
def test_adding_problem_two_markers_one_per_half_and_their_sum(n, length, seed):
    x, y = adding_problem(n, length, torch.Generator().manual_seed(seed))
    values, markers = x[..., 0], x[..., 1]
    half = length // 2
    assert ((values >= 0) & (values < 1)).all()
    assert set(markers.unique().tolist()) <= {0.0, 1.0}
    assert (markers[:, :half].sum(1) == 1).all() and (markers[:, half:].sum(1) == 1).all()
    assert torch.allclose(y[:, 0], (values * markers).sum(1))


def test_adding_problem_trivial_baseline_is_one_sixth():
    _, y = adding_problem(20000, 10, torch.Generator().manual_seed(1))
    assert abs(((y - 1.0) ** 2).mean().item() - 1 / 6) < 0.01


def test_copy_task_layout():
    x, y = copy_task(4, lag=3, symbols=5, generator=torch.Generator().manual_seed(0), length=6)
    assert x.shape == y.shape == (4, 9) and x.dtype == y.dtype == torch.int64
    assert ((x[:, :6] >= 1) & (x[:, :6] <= 5)).all() and (x[:, 6:] == BLANK).all()
    assert (y[:, :3] == BLANK).all() and torch.equal(y[:, 3:], x[:, :6])
    x0, y0 = copy_task(2, lag=0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x0, y0)
    with pytest.raises(ValueError):
        copy_task(2, lag=-1)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 8), lag=st.integers(0, 30), symbols=st.integers(1, 10),
       length=st.integers(1, 12), seed=st.integers(0, 2**31))
def test_copy_task_target_is_the_input_delayed_by_lag(n, lag, symbols, length, seed):
    x, y = copy_task(n, lag, symbols, torch.Generator().manual_seed(seed), length=length)
    assert x.shape == (n, length + lag)
    assert (y[:, :lag] == BLANK).all()
    assert torch.equal(y[:, lag:], x[:, :length])
    assert x.max() <= symbols and x[:, :length].min() >= 1
